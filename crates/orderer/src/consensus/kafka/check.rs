//! The Kafka cluster check (`orderer check-kafka`, and a warning at
//! start-up): the settings Fabric's Kafka guide (`docs/source/kafka.rst`)
//! asks for, evaluated rule by rule over configs read from the cluster
//! ([`super::inspect`] does the reading). Pure: [`Observed`] in,
//! [`RuleResult`]s out.
//!
//! | rule | guide |
//! |---|---|
//! | [`Rule::Brokers`] | K ≥ 4 brokers (one may fail and every channel stays writable) |
//! | [`Rule::ReplicationFactor`] | N = `default.replication.factor` (and each topic's) < K |
//! | [`Rule::MinInsyncReplicas`] | 1 < M = `min.insync.replicas` < N |
//! | [`Rule::UncleanLeaderElection`] | `unclean.leader.election.enable=false` (else offsets, and so blocks, can be rewritten) |
//! | [`Rule::MessageSize`] | `AbsoluteMaxBytes` < `replica.fetch.max.bytes`, `message.max.bytes` (and each topic's `max.message.bytes`) < `socket.request.max.bytes` |
//! | [`Rule::Retention`] | retention off: `log.retention.ms=-1`, `log.retention.bytes=-1`, topic `retention.ms=-1`, `retention.bytes=-1` (an OSN replays its partition), **unless catch-up is configured** (ours, issue #15: [`Observed::catch_up`]); never compaction (`cleanup.policy=delete`) |
//!
//! Finite retention is accepted for a topic whose channel has a catch-up
//! source: `Kafka.CatchUp.Sources`, else an orderer address of the channel
//! config other than this OSN's own listen address
//! ([`super::catchup::other_sources`]); a broker's finite default only when
//! every channel topic has one. The report says the trade-off (a
//! [`RuleResult::note`]): an OSN down for longer than the retention, or a new
//! one, must pull the pruned blocks from another OSN, and its channel is
//! unavailable until one answers. Compaction is refused in every case: the
//! key of every record is `"0"`, so compaction keeps only the newest record
//! and destroys the channel's history.

use std::collections::BTreeMap;
use std::fmt;

/// One broker's configuration (`DescribeConfigs` on the broker resource).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerObserved {
    /// The broker id.
    pub id: i32,
    /// Config name → value (`None`: not set, no default reported).
    pub configs: BTreeMap<String, Option<String>>,
}

/// One channel topic as the cluster has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicObserved {
    /// The topic (= channel ID).
    pub name: String,
    /// Replicas of partition 0 (`None`: the topic does not exist yet; the
    /// broker defaults will apply when it is created).
    pub replicas: Option<usize>,
    /// The topic's effective configs (overrides and broker defaults).
    pub configs: BTreeMap<String, Option<String>>,
}

/// What the check saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Every broker in the cluster metadata.
    pub brokers: Vec<BrokerObserved>,
    /// The channels' topics.
    pub topics: Vec<TopicObserved>,
    /// The largest `Orderer/BatchSize.AbsoluteMaxBytes` of the channels.
    pub absolute_max_bytes: u64,
    /// Channel topic → the catch-up sources an OSN of that channel pulls
    /// pruned blocks from (empty or absent: none, so retention must be off).
    pub catch_up: BTreeMap<String, Vec<String>>,
}

impl Observed {
    /// The catch-up sources of `topic` (empty: none).
    pub fn sources_of(&self, topic: &str) -> &[String] {
        self.catch_up.get(topic).map_or(&[], Vec::as_slice)
    }

    /// Catch-up is configured for every channel topic (and there is one).
    pub fn catch_up_everywhere(&self) -> bool {
        !self.topics.is_empty()
            && self
                .topics
                .iter()
                .all(|t| !self.sources_of(&t.name).is_empty())
    }
}

/// A rule of the guide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// At least 4 brokers.
    Brokers,
    /// Replication factor N below the broker count K.
    ReplicationFactor,
    /// 1 < M < N for `min.insync.replicas`.
    MinInsyncReplicas,
    /// `unclean.leader.election.enable=false`.
    UncleanLeaderElection,
    /// Message sizes above `AbsoluteMaxBytes`, below `socket.request.max.bytes`.
    MessageSize,
    /// Retention disabled unless catch-up is configured; no compaction.
    Retention,
}

