//! Fixtures of the attack tests (`e2e_hardening`): a node with its
//! operations port and Prometheus metrics, its RSS sampled, its metrics
//! read, every block delivered.

use std::time::Duration;

use fabric_common::envelope::{seek_newest, seek_specified};
use fabric_protos::common::{Block, Status};
use fabric_protos::orderer::{seek_info, SeekInfo};

use super::{deliver, free_port, http_get, Net, Node, CHANNEL};

/// Blocks `start` to `stop` (the newest when `None`), waiting for them.
pub fn seek(start: u64, stop: Option<u64>) -> SeekInfo {
    SeekInfo {
        start: Some(seek_specified(start)),
        stop: Some(stop.map(seek_specified).unwrap_or_else(seek_newest)),
        behavior: seek_info::SeekBehavior::BlockUntilReady as i32,
        ..Default::default()
    }
}

/// The resident set of process `pid`, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

/// The highest RSS of `pid` sampled every 300 ms for 3 s (at least `base`).
pub async fn peak_rss(pid: u32, base: f64) -> f64 {
    let mut peak = base;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        peak = peak.max(rss_mib(pid));
    }
    peak
}

/// Samples the RSS of `pid` every 100 ms until `fut` is done: its output
/// and the highest RSS seen (at least `base`).
pub async fn peak_rss_during<F: std::future::Future>(
    pid: u32,
    base: f64,
    fut: F,
) -> (F::Output, f64) {
    tokio::pin!(fut);
    let mut peak = base;
    loop {
        tokio::select! {
            out = &mut fut => return (out, peak.max(rss_mib(pid))),
            _ = tokio::time::sleep(Duration::from_millis(100)) => peak = peak.max(rss_mib(pid)),
        }
    }
}

/// A node with its operations port and Prometheus metrics on.
pub struct OpsNode {
    pub node: Node,
    pub port: u16,
    pub ops: u16,
}

impl OpsNode {
    /// Starts a node of `net` on a fresh ledger with `env` set too.
    pub fn start(net: &Net, env: &[(&str, &str)]) -> Self {
        let ledger = net.dir.path().join("ledger");
        let (port, ops) = (free_port(), free_port());
        let ops_addr = format!("127.0.0.1:{ops}");
        let mut all = vec![
            ("ORDERER_OPERATIONS_LISTENADDRESS", ops_addr.as_str()),
            ("ORDERER_METRICS_PROVIDER", "prometheus"),
        ];
        all.extend_from_slice(env);
        let node = Node::start_env(net, &ledger, port, "SampleOrg", true, &all, true);
        node.wait_port(ops, Duration::from_secs(10));
        Self { node, port, ops }
    }

    pub fn pid(&self) -> u32 {
        self.node.child.id()
    }

    pub fn rss(&self) -> f64 {
        rss_mib(self.pid())
    }

    /// The value of an unlabelled metric (or of the exact series `name{..}`).
    pub fn metric(&self, name: &str) -> u64 {
        let (_, out) = http_get(self.ops, "/metrics");
        out.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
            .unwrap_or_else(|| panic!("no {name} in {out}"))
    }

    /// Waits until `name` is 0 (within `limit`).
    pub async fn wait_metric_zero(&self, name: &str, limit: Duration) {
        let t = std::time::Instant::now();
        loop {
            let n = self.metric(name);
            if n == 0 {
                return;
            }
            assert!(t.elapsed() < limit, "{name} still {n} after {limit:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Every block of the channel, over a fresh connection.
pub async fn deliver_all(node: &Node, net: &Net) -> Vec<Block> {
    let mut c = node.client().await;
    let (blocks, status) = deliver(&mut c, &net.client, CHANNEL, seek(0, None)).await;
    assert_eq!(status, Some(Status::Success));
    blocks
}
