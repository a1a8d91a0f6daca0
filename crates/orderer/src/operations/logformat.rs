//! Fabric's log line layouts (`FABRIC_LOGGING_FORMAT`) for `tracing` events.
//!
//! Three encodings, as Fabric's `flogging`:
//! - a format spec in go-logging's syntax (the default, [`DEFAULT_FORMAT`]):
//!   text with `%{verb}` or `%{verb:directive}` for `color` (`bold`,
//!   `reset`), `id` (a sequence number), `level`, `message`, `module` (the
//!   logger name), `shortfunc` and `time` (a Go time layout). The directive
//!   of `id`, `level`, `message`, `module` and `shortfunc` is a Go `fmt`
//!   verb without its `%` (`.4s`, `03x`, `-5s`). `%{` followed by anything
//!   else is plain text. The event's other fields follow the line as
//!   `key=value`.
//! - `json`: zap's production JSON (`level`, `ts` as Unix seconds, `name`,
//!   `caller`, `msg`, then the fields).
//! - `logfmt`: the same keys as `key=value` pairs, `ts` first.
//!
//! Differences from Fabric, all because Rust has no Go runtime to ask:
//! `shortfunc` is the last segment of the Rust module that logged (Fabric
//! prints the Go function's name), `caller` is the Rust source file, and the
//! logger names are this orderer's (`crate::operations::logspec`'s
//! [`fabric_logger_name`]). Colours are written only when standard error is
//! a terminal.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::logspec::fabric_logger_name;

/// Fabric's default format spec (`flogging`'s `defaultFormat`).
pub const DEFAULT_FORMAT: &str = "%{color}%{time:2006-01-02 15:04:05.000 MST} [%{module}] %{shortfunc} -> %{level:.4s} %{id:03x}%{color:reset} %{message}";

/// A parsed `FABRIC_LOGGING_FORMAT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFormat {
    /// A go-logging format spec.
    Console(Vec<Piece>),
    /// zap's JSON encoder.
    Json,
    /// zap-logfmt's encoder.
    Logfmt,
}

/// One part of a console format spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// `%{color}`, `%{color:bold}`, `%{color:reset}`.
    Color(ColorKind),
    /// `%{id}`: a sequence number shared by every line.
    Id(Verb),
    /// `%{level}`: `DEBUG`, `INFO`, `WARN`, `ERROR`.
    Level(Verb),
    /// `%{message}`.
    Message(Verb),
    /// `%{module}`: the Fabric logger name.
    Module(Verb),
    /// `%{shortfunc}`.
    ShortFunc(Verb),
    /// `%{time}` with its Go layout.
    Time(Vec<TimeTok>),
}

/// The three forms of `%{color}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorKind {
    /// The level's colour.
    Level,
    /// The level's colour, bold.
    Bold,
    /// Back to normal.
    Reset,
}

/// A Go `fmt` verb: `[-][0][width][.precision]conv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verb {
    left: bool,
    zero: bool,
    width: usize,
    precision: Option<usize>,
    conv: char,
}

impl LogFormat {
    /// Parses `FABRIC_LOGGING_FORMAT` as Fabric's `SetFormat` does (empty is
    /// the default spec), with its error texts.
    pub fn parse(spec: &str) -> Result<LogFormat, String> {
        match spec {
            "" => Self::parse(DEFAULT_FORMAT),
            "json" => Ok(LogFormat::Json),
            "logfmt" => Ok(LogFormat::Logfmt),
            _ => parse_console(spec).map(LogFormat::Console),
        }
    }
}

const VERBS: [&str; 7] = [
    "color",
    "id",
    "level",
    "message",
    "module",
    "shortfunc",
    "time",
];

