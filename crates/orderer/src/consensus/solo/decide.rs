//! ⑤ Solo's decisions, pure and synchronous (Fabric
//! `orderer/consensus/solo/consensus.go`, its main loop), as the Kafka
//! chain's are in [`crate::consensus::kafka::decide`].
//!
//! Input: envelopes in arrival order (already re-validated when their config
//! sequence is stale), config messages, and the batch timer firing. Output:
//! [`Action`]s — blocks to write, timer changes, and what to answer a copy
//! the exactly-once window drops. The chain task does the I/O.

use crate::blockcutter::{BatchSize, BlockCutter};
use crate::dedupe::EnvelopeWindow;

/// What the chain task must do.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<T> {
    /// Write these as the next block.
    WriteBlock(Vec<T>),
    /// Arm the batch timer.
    StartTimer,
    /// Disarm the batch timer.
    StopTimer,
    /// A byte-identical copy of an envelope in the window (exactly once on):
    /// not ordered again. `now`: answer SUCCESS at once; otherwise its
    /// original may be in the pending batch, so answer when that is durable.
    Duplicate {
        /// The dropped copy.
        item: T,
        /// Nothing is pending: the original is durable already.
        now: bool,
    },
}

/// Solo's decision state. Owned by the chain task.
#[derive(Debug)]
pub struct Decider<T> {
    cutter: BlockCutter<T>,
    window: EnvelopeWindow,
    timer_armed: bool,
}

impl<T> Decider<T> {
    /// Starts with `window` (seeded from the ledger; off unless the
    /// channel's config asks for exactly once).
    pub fn new(window: EnvelopeWindow) -> Self {
        Self {
            cutter: BlockCutter::new(),
            window,
            timer_armed: false,
        }
    }

    /// A config block was committed; `on`: it has the exactly-once capability.
    pub fn set_exactly_once(&mut self, on: bool) {
        self.window.set_on(on);
    }

    fn set_timer(&mut self, pending: bool, out: &mut Vec<Action<T>>) {
        if pending != self.timer_armed {
            self.timer_armed = pending;
            out.push(if pending {
                Action::StartTimer
            } else {
                Action::StopTimer
            });
        }
    }

    /// A normal envelope (`item`'s bytes as they go into the block), `size`
    /// as the cutter counts it.
    pub fn on_normal(&mut self, item: T, size: u64, batch_size: &BatchSize) -> Vec<Action<T>>
    where
        T: AsRef<[u8]>,
    {
        if !self.window.admit(item.as_ref()) {
            let now = self.cutter.pending_len() == 0;
            return vec![Action::Duplicate { item, now }];
        }
        let o = self.cutter.ordered(item, size, batch_size);
        let mut out: Vec<Action<T>> = o.batches.into_iter().map(Action::WriteBlock).collect();
        self.set_timer(o.pending, &mut out);
        out
    }

    /// A config message arrives: the pending batch is cut first (the config
    /// block follows on its own).
    pub fn on_config(&mut self) -> Vec<Action<T>> {
        let mut out = Vec::new();
        let batch = self.cutter.cut();
        if !batch.is_empty() {
            out.push(Action::WriteBlock(batch));
        }
        self.set_timer(false, &mut out);
        out
    }

    /// The batch timer fired.
    pub fn on_timer(&mut self) -> Vec<Action<T>> {
        self.timer_armed = false;
        let batch = self.cutter.cut();
        if batch.is_empty() {
            Vec::new()
        } else {
            vec![Action::WriteBlock(batch)]
        }
    }

    /// Whatever is pending (the node stops).
    pub fn drain(&mut self) -> Vec<T> {
        self.cutter.cut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedupe::WindowLimits;

    const BS: BatchSize = BatchSize {
        max_message_count: 2,
        absolute_max_bytes: 100,
        preferred_max_bytes: 50,
    };

    fn off() -> Decider<&'static str> {
        Decider::new(EnvelopeWindow::off(WindowLimits::DEFAULT))
    }

    fn normal(d: &mut Decider<&'static str>, e: &'static str) -> Vec<Action<&'static str>> {
        d.on_normal(e, e.len() as u64, &BS)
    }

    #[test]
    fn cut_by_count_with_the_timer_armed_while_something_is_pending() {
        let mut d = off();
        assert_eq!(normal(&mut d, "a"), vec![Action::StartTimer]);
        assert_eq!(
            normal(&mut d, "b"),
            vec![Action::WriteBlock(vec!["a", "b"]), Action::StopTimer]
        );
        assert_eq!(normal(&mut d, "c"), vec![Action::StartTimer]);
        assert_eq!(d.on_timer(), vec![Action::WriteBlock(vec!["c"])]);
        assert!(d.on_timer().is_empty(), "nothing pending");
    }

    #[test]
    fn a_config_message_cuts_what_is_pending_first() {
        let mut d = off();
        assert!(d.on_config().is_empty());
        normal(&mut d, "a");
        assert_eq!(
            d.on_config(),
            vec![Action::WriteBlock(vec!["a"]), Action::StopTimer]
        );
        // An oversized envelope goes alone, after the pending one.
        normal(&mut d, "b");
        let big: &'static str = Box::leak("x".repeat(60).into_boxed_str());
        assert_eq!(
            normal(&mut d, big),
            vec![
                Action::WriteBlock(vec!["b"]),
                Action::WriteBlock(vec![big]),
                Action::StopTimer
            ]
        );
    }

    #[test]
    fn with_exactly_once_a_copy_is_dropped_and_answered_after_its_original() {
        let mut d = off();
        normal(&mut d, "x");
        assert_eq!(
            normal(&mut d, "x"),
            vec![Action::WriteBlock(vec!["x", "x"]), Action::StopTimer]
        );
        d.set_exactly_once(true);
        assert_eq!(normal(&mut d, "y"), vec![Action::StartTimer]);
        // The original is pending: answer the copy once that block is durable.
        assert_eq!(
            normal(&mut d, "y"),
            vec![Action::Duplicate {
                item: "y",
                now: false
            }]
        );
        assert_eq!(d.on_timer(), vec![Action::WriteBlock(vec!["y"])]);
        assert_eq!(
            normal(&mut d, "y"),
            vec![Action::Duplicate {
                item: "y",
                now: true
            }]
        );
        assert_eq!(d.drain(), Vec::<&str>::new());
    }
}
