//! Fabric's logging specification (`FABRIC_LOGGING_SPEC`, `/logspec`)
//! translated to `tracing_subscriber::EnvFilter` directives.
//!
//! Fabric's syntax is `[<logger>[,<logger>...]=]<level>[:[<logger>[,<logger>...]=]<level>...]`;
//! a segment without `=` sets the default level (the last one wins; none
//! means `info`). Levels: `payload`, `debug`, `info`, `warn`/`warning`,
//! `error`, `dpanic`, `panic`, `fatal`, `notice` (= info), `critical`
//! (= error), in either case. A logger name is dotted
//! (`orderer.consensus.kafka`) and covers every logger under it; a trailing
//! `.` means that logger only (`tracing` targets have no such notion, so
//! the dot is dropped).
//!
//! Logger names become `tracing` targets by replacing `.` with `::`, so
//! `orderer.consensus.kafka` selects this crate's `orderer::consensus::kafka`
//! module. As in Fabric, a logger covers the loggers under it: a level for
//! `orderer.consensus.kafka` also applies to `orderer.consensus.kafka.sarama`
//! (librdkafka's lines), unless the spec names that one too. Fabric's own names whose modules are named differently here are
//! mapped ([`ALIASES`]): `orderer.common.broadcast` → `orderer::broadcast`,
//! `common.deliver` → `orderer::deliver`, `orderer.consensus.kafka.sarama`
//! → `rdkafka`, `blkstorage` → `fabric_ledger`, and so on. Levels map to
//! `payload` → `trace`, `dpanic`/`panic`/`fatal` → `error`.
//!
//! With a default level of `debug` or `payload`, the gRPC/HTTP transport
//! crates (`h2`, `hyper`, `tower`, `rustls`, …) stay at `info` unless the
//! spec names them, as Fabric's `grpc` logger is separate from its own.

use std::sync::Mutex;

/// Fabric logger names whose code lives under other `tracing` targets here.
pub const ALIASES: &[(&str, &[&str])] = &[
    (
        "orderer.common",
        &[
            "orderer::broadcast",
            "orderer::blockcutter",
            "orderer::blockwriter",
            "orderer::server",
            "orderer::channels",
            "orderer::channelconfig",
            "orderer::policy",
            "orderer::configupdate",
        ],
    ),
    ("orderer.common.broadcast", &["orderer::broadcast"]),
    ("orderer.common.blockcutter", &["orderer::blockcutter"]),
    ("orderer.common.server", &["orderer::server"]),
    (
        "orderer.common.multichannel",
        &["orderer::channels", "orderer::blockwriter"],
    ),
    (
        "orderer.common.msgprocessor",
        &["orderer::policy", "orderer::configupdate"],
    ),
    ("common.deliver", &["orderer::deliver"]),
    // librdkafka's own lines (`Kafka.Verbose`) and the rdkafka crate's.
    ("orderer.consensus.kafka.sarama", &["librdkafka", "rdkafka"]),
    ("blkstorage", &["fabric_ledger"]),
    ("fsblkstorage", &["fabric_ledger"]),
    ("common.ledger", &["fabric_ledger"]),
    ("msp", &["fabric_msp"]),
    ("policies", &["fabric_msp"]),
    ("cauthdsl", &["fabric_msp"]),
    ("operations.runner", &["orderer::operations"]),
    ("flogging.httpadmin", &["orderer::operations"]),
    ("grpc", &["h2", "tonic", "tower"]),
];

/// Transport crates capped at `info` under a `debug` default.
const NOISY: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tower",
    "tonic",
    "rustls",
    "axum",
];

/// Fabric's levels, in order of verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `payload` (below debug).
    Payload,
    /// `debug`.
    Debug,
    /// `info` (and `notice`).
    Info,
    /// `warn` / `warning`.
    Warn,
    /// `error` (and `critical`).
    Error,
    /// `dpanic`.
    DPanic,
    /// `panic`.
    Panic,
    /// `fatal`.
    Fatal,
}