fn parse_console(spec: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = spec;
    while let Some(at) = rest.find("%{") {
        let after = &rest[at + 2..];
        text.push_str(&rest[..at]);
        match directive(after) {
            Some((verb, arg, used)) => {
                if !text.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut text)));
                }
                out.push(piece(verb, arg.unwrap_or(""))?);
                rest = &after[used..];
            }
            None => {
                text.push_str("%{");
                rest = after;
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

/// `verb}` or `verb:arg}` at the start of `s` (the arg ends at the first
/// `}`): the verb, the arg and the bytes used.
fn directive(s: &str) -> Option<(&'static str, Option<&str>, usize)> {
    VERBS.iter().find_map(|&v| {
        let r = s.strip_prefix(v)?;
        if r.starts_with('}') {
            return Some((v, None, v.len() + 1));
        }
        let arg = r.strip_prefix(':')?;
        let end = arg.find('}')?;
        Some((v, Some(&arg[..end]), v.len() + 1 + end + 1))
    })
}

fn piece(verb: &str, arg: &str) -> Result<Piece, String> {
    let string_verb = |a: &str| Verb::parse(if a.is_empty() { "s" } else { a }, false);
    Ok(match verb {
        "color" => Piece::Color(match arg {
            "" => ColorKind::Level,
            "bold" => ColorKind::Bold,
            "reset" => ColorKind::Reset,
            other => return Err(format!("invalid color option: {other}")),
        }),
        "id" => Piece::Id(Verb::parse(if arg.is_empty() { "d" } else { arg }, true)?),
        "level" => Piece::Level(string_verb(arg)?),
        "message" => Piece::Message(string_verb(arg)?),
        "module" => Piece::Module(string_verb(arg)?),
        "shortfunc" => Piece::ShortFunc(string_verb(arg)?),
        _ => Piece::Time(parse_layout(if arg.is_empty() {
            "2006-01-02T15:04:05.999Z07:00"
        } else {
            arg
        })),
    })
}

impl Verb {
    fn parse(s: &str, integer: bool) -> Result<Verb, String> {
        let bad = || format!("unsupported format verb '%{s}'");
        let mut v = Verb {
            left: false,
            zero: false,
            width: 0,
            precision: None,
            conv: 's',
        };
        let mut chars = s.chars().peekable();
        while let Some(&c) = chars.peek() {
            match c {
                '-' => v.left = true,
                '0' => v.zero = true,
                _ => break,
            }
            chars.next();
        }
        let number = |chars: &mut std::iter::Peekable<std::str::Chars>| {
            let mut n = 0usize;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = n.saturating_mul(10).saturating_add(d as usize).min(1024);
                chars.next();
            }
            n
        };
        v.width = number(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            v.precision = Some(number(&mut chars));
        }
        v.conv = chars.next().ok_or_else(bad)?;
        let ok = if integer {
            matches!(v.conv, 'd' | 'x' | 'X' | 'o' | 'b' | 'v')
        } else {
            matches!(v.conv, 's' | 'v' | 'q')
        };
        if !ok || chars.next().is_some() {
            return Err(bad());
        }
        Ok(v)
    }

    fn write_str(&self, out: &mut String, s: &str) {
        let s = match self.precision {
            Some(p) => s.char_indices().nth(p).map_or(s, |(i, _)| &s[..i]),
            None => s,
        };
        if self.conv == 'q' {
            self.pad(out, &format!("{s:?}"), false);
        } else {
            self.pad(out, s, false);
        }
    }

    fn write_int(&self, out: &mut String, n: u64) {
        let s = match self.conv {
            'x' => format!("{n:x}"),
            'X' => format!("{n:X}"),
            'o' => format!("{n:o}"),
            'b' => format!("{n:b}"),
            _ => n.to_string(),
        };
        self.pad(out, &s, true);
    }

    fn pad(&self, out: &mut String, s: &str, numeric: bool) {
        let fill = self.width.saturating_sub(s.chars().count());
        if self.left {
            out.push_str(s);
            out.extend(std::iter::repeat_n(' ', fill));
        } else {
            let c = if self.zero && numeric { '0' } else { ' ' };
            out.extend(std::iter::repeat_n(c, fill));
            out.push_str(s);
        }
    }
}

/// One element of a Go time layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeTok {
    /// Literal text.
    Lit(String),
    /// `January`.
    LongMonth,
    /// `Jan`.
    Month,
    /// `1`.
    NumMonth,
    /// `01`.
    ZeroMonth,
    /// `Monday`.
    LongWeekDay,
    /// `Mon`.
    WeekDay,
    /// `2`.
    Day,
    /// `_2`.
    UnderDay,
    /// `02`.
    ZeroDay,
    /// `__2`.
    UnderYearDay,
    /// `002`.
    ZeroYearDay,
    /// `15`.
    Hour,
    /// `3`.
    Hour12,
    /// `03`.
    ZeroHour12,
    /// `4`.
    Minute,
    /// `04`.
    ZeroMinute,
    /// `5`.
    Second,
    /// `05`.
    ZeroSecond,
    /// `2006`.
    LongYear,
    /// `06`.
    Year,
    /// `PM` (upper) or `pm`.
    Pm(bool),
    /// `MST`: the zone's abbreviation.
    Zone,
    /// `-0700`, `-07:00`, `-07`, `-070000`, `-07:00:00`, and the `Z`
    /// forms, which print `Z` for UTC.
    Offset {
        z: bool,
        colon: bool,
        minutes: bool,
        seconds: bool,
    },
    /// `.000` / `.999` (or `,`): that many digits of the second; with 9s,
    /// trailing zeros (and an all-zero fraction with its separator) dropped.
    Frac {
        sep: char,
        digits: usize,
        trim: bool,
    },
}