impl Rule {
    /// Every rule, in report order.
    pub const ALL: [Rule; 6] = [
        Rule::Brokers,
        Rule::ReplicationFactor,
        Rule::MinInsyncReplicas,
        Rule::UncleanLeaderElection,
        Rule::MessageSize,
        Rule::Retention,
    ];

    /// The rule's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Brokers => "brokers",
            Rule::ReplicationFactor => "replication-factor",
            Rule::MinInsyncReplicas => "min-insync-replicas",
            Rule::UncleanLeaderElection => "unclean-leader-election",
            Rule::MessageSize => "message-size",
            Rule::Retention => "retention",
        }
    }

    /// What the guide asks for.
    pub fn requirement(self) -> &'static str {
        match self {
            Rule::Brokers => "at least 4 brokers (K >= 4)",
            Rule::ReplicationFactor => "replication factor N below the broker count (N < K)",
            Rule::MinInsyncReplicas => "1 < min.insync.replicas (M) < N",
            Rule::UncleanLeaderElection => "unclean.leader.election.enable=false",
            Rule::MessageSize => {
                "AbsoluteMaxBytes < replica.fetch.max.bytes, message.max.bytes < socket.request.max.bytes"
            }
            Rule::Retention => {
                "retention off (log.retention.ms=-1, log.retention.bytes=-1, topic retention.ms/retention.bytes=-1) \
                 unless catch-up is configured; cleanup.policy=delete"
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One rule applied to one subject (the cluster, a broker or a topic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleResult {
    /// The rule.
    pub rule: Rule,
    /// `cluster`, `broker <id>` or `topic <name>`.
    pub subject: String,
    /// Whether the subject meets the rule.
    pub passed: bool,
    /// What was observed.
    pub observed: String,
    /// How to fix it (empty when passed).
    pub fix: String,
    /// Passed on a condition the operator should know (finite retention
    /// accepted because of catch-up: the trade-off); empty otherwise.
    pub note: String,
}

fn int(configs: &BTreeMap<String, Option<String>>, key: &str) -> Option<i64> {
    configs.get(key)?.as_deref()?.trim().parse().ok()
}

fn text<'a>(configs: &'a BTreeMap<String, Option<String>>, key: &str) -> &'a str {
    configs
        .get(key)
        .and_then(|v| v.as_deref())
        .unwrap_or("(not set)")
}

/// A broker's effective time-based retention in ms (Kafka: `log.retention.ms`,
/// else `log.retention.minutes`, else `log.retention.hours`; default 168 h).
pub fn broker_retention_ms(configs: &BTreeMap<String, Option<String>>) -> i64 {
    if let Some(ms) = int(configs, "log.retention.ms") {
        return ms;
    }
    if let Some(m) = int(configs, "log.retention.minutes") {
        return if m < 0 { -1 } else { m.saturating_mul(60_000) };
    }
    let h = int(configs, "log.retention.hours").unwrap_or(168);
    if h < 0 {
        -1
    } else {
        h.saturating_mul(3_600_000)
    }
}

struct Acc(Vec<RuleResult>);

impl Acc {
    fn push(&mut self, rule: Rule, subject: &str, passed: bool, observed: String, fix: &str) {
        self.0.push(RuleResult {
            rule,
            subject: subject.to_string(),
            passed,
            observed,
            fix: if passed {
                String::new()
            } else {
                fix.to_string()
            },
            note: String::new(),
        });
    }

    /// As [`Self::push`], with a note when it passed.
    fn push_noted(
        &mut self,
        rule: Rule,
        subject: &str,
        passed: bool,
        observed: String,
        fix: &str,
        note: String,
    ) {
        self.push(rule, subject, passed, observed, fix);
        if passed {
            if let Some(r) = self.0.last_mut() {
                r.note = note;
            }
        }
    }
}

/// The trade-off of finite retention with catch-up, for a report note.
fn retention_note(what: &str, sources: &[String]) -> String {
    format!(
        "{what} is finite; accepted because catch-up is configured (sources: {}): an OSN stopped for longer \
         than the topic keeps records (or a new OSN) cannot replay the partition and must pull the pruned \
         blocks from one of them over Deliver, and its channel answers SERVICE_UNAVAILABLE until one is reachable; \
         size retention for the longest stop you expect (README: Kafka retention and catch-up)",
        sources.join(", ")
    )
}

/// Kafka's `cleanup.policy` (topic) or `log.cleanup.policy` (broker) holds
/// `compact`.
fn compacts(configs: &BTreeMap<String, Option<String>>, key: &str) -> bool {
    configs
        .get(key)
        .and_then(|v| v.as_deref())
        .is_some_and(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("compact"))
        })
}

