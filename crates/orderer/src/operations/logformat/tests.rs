use super::*;

/// 2020-12-02 09:05:03.0405 UTC, a Wednesday, day 337.
fn moment() -> Moment {
    Moment::utc(1_606_899_903, 40_500_000)
}

fn record(level: &'static str) -> Record {
    Record {
        level,
        logger: "orderer.common.server".into(),
        func: "server".into(),
        caller: "src/server.rs:42".into(),
        message: "Starting orderer".into(),
        fields: vec![
            ("channel".into(), Value::Str("sys chan".into())),
            ("height".into(), Value::Uint(7)),
        ],
    }
}

fn render(spec: &str, color: bool, r: &Record) -> String {
    FabricLayout::new(LogFormat::parse(spec).unwrap(), color).render(r, &moment())
}

#[test]
fn the_default_layout_is_fabrics() {
    assert_eq!(
        render("", false, &record("INFO")),
        "2020-12-02 09:05:03.040 UTC [orderer.common.server] server -> INFO 001 Starting orderer channel=\"sys chan\" height=7\n"
    );
    // the sequence number counts every line; the level is cut to 4 letters
    let l = FabricLayout::new(LogFormat::parse("").unwrap(), false);
    let mut r = record("WARN");
    r.fields.clear();
    for _ in 0..0x2a {
        l.render(&r, &moment());
    }
    assert!(l.render(&r, &moment()).contains("-> WARN 02b Starting"));
    r.level = "DEBUG";
    assert!(l.render(&r, &moment()).contains("-> DEBU 02c"));
}

#[test]
fn colour_only_when_asked() {
    let r = record("ERROR");
    assert!(!render("", false, &r).contains('\x1b'));
    let c = render("", true, &r);
    assert!(c.starts_with("\x1b[31m2020-12-02"), "{c:?}");
    assert!(c.contains(" 001\x1b[0m Starting"), "{c:?}");
    assert!(render("%{color:bold}x", true, &record("WARN")).starts_with("\x1b[33;1mx"));
}

#[test]
fn verbs_and_directives() {
    let r = Record {
        fields: Vec::new(),
        ..record("INFO")
    };
    assert_eq!(render("%{level:-6s}|", false, &r), "INFO  |\n");
    assert_eq!(render("%{level:6s}|", false, &r), "  INFO|\n");
    assert_eq!(render("%{id:5d}|%{id:x}", false, &r), "    1|2\n");
    assert_eq!(render("%{module:.7s}", false, &r), "orderer\n");
    assert_eq!(render("%{message:q}", false, &r), "\"Starting orderer\"\n");
    // not a verb: plain text, as Fabric's regular expression leaves it
    assert_eq!(render("%{nope} %{level", false, &r), "%{nope} %{level\n");
    assert_eq!(
        LogFormat::parse("%{color:blue}").unwrap_err(),
        "invalid color option: blue"
    );
    assert!(LogFormat::parse("%{level:d}").is_err());
    assert!(LogFormat::parse("%{id:s}").is_err());
}

#[test]
fn go_time_layouts() {
    let m = moment();
    let f = |layout: &str| {
        let mut s = String::new();
        format_time(&mut s, &parse_layout(layout), &m);
        s
    };
    assert_eq!(
        f("2006-01-02T15:04:05.999Z07:00"),
        "2020-12-02T09:05:03.04Z"
    );
    assert_eq!(
        f("Mon Jan _2 3:4:5 PM 06 002 __2"),
        "Wed Dec  2 9:5:3 AM 20 337 337"
    );
    assert_eq!(
        f("Monday, January 2 2006 03pm"),
        "Wednesday, December 2 2020 09am"
    );
    assert_eq!(f(".000000 ,00 .9"), ".040500 ,04 ");
    assert_eq!(
        f("15:04:05.000 MST -0700 -07:00 -07"),
        "09:05:03.040 UTC +0000 +00:00 +00"
    );
    assert_eq!(f("_2006"), "_2020");
    let east = Moment {
        offset: 5 * 3600 + 30 * 60,
        zone: String::new(),
        ..m.clone()
    };
    let mut s = String::new();
    format_time(&mut s, &parse_layout("MST Z07:00 -070000"), &east);
    assert_eq!(s, "+0530 +05:30 +053000");
}

#[test]
fn utc_breakdown_matches_known_dates() {
    for (unix, want) in [
        (0, (1970, 1, 1, 4, 1)),
        (951_782_400, (2000, 2, 29, 2, 60)),
        (1_609_459_199, (2020, 12, 31, 4, 366)),
        (-86_400, (1969, 12, 31, 3, 365)),
    ] {
        let m = Moment::utc(unix, 0);
        assert_eq!(
            (m.year, m.month, m.day, m.weekday, m.yearday),
            want,
            "{unix}"
        );
    }
}

#[test]
fn json_and_logfmt_are_zaps_keys() {
    let line = render("json", true, &record("INFO"));
    assert!(!line.contains('\x1b'));
    let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
    assert_eq!(v["level"], "info");
    assert_eq!(v["name"], "orderer.common.server");
    assert_eq!(v["caller"], "src/server.rs:42");
    assert_eq!(v["msg"], "Starting orderer");
    assert_eq!(v["channel"], "sys chan");
    assert_eq!(v["height"], 7);
    assert!((v["ts"].as_f64().unwrap() - 1_606_899_903.040_5).abs() < 1e-6);
    assert_eq!(
        render("logfmt", false, &record("WARN")),
        "ts=1606899903.0405 level=warn name=orderer.common.server caller=src/server.rs:42 msg=\"Starting orderer\" channel=\"sys chan\" height=7\n"
    );
}

#[test]
fn logger_names_for_targets() {
    use super::super::logspec::fabric_logger_name as n;
    assert_eq!(n("orderer::broadcast"), "orderer.common.broadcast");
    assert_eq!(n("orderer::server"), "orderer.common.server");
    assert_eq!(n("librdkafka"), "orderer.consensus.kafka.sarama");
    assert_eq!(
        n("orderer::consensus::kafka::chain"),
        "orderer.consensus.kafka.chain"
    );
    assert_eq!(n("fabric_ledger::io"), "common.ledger");
}
