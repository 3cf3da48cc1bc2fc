//! A bounded memo of [`decide`]: the decision is a pure function of the snapshot (plan
//! and directory), the request facts and the local minute in the plan's zone, so a
//! decision computed once can be reused for every identical request within that minute.
//!
//! The key is the exact input, not a digest of it: the plan key, the snapshot
//! `generation`, every field of [`RequestFacts`] and the local weekday, minute and date,
//! encoded length-prefixed into one byte string. A 64-bit keyed hash of that string picks
//! the shard and the slot; a hit also compares the stored bytes, so a hash collision is a
//! miss (and the newer entry replaces the older), never someone else's decision.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use jiff::Timestamp;

use crate::compile::CompiledPlan;
use crate::decide::{Decision, RequestFacts, decide};
use crate::directory::Directory;

/// Shards of the cache: a request locks one, so concurrent requests rarely meet.
const SHARDS: usize = 16;

/// A bounded, sharded, thread-safe cache of decisions (see [`decide_cached`]).
///
/// Each shard holds at most `capacity / 16` (rounded up) decisions. When a shard is full,
/// an insert sweeps it clock-style: entries hit since the previous sweep stay (their
/// "referenced" bit is cleared), the others go; if the sweep frees less than a quarter of
/// the shard, the shard is emptied, so an insert costs amortized O(1).
///
/// A capacity of 0 disables the cache: [`decide_cached`] then always calls [`decide`].
pub struct DecisionCache {
    shards: Box<[RwLock<Shard>]>,
    per_shard: usize,
    hasher: RandomState,
}

impl std::fmt::Debug for DecisionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stats = self.stats();
        f.debug_struct("DecisionCache")
            .field("capacity", &self.capacity())
            .field("stats", &stats)
            .finish()
    }
}

#[derive(Default)]
struct Shard {
    map: HashMap<u64, Entry, BuildHasherDefault<Identity>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

struct Entry {
    key: Box<[u8]>,
    decision: Arc<Decision>,
    referenced: AtomicBool,
}

/// Counters of a [`DecisionCache`] (relaxed: approximate under concurrency).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Decisions currently held.
    pub len: usize,
}

impl DecisionCache {
    /// A cache of at most about `capacity` decisions (0 = disabled).
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS);
        Self {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            per_shard,
            hasher: RandomState::new(),
        }
    }

    /// A cache that holds nothing: every call decides afresh.
    pub fn disabled() -> Self {
        Self::new(0)
    }

    /// The most decisions the cache holds.
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    /// Drops every decision (the counters stay).
    pub fn clear(&self) {
        for shard in &*self.shards {
            write(shard).map.clear();
        }
    }

    /// Hits, misses and size, summed over the shards.
    pub fn stats(&self) -> CacheStats {
        self.shards
            .iter()
            .fold(CacheStats::default(), |mut acc, shard| {
                let s = read(shard);
                acc.hits += s.hits.load(Ordering::Relaxed);
                acc.misses += s.misses.load(Ordering::Relaxed);
                acc.len += s.map.len();
                acc
            })
    }

    /// [`decide`] through the cache; see [`decide_cached`].
    pub fn decide(
        &self,
        generation: u64,
        plan: &CompiledPlan,
        dir: &Directory,
        facts: &RequestFacts<'_>,
        now: Timestamp,
    ) -> Arc<Decision> {
        if self.per_shard == 0 {
            return Arc::new(decide(plan, dir, facts, now));
        }
        KEY.with_borrow_mut(|key| {
            encode(key, generation, plan, facts, now);
            let hash = self.hasher.hash_one(key.as_slice());
            // The shard's table uses the low bits (slot) and the top 7 (tag): pick the
            // shard by bits in between.
            let shard = &self.shards[(hash >> 40) as usize % SHARDS];
            {
                let s = read(shard);
                if let Some(e) = s.map.get(&hash)
                    && *e.key == **key
                {
                    e.referenced.store(true, Ordering::Relaxed);
                    s.hits.fetch_add(1, Ordering::Relaxed);
                    return Arc::clone(&e.decision);
                }
                s.misses.fetch_add(1, Ordering::Relaxed);
            }
            let decision = Arc::new(decide(plan, dir, facts, now));
            let mut s = write(shard);
            if s.map.len() >= self.per_shard && !s.map.contains_key(&hash) {
                let before = s.map.len();
                s.map
                    .retain(|_, e| e.referenced.swap(false, Ordering::Relaxed));
                if (before - s.map.len()) * 4 < self.per_shard {
                    s.map.clear();
                }
            }
            s.map.insert(
                hash,
                Entry {
                    key: key.as_slice().into(),
                    decision: Arc::clone(&decision),
                    referenced: AtomicBool::new(false),
                },
            );
            decision
        })
    }
}

