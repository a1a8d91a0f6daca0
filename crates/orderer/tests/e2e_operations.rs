//! End-to-end, on the real binary: gRPC TLS and mutual TLS (with Deliver's
//! `tls_cert_hash` binding), the operations endpoint (`/healthz`,
//! `/metrics`, `/logspec`, `/version`) and graceful shutdown on SIGTERM.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fabric_common::envelope::{seek_envelope, seek_newest, seek_oldest, seek_specified};
use fabric_protos::common::Status;
use fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use fabric_protos::orderer::SeekInfo;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use sha2::Digest;
use support::kafka::unreachable_kafka_net;
use support::*;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

fn seek(
    start: fabric_protos::orderer::SeekPosition,
    stop: fabric_protos::orderer::SeekPosition,
) -> SeekInfo {
    SeekInfo {
        start: Some(start),
        stop: Some(stop),
        ..Default::default()
    }
}

fn all() -> SeekInfo {
    seek(seek_oldest(), seek_newest())
}

// ---- TLS material ----

struct Ca {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The org's CA, which `DevOrg` also lists as the MSP's TLS CA.
    fn of_org(org: &fabric_common::devcrypto::DevOrg) -> Ca {
        let key = std::fs::read_to_string(org.dir.join("ca/priv_sk")).unwrap();
        Ca {
            cert_pem: org.ca_cert_pem().to_string(),
            issuer: Issuer::from_ca_cert_pem(org.ca_cert_pem(), KeyPair::from_pem(&key).unwrap())
                .unwrap(),
        }
    }

    fn issue(&self, name: &str, server: bool) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let sans = if server {
            vec!["localhost".to_string(), "127.0.0.1".to_string()]
        } else {
            vec![]
        };
        let mut params = CertificateParams::new(sans).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

struct TlsFiles {
    ca: Ca,
    ca_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
}

fn tls_files(dir: &Path) -> TlsFiles {
    let ca = Ca::new("tlsca.example.com");
    let server = ca.issue("orderer.example.com", true);
    std::fs::create_dir_all(dir).unwrap();
    let ca_file = dir.join("ca.crt");
    let cert_file = dir.join("server.crt");
    let key_file = dir.join("server.key");
    std::fs::write(&ca_file, &ca.cert_pem).unwrap();
    std::fs::write(&cert_file, &server.cert_pem).unwrap();
    std::fs::write(&key_file, &server.key_pem).unwrap();
    TlsFiles {
        ca,
        ca_file,
        cert_file,
        key_file,
    }
}

async fn tls_client(
    port: u16,
    ca_pem: &str,
    identity: Option<&Leaf>,
) -> Result<AtomicBroadcastClient<Channel>, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some(id) = identity {
        tls = tls.identity(Identity::from_pem(&id.cert_pem, &id.key_pem));
    }
    let ch = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    Ok(AtomicBroadcastClient::new(ch))
}

async fn plaintext_client(port: u16) -> Result<AtomicBroadcastClient<Channel>, String> {
    let ch = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(AtomicBroadcastClient::new(ch))
}

/// A Broadcast of one envelope: `Ok(status)` or the transport error.
async fn try_broadcast_one(
    client: &mut AtomicBroadcastClient<Channel>,
    net: &Net,
    data: &[u8],
) -> Result<i32, String> {
    let env = tx(&net.client, CHANNEL, data.to_vec());
    let mut resp = client
        .broadcast(tokio_stream::iter(vec![env]))
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    match resp.message().await {
        Ok(Some(r)) => Ok(r.status),
        Ok(None) => Err("stream ended without a response".into()),
        Err(e) => Err(e.to_string()),
    }
}

// ---- HTTP ----

struct HttpResponse {
    status: u16,
    body: String,
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`).
fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> HttpResponse {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").expect("HTTP response head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    } else {
        rest.to_string()
    };
    HttpResponse { status, body }
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Minimal Prometheus text-format parser: every sample as
/// `(name, labels, value)`.
fn parse_prometheus(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let value: f64 = value.parse().expect("sample value");
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = BTreeMap::new();
                // Label values here never contain `",`.
                for pair in body.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").expect("label pair");
                    labels.insert(k.to_string(), v.trim_end_matches('"').to_string());
                }
                (name.to_string(), labels)
            }
        };
        out.push((name, labels, value));
    }
    out
}

