//! Reads what [`super::check`] judges from a live cluster through Kafka's
//! admin API: the cluster metadata (brokers, each topic's replicas) and
//! `DescribeConfigs` for every broker and every existing channel topic. Uses
//! the same client settings (`Kafka.TLS`, `Kafka.SASLPlain`) as the chains.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminOptions, ResourceSpecifier};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::check::{self, BrokerObserved, Observed, RuleResult, TopicObserved};
use super::KafkaSettings;

/// Reads the cluster `settings.brokers` lead to; `topics` are the channel
/// topics to describe (missing ones are reported with `replicas: None`).
pub async fn observe(
    settings: &KafkaSettings,
    topics: &[String],
    absolute_max_bytes: u64,
    timeout: Duration,
) -> Result<Observed, String> {
    if settings.brokers.is_empty() {
        return Err("no Kafka brokers configured (Orderer/KafkaBrokers is empty)".into());
    }
    let admin = settings
        .admin()
        .map_err(|e| format!("creating the Kafka admin client: {e}"))?;
    let s2 = settings.clone();
    let md = tokio::task::spawn_blocking(move || s2.metadata_diagnosed(None, timeout))
        .await
        .map_err(|e| format!("metadata task: {e}"))??;
    let mut broker_ids: Vec<i32> = md.brokers().iter().map(|b| b.id()).collect();
    broker_ids.sort_unstable();
    let mut replicas: BTreeMap<String, usize> = BTreeMap::new();
    for t in md.topics() {
        if t.error().is_none() {
            if let Some(p) = t.partitions().iter().find(|p| p.id() == super::PARTITION) {
                replicas.insert(t.name().to_string(), p.replicas().len());
            }
        }
    }
    let existing: Vec<&String> = topics
        .iter()
        .filter(|t| replicas.contains_key(*t))
        .collect();
    // librdkafka takes one broker resource per DescribeConfigs request: one
    // request per broker, one for all the topics, in parallel.
    let broker_specs: Vec<ResourceSpecifier<'_>> = broker_ids
        .iter()
        .map(|id| ResourceSpecifier::Broker(*id))
        .collect();
    let topic_specs: Vec<ResourceSpecifier<'_>> = existing
        .iter()
        .map(|t| ResourceSpecifier::Topic(t.as_str()))
        .collect();
    let opts = AdminOptions::new().request_timeout(Some(timeout));
    let mut requests: Vec<Vec<ResourceSpecifier<'_>>> =
        broker_specs.into_iter().map(|s| vec![s]).collect();
    if !topic_specs.is_empty() {
        requests.push(topic_specs);
    }
    let described = tokio::time::timeout(
        timeout + Duration::from_secs(1),
        futures::future::join_all(
            requests
                .iter()
                .map(|specs| admin.describe_configs(specs.iter(), &opts)),
        ),
    )
    .await
    .map_err(|_| format!("DescribeConfigs did not answer within {timeout:?}"))?;
    let mut brokers = Vec::new();
    let mut topic_configs: BTreeMap<String, BTreeMap<String, Option<String>>> = BTreeMap::new();
    for (specs, res) in requests.iter().zip(described) {
        let res = res.map_err(|e| format!("DescribeConfigs of {specs:?}: {e}"))?;
        for (spec, res) in specs.iter().zip(res) {
            let res = res.map_err(|code| format!("DescribeConfigs of {spec:?}: {code}"))?;
            let configs: BTreeMap<String, Option<String>> =
                res.entries.into_iter().map(|e| (e.name, e.value)).collect();
            match spec {
                ResourceSpecifier::Broker(id) => brokers.push(BrokerObserved { id: *id, configs }),
                ResourceSpecifier::Topic(t) => {
                    topic_configs.insert(t.to_string(), configs);
                }
                ResourceSpecifier::Group(_) => {}
            }
        }
    }
    let topics = topics
        .iter()
        .map(|t| TopicObserved {
            name: t.clone(),
            replicas: replicas.get(t).copied(),
            configs: topic_configs.remove(t).unwrap_or_default(),
        })
        .collect();
    Ok(Observed {
        brokers,
        topics,
        absolute_max_bytes,
        catch_up: BTreeMap::new(),
    })
}

/// Reads the cluster and evaluates every rule; `catch_up` is each channel
/// topic's catch-up sources ([`Observed::catch_up`]).
pub async fn check(
    settings: &KafkaSettings,
    topics: &[String],
    absolute_max_bytes: u64,
    catch_up: BTreeMap<String, Vec<String>>,
    timeout: Duration,
) -> Result<Vec<RuleResult>, String> {
    let mut o = observe(settings, topics, absolute_max_bytes, timeout).await?;
    o.catch_up = catch_up;
    Ok(check::evaluate(&o))
}

/// The start-up check: logs a WARNING for every rule the cluster fails (or
/// when it cannot be read), an INFO line when every rule passes, and an
/// INFO line with the trade-off when finite retention is accepted because
/// catch-up is configured. Never stops the node.
pub async fn warn_at_start(
    settings: KafkaSettings,
    topics: Vec<String>,
    absolute_max_bytes: u64,
    catch_up: BTreeMap<String, Vec<String>>,
    shutdown: CancellationToken,
) {
    let timeout = Duration::from_secs(15);
    let res = tokio::select! {
        _ = shutdown.cancelled() => return,
        r = check(&settings, &topics, absolute_max_bytes, catch_up, timeout) => r,
    };
    match res {
        Err(e) => {
            warn!(error = %e, "WARNING: could not check the Kafka cluster's settings against Fabric's guide (run `orderer check-kafka` for a report)")
        }
        Ok(results) => {
            for r in check::notes(&results) {
                info!(rule = %r.rule, subject = %r.subject, observed = %r.observed, "Kafka cluster check: {}", r.note);
            }
            let failed = check::failed_rules(&results);
            if failed.is_empty() {
                info!(
                    rules = check::Rule::ALL.len(),
                    "Kafka cluster check: the brokers and channel topics meet Fabric's Kafka guide"
                );
            }
            for rule in failed {
                let bad: Vec<&RuleResult> = results
                    .iter()
                    .filter(|r| r.rule == rule && !r.passed)
                    .collect();
                let seen: Vec<String> = bad
                    .iter()
                    .map(|r| format!("{}: {}", r.subject, r.observed))
                    .collect();
                warn!(
                    rule = %rule,
                    requirement = rule.requirement(),
                    observed = %seen.join("; "),
                    fix = %bad[0].fix,
                    "WARNING: the Kafka cluster does not follow Fabric's Kafka guide (orderer check-kafka)"
                );
            }
        }
    }
}
