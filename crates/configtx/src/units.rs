//! Byte sizes (`10 MB`, `512 KB`) and Go durations (`2s`, `1m30s`) as
//! configtxgen reads and prints them.

use crate::error::{Error, Result};

/// Parses a byte size the way Fabric's viper decode hook does for `uint32`
/// fields: `<digits><spaces?><k|m|g>[b]` (unit case-insensitive, powers of
/// 1024), or a plain decimal number.
pub fn parse_byte_size(raw: &str) -> Result<u32> {
    let s = raw.trim_end_matches(['\n', '\r']);
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, rest) = s.split_at(digits_end);
    if digits.is_empty() {
        return Err(Error::Config(format!("invalid byte size '{raw}'")));
    }
    let rest_trim = rest.trim_start_matches([' ', '\t', '\n', '\r', '\x0c', '\x0b']);
    let shift = if rest.is_empty() {
        0
    } else {
        let lower = rest_trim.to_ascii_lowercase();
        match lower.as_str() {
            "k" | "kb" => 10,
            "m" | "mb" => 20,
            "g" | "gb" => 30,
            _ => return Err(Error::Config(format!("invalid byte size '{raw}'"))),
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| Error::Config(format!("value '{raw}' overflows uint32")))?;
    let v = n
        .checked_shl(shift)
        .filter(|v| v >> shift == n)
        .unwrap_or(u64::MAX);
    u32::try_from(v).map_err(|_| Error::Config(format!("value '{raw}' overflows uint32")))
}

/// A Go `time.Duration` in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct GoDuration(pub i64);

impl GoDuration {
    /// From whole seconds.
    pub const fn from_secs(s: i64) -> Self {
        GoDuration(s * 1_000_000_000)
    }

    /// From milliseconds.
    pub const fn from_millis(ms: i64) -> Self {
        GoDuration(ms * 1_000_000)
    }

    /// Nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// As a `std::time::Duration` (negative values clamp to zero).
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0.max(0) as u64)
    }

    /// Parses Go's duration syntax (`time.ParseDuration`): an optional sign
    /// and a sequence of decimal numbers with optional fraction and a unit
    /// among `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`; `0` alone is allowed.
    pub fn parse(input: &str) -> Result<Self> {
        let err = || Error::Config(format!("time: invalid duration \"{input}\""));
        let mut s = input;
        let mut neg = false;
        if let Some(r) = s.strip_prefix('-') {
            neg = true;
            s = r;
        } else if let Some(r) = s.strip_prefix('+') {
            s = r;
        }
        if s == "0" {
            return Ok(GoDuration(0));
        }
        if s.is_empty() {
            return Err(err());
        }
        let mut total: u128 = 0;
        while !s.is_empty() {
            let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let int_part = &s[..int_end];
            s = &s[int_end..];
            let mut frac_part = "";
            if let Some(r) = s.strip_prefix('.') {
                let fe = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
                frac_part = &r[..fe];
                s = &r[fe..];
            }
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(err());
            }
            let unit_end = s
                .find(|c: char| c == '.' || c.is_ascii_digit())
                .unwrap_or(s.len());
            let unit = &s[..unit_end];
            s = &s[unit_end..];
            let mult: u128 = match unit {
                "ns" => 1,
                "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                "" => {
                    return Err(Error::Config(format!(
                        "time: missing unit in duration \"{input}\""
                    )))
                }
                _ => {
                    return Err(Error::Config(format!(
                        "time: unknown unit \"{unit}\" in duration \"{input}\""
                    )))
                }
            };
            let mut v: u128 = 0;
            for c in int_part.bytes() {
                v = v
                    .checked_mul(10)
                    .and_then(|v| v.checked_add((c - b'0') as u128))
                    .ok_or_else(err)?;
                if v > i64::MAX as u128 {
                    return Err(err());
                }
            }
            v = v.checked_mul(mult).ok_or_else(err)?;
            // Fraction: Go keeps at most enough digits to not overflow and truncates.
            let mut scale: u128 = 1;
            let mut f: u128 = 0;
            for c in frac_part.bytes() {
                if scale >= 1_000_000_000_000_000_000 {
                    break;
                }
                f = f * 10 + (c - b'0') as u128;
                scale *= 10;
            }
            v += f * mult / scale;
            total = total.checked_add(v).ok_or_else(err)?;
            if total > i64::MAX as u128 + u128::from(neg) {
                return Err(err());
            }
        }
        let t = if neg { -(total as i128) } else { total as i128 };
        Ok(GoDuration(t as i64))
    }
}