/// [`decide`], memoized in `cache`.
///
/// `generation` names the snapshot `plan` and `dir` belong to: the owner gives every new
/// snapshot (new plans, new subscriptions, new operator policies) a new number, stored
/// with the snapshot, so a request decided on an old snapshot can only fill entries no
/// request on the new one reads. (A counter read from the cache at call time would race
/// with a swap: a request still holding the old snapshot could store its decision under
/// the new number.)
///
/// The key is everything `decide` reads: the plan key, `generation`, every field of
/// `facts` (lists in the order given) and the local weekday, minute and date of `now` in
/// the plan's zone. A decision is therefore reused at most until the local minute
/// changes, and a new date (a blackout day) is a new key.
pub fn decide_cached(
    cache: &DecisionCache,
    generation: u64,
    plan: &CompiledPlan,
    dir: &Directory,
    facts: &RequestFacts<'_>,
    now: Timestamp,
) -> Arc<Decision> {
    cache.decide(generation, plan, dir, facts, now)
}

thread_local! {
    /// The key of the current request, encoded into a reused buffer (no allocation on a
    /// hit).
    static KEY: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(256));
}

/// The exact cache key: every input of [`decide`], each length-prefixed or tagged so two
/// different inputs never encode alike.
fn encode(
    buf: &mut Vec<u8>,
    generation: u64,
    plan: &CompiledPlan,
    facts: &RequestFacts<'_>,
    now: Timestamp,
) {
    fn str(buf: &mut Vec<u8>, s: &str) {
        buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
        buf.extend_from_slice(s.as_bytes());
    }
    fn list(buf: &mut Vec<u8>, items: &[String]) {
        buf.extend_from_slice(&(items.len() as u64).to_le_bytes());
        for s in items {
            str(buf, s);
        }
    }
    fn opt(buf: &mut Vec<u8>, s: Option<&str>) {
        match s {
            None => buf.push(0),
            Some(s) => {
                buf.push(1);
                str(buf, s);
            }
        }
    }
    buf.clear();
    buf.extend_from_slice(&generation.to_le_bytes());
    // The local calendar minute is what `decide` reads of `now` (weekday, minute of the
    // day and date follow from it).
    let dt = plan.tz.to_datetime(now);
    buf.extend_from_slice(&dt.year().to_le_bytes());
    buf.extend_from_slice(&[dt.month() as u8, dt.day() as u8, dt.hour() as u8]);
    buf.push(dt.minute() as u8);
    str(buf, &plan.key);
    str(buf, facts.app_id);
    str(buf, facts.api);
    str(buf, facts.operation);
    list(buf, facts.scopes);
    opt(buf, facts.region);
    list(buf, facts.data_categories);
    opt(buf, facts.purpose);
    list(buf, facts.consent);
    str(buf, facts.auth_method);
}

fn read(shard: &RwLock<Shard>) -> std::sync::RwLockReadGuard<'_, Shard> {
    // A panic while holding the lock leaves a consistent map (inserts and sweeps are
    // single std calls), so a poisoned shard is still usable.
    shard
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write(shard: &RwLock<Shard>) -> std::sync::RwLockWriteGuard<'_, Shard> {
    shard
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The map's keys are already keyed SipHash values: hash them as they are.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed (`write_u64`); fold anything else in for safety.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
