//! ⑤ Exactly once, beyond Fabric, and only where the channel's config asks
//! for it.
//!
//! **Default: off.** A channel's blocks hold exactly what Fabric's OSN puts
//! in them, re-sent copies included (peers mark the second copy of a tx ID
//! invalid). A mixed service (Fabric's OSN and ours on one partition) must
//! cut identical blocks, and Fabric's OSN drops nothing, so neither may we.
//! Off, the chain does no per-envelope work for this module.
//!
//! **On: the orderer capability [`EXACTLY_ONCE_CAPABILITY`]** in the
//! channel's `/Channel/Orderer` `Capabilities`. Because it lives in the
//! channel's own config, every OSN of the channel switches at the same
//! position of the chain: the window is on for the envelopes ordered after
//! the config block that sets it (genesis included) and off, and emptied,
//! after a config block that removes it. A Fabric OSN cannot serve such a
//! channel at all, so it can never silently cut other blocks: Fabric's
//! `checkResources` (`orderer/common/multichannel/registrar.go` in v1.4.12,
//! `ledger_resources.go` in v2.5) calls `Capabilities().Supported()`, which
//! fails for any orderer capability its `OrdererProvider.HasCapability`
//! does not know (`common/capabilities/orderer.go`); it panics at start-up
//! (`Registrar.Initialize`/`newLedgerResources`), when creating the channel
//! (`newChain`), and when committing a config block that adds it
//! (`BlockWriter.WriteConfigBlock` → `configResources.Update` →
//! `checkResourcesOrPanic`), and refuses the config update at Broadcast
//! (`ChainSupport.ProposeConfigUpdate`: "config update is not compatible").
//!
//! **What the window drops.** The window is the SHA-256 digests of the last
//! [`WindowLimits::entries`] normal envelopes ordered on the channel since
//! the capability was switched on, in chain order. A normal envelope whose
//! digest is in the window — a byte-identical copy of one already ordered —
//! is not ordered again; the client that re-sent it is answered SUCCESS, and
//! its envelope *is* in the chain. Different bytes under the same tx ID are
//! not duplicates: both are ordered (peers invalidate the second), so a
//! writer who learns another client's tx ID cannot get that client's
//! envelope dropped. Config-class envelopes are never recorded nor dropped.
//!
//! **Determinism.** The window is a function of the chain alone: every OSN
//! drops the same copies, and a restarted OSN rebuilds the same window from
//! its ledger ([`EnvelopeWindow::seed`]: the blocks ordered under a config
//! with the capability, named by their LAST_CONFIG, back to the newest one
//! ordered without it) and then from the replayed partition. Envelopes are classified live by their Kafka class (solo: the
//! Broadcast classification), at seeding by their channel header type
//! (CONFIG, ORDERER_TRANSACTION = config class): the same split for every
//! message an OSN produces, as both classify by header type.
//!
//! **Trade-off.** The channel can only be served by OSNs that run this
//! orderer; a copy re-sent after the window moved past the original (more
//! than `entries` normal envelopes later) is ordered again.
//!
//! **Cost**, when on (measured by `examples/dedupe_cost.rs`, release build,
//! ~1.1 KB signed-shaped envelopes, shared 2-core machine): one SHA-256 of
//! the envelope bytes and one hash-set look-up per normal envelope, ≈1.9 µs
//! CPU per new envelope on a full window (≈1.4 µs for a dropped copy; the
//! SHA-256 alone ≈0.9 µs); memory 64 bytes per remembered envelope (the
//! digest in the order queue and in the set) plus the containers' slack —
//! measured 85 bytes, 8.5 MB for a full default window — and at most
//! [`WindowLimits::max_heap_bytes`] whatever the clients send
//! ([`crate::limits::EXACTLY_ONCE_WINDOW_MAX_BYTES`]: 12.25 MiB per channel
//! for the default 100,000; a 4 MiB tx ID costs what a 64-byte one does);
//! start-up reads back the blocks that hold the window (≈0.25 s CPU for
//! 100,000 envelopes in memory). Off, nothing.

use std::collections::{HashSet, VecDeque};

use fabric_protos::common::{
    Block, Capabilities, ChannelHeader, Config, ConfigEnvelope, Envelope, HeaderType, Payload,
};
use prost::Message;
use sha2::{Digest, Sha256};