/// Evaluates every rule; one result per rule and subject, in rule order.
pub fn evaluate(o: &Observed) -> Vec<RuleResult> {
    let mut acc = Acc(Vec::new());
    let k = o.brokers.len();
    let a = o.absolute_max_bytes as i64;

    // K >= 4.
    acc.push(
        Rule::Brokers,
        "cluster",
        k >= 4,
        format!("{k} broker(s)"),
        "run at least 4 brokers: with 3 or fewer, one broker down leaves channels unwritable or unable to be created",
    );

    // N < K, for the brokers' default and each existing topic.
    for b in &o.brokers {
        let subject = format!("broker {}", b.id);
        match int(&b.configs, "default.replication.factor") {
            Some(n) => acc.push(
                Rule::ReplicationFactor,
                &subject,
                n >= 1 && (n as usize) < k,
                format!("default.replication.factor={n} with {k} broker(s)"),
                "set default.replication.factor (and Kafka.Topic.ReplicationFactor in orderer.yaml) to N < K, e.g. 3 with 4 brokers",
            ),
            None => acc.push(
                Rule::ReplicationFactor,
                &subject,
                false,
                "default.replication.factor not reported".into(),
                "set default.replication.factor=3 (N < K)",
            ),
        }
    }
    for t in &o.topics {
        if let Some(n) = t.replicas {
            acc.push(
                Rule::ReplicationFactor,
                &format!("topic {}", t.name),
                n < k,
                format!("{n} replica(s) with {k} broker(s)"),
                "reassign the topic's partition to N < K replicas (kafka-reassign-partitions), or add brokers",
            );
        }
    }

    // 1 < M < N.
    for b in &o.brokers {
        let m = int(&b.configs, "min.insync.replicas");
        let n = int(&b.configs, "default.replication.factor");
        let ok = matches!((m, n), (Some(m), Some(n)) if 1 < m && m < n);
        acc.push(
            Rule::MinInsyncReplicas,
            &format!("broker {}", b.id),
            ok,
            format!(
                "min.insync.replicas={} with default.replication.factor={}",
                text(&b.configs, "min.insync.replicas"),
                text(&b.configs, "default.replication.factor")
            ),
            "set min.insync.replicas=M with 1 < M < N (e.g. M=2 with N=3)",
        );
    }
    for t in &o.topics {
        let Some(n) = t.replicas else { continue };
        let m = int(&t.configs, "min.insync.replicas");
        let ok = matches!(m, Some(m) if 1 < m && (m as usize) < n);
        acc.push(
            Rule::MinInsyncReplicas,
            &format!("topic {}", t.name),
            ok,
            format!(
                "min.insync.replicas={} with {n} replica(s)",
                text(&t.configs, "min.insync.replicas")
            ),
            "set the topic's min.insync.replicas to M with 1 < M < N (kafka-configs --alter --entity-type topics --add-config min.insync.replicas=2)",
        );
    }

    // unclean.leader.election.enable=false.
    for b in &o.brokers {
        let v = text(&b.configs, "unclean.leader.election.enable");
        acc.push(
            Rule::UncleanLeaderElection,
            &format!("broker {}", b.id),
            v.eq_ignore_ascii_case("false"),
            format!("unclean.leader.election.enable={v}"),
            "set unclean.leader.election.enable=false on every broker: an out-of-sync replica elected leader rewrites offsets, and so the blockchain",
        );
    }
    for t in &o.topics {
        if t.replicas.is_none() {
            continue;
        }
        let v = text(&t.configs, "unclean.leader.election.enable");
        acc.push(
            Rule::UncleanLeaderElection,
            &format!("topic {}", t.name),
            v.eq_ignore_ascii_case("false"),
            format!("unclean.leader.election.enable={v}"),
            "remove the topic override (kafka-configs --alter --entity-type topics --delete-config unclean.leader.election.enable) and set false on the brokers",
        );
    }

    // AbsoluteMaxBytes < replica.fetch.max.bytes, message.max.bytes < socket.request.max.bytes.
    for b in &o.brokers {
        let mmb = int(&b.configs, "message.max.bytes");
        let rfmb = int(&b.configs, "replica.fetch.max.bytes");
        let srmb = int(&b.configs, "socket.request.max.bytes");
        let ok = match (mmb, rfmb, srmb) {
            (Some(m), Some(r), Some(s)) => a < m && a < r && m < s && r < s,
            _ => false,
        };
        acc.push(
            Rule::MessageSize,
            &format!("broker {}", b.id),
            ok,
            format!(
                "AbsoluteMaxBytes={a}, message.max.bytes={}, replica.fetch.max.bytes={}, socket.request.max.bytes={}",
                text(&b.configs, "message.max.bytes"),
                text(&b.configs, "replica.fetch.max.bytes"),
                text(&b.configs, "socket.request.max.bytes")
            ),
            "set message.max.bytes and replica.fetch.max.bytes above the channels' AbsoluteMaxBytes (by about 1 MiB for record overhead) and below socket.request.max.bytes (default 100 MiB)",
        );
    }
    let srmb = o
        .brokers
        .iter()
        .filter_map(|b| int(&b.configs, "socket.request.max.bytes"))
        .min();
    for t in &o.topics {
        if t.replicas.is_none() {
            continue;
        }
        let mmb = int(&t.configs, "max.message.bytes");
        let ok = matches!(mmb, Some(m) if a < m && srmb.is_none_or(|s| m < s));
        acc.push(
            Rule::MessageSize,
            &format!("topic {}", t.name),
            ok,
            format!(
                "AbsoluteMaxBytes={a}, max.message.bytes={}",
                text(&t.configs, "max.message.bytes")
            ),
            "set the topic's max.message.bytes above AbsoluteMaxBytes (or remove the override so message.max.bytes applies)",
        );
    }

    // Retention off, unless catch-up is configured; never compaction.
    retention_rules(o, &mut acc);
    acc.0
}

