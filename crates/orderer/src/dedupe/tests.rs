use super::*;
use fabric_protos::common::{Header, LastConfig, Metadata};
use proptest::prelude::*;

fn envelope(kind: HeaderType, txid: &str, data: Vec<u8>) -> Vec<u8> {
    let ch = ChannelHeader {
        r#type: kind as i32,
        tx_id: txid.into(),
        ..Default::default()
    };
    let p = Payload {
        header: Some(Header {
            channel_header: ch.encode_to_vec(),
            signature_header: vec![],
        }),
        data,
    };
    Envelope {
        payload: p.encode_to_vec(),
        signature: vec![],
    }
    .encode_to_vec()
}

/// A normal envelope: tx ID `txid`, payload data `body`.
fn env(txid: &str, body: &[u8]) -> Vec<u8> {
    envelope(HeaderType::EndorserTransaction, txid, body.to_vec())
}

fn config_with(caps: &[&str]) -> Config {
    crate::channelconfig::orderer_capabilities_config(caps)
}

/// A CONFIG envelope whose config has (or not) the capability.
fn config_env(on: bool) -> Vec<u8> {
    let caps: &[&str] = if on {
        &["V1_4_2", EXACTLY_ONCE_CAPABILITY]
    } else {
        &["V1_4_2"]
    };
    let ce = ConfigEnvelope {
        config: Some(config_with(caps)),
        last_update: None,
    };
    envelope(HeaderType::Config, "", ce.encode_to_vec())
}

/// Block `number` whose LAST_CONFIG is `last_config`.
fn block(number: u64, last_config: u64, data: Vec<Vec<u8>>) -> Block {
    let mut b = fabric_common::block::new_block(number, vec![], data);
    if let Some(md) = b.metadata.as_mut() {
        md.metadata[fabric_common::block::LAST_CONFIG] = Metadata {
            value: LastConfig { index: last_config }.encode_to_vec(),
            signatures: vec![],
        }
        .encode_to_vec();
    }
    b
}

fn on(entries: usize) -> EnvelopeWindow {
    let mut w = EnvelopeWindow::off(WindowLimits { entries });
    w.set_on(true);
    w
}

#[test]
fn the_capability_is_read_from_the_orderer_group() {
    assert!(exactly_once(&config_with(&[EXACTLY_ONCE_CAPABILITY])));
    assert!(exactly_once(&config_with(&[
        "V2_0",
        EXACTLY_ONCE_CAPABILITY
    ])));
    assert!(!exactly_once(&config_with(&["V2_0"])));
    assert!(!exactly_once(&Config::default()));
}

#[test]
fn off_by_default_every_copy_is_ordered() {
    let mut w = EnvelopeWindow::off(WindowLimits::DEFAULT);
    let e = env("t1", b"x");
    for _ in 0..3 {
        assert!(w.admit(&e));
    }
    assert!(w.is_empty(), "off: nothing is remembered");
    assert_eq!(w.heap_bytes(), 0);
}

#[test]
fn on_drops_byte_identical_copies_only() {
    let mut w = on(10);
    let victim = env("t1", b"victim's content");
    let attacker = env("t1", b"attacker's content");
    assert!(w.admit(&attacker));
    assert!(w.admit(&victim), "same tx ID, other bytes: not a duplicate");
    assert!(!w.admit(&victim), "byte-identical re-send: dropped");
    assert!(!w.admit(&attacker));
    assert!(w.admit(&env("", b"no tx id")));
    assert!(!w.admit(&env("", b"no tx id")), "no tx ID: keyed on bytes");
    assert!(w.admit(b"garbage"));
    assert!(!w.admit(b"garbage"));
    assert_eq!(w.len(), 4);
}

#[test]
fn a_huge_tx_id_costs_one_digest() {
    let mut w = on(10);
    let big = "x".repeat(4 << 20);
    assert!(w.admit(&env(&big, b"a")));
    assert!(!w.admit(&env(&big, b"a")));
    assert!(w.heap_bytes() <= WindowLimits { entries: 10 }.max_heap_bytes());
    assert!(w.heap_bytes() < 4096, "{}", w.heap_bytes());
}

#[test]
fn the_window_is_bounded_in_count_and_bytes() {
    for entries in [1usize, 7, 100, 1000, 4096] {
        let limits = WindowLimits { entries };
        let mut w = on(entries);
        for i in 0..(20 * entries + 5) {
            assert!(w.admit(&env(&format!("t{i}"), b"")));
            assert!(w.len() <= entries);
            assert!(
                w.heap_bytes() <= limits.max_heap_bytes(),
                "{entries}: {} > {}",
                w.heap_bytes(),
                limits.max_heap_bytes()
            );
        }
        assert_eq!(w.len(), entries);
        // The newest is still in the window, the oldest fell out of it.
        assert!(!w.admit(&env(&format!("t{}", 20 * entries + 4), b"")));
        assert!(w.admit(&env("t0", b"")));
    }
}

#[test]
fn the_default_bound_is_the_documented_one() {
    let b = WindowLimits::DEFAULT.max_heap_bytes();
    assert_eq!(b, crate::limits::EXACTLY_ONCE_WINDOW_MAX_BYTES);
    assert!(b < 13 << 20, "{b}");
}

#[test]
fn switching_off_forgets_and_switching_on_starts_empty() {
    let mut w = on(10);
    assert!(w.admit(&env("a", b"")));
    w.set_on(true);
    assert!(
        !w.admit(&env("a", b"")),
        "a config that keeps it on keeps the window"
    );
    w.set_on(false);
    assert!(w.is_empty());
    assert!(w.admit(&env("a", b"")));
    w.set_on(true);
    assert!(w.admit(&env("a", b"")), "on again: starts empty");
}

