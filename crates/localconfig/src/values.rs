//! Scalar value syntax accepted in `orderer.yaml` and in `ORDERER_*`
//! environment variables.
//!
//! These parsers reproduce the decode rules of the Go orderer (Go's
//! `time.ParseDuration`, `strconv.ParseBool`, `strconv.ParseInt` with base 0,
//! the byte-size hook, the `[a, b]` list hook and the Kafka version hook), so
//! that a value accepted by Fabric is accepted here with the same meaning.

use std::fmt;
use std::time::Duration;

const NANOS_PER_SEC: u64 = 1_000_000_000;
/// Largest duration Go can represent (`math.MaxInt64` nanoseconds).
pub const MAX_GO_DURATION_NANOS: u64 = i64::MAX as u64;

/// Parses a duration in Go's `time.ParseDuration` syntax, e.g. `5s`,
/// `500ms`, `1m30s`, `1.5h`, `-2s`, `0`.
///
/// Returns the signed number of nanoseconds. Units: `ns`, `us`, `µs`, `μs`,
/// `ms`, `s`, `m`, `h`. A bare number is only accepted for `0`.
pub fn parse_go_duration(input: &str) -> Result<i64, String> {
    let invalid = || format!("invalid duration {input:?}");
    let mut s = input.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first() {
        if c == b'-' || c == b'+' {
            neg = c == b'-';
            s = &s[1..];
        }
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part.
        let start_len = s.len();
        let mut v: u64 = 0;
        while let Some(&c) = s.first() {
            if !c.is_ascii_digit() {
                break;
            }
            if v > LIMIT / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(c - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
            s = &s[1..];
        }
        let pre = start_len != s.len();
        // Fractional part.
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let frac_len = s.len();
            let mut overflow = false;
            while let Some(&c) = s.first() {
                if !c.is_ascii_digit() {
                    break;
                }
                if !overflow {
                    if f > (LIMIT - 1) / 10 {
                        overflow = true;
                    } else {
                        let y = f * 10 + u64::from(c - b'0');
                        if y > LIMIT {
                            overflow = true;
                        } else {
                            f = y;
                            scale *= 10.0;
                        }
                    }
                }
                s = &s[1..];
            }
            post = frac_len != s.len();
        }
        if !pre && !post {
            return Err(invalid());
        }
        // Unit.
        let unit_len = s
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("missing unit in duration {input:?}"));
        }
        let unit_str = &s[..unit_len];
        s = &s[unit_len..];
        let unit: u64 = match unit_str {
            b"ns" => 1,
            b"us" => 1_000,
            b"\xc2\xb5s" | b"\xce\xbcs" => 1_000, // U+00B5 and U+03BC
            b"ms" => 1_000_000,
            b"s" => NANOS_PER_SEC,
            b"m" => 60 * NANOS_PER_SEC,
            b"h" => 3600 * NANOS_PER_SEC,
            _ => {
                return Err(format!(
                    "unknown unit {:?} in duration {input:?}",
                    String::from_utf8_lossy(unit_str)
                ))
            }
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            // Same floating-point computation as Go, for identical rounding.
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total += v;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        // total <= 2^63 here, so the negation fits.
        return Ok((total as i128).wrapping_neg() as i64);
    }
    if total > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(total as i64)
}

/// Formats a duration the way Go's `time.Duration.String` does
/// (`0s`, `250ms`, `1.5µs`, `1m30s`, `12h0m0s`).
///
/// Durations larger than Go's maximum are clamped to that maximum.
pub fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos().min(u128::from(MAX_GO_DURATION_NANOS)) as u64;
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < NANOS_PER_SEC {
        if nanos < 1_000 {
            return format!("{nanos}ns");
        }
        if nanos < 1_000_000 {
            let (int, frac) = frac_parts(nanos, 3);
            return format!("{int}{frac}\u{b5}s");
        }
        let (int, frac) = frac_parts(nanos, 6);
        return format!("{int}{frac}ms");
    }
    let (secs, frac) = frac_parts(nanos, 9);
    let mut out = String::new();
    let hours = secs / 3600;
    let mins = (secs / 60) % 60;
    let s = secs % 60;
    if hours > 0 {
        out.push_str(&format!("{hours}h{mins}m"));
    } else if mins > 0 {
        out.push_str(&format!("{mins}m"));
    }
    out.push_str(&format!("{s}{frac}s"));
    out
}