/// The sum of the samples of `name` whose labels include `want`.
fn sample(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    parse_prometheus(text)
        .into_iter()
        .filter(|(n, labels, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

fn sigterm(node: &Node) {
    let st = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(node.child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

// ---- tests ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_is_served_and_plaintext_client_is_refused() {
    let net = net(100, 10, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let t = tls_files(&net.dir.path().join("tls"));
    let port = free_port();
    let ops = free_port();
    let (cert, key) = (t.cert_file.to_str().unwrap(), t.key_file.to_str().unwrap());
    let ops_addr = format!("127.0.0.1:{ops}");
    let node = Node::start_env(
        &net,
        &ledger,
        port,
        "SampleOrg",
        true,
        &[
            ("ORDERER_GENERAL_TLS_ENABLED", "true"),
            ("ORDERER_GENERAL_TLS_CERTIFICATE", cert),
            ("ORDERER_GENERAL_TLS_PRIVATEKEY", key),
            ("ORDERER_OPERATIONS_LISTENADDRESS", &ops_addr),
        ],
        true,
    );

    let mut client = tls_client(port, &t.ca.cert_pem, None).await.unwrap();
    assert_eq!(
        try_broadcast_one(&mut client, &net, b"over tls").await,
        Ok(Status::Success as i32)
    );
    let (blocks, status) = deliver(&mut client, &net.client, CHANNEL, all()).await;
    assert_eq!(status, Some(Status::Success));
    assert_eq!(blocks.len(), 2);

    // A plaintext client gets nowhere: no connection, or a failed call.
    match plaintext_client(port).await {
        Err(_) => {}
        Ok(mut c) => {
            let r = try_broadcast_one(&mut c, &net, b"plaintext").await;
            assert!(r.is_err(), "plaintext broadcast must fail, got {r:?}");
        }
    }
    // A client that does not trust the server's CA is refused too.
    let other = Ca::new("other-ca");
    match tls_client(port, &other.cert_pem, None).await {
        Err(_) => {}
        Ok(mut c) => assert!(try_broadcast_one(&mut c, &net, b"x").await.is_err()),
    }

    // The operations endpoint is plain HTTP; /metrics is off without the
    // prometheus provider, as in Fabric.
    node.wait_port(ops, Duration::from_secs(20));
    assert_eq!(http(ops, "GET", "/healthz", None).status, 200);
    assert_eq!(http(ops, "GET", "/metrics", None).status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_binds_deliver_to_the_client_certificate() {
    let net = net(100, 10, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let t = tls_files(&net.dir.path().join("tls"));
    let client_ca = Ca::new("client-tlsca.example.com");
    let client_ca_file = net.dir.path().join("tls/client-ca.crt");
    std::fs::write(&client_ca_file, &client_ca.cert_pem).unwrap();
    let port = free_port();
    let roots = format!("[{}]", client_ca_file.display());
    let node = Node::start_env(
        &net,
        &ledger,
        port,
        "SampleOrg",
        true,
        &[
            ("ORDERER_GENERAL_TLS_ENABLED", "true"),
            (
                "ORDERER_GENERAL_TLS_CERTIFICATE",
                t.cert_file.to_str().unwrap(),
            ),
            (
                "ORDERER_GENERAL_TLS_PRIVATEKEY",
                t.key_file.to_str().unwrap(),
            ),
            (
                "ORDERER_GENERAL_TLS_ROOTCAS",
                &format!("[{}]", t.ca_file.display()),
            ),
            ("ORDERER_GENERAL_TLS_CLIENTAUTHREQUIRED", "true"),
            ("ORDERER_GENERAL_TLS_CLIENTROOTCAS", &roots),
        ],
        true,
    );
    let me = client_ca.issue("User1@example.com", false);
    let someone_else = client_ca.issue("User2@example.com", false);
    let my_hash = sha2::Sha256::digest(&me.der).to_vec();
    let their_hash = sha2::Sha256::digest(&someone_else.der).to_vec();

    let mut client = tls_client(port, &t.ca.cert_pem, Some(&me)).await.unwrap();
    assert_eq!(
        try_broadcast_one(&mut client, &net, b"mutual").await,
        Ok(Status::Success as i32)
    );

    let envs = |hash: Vec<u8>| vec![seek_envelope(CHANNEL, Some(&net.client), &all(), hash)];
    // Bound to this connection's certificate: served.
    let r = deliver_many(&mut client, envs(my_hash.clone())).await;
    assert_eq!(r[0].1, Some(Status::Success));
    assert_eq!(r[0].0.len(), 2);
    // Another certificate's hash: BAD_REQUEST, no block.
    let r = deliver_many(&mut client, envs(their_hash)).await;
    assert_eq!(r[0], (vec![], Some(Status::BadRequest)));
    // No hash at all: BAD_REQUEST.
    let r = deliver_many(&mut client, envs(vec![])).await;
    assert_eq!(r[0], (vec![], Some(Status::BadRequest)));
    // The binding is checked before the channel: an unknown channel with a
    // wrong hash is BAD_REQUEST, with the right one NOT_FOUND.
    let r = deliver_many(
        &mut client,
        vec![seek_envelope(
            "nochannel",
            Some(&net.client),
            &all(),
            vec![1; 32],
        )],
    )
    .await;
    assert_eq!(r[0].1, Some(Status::BadRequest));
    let r = deliver_many(
        &mut client,
        vec![seek_envelope(
            "nochannel",
            Some(&net.client),
            &all(),
            my_hash.clone(),
        )],
    )
    .await;
    assert_eq!(r[0].1, Some(Status::NotFound));

    // The other client, bound to its own certificate, is served too.
    let mut other = tls_client(port, &t.ca.cert_pem, Some(&someone_else))
        .await
        .unwrap();
    let r = deliver_many(
        &mut other,
        vec![seek_envelope(
            CHANNEL,
            Some(&net.client),
            &seek(seek_specified(1), seek_specified(1)),
            sha2::Sha256::digest(&someone_else.der).to_vec(),
        )],
    )
    .await;
    assert_eq!(r[0].1, Some(Status::Success));
    assert_eq!(r[0].0.len(), 1);

    // A client certificate from the TLS CA of an org in the channel's config
    // (not in ClientRootCAs) is accepted too, as in Fabric.
    let org_client = Ca::of_org(&net.org).issue("User3@example.com", false);
    let mut c = tls_client(port, &t.ca.cert_pem, Some(&org_client))
        .await
        .unwrap();
    let r = deliver_many(
        &mut c,
        vec![seek_envelope(
            CHANNEL,
            Some(&net.client),
            &all(),
            sha2::Sha256::digest(&org_client.der).to_vec(),
        )],
    )
    .await;
    assert_eq!(r[0].1, Some(Status::Success));

    // No client certificate, or one from a CA neither in ClientRootCAs nor
    // in a channel MSP: refused at the TLS handshake.
    match tls_client(port, &t.ca.cert_pem, None).await {
        Err(_) => {}
        Ok(mut c) => assert!(try_broadcast_one(&mut c, &net, b"anon").await.is_err()),
    }
    let rogue = Ca::new("rogue-ca").issue("User1@example.com", false);
    match tls_client(port, &t.ca.cert_pem, Some(&rogue)).await {
        Err(_) => {}
        Ok(mut c) => assert!(try_broadcast_one(&mut c, &net, b"rogue").await.is_err()),
    }
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_endpoint_healthz_metrics_logspec_version() {
    let net = net(100, 5, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let port = free_port();
    let ops = free_port();
    let ops_addr = format!("127.0.0.1:{ops}");
    let node = Node::start_env(
        &net,
        &ledger,
        port,
        "SampleOrg",
        true,
        &[
            ("ORDERER_OPERATIONS_LISTENADDRESS", &ops_addr),
            ("ORDERER_METRICS_PROVIDER", "prometheus"),
        ],
        true,
    );
    node.wait_port(ops, Duration::from_secs(20));

    // /healthz: every chain ready.
    let h = http(ops, "GET", "/healthz", None);
    assert_eq!(h.status, 200, "{}", h.body);
    let v = json(&h.body);
    assert_eq!(v["status"], "OK");
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
    assert!(v.get("failed_checks").is_none());
    assert_eq!(http(ops, "POST", "/healthz", None).status, 405);

    // /version.
    let v = http(ops, "GET", "/version", None);
    assert_eq!(v.status, 200);
    assert_eq!(json(&v.body)["Version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(http(ops, "DELETE", "/version", None).status, 400);

    // /metrics moves with the load.
    let before = http(ops, "GET", "/metrics", None);
    assert_eq!(before.status, 200);
    let ok = [
        ("channel", CHANNEL),
        ("type", "MESSAGE"),
        ("status", "SUCCESS"),
    ];
    assert_eq!(sample(&before.body, "broadcast_processed_count", &ok), 0.0);
    assert_eq!(
        sample(
            &before.body,
            "ledger_blockchain_height",
            &[("channel", CHANNEL)]
        ),
        1.0
    );
    let mut client = node.client().await;
    let envs = (0..20u32)
        .map(|i| tx(&net.client, CHANNEL, format!("m{i}").into_bytes()))
        .collect();
    let resps = broadcast(&mut client, envs).await;
    assert!(resps.iter().all(|r| r.status == Status::Success as i32));
    let (blocks, status) = deliver(&mut client, &net.client, CHANNEL, all()).await;
    assert_eq!(status, Some(Status::Success));
    assert_eq!(blocks.len(), 5, "genesis + 20 envelopes in blocks of 5");
    // A refused envelope is counted under its status.
    let unknown = broadcast(
        &mut client,
        vec![tx(&net.client, "nosuchchannel", b"x".to_vec())],
    )
    .await;
    assert_eq!(unknown[0].status, Status::NotFound as i32);

    let after = http(ops, "GET", "/metrics", None).body;
    assert_eq!(sample(&after, "broadcast_processed_count", &ok), 20.0);
    assert_eq!(
        sample(
            &after,
            "broadcast_processed_count",
            &[("channel", "nosuchchannel"), ("status", "NOT_FOUND")]
        ),
        1.0
    );
    assert_eq!(
        sample(&after, "broadcast_validate_duration_count", &ok),
        20.0
    );
    assert_eq!(
        sample(&after, "broadcast_enqueue_duration_count", &ok),
        20.0
    );
    assert_eq!(
        sample(&after, "ledger_blockchain_height", &[("channel", CHANNEL)]),
        5.0
    );
    let labels = [
        ("channel", CHANNEL),
        ("filtered", "false"),
        ("data_type", "block"),
    ];
    assert_eq!(sample(&after, "deliver_blocks_sent", &labels), 5.0);
    assert_eq!(sample(&after, "deliver_requests_received", &labels), 1.0);
    assert_eq!(
        sample(
            &after,
            "deliver_requests_completed",
            &[("channel", CHANNEL), ("success", "true")]
        ),
        1.0
    );
    assert!(sample(&after, "deliver_streams_opened", &[]) >= 1.0);
    assert_eq!(
        sample(
            &after,
            "blockcutter_block_fill_duration_count",
            &[("channel", CHANNEL)]
        ),
        4.0
    );
    assert_eq!(
        sample(
            &after,
            "fabric_version",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    // Fabric's names have no _total, but for the process collector's (Go's
    // client has the same one).
    assert!(
        after
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains("_total"))
            .all(|l| l.starts_with("process_cpu_seconds_total")),
        "Fabric's names have no _total"
    );
    assert!(after.contains("process_resident_memory_bytes"));

    // /logspec round trip, and the new spec takes effect.
    let g = http(ops, "GET", "/logspec", None);
    assert_eq!(g.status, 200);
    assert_eq!(json(&g.body)["spec"], "info");
    let log_has = |needle: &str| std::fs::read_to_string(&node.log).unwrap().contains(needle);
    assert!(!log_has("-> DEBU"), "no debug output at info");
    let p = http(
        ops,
        "PUT",
        "/logspec",
        Some(r#"{"spec":"info:orderer.consensus.solo=debug"}"#),
    );
    assert_eq!(p.status, 204, "{}", p.body);
    let g = http(ops, "GET", "/logspec", None);
    assert_eq!(json(&g.body)["spec"], "orderer.consensus.solo=debug:info");
    let resps = broadcast(
        &mut client,
        vec![tx(&net.client, CHANNEL, b"debug now".to_vec())],
    )
    .await;
    assert_eq!(resps[0].status, Status::Success as i32);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !log_has("wrote block") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(log_has("wrote block"), "solo debug line after the PUT");
    let bad = http(ops, "PUT", "/logspec", Some(r#"{"spec":"orderer=loud"}"#));
    assert_eq!(bad.status, 400);
    assert!(json(&bad.body)["error"]
        .as_str()
        .unwrap()
        .contains("invalid logging specification"));
    let g = http(ops, "GET", "/logspec", None);
    assert_eq!(json(&g.body)["spec"], "orderer.consensus.solo=debug:info");
    assert_eq!(http(ops, "PUT", "/logspec", Some("not json")).status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_zero_in_bounded_time_and_the_ledger_reopens() {
    // A 1.5 s batch timeout: envelopes sent just before SIGTERM are still
    // waiting for their block when it arrives.
    let net = net(1500, 10, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let port = free_port();
    let ops = free_port();
    let ops_addr = format!("127.0.0.1:{ops}");
    let env = [("ORDERER_OPERATIONS_LISTENADDRESS", ops_addr.as_str())];
    let mut node = Node::start_env(&net, &ledger, port, "SampleOrg", true, &env, true);
    let mut client = node.client().await;
    let envs = (0..25u32)
        .map(|i| tx(&net.client, CHANNEL, format!("s{i}").into_bytes()))
        .collect();
    let resps = broadcast(&mut client, envs).await;
    assert!(resps.iter().all(|r| r.status == Status::Success as i32));
    let (blocks, status) = deliver(&mut client, &net.client, CHANNEL, all()).await;
    assert_eq!(status, Some(Status::Success));

    // A Deliver stream waiting for a block that will never come, and an idle
    // Broadcast stream: neither may hold the shutdown up.
    let mut waiting = node.client().await;
    let (wtx, wrx) = tokio::sync::mpsc::channel(1);
    wtx.send(seek_envelope(
        CHANNEL,
        Some(&net.client),
        &seek(seek_newest(), seek_specified(u64::MAX)),
        vec![],
    ))
    .await
    .unwrap();
    let mut waiting_stream = waiting
        .deliver(tokio_stream::wrappers::ReceiverStream::new(wrx))
        .await
        .unwrap()
        .into_inner();
    let (_btx, brx) = tokio::sync::mpsc::channel::<fabric_protos::common::Envelope>(1);
    let mut idle = node.client().await;
    let _idle_stream = idle
        .broadcast(tokio_stream::wrappers::ReceiverStream::new(brx))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Broadcasts in flight when the signal arrives.
    let mut inflight_client = node.client().await;
    let inflight_envs: Vec<_> = (0..3u32)
        .map(|i| tx(&net.client, CHANNEL, format!("inflight{i}").into_bytes()))
        .collect();
    let inflight =
        tokio::spawn(async move { broadcast(&mut inflight_client, inflight_envs).await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let t0 = Instant::now();
    sigterm(&node);
    // No new connection is taken once shutdown began (the process still runs).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(node.alive());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the gRPC listener is closed"
    );
    let status = loop {
        if let Some(st) = node.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "orderer still running 10 s after SIGTERM: {}",
            std::fs::read_to_string(&node.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log = std::fs::read_to_string(&node.log).unwrap();
    assert_eq!(status.code(), Some(0), "exit status; log:\n{log}");
    assert!(log.contains("chains stopped"), "{log}");
    // The waiting Deliver got the newest block (and the in-flight one), then
    // SERVICE_UNAVAILABLE when the chain stopped, or its connection was cut:
    // it was not left hanging.
    use fabric_protos::orderer::deliver_response::Type;
    let mut blocks_seen = 0;
    let mut last_status = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), waiting_stream.message()).await {
            Err(_) => panic!("the waiting deliver stream must end"),
            Ok(Ok(Some(m))) => match m.r#type {
                Some(Type::Block(_)) => blocks_seen += 1,
                Some(Type::Status(s)) => last_status = Some(s),
                None => panic!("empty deliver response"),
            },
            Ok(Ok(None)) | Ok(Err(_)) => break,
        }
    }
    assert!(blocks_seen >= 1, "the newest block was delivered");
    assert!(
        last_status.is_none() || last_status == Some(Status::ServiceUnavailable as i32),
        "{last_status:?}"
    );
    // The in-flight envelopes were ordered and acknowledged before the chain stopped.
    let inflight = inflight.await.unwrap();
    assert_eq!(inflight.len(), 3);
    assert!(
        inflight.iter().all(|r| r.status == Status::Success as i32),
        "{inflight:?}"
    );
    drop(client);
    drop(waiting);
    drop(idle);

    let node = Node::start_env(&net, &ledger, port, "SampleOrg", true, &env, true);
    let mut client = node.client().await;
    let (again, status) = deliver(&mut client, &net.client, CHANNEL, all()).await;
    assert_eq!(status, Some(Status::Success));
    assert_eq!(again.len(), blocks.len() + 1);
    assert_eq!(again[..blocks.len()], blocks[..]);
    assert_eq!(
        block_payloads(again.last().unwrap()),
        vec![
            b"inflight0".to_vec(),
            b"inflight1".to_vec(),
            b"inflight2".to_vec()
        ]
    );
    verify_chain(&again, net.org.ca_cert_pem());
    let r = broadcast(
        &mut client,
        vec![tx(&net.client, CHANNEL, b"after".to_vec())],
    )
    .await;
    assert_eq!(r[0].status, Status::Success as i32);
    node.wait_port(ops, Duration::from_secs(20));
    assert_eq!(http(ops, "GET", "/healthz", None).status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_503_while_a_kafka_chain_cannot_reach_kafka() {
    let net = unreachable_kafka_net();
    let ledger = net.dir.path().join("ledger");
    let port = free_port();
    let ops = free_port();
    let ops_addr = format!("127.0.0.1:{ops}");
    let mut node = Node::start_env(
        &net,
        &ledger,
        port,
        "SampleOrg",
        true,
        &[
            ("ORDERER_OPERATIONS_LISTENADDRESS", &ops_addr),
            ("ORDERER_KAFKA_RETRY_SHORTINTERVAL", "200ms"),
        ],
        true,
    );
    node.wait_port(ops, Duration::from_secs(20));
    let h = http(ops, "GET", "/healthz", None);
    assert_eq!(h.status, 503, "{}", h.body);
    let v = json(&h.body);
    assert_eq!(v["status"], "Service Unavailable");
    assert!(v["time"].is_string());
    let failed = v["failed_checks"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{v}");
    assert_eq!(failed[0]["component"], format!("{CHANNEL}/0"));
    assert!(failed[0]["reason"]
        .as_str()
        .unwrap()
        .contains("not completed booting"));

    // SIGTERM while the chain is still retrying: exit 0, in bounded time.
    let t0 = Instant::now();
    sigterm(&node);
    let status = loop {
        if let Some(st) = node.child.try_wait().unwrap() {
            break st;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
}

/// An orderer-org group for `org`, as configtxgen encodes it.
fn orderer_org_group(org: &fabric_common::devcrypto::DevOrg) -> fabric_protos::common::ConfigGroup {
    let dev = fabric_configtx::dev::DevNetwork {
        msp_id: org.mspid.clone(),
        org_name: org.mspid.clone(),
        ..fabric_configtx::dev::DevNetwork::new(org.msp_dir())
    };
    fabric_configtx::encoder::new_orderer_org_group(&dev.organization()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_follows_config_updates_and_certificate_files_without_a_restart() {
    use fabric_protos::common::{ConfigUpdateEnvelope, HeaderType};
    use prost::Message;
    let net = net(100, 10, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let t = tls_files(&net.dir.path().join("tls"));
    let port = free_port();
    let node = Node::start_env(
        &net,
        &ledger,
        port,
        "SampleOrg",
        true,
        &[
            ("ORDERER_GENERAL_TLS_ENABLED", "true"),
            (
                "ORDERER_GENERAL_TLS_CERTIFICATE",
                t.cert_file.to_str().unwrap(),
            ),
            (
                "ORDERER_GENERAL_TLS_PRIVATEKEY",
                t.key_file.to_str().unwrap(),
            ),
            ("ORDERER_GENERAL_TLS_CLIENTAUTHREQUIRED", "true"),
        ],
        true,
    );
    // SampleOrg's TLS CA (the channel's only org) is the only client root.
    let member = Ca::of_org(&net.org).issue("User1@example.com", false);
    let mut c = tls_client(port, &t.ca.cert_pem, Some(&member))
        .await
        .unwrap();
    assert_eq!(
        try_broadcast_one(&mut c, &net, b"member").await,
        Ok(Status::Success as i32)
    );
    let org2 = fabric_common::devcrypto::DevOrg::create(
        &net.dir.path().join("org2"),
        "Org2MSP",
        "org2.example.com",
    )
    .unwrap();
    let outsider = Ca::of_org(&org2).issue("User1@org2.example.com", false);
    let refused = match tls_client(port, &t.ca.cert_pem, Some(&outsider)).await {
        Ok(mut c) => try_broadcast_one(&mut c, &net, b"outsider").await.is_err(),
        Err(_) => true,
    };
    assert!(
        refused,
        "Org2's certificate must be refused before Org2 is in a channel"
    );

    // A config update adds Org2 to the Orderer group.
    let hash = sha2::Sha256::digest(&member.der).to_vec();
    let r = deliver_many(
        &mut c,
        vec![seek_envelope(CHANNEL, Some(&net.client), &all(), hash)],
    )
    .await;
    let genesis = &r[0].0[0];
    let env =
        fabric_protos::common::Envelope::decode(genesis.data.as_ref().unwrap().data[0].as_slice())
            .unwrap();
    let payload = fabric_protos::common::Payload::decode(env.payload.as_slice()).unwrap();
    let cfg_env = fabric_protos::common::ConfigEnvelope::decode(payload.data.as_slice()).unwrap();
    let original = cfg_env.config.unwrap().channel_group.unwrap();
    let mut updated = original.clone();
    updated
        .groups
        .get_mut("Orderer")
        .unwrap()
        .groups
        .insert("Org2MSP".into(), orderer_org_group(&org2));
    let mut update = fabric_configtx::update::compute(&original, &updated).unwrap();
    update.channel_id = CHANNEL.to_string();
    let mut cue = ConfigUpdateEnvelope {
        config_update: update.encode_to_vec(),
        signatures: vec![],
    };
    let shdr = net.client.new_signature_header().encode_to_vec();
    let mut msg = shdr.clone();
    msg.extend_from_slice(&cue.config_update);
    cue.signatures.push(fabric_protos::common::ConfigSignature {
        signature_header: shdr,
        signature: net.client.sign(&msg),
    });
    let upd = fabric_common::envelope::create_signed_envelope(
        HeaderType::ConfigUpdate,
        CHANNEL,
        Some(&net.client),
        cue.encode_to_vec(),
        &fabric_common::envelope::EnvelopeOptions::default(),
    );
    let r = broadcast(&mut c, vec![upd]).await;
    assert_eq!(r[0].status, Status::Success as i32, "{}", r[0].info);

    // Without a restart, Org2's certificate is now accepted.
    let deadline = Instant::now() + Duration::from_secs(10);
    let accepted = loop {
        if let Ok(mut c2) = tls_client(port, &t.ca.cert_pem, Some(&outsider)).await {
            if try_broadcast_one(&mut c2, &net, b"org2 now").await == Ok(Status::Success as i32) {
                break true;
            }
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        accepted,
        "Org2's client certificate after the config update: {}",
        std::fs::read_to_string(&node.log).unwrap()
    );
    let log = std::fs::read_to_string(&node.log).unwrap();
    assert!(log.contains("client root CAs rebuilt"), "{log}");

    // The server certificate is replaced on disk: new handshakes get it.
    let ca2 = Ca::new("tlsca2.example.com");
    let server2 = ca2.issue("orderer.example.com", true);
    std::fs::write(&t.key_file, &server2.key_pem).unwrap();
    std::fs::write(&t.cert_file, &server2.cert_pem).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let rotated = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Ok(mut c3) = tls_client(port, &ca2.cert_pem, Some(&member)).await {
            if try_broadcast_one(&mut c3, &net, b"rotated").await == Ok(Status::Success as i32) {
                break true;
            }
        }
        if Instant::now() > deadline {
            break false;
        }
    };
    assert!(rotated, "the new server certificate was not served");
    let old_root_refused = match tls_client(port, &t.ca.cert_pem, Some(&member)).await {
        Ok(mut c) => try_broadcast_one(&mut c, &net, b"old root").await.is_err(),
        Err(_) => true,
    };
    assert!(old_root_refused, "the old certificate is still served");
}