impl Level {
    /// Fabric's `nameToLevel`.
    pub fn parse(name: &str) -> Option<Level> {
        Some(match name {
            "PAYLOAD" | "payload" => Level::Payload,
            "DEBUG" | "debug" => Level::Debug,
            "INFO" | "info" | "NOTICE" | "notice" => Level::Info,
            "WARNING" | "WARN" | "warning" | "warn" => Level::Warn,
            "ERROR" | "error" | "CRITICAL" | "critical" => Level::Error,
            "DPANIC" | "dpanic" => Level::DPanic,
            "PANIC" | "panic" => Level::Panic,
            "FATAL" | "fatal" => Level::Fatal,
            _ => return None,
        })
    }

    /// The name in a normalized spec.
    pub fn name(self) -> &'static str {
        match self {
            Level::Payload => "payload",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::DPanic => "dpanic",
            Level::Panic => "panic",
            Level::Fatal => "fatal",
        }
    }

    /// The `tracing` level.
    pub fn tracing(self) -> &'static str {
        match self {
            Level::Payload => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error | Level::DPanic | Level::Panic | Level::Fatal => "error",
        }
    }
}

/// A parsed spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSpec {
    /// The default level.
    pub default: Level,
    /// `(logger, level)`, sorted by logger name.
    pub loggers: Vec<(String, Level)>,
}

fn valid_logger_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '#' | ':' | '-'))
        })
}

impl LogSpec {
    /// Parses a spec as Fabric's `ActivateSpec` does, with its error messages.
    pub fn parse(spec: &str) -> Result<LogSpec, String> {
        let bad = |what: &str| format!("invalid logging specification '{spec}': {what}");
        let mut default = Level::Info;
        let mut loggers = std::collections::BTreeMap::new();
        for field in spec.split(':') {
            let split: Vec<&str> = field.split('=').collect();
            match split.as_slice() {
                [level] => {
                    if field.is_empty() {
                        default = Level::Info;
                    } else {
                        default = Level::parse(level)
                            .ok_or_else(|| bad(&format!("bad segment '{field}'")))?;
                    }
                }
                [names, level] => {
                    if names.is_empty() {
                        return Err(bad(&format!("no logger specified in segment '{field}'")));
                    }
                    let level = Level::parse(level)
                        .ok_or_else(|| bad(&format!("bad segment '{field}'")))?;
                    for name in names.split(',') {
                        if !valid_logger_name(name.strip_suffix('.').unwrap_or(name)) {
                            return Err(bad(&format!("bad logger name '{name}'")));
                        }
                        loggers.insert(name.to_string(), level);
                    }
                }
                _ => return Err(bad(&format!("bad segment '{field}'"))),
            }
        }
        Ok(LogSpec {
            default,
            loggers: loggers.into_iter().collect(),
        })
    }

    /// Fabric's normalized form (`Spec()`): `logger=level` fields sorted,
    /// then the default level.
    pub fn normalized(&self) -> String {
        let mut fields: Vec<String> = self
            .loggers
            .iter()
            .map(|(l, v)| format!("{l}={}", v.name()))
            .collect();
        fields.push(self.default.name().to_string());
        fields.join(":")
    }

    /// `tracing` targets for a Fabric logger name, including those of the
    /// aliased loggers under it (`orderer.consensus.kafka` →
    /// `orderer::consensus::kafka`, `librdkafka`, `rdkafka`).
    pub fn targets(logger: &str) -> Vec<String> {
        let name = logger.strip_suffix('.').unwrap_or(logger);
        let mut out: Vec<String> = match ALIASES.iter().find(|(fabric, _)| *fabric == name) {
            Some((_, targets)) => targets.iter().map(|t| t.to_string()).collect(),
            None => vec![name.replace('.', "::")],
        };
        if logger.ends_with('.') {
            return out; // that logger only
        }
        let under = ALIASES
            .iter()
            .filter(|(fabric, _)| is_under(fabric, name))
            .flat_map(|(_, targets)| targets.iter());
        for t in under {
            let covered = out.iter().any(|o| {
                o == t
                    || t.strip_prefix(o.as_str())
                        .is_some_and(|r| r.starts_with("::"))
            });
            if !covered {
                out.push(t.to_string());
            }
        }
        out
    }