/// The `/Channel/Orderer` capability that switches the window on. Fabric's
/// orderers do not know it, and refuse to serve a channel that requires it.
pub const EXACTLY_ONCE_CAPABILITY: &str = "RS_EXACTLY_ONCE";

/// What the window keys on: SHA-256 of the whole envelope bytes.
pub type EnvelopeDigest = [u8; 32];

/// The digest of an envelope's bytes.
pub fn digest(envelope: &[u8]) -> EnvelopeDigest {
    Sha256::digest(envelope).into()
}

/// Whether `config` has the orderer capability `name`.
pub fn has_orderer_capability(config: &Config, name: &str) -> bool {
    config
        .channel_group
        .as_ref()
        .and_then(|g| g.groups.get("Orderer"))
        .and_then(|o| o.values.get("Capabilities"))
        .and_then(|v| Capabilities::decode(v.value.as_slice()).ok())
        .is_some_and(|c| c.capabilities.contains_key(name))
}

/// Whether `config` switches the exactly-once window on.
pub fn exactly_once(config: &Config) -> bool {
    has_orderer_capability(config, EXACTLY_ONCE_CAPABILITY)
}

/// Bounds of one channel's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimits {
    /// Envelopes remembered (0: nothing is ever remembered or dropped).
    pub entries: usize,
}

impl WindowLimits {
    /// The node's bound ([`crate::limits::EXACTLY_ONCE_WINDOW_ENVELOPES`]).
    pub const DEFAULT: WindowLimits = WindowLimits {
        entries: crate::limits::EXACTLY_ONCE_WINDOW_ENVELOPES,
    };

    /// The most heap the window can hold, whatever the envelopes are: the
    /// order queue (a power-of-two ring of digests, at least 4) and the set (a
    /// power-of-two table of digests, one control byte each plus one group
    /// of 16, at most 7/8 full). The table can double once: hashbrown grows
    /// rather than rehashes in place when the tombstones of evicted digests
    /// fill it while it is more than half full, and never needs to again.
    pub const fn max_heap_bytes(&self) -> usize {
        const D: usize = std::mem::size_of::<EnvelopeDigest>();
        // VecDeque's smallest allocation holds 4.
        let ring = if self.entries < 4 { 4 } else { self.entries }.next_power_of_two() * D;
        ring + 2 * buckets_for(self.entries) * (D + 1) + GROUP
    }
}

/// hashbrown's control-byte group width (the largest, SSE2).
const GROUP: usize = 16;

/// hashbrown's table size for `items` (`capacity_to_buckets`).
const fn buckets_for(items: usize) -> usize {
    if items == 0 {
        0
    } else if items < 4 {
        4
    } else if items < 8 {
        8
    } else {
        (items * 8 / 7).next_power_of_two()
    }
}

/// The recent envelope digests of one channel.
#[derive(Debug)]
pub struct EnvelopeWindow {
    limits: WindowLimits,
    on: bool,
    order: VecDeque<EnvelopeDigest>,
    set: HashSet<EnvelopeDigest>,
}

impl EnvelopeWindow {
    /// A window that is off (the default for every channel).
    pub fn off(limits: WindowLimits) -> Self {
        Self {
            limits,
            on: false,
            order: VecDeque::new(),
            set: HashSet::new(),
        }
    }

    /// Whether the window is on.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// A config block was committed: `on` is whether its config has
    /// [`EXACTLY_ONCE_CAPABILITY`]. Switching off forgets everything, so a
    /// later switch on starts empty, as a window seeded from the chain does.
    pub fn set_on(&mut self, on: bool) {
        if !on {
            self.order = VecDeque::new();
            self.set = HashSet::new();
        }
        self.on = on;
    }

    /// A normal envelope is being ordered. `false`: a byte-identical copy is
    /// in the window, the caller does not order it. Off: always `true`, and
    /// no work is done.
    pub fn admit(&mut self, envelope: &[u8]) -> bool {
        if !self.on || self.limits.entries == 0 {
            return true;
        }
        let d = digest(envelope);
        if self.set.contains(&d) {
            return false;
        }
        self.push(d);
        true
    }

