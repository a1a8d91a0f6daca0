//! ⑤ Block cutter: Fabric's batching rules, pure and synchronous.
//!
//! Rules (Fabric `orderer/common/blockcutter/blockcutter.go`):
//! * a message's size is `len(payload) + len(signature)`;
//! * a message larger than `PreferredMaxBytes` is cut into a block of its own,
//!   after the pending batch (if any) is cut first;
//! * if adding a message would make the pending batch exceed
//!   `PreferredMaxBytes`, the pending batch is cut first;
//! * when the pending batch reaches `MaxMessageCount`, it is cut;
//! * `BatchTimeout` is driven by the caller: it calls [`BlockCutter::cut`].
//!
//! The cutter is generic over the message type so the chain can carry each
//! envelope's acknowledgement with it.

/// The `BatchSize` values the cutter needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSize {
    /// `MaxMessageCount`.
    pub max_message_count: u32,
    /// `AbsoluteMaxBytes` (enforced at Broadcast; kept for reference).
    pub absolute_max_bytes: u32,
    /// `PreferredMaxBytes`.
    pub preferred_max_bytes: u32,
}

/// What [`BlockCutter::ordered`] returns: zero, one or two batches to write
/// as blocks (in order), and whether messages remain pending.
#[derive(Debug, PartialEq, Eq)]
pub struct Ordered<T> {
    /// Batches to write, oldest first (at most two).
    pub batches: Vec<Vec<T>>,
    /// Whether a batch is pending after this message.
    pub pending: bool,
}

/// The pending batch.
#[derive(Debug)]
pub struct BlockCutter<T> {
    pending: Vec<T>,
    pending_bytes: u64,
}

impl<T> Default for BlockCutter<T> {
    fn default() -> Self {
        Self {
            pending: Vec::new(),
            pending_bytes: 0,
        }
    }
}

impl<T> BlockCutter<T> {
    /// An empty cutter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one message of `size` bytes under the current `batch_size`.
    pub fn ordered(&mut self, msg: T, size: u64, batch_size: &BatchSize) -> Ordered<T> {
        let mut batches = Vec::new();
        let preferred = u64::from(batch_size.preferred_max_bytes);
        if size > preferred {
            if !self.pending.is_empty() {
                batches.push(self.cut());
            }
            batches.push(vec![msg]);
            return Ordered {
                batches,
                pending: false,
            };
        }
        if self.pending_bytes + size > preferred {
            batches.push(self.cut());
        }
        self.pending.push(msg);
        self.pending_bytes += size;
        let mut pending = true;
        if self.pending.len() as u64 >= u64::from(batch_size.max_message_count) {
            batches.push(self.cut());
            pending = false;
        }
        debug_assert!(batches.len() <= 2);
        Ordered { batches, pending }
    }

    /// Cuts and returns the pending batch (possibly empty).
    pub fn cut(&mut self) -> Vec<T> {
        self.pending_bytes = 0;
        std::mem::take(&mut self.pending)
    }

    /// Number of pending messages.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Bytes of pending messages.
    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes
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

    /// Feeds (id, size) messages and returns the cut batches' ids plus the final pending flag.
    fn run(msgs: &[(u32, u64)]) -> (Vec<Vec<u32>>, bool) {
        let mut c = BlockCutter::new();
        let mut out = Vec::new();
        let mut pending = false;
        for &(id, size) in msgs {
            let o = c.ordered(id, size, &BS);
            out.extend(o.batches);
            pending = o.pending;
        }
        (out, pending)
    }