    /// The `EnvFilter` directives. A target reached from several loggers
    /// takes the level of the most specific one (the longest name).
    pub fn directives(&self) -> String {
        let mut out = vec![self.default.tracing().to_string()];
        let mut named: Vec<(String, Level, usize)> = Vec::new();
        for (logger, level) in &self.loggers {
            for t in Self::targets(logger) {
                match named.iter_mut().find(|(n, _, _)| *n == t) {
                    Some(prev) if prev.2 >= logger.len() => {}
                    Some(prev) => *prev = (t, *level, logger.len()),
                    None => named.push((t, *level, logger.len())),
                }
            }
        }
        if self.default <= Level::Debug {
            for n in NOISY {
                if !named.iter().any(|(t, _, _)| t == n) {
                    out.push(format!("{n}=info"));
                }
            }
        }
        // Less specific targets first; EnvFilter prefers the most specific match anyway.
        named.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then(a.0.cmp(&b.0)));
        for (t, l, _) in named {
            out.push(format!("{t}={}", l.tracing()));
        }
        out.join(",")
    }
}

/// Whether Fabric logger `child` is under `parent` (`a.b.c` under `a.b`).
fn is_under(child: &str, parent: &str) -> bool {
    child.len() > parent.len() + 1
        && child.starts_with(parent)
        && child.as_bytes()[parent.len()] == b'.'
}

/// The Fabric logger name of a `tracing` target, for log lines: the most
/// specific alias whose target covers it (`orderer::broadcast` →
/// `orderer.common.broadcast`, `librdkafka` →
/// `orderer.consensus.kafka.sarama`), else the target with `::` as `.`.
pub fn fabric_logger_name(target: &str) -> String {
    let covers =
        |t: &str| target == t || target.strip_prefix(t).is_some_and(|r| r.starts_with("::"));
    ALIASES
        .iter()
        .filter_map(|(fabric, targets)| {
            let t = targets
                .iter()
                .filter(|t| covers(t))
                .map(|t| t.len())
                .max()?;
            Some((t, fabric.len(), *fabric))
        })
        .max()
        .map_or_else(|| target.replace("::", "."), |(_, _, f)| f.to_string())
}

/// Applies new `EnvFilter` directives to the running subscriber.
pub type ApplyFn = dyn Fn(&str) -> Result<(), String> + Send + Sync;

/// The active spec and the way to change it at run time.
pub struct LogControl {
    current: Mutex<String>,
    apply: Box<ApplyFn>,
}

impl std::fmt::Debug for LogControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogControl")
            .field("spec", &self.spec())
            .finish_non_exhaustive()
    }
}

impl LogControl {
    /// `initial` is the normalized spec in force; `apply` installs directives.
    pub fn new(initial: String, apply: Box<ApplyFn>) -> Self {
        Self {
            current: Mutex::new(initial),
            apply,
        }
    }