#[test]
fn zero_entries_never_drops() {
    let mut w = on(0);
    assert!(w.admit(&env("a", b"")));
    assert!(w.admit(&env("a", b"")));
}

#[test]
fn seeding_while_off_reads_nothing() {
    let blocks = std::iter::from_fn(|| -> Option<Block> { panic!("read a block") });
    let w = EnvelopeWindow::seed(WindowLimits::DEFAULT, false, blocks, |_| {
        panic!("read a config")
    });
    assert!(!w.is_on());
}

/// One step of a chain's history.
#[derive(Debug, Clone)]
enum Step {
    /// A batch of normal envelopes (ids from a small set, so copies occur).
    Batch(Vec<(u8, u8)>),
    /// A config block with the capability or without.
    Config(bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => prop::collection::vec((0u8..12, 0u8..2), 1..6).prop_map(Step::Batch),
        1 => any::<bool>().prop_map(Step::Config),
    ]
}

/// Runs `steps` through a live window as a chain would; returns the
/// blocks written and the window.
fn live(genesis_on: bool, entries: usize, steps: &[Step]) -> (Vec<Block>, EnvelopeWindow) {
    let mut w = EnvelopeWindow::off(WindowLimits { entries });
    w.set_on(genesis_on);
    let mut blocks = vec![block(0, 0, vec![config_env(genesis_on)])];
    let mut last_config = 0;
    for s in steps {
        let n = blocks.len() as u64;
        match s {
            Step::Batch(txs) => {
                let data: Vec<Vec<u8>> = txs
                    .iter()
                    .map(|(id, body)| env(&format!("t{id}"), &[*body]))
                    .filter(|e| w.admit(e))
                    .collect();
                if !data.is_empty() {
                    blocks.push(block(n, last_config, data));
                }
            }
            Step::Config(on) => {
                last_config = n;
                blocks.push(block(n, n, vec![config_env(*on)]));
                w.set_on(*on);
            }
        }
    }
    (blocks, w)
}

#[test]
fn blocks_ordered_before_the_switch_are_not_seeded() {
    // genesis (off), a block while off, the config that switches on, a block.
    let early = env("early", b"");
    let late = env("late", b"");
    let blocks = vec![
        block(0, 0, vec![config_env(false)]),
        block(1, 0, vec![early.clone()]),
        block(2, 2, vec![config_env(true)]),
        block(3, 2, vec![late.clone()]),
    ];
    let mut w = EnvelopeWindow::seed(
        WindowLimits::DEFAULT,
        true,
        blocks.clone().into_iter().rev(),
        |n| config_block_on(&blocks[n as usize]),
    );
    assert_eq!(w.len(), 1);
    assert!(w.admit(&early), "ordered while off: not in the window");
    assert!(!w.admit(&late));
}

#[test]
fn a_config_block_is_read_for_its_capability() {
    assert!(config_block_on(&block(0, 0, vec![config_env(true)])));
    assert!(!config_block_on(&block(0, 0, vec![config_env(false)])));
    assert!(!config_block_on(&block(0, 0, vec![env("t", b"")])));
    assert!(!config_block_on(&block(0, 0, vec![])));
}

proptest! {
    #[test]
    fn seeding_from_the_chain_equals_the_live_window(
        genesis_on in any::<bool>(),
        entries in 1usize..10,
        steps in prop::collection::vec(step(), 0..30),
    ) {
        let (blocks, running) = live(genesis_on, entries, &steps);
        let lookups = std::cell::Cell::new(0);
        let seeded = EnvelopeWindow::seed(
            WindowLimits { entries },
            running.is_on(),
            blocks.clone().into_iter().rev(),
            |n| {
                lookups.set(lookups.get() + 1);
                config_block_on(&blocks[n as usize])
            },
        );
        let configs = blocks
            .iter()
            .enumerate()
            .filter(|(i, b)| fabric_common::block::last_config_index(b) == Some(*i as u64))
            .count();
        prop_assert!(lookups.get() <= configs, "one look-up per config at most");
        prop_assert_eq!(seeded.is_on(), running.is_on());
        let s: Vec<_> = seeded.digests().collect();
        let r: Vec<_> = running.digests().collect();
        prop_assert_eq!(s, r);
    }

    #[test]
    fn off_every_envelope_is_in_the_chain(
        steps in prop::collection::vec(step(), 0..30),
    ) {
        let steps: Vec<Step> = steps
            .into_iter()
            .filter(|s| matches!(s, Step::Batch(_)))
            .collect();
        let sent: usize = steps
            .iter()
            .map(|s| if let Step::Batch(t) = s { t.len() } else { 0 })
            .sum();
        let (blocks, _) = live(false, 10, &steps);
        let written: usize = blocks.iter().skip(1).map(|b| b.data.as_ref().map_or(0, |d| d.data.len())).sum();
        prop_assert_eq!(written, sent);
    }

    #[test]
    fn on_no_two_identical_envelopes_within_the_window(
        entries in 1usize..10,
        steps in prop::collection::vec(step(), 0..30),
    ) {
        let steps: Vec<Step> = steps
            .into_iter()
            .filter(|s| matches!(s, Step::Batch(_)))
            .collect();
        let (blocks, _) = live(true, entries, &steps);
        let all: Vec<Vec<u8>> = blocks
            .into_iter()
            .skip(1)
            .flat_map(|b| b.data.map(|d| d.data).unwrap_or_default())
            .collect();
        for (i, e) in all.iter().enumerate() {
            let lo = i.saturating_sub(entries);
            prop_assert!(!all[lo..i].contains(e), "copy at {} within {} of the last", i, entries);
        }
    }
}