/// Splits a Go layout into its elements, as Go's `nextStdChunk`.
pub fn parse_layout(layout: &str) -> Vec<TimeTok> {
    let b = layout.as_bytes();
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < b.len() {
        match std_chunk(&b[i..]) {
            Some((tok, len)) => {
                if !lit.is_empty() {
                    out.push(TimeTok::Lit(std::mem::take(&mut lit)));
                }
                out.push(tok);
                i += len;
            }
            None => {
                let ch = layout[i..].chars().next().expect("in bounds");
                lit.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    if !lit.is_empty() {
        out.push(TimeTok::Lit(lit));
    }
    out
}

fn std_chunk(s: &[u8]) -> Option<(TimeTok, usize)> {
    use TimeTok::*;
    let has = |p: &str| s.starts_with(p.as_bytes());
    let offset = |z: bool, colon: bool, minutes: bool, seconds: bool| Offset {
        z,
        colon,
        minutes,
        seconds,
    };
    Some(match s[0] {
        b'J' if has("January") => (LongMonth, 7),
        b'J' if has("Jan") => (Month, 3),
        b'M' if has("Monday") => (LongWeekDay, 6),
        b'M' if has("Mon") => (WeekDay, 3),
        b'M' if has("MST") => (Zone, 3),
        b'0' if has("002") => (ZeroYearDay, 3),
        b'0' if s.len() > 1 && (b'1'..=b'6').contains(&s[1]) => (
            [ZeroMonth, ZeroDay, ZeroHour12, ZeroMinute, ZeroSecond, Year][(s[1] - b'1') as usize]
                .clone(),
            2,
        ),
        b'1' if has("15") => (Hour, 2),
        b'1' => (NumMonth, 1),
        b'2' if has("2006") => (LongYear, 4),
        b'2' => (Day, 1),
        b'_' if has("_2006") => return None,
        b'_' if has("__2") => (UnderYearDay, 3),
        b'_' if has("_2") => (UnderDay, 2),
        b'3' => (Hour12, 1),
        b'4' => (Minute, 1),
        b'5' => (Second, 1),
        b'P' if has("PM") => (Pm(true), 2),
        b'p' if has("pm") => (Pm(false), 2),
        b'-' | b'Z' => {
            let z = s[0] == b'Z';
            let t = &s[1..];
            let at = |p: &str| t.starts_with(p.as_bytes());
            if at("070000") {
                (offset(z, false, true, true), 7)
            } else if at("07:00:00") {
                (offset(z, true, true, true), 9)
            } else if at("0700") {
                (offset(z, false, true, false), 5)
            } else if at("07:00") {
                (offset(z, true, true, false), 6)
            } else if at("07") {
                (offset(z, false, false, false), 3)
            } else {
                return None;
            }
        }
        b'.' | b',' if s.len() > 1 && (s[1] == b'0' || s[1] == b'9') => {
            let run = s[1..].iter().take_while(|&&c| c == s[1]).count();
            if s.get(1 + run).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            (
                Frac {
                    sep: s[0] as char,
                    digits: run,
                    trim: s[1] == b'9',
                },
                1 + run,
            )
        }
        _ => return None,
    })
}

/// A point in time broken down in the local zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moment {
    /// Seconds since the Unix epoch.
    pub unix: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
    /// Calendar year.
    pub year: i32,
    /// 1–12.
    pub month: u32,
    /// 1–31.
    pub day: u32,
    /// 0–23.
    pub hour: u32,
    /// 0–59.
    pub minute: u32,
    /// 0–60.
    pub second: u32,
    /// 0 = Sunday.
    pub weekday: u32,
    /// 1–366.
    pub yearday: u32,
    /// Seconds east of UTC.
    pub offset: i32,
    /// The zone's abbreviation (`UTC`, `CET`); may be empty.
    pub zone: String,
}

impl Moment {
    /// Now, in the process's local zone (`TZ`, `/etc/localtime`).
    pub fn now() -> Moment {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Moment::local(d.as_secs() as i64, d.subsec_nanos())
    }

    /// `unix` seconds in the local zone.
    pub fn local(unix: i64, nanos: u32) -> Moment {
        let t: libc::time_t = unix as libc::time_t;
        // SAFETY: localtime_r writes only into `tm`, which we own; a zeroed
        // `tm` is a valid value of the plain C struct.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
        if !ok {
            return Moment::utc(unix, nanos);
        }
        let zone = if tm.tm_zone.is_null() {
            String::new()
        } else {
            // SAFETY: tm_zone points at a NUL-terminated static string of
            // the C library's zone tables.
            unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
                .to_string_lossy()
                .into_owned()
        };
        Moment {
            unix,
            nanos,
            year: tm.tm_year + 1900,
            month: (tm.tm_mon + 1) as u32,
            day: tm.tm_mday as u32,
            hour: tm.tm_hour as u32,
            minute: tm.tm_min as u32,
            second: tm.tm_sec as u32,
            weekday: tm.tm_wday as u32,
            yearday: (tm.tm_yday + 1) as u32,
            offset: tm.tm_gmtoff as i32,
            zone,
        }
    }

    /// `unix` seconds in UTC (civil-from-days).
    pub fn utc(unix: i64, nanos: u32) -> Moment {
        let days = unix.div_euclid(86_400);
        let secs = unix.rem_euclid(86_400) as u32;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        const BEFORE: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let yearday = BEFORE[month as usize - 1] + day + u32::from(leap && month > 2);
        Moment {
            unix,
            nanos,
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
            weekday: (days + 4).rem_euclid(7) as u32,
            yearday,
            offset: 0,
            zone: "UTC".into(),
        }
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Formats `m` with a parsed Go layout.
pub fn format_time(out: &mut String, layout: &[TimeTok], m: &Moment) {
    use TimeTok::*;
    let hour12 = if m.hour.is_multiple_of(12) {
        12
    } else {
        m.hour % 12
    };
    for t in layout {
        let _ = match t {
            Lit(s) => write!(out, "{s}"),
            LongMonth => write!(out, "{}", MONTHS[m.month as usize - 1]),
            Month => write!(out, "{}", &MONTHS[m.month as usize - 1][..3]),
            NumMonth => write!(out, "{}", m.month),
            ZeroMonth => write!(out, "{:02}", m.month),
            LongWeekDay => write!(out, "{}", DAYS[m.weekday as usize]),
            WeekDay => write!(out, "{}", &DAYS[m.weekday as usize][..3]),
            Day => write!(out, "{}", m.day),
            UnderDay => write!(out, "{:>2}", m.day),
            ZeroDay => write!(out, "{:02}", m.day),
            UnderYearDay => write!(out, "{:>3}", m.yearday),
            ZeroYearDay => write!(out, "{:03}", m.yearday),
            Hour => write!(out, "{:02}", m.hour),
            Hour12 => write!(out, "{hour12}"),
            ZeroHour12 => write!(out, "{hour12:02}"),
            Minute => write!(out, "{}", m.minute),
            ZeroMinute => write!(out, "{:02}", m.minute),
            Second => write!(out, "{}", m.second),
            ZeroSecond => write!(out, "{:02}", m.second),
            LongYear => write!(out, "{:04}", m.year),
            Year => write!(out, "{:02}", m.year.rem_euclid(100)),
            Pm(upper) => {
                let s = if m.hour >= 12 { "PM" } else { "AM" };
                write!(
                    out,
                    "{}",
                    if *upper {
                        s.to_string()
                    } else {
                        s.to_lowercase()
                    }
                )
            }
            Zone if !m.zone.is_empty() => write!(out, "{}", m.zone),
            Zone => write_offset(out, m.offset, false, true, false),
            Offset { z: true, .. } if m.offset == 0 => write!(out, "Z"),
            Offset {
                colon,
                minutes,
                seconds,
                ..
            } => write_offset(out, m.offset, *colon, *minutes, *seconds),
            Frac { sep, digits, trim } => write_frac(out, m.nanos, *sep, *digits, *trim),
        };
    }
}

fn write_offset(
    out: &mut String,
    offset: i32,
    colon: bool,
    minutes: bool,
    seconds: bool,
) -> std::fmt::Result {
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.unsigned_abs();
    write!(out, "{sign}{:02}", a / 3600)?;
    let sep = if colon { ":" } else { "" };
    if minutes {
        write!(out, "{sep}{:02}", a / 60 % 60)?;
    }
    if seconds {
        write!(out, "{sep}{:02}", a % 60)?;
    }
    Ok(())
}

fn write_frac(
    out: &mut String,
    nanos: u32,
    sep: char,
    digits: usize,
    trim: bool,
) -> std::fmt::Result {
    let all = format!("{nanos:09}");
    let mut s = &all[..digits.min(9)];
    if trim {
        s = s.trim_end_matches('0');
        if s.is_empty() {
            return Ok(());
        }
    }
    write!(out, "{sep}{s}")
}

/// What one log line says, taken from a `tracing` event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    /// Fabric's level name: `DEBUG`, `INFO`, `WARN`, `ERROR`, or
    /// `LEVEL(-2)` for `payload` (zap's name for a level it does not know).
    pub level: &'static str,
    /// The Fabric logger name.
    pub logger: String,
    /// `%{shortfunc}`.
    pub func: String,
    /// `dir/file.rs:line`.
    pub caller: String,
    /// The message.
    pub message: String,
    /// The other fields, in order.
    pub fields: Vec<(String, Value)>,
}

/// A field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Str(String),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    Uint(u64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

fn fabric_level(l: &Level) -> &'static str {
    match *l {
        Level::TRACE => "LEVEL(-2)",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

/// Go's (and zap's) colour of a level, as an SGR number.
fn level_color(level: &str) -> u8 {
    match level {
        "DEBUG" => 36,
        "INFO" => 34,
        "WARN" => 33,
        "ERROR" => 31,
        _ => 0,
    }
}

/// Renders records in a [`LogFormat`]; the `tracing` formatter.
#[derive(Debug)]
pub struct FabricLayout {
    format: LogFormat,
    color: bool,
    sequence: AtomicU64,
}

impl FabricLayout {
    /// `color`: write `%{color}` escapes (only on a terminal).
    pub fn new(format: LogFormat, color: bool) -> Self {
        Self {
            format,
            color,
            sequence: AtomicU64::new(0),
        }
    }

    /// One line (with its newline) for `r` at `m`.
    pub fn render(&self, r: &Record, m: &Moment) -> String {
        let mut out = String::with_capacity(160);
        match &self.format {
            LogFormat::Console(pieces) => {
                for p in pieces {
                    self.piece(&mut out, p, r, m);
                }
                for (k, v) in &r.fields {
                    out.push(' ');
                    logfmt_pair(&mut out, k, v);
                }
            }
            LogFormat::Json => json_line(&mut out, r, m),
            LogFormat::Logfmt => logfmt_line(&mut out, r, m),
        }
        out.push('\n');
        out
    }

    fn piece(&self, out: &mut String, p: &Piece, r: &Record, m: &Moment) {
        match p {
            Piece::Text(s) => out.push_str(s),
            Piece::Color(_) if !self.color => {}
            Piece::Color(ColorKind::Reset) => out.push_str("\x1b[0m"),
            Piece::Color(ColorKind::Bold) => {
                let _ = write!(out, "\x1b[{};1m", level_color(r.level));
            }
            Piece::Color(ColorKind::Level) => {
                let _ = write!(out, "\x1b[{}m", level_color(r.level));
            }
            Piece::Id(v) => v.write_int(out, self.sequence.fetch_add(1, Ordering::Relaxed) + 1),
            Piece::Level(v) => v.write_str(out, r.level),
            Piece::Message(v) => v.write_str(out, r.message.trim_end_matches('\n')),
            Piece::Module(v) => v.write_str(out, &r.logger),
            Piece::ShortFunc(v) => v.write_str(out, &r.func),
            Piece::Time(layout) => format_time(out, layout, m),
        }
    }
}

fn unix_seconds(m: &Moment) -> f64 {
    m.unix as f64 + f64::from(m.nanos) / 1e9
}

fn json_line(out: &mut String, r: &Record, m: &Moment) {
    let mut obj = serde_json::Map::new();
    let s = |v: &str| serde_json::Value::String(v.to_string());
    obj.insert("level".into(), s(&r.level.to_ascii_lowercase()));
    obj.insert("ts".into(), serde_json::json!(unix_seconds(m)));
    obj.insert("name".into(), s(&r.logger));
    obj.insert("caller".into(), s(&r.caller));
    obj.insert("msg".into(), s(&r.message));
    for (k, v) in &r.fields {
        let v = match v {
            Value::Str(x) => s(x),
            Value::Int(x) => serde_json::json!(x),
            Value::Uint(x) => serde_json::json!(x),
            Value::Float(x) => serde_json::json!(x),
            Value::Bool(x) => serde_json::json!(x),
        };
        obj.insert(k.clone(), v);
    }
    out.push_str(&serde_json::Value::Object(obj).to_string());
}

fn logfmt_line(out: &mut String, r: &Record, m: &Moment) {
    let level = r.level.to_ascii_lowercase();
    let head = [
        ("ts", Value::Float(unix_seconds(m))),
        ("level", Value::Str(level)),
        ("name", Value::Str(r.logger.clone())),
        ("caller", Value::Str(r.caller.clone())),
        ("msg", Value::Str(r.message.clone())),
    ];
    let pairs = head
        .iter()
        .map(|(k, v)| (*k, v))
        .chain(r.fields.iter().map(|(k, v)| (k.as_str(), v)));
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            out.push(' ');
        }
        logfmt_pair(out, k, v);
    }
}

fn logfmt_pair(out: &mut String, k: &str, v: &Value) {
    let _ = match v {
        Value::Str(s) if needs_quotes(s) => {
            write!(out, "{k}={}", serde_json::Value::from(s.as_str()))
        }
        Value::Str(s) => write!(out, "{k}={s}"),
        Value::Int(x) => write!(out, "{k}={x}"),
        Value::Uint(x) => write!(out, "{k}={x}"),
        Value::Float(x) => write!(out, "{k}={x}"),
        Value::Bool(x) => write!(out, "{k}={x}"),
    };
}

fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.chars()
            .any(|c| c <= ' ' || c == '=' || c == '"' || c == '\u{7f}')
}

#[derive(Default)]
struct Collect {
    message: String,
    fields: Vec<(String, Value)>,
}

impl Collect {
    fn put(&mut self, f: &Field, v: Value) {
        if f.name() == "message" {
            if let Value::Str(s) = v {
                self.message = s;
            }
        } else {
            self.fields.push((f.name().to_string(), v));
        }
    }
}

impl Visit for Collect {
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        self.put(f, Value::Str(format!("{v:?}")));
    }
    fn record_str(&mut self, f: &Field, v: &str) {
        self.put(f, Value::Str(v.to_string()));
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.put(f, Value::Int(v));
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.put(f, Value::Uint(v));
    }
    fn record_f64(&mut self, f: &Field, v: f64) {
        self.put(f, Value::Float(v));
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.put(f, Value::Bool(v));
    }
    fn record_error(&mut self, f: &Field, v: &(dyn std::error::Error + 'static)) {
        self.put(f, Value::Str(v.to_string()));
    }
}

/// `crates/orderer/src/consensus/kafka/chain.rs` → `kafka/chain.rs`.
fn short_caller(file: Option<&str>, line: Option<u32>) -> String {
    let Some(file) = file else {
        return "(unknown)".into();
    };
    let mut parts = file.rsplit('/');
    let name = parts.next().unwrap_or(file);
    let short = match parts.next() {
        Some(dir) => format!("{dir}/{name}"),
        None => name.to_string(),
    };
    format!("{short}:{}", line.unwrap_or(0))
}

/// A `tracing` event as a [`Record`].
pub fn record_of(event: &Event<'_>) -> Record {
    let meta = event.metadata();
    let mut c = Collect::default();
    event.record(&mut c);
    Record {
        level: fabric_level(meta.level()),
        logger: fabric_logger_name(meta.target()),
        func: meta
            .module_path()
            .and_then(|p| p.rsplit("::").next())
            .unwrap_or("(unknown)")
            .to_string(),
        caller: short_caller(meta.file(), meta.line()),
        message: c.message,
        fields: c.fields,
    }
}

impl<S, N> FormatEvent<S, N> for FabricLayout
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        w.write_str(&self.render(&record_of(event), &Moment::now()))
    }
}

/// Counts log entries for `logging_entries_checked` / `_written`
/// (`crate::metrics::ops`). Placed outside the level filter: an entry is
/// *checked* when `tracing` asks whether it is enabled (callsites whose
/// level no directive can enable are never asked, unlike zap, which checks
/// every call), and *written* when every layer let it through.
#[derive(Debug, Default)]
pub struct LogCounter;

fn zap_level_name(l: &Level) -> &'static str {
    match *l {
        Level::TRACE => "Level(-2)",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for LogCounter {
    fn event_enabled(
        &self,
        event: &Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        crate::metrics::ops::log_checked(zap_level_name(event.metadata().level()));
        true
    }

    fn on_event(&self, event: &Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        crate::metrics::ops::log_written(zap_level_name(event.metadata().level()));
    }
}

#[cfg(test)]
mod tests;