    /// The active spec, normalized.
    pub fn spec(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Parses and activates `spec`; on error nothing changes.
    pub fn activate(&self, spec: &str) -> Result<(), String> {
        let parsed = LogSpec::parse(spec)?;
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        (self.apply)(&parsed.directives())?;
        *cur = parsed.normalized();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fabric_syntax() {
        let s = LogSpec::parse("info:orderer.consensus.kafka=debug").unwrap();
        assert_eq!(s.default, Level::Info);
        assert_eq!(s.normalized(), "orderer.consensus.kafka=debug:info");
        assert_eq!(
            s.directives(),
            "info,rdkafka=debug,librdkafka=debug,orderer::consensus::kafka=debug"
        );

        let s = LogSpec::parse("WARNING:msp,common.deliver=DEBUG:grpc=error").unwrap();
        assert_eq!(
            s.normalized(),
            "common.deliver=debug:grpc=error:msp=debug:warn"
        );
        assert_eq!(
            s.directives(),
            "warn,h2=error,tonic=error,tower=error,fabric_msp=debug,orderer::deliver=debug"
        );

        assert_eq!(LogSpec::parse("").unwrap().normalized(), "info");
        assert_eq!(
            LogSpec::parse("payload")
                .unwrap()
                .directives()
                .split(',')
                .next(),
            Some("trace")
        );
        assert!(LogSpec::parse("debug")
            .unwrap()
            .directives()
            .contains("h2=info"));
        assert!(!LogSpec::parse("debug:h2=debug")
            .unwrap()
            .directives()
            .contains("h2=info"));
        assert_eq!(
            LogSpec::parse("orderer.=debug").unwrap().directives(),
            "info,orderer=debug"
        );
        assert_eq!(
            LogSpec::parse("orderer=debug").unwrap().directives(),
            "info,orderer=debug,rdkafka=debug,librdkafka=debug"
        );
    }

    #[test]
    fn a_logger_covers_the_loggers_under_it_unless_they_are_named() {
        let d = LogSpec::parse("orderer.consensus.kafka=debug")
            .unwrap()
            .directives();
        assert!(d.contains("librdkafka=debug"), "{d}");
        let d = LogSpec::parse("orderer.consensus.kafka=debug:orderer.consensus.kafka.sarama=warn")
            .unwrap()
            .directives();
        assert!(
            d.contains("librdkafka=warn") && !d.contains("librdkafka=debug"),
            "{d}"
        );
        let d = LogSpec::parse("orderer.common=debug:orderer.common.broadcast=error")
            .unwrap()
            .directives();
        assert!(d.contains("orderer::broadcast=error"), "{d}");
        assert!(!d.contains("orderer::broadcast=debug"), "{d}");
        assert!(d.contains("orderer::blockcutter=debug"), "{d}");
        // Kafka.Verbose's addition to the default spec
        let d = LogSpec::parse("info:orderer.consensus.kafka.sarama=debug")
            .unwrap()
            .directives();
        assert_eq!(d, "info,rdkafka=debug,librdkafka=debug");
    }

    #[test]
    fn fabric_errors() {
        for (spec, msg) in [
            ("chatty", "bad segment 'chatty'"),
            ("=debug", "no logger specified in segment '=debug'"),
            ("a=b=c", "bad segment 'a=b=c'"),
            ("orderer=loud", "bad segment 'orderer=loud'"),
            (".orderer=debug", "bad logger name '.orderer'"),
            ("a,,b=debug", "bad logger name ''"),
        ] {
            let e = LogSpec::parse(spec).unwrap_err();
            assert_eq!(
                e,
                format!("invalid logging specification '{spec}': {msg}"),
                "{spec}"
            );
        }
    }

    #[test]
    fn control_keeps_old_spec_on_error() {
        let applied = std::sync::Arc::new(Mutex::new(Vec::new()));
        let a = std::sync::Arc::clone(&applied);
        let c = LogControl::new(
            "info".into(),
            Box::new(move |d| {
                a.lock().unwrap().push(d.to_string());
                Ok(())
            }),
        );
        c.activate("debug:orderer.consensus.kafka=info").unwrap();
        assert_eq!(c.spec(), "orderer.consensus.kafka=info:debug");
        assert!(c.activate("nope").is_err());
        assert_eq!(c.spec(), "orderer.consensus.kafka=info:debug");
        assert_eq!(applied.lock().unwrap().len(), 1);
    }
}
