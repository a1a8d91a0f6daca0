//! A real Prometheus (Debian's `prometheus` package; `.ci/run` installs it)
//! scrapes a node under load, and every query of
//! `ops/grafana/orderer-dashboard.json` returns data through Prometheus's
//! HTTP API; so do the metric names Fabric's operators watch. The node
//! runs a Kafka channel on the test cluster (`KAFKA_BROKERS`), so the
//! Kafka panels have data too.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// The `prometheus` binary; panics (never skips) without one.
fn prometheus_bin() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
        .expect("no `prometheus` on PATH: apt-get install prometheus (.ci/run does)")
}

struct Prometheus {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Prometheus scraping `127.0.0.1:ops` every second.
fn start_prometheus(dir: &Path, ops: u16) -> Prometheus {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: orderer\n    static_configs:\n      - targets: ['127.0.0.1:{ops}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let log = dir.join("prometheus.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(prometheus_bin())
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("starting prometheus");
    Prometheus { child, port, log }
}

/// `s` with every byte but the unreserved ones percent-encoded.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An HTTP/1.1 body, de-chunked when it is chunked.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_string(); // not chunked
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// Runs an instant query; `None` when Prometheus is not answering yet.
fn query(p: &Prometheus, expr: &str) -> Option<serde_json::Value> {
    let path = format!("/api/v1/query?query={}", url_encode(expr));
    std::net::TcpStream::connect(("127.0.0.1", p.port)).ok()?;
    let (code, body) = http_get(p.port, &path);
    if code != 200 {
        return None;
    }
    let body = if body.trim_start().starts_with('{') {
        body
    } else {
        dechunk(&body)
    };
    serde_json::from_str(&body).ok()
}

fn result_len(v: &serde_json::Value) -> usize {
    v["data"]["result"].as_array().map_or(0, Vec::len)
}

/// Every `expr` of the dashboard, its variables matching everything.
fn dashboard_queries() -> Vec<(String, String)> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ops/grafana/orderer-dashboard.json");
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for panel in d["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"]
                .as_str()
                .unwrap()
                .replace("$instance", ".*")
                .replace("$channel", ".*");
            out.push((panel["title"].as_str().unwrap().to_string(), expr));
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(q) = v["query"]
            .as_str()
            .and_then(|q| q.strip_prefix("label_values("))
        {
            let metric = q.split(',').next().unwrap().trim();
            out.push((format!("variable {}", v["name"]), metric.to_string()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_gets_data_for_every_dashboard_query() {
    let channel = support::kafka::unique_channel("prom");
    let net = support::kafka::kafka_net(&channel, 100, 50);
    let ledger = net.dir.path().join("ledger");
    let ops = free_port();
    let ops_addr = format!("127.0.0.1:{ops}");
    let env = [
        ("ORDERER_METRICS_PROVIDER", "prometheus"),
        ("ORDERER_OPERATIONS_LISTENADDRESS", ops_addr.as_str()),
    ];
    let mut node = Node::start_env(&net, &ledger, free_port(), "SampleOrg", true, &env, true);
    node.wait_port(ops, Duration::from_secs(30));
    support::kafka::wait_ready(&node, &net, &channel, Duration::from_secs(90)).await;
    let prom = start_prometheus(net.dir.path(), ops);

    // Load for ~10 s: Broadcast streams of 50 envelopes, a Deliver each round.
    let started = Instant::now();
    let mut client = node.client().await;
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(10) {
        let envs: Vec<_> = (0..50)
            .map(|i| tx(&net.client, &channel, format!("p{sent}-{i}").into_bytes()))
            .collect();
        let acks = broadcast(&mut client, envs).await;
        assert_eq!(acks.len(), 50);
        sent += 50;
        let (_, status) = deliver(
            &mut client,
            &net.client,
            &channel,
            fabric_protos::orderer::SeekInfo {
                start: Some(fabric_common::envelope::seek_oldest()),
                stop: Some(fabric_common::envelope::seek_oldest()),
                behavior: 0,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(status, Some(fabric_protos::common::Status::Success));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut queries = dashboard_queries();
    assert!(queries.len() >= 20, "{queries:?}");
    for name in [
        "grpc_server_stream_requests_received",
        "grpc_server_stream_requests_completed{code=\"OK\"}",
        "grpc_server_stream_request_duration_bucket",
        "grpc_server_stream_messages_received",
        "grpc_server_stream_messages_sent",
        "grpc_comm_conn_opened",
        "ledger_blockstorage_commit_time_bucket",
        "logging_entries_checked",
        "logging_entries_written",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "consensus_kafka_request_rate",
        "consensus_kafka_request_size",
        "consensus_kafka_response_size",
        "consensus_kafka_compression_ratio",
        "up{job=\"orderer\"} == 1",
    ] {
        queries.push(("Fabric's name".into(), name.to_string()));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut empty: Vec<(String, String)> = queries.clone();
    while !empty.is_empty() && Instant::now() < deadline {
        empty.retain(|(_, expr)| {
            let v = query(&prom, expr);
            !v.as_ref()
                .is_some_and(|v| v["status"] == "success" && result_len(v) > 0)
        });
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(
        empty.is_empty(),
        "queries without data after {sent} envelopes: {empty:#?}\nprometheus log: {}",
        std::fs::read_to_string(&prom.log).unwrap_or_default()
    );
    eprintln!(
        "{} queries answered with data ({sent} envelopes)",
        queries.len()
    );
    node.kill9();
}