/// Splits `v` into `v / 10^prec` and a `.ddd` fraction without trailing zeros.
fn frac_parts(v: u64, prec: u32) -> (u64, String) {
    let div = 10u64.pow(prec);
    let rem = v % div;
    if rem == 0 {
        return (v / div, String::new());
    }
    let digits = format!("{rem:0width$}", width = prec as usize);
    (v / div, format!(".{}", digits.trim_end_matches('0')))
}

/// Parses a duration in Go syntax and rejects negative values.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let n = parse_go_duration(input)?;
    if n < 0 {
        return Err(format!("negative duration {input:?} is not allowed"));
    }
    Ok(Duration::from_nanos(n as u64))
}

/// Parses an integer the way Go's `strconv.ParseInt(s, 0, 64)` does: an
/// optional sign, then decimal, `0x` hex, `0o`/leading-`0` octal or `0b`
/// binary digits, with `_` separators allowed.
pub fn parse_go_int(input: &str) -> Result<i128, String> {
    let err = || format!("{input:?} is not a valid integer");
    let (neg, body) = match input.as_bytes().first() {
        Some(b'-') => (true, &input[1..]),
        Some(b'+') => (false, &input[1..]),
        _ => (false, input),
    };
    if body.is_empty() {
        return Err(err());
    }
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(r) = lower.strip_prefix("0x") {
        (16, r.to_string(), true)
    } else if let Some(r) = lower.strip_prefix("0b") {
        (2, r.to_string(), true)
    } else if let Some(r) = lower.strip_prefix("0o") {
        (8, r.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    // Underscores must separate digits (or follow the base prefix).
    if digits.ends_with('_') || digits.contains("__") || (!prefixed && digits.starts_with('_')) {
        return Err(err());
    }
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() {
        return Err(err());
    }
    let mut v: i128 = 0;
    for c in digits.chars() {
        let d = c.to_digit(radix).ok_or_else(err)?;
        v = v
            .checked_mul(i128::from(radix))
            .and_then(|v| v.checked_add(i128::from(d)))
            .filter(|v| *v <= i128::from(u64::MAX))
            .ok_or_else(err)?;
    }
    Ok(if neg { -v } else { v })
}

/// Parses a boolean the way Go's `strconv.ParseBool` does
/// (`1`, `t`, `T`, `TRUE`, `true`, `True`, `0`, `f`, `F`, `FALSE`, `false`,
/// `False`). YAML 1.1 words (`yes`/`no`/`on`/`off`), which the Go YAML
/// parser turns into booleans, are accepted as well.
pub fn parse_go_bool(input: &str) -> Result<bool, String> {
    match input {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Ok(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Ok(false),
        // Go's weakly typed decoding turns an empty string into false.
        "" => Ok(false),
        _ => Err(format!("{input:?} is not a valid boolean")),
    }
}

/// Parses a byte size: a plain integer (Go base-0 syntax) or an integer
/// followed by optional spaces and a unit `K`, `M` or `G` (any case,
/// optionally followed by `B`/`b`). Units are binary: `1 KB` = 1024,
/// `1 MB` = 1024², `1 GB` = 1024³. The result must fit in `max`.
///
/// As in Fabric, the number before a unit is read with Go's base-0 rules,
/// so a leading `0` means octal (`010 MB` is 8 MiB).
pub fn parse_byte_size(input: &str, max: u64) -> Result<u64, String> {
    let value = match split_size_unit(input) {
        Some((digits, shift)) => {
            let n = parse_go_int(digits).map_err(|_| format!("{input:?} is not a valid size"))?;
            let n = u64::try_from(n).map_err(|_| format!("{input:?} is not a valid size"))?;
            n.checked_mul(1u64 << shift)
                .ok_or_else(|| format!("value {input:?} overflows"))?
        }
        None => {
            let s = if input.is_empty() { "0" } else { input };
            let n = parse_go_int(s).map_err(|_| format!("{input:?} is not a valid size"))?;
            if n < 0 {
                return Err(format!("{input:?} is negative"));
            }
            u64::try_from(n).map_err(|_| format!("value {input:?} overflows"))?
        }
    };
    if value > max {
        return Err(format!("value {input:?} exceeds the maximum {max}"));
    }
    Ok(value)
}

/// Matches `^[0-9]+\s*(?i)(k|m|g)b?$` and returns the digits and the shift.
fn split_size_unit(input: &str) -> Option<(&str, u32)> {
    let digits_end = input
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(input.len());
    if digits_end == 0 {
        return None;
    }
    let digits = &input[..digits_end];
    let rest = input[digits_end..].trim_start_matches([' ', '\t', '\n', '\r', '\x0c']);
    let rest = rest.to_ascii_lowercase();
    let unit = rest.strip_suffix('b').unwrap_or(&rest);
    let shift = match unit {
        "k" => 10,
        "m" => 20,
        "g" => 30,
        _ => return None,
    };
    Some((digits, shift))
}

/// Fabric's list hook: a string of the form `[a, b, c]` becomes a list of
/// trimmed items. `[]` is an empty list. Other strings return `None`.
pub fn parse_bracket_list(input: &str) -> Option<Vec<String>> {
    let inner = input.strip_prefix('[')?.strip_suffix(']')?;
    if inner.trim().is_empty() {
        // Go's strings.Split("") yields one empty item; an empty list is the
        // useful reading and what an operator means.
        return Some(Vec::new());
    }
    Some(inner.split(',').map(|s| s.trim().to_string()).collect())
}

/// A Kafka protocol version, resolved like Fabric does: the configured
/// version string is mapped to the newest known protocol version that is
/// not newer than it (0.8.2.0 … 0.11.0.0, and 1.0.0.0 for anything ≥ 1.0.0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KafkaVersion(pub [u32; 4]);

impl KafkaVersion {
    /// The default protocol version (0.10.2.0).
    pub const V0_10_2_0: KafkaVersion = KafkaVersion([0, 10, 2, 0]);
    /// The highest protocol version Fabric distinguishes.
    pub const V1_0_0_0: KafkaVersion = KafkaVersion([1, 0, 0, 0]);

    const KNOWN: [[u32; 4]; 11] = [
        [0, 8, 2, 0],
        [0, 8, 2, 1],
        [0, 8, 2, 2],
        [0, 9, 0, 0],
        [0, 9, 0, 1],
        [0, 10, 0, 0],
        [0, 10, 0, 1],
        [0, 10, 1, 0],
        [0, 10, 2, 0],
        [0, 11, 0, 0],
        [1, 0, 0, 0],
    ];

    /// Parses and resolves a version string such as `0.10.2.0`, `1.1.0` or
    /// `v2.8.1`. Pre-release versions (`1.0.0-rc1`) are not supported, as
    /// in Fabric.
    pub fn parse(input: &str) -> Result<KafkaVersion, String> {
        let s = input.strip_prefix('v').unwrap_or(input);
        // Build metadata (`+...`) is ignored by version comparison.
        let s = match s.split_once('+') {
            Some((v, meta)) if !meta.is_empty() => v,
            Some(_) => return Err(format!("unable to parse Kafka version {input:?}")),
            None => s,
        };
        if s.contains('-') {
            return Err(format!("unsupported Kafka version {input:?}"));
        }
        let mut segs = Vec::new();
        for part in s.split('.') {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("unable to parse Kafka version {input:?}"));
            }
            segs.push(
                part.parse::<u64>()
                    .map_err(|_| format!("unable to parse Kafka version {input:?}"))?,
            );
        }
        let cmp = |known: &[u32; 4]| -> std::cmp::Ordering {
            let n = segs.len().max(4);
            for i in 0..n {
                let a = segs.get(i).copied().unwrap_or(0);
                let b = known.get(i).copied().map(u64::from).unwrap_or(0);
                match a.cmp(&b) {
                    std::cmp::Ordering::Equal => continue,
                    o => return o,
                }
            }
            std::cmp::Ordering::Equal
        };
        Self::KNOWN
            .iter()
            .rev()
            .find(|k| cmp(k) != std::cmp::Ordering::Less)
            .map(|k| KafkaVersion(*k))
            .ok_or_else(|| format!("unsupported Kafka version {input:?}"))
    }
}

impl Default for KafkaVersion {
    fn default() -> Self {
        KafkaVersion::V0_10_2_0
    }
}

impl fmt::Display for KafkaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

impl serde::Serialize for KafkaVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for KafkaVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KafkaVersion::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Extracts the `CERTIFICATE` PEM blocks without headers from `text`,
/// re-encoded with 64-character lines, as Fabric does for `File:` lists.
pub fn pem_certificates(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let after = &rest[begin + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = body_start.find(&end_marker) else {
            break;
        };
        let body = &body_start[..end];
        rest = &body_start[end + end_marker.len()..];
        let has_headers = body.lines().any(|l| l.contains(':'));
        let b64: String = body.split_whitespace().collect();
        let valid = !b64.is_empty()
            && b64
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'=');
        if !valid {
            // Go's pem.Decode stops at a block it cannot decode.
            break;
        }
        if label != "CERTIFICATE" || has_headers {
            continue;
        }
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        out.push(pem);
    }
    out
}