/// [`Rule::Retention`] over the brokers and the topics.
fn retention_rules(o: &Observed, acc: &mut Acc) {
    const COMPACT_FIX: &str = "set cleanup.policy=delete (log.cleanup.policy on the brokers): every record's key is \"0\", so compaction keeps only the newest record and destroys the channel's history";
    let everywhere = o.catch_up_everywhere();
    let all_sources: Vec<String> = {
        let mut v: Vec<String> = o.catch_up.values().flatten().cloned().collect();
        v.sort();
        v.dedup();
        v
    };
    for b in &o.brokers {
        let subject = format!("broker {}", b.id);
        let ms = broker_retention_ms(&b.configs);
        let bytes = int(&b.configs, "log.retention.bytes").unwrap_or(-1);
        let observed = format!(
            "effective retention {ms} ms (log.retention.ms={}, log.retention.hours={}), log.retention.bytes={}",
            text(&b.configs, "log.retention.ms"),
            text(&b.configs, "log.retention.hours"),
            text(&b.configs, "log.retention.bytes")
        );
        if compacts(&b.configs, "log.cleanup.policy") {
            acc.push(
                Rule::Retention,
                &subject,
                false,
                format!(
                    "log.cleanup.policy={}",
                    text(&b.configs, "log.cleanup.policy")
                ),
                COMPACT_FIX,
            );
            continue;
        }
        let off = ms < 0 && bytes < 0;
        acc.push_noted(
            Rule::Retention,
            &subject,
            off || everywhere,
            observed,
            "set log.retention.ms=-1 and log.retention.bytes=-1 on every broker (an OSN that restarts replays its channel's partition from its last block's offset), \
             or configure catch-up for every channel (Kafka.CatchUp.Sources, or the other OSNs' addresses in the channel config)",
            if off { String::new() } else { retention_note("the brokers' default retention", &all_sources) },
        );
    }
    for t in &o.topics {
        if t.replicas.is_none() {
            continue;
        }
        let subject = format!("topic {}", t.name);
        if compacts(&t.configs, "cleanup.policy") {
            acc.push(
                Rule::Retention,
                &subject,
                false,
                format!("cleanup.policy={}", text(&t.configs, "cleanup.policy")),
                COMPACT_FIX,
            );
            continue;
        }
        let ms = int(&t.configs, "retention.ms");
        // retention.bytes: Kafka's default is -1; not reported counts as off.
        let bytes = int(&t.configs, "retention.bytes").unwrap_or(-1);
        let off = matches!(ms, Some(ms) if ms < 0) && bytes < 0;
        let sources = o.sources_of(&t.name);
        acc.push_noted(
            Rule::Retention,
            &subject,
            off || !sources.is_empty(),
            format!(
                "retention.ms={}, retention.bytes={}",
                text(&t.configs, "retention.ms"),
                text(&t.configs, "retention.bytes")
            ),
            "set the topic's retention.ms=-1 and retention.bytes=-1 (kafka-configs --alter --entity-type topics --add-config retention.ms=-1,retention.bytes=-1), \
             or configure catch-up for its channel (Kafka.CatchUp.Sources, or the other OSNs' addresses in the channel config)",
            if off { String::new() } else { retention_note(&format!("topic {}'s retention", t.name), sources) },
        );
    }
}