fn frac_digits(v: u64, prec: u32) -> String {
    // `v` has `prec` fractional digits; trailing zeros dropped.
    let s = format!("{:0width$}", v, width = prec as usize);
    let t = s.trim_end_matches('0');
    if t.is_empty() {
        String::new()
    } else {
        format!(".{t}")
    }
}

impl std::fmt::Display for GoDuration {
    /// Go's `time.Duration.String()`: `2s`, `500ms`, `1m30s`, `1h0m0s`, `0s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let neg = self.0 < 0;
        let u = self.0.unsigned_abs();
        let sign = if neg { "-" } else { "" };
        if u == 0 {
            return f.write_str("0s");
        }
        if u < 1_000_000_000 {
            return if u < 1_000 {
                write!(f, "{sign}{u}ns")
            } else if u < 1_000_000 {
                write!(f, "{sign}{}{}\u{b5}s", u / 1_000, frac_digits(u % 1_000, 3))
            } else {
                write!(
                    f,
                    "{sign}{}{}ms",
                    u / 1_000_000,
                    frac_digits(u % 1_000_000, 6)
                )
            };
        }
        let frac = frac_digits(u % 1_000_000_000, 9);
        let secs = u / 1_000_000_000;
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        if h > 0 {
            write!(f, "{sign}{h}h{m}m{s}{frac}s")
        } else if m > 0 {
            write!(f, "{sign}{m}m{s}{frac}s")
        } else {
            write!(f, "{sign}{s}{frac}s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("10 MB").unwrap(), 10 * 1024 * 1024);
        assert_eq!(parse_byte_size("99 MB").unwrap(), 99 * 1024 * 1024);
        assert_eq!(parse_byte_size("512 KB").unwrap(), 512 * 1024);
        assert_eq!(parse_byte_size("2mb").unwrap(), 2 * 1024 * 1024);
        assert_eq!(parse_byte_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_byte_size("3 k").unwrap(), 3 * 1024);
        assert_eq!(parse_byte_size("1234").unwrap(), 1234);
        assert!(parse_byte_size("4 GB").is_err());
        assert!(parse_byte_size("MB").is_err());
        assert!(parse_byte_size("10 TB").is_err());
        assert!(parse_byte_size("-1").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(GoDuration::parse("2s").unwrap(), GoDuration::from_secs(2));
        assert_eq!(
            GoDuration::parse("500ms").unwrap(),
            GoDuration::from_millis(500)
        );
        assert_eq!(
            GoDuration::parse("1m30s").unwrap(),
            GoDuration::from_secs(90)
        );
        assert_eq!(
            GoDuration::parse("1.5h").unwrap(),
            GoDuration::from_secs(5400)
        );
        assert_eq!(GoDuration::parse("0").unwrap(), GoDuration(0));
        assert_eq!(GoDuration::parse("-2s").unwrap(), GoDuration::from_secs(-2));
        assert_eq!(GoDuration::parse("10us").unwrap(), GoDuration(10_000));
        assert_eq!(
            GoDuration::parse(".5s").unwrap(),
            GoDuration::from_millis(500)
        );
        assert!(GoDuration::parse("2").is_err());
        assert!(GoDuration::parse("").is_err());
        assert!(GoDuration::parse("s").is_err());
        assert!(GoDuration::parse("2 s").is_err());
        assert!(GoDuration::parse("3d").is_err());
    }

    #[test]
    fn durations_print_like_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1\u{b5}s"),
            (2_200_000, "2.2ms"),
            (500_000_000, "500ms"),
            (2_000_000_000, "2s"),
            (90_000_000_000, "1m30s"),
            (120_000_000_000, "2m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_500_000_000, "1h2m3.5s"),
            (-2_000_000_000, "-2s"),
        ];
        for (n, s) in cases {
            assert_eq!(GoDuration(n).to_string(), s);
        }
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(s in ".{0,40}") {
            let _ = parse_byte_size(&s);
            let _ = GoDuration::parse(&s);
        }

        #[test]
        fn duration_print_parse_round_trip(n in proptest::num::i64::ANY) {
            let d = GoDuration(n);
            proptest::prop_assert_eq!(GoDuration::parse(&d.to_string()).unwrap(), d);
        }
    }
}
