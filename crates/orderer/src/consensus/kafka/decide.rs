//! ④→⑥ The Kafka chain's per-message decisions, pure and synchronous
//! (Fabric `orderer/consensus/kafka/chain.go`: `processRegular`,
//! `processTimeToCut`, `commitNormalMsg`, `commitConfigMsg`).
//!
//! Input: the messages of partition 0 in offset order, the local batch timer
//! firing, and the current config sequence. Output: [`Action`]s — blocks to
//! write (with the `KafkaMetadata` each must record), messages to produce
//! (time-to-cut, resubmissions) and timer changes. Only what is in the
//! partition decides block boundaries, so every OSN cuts identical blocks.

use fabric_protos::orderer::{
    kafka_message, kafka_message_regular::Class, KafkaMessage, KafkaMessageRegular,
    KafkaMessageTimeToCut, KafkaMetadata,
};

use fabric_common::envelope_wire::EnvelopeWire;
use fabric_protos::common::{ChannelHeader, Envelope, HeaderType, Payload};
use prost::Message as _;

use crate::blockcutter::{BatchSize, BlockCutter};
use crate::dedupe::{EnvelopeWindow, WindowLimits};

/// Offset sentinel when no block carries Kafka metadata: −3, so consumption
/// starts at −2 (`OffsetOldest`), as in Fabric.
pub const NO_OFFSET: i64 = -3;

/// The offsets a chain resumes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    /// Offset of the last message in a persisted block.
    pub last_offset_persisted: i64,
    /// Highest `original_offset` of a resubmitted message processed.
    pub last_original_offset_processed: i64,
    /// Offset of the last config message resubmitted.
    pub last_resubmitted_config_offset: i64,
}

impl Offsets {
    /// Offsets for a chain with no Kafka metadata yet.
    pub const FRESH: Offsets = Offsets {
        last_offset_persisted: NO_OFFSET,
        last_original_offset_processed: 0,
        last_resubmitted_config_offset: 0,
    };

    /// From a block's `KafkaMetadata` (or fresh without one).
    pub fn from_metadata(md: Option<&KafkaMetadata>) -> Self {
        md.map_or(Self::FRESH, |m| Offsets {
            last_offset_persisted: m.last_offset_persisted,
            last_original_offset_processed: m.last_original_offset_processed,
            last_resubmitted_config_offset: m.last_resubmitted_config_offset,
        })
    }

    /// The first offset to consume.
    pub fn start_offset(&self) -> i64 {
        self.last_offset_persisted + 1
    }
}

/// Where a chain resumes in its partition, given the partition's first
/// remaining offset (its log start, which retention or DeleteRecords
/// raises).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Consume from this offset: the record after the chain's last block
    /// (offset 0 for a chain with only its genesis block).
    From(i64),
    /// The records from `needed` to `log_start` are gone: no block may be
    /// cut from what remains, which cannot be tied to this chain.
    Pruned {
        /// The offset the chain needs next.
        needed: i64,
        /// The partition's first remaining offset.
        log_start: i64,
    },
}

/// Where to resume. Unlike Fabric, which starts a fresh chain at the oldest
/// remaining offset (`sarama.OffsetOldest`), a fresh chain needs offset 0:
/// on a pruned partition, the oldest remaining record is in the middle of
/// the channel's history, and blocks cut from there fork the chain.
pub fn resume_position(offsets: &Offsets, log_start: i64) -> Resume {
    position_check(offsets.start_offset().max(0), log_start)
}

/// Whether `needed` (the next offset the chain must consume) is still in a
/// partition that starts at `log_start`. Also the answer to an
/// offset-out-of-range error while consuming: `From` means the position is
/// still there (a broker that came back behind, say) and consumption goes on
/// from it.
pub fn position_check(needed: i64, log_start: i64) -> Resume {
    if log_start > needed {
        Resume::Pruned { needed, log_start }
    } else {
        Resume::From(needed)
    }
}

/// Whether a chain about to consume from `start` should first pull blocks
/// from other OSNs ([`super::catchup`]): more than `threshold` records lie
/// between `start` and the partition's end `high` (its high watermark), so
/// replaying them would take longer than pulling the blocks that hold them.
/// Pulling never replaces what is pruned-checked: the chain still consumes
/// Kafka from the last pulled block's `last_offset_persisted + 1`.
pub fn pull_first(start: i64, high: i64, threshold: u64) -> bool {
    let lag = high.saturating_sub(start.max(0));
    lag > 0 && (lag as u64) > threshold
}

/// What the chain task must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write a block of these envelopes recording `metadata`.
    WriteBlock {
        /// Envelope bytes.
        data: Vec<Vec<u8>>,
        /// The consenter metadata to record.
        metadata: KafkaMetadata,
        /// A config block (isolated; LAST_CONFIG points to it).
        is_config: bool,
    },
    /// Arm the batch timer (if not armed).
    StartTimer,
    /// Disarm the batch timer.
    StopTimer,
    /// Produce a message (time-to-cut or resubmission).
    Produce(KafkaMessage),
}

