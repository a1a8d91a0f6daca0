//! Log lines as Fabric operators read them: `FABRIC_LOGGING_FORMAT`
//! (Fabric's default layout, `json`), no colour into a file, Fabric
//! v1.0–v1.1's `General.LogLevel`, and `Kafka.Verbose`.

mod support;

use std::time::{Duration, Instant};

use fabric_protos::common::Status;

use support::kafka::unreachable_kafka_net;
use support::*;

/// Starts a solo node with `env`, waits for its gRPC port, stops it, and
/// returns its log.
/// Block 0 is delivered first: the Deliver handler logs each request at
/// DEBUG, so that level has a line whenever it is on.
fn log_of_solo(env: &[(&str, &str)]) -> String {
    let net = net(200, 10, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let mut node = Node::start_env(&net, &ledger, free_port(), "SampleOrg", true, env, true);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = node.client().await;
        let (blocks, status) = deliver(
            &mut c,
            &net.client,
            CHANNEL,
            support::attack::seek(0, Some(0)),
        )
        .await;
        assert_eq!(status, Some(Status::Success));
        assert_eq!(blocks.len(), 1);
    });
    node.kill9();
    std::fs::read_to_string(&node.log).unwrap()
}

/// Waits until the node's log has a line for which `pred` holds.
fn wait_for_line(node: &Node, within: Duration, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        let log = std::fs::read_to_string(&node.log).unwrap_or_default();
        if let Some(l) = log.lines().find(|l| pred(l)) {
            return l.to_string();
        }
        assert!(Instant::now() < deadline, "no such line in: {log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `2026-12-02 18:55:33.123 UTC [orderer.common.server] server -> INFO 001 msg`:
/// the logger name and level of a line in Fabric's default layout.
fn default_layout(line: &str) -> Option<(&str, &str)> {
    let (date, rest) = line.split_at_checked(10)?;
    let ok_date = date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-';
    let rest = rest.strip_prefix(' ')?;
    let (time, rest) = rest.split_at_checked(12)?;
    let ok_time = time.as_bytes()[2] == b':' && time.as_bytes()[8] == b'.';
    let (_zone, rest) = rest.trim_start().split_once(" [")?;
    let (logger, rest) = rest.split_once("] ")?;
    let (_func, rest) = rest.split_once(" -> ")?;
    let (level, rest) = rest.split_once(' ')?;
    let (seq, _msg) = rest.split_once(' ')?;
    let ok_seq = seq.len() >= 3 && seq.chars().all(|c| c.is_ascii_hexdigit());
    (ok_date && ok_time && ok_seq && level.len() == 4).then_some((logger, level))
}

#[test]
fn the_default_layout_is_fabrics_and_has_no_colour_in_a_file() {
    let log = log_of_solo(&[]);
    assert!(!log.contains('\x1b'), "colour codes in a file: {log}");
    let lines: Vec<&str> = log.lines().collect();
    assert!(!lines.is_empty());
    for l in &lines {
        let (logger, level) =
            default_layout(l).unwrap_or_else(|| panic!("not Fabric's layout: {l}"));
        assert!(!logger.contains("::"), "{l}");
        assert!(["INFO", "WARN", "ERRO", "DEBU"].contains(&level), "{l}");
    }
    // sequence numbers count up from 001 in hex
    assert!(lines[0].contains(" 001 "), "{}", lines[0]);
}

#[test]
fn json_lines_carry_zaps_keys() {
    let log = log_of_solo(&[("FABRIC_LOGGING_FORMAT", "json")]);
    let mut names = Vec::new();
    for l in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        for key in ["level", "name", "caller", "msg"] {
            assert!(v[key].is_string(), "{key} in {l}");
        }
        assert!(v["ts"].as_f64().is_some_and(|t| t > 1.6e9), "{l}");
        names.push(v["name"].as_str().unwrap().to_string());
    }
    assert!(names.iter().any(|n| n.starts_with("orderer.")), "{names:?}");
}

#[test]
fn a_format_fabric_refuses_stops_the_start() {
    let net = net(200, 10, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let env = [("FABRIC_LOGGING_FORMAT", "%{color:blue} %{message}")];
    let mut node = Node::start_env(&net, &ledger, free_port(), "SampleOrg", true, &env, false);
    let status = node.child.wait().unwrap();
    assert!(!status.success());
    let log = std::fs::read_to_string(&node.log).unwrap();
    assert!(
        log.contains("FABRIC_LOGGING_FORMAT: invalid color option: blue"),
        "{log}"
    );
}

#[test]
fn general_log_level_of_fabric_v1_1_is_honoured_with_a_warning() {
    // FABRIC_LOGGING_SPEC unset: the deprecated key decides.
    let log = log_of_solo(&[
        ("FABRIC_LOGGING_SPEC", ""),
        ("ORDERER_GENERAL_LOGLEVEL", "debug"),
    ]);
    assert!(
        log.lines().any(|l| l.contains("-> WARN")
            && l.contains("General.LogLevel is deprecated")
            && l.contains("FABRIC_LOGGING_SPEC")),
        "{log}"
    );
    assert!(log.contains("-> DEBU "), "no debug line: {log}");
    // FABRIC_LOGGING_SPEC wins when set.
    let log = log_of_solo(&[
        ("FABRIC_LOGGING_SPEC", "info"),
        ("ORDERER_GENERAL_LOGLEVEL", "debug"),
    ]);
    assert!(!log.contains("-> DEBU "), "{log}");
}

#[test]
fn kafka_verbose_shows_librdkafka_under_the_sarama_logger() {
    let net = unreachable_kafka_net();
    let ledger = net.dir.path().join("ledger");
    let env = [("ORDERER_KAFKA_VERBOSE", "true")];
    let mut node = Node::start_env(&net, &ledger, free_port(), "SampleOrg", true, &env, true);
    let line = wait_for_line(&node, Duration::from_secs(30), |l| {
        l.contains("[orderer.consensus.kafka.sarama]") && l.contains("-> DEBU")
    });
    assert!(line.contains("librdkafka"), "{line}");
    node.kill9();
    // without Verbose, none at info
    let net = unreachable_kafka_net();
    let mut node = Node::start_env(
        &net,
        &ledger.with_extension("2"),
        free_port(),
        "SampleOrg",
        true,
        &[],
        true,
    );
    std::thread::sleep(Duration::from_secs(3));
    node.kill9();
    let log = std::fs::read_to_string(&node.log).unwrap();
    assert!(
        !log.contains("sarama] ") || !log.contains("-> DEBU"),
        "{log}"
    );
}
