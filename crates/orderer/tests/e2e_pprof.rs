//! End-to-end: `General.Profile` serves a CPU profile of the real orderer
//! under load on Go's path, which `go tool pprof` reads; it is not bound
//! unless enabled. Under `CI=true` a missing Go toolchain fails the test.

mod support;

use std::process::Command;
use std::time::Duration;

use fabric_protos::common::{Envelope, Status};
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
    assert_eq!(http_get(pport, "/debug/pprof/heap").0, 501);

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

    let Some(go) = go() else {
        eprintln!("SKIPPED: go tool pprof (go not installed; CI=true makes this a failure)");
        return;
    };
    let file = net.dir.path().join("cpu.pb");
    std::fs::write(&file, &body).unwrap();
    let out = Command::new(go)
        .args(["tool", "pprof", "-top"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "go tool pprof: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", text.lines().take(15).collect::<Vec<_>>().join("\n"));
    assert!(text.contains("Duration: 3"), "{text}");
    assert!(text.contains("flat%"), "{text}");
    // Samples name the orderer's own code.
    assert!(
        text.contains("orderer::") || text.contains("fabric_"),
        "{text}"
    );
}