    // One row per rule of Fabric's blockcutter (blockcutter.go / blockcutter_test.go).
    #[test]
    fn table() {
        type Row<'a> = (&'a str, &'a [(u32, u64)], &'a [&'a [u32]], bool);
        let rows: &[Row<'_>] = &[
            ("first small message stays pending", &[(1, 10)], &[], true),
            (
                "count reached cuts",
                &[(1, 10), (2, 10), (3, 10)],
                &[&[1, 2, 3]],
                false,
            ),
            (
                "count reached then new pending",
                &[(1, 10), (2, 10), (3, 10), (4, 10)],
                &[&[1, 2, 3]],
                true,
            ),
            (
                "oversized alone, nothing pending",
                &[(1, 101)],
                &[&[1]],
                false,
            ),
            (
                "oversized cuts pending first",
                &[(1, 10), (2, 101)],
                &[&[1], &[2]],
                false,
            ),
            ("exactly preferred is not oversized", &[(1, 100)], &[], true),
            (
                "overflow cuts pending before adding",
                &[(1, 60), (2, 50)],
                &[&[1]],
                true,
            ),
            (
                "exact fill does not overflow",
                &[(1, 60), (2, 40)],
                &[],
                true,
            ),
            (
                "overflow then count",
                &[(1, 60), (2, 50), (3, 10), (4, 10)],
                &[&[1], &[2, 3, 4]],
                false,
            ),
            (
                "zero-size messages count",
                &[(1, 0), (2, 0), (3, 0)],
                &[&[1, 2, 3]],
                false,
            ),
        ];
        for (name, msgs, want, want_pending) in rows {
            let (got, pending) = run(msgs);
            let want: Vec<Vec<u32>> = want.iter().map(|b| b.to_vec()).collect();
            assert_eq!(got, want, "{name}");
            assert_eq!(pending, *want_pending, "{name}: pending");
        }
    }

    #[test]
    fn cut_returns_pending_and_resets() {
        let mut c = BlockCutter::new();
        let _ = c.ordered(1u32, 10, &BS);
        let _ = c.ordered(2u32, 10, &BS);
        assert_eq!(c.pending_bytes(), 20);
        assert_eq!(c.cut(), vec![1, 2]);
        assert_eq!(c.pending_len(), 0);
        assert_eq!(c.pending_bytes(), 0);
        assert!(c.cut().is_empty());
    }

    #[test]
    fn max_count_one_cuts_every_message() {
        let bs = BatchSize {
            max_message_count: 1,
            ..BS
        };
        let mut c = BlockCutter::new();
        for i in 0..5u32 {
            let o = c.ordered(i, 1, &bs);
            assert_eq!(o.batches, vec![vec![i]]);
            assert!(!o.pending);
        }
    }

    proptest::proptest! {
        /// Invariants: order preserved, nothing lost or duplicated, every cut
        /// batch respects count, and a multi-message batch respects preferred bytes.
        #[test]
        fn invariants(sizes in proptest::collection::vec(0u64..150, 0..200),
                      count in 1u32..10, preferred in 1u32..200) {
            let bs = BatchSize { max_message_count: count, absolute_max_bytes: 1000, preferred_max_bytes: preferred };
            let mut c = BlockCutter::new();
            let mut out: Vec<Vec<(usize, u64)>> = Vec::new();
            for (i, s) in sizes.iter().enumerate() {
                let o = c.ordered((i, *s), *s, &bs);
                proptest::prop_assert!(o.batches.len() <= 2);
                proptest::prop_assert_eq!(o.pending, c.pending_len() > 0);
                out.extend(o.batches);
            }
            let rest = c.cut();
            if !rest.is_empty() { out.push(rest); }
            let flat: Vec<usize> = out.iter().flatten().map(|(i, _)| *i).collect();
            proptest::prop_assert_eq!(flat, (0..sizes.len()).collect::<Vec<_>>());
            for b in &out {
                proptest::prop_assert!(!b.is_empty());
                proptest::prop_assert!(b.len() <= count as usize);
                if b.len() > 1 {
                    let bytes: u64 = b.iter().map(|(_, s)| s).sum();
                    proptest::prop_assert!(bytes <= u64::from(preferred));
                }
            }
        }
    }
}