/// Why the chain cannot go on (Fabric stops consuming on these).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DecideError {
    /// A right time-to-cut with nothing pending.
    #[error("got right time-to-cut message (for block {0}), no pending requests though; this might indicate a bug")]
    EmptyTimeToCut(u64),
    /// A time-to-cut for a block beyond the next one.
    #[error("got larger time-to-cut message ({got}) than allowed/expected ({expected}) - this might indicate a bug")]
    FutureTimeToCut {
        /// The number in the message.
        got: u64,
        /// `last_cut + 1`.
        expected: u64,
    },
}

/// How a regular message is re-checked when the config moved on (the
/// policies work plugs in here). `Ok(())` = still valid.
pub trait Revalidate: std::fmt::Debug {
    /// Re-validates a normal envelope against the current config.
    fn normal(&self, env: &[u8]) -> Result<(), String>;
    /// Re-derives an orderer-made config envelope against the current config
    /// (Fabric re-proposes its `last_update`); returns the envelope to resubmit.
    fn config(&self, env: &[u8]) -> Result<Vec<u8>, String>;
}

/// Accepts everything (no config changes exist yet to invalidate a message).
#[derive(Debug, Default)]
pub struct AlwaysValid;

impl Revalidate for AlwaysValid {
    fn normal(&self, _env: &[u8]) -> Result<(), String> {
        Ok(())
    }

    fn config(&self, env: &[u8]) -> Result<Vec<u8>, String> {
        Ok(env.to_vec())
    }
}

/// The chain's decision state. Owned by the chain task.
#[derive(Debug)]
pub struct Decider {
    window: EnvelopeWindow,
    offsets: Offsets,
    last_cut_block_number: u64,
    cutter: BlockCutter<Vec<u8>>,
    timer_armed: bool,
    /// The channel's config has Fabric's `Resubmission()` capability
    /// ([`crate::channelconfig::ChannelConfig::resubmission`]); without it
    /// every message is re-validated on consumption and never re-ordered
    /// (Fabric's compatibility mode).
    resubmission: bool,
    /// A config message this OSN re-validated and re-ordered is not back yet
    /// (Fabric's `doneReprocessingMsgInFlight` open, FAB-5969): Broadcast
    /// waits until it is.
    reprocessing: bool,
}

/// A message in compatibility mode: where it is, what it is, its size.
struct Compat {
    offset: i64,
    header_type: i32,
    size: u64,
}

/// What Fabric's block cutter counts for an envelope's bytes,
/// `len(Payload) + len(Signature)` of the decoded envelope, or `None` when
/// the bytes do not decode (Fabric discards the message).
pub fn message_size(bytes: &[u8]) -> Option<u64> {
    EnvelopeWire::parse(bytes).ok().map(|w| w.size())
}

/// The channel header type of an envelope's bytes (Fabric
/// `utils.ChannelHeader`: payload, header, channel header; nothing else is
/// looked at), or `None` when one of them does not decode.
fn channel_header_type(bytes: &[u8]) -> Option<i32> {
    let env = Envelope::decode(bytes).ok()?;
    let payload = Payload::decode(env.payload.as_slice()).ok()?;
    let header = payload.header?;
    ChannelHeader::decode(header.channel_header.as_slice())
        .ok()
        .map(|h| h.r#type)
}

fn ttc(block_number: u64) -> KafkaMessage {
    KafkaMessage {
        r#type: Some(kafka_message::Type::TimeToCut(KafkaMessageTimeToCut {
            block_number,
        })),
    }
}

impl Decider {
    /// Resumes after `last_block_number` (height − 1) with `offsets`.
    pub fn new(offsets: Offsets, last_block_number: u64) -> Self {
        Self {
            window: EnvelopeWindow::off(WindowLimits::DEFAULT),
            offsets,
            last_cut_block_number: last_block_number,
            cutter: BlockCutter::new(),
            timer_armed: false,
            resubmission: true,
            // Fabric `newChain`: blocked unless no config was ever re-ordered,
            // or the last one re-ordered was processed already.
            reprocessing: offsets.last_resubmitted_config_offset != 0
                && offsets.last_resubmitted_config_offset > offsets.last_original_offset_processed,
        }
    }

    /// Whether the channel's config has Fabric's `Resubmission()` capability
    /// (on unless told otherwise). The chain sets it at start and after each
    /// config block, before it hands the decider the next message.
    pub fn set_resubmission(&mut self, on: bool) {
        self.resubmission = on;
    }

    /// Whether Broadcast must wait: a config message this OSN re-ordered is
    /// still in flight (FAB-5969; Fabric's `WaitReady` blocks on it).
    pub fn reprocessing_pending(&self) -> bool {
        self.reprocessing
    }

    /// Starts from `window` (seeded from the ledger; see [`crate::dedupe`]).
    /// Without it the window is off: every envelope is ordered, as Fabric does.
    pub fn with_window(mut self, window: EnvelopeWindow) -> Self {
        self.window = window;
        self
    }