    fn push(&mut self, d: EnvelopeDigest) {
        if self.order.len() >= self.limits.entries {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(d);
        self.order.push_back(d);
    }

    /// Rebuilds the window from the chain. `on`: the current config has the
    /// capability (off: nothing is read). `newest_first` yields the blocks
    /// from the newest backwards; `config_on(n)` says whether config block
    /// `n` has the capability. A block's envelopes were ordered under the
    /// config its LAST_CONFIG names, so reading stops at the first block
    /// (newest first) ordered under a config without the capability — the
    /// window was off, or emptied, there — or when the window is full.
    pub fn seed<I, F>(limits: WindowLimits, on: bool, newest_first: I, mut config_on: F) -> Self
    where
        I: IntoIterator<Item = Block>,
        F: FnMut(u64) -> bool,
    {
        let mut w = Self::off(limits);
        w.on = on;
        if !on || limits.entries == 0 {
            return w;
        }
        let mut digests: Vec<EnvelopeDigest> = Vec::new();
        let mut in_force: Option<(u64, bool)> = None;
        'blocks: for b in newest_first {
            let Some(lc) = fabric_common::block::last_config_index(&b) else {
                break;
            };
            let lc_on = match in_force {
                Some((n, v)) if n == lc => v,
                _ => config_on(lc),
            };
            in_force = Some((lc, lc_on));
            if !lc_on {
                break;
            }
            let data = b.data.map(|d| d.data).unwrap_or_default();
            for env in data.iter().rev() {
                if !is_config_class(env) {
                    digests.push(digest(env));
                    if digests.len() == limits.entries {
                        break 'blocks;
                    }
                }
            }
        }
        for d in digests.into_iter().rev() {
            w.push(d);
        }
        w
    }

    /// [`Self::seed`] from a channel's ledger.
    pub fn seed_from_ledger(
        limits: WindowLimits,
        on: bool,
        reader: &fabric_ledger::LedgerReader,
    ) -> Self {
        Self::seed(limits, on, newest_first(reader), |n| {
            reader.get(n).is_ok_and(|b| config_block_on(&b))
        })
    }

    /// Number of remembered envelopes.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Heap bytes held now (never above [`WindowLimits::max_heap_bytes`]).
    pub fn heap_bytes(&self) -> usize {
        const D: usize = std::mem::size_of::<EnvelopeDigest>();
        // `capacity()` is 7/8 of the buckets (buckets − 1 below 8).
        let cap = self.set.capacity();
        let buckets = match cap {
            0 => 0,
            c if c < 8 => (c + 1).next_power_of_two(),
            c => (c * 8 / 7).next_power_of_two(),
        };
        let ctrl = if buckets > 0 { buckets + GROUP } else { 0 };
        self.order.capacity() * D + buckets * D + ctrl
    }

    /// The remembered digests, oldest first.
    pub fn digests(&self) -> impl Iterator<Item = &EnvelopeDigest> {
        self.order.iter()
    }
}

/// CONFIG and ORDERER_TRANSACTION envelopes: the config class, which is
/// never in the window (the chain orders them without asking it).
fn is_config_class(envelope: &[u8]) -> bool {
    header_type(envelope).is_some_and(|(kind, _)| {
        kind == HeaderType::Config as i32 || kind == HeaderType::OrdererTransaction as i32
    })
}

/// Whether a config block's CONFIG envelope has the capability.
pub fn config_block_on(block: &Block) -> bool {
    let Some(env) = block.data.as_ref().and_then(|d| d.data.first()) else {
        return false;
    };
    match header_type(env) {
        Some((kind, data)) if kind == HeaderType::Config as i32 => {
            ConfigEnvelope::decode(data.as_slice())
                .ok()
                .and_then(|c| c.config)
                .is_some_and(|c| exactly_once(&c))
        }
        _ => false,
    }
}

/// The channel header type of an envelope and its payload data.
fn header_type(envelope: &[u8]) -> Option<(i32, Vec<u8>)> {
    let env = Envelope::decode(envelope).ok()?;
    let payload = Payload::decode(env.payload.as_slice()).ok()?;
    let ch = ChannelHeader::decode(payload.header?.channel_header.as_slice()).ok()?;
    Some((ch.r#type, payload.data))
}

/// Reads the blocks of `reader` from the newest backwards (for [`EnvelopeWindow::seed`]).
fn newest_first(reader: &fabric_ledger::LedgerReader) -> impl Iterator<Item = Block> + '_ {
    let h = reader.height();
    (0..h).rev().filter_map(move |n| reader.get(n).ok())
}

#[cfg(test)]
mod tests;
