//! A sharded concurrent map from [`LimitKey`] to per-key atomic state. The shard lock is
//! taken for writing only to insert a key seen for the first time; a hit takes a shared
//! read lock and then works on the value's atomics.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{PoisonError, RwLock};

use serde::{Deserialize, Serialize};

/// What a limit counts: an interned subject (the subscription, app or credential, as the
/// gateway numbers them in its snapshot) and the limit clause (group and period) it
/// counts against. Two words, `Copy`: no allocation per request.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct LimitKey {
    /// Interned id (or 64-bit hash) of the subscription, app or credential counted.
    pub subject: u64,
    /// Index of the limit clause (group + period) in the caller's snapshot.
    pub limit: u32,
}

impl LimitKey {
    /// A key.
    pub const fn new(subject: u64, limit: u32) -> Self {
        Self { subject, limit }
    }
}

/// splitmix64's finalizer: a cheap, well-mixing hash for keys that are already ids. Not
/// DoS-resistant, and it need not be: subjects are ids the gateway assigned, never input.
#[inline]
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The hasher of [`LimitKey`]s (and anything else hashed as integers).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = mix(self.0.rotate_left(23) ^ n);
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type Shard<V> = RwLock<HashMap<LimitKey, V, BuildHasherDefault<KeyHasher>>>;

/// One shard on its own cache line, so two hot shards do not share one.
#[repr(align(64))]
struct Padded<V>(Shard<V>);

pub(crate) struct ShardedMap<V> {
    shards: Box<[Padded<V>]>,
    mask: u64,
}

impl<V: Default> ShardedMap<V> {
    /// `shards` is rounded up to a power of two (at least 1).
    pub(crate) fn new(shards: usize) -> Self {
        let n = shards.max(1).next_power_of_two();
        Self {
            shards: (0..n).map(|_| Padded(RwLock::default())).collect(),
            mask: n as u64 - 1,
        }
    }

    #[inline]
    fn shard(&self, key: &LimitKey) -> &Shard<V> {
        let mut h = KeyHasher::default();
        key.hash(&mut h);
        // The map inside a shard uses the low bits (bucket) and the top 7 bits (tag) of
        // the same hash: take the shard from the middle so they stay independent.
        let i = ((h.finish() >> 32) & self.mask) as usize;
        &self.shards[i].0
    }

    /// Runs `f` on the key's value, inserting a default value on first sight.
    #[inline]
    pub(crate) fn with<R>(&self, key: &LimitKey, f: impl FnOnce(&V) -> R) -> R {
        let shard = self.shard(key);
        {
            let map = shard.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(v) = map.get(key) {
                return f(v);
            }
        }
        let mut map = shard.write().unwrap_or_else(PoisonError::into_inner);
        f(map.entry(*key).or_default())
    }

    /// Runs `f` on the key's value if there is one (never inserts).
    #[inline]
    pub(crate) fn get<R>(&self, key: &LimitKey, f: impl FnOnce(&V) -> R) -> Option<R> {
        let map = self
            .shard(key)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        map.get(key).map(f)
    }

    /// Visits every entry, one shard at a time.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&LimitKey, &V)) {
        for shard in &*self.shards {
            let map = shard.0.read().unwrap_or_else(PoisonError::into_inner);
            for (k, v) in map.iter() {
                f(k, v);
            }
        }
    }

    /// Keeps the entries for which `keep` is true.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&LimitKey, &V) -> bool) {
        for shard in &*self.shards {
            let mut map = shard.0.write().unwrap_or_else(PoisonError::into_inner);
            map.retain(|k, v| keep(k, v));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.0.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn inserts_once_and_spreads_over_shards() {
        let m: ShardedMap<AtomicU64> = ShardedMap::new(10);
        assert_eq!(m.shards.len(), 16);
        for s in 0..1000u64 {
            for l in 0..3 {
                m.with(&LimitKey::new(s, l), |v| v.fetch_add(1, Ordering::Relaxed));
                m.with(&LimitKey::new(s, l), |v| v.fetch_add(1, Ordering::Relaxed));
            }
        }
        assert_eq!(m.len(), 3000);
        assert_eq!(
            m.get(&LimitKey::new(7, 2), |v| v.load(Ordering::Relaxed)),
            Some(2)
        );
        assert_eq!(m.get(&LimitKey::new(7, 9), |_| ()), None);
        let per_shard: Vec<usize> = m.shards.iter().map(|s| s.0.read().unwrap().len()).collect();
        assert!(per_shard.iter().all(|&n| n > 100), "{per_shard:?}");
        m.retain(|k, _| k.limit == 0);
        assert_eq!(m.len(), 1000);
    }
}
