//! `orderer-client channel create | update | fetch` against a small mock
//! orderer: CONFIG_UPDATE envelopes are recorded and answered SUCCESS (a
//! channel creation makes the channel appear a little later, as the real
//! orderer does), Deliver answers NOT_FOUND for unknown channels and serves
//! single blocks otherwise.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabric_common::devcrypto::{DevOrg, NodeOu};
use fabric_common::envelope::parse_envelope;
use fabric_configtx::genesis::{genesis_block, GenesisFormat};
use fabric_configtx::DevNetwork;
use fabric_protos::common::{Block, ConfigGroup, ConfigUpdate, Envelope, Status};
use fabric_protos::orderer::atomic_broadcast_server::{AtomicBroadcast, AtomicBroadcastServer};
use fabric_protos::orderer::{
    deliver_response, seek_position, BatchSize, BroadcastResponse, DeliverResponse, SeekInfo,
};
use orderer_client::channel::{open_config_update_tx, BATCH_SIZE_KEY, ORDERER_GROUP};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status as GrpcStatus, Streaming};

#[derive(Default)]
struct State {
    channels: BTreeMap<String, Vec<Block>>,
    received: Vec<Envelope>,
}

#[derive(Clone)]
struct Svc {
    state: Arc<Mutex<State>>,
    /// The channel group new channels get.
    group: Arc<ConfigGroup>,
}

fn status_response(s: Status, info: &str) -> BroadcastResponse {
    BroadcastResponse {
        status: s as i32,
        info: info.into(),
    }
}

#[tonic::async_trait]
impl AtomicBroadcast for Svc {
    type BroadcastStream = ReceiverStream<Result<BroadcastResponse, GrpcStatus>>;
    type DeliverStream = ReceiverStream<Result<DeliverResponse, GrpcStatus>>;