    /// A config block was committed; `on`: its config has
    /// [`crate::dedupe::EXACTLY_ONCE_CAPABILITY`]. The chain calls this
    /// before it hands the decider the next message, so the switch takes
    /// effect at the same partition offset on every OSN.
    pub fn set_exactly_once(&mut self, on: bool) {
        self.window.set_on(on);
    }

    /// The current offsets.
    pub fn offsets(&self) -> Offsets {
        self.offsets
    }

    /// Number of the last block cut.
    pub fn last_cut_block_number(&self) -> u64 {
        self.last_cut_block_number
    }

    fn metadata(&self, last_offset_persisted: i64) -> KafkaMetadata {
        KafkaMetadata {
            last_offset_persisted,
            last_original_offset_processed: self.offsets.last_original_offset_processed,
            last_resubmitted_config_offset: self.offsets.last_resubmitted_config_offset,
        }
    }

    fn block(&mut self, data: Vec<Vec<u8>>, last_offset_persisted: i64, is_config: bool) -> Action {
        self.last_cut_block_number += 1;
        self.offsets.last_offset_persisted = last_offset_persisted;
        Action::WriteBlock {
            data,
            metadata: self.metadata(last_offset_persisted),
            is_config,
        }
    }

    fn set_timer(&mut self, pending: bool, out: &mut Vec<Action>) {
        if pending && !self.timer_armed {
            self.timer_armed = true;
            out.push(Action::StartTimer);
        } else if !pending && self.timer_armed {
            self.timer_armed = false;
            out.push(Action::StopTimer);
        }
    }