/// Serde helpers for `Duration` fields: written as Go duration strings,
/// read from Go duration strings or integer nanoseconds.
pub(crate) mod go_duration {
    use super::{format_go_duration, parse_duration};
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_go_duration(*d))
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Nanos(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Nanos(n) => Ok(Duration::from_nanos(n)),
            Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> i64 {
        parse_go_duration(s).unwrap()
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(d("0"), 0);
        assert_eq!(d("+0"), 0);
        assert_eq!(d("5s"), 5_000_000_000);
        assert_eq!(d("500ms"), 500_000_000);
        assert_eq!(d("1m30s"), 90_000_000_000);
        assert_eq!(d("12h"), 12 * 3600 * 1_000_000_000);
        assert_eq!(d("1.5h"), 5400 * 1_000_000_000);
        assert_eq!(d(".5s"), 500_000_000);
        assert_eq!(d("1.s"), 1_000_000_000);
        assert_eq!(d("-2s"), -2_000_000_000);
        assert_eq!(d("1h2m3s4ms5us6ns"), 3_723_004_005_006);
        assert_eq!(d("3µs"), 3_000);
        assert_eq!(d("3μs"), 3_000);
        assert_eq!(d("2562047h47m16.854775807s"), i64::MAX);
        assert_eq!(d("-2562047h47m16.854775808s"), i64::MIN);
        for bad in [
            "",
            "s",
            "5",
            "00",
            ".s",
            "1d",
            "1 s",
            "1s ",
            "+",
            "-",
            "2562047h47m16.854775808s",
            "9999999999999999999h",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} should fail");
        }
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn duration_formatting_like_go() {
        let f = |n: u64| format_go_duration(Duration::from_nanos(n));
        assert_eq!(f(0), "0s");
        assert_eq!(f(1), "1ns");
        assert_eq!(f(1_500), "1.5µs");
        assert_eq!(f(250_000_000), "250ms");
        assert_eq!(f(2_000_000_000), "2s");
        assert_eq!(f(90_000_000_000), "1m30s");
        assert_eq!(f(12 * 3600 * 1_000_000_000), "12h0m0s");
        assert_eq!(f(3_723_004_005_006), "1h2m3.004005006s");
    }

    #[test]
    fn ints_like_go_base0() {
        assert_eq!(parse_go_int("42").unwrap(), 42);
        assert_eq!(parse_go_int("-42").unwrap(), -42);
        assert_eq!(parse_go_int("0x1F").unwrap(), 31);
        assert_eq!(parse_go_int("010").unwrap(), 8);
        assert_eq!(parse_go_int("0b101").unwrap(), 5);
        assert_eq!(parse_go_int("1_000").unwrap(), 1000);
        for bad in ["", "-", "08", "1.5", "abc", "1__0", "_1", "1_"] {
            assert!(parse_go_int(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes_like_fabric() {
        let m = u64::from(u32::MAX);
        assert_eq!(parse_byte_size("10 MB", m).unwrap(), 10 * 1024 * 1024);
        assert_eq!(parse_byte_size("512 KB", m).unwrap(), 512 * 1024);
        assert_eq!(parse_byte_size("98 MB", m).unwrap(), 98 * 1024 * 1024);
        assert_eq!(parse_byte_size("1m", m).unwrap(), 1024 * 1024);
        assert_eq!(parse_byte_size("2gb", m).unwrap(), 2 << 30);
        assert_eq!(parse_byte_size("3 G", m).unwrap(), 3 << 30);
        assert_eq!(parse_byte_size("104857600", m).unwrap(), 104_857_600);
        assert_eq!(parse_byte_size("", m).unwrap(), 0);
        assert_eq!(parse_byte_size("010 MB", m).unwrap(), 8 << 20);
        for bad in [
            "4 GB",
            "10 MiB",
            "10 B",
            "MB",
            "-1",
            "1.5 MB",
            "08 KB",
            "4294967296",
        ] {
            assert!(parse_byte_size(bad, m).is_err(), "{bad:?}");
        }
        assert_eq!(parse_byte_size("4294967295", m).unwrap(), m);
    }

    #[test]
    fn bools_and_lists() {
        for t in ["1", "t", "T", "TRUE", "true", "True", "yes"] {
            assert!(parse_go_bool(t).unwrap());
        }
        for f in ["0", "f", "F", "FALSE", "false", "False", "", "off"] {
            assert!(!parse_go_bool(f).unwrap());
        }
        assert!(parse_go_bool("tRuE").is_err());
        assert_eq!(
            parse_bracket_list("[a, b ,c]").unwrap(),
            vec!["a".to_string(), "b".to_string(), "c".to_string()]
        );
        assert_eq!(parse_bracket_list("[]").unwrap(), Vec::<String>::new());
        assert!(parse_bracket_list("a,b").is_none());
    }

    #[test]
    fn kafka_versions_resolve_like_fabric() {
        let v = |s: &str| KafkaVersion::parse(s).unwrap().to_string();
        assert_eq!(v("0.10.2.0"), "0.10.2.0");
        assert_eq!(v("0.10.2.1"), "0.10.2.0");
        assert_eq!(v("0.10.2"), "0.10.2.0");
        assert_eq!(v("0.11.0.2"), "0.11.0.0");
        assert_eq!(v("0.9"), "0.9.0.0");
        assert_eq!(v("0.8.2.1"), "0.8.2.1");
        assert_eq!(v("1.0.0"), "1.0.0.0");
        assert_eq!(v("v2.8.1"), "1.0.0.0");
        assert_eq!(v("3.9.1"), "1.0.0.0");
        for bad in ["0.8.1", "0.7", "1.0.0-rc1", "abc", "", "1..0"] {
            assert!(KafkaVersion::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pem_extraction() {
        let text = "junk\n-----BEGIN CERTIFICATE-----\nQUJD\nREVG\n-----END CERTIFICATE-----\n\
                    -----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----\n\
                    -----BEGIN CERTIFICATE-----\nR0hJ\n-----END CERTIFICATE-----\n";
        let certs = pem_certificates(text);
        assert_eq!(certs.len(), 2);
        assert_eq!(
            certs[0],
            "-----BEGIN CERTIFICATE-----\nQUJDREVG\n-----END CERTIFICATE-----\n"
        );
    }

    proptest! {
        #[test]
        fn duration_round_trip(n in 0u64..=MAX_GO_DURATION_NANOS) {
            let d = Duration::from_nanos(n);
            let s = format_go_duration(d);
            prop_assert_eq!(parse_duration(&s).unwrap(), d, "{}", s);
        }

        #[test]
        fn duration_parts_round_trip(h in 0u64..10_000, m in 0u64..60, s in 0u64..60, ms in 0u64..1000) {
            let text = format!("{h}h{m}m{s}s{ms}ms");
            let expect = ((h * 3600 + m * 60 + s) * 1000 + ms) * 1_000_000;
            prop_assert_eq!(parse_go_duration(&text).unwrap(), expect as i64);
        }

        #[test]
        fn duration_parser_never_panics(s in "\\PC{0,24}") {
            let _ = parse_go_duration(&s);
        }

        #[test]
        fn duration_parser_never_panics_on_near_valid(s in "[-+]?[0-9.]{0,22}(ns|us|µs|ms|s|m|h|x)?([0-9.]{0,5}(s|m|h))?") {
            let _ = parse_go_duration(&s);
        }

        #[test]
        fn size_round_trip(n in 0u64..=4096, unit in 0usize..3) {
            let (suffix, shift) = [("KB", 10), ("MB", 20), ("G", 30)][unit];
            let text = format!("{n} {suffix}");
            let expect = n << shift;
            let r = parse_byte_size(&text, u64::from(u32::MAX));
            if expect <= u64::from(u32::MAX) {
                prop_assert_eq!(r.unwrap(), expect);
            } else {
                prop_assert!(r.is_err());
            }
        }

        #[test]
        fn plain_size_round_trip(n in 0u64..=u64::from(u32::MAX)) {
            prop_assert_eq!(parse_byte_size(&n.to_string(), u64::from(u32::MAX)).unwrap(), n);
        }

        #[test]
        fn size_parser_never_panics(s in "\\PC{0,24}") {
            let _ = parse_byte_size(&s, u64::from(u32::MAX));
            let _ = parse_go_int(&s);
            let _ = KafkaVersion::parse(&s);
            let _ = pem_certificates(&s);
        }
    }
}
