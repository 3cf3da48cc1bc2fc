//! What the gateway demands of a signature beyond its cryptography — covered
//! components, freshness, a key id — and replay protection by nonce.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::{Error, Message, SignatureInput};

/// The gateway's requirements for an accepted signature. `Policy::default()` is the
/// gateway's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Components every signature must cover, without parameters.
    pub required_components: Vec<String>,
    /// Whether a message with content must cover `content-digest` (and so bind its body).
    pub require_content_digest: bool,
    /// Oldest accepted `created`, in seconds before `now`.
    pub max_age: u64,
    /// Tolerated clock difference with the signer, in seconds: `created` may be this far
    /// in the future, `expires` this far in the past.
    pub clock_skew: u64,
    /// Whether the signature must name its key (`keyid`).
    pub require_keyid: bool,
    /// Whether the signature must carry a `nonce` (replay protection for every request).
    pub require_nonce: bool,
    /// The signature label to check; `None` checks the first in `Signature-Input`.
    pub label: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            required_components: ["@method", "@authority", "@path", "@query"]
                .map(String::from)
                .to_vec(),
            require_content_digest: true,
            max_age: 300,
            clock_skew: 30,
            require_keyid: true,
            require_nonce: false,
            label: None,
        }
    }
}

impl Policy {
    /// Checks `input`'s parameters and covered components against the policy at `now`
    /// (Unix seconds). Cheap; run it before the cryptography.
    pub fn check(
        &self,
        input: &SignatureInput<'_>,
        msg: &Message<'_>,
        now: i64,
    ) -> Result<(), Error> {
        if self.require_keyid && input.keyid().is_none() {
            return Err(Error::MissingKeyId);
        }
        let Some(created) = input.created() else {
            return Err(Error::MissingCreated);
        };
        let skew = i64::try_from(self.clock_skew).unwrap_or(i64::MAX);
        let max_age = i64::try_from(self.max_age).unwrap_or(i64::MAX);
        if created > now.saturating_add(skew) {
            return Err(Error::CreatedInFuture { created, now });
        }
        if now.saturating_sub(created) > max_age {
            return Err(Error::Stale {
                created,
                now,
                max_age: self.max_age,
            });
        }
        if let Some(expires) = input.expires()
            && now > expires.saturating_add(skew)
        {
            return Err(Error::Expired { expires, now });
        }
        if self.require_nonce && input.nonce().is_none() {
            return Err(Error::MissingNonce);
        }
        for name in &self.required_components {
            if !input.covers(name) {
                return Err(Error::MissingCoveredComponent(name.clone()));
            }
        }
        if self.require_content_digest && msg.has_body() && !input.covers("content-digest") {
            return Err(Error::MissingCoveredComponent("content-digest".into()));
        }
        Ok(())
    }

    /// Until when (Unix seconds, inclusive) a nonce of `input` must be remembered: past
    /// it the policy refuses the signature as stale or expired anyway.
    pub fn replay_horizon(&self, input: &SignatureInput<'_>, now: i64) -> i64 {
        let max_age = i64::try_from(self.max_age).unwrap_or(i64::MAX);
        let skew = i64::try_from(self.clock_skew).unwrap_or(i64::MAX);
        let by_age = input.created().unwrap_or(now).saturating_add(max_age);
        match input.expires() {
            Some(expires) => by_age.min(expires.saturating_add(skew)),
            None => by_age,
        }
    }
}

/// What a nonce cache says about a nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceOutcome {
    /// First sighting; now recorded.
    Fresh,
    /// Already recorded and still within its horizon.
    Replayed,
    /// Not recorded: the cache is full of live nonces.
    Full,
}

/// Remembers nonces until their replay horizon so that a signature is accepted once.
///
/// Implementations must be exact: a nonce recorded for a key is [`NonceOutcome::Replayed`]
/// until `until` has passed. A shared implementation (Redis) lets gateway replicas agree.
pub trait NonceCache: Send + Sync {
    /// Records `nonce` for `keyid` until `until` (Unix seconds, inclusive), at `now`.
    fn check_and_insert(&self, keyid: &str, nonce: &str, now: i64, until: i64) -> NonceOutcome;
}

impl<T: NonceCache + ?Sized> NonceCache for &T {
    fn check_and_insert(&self, keyid: &str, nonce: &str, now: i64, until: i64) -> NonceOutcome {
        (**self).check_and_insert(keyid, nonce, now, until)
    }
}