    /// Processes the message at `offset`. `config_seq` is the channel's
    /// current config sequence; `batch_size` the cutter settings in force.
    pub fn on_message(
        &mut self,
        offset: i64,
        msg: &KafkaMessage,
        config_seq: u64,
        batch_size: &BatchSize,
        revalidate: &dyn Revalidate,
    ) -> Result<Vec<Action>, DecideError> {
        let mut out = Vec::new();
        match &msg.r#type {
            None | Some(kafka_message::Type::Connect(_)) => {}
            Some(kafka_message::Type::TimeToCut(t)) => {
                self.on_time_to_cut(offset, t.block_number, &mut out)?
            }
            Some(kafka_message::Type::Regular(r)) => {
                self.on_regular(offset, r, config_seq, batch_size, revalidate, &mut out)
            }
        }
        Ok(out)
    }

    fn on_time_to_cut(
        &mut self,
        offset: i64,
        n: u64,
        out: &mut Vec<Action>,
    ) -> Result<(), DecideError> {
        let expected = self.last_cut_block_number + 1;
        if n == expected {
            let batch = self.cutter.cut();
            if batch.is_empty() {
                return Err(DecideError::EmptyTimeToCut(n));
            }
            self.timer_armed = false;
            out.push(Action::StopTimer);
            // Fabric's processTimeToCut records no LastResubmittedConfigOffset
            // in this block (0); a restart from it reads 0, as Fabric's does.
            let mut block = self.block(batch, offset, false);
            if let Action::WriteBlock { metadata, .. } = &mut block {
                metadata.last_resubmitted_config_offset = 0;
            }
            out.push(block);
            Ok(())
        } else if n > expected {
            Err(DecideError::FutureTimeToCut { got: n, expected })
        } else {
            Ok(()) // stale: another OSN's time-to-cut, or the block was cut by size
        }
    }

    fn on_regular(
        &mut self,
        offset: i64,
        r: &KafkaMessageRegular,
        config_seq: u64,
        batch_size: &BatchSize,
        revalidate: &dyn Revalidate,
        out: &mut Vec<Action>,
    ) {
        let class = Class::try_from(r.class).unwrap_or(Class::Unknown);
        let Some(size) = message_size(&r.payload) else {
            return; // not an Envelope: Fabric discards it ("should be filtered at ingress")
        };
        if class == Class::Unknown || !self.resubmission {
            // Fabric: a channel header that does not decode is discarded.
            if let Some(header_type) = channel_header_type(&r.payload) {
                let m = Compat {
                    offset,
                    header_type,
                    size,
                };
                self.on_regular_compat(m, r, batch_size, revalidate, out);
            }
            return;
        }
        if r.original_offset != 0
            && r.original_offset <= self.offsets.last_original_offset_processed
        {
            return; // a resubmission already processed (every OSN resubmits)
        }
        if class == Class::Config {
            if r.original_offset != 0
                && r.original_offset == self.offsets.last_resubmitted_config_offset
                && r.config_seq == config_seq
            {
                // The last config this OSN re-ordered is back and needs no
                // further re-validation: Broadcast may go on.
                self.reprocessing = false;
            }
            if r.original_offset != 0
                && self.offsets.last_resubmitted_config_offset < r.original_offset
            {
                // Adopt a resubmission made by another OSN.
                self.offsets.last_resubmitted_config_offset = r.original_offset;
            }
            if r.config_seq < config_seq {
                // Validated against an older config: re-derive and resubmit.
                if let Ok(env) = revalidate.config(&r.payload) {
                    out.push(Action::Produce(KafkaMessage {
                        r#type: Some(kafka_message::Type::Regular(KafkaMessageRegular {
                            payload: env,
                            config_seq,
                            class: Class::Config as i32,
                            original_offset: offset,
                        })),
                    }));
                    self.offsets.last_resubmitted_config_offset = offset;
                    self.reprocessing = true;
                }
                return;
            }
            let new_offset = if r.original_offset != 0 {
                r.original_offset
            } else {
                self.offsets.last_original_offset_processed
            };
            self.commit_config(offset, r.payload.clone(), new_offset, out);
            return;
        }
        if r.config_seq < config_seq && class == Class::Normal {
            if revalidate.normal(&r.payload).is_ok() {
                out.push(Action::Produce(KafkaMessage {
                    r#type: Some(kafka_message::Type::Regular(KafkaMessageRegular {
                        payload: r.payload.clone(),
                        config_seq,
                        class: Class::Normal as i32,
                        original_offset: offset,
                    })),
                }));
            }
            return;
        }
        let new_offset = if r.original_offset != 0 {
            r.original_offset
        } else {
            self.offsets.last_original_offset_processed
        };
        let e = r.payload.clone();
        self.commit_normal(offset, (e, size), new_offset, batch_size, out);
    }

    /// Fabric's compatibility mode (a message of class UNKNOWN from a v1.0
    /// OSN, or a channel without the `Resubmission()` capability): every
    /// message is validated again against the current config, whatever
    /// sequence it was validated at, and committed or discarded; nothing is
    /// re-ordered and `LastOriginalOffsetProcessed` does not move.
    fn on_regular_compat(
        &mut self,
        m: Compat,
        r: &KafkaMessageRegular,
        batch_size: &BatchSize,
        revalidate: &dyn Revalidate,
        out: &mut Vec<Action>,
    ) {
        let keep = self.offsets.last_original_offset_processed;
        let (offset, size) = (m.offset, m.size);
        match m.header_type {
            t if t == HeaderType::Config as i32 || t == HeaderType::OrdererTransaction as i32 => {
                if revalidate.config(&r.payload).is_ok() {
                    self.commit_config(offset, r.payload.clone(), keep, out);
                }
            }
            t if t == HeaderType::ConfigUpdate as i32 => {} // not expected: discarded
            _ => {
                if revalidate.normal(&r.payload).is_ok() {
                    let e = r.payload.clone();
                    self.commit_normal(offset, (e, size), keep, batch_size, out);
                }
            }
        }
    }

    /// `(env, size)`: the envelope and Fabric's size of it.
    fn commit_normal(
        &mut self,
        offset: i64,
        (env, size): (Vec<u8>, u64),
        new_offset: i64,
        batch_size: &BatchSize,
        out: &mut Vec<Action>,
    ) {
        if !self.window.admit(&env) {
            // The channel's config asks for exactly once and a byte-identical
            // copy is in the window: every OSN of the channel drops it.
            return;
        }
        let o = self.cutter.ordered(env, size, batch_size);
        self.set_timer(o.pending, out);
        let n = o.batches.len();
        if n == 0 {
            self.offsets.last_original_offset_processed = new_offset;
            return;
        }
        let mut batches = o.batches.into_iter();
        if n == 1 {
            let batch = batches.next().unwrap_or_default();
            if o.pending {
                // The message starts the next batch: the block ends before it.
                out.push(self.block(batch, offset - 1, false));
            } else {
                self.offsets.last_original_offset_processed = new_offset;
                out.push(self.block(batch, offset, false));
            }
        } else {
            let first = batches.next().unwrap_or_default();
            out.push(self.block(first, offset - 1, false));
            self.offsets.last_original_offset_processed = new_offset;
            let second = batches.next().unwrap_or_default();
            out.push(self.block(second, offset, false));
        }
    }

    fn commit_config(&mut self, offset: i64, env: Vec<u8>, new_offset: i64, out: &mut Vec<Action>) {
        let batch = self.cutter.cut();
        if !batch.is_empty() {
            out.push(self.block(batch, offset - 1, false));
        }
        self.offsets.last_original_offset_processed = new_offset;
        out.push(self.block(vec![env], offset, true));
        if self.timer_armed {
            self.timer_armed = false;
            out.push(Action::StopTimer);
        }
    }

    /// The batch timer fired: ask the partition to cut block `last_cut + 1`.
    pub fn on_timer(&mut self) -> Action {
        self.timer_armed = false;
        Action::Produce(ttc(self.last_cut_block_number + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BS: BatchSize = BatchSize {
        max_message_count: 3,
        absolute_max_bytes: 1000,
        preferred_max_bytes: 100,
    };

    #[test]
    fn a_chain_resumes_only_where_the_partition_still_ties_to_it() {
        let at = |lop: i64| Offsets {
            last_offset_persisted: lop,
            ..Offsets::FRESH
        };
        // A fresh chain needs offset 0, never "the oldest remaining".
        assert_eq!(resume_position(&Offsets::FRESH, 0), Resume::From(0));
        // Pull first only strictly beyond the threshold, never when caught up.
        assert!(pull_first(0, 10_001, 10_000));
        assert!(!pull_first(0, 10_000, 10_000));
        assert!(!pull_first(502, 502, 0));
        assert!(pull_first(502, 503, 0));
        assert!(!pull_first(-1, 5, 5), "a fresh chain starts at 0");
        assert!(!pull_first(0, i64::MAX, u64::MAX));
        assert!(
            !pull_first(900, 100, 0),
            "a high watermark behind the chain"
        );
        assert_eq!(
            resume_position(&Offsets::FRESH, 412),
            Resume::Pruned {
                needed: 0,
                log_start: 412
            }
        );
        // After block with last offset 501: 502 must still be there.
        assert_eq!(resume_position(&at(501), 0), Resume::From(502));
        assert_eq!(resume_position(&at(501), 502), Resume::From(502));
        assert_eq!(
            resume_position(&at(501), 503),
            Resume::Pruned {
                needed: 502,
                log_start: 503
            }
        );
    }

    /// An envelope whose payload is `p` (the tests name envelopes by it).
    fn env(p: &[u8]) -> Vec<u8> {
        Envelope {
            payload: p.to_vec(),
            signature: vec![],
        }
        .encode_to_vec()
    }

    /// The payloads of a block's envelopes.
    fn payloads(data: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        data.iter()
            .map(|e| Envelope::decode(e.as_slice()).unwrap().payload)
            .collect()
    }

    fn regular(payload: &[u8]) -> KafkaMessage {
        KafkaMessage {
            r#type: Some(kafka_message::Type::Regular(KafkaMessageRegular {
                payload: env(payload),
                config_seq: 0,
                class: Class::Normal as i32,
                original_offset: 0,
            })),
        }
    }

    fn connect() -> KafkaMessage {
        KafkaMessage {
            r#type: Some(kafka_message::Type::Connect(Default::default())),
        }
    }

    /// A written block: payloads and last offset persisted.
    type Written = (Vec<Vec<u8>>, i64);

    /// Feeds messages at consecutive offsets from `first`; returns the written blocks.
    fn feed(
        d: &mut Decider,
        first: i64,
        msgs: &[KafkaMessage],
    ) -> Result<Vec<Written>, DecideError> {
        let mut blocks = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            for a in d.on_message(first + i as i64, m, 0, &BS, &AlwaysValid)? {
                if let Action::WriteBlock { data, metadata, .. } = a {
                    blocks.push((payloads(data), metadata.last_offset_persisted));
                }
            }
        }
        Ok(blocks)
    }

    #[test]
    fn count_cut_records_the_offset_of_the_last_message() {
        let mut d = Decider::new(Offsets::FRESH, 0);
        let b = feed(
            &mut d,
            0,
            &[connect(), regular(b"a"), regular(b"b"), regular(b"c")],
        )
        .unwrap();
        assert_eq!(
            b,
            vec![(vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()], 3)]
        );
        assert_eq!(d.last_cut_block_number(), 1);
        assert_eq!(d.offsets().start_offset(), 4);
    }

    #[test]
    fn overflow_cut_persists_up_to_the_previous_offset() {
        let mut d = Decider::new(Offsets::FRESH, 0);
        let big = vec![1u8; 60];
        let b = feed(&mut d, 10, &[regular(&big), regular(&big)]).unwrap();
        assert_eq!(b, vec![(vec![big.clone()], 10)]);
        // Oversized message: pending cut first (lop = offset-1), then alone (lop = offset).
        let huge = vec![2u8; 101];
        let b = feed(&mut d, 12, &[regular(&huge)]).unwrap();
        assert_eq!(b, vec![(vec![big.clone()], 11), (vec![huge], 12)]);
    }

    #[test]
    fn time_to_cut_rules() {
        let mut d = Decider::new(Offsets::FRESH, 0);
        let acts = d
            .on_message(0, &regular(b"a"), 0, &BS, &AlwaysValid)
            .unwrap();
        assert_eq!(acts, vec![Action::StartTimer]);
        assert_eq!(d.on_timer(), Action::Produce(ttc(1)));
        // Stale TTC ignored.
        assert_eq!(feed(&mut d, 1, &[ttc(0)]).unwrap(), vec![]);
        // Right TTC cuts.
        assert_eq!(
            feed(&mut d, 2, &[ttc(1)]).unwrap(),
            vec![(vec![b"a".to_vec()], 2)]
        );
        // Second TTC for the same block (another OSN's) is stale now.
        assert_eq!(feed(&mut d, 3, &[ttc(1)]).unwrap(), vec![]);
        // Right TTC with nothing pending, and a future TTC, are errors.
        assert_eq!(
            feed(&mut d, 4, &[ttc(2)]),
            Err(DecideError::EmptyTimeToCut(2))
        );
        assert_eq!(
            feed(&mut d, 5, &[ttc(9)]),
            Err(DecideError::FutureTimeToCut {
                got: 9,
                expected: 2
            })
        );
    }

    #[test]
    fn restart_from_metadata_replays_to_identical_blocks() {
        let msgs: Vec<KafkaMessage> = vec![
            connect(),
            regular(b"1"),
            regular(b"2"),
            ttc(1),
            regular(b"3"),
            regular(b"4"),
            regular(b"5"),
            regular(b"6"),
            ttc(2),
            ttc(3),
            regular(b"7"),
            ttc(3),
        ];
        let mut full = Decider::new(Offsets::FRESH, 0);
        let all = feed(&mut full, 0, &msgs).unwrap();
        // Crash after every block: resume from its metadata and the offset after it.
        for k in 0..all.len() {
            let lop = all[k].1;
            let mut d = Decider::new(
                Offsets {
                    last_offset_persisted: lop,
                    last_original_offset_processed: 0,
                    last_resubmitted_config_offset: 0,
                },
                (k + 1) as u64,
            );
            let start = d.offsets().start_offset();
            let rest = feed(&mut d, start, &msgs[start as usize..]).unwrap();
            assert_eq!(rest, all[k + 1..].to_vec(), "resume after block {}", k + 1);
        }
    }

    #[test]
    fn resubmitted_duplicates_are_dropped() {
        let mut d = Decider::new(Offsets::FRESH, 0);
        let mut resub = regular(b"x");
        if let Some(kafka_message::Type::Regular(r)) = resub.r#type.as_mut() {
            r.original_offset = 5;
        }
        let b1 = feed(&mut d, 7, &[resub.clone(), regular(b"y"), regular(b"z")]).unwrap();
        assert_eq!(b1.len(), 1);
        assert_eq!(d.offsets().last_original_offset_processed, 5);
        // The copy another OSN resubmitted is discarded.
        assert_eq!(feed(&mut d, 10, &[resub]).unwrap(), vec![]);
    }

    #[test]
    fn stale_config_seq_is_resubmitted_not_committed() {
        let mut d = Decider::new(Offsets::FRESH, 0);
        let acts = d
            .on_message(4, &regular(b"old"), 1, &BS, &AlwaysValid)
            .unwrap();
        match &acts[..] {
            [Action::Produce(KafkaMessage {
                r#type: Some(kafka_message::Type::Regular(r)),
            })] => {
                assert_eq!((r.config_seq, r.original_offset), (1, 4));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn config_message_is_isolated_after_cutting_pending() {
        let mut d = Decider::new(Offsets::FRESH, 0);
        let cfg = KafkaMessage {
            r#type: Some(kafka_message::Type::Regular(KafkaMessageRegular {
                payload: env(b"cfg"),
                config_seq: 0,
                class: Class::Config as i32,
                original_offset: 0,
            })),
        };
        let mut blocks = Vec::new();
        for (off, m) in [(0, regular(b"a")), (1, cfg)] {
            for a in d.on_message(off, &m, 0, &BS, &AlwaysValid).unwrap() {
                if let Action::WriteBlock {
                    data,
                    metadata,
                    is_config,
                } = a
                {
                    blocks.push((payloads(data), metadata.last_offset_persisted, is_config));
                }
            }
        }
        assert_eq!(
            blocks,
            vec![
                (vec![b"a".to_vec()], 0, false),
                (vec![b"cfg".to_vec()], 1, true)
            ]
        );
    }

    #[test]
    fn by_default_a_resent_envelope_is_ordered_twice_as_fabric_does() {
        let mut d = Decider::new(Offsets::FRESH, 0);
        let b = feed(&mut d, 0, &[regular(b"x"), regular(b"x"), regular(b"y")]).unwrap();
        assert_eq!(
            b,
            vec![(vec![b"x".to_vec(), b"x".to_vec(), b"y".to_vec()], 2)]
        );
    }

    #[test]
    fn with_exactly_once_a_byte_identical_copy_is_dropped_at_the_same_offset_everywhere() {
        let run = || {
            let mut d = Decider::new(Offsets::FRESH, 0);
            // Off until the config block that switches it on.
            let mut b = feed(&mut d, 0, &[regular(b"x"), regular(b"x")]).unwrap();
            d.set_exactly_once(true);
            b.extend(
                feed(
                    &mut d,
                    2,
                    &[
                        regular(b"x"),
                        regular(b"y"),
                        regular(b"x"),
                        regular(b"z"),
                        ttc(2),
                    ],
                )
                .unwrap(),
            );
            b
        };
        let b = run();
        assert_eq!(
            b,
            vec![
                (vec![b"x".to_vec(), b"x".to_vec(), b"x".to_vec()], 2),
                (vec![b"y".to_vec(), b"z".to_vec()], 6)
            ]
        );
        assert_eq!(run(), b, "deterministic");
    }

    #[test]
    fn a_window_seeded_off_orders_everything() {
        let w = EnvelopeWindow::seed(WindowLimits::DEFAULT, false, std::iter::empty(), |_| true);
        let mut d = Decider::new(Offsets::FRESH, 0).with_window(w);
        let b = feed(&mut d, 0, &[regular(b"x"), regular(b"x"), regular(b"x")]).unwrap();
        assert_eq!(b[0].0.len(), 3);
    }

    /// An envelope with a channel header of `header_type` (and `tag` as its data).
    fn typed_env(header_type: HeaderType, tag: &[u8]) -> Vec<u8> {
        let ch = ChannelHeader {
            r#type: header_type as i32,
            channel_id: "ch".into(),
            ..Default::default()
        };
        let payload = Payload {
            header: Some(fabric_protos::common::Header {
                channel_header: ch.encode_to_vec(),
                signature_header: vec![],
            }),
            data: tag.to_vec(),
        };
        Envelope {
            payload: payload.encode_to_vec(),
            signature: vec![],
        }
        .encode_to_vec()
    }

    fn regular_msg(
        payload: Vec<u8>,
        class: Class,
        config_seq: u64,
        original_offset: i64,
    ) -> KafkaMessage {
        KafkaMessage {
            r#type: Some(kafka_message::Type::Regular(KafkaMessageRegular {
                payload,
                config_seq,
                class: class as i32,
                original_offset,
            })),
        }
    }

    /// Refuses everything on re-validation.
    #[derive(Debug)]
    struct Invalid;

    impl Revalidate for Invalid {
        fn normal(&self, _env: &[u8]) -> Result<(), String> {
            Err("invalid".into())
        }
        fn config(&self, _env: &[u8]) -> Result<Vec<u8>, String> {
            Err("invalid".into())
        }
    }

    fn written(acts: Vec<Action>) -> Vec<(usize, KafkaMetadata, bool)> {
        acts.into_iter()
            .filter_map(|a| match a {
                Action::WriteBlock {
                    data,
                    metadata,
                    is_config,
                } => Some((data.len(), metadata, is_config)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn time_to_cut_blocks_record_no_resubmitted_config_offset_as_fabric_writes_them() {
        let offsets = Offsets {
            last_offset_persisted: 9,
            last_original_offset_processed: 7,
            last_resubmitted_config_offset: 7,
        };
        let mut d = Decider::new(offsets, 1);
        let acts = d
            .on_message(10, &regular(b"a"), 0, &BS, &AlwaysValid)
            .unwrap();
        assert!(written(acts).is_empty());
        let w = written(d.on_message(11, &ttc(2), 0, &BS, &AlwaysValid).unwrap());
        assert_eq!(
            w,
            vec![(
                1,
                KafkaMetadata {
                    last_offset_persisted: 11,
                    last_original_offset_processed: 7,
                    last_resubmitted_config_offset: 0,
                },
                false
            )]
        );
        // A block cut by count still records it (Fabric's commitNormalMsg).
        let msgs = [regular(b"b"), regular(b"c"), regular(b"d")];
        let mut w = vec![];
        for (i, m) in msgs.iter().enumerate() {
            w.extend(written(
                d.on_message(12 + i as i64, m, 0, &BS, &AlwaysValid)
                    .unwrap(),
            ));
        }
        assert_eq!(w[0].1.last_resubmitted_config_offset, 7);
        // The decider keeps it in memory across the time-to-cut block.
        assert_eq!(d.offsets().last_resubmitted_config_offset, 7);
    }

    #[test]
    fn broadcast_waits_while_a_reordered_config_is_in_flight() {
        // Fabric newChain: open unless nothing was re-ordered or it was processed.
        let at = |lrco, loop_| Offsets {
            last_offset_persisted: 20,
            last_original_offset_processed: loop_,
            last_resubmitted_config_offset: lrco,
        };
        assert!(!Decider::new(at(0, 0), 1).reprocessing_pending());
        assert!(!Decider::new(at(5, 5), 1).reprocessing_pending());
        assert!(!Decider::new(at(5, 6), 1).reprocessing_pending());
        assert!(Decider::new(at(6, 5), 1).reprocessing_pending());

        let mut d = Decider::new(Offsets::FRESH, 0);
        let cfg = typed_env(HeaderType::Config, b"c");
        // Validated at sequence 0, consumed at sequence 1: re-ordered, Broadcast blocked.
        let acts = d
            .on_message(
                4,
                &regular_msg(cfg.clone(), Class::Config, 0, 0),
                1,
                &BS,
                &AlwaysValid,
            )
            .unwrap();
        assert!(matches!(&acts[..], [Action::Produce(_)]));
        assert!(d.reprocessing_pending());
        assert_eq!(d.offsets().last_resubmitted_config_offset, 4);
        // Another message re-ordered from elsewhere does not unblock it.
        let other = regular_msg(cfg.clone(), Class::Config, 1, 3);
        d.on_message(5, &other, 1, &BS, &AlwaysValid).unwrap();
        assert!(d.reprocessing_pending());
        // Its own re-ordered copy at the current sequence does, and is committed.
        let back = regular_msg(cfg, Class::Config, 1, 4);
        let w = written(d.on_message(6, &back, 1, &BS, &AlwaysValid).unwrap());
        assert!(!d.reprocessing_pending());
        assert_eq!(w.len(), 1);
        assert!(w[0].2, "config block");
        assert_eq!(w[0].1.last_original_offset_processed, 4);
        assert_eq!(w[0].1.last_resubmitted_config_offset, 4);
    }

    #[test]
    fn an_invalid_reordered_config_does_not_block_broadcast() {
        let mut d = Decider::new(Offsets::FRESH, 0);
        let cfg = typed_env(HeaderType::Config, b"c");
        let acts = d
            .on_message(4, &regular_msg(cfg, Class::Config, 0, 0), 1, &BS, &Invalid)
            .unwrap();
        assert!(acts.is_empty());
        assert!(!d.reprocessing_pending());
    }

    #[test]
    fn without_resubmission_every_message_is_revalidated_and_never_reordered() {
        let normal = typed_env(HeaderType::EndorserTransaction, b"n");
        let cfg = typed_env(HeaderType::Config, b"c");
        let update = typed_env(HeaderType::ConfigUpdate, b"u");
        let mut d = Decider::new(Offsets::FRESH, 0);
        d.set_resubmission(false);
        // A stale sequence is not re-ordered: still valid → committed.
        let acts = d
            .on_message(
                0,
                &regular_msg(normal.clone(), Class::Normal, 0, 0),
                3,
                &BS,
                &AlwaysValid,
            )
            .unwrap();
        assert_eq!(acts, vec![Action::StartTimer]);
        // Invalid now (even at the current sequence) → discarded.
        let acts = d
            .on_message(
                1,
                &regular_msg(normal.clone(), Class::Normal, 3, 0),
                3,
                &BS,
                &Invalid,
            )
            .unwrap();
        assert!(acts.is_empty());
        // A CONFIG_UPDATE is never expected: discarded.
        let acts = d
            .on_message(
                2,
                &regular_msg(update, Class::Normal, 3, 0),
                3,
                &BS,
                &AlwaysValid,
            )
            .unwrap();
        assert!(acts.is_empty());
        // A config message at a stale sequence: validated, committed as is.
        let acts = d
            .on_message(
                3,
                &regular_msg(cfg.clone(), Class::Config, 0, 0),
                3,
                &BS,
                &AlwaysValid,
            )
            .unwrap();
        let w = written(acts);
        assert_eq!(w.len(), 2, "pending cut, then the config block");
        assert!(w[1].2);
        assert_eq!(w[1].1.last_original_offset_processed, 0);
        assert!(!d.reprocessing_pending());
    }

    #[test]
    fn a_message_of_class_unknown_is_handled_in_compatibility_mode() {
        let normal = typed_env(HeaderType::EndorserTransaction, b"n");
        let mut d = Decider::new(Offsets::FRESH, 0);
        // From a v1.0 OSN: class UNKNOWN, sequence 0, current sequence 2.
        let acts = d
            .on_message(
                0,
                &regular_msg(normal.clone(), Class::Unknown, 0, 0),
                2,
                &BS,
                &AlwaysValid,
            )
            .unwrap();
        assert_eq!(acts, vec![Action::StartTimer], "committed, not re-ordered");
        // Without a channel header it is discarded in that mode.
        let acts = d
            .on_message(
                1,
                &regular_msg(env(b"x"), Class::Unknown, 0, 0),
                2,
                &BS,
                &AlwaysValid,
            )
            .unwrap();
        assert!(acts.is_empty());
    }

    #[test]
    fn bytes_that_are_not_an_envelope_are_discarded_as_fabric_does() {
        let mut d = Decider::new(Offsets::FRESH, 0);
        // Field 1 claims 9 bytes, 2 follow.
        let bad = regular_msg(vec![0x0a, 0x09, 1, 2], Class::Normal, 0, 0);
        assert!(d
            .on_message(0, &bad, 0, &BS, &AlwaysValid)
            .unwrap()
            .is_empty());
        assert_eq!(d.cutter.cut().len(), 0);
    }

    #[test]
    fn message_size_is_payload_plus_signature_as_fabric_counts_it() {
        let e = Envelope {
            payload: vec![1; 300],
            signature: vec![2; 71],
        }
        .encode_to_vec();
        assert_eq!(message_size(&e), Some(371));
        // Unknown fields do not count; the last occurrence of a field wins;
        // a known number with another wire type is an unknown field.
        let mut odd = e.clone();
        odd.extend([0x1a, 3, 9, 9, 9]); // field 3, 3 bytes
        odd.extend([0x0a, 2, 7, 7]); // payload again, 2 bytes
        odd.extend([0x10, 0x05]); // field 2 as a varint
        assert_eq!(message_size(&odd), Some(2 + 71));
        assert_eq!(message_size(&[0x0a, 0x05, 1]), None);
        assert_eq!(message_size(&[]), Some(0));
    }
}