/// The passed results that carry a note (finite retention accepted because
/// of catch-up), for the operator.
pub fn notes(results: &[RuleResult]) -> Vec<&RuleResult> {
    results
        .iter()
        .filter(|r| r.passed && !r.note.is_empty())
        .collect()
}

/// The rules with at least one failing subject.
pub fn failed_rules(results: &[RuleResult]) -> Vec<Rule> {
    let mut out: Vec<Rule> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.rule)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A report for people: one PASS/FAIL line per rule, then the failing
/// subjects with what was seen and the fix.
pub fn report(results: &[RuleResult]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for rule in Rule::ALL {
        let of_rule: Vec<&RuleResult> = results.iter().filter(|r| r.rule == rule).collect();
        if of_rule.is_empty() {
            let _ = writeln!(
                s,
                "SKIP  {:<24} {} (nothing to check)",
                rule.name(),
                rule.requirement()
            );
            continue;
        }
        let failed: Vec<&&RuleResult> = of_rule.iter().filter(|r| !r.passed).collect();
        if failed.is_empty() {
            let _ = writeln!(
                s,
                "PASS  {:<24} {} [{}]",
                rule.name(),
                rule.requirement(),
                of_rule[0].observed
            );
            let noted: Vec<&&RuleResult> = of_rule.iter().filter(|r| !r.note.is_empty()).collect();
            if let Some(first) = noted.first() {
                let subjects: Vec<&str> = noted.iter().map(|r| r.subject.as_str()).collect();
                let _ = writeln!(s, "        note ({}): {}", subjects.join(", "), first.note);
            }
        } else {
            let _ = writeln!(s, "FAIL  {:<24} {}", rule.name(), rule.requirement());
            for r in &failed {
                let _ = writeln!(s, "        {}: {}", r.subject, r.observed);
            }
            let _ = writeln!(s, "        fix: {}", failed[0].fix);
        }
    }
    let failed = failed_rules(results);
    let total = Rule::ALL
        .iter()
        .filter(|r| results.iter().any(|x| x.rule == **r))
        .count();
    if failed.is_empty() {
        let _ = writeln!(s, "check-kafka: all {total} rules pass");
    } else {
        let names: Vec<&str> = failed.iter().map(|r| r.name()).collect();
        let _ = writeln!(
            s,
            "check-kafka: {} of {total} rules fail: {}",
            failed.len(),
            names.join(", ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> BTreeMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect()
    }

    /// The guide's settings (as `scripts/kafka/kafka.sh` starts them).
    fn guide_broker(id: i32) -> BrokerObserved {
        BrokerObserved {
            id,
            configs: cfg(&[
                ("default.replication.factor", "3"),
                ("min.insync.replicas", "2"),
                ("unclean.leader.election.enable", "false"),
                ("message.max.bytes", "103809024"),
                ("replica.fetch.max.bytes", "103809024"),
                ("socket.request.max.bytes", "104857600"),
                ("log.retention.ms", "-1"),
                ("log.retention.hours", "168"),
            ]),
        }
    }

    fn guide_topic(name: &str) -> TopicObserved {
        TopicObserved {
            name: name.into(),
            replicas: Some(3),
            configs: cfg(&[
                ("min.insync.replicas", "2"),
                ("unclean.leader.election.enable", "false"),
                ("max.message.bytes", "103809024"),
                ("retention.ms", "-1"),
            ]),
        }
    }

    fn guide() -> Observed {
        Observed {
            brokers: (1..=4).map(guide_broker).collect(),
            topics: vec![guide_topic("sys"), guide_topic("app")],
            absolute_max_bytes: 10 * 1024 * 1024,
            catch_up: BTreeMap::new(),
        }
    }

    /// Catch-up from `sources` for every topic of `o`.
    fn with_catch_up(mut o: Observed, sources: &[&str]) -> Observed {
        for t in &o.topics {
            o.catch_up.insert(
                t.name.clone(),
                sources.iter().map(|s| s.to_string()).collect(),
            );
        }
        o
    }

    /// Finite retention of both kinds on the brokers and the topics.
    fn finite_retention(mut o: Observed) -> Observed {
        set_broker(&mut o, "log.retention.ms", Some("3600000"));
        set_broker(&mut o, "log.retention.bytes", Some("1073741824"));
        set_topic(&mut o, "retention.ms", "3600000");
        set_topic(&mut o, "retention.bytes", "1073741824");
        o
    }

    fn set_broker(o: &mut Observed, key: &str, value: Option<&str>) {
        for b in &mut o.brokers {
            b.configs.insert(key.into(), value.map(str::to_string));
        }
    }

    fn set_topic(o: &mut Observed, key: &str, value: &str) {
        for t in &mut o.topics {
            t.configs.insert(key.into(), Some(value.into()));
        }
    }

    #[test]
    fn the_guide_settings_pass_every_rule() {
        let r = evaluate(&guide());
        assert!(failed_rules(&r).is_empty(), "{}", report(&r));
        for rule in Rule::ALL {
            assert!(r.iter().any(|x| x.rule == rule), "{rule} evaluated");
        }
        assert!(report(&r).contains("check-kafka: all 6 rules pass"));
    }

    #[test]
    fn three_brokers_fail_the_broker_count_and_n_below_k() {
        let mut o = guide();
        o.brokers.pop();
        let r = evaluate(&o);
        // N=3 is no longer below K=3.
        assert_eq!(
            failed_rules(&r),
            vec![Rule::Brokers, Rule::ReplicationFactor]
        );
        let text = report(&r);
        assert!(text.contains("FAIL  brokers"), "{text}");
        assert!(text.contains("3 broker(s)"), "{text}");
    }

    #[test]
    fn a_topic_with_as_many_replicas_as_brokers_fails_n_below_k() {
        let mut o = guide();
        o.topics[1].replicas = Some(4);
        let r = evaluate(&o);
        assert_eq!(failed_rules(&r), vec![Rule::ReplicationFactor]);
        let bad: Vec<_> = r.iter().filter(|x| !x.passed).collect();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].subject, "topic app");
    }

    #[test]
    fn min_isr_must_be_between_one_and_n() {
        for (m, ok) in [("1", false), ("2", true), ("3", false), ("0", false)] {
            let mut o = guide();
            set_broker(&mut o, "min.insync.replicas", Some(m));
            set_topic(&mut o, "min.insync.replicas", m);
            let failed = failed_rules(&evaluate(&o));
            assert_eq!(failed.is_empty(), ok, "min.insync.replicas={m}: {failed:?}");
            if !ok {
                assert_eq!(failed, vec![Rule::MinInsyncReplicas]);
            }
        }
        // Only a topic override wrong.
        let mut o = guide();
        o.topics[0]
            .configs
            .insert("min.insync.replicas".into(), Some("1".into()));
        let r = evaluate(&o);
        let bad: Vec<_> = r.iter().filter(|x| !x.passed).collect();
        assert_eq!(bad.len(), 1);
        assert_eq!(
            (bad[0].rule, bad[0].subject.as_str()),
            (Rule::MinInsyncReplicas, "topic sys")
        );
    }

    #[test]
    fn unclean_leader_election_on_a_broker_or_a_topic_fails() {
        let mut o = guide();
        o.brokers[2]
            .configs
            .insert("unclean.leader.election.enable".into(), Some("true".into()));
        let r = evaluate(&o);
        assert_eq!(failed_rules(&r), vec![Rule::UncleanLeaderElection]);
        let text = report(&r);
        assert!(text.contains("FAIL  unclean-leader-election"), "{text}");
        assert!(
            text.contains("broker 3: unclean.leader.election.enable=true"),
            "{text}"
        );
        assert!(
            text.contains("fix: set unclean.leader.election.enable=false"),
            "{text}"
        );
        assert!(
            text.contains("1 of 6 rules fail: unclean-leader-election"),
            "{text}"
        );

        let mut o = guide();
        o.topics[1]
            .configs
            .insert("unclean.leader.election.enable".into(), Some("true".into()));
        assert_eq!(
            failed_rules(&evaluate(&o)),
            vec![Rule::UncleanLeaderElection]
        );
        // Not reported at all is a failure too (cannot show it is off).
        let mut o = guide();
        set_broker(&mut o, "unclean.leader.election.enable", None);
        assert_eq!(
            failed_rules(&evaluate(&o)),
            vec![Rule::UncleanLeaderElection]
        );
    }

    #[test]
    fn message_sizes_must_sit_between_absolute_max_bytes_and_the_socket_limit() {
        // Kafka's defaults (about 1 MiB) against a 10 MiB AbsoluteMaxBytes.
        let mut o = guide();
        set_broker(&mut o, "message.max.bytes", Some("1048588"));
        set_broker(&mut o, "replica.fetch.max.bytes", Some("1048576"));
        set_topic(&mut o, "max.message.bytes", "1048588");
        assert_eq!(failed_rules(&evaluate(&o)), vec![Rule::MessageSize]);
        // Above the socket limit.
        let mut o = guide();
        set_broker(&mut o, "replica.fetch.max.bytes", Some("209715200"));
        assert_eq!(failed_rules(&evaluate(&o)), vec![Rule::MessageSize]);
        // AbsoluteMaxBytes equal to message.max.bytes is not enough.
        let mut o = guide();
        o.absolute_max_bytes = 103_809_024;
        assert_eq!(failed_rules(&evaluate(&o)), vec![Rule::MessageSize]);
        o.absolute_max_bytes = 103_809_023;
        assert!(failed_rules(&evaluate(&o)).is_empty());
    }

    #[test]
    fn time_based_retention_must_be_off() {
        // Kafka's default: log.retention.ms unset, 168 hours.
        let mut o = guide();
        set_broker(&mut o, "log.retention.ms", None);
        let r = evaluate(&o);
        assert_eq!(failed_rules(&r), vec![Rule::Retention]);
        assert!(report(&r).contains("effective retention 604800000 ms"));
        // Hours -1 without ms also disables it.
        set_broker(&mut o, "log.retention.hours", Some("-1"));
        assert!(failed_rules(&evaluate(&o)).is_empty());
        // A topic override.
        let mut o = guide();
        o.topics[0]
            .configs
            .insert("retention.ms".into(), Some("604800000".into()));
        assert_eq!(failed_rules(&evaluate(&o)), vec![Rule::Retention]);
    }

    #[test]
    fn size_based_retention_must_be_off_without_catch_up() {
        let mut o = guide();
        set_broker(&mut o, "log.retention.bytes", Some("1073741824"));
        let r = evaluate(&o);
        assert_eq!(failed_rules(&r), vec![Rule::Retention]);
        assert!(
            report(&r).contains("log.retention.bytes=1073741824"),
            "{}",
            report(&r)
        );
        let mut o = guide();
        o.topics[1]
            .configs
            .insert("retention.bytes".into(), Some("1000000".into()));
        let r = evaluate(&o);
        let bad: Vec<_> = r.iter().filter(|x| !x.passed).collect();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].subject, "topic app");
        assert!(
            bad[0].fix.contains("Kafka.CatchUp.Sources"),
            "{}",
            bad[0].fix
        );
    }

    #[test]
    fn finite_retention_passes_with_catch_up_and_says_the_trade_off() {
        let o = with_catch_up(finite_retention(guide()), &["osn1:7050", "osn2:7050"]);
        let r = evaluate(&o);
        assert!(failed_rules(&r).is_empty(), "{}", report(&r));
        // Every retention result is noted, none of the other rules.
        let noted = notes(&r);
        assert_eq!(noted.len(), 4 + 2, "4 brokers, 2 topics");
        assert!(noted.iter().all(|x| x.rule == Rule::Retention));
        let text = report(&r);
        assert!(text.contains("check-kafka: all 6 rules pass"), "{text}");
        assert!(
            text.contains("note (broker 1, broker 2, broker 3, broker 4, topic sys, topic app)"),
            "{text}"
        );
        assert!(text.contains("osn1:7050, osn2:7050"), "{text}");
        assert!(text.contains("must pull the pruned blocks"), "{text}");
        assert!(
            text.contains("SERVICE_UNAVAILABLE until one is reachable"),
            "{text}"
        );
        // Retention off needs no note.
        assert!(notes(&evaluate(&with_catch_up(guide(), &["osn1:7050"]))).is_empty());
    }

    #[test]
    fn catch_up_must_cover_every_channel_for_a_finite_broker_default() {
        // Only "sys" has a source: its topic passes, "app" fails, and so do
        // the brokers' defaults (they apply to "app" and to later topics).
        let mut o = finite_retention(guide());
        o.catch_up.insert("sys".into(), vec!["osn1:7050".into()]);
        o.catch_up.insert("app".into(), vec![]);
        let r = evaluate(&o);
        let bad: Vec<&str> = r
            .iter()
            .filter(|x| !x.passed)
            .map(|x| x.subject.as_str())
            .collect();
        assert_eq!(
            bad,
            ["broker 1", "broker 2", "broker 3", "broker 4", "topic app"]
        );
        // Finite only on the "sys" topic (brokers off): passes.
        let mut o = guide();
        o.topics[0]
            .configs
            .insert("retention.ms".into(), Some("60000".into()));
        o.catch_up.insert("sys".into(), vec!["osn1:7050".into()]);
        let r = evaluate(&o);
        assert!(failed_rules(&r).is_empty(), "{}", report(&r));
        assert_eq!(notes(&r).len(), 1);
    }

    #[test]
    fn the_other_rules_stay_enforced_with_catch_up() {
        let mut o = with_catch_up(finite_retention(guide()), &["osn1:7050"]);
        set_broker(&mut o, "unclean.leader.election.enable", Some("true"));
        set_broker(&mut o, "min.insync.replicas", Some("1"));
        set_topic(&mut o, "min.insync.replicas", "1");
        o.brokers.pop();
        assert_eq!(
            failed_rules(&evaluate(&o)),
            vec![
                Rule::Brokers,
                Rule::ReplicationFactor,
                Rule::MinInsyncReplicas,
                Rule::UncleanLeaderElection
            ]
        );
    }

    #[test]
    fn compaction_fails_with_or_without_catch_up() {
        for sources in [&[][..], &["osn1:7050"][..]] {
            let mut o = with_catch_up(guide(), sources);
            o.topics[0]
                .configs
                .insert("cleanup.policy".into(), Some("compact,delete".into()));
            let r = evaluate(&o);
            assert_eq!(failed_rules(&r), vec![Rule::Retention]);
            assert!(
                report(&r).contains("destroys the channel's history"),
                "{}",
                report(&r)
            );
            let mut o = with_catch_up(guide(), sources);
            set_broker(&mut o, "log.cleanup.policy", Some("compact"));
            assert_eq!(failed_rules(&evaluate(&o)), vec![Rule::Retention]);
        }
        let mut o = guide();
        set_topic(&mut o, "cleanup.policy", "delete");
        assert!(failed_rules(&evaluate(&o)).is_empty());
    }

    #[test]
    fn topics_not_created_yet_are_judged_by_the_broker_defaults() {
        let mut o = guide();
        o.topics = vec![TopicObserved {
            name: "later".into(),
            replicas: None,
            configs: BTreeMap::new(),
        }];
        let r = evaluate(&o);
        assert!(failed_rules(&r).is_empty(), "{}", report(&r));
        assert!(r.iter().all(|x| !x.subject.contains("later")));
    }

    #[test]
    fn retention_units_follow_kafka_precedence() {
        assert_eq!(broker_retention_ms(&cfg(&[])), 168 * 3_600_000);
        assert_eq!(
            broker_retention_ms(&cfg(&[
                ("log.retention.minutes", "10"),
                ("log.retention.hours", "-1")
            ])),
            600_000
        );
        assert_eq!(
            broker_retention_ms(&cfg(&[
                ("log.retention.ms", "-1"),
                ("log.retention.minutes", "10")
            ])),
            -1
        );
    }
}