impl<T: NonceCache + ?Sized> NonceCache for std::sync::Arc<T> {
    fn check_and_insert(&self, keyid: &str, nonce: &str, now: i64, until: i64) -> NonceOutcome {
        (**self).check_and_insert(keyid, nonce, now, until)
    }
}

/// An in-memory [`NonceCache`]: bounded, sharded behind short mutexes, entries dropped
/// once past their horizon. When every slot holds a live nonce it answers
/// [`NonceOutcome::Full`] rather than forget one, so it never admits a replay.
#[derive(Debug)]
pub struct MemoryNonceCache {
    shards: Box<[Mutex<Shard>]>,
    /// The most nonces held, over all shards (a per-shard bound would refuse early when
    /// the random hash puts more than its share in one shard).
    capacity: usize,
    /// Entries held, over all shards.
    total: AtomicUsize,
    hasher: RandomState,
}

#[derive(Debug)]
struct Shard {
    /// `keyid \0 nonce` → last second (inclusive) it must be remembered.
    entries: HashMap<Box<str>, i64>,
    /// Earliest horizon among `entries`: until it has passed a sweep frees nothing.
    next_expiry: i64,
    /// When the shard was last swept.
    last_sweep: i64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            entries: HashMap::new(),
            next_expiry: i64::MAX,
            last_sweep: i64::MIN,
        }
    }
}

const SHARDS: usize = 16;

impl MemoryNonceCache {
    /// A cache holding at most `capacity` live nonces (at least one per shard).
    pub fn new(capacity: usize) -> Self {
        MemoryNonceCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            capacity: capacity.max(1),
            total: AtomicUsize::new(0),
            hasher: RandomState::new(),
        }
    }

    /// Drops a shard's entries past their horizon, at most once a second per shard
    /// (horizons are whole seconds) and only when something has expired.
    fn sweep(&self, shard: &mut Shard, now: i64) {
        if now > shard.last_sweep && now > shard.next_expiry {
            let before = shard.entries.len();
            shard.entries.retain(|_, horizon| *horizon >= now);
            self.total
                .fetch_sub(before - shard.entries.len(), Ordering::Relaxed);
            shard.next_expiry = shard.entries.values().copied().min().unwrap_or(i64::MAX);
            shard.last_sweep = now;
        }
    }

    /// Records a new key in `shard` if the cache has room; `false` when it is full.
    fn admit(&self, shard: &mut Shard, key: String, until: i64) -> bool {
        if self.total.fetch_add(1, Ordering::Relaxed) >= self.capacity {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        shard.entries.insert(key.into_boxed_str(), until);
        shard.next_expiry = shard.next_expiry.min(until);
        true
    }

    /// Live and expired-but-not-yet-swept entries.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entries
                    .len()
            })
            .sum()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl NonceCache for MemoryNonceCache {
    fn check_and_insert(&self, keyid: &str, nonce: &str, now: i64, until: i64) -> NonceOutcome {
        let mut key = String::with_capacity(keyid.len() + 1 + nonce.len());
        key.push_str(keyid);
        key.push('\0');
        key.push_str(nonce);
        let index = (self.hasher.hash_one(key.as_str()) as usize) % self.shards.len();
        let lock = |i: usize| {
            self.shards[i]
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        {
            let mut shard = lock(index);
            self.sweep(&mut shard, now);
            match shard.entries.get(key.as_str()).copied() {
                Some(horizon) if horizon >= now => return NonceOutcome::Replayed,
                Some(_) => {
                    // Recorded but past its horizon: a fresh use.
                    shard.entries.insert(key.into_boxed_str(), until);
                    shard.next_expiry = shard.next_expiry.min(until);
                    return NonceOutcome::Fresh;
                }
                None => {}
            }
            if self.total.load(Ordering::Relaxed) < self.capacity {
                return if self.admit(&mut shard, key, until) {
                    NonceOutcome::Fresh
                } else {
                    NonceOutcome::Full
                };
            }
        }
        // Full: reclaim what has expired in every shard (one lock at a time), then try
        // once more. Live nonces are never forgotten to make room.
        for i in 0..self.shards.len() {
            self.sweep(&mut lock(i), now);
        }
        let mut shard = lock(index);
        match shard.entries.get(key.as_str()).copied() {
            Some(horizon) if horizon >= now => return NonceOutcome::Replayed,
            Some(_) => {
                shard.entries.insert(key.into_boxed_str(), until);
                shard.next_expiry = shard.next_expiry.min(until);
                return NonceOutcome::Fresh;
            }
            None => {}
        }
        if self.admit(&mut shard, key, until) {
            NonceOutcome::Fresh
        } else {
            NonceOutcome::Full
        }
    }
}
