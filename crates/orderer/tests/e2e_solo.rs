//! End-to-end: the real `orderer` binary on a free port, configured only
//! through `ORDERER_*` variables, driven over gRPC.

mod support;

use fabric_common::envelope::{
    create_signed_envelope, seek_envelope, seek_newest, seek_oldest, seek_specified,
    EnvelopeOptions,
};
use fabric_protos::common::{Envelope, HeaderType, Status};
use fabric_protos::orderer::{seek_info, SeekInfo};
use support::*;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_2000_in_order_over_a_verified_chain_survives_kill9() {
    let net = net(200, 100, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let port = free_port();
    let mut node = Node::start(&net, &ledger, port);
    let mut client = node.client().await;

    let envs: Vec<Envelope> = (0..2000u32)
        .map(|i| tx(&net.client, CHANNEL, format!("counter:{i}").into_bytes()))
        .collect();
    let resps = broadcast(&mut client, envs).await;
    assert_eq!(resps.len(), 2000);
    assert!(
        resps.iter().all(|r| r.status == Status::Success as i32),
        "{:?}",
        resps.iter().find(|r| r.status != 200)
    );

    let (blocks, status) = deliver(
        &mut client,
        &net.client,
        CHANNEL,
        seek(seek_oldest(), seek_newest()),
    )
    .await;
    assert_eq!(status, Some(Status::Success));
    verify_chain(&blocks, net.org.ca_cert_pem());
    let values: Vec<Vec<u8>> = blocks.iter().skip(1).flat_map(block_payloads).collect();
    let want: Vec<Vec<u8>> = (0..2000u32)
        .map(|i| format!("counter:{i}").into_bytes())
        .collect();
    assert_eq!(values, want, "every counter value exactly once, in order");
    // MaxMessageCount 100 → 20 full blocks after genesis (or a few more
    // when the batch timer cut one short on a busy machine).
    assert_cut_by_count(&blocks, 2000, 100, 3);
    let height = blocks.len();

    // kill -9 and restart on the same ledger: same chain, still serving.
    node.kill9();
    let node = Node::start(&net, &ledger, port);
    let mut client = node.client().await;
    let (again, status) = deliver(
        &mut client,
        &net.client,
        CHANNEL,
        seek(seek_oldest(), seek_newest()),
    )
    .await;
    assert_eq!(status, Some(Status::Success));
    assert_eq!(again, blocks);
    let resps = broadcast(
        &mut client,
        vec![tx(&net.client, CHANNEL, b"after-restart".to_vec())],
    )
    .await;
    assert_eq!(resps[0].status, Status::Success as i32);
    let (tail, _) = deliver(
        &mut client,
        &net.client,
        CHANNEL,
        seek(seek_newest(), seek_newest()),
    )
    .await;
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].header.as_ref().unwrap().number as usize, height);
    assert_eq!(block_payloads(&tail[0]), vec![b"after-restart".to_vec()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_broadcasts_get_fabric_statuses_and_the_node_keeps_serving() {
    let net = net(100, 10, 4096);
    let ledger = net.dir.path().join("ledger");
    let mut node = Node::start(&net, &ledger, free_port());
    let mut client = node.client().await;

    let cases: Vec<(&str, Envelope, Status)> = vec![
        (
            "garbage payload",
            Envelope {
                payload: vec![0xff, 0xff, 0xff],
                signature: vec![],
            },
            Status::BadRequest,
        ),
        (
            "empty payload",
            Envelope {
                payload: vec![],
                signature: vec![1],
            },
            Status::BadRequest,
        ),
        (
            "unknown channel",
            tx(&net.client, "nosuchchannel", b"x".to_vec()),
            Status::NotFound,
        ),
        (
            "CONFIG sent directly",
            create_signed_envelope(
                HeaderType::Config,
                CHANNEL,
                Some(&net.client),
                vec![],
                &EnvelopeOptions::default(),
            ),
            Status::BadRequest,
        ),
        (
            "ORDERER_TRANSACTION sent directly",
            create_signed_envelope(
                HeaderType::OrdererTransaction,
                CHANNEL,
                Some(&net.client),
                vec![],
                &EnvelopeOptions::default(),
            ),
            Status::BadRequest,
        ),
        (
            "oversized",
            tx(&net.client, CHANNEL, vec![7u8; 5000]),
            Status::BadRequest,
        ),
    ];
    for (name, bad, want) in cases {
        // good, bad, good: the bad one is answered and the stream ends there.
        let good1 = tx(&net.client, CHANNEL, format!("before {name}").into_bytes());
        let good2 = tx(&net.client, CHANNEL, format!("after {name}").into_bytes());
        let resps = broadcast(&mut client, vec![good1, bad, good2]).await;
        assert_eq!(resps.len(), 2, "{name}: stream closes after the failure");
        assert_eq!(resps[0].status, Status::Success as i32, "{name}");
        assert_eq!(resps[1].status, want as i32, "{name}: {}", resps[1].info);
        assert!(!resps[1].info.is_empty(), "{name}: info explains");
    }
    // Exactly at the limit is accepted: len(payload)+len(signature) == AbsoluteMaxBytes.
    let probe = tx(&net.client, CHANNEL, vec![]);
    let overhead = probe.payload.len() + probe.signature.len();
    let mut fit = tx(&net.client, CHANNEL, vec![1u8; 4096 - overhead]);
    // Signature lengths vary by a byte or two; trim to fit exactly.
    while fit.payload.len() + fit.signature.len() > 4096 {
        fit = tx(
            &net.client,
            CHANNEL,
            vec![1u8; 4096 - overhead - (fit.payload.len() + fit.signature.len() - 4096)],
        );
    }
    let resps = broadcast(&mut client, vec![fit]).await;
    assert_eq!(resps[0].status, Status::Success as i32, "{}", resps[0].info);

    assert!(node.alive(), "node survived all bad input");
    // Everything acknowledged is in the chain, nothing else.
    let (blocks, status) = deliver(
        &mut client,
        &net.client,
        CHANNEL,
        seek(seek_oldest(), seek_newest()),
    )
    .await;
    assert_eq!(status, Some(Status::Success));
    verify_chain(&blocks, net.org.ca_cert_pem());
    let got: Vec<Vec<u8>> = blocks.iter().skip(1).flat_map(block_payloads).collect();
    assert_eq!(got.len(), 7);
    assert!(got
        .iter()
        .all(|p| p.starts_with(b"before ") || p.len() > 1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_seek_cases() {
    let net = net(100, 1, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let node = Node::start(&net, &ledger, free_port());
    let mut client = node.client().await;
    // MaxMessageCount 1: one block per envelope → blocks 0..=5.
    let resps = broadcast(
        &mut client,
        (0..5u8)
            .map(|i| tx(&net.client, CHANNEL, vec![i]))
            .collect(),
    )
    .await;
    assert!(resps.iter().all(|r| r.status == Status::Success as i32));
    let numbers = |bs: &[fabric_protos::common::Block]| {
        bs.iter()
            .map(|b| b.header.as_ref().unwrap().number)
            .collect::<Vec<_>>()
    };

    let c = &net.client;
    let (b, s) = deliver(&mut client, c, CHANNEL, seek(seek_oldest(), seek_oldest())).await;
    assert_eq!((numbers(&b), s), (vec![0], Some(Status::Success)));
    let (b, s) = deliver(&mut client, c, CHANNEL, seek(seek_newest(), seek_newest())).await;
    assert_eq!((numbers(&b), s), (vec![5], Some(Status::Success)));
    let (b, s) = deliver(
        &mut client,
        c,
        CHANNEL,
        seek(seek_specified(2), seek_specified(4)),
    )
    .await;
    assert_eq!((numbers(&b), s), (vec![2, 3, 4], Some(Status::Success)));
    let (b, s) = deliver(
        &mut client,
        c,
        CHANNEL,
        seek(seek_specified(4), seek_specified(2)),
    )
    .await;
    assert_eq!((numbers(&b), s), (vec![], Some(Status::BadRequest)));
    let (b, s) = deliver(
        &mut client,
        c,
        CHANNEL,
        seek(seek_specified(7), seek_specified(9)),
    )
    .await;
    assert_eq!(
        (numbers(&b), s),
        (vec![], Some(Status::NotFound)),
        "start beyond height"
    );
    let mut fail = seek(seek_specified(4), seek_specified(8));
    fail.behavior = seek_info::SeekBehavior::FailIfNotReady as i32;
    let (b, s) = deliver(&mut client, c, CHANNEL, fail).await;
    assert_eq!(
        (numbers(&b), s),
        (vec![4, 5], Some(Status::NotFound)),
        "FAIL_IF_NOT_READY stops at the height"
    );
    let (_, s) = deliver(
        &mut client,
        c,
        "nosuchchannel",
        seek(seek_oldest(), seek_newest()),
    )
    .await;
    assert_eq!(s, Some(Status::NotFound));
    let (_, s) = deliver(
        &mut client,
        c,
        CHANNEL,
        SeekInfo {
            start: Some(seek_oldest()),
            stop: None,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(s, Some(Status::BadRequest));

    // Several SeekInfos on one stream.
    let many = deliver_many(
        &mut client,
        vec![
            seek_envelope(
                CHANNEL,
                Some(c),
                &seek(seek_specified(1), seek_specified(1)),
                vec![],
            ),
            seek_envelope(
                CHANNEL,
                Some(c),
                &seek(seek_specified(3), seek_specified(5)),
                vec![],
            ),
        ],
    )
    .await;
    assert_eq!(
        (numbers(&many[0].0), many[0].1),
        (vec![1], Some(Status::Success))
    );
    assert_eq!(
        (numbers(&many[1].0), many[1].1),
        (vec![3, 4, 5], Some(Status::Success))
    );

    // Start == height blocks until the block exists; stop = 2^64-1 follows forever.
    let follow_env = seek_envelope(
        CHANNEL,
        Some(c),
        &seek(seek_specified(6), seek_specified(u64::MAX)),
        vec![],
    );
    let mut follower = node.client().await;
    let (tx_, rx) = tokio::sync::mpsc::channel(1);
    tx_.send(follow_env).await.unwrap();
    let mut stream = follower
        .deliver(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    for i in 0..3u8 {
        let r = broadcast(&mut client, vec![tx(c, CHANNEL, vec![100 + i])]).await;
        assert_eq!(r[0].status, Status::Success as i32);
        let m = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match m.r#type {
            Some(fabric_protos::orderer::deliver_response::Type::Block(b)) => {
                assert_eq!(b.header.unwrap().number, 6 + u64::from(i));
            }
            other => panic!("expected a block, got {other:?}"),
        }
    }
    drop(tx_);
    // Garbage seek envelope → BAD_REQUEST; the server keeps going.
    let bad = deliver_many(
        &mut client,
        vec![Envelope {
            payload: vec![1, 2, 3],
            signature: vec![],
        }],
    )
    .await;
    assert_eq!(bad[0].1, Some(Status::BadRequest));
    // Stale timestamp → BAD_REQUEST.
    let mut stale = seek_envelope(
        CHANNEL,
        Some(c),
        &seek(seek_oldest(), seek_oldest()),
        vec![],
    );
    {
        use prost::Message;
        let mut p = fabric_protos::common::Payload::decode(stale.payload.as_slice()).unwrap();
        let h = p.header.as_mut().unwrap();
        let mut ch =
            fabric_protos::common::ChannelHeader::decode(h.channel_header.as_slice()).unwrap();
        ch.timestamp.as_mut().unwrap().seconds -= 3600;
        h.channel_header = ch.encode_to_vec();
        stale.payload = p.encode_to_vec();
        stale.signature = c.sign(&stale.payload);
    }
    let r = deliver_many(&mut client, vec![stale]).await;
    assert_eq!(r[0].1, Some(Status::BadRequest));
}

/// Sends `once` twice and `other` in one stream, `once` again in another,
/// restarts the node (the window is rebuilt from the ledger), sends `once`
/// and `last`; returns the payloads of the chain after the genesis block.
async fn resend_across_a_restart(net: &Net) -> Vec<Vec<u8>> {
    let ledger = net.dir.path().join("ledger");
    let port = free_port();
    let node = Node::start(net, &ledger, port);
    let mut client = node.client().await;
    let once = tx(&net.client, CHANNEL, b"exactly-once".to_vec());
    let other = tx(&net.client, CHANNEL, b"other".to_vec());
    let r = broadcast(&mut client, vec![once.clone(), once.clone(), other]).await;
    assert!(
        r.iter().all(|r| r.status == Status::Success as i32),
        "{r:?}"
    );
    let r = broadcast(&mut client, vec![once.clone()]).await;
    assert_eq!(r[0].status, Status::Success as i32);
    drop(client);
    drop(node);
    let node = Node::start(net, &ledger, port);
    let mut client = node.client().await;
    let r = broadcast(
        &mut client,
        vec![once.clone(), tx(&net.client, CHANNEL, b"last".to_vec())],
    )
    .await;
    assert!(r.iter().all(|r| r.status == Status::Success as i32));
    let (blocks, _) = deliver(
        &mut client,
        &net.client,
        CHANNEL,
        seek(seek_oldest(), seek_newest()),
    )
    .await;
    blocks.iter().skip(1).flat_map(block_payloads).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_a_resent_envelope_is_in_the_chain_each_time_it_was_sent_as_in_fabric() {
    let net = net(100, 5, 1 << 20);
    let got = resend_across_a_restart(&net).await;
    let once = b"exactly-once".to_vec();
    assert_eq!(
        got,
        vec![
            once.clone(),
            once.clone(),
            b"other".to_vec(),
            once.clone(),
            once,
            b"last".to_vec()
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_exactly_once_capability_a_resent_envelope_is_in_the_chain_once_also_after_restart(
) {
    let net = net_with(CHANNEL, |dev| {
        dev.batch_timeout = fabric_configtx::units::GoDuration::from_millis(100);
        dev.batch_size.max_message_count = 5;
        dev.orderer_capabilities.push(EXACTLY_ONCE.into());
    });
    let got = resend_across_a_restart(&net).await;
    assert_eq!(
        got,
        vec![
            b"exactly-once".to_vec(),
            b"other".to_vec(),
            b"last".to_vec()
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_is_written_into_the_block_as_fabric_re_encodes_it() {
    use prost::Message;
    let net = net(100, 3, 1 << 20);
    let node = Node::start(&net, &net.dir.path().join("ledger"), free_port());
    let canonical = |d: &[u8]| tx(&net.client, CHANNEL, d.to_vec()).encode_to_vec();
    // 1: an unknown field after the known ones: kept as sent.
    let mut tail = canonical(b"tail");
    tail.extend([0x7a, 3, b'x', b'y', b'z']); // field 15, 3 bytes
                                              // 2: an unknown field first, signature before payload: Go writes the
                                              //    known fields first, in field order, then the unknown one.
    let e = tx(&net.client, CHANNEL, b"front".to_vec());
    let mut front = vec![0x7a, 1, b'!'];
    front.extend(
        Envelope {
            payload: vec![],
            signature: e.signature.clone(),
        }
        .encode_to_vec(),
    );
    front.extend(
        Envelope {
            payload: e.payload.clone(),
            signature: vec![],
        }
        .encode_to_vec(),
    );
    // 3: a plain envelope.
    let plain = canonical(b"plain");
    let r = broadcast_raw(node.port, vec![tail.clone(), front, plain.clone()]).await;
    assert!(
        r.iter().all(|r| r.status == Status::Success as i32),
        "{r:?}"
    );
    let mut c = node.client().await;
    let (blocks, s) = deliver(
        &mut c,
        &net.client,
        CHANNEL,
        seek(seek_oldest(), seek_specified(1)),
    )
    .await;
    assert_eq!(s, Some(Status::Success));
    let data = &blocks[1].data.as_ref().unwrap().data;
    assert_eq!(data[0], tail);
    let mut want = e.encode_to_vec();
    want.extend([0x7a, 1, b'!']);
    assert_eq!(data[1], want);
    assert_eq!(data[2], plain);
    verify_chain(&blocks, net.org.ca_cert_pem());
}