    async fn broadcast(
        &self,
        req: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::BroadcastStream>, GrpcStatus> {
        let mut input = req.into_inner();
        let (tx, rx) = mpsc::channel(4);
        let svc = self.clone();
        tokio::spawn(async move {
            while let Some(Ok(env)) = input.next().await {
                svc.state.lock().unwrap().received.push(env.clone());
                let resp = match open_config_update_tx(&env) {
                    Err(e) => status_response(Status::BadRequest, &e.to_string()),
                    Ok((ch, _)) if ch == "refused" => {
                        status_response(Status::BadRequest, "implicit policy evaluation failed")
                    }
                    Ok((ch, _)) => {
                        let exists = svc.state.lock().unwrap().channels.contains_key(&ch);
                        if !exists {
                            // The channel appears asynchronously.
                            let svc = svc.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(Duration::from_millis(500)).await;
                                let b = genesis_block(&svc.group, &ch, GenesisFormat::V2);
                                svc.state.lock().unwrap().channels.insert(ch, vec![b]);
                            });
                        }
                        status_response(Status::Success, "")
                    }
                };
                if tx.send(Ok(resp)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn deliver(
        &self,
        req: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverStream>, GrpcStatus> {
        let mut input = req.into_inner();
        let (tx, rx) = mpsc::channel(4);
        let state = self.state.clone();
        tokio::spawn(async move {
            let send = |r| DeliverResponse { r#type: Some(r) };
            while let Some(Ok(env)) = input.next().await {
                let p = parse_envelope(&env).unwrap();
                let si = SeekInfo::decode(p.payload.data.as_slice()).unwrap();
                let block = {
                    let st = state.lock().unwrap();
                    st.channels.get(&p.channel_header.channel_id).map(|blocks| {
                        match si.start.and_then(|s| s.r#type).unwrap() {
                            seek_position::Type::Specified(s) => blocks[s.number as usize].clone(),
                            seek_position::Type::Oldest(_) => blocks[0].clone(),
                            _ => blocks.last().unwrap().clone(),
                        }
                    })
                };
                let replies = match block {
                    None => vec![deliver_response::Type::Status(Status::NotFound as i32)],
                    Some(b) => vec![
                        deliver_response::Type::Block(b),
                        deliver_response::Type::Status(Status::Success as i32),
                    ],
                };
                for r in replies {
                    if tx.send(Ok(send(r))).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

struct Net {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    state: Arc<Mutex<State>>,
    admin_msp: PathBuf,
    admin2_msp: PathBuf,
    creation_tx: PathBuf,
}

async fn start() -> Net {
    let dir = tempfile::tempdir().unwrap();
    let org = DevOrg::create(&dir.path().join("org"), "SampleOrg", "example.com").unwrap();
    let admin_msp = org.issue("Admin@example.com", NodeOu::Admin).unwrap();
    let admin2_msp = org.issue("Admin2@example.com", NodeOu::Admin).unwrap();
    let net = DevNetwork::new(org.msp_dir());
    let group = fabric_configtx::new_channel_group(&net.system_channel_profile()).unwrap();
    let tx = fabric_configtx::genesis::channel_creation_tx(
        "newchan",
        &net.application_channel_profile(),
        None,
    )
    .unwrap();
    let creation_tx = dir.path().join("newchan.tx");
    std::fs::write(&creation_tx, tx.encode_to_vec()).unwrap();

    let state = Arc::new(Mutex::new(State::default()));
    let svc = Svc {
        state: state.clone(),
        group: Arc::new(group),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AtomicBroadcastServer::new(svc))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    Net {
        addr,
        dir,
        state,
        admin_msp,
        admin2_msp,
        creation_tx,
    }
}

async fn run(net: &Net, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_orderer-client"));
    cmd.env("FABRIC_ORDERER_DEV_DIR", net.dir.path().join("nodev"))
        .current_dir(net.dir.path())
        .arg("--server")
        .arg(net.addr.to_string())
        .arg("--mspdir")
        .arg(&net.admin_msp)
        .arg("--mspid")
        .arg("SampleOrg")
        .args(args);
    cmd.output().await.unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn read_block(p: &Path) -> Block {
    Block::decode(std::fs::read(p).unwrap().as_slice()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_fetch_and_update_a_channel() {
    let net = start().await;
    let tx = net.creation_tx.to_str().unwrap().to_string();
    let cosigner = format!("{}:SampleOrg", net.admin2_msp.display());

    // A mismatching -c is refused before anything is sent.
    let o = run(&net, &["channel", "create", "-c", "other", "-f", &tx]).await;
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("mismatched channel ID"));
    assert!(net.state.lock().unwrap().received.is_empty());

    // Create (the channel name comes from the file), co-signed.
    let o = run(
        &net,
        &[
            "channel",
            "create",
            "--channel-tx",
            &tx,
            "--sign-with",
            &cosigner,
        ],
    )
    .await;
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("status: SUCCESS"), "{}", stdout(&o));
    let genesis = read_block(&net.dir.path().join("newchan.block"));
    assert_eq!(genesis.header.as_ref().unwrap().number, 0);
    {
        let st = net.state.lock().unwrap();
        assert_eq!(st.received.len(), 1);
        let (ch, cue) = open_config_update_tx(&st.received[0]).unwrap();
        assert_eq!(ch, "newchan");
        assert_eq!(cue.signatures.len(), 2, "co-signer then submitter");
    }

    // Fetch the config block, with Fabric's default file name and an explicit one.
    let o = run(&net, &["channel", "fetch", "config", "-c", "newchan"]).await;
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        read_block(&net.dir.path().join("newchan_config.block")),
        genesis
    );
    let out = net.dir.path().join("b0.block");
    let o = run(
        &net,
        &[
            "channel",
            "fetch",
            "0",
            out.to_str().unwrap(),
            "-c",
            "newchan",
        ],
    )
    .await;
    assert!(o.status.success(), "{o:?}");
    assert_eq!(read_block(&out), genesis);
    // Unknown channel: an error.
    let o = run(&net, &["channel", "fetch", "newest", "-c", "nochan"]).await;
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("NOT_FOUND"));

    // Batch size update.
    let o = run(
        &net,
        &[
            "channel",
            "update",
            "-c",
            "newchan",
            "--max-message-count",
            "42",
        ],
    )
    .await;
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("500 -> 42"), "{}", stdout(&o));
    let cu_bytes = {
        let st = net.state.lock().unwrap();
        let (ch, cue) = open_config_update_tx(st.received.last().unwrap()).unwrap();
        assert_eq!(ch, "newchan");
        assert_eq!(cue.signatures.len(), 1);
        let cu = ConfigUpdate::decode(cue.config_update.as_slice()).unwrap();
        let v = &cu.write_set.as_ref().unwrap().groups[ORDERER_GROUP].values[BATCH_SIZE_KEY];
        assert_eq!(v.version, 1);
        assert_eq!(
            BatchSize::decode(v.value.as_slice())
                .unwrap()
                .max_message_count,
            42
        );
        cue.config_update
    };

    // update -f with a bare ConfigUpdate; a refusal is reported with exit code 1.
    let f = net.dir.path().join("update.pb");
    let mut cu = ConfigUpdate::decode(cu_bytes.as_slice()).unwrap();
    std::fs::write(&f, &cu_bytes).unwrap();
    let o = run(&net, &["channel", "update", "-f", f.to_str().unwrap()]).await;
    assert!(o.status.success(), "{o:?}");
    cu.channel_id = "refused".into();
    std::fs::write(&f, cu.encode_to_vec()).unwrap();
    let o = run(&net, &["channel", "update", "-f", f.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let out = stdout(&o);
    assert!(
        out.contains("status: BAD_REQUEST") && out.contains("implicit policy"),
        "{out}"
    );
}
