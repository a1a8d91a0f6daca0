//! State shared by the streams of one connection, found by the
//! connection's remote address: made by its first stream, removed from the
//! registry when the last thing holding it is dropped. Used by the receive
//! budgets ([`super::ingress`]) and the Deliver buffers ([`super::streams`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, LazyLock, Mutex, Weak};

type Map<T> = Mutex<HashMap<SocketAddr, Weak<PerConn<T>>>>;

fn new_map<T: 'static>() -> Map<T> {
    Mutex::new(HashMap::new())
}

/// Per-connection values of one kind, by remote address (a `static`).
pub struct Registry<T: 'static>(LazyLock<Map<T>>);

impl<T: 'static> Default for Registry<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: 'static> Registry<T> {
    /// An empty registry.
    pub const fn new() -> Self {
        Self(LazyLock::new(new_map::<T>))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Weak<PerConn<T>>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value of the connection from `addr`, made with `make` if it has
    /// none; without an address, a value shared with no one.
    pub fn of(
        &'static self,
        addr: Option<SocketAddr>,
        make: impl FnOnce() -> T,
    ) -> Arc<PerConn<T>> {
        let Some(addr) = addr else {
            return PerConn::unshared(make());
        };
        let mut conns = self.lock();
        if let Some(v) = conns.get(&addr).and_then(Weak::upgrade) {
            return v;
        }
        let v = Arc::new(PerConn {
            key: Some((addr, self)),
            value: make(),
        });
        conns.insert(addr, Arc::downgrade(&v));
        v
    }

    /// Whether a connection from `addr` has a value.
    pub fn contains(&self, addr: &SocketAddr) -> bool {
        self.lock().get(addr).is_some_and(|w| w.strong_count() > 0)
    }
}

/// One connection's value; leaves its registry when dropped.
pub struct PerConn<T: 'static> {
    key: Option<(SocketAddr, &'static Registry<T>)>,
    value: T,
}

impl<T: 'static> PerConn<T> {
    /// A value in no registry.
    pub fn unshared(value: T) -> Arc<Self> {
        Arc::new(Self { key: None, value })
    }
}

impl<T: 'static> Deref for PerConn<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: std::fmt::Debug + 'static> std::fmt::Debug for PerConn<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerConn")
            .field("addr", &self.key.map(|k| k.0))
            .field("value", &self.value)
            .finish()
    }
}

impl<T: 'static> Drop for PerConn<T> {
    fn drop(&mut self) {
        if let Some((addr, registry)) = self.key {
            let mut conns = registry.lock();
            // Another stream of the same address may have made a new one.
            if conns.get(&addr).is_some_and(|w| w.strong_count() == 0) {
                conns.remove(&addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static REG: Registry<u32> = Registry::new();

    #[test]
    fn one_value_per_address_until_the_last_holder_is_gone() {
        let addr: SocketAddr = "127.0.0.1:7".parse().unwrap();
        let a = REG.of(Some(addr), || 1);
        let b = REG.of(Some(addr), || 2);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(**b, 1);
        drop(a);
        assert!(REG.contains(&addr));
        drop(b);
        assert!(!REG.contains(&addr));
        assert!(REG.lock().get(&addr).is_none());
        // Made again, afresh.
        assert_eq!(**REG.of(Some(addr), || 3), 3);
        // No address: never shared.
        let (x, y) = (REG.of(None, || 4), REG.of(None, || 4));
        assert!(!Arc::ptr_eq(&x, &y));
    }
}
