//! A bounded map from serialized-identity bytes to a computed value,
//! approximating LRU with two generations: lookups hit the young map, or
//! promote from the old one; when the young map reaches half the capacity
//! it becomes the old map and the previous old map is dropped. Everything
//! is O(1) amortised and at most `capacity` entries are held.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Default capacity of the identity cache.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Hit/miss counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that computed the value.
    pub misses: u64,
    /// Entries currently held.
    pub len: usize,
}

struct Generations<K, V> {
    young: HashMap<K, V>,
    old: HashMap<K, V>,
}

/// The bounded cache.
pub struct BoundedCache<K, V> {
    half: usize,
    inner: Mutex<Generations<K, V>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<K: Hash + Eq + Clone, V: Clone> BoundedCache<K, V> {
    /// A cache holding at most `capacity` entries (minimum 2).
    pub fn new(capacity: usize) -> Self {
        BoundedCache {
            half: (capacity / 2).max(1),
            inner: Mutex::new(Generations {
                young: HashMap::new(),
                old: HashMap::new(),
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations<K, V>> {
        // A panic while holding the lock cannot leave the maps inconsistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert_locked(&self, g: &mut Generations<K, V>, key: K, value: V) {
        if g.young.len() >= self.half {
            g.old = std::mem::take(&mut g.young);
        }
        g.young.insert(key, value);
    }

    /// The cached value for `key`, if any (promoting it to the young map).
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = K>,
    {
        let mut g = self.lock();
        if let Some(v) = g.young.get(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Some(v.clone());
        }
        if let Some(v) = g.old.remove(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            self.insert_locked(&mut g, key.to_owned(), v.clone());
            return Some(v);
        }
        None
    }

    /// The cached value, or `compute()` (run without holding the lock) stored.
    pub fn get_or_insert_with<Q>(&self, key: &Q, compute: impl FnOnce() -> V) -> V
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized + ToOwned<Owned = K>,
    {
        if let Some(v) = self.get(key) {
            return v;
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let v = compute();
        let mut g = self.lock();
        self.insert_locked(&mut g, key.to_owned(), v.clone());
        v
    }

    /// Counters and size.
    pub fn stats(&self) -> CacheStats {
        let g = self.lock();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            len: g.young.len() + g.old.len(),
        }
    }

    /// Drops every entry.
    pub fn clear(&self) {
        let mut g = self.lock();
        g.young.clear();
        g.old.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_recent_entries_survive() {
        let c: BoundedCache<Vec<u8>, u32> = BoundedCache::new(10);
        for i in 0..100u32 {
            c.get_or_insert_with(&i.to_be_bytes()[..], || i);
            // Keep entry 0 hot.
            assert_eq!(c.get(&0u32.to_be_bytes()[..]), Some(0));
            assert!(c.stats().len <= 10);
        }
        assert_eq!(c.get(&99u32.to_be_bytes()[..]), Some(99));
        assert_eq!(c.get(&1u32.to_be_bytes()[..]), None);
        let mut computed = false;
        assert_eq!(
            c.get_or_insert_with(&0u32.to_be_bytes()[..], || {
                computed = true;
                7
            }),
            0
        );
        assert!(!computed);
    }
}
