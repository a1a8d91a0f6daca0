//! End-to-end: `General.Profile` serves a CPU profile of the real orderer
//! under load and a heap profile after it ordered envelopes, on Go's paths,
//! which `go tool pprof` reads; it is not bound unless enabled. Under
//! `CI=true` a missing Go toolchain fails the test.

mod support;

use std::process::Command;
use std::time::Duration;

use fabric_common::envelope::seek_envelope;
use fabric_protos::common::{Envelope, Status};
use fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use support::*;

fn profile_env(addr: &str, enabled: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ORDERER_GENERAL_PROFILE_ENABLED", enabled.to_string()),
        ("ORDERER_GENERAL_PROFILE_ADDRESS", addr.to_string()),
    ]
}

fn start(net: &Net, name: &str, env: &[(&'static str, String)]) -> Node {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Node::start_env(
        net,
        &net.dir.path().join(name),
        free_port(),
        "SampleOrg",
        true,
        &env,
        true,
    )
}

fn go() -> Option<&'static str> {
    let ok = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!("go is not installed: CI=true needs it to read the profile with go tool pprof");
    }
    ok.then_some("go")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_profile_under_load_reads_with_go_tool_pprof() {
    let net = net(50, 100, 1 << 20);
    // Disabled (Fabric's default): the address is not bound.
    let idle_port = free_port();
    let off = start(
        &net,
        "ledger-off",
        &profile_env(&format!("127.0.0.1:{idle_port}"), "false"),
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", idle_port)).is_err());
    drop(off);

    let pport = free_port();
    let node = start(
        &net,
        "ledger",
        &profile_env(&format!("127.0.0.1:{pport}"), "true"),
    );
    node.wait_port(pport, Duration::from_secs(10));
    assert_eq!(http_get(pport, "/debug/pprof/profile?seconds=61").0, 400);

    // Load while the profile is taken.
    let mut client = node.client().await;
    let fetch = tokio::task::spawn_blocking(move || {
        http_get_bytes(
            pport,
            "/debug/pprof/profile?seconds=3",
            Duration::from_secs(30),
        )
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A second profile while one runs is refused.
    let (busy, _) =
        tokio::task::spawn_blocking(move || http_get(pport, "/debug/pprof/profile?seconds=1"))
            .await
            .unwrap();
    assert_eq!(busy, 409);
    // Broadcast in rounds of 50 until the profile is in (3 s + encoding).
    let mut round = 0u32;
    while !fetch.is_finished() && round < 400 {
        let envs: Vec<Envelope> = (0..50u32)
            .map(|i| {
                tx(
                    &net.client,
                    CHANNEL,
                    format!("load:{round}:{i}").into_bytes(),
                )
            })
            .collect();
        let resps = broadcast(&mut client, envs).await;
        assert!(resps.iter().all(|r| r.status == Status::Success as i32));
        round += 1;
    }
    let (code, body) = fetch.await.unwrap();
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert!(body.len() > 100, "profile of {} bytes", body.len());

    // A client that leaves during a profile does not block the next one.
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", pport)).unwrap();
        s.write_all(b"GET /debug/pprof/profile?seconds=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, _) = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(1500));
        http_get_bytes(
            pport,
            "/debug/pprof/profile?seconds=1",
            Duration::from_secs(20),
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 200, "a profile after an abandoned one");

    let file = net.dir.path().join("cpu.pb");
    std::fs::write(&file, &body).unwrap();
    let Some(text) = pprof_top(&file) else {
        eprintln!("SKIPPED: go tool pprof (go not installed; CI=true makes this a failure)");
        return;
    };
    eprintln!("{}", text.lines().take(15).collect::<Vec<_>>().join("\n"));
    assert!(text.contains("Duration: 3"), "{text}");
    assert!(text.contains("flat%"), "{text}");
    // Samples name the orderer's own code.
    assert!(
        text.contains("orderer::") || text.contains("fabric_"),
        "{text}"
    );
}

/// `go tool pprof -top FILE`'s output; `None` when Go is missing outside CI.
fn pprof_top(file: &std::path::Path) -> Option<String> {
    let go = go()?;
    let out = Command::new(go)
        .args(["tool", "pprof", "-symbolize=none", "-top"])
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "go tool pprof: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    Some(text)
}

/// The total of `go tool pprof -top`'s "Showing nodes accounting for X, Y%
/// of TOTAL total" line, in bytes.
fn top_total_bytes(text: &str) -> Option<f64> {
    let line = text
        .lines()
        .find(|l| l.contains("Showing nodes accounting for"))?;
    let total = line.split(" of ").nth(1)?.split_whitespace().next()?;
    let split = total
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(total.len());
    let (num, unit) = total.split_at(split);
    let scale = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => return None,
    };
    Some(num.parse::<f64>().ok()? * scale)
}

#[test]
fn top_total_reads_pprof_units() {
    let line = "Showing nodes accounting for 5.50MB, 87.3% of 6.30MB total\n";
    assert_eq!(top_total_bytes(line), Some(6.3e6));
    assert_eq!(
        top_total_bytes("Showing nodes accounting for 512kB, 100% of 512kB total"),
        Some(512e3)
    );
    assert_eq!(top_total_bytes("Type: inuse_space"), None);
}

/// Blocks of the heap test: one envelope of `HEAP_BLOCK` bytes each.
const HEAP_BLOCK: usize = 2 << 20;
const HEAP_BLOCKS: u64 = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heap_profile_after_ordering_reads_with_go_tool_pprof() {
    let net = net(100, 10, (HEAP_BLOCK + (1 << 20)) as u32);
    // Disabled: no heap endpoint either.
    let idle_port = free_port();
    let off = start(
        &net,
        "ledger-off",
        &profile_env(&format!("127.0.0.1:{idle_port}"), "false"),
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", idle_port)).is_err());
    drop(off);

    let pport = free_port();
    let node = start(
        &net,
        "ledger",
        &profile_env(&format!("127.0.0.1:{pport}"), "true"),
    );
    node.wait_port(pport, Duration::from_secs(10));

    // Order 12 blocks of one 2 MiB envelope each.
    let mut client = node.client().await;
    for i in 0..HEAP_BLOCKS {
        let env = tx(&net.client, CHANNEL, vec![i as u8; HEAP_BLOCK]);
        let resps = broadcast(&mut client, vec![env]).await;
        assert_eq!(resps[0].status, Status::Success as i32);
    }
    // A Deliver stream of every block that never reads, on a connection
    // whose HTTP/2 window (64 KiB) is never opened again: the node holds
    // several of those blocks in memory, allocated by its Deliver path, so
    // the sampled profile has memory in use there whatever the draw (a 2 MiB
    // allocation is sampled with probability 1 - e^-4 = 98 %).
    let ch = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{}", node.port))
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let mut stalled = AtomicBroadcastClient::new(ch).max_decoding_message_size(100 << 20);
    let (seeks, rx) = tokio::sync::mpsc::channel(1);
    seeks
        .send(seek_envelope(
            CHANNEL,
            Some(&net.client),
            &attack::seek(0, Some(HEAP_BLOCKS)),
            vec![],
        ))
        .await
        .unwrap();
    let _unread = stalled
        .deliver(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (code, index) = http_get(pport, "/debug/pprof/");
    assert_eq!(code, 200);
    assert!(
        index.contains(
            "heap: memory in use by allocation stack (inuse_space), one sample per 512 KiB"
        ),
        "{index}"
    );
    // Go's text form and delta profiles are refused, not answered wrongly.
    let (code, body) = http_get(pport, "/debug/pprof/heap?debug=1");
    assert_eq!(code, 400, "{body}");
    let (code, body) = http_get(pport, "/debug/pprof/heap?seconds=5");
    assert_eq!(code, 400, "{body}");

    let rss_before = attack::rss_mib(node.child.id());
    let t = std::time::Instant::now();
    let (code, body) = tokio::task::spawn_blocking(move || {
        http_get_bytes(pport, "/debug/pprof/heap?gc=1", Duration::from_secs(60))
    })
    .await
    .unwrap();
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    // Gzipped protobuf, as Go serves it.
    assert_eq!(body.get(..2), Some(&[0x1f, 0x8b][..]), "not gzip");
    eprintln!(
        "heap profile: {} bytes in {:?}; node RSS {rss_before:.1} -> {:.1} MiB",
        body.len(),
        t.elapsed(),
        attack::rss_mib(node.child.id())
    );

    let file = net.dir.path().join("heap.pb.gz");
    std::fs::write(&file, &body).unwrap();
    // KEEP_HEAP=FILE keeps a copy to look at.
    if let Ok(keep) = std::env::var("KEEP_HEAP") {
        std::fs::write(keep, &body).unwrap();
    }
    let Some(text) = pprof_top(&file) else {
        eprintln!("SKIPPED: go tool pprof (go not installed; CI=true makes this a failure)");
        return;
    };
    eprintln!("{}", text.lines().take(25).collect::<Vec<_>>().join("\n"));
    assert!(text.contains("Type: inuse_space"), "{text}");
    // At least 2 of the blocks held (several are).
    let total = top_total_bytes(&text).unwrap_or_else(|| panic!("no total in {text}"));
    assert!(
        total >= 2.0 * HEAP_BLOCK as f64,
        "{total} bytes in use: {text}"
    );
    // Function names are in the profile (pprof is told not to symbolize),
    // and stacks reach the orderer's own code.
    assert!(text.contains("orderer::"), "{text}");
}
