//! A stream's lanes: one per shard of its shard map. A lane holds the
//! records meant for its shard that wait for the shard's allowance (in input
//! order), the entries to send again after Kinesis refused them (with their
//! backoff), and the KPL aggregate being filled for that shard, so that every
//! user record of an aggregate belongs to the shard the aggregate lands on.
//! When order matters, a lane is claimed by the batch that holds its entries
//! until that batch is answered, so that no two calls in flight hold entries
//! for one shard.

use crate::engine::batch::EntryMeta;
use crate::engine::rate::{Allowance, Rate};
use crate::kinesis::aggregate::Aggregator;
use crate::kinesis::shards::{hash_of, parse_hash_key, ShardMap};
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// How the entries of a stream are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Not at all: every entry goes at once (throttled ones are resent with backoff).
    Off,
    /// At most this rate per shard, lowered while shards throttle.
    PerShard(Rate),
    /// By what the shards accept alone (on-demand streams, whose shards may
    /// be added at any time, or streams whose shards are not known).
    Adaptive,
}

/// What a new map hands back of the old lanes, to be routed again.
#[derive(Debug, Default)]
pub struct Remapped {
    /// Entries that waited in the queues, in input order per lane.
    pub queued: Vec<Waiting>,
    /// Entries waiting to be sent again.
    pub retries: Vec<Waiting>,
}

/// An entry waiting for its shard's allowance, in the wire format.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// The entry as `put_records::encode_entry` wrote it.
    pub entry: Vec<u8>,
    /// What the batch must know of it.
    pub meta: EntryMeta,
    /// Its key's hash under keepKeyOrder (0 otherwise).
    pub key_hash: u64,
}

/// One shard's lane.
#[derive(Debug)]
pub struct Lane {
    /// Entries waiting for the allowance, oldest first.
    pub queue: VecDeque<Waiting>,
    /// Entries Kinesis refused, to be sent again before the queue's, oldest
    /// first, once `retry_at` has passed.
    pub retries: VecDeque<Waiting>,
    /// When the retries may go; None: at once.
    pub retry_at: Option<Instant>,
    /// Answers in a row that refused entries of this lane and stored none:
    /// the next backoff grows with them.
    pub failures: u32,
    /// The batch that holds entries of this lane and is not answered yet,
    /// when lanes are claimed (see `Lanes::claims`).
    pub claimed_by: Option<u64>,
    /// The aggregate being filled for this shard (boxed: most lanes of a
    /// large catalog never need one).
    pub aggregate: Option<Box<Aggregator>>,
    /// The number of the aggregate's first record, and its hash.
    pub aggregate_first: (u64, Option<u128>),
    /// Counts the aggregates this lane filled, so that a deadline of an
    /// aggregate closed early is told apart from the current one's.
    pub aggregate_generation: u64,
    /// How much the shard may take now; None when not paced.
    pub allowance: Option<Allowance>,
}

impl Lane {
    fn new(pace: Pace, now: Instant) -> Lane {
        let allowance = match pace {
            Pace::Off => None,
            Pace::PerShard(rate) => Some(Allowance::new(Some(rate), now)),
            Pace::Adaptive => Some(Allowance::new(None, now)),
        };
        Lane {
            queue: VecDeque::new(),
            retries: VecDeque::new(),
            retry_at: None,
            failures: 0,
            claimed_by: None,
            aggregate: None,
            aggregate_first: (0, None),
            aggregate_generation: 0,
            allowance,
        }
    }

    /// Whether the retries may go at `now`.
    pub fn retries_due(&self, now: Instant) -> bool {
        !self.retries.is_empty() && self.retry_at.is_none_or(|at| at <= now)
    }

    /// Takes the allowance for one entry of `payload` bytes, if there is
    /// room now; the clock is read only when the shard's rate is limited
    /// (this runs for every record).
    pub fn take_now(&mut self, payload: usize) -> bool {
        match self.allowance.as_mut() {
            None => true,
            Some(a) if !a.is_limited() => {
                a.note(1.0, payload as f64);
                true
            }
            Some(a) => a.try_take(Instant::now(), 1.0, payload as f64),
        }
    }

    /// Takes the allowance for one entry of `payload` bytes, if there is room at `now`.
    pub fn try_take(&mut self, now: Instant, payload: usize) -> bool {
        self.allowance
            .as_mut()
            .is_none_or(|a| a.try_take(now, 1.0, payload as f64))
    }

    /// When the next entry to go could go: the retries' once their backoff
    /// is over, else the queue's (unless `strict` order keeps the queue
    /// behind the retries); None while a batch in flight claims the lane.
    pub fn ready_at(&self, now: Instant, strict: bool) -> Option<Instant> {
        if self.claimed_by.is_some() {
            return None;
        }
        let retry = self.retries.front().map(|w| {
            let after = self.retry_at.map_or(now, |at| at.max(now));
            (after, w)
        });
        let queued = if strict && retry.is_some() {
            None
        } else {
            self.queue.front().map(|w| (now, w))
        };
        [retry, queued]
            .into_iter()
            .flatten()
            .map(|(after, w)| {
                self.allowance.as_ref().map_or(after, |a| {
                    a.ready_at(after, 1.0, f64::from(w.meta.payload)).max(after)
                })
            })
            .min()
    }
}

/// A stream's lanes, for one shard map.
#[derive(Debug)]
pub struct Lanes {
    map: ShardMap,
    /// Counts the maps this stream had, so that lanes named by an older map
    /// are not taken for lanes of this one.
    generation: u64,
    lanes: Vec<Lane>,
    pace: Pace,
    /// Entries waiting in all lanes, and their bytes.
    queued: usize,
    queued_bytes: usize,
    /// The lane a release starts at, so that each gets its turn at a batch's room.
    next: usize,
}

impl Lanes {
    /// Lanes for `map`, paced as `pace` says.
    pub fn new(map: ShardMap, pace: Pace, now: Instant) -> Lanes {
        let lanes = (0..map.len()).map(|_| Lane::new(pace, now)).collect();
        Lanes {
            map,
            generation: 0,
            lanes,
            pace,
            queued: 0,
            queued_bytes: 0,
            next: 0,
        }
    }

    /// The shard map in use.
    pub fn map(&self) -> &ShardMap {
        &self.map
    }

    /// Which shard map the lanes follow.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The lane (and, when it took working out, the hash) of a record with
    /// this partition key or explicit hash key. One lane needs no hash.
    pub fn route(&self, key: &str, explicit_hash_key: Option<&str>) -> (u32, Option<u128>) {
        if self.lanes.len() <= 1 {
            return (0, None);
        }
        let hash = explicit_hash_key
            .and_then(parse_hash_key)
            .unwrap_or_else(|| hash_of(key));
        (self.map.index_of(hash) as u32, Some(hash))
    }

    /// Lane `i`.
    pub fn lane(&mut self, i: u32) -> &mut Lane {
        &mut self.lanes[i as usize]
    }

    /// The unanswered batch that claims lane `i`, if one does.
    pub fn claimed_by(&self, i: u32) -> Option<u64> {
        self.lanes[i as usize].claimed_by
    }

    /// Number of lanes.
    pub fn len(&self) -> usize {
        self.lanes.len()
    }

    /// Whether entries are paced at all.
    pub fn paced(&self) -> bool {
        self.pace != Pace::Off
    }

    /// Entries waiting in all lanes (queued or to be retried).
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Bytes waiting in all lanes.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Queues an entry at the back of lane `i` (it waits behind the others).
    pub fn queue_back(&mut self, i: u32, w: Waiting) {
        self.count_in(&w);
        self.lanes[i as usize].queue.push_back(w);
    }

    /// Puts entries Kinesis refused, in their order, before lane `i`'s other
    /// retries (they were sent before those), to go once `at` has passed.
    pub fn retry(&mut self, i: u32, entries: Vec<Waiting>, at: Option<Instant>) {
        for w in &entries {
            self.count_in(w);
        }
        let lane = &mut self.lanes[i as usize];
        for w in entries.into_iter().rev() {
            lane.retries.push_front(w);
        }
        lane.retry_at = at;
    }

    fn count_in(&mut self, w: &Waiting) {
        self.queued += 1;
        self.queued_bytes += w.entry.len();
    }

    /// The entry of lane `i` that goes next at `now`, if one may (the
    /// retries once due, else the queue's oldest, unless `strict` order
    /// keeps the queue behind the retries), and whether it is a retry.
    pub fn next(&self, i: u32, now: Instant, strict: bool) -> Option<(&Waiting, bool)> {
        let lane = &self.lanes[i as usize];
        if lane.retries_due(now) {
            return lane.retries.front().map(|w| (w, true));
        }
        if strict && !lane.retries.is_empty() {
            return None;
        }
        lane.queue.front().map(|w| (w, false))
    }

    /// Takes the entry `next` gave.
    pub fn pop(&mut self, i: u32, retry: bool) -> Option<Waiting> {
        let lane = &mut self.lanes[i as usize];
        let w = if retry {
            lane.retries.pop_front()
        } else {
            lane.queue.pop_front()
        }?;
        self.queued -= 1;
        self.queued_bytes -= w.entry.len();
        Some(w)
    }

    /// The lane order for the next release: each lane in turn goes first.
    pub fn release_order(&mut self) -> impl Iterator<Item = u32> {
        let n = self.lanes.len();
        let start = self.next % n.max(1);
        self.next = self.next.wrapping_add(1);
        (0..n).map(move |k| ((start + k) % n) as u32)
    }

    /// When the next waiting entry of any lane could go.
    pub fn next_release(&self, now: Instant, strict: bool) -> Option<Instant> {
        self.lanes
            .iter()
            .filter_map(|l| l.ready_at(now, strict))
            .min()
    }

    /// Frees the lanes that batch `batch` claimed: those of `lanes` when the
    /// batch was filled under the current map (`generation`), else any.
    pub fn unclaim(&mut self, batch: u64, generation: u64, lanes: impl Iterator<Item = u32>) {
        let free = |l: &mut Lane| {
            if l.claimed_by == Some(batch) {
                l.claimed_by = None;
            }
        };
        if generation == self.generation {
            for i in lanes {
                if let Some(l) = self.lanes.get_mut(i as usize) {
                    free(l);
                }
            }
        } else {
            self.lanes.iter_mut().for_each(free);
        }
    }

    /// Takes the lanes over to a new map: the waiting entries are handed
    /// back (to be routed again; retries apart), the aggregates must have
    /// been closed. A shard in both maps keeps its allowance (a new one would
    /// hand it a second full burst, which throttles a shard already sent its
    /// rate) and its claim (a call in flight still holds its entries).
    pub fn remap(&mut self, map: ShardMap, now: Instant) -> Remapped {
        let mut back = Remapped::default();
        for l in &mut self.lanes {
            back.queued.extend(l.queue.drain(..));
            back.retries.extend(l.retries.drain(..));
        }
        self.queued = 0;
        self.queued_bytes = 0;
        debug_assert_eq!(self.lanes.len(), self.map.len(), "a lane per shard");
        let mut kept: HashMap<&str, Lane> = self
            .map
            .shards()
            .iter()
            .zip(std::mem::take(&mut self.lanes))
            .map(|(shard, lane)| (shard.id.as_str(), lane))
            .collect();
        self.lanes = map
            .shards()
            .iter()
            .map(|shard| {
                let mut lane = Lane::new(self.pace, now);
                if let Some(old) = kept.remove(shard.id.as_str()) {
                    lane.allowance = old.allowance;
                    lane.claimed_by = old.claimed_by;
                }
                lane
            })
            .collect();
        self.map = map;
        self.generation += 1;
        back
    }

    /// The lane an entry routed by another map goes to now. An entry whose
    /// hash was not worked out (its map had one shard) gets it from the key
    /// it carries: maps change rarely, so this is rare.
    pub fn reroute(&self, entry: &[u8], meta: &mut EntryMeta) -> u32 {
        if self.lanes.len() <= 1 {
            return 0;
        }
        if meta.hash.is_none() {
            meta.hash = hash_of_entry(entry);
        }
        meta.hash.map_or(0, |hash| self.map.index_of(hash) as u32)
    }
}

/// The hash key of an entry in the wire format: its explicit hash key, or
/// its partition key's hash.
fn hash_of_entry(entry: &[u8]) -> Option<u128> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Keys {
        partition_key: String,
        explicit_hash_key: Option<String>,
    }
    let keys: Keys = serde_json::from_slice(entry).ok()?;
    Some(
        keys.explicit_hash_key
            .as_deref()
            .and_then(parse_hash_key)
            .unwrap_or_else(|| hash_of(&keys.partition_key)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinesis::Shard;

    fn two_shards() -> ShardMap {
        let half = u128::MAX / 2;
        ShardMap::from_listed(&[
            Shard::open("a", 0, half),
            Shard::open("b", half + 1, u128::MAX),
        ])
        .unwrap()
    }

    fn waiting(record: u64, hash: Option<u128>) -> Waiting {
        Waiting {
            entry: b"{}".to_vec(),
            meta: EntryMeta::one(record, 2, 0, hash),
            key_hash: 0,
        }
    }

    #[test]
    fn routes_by_key_or_explicit_hash() {
        let now = Instant::now();
        let lanes = Lanes::new(two_shards(), Pace::Off, now);
        let (lane, hash) = lanes.route("k1", None);
        assert_eq!(hash, Some(hash_of("k1")));
        assert_eq!(lane, u32::from(hash_of("k1") > u128::MAX / 2));
        assert_eq!(lanes.route("any", Some("0")).0, 0);
        assert_eq!(lanes.route("any", Some(&u128::MAX.to_string())).0, 1);
        let one = Lanes::new(ShardMap::whole(), Pace::Off, now);
        assert_eq!(
            one.route("k1", None),
            (0, None),
            "one lane: no hash worked out"
        );
    }

    #[test]
    fn retries_go_first_and_remaps_hand_everything_back() {
        let now = Instant::now();
        let mut lanes = Lanes::new(ShardMap::whole(), Pace::PerShard(Rate::shard(1.0)), now);
        lanes.queue_back(0, waiting(2, Some(u128::MAX)));
        lanes.queue_back(0, waiting(3, None));
        let later = now + std::time::Duration::from_millis(50);
        lanes.retry(
            0,
            vec![waiting(0, Some(0)), waiting(1, Some(0))],
            Some(later),
        );
        assert_eq!((lanes.queued(), lanes.queued_bytes()), (4, 8));
        // Before the backoff ends the queue goes, unless order is strict.
        assert_eq!(
            lanes.next(0, now, false).map(|(w, r)| (w.meta.record, r)),
            Some((2, false))
        );
        assert!(lanes.next(0, now, true).is_none());
        assert_eq!(
            lanes.next(0, later, true).map(|(w, r)| (w.meta.record, r)),
            Some((0, true))
        );
        assert_eq!(lanes.pop(0, true).unwrap().meta.record, 0);
        assert_eq!(lanes.next_release(now, true), Some(later));
        lanes.lane(0).claimed_by = Some(7);
        assert_eq!(
            lanes.next_release(later, false),
            None,
            "claimed: nothing goes"
        );
        lanes.unclaim(7, 0, [0].into_iter());
        assert_eq!(lanes.claimed_by(0), None);
        let back = lanes.remap(two_shards(), now);
        assert_eq!(lanes.generation(), 1);
        assert_eq!(lanes.len(), 2);
        assert_eq!(lanes.queued(), 0);
        assert_eq!(back.retries.len(), 1);
        let routed: Vec<u32> = back
            .queued
            .into_iter()
            .map(|mut w| lanes.reroute(&w.entry, &mut w.meta))
            .collect();
        assert_eq!(
            routed,
            [1, 0],
            "by hash; an entry that cannot be read to the first lane"
        );
        let entry = br#"{"Data":"eA==","PartitionKey":"k1"}"#;
        let mut meta = EntryMeta::one(1, 3, 0, None);
        assert_eq!(
            lanes.reroute(entry, &mut meta),
            u32::from(hash_of("k1") > u128::MAX / 2)
        );
        assert_eq!(
            meta.hash,
            Some(hash_of("k1")),
            "worked out from the key it carries"
        );
    }

    #[test]
    fn a_shard_in_both_maps_keeps_its_allowance() {
        let now = Instant::now();
        let quarter = u128::MAX / 4;
        let mut lanes = Lanes::new(two_shards(), Pace::PerShard(Rate::shard(0.001)), now);
        assert!(lanes.lane(0).try_take(now, 10));
        assert!(lanes.lane(1).try_take(now, 10));
        assert!(!lanes.lane(1).try_take(now, 10), "`b` spent its burst");
        // `a` splits into `c` and `d`; `b` stays.
        let split = ShardMap::from_listed(&[
            Shard::open("c", 0, quarter),
            Shard::open("d", quarter + 1, u128::MAX / 2),
            Shard::open("b", u128::MAX / 2 + 1, u128::MAX),
        ])
        .unwrap();
        lanes.remap(split, now);
        assert!(
            lanes.lane(0).try_take(now, 10),
            "new shard `c`: a full burst"
        );
        assert!(
            lanes.lane(1).try_take(now, 10),
            "new shard `d`: a full burst"
        );
        assert!(
            !lanes.lane(2).try_take(now, 10),
            "`b` has not earned another burst"
        );
    }

    #[test]
    fn paced_lanes_wait_for_their_allowance() {
        let now = Instant::now();
        let mut lanes = Lanes::new(ShardMap::whole(), Pace::PerShard(Rate::shard(0.001)), now);
        let lane = lanes.lane(0);
        assert!(lane.try_take(now, 10), "a full bucket: one record");
        assert!(!lane.try_take(now, 10));
        lanes.queue_back(0, waiting(1, None));
        let at = lanes.next_release(now, false).unwrap();
        assert!(
            at > now + std::time::Duration::from_millis(900),
            "1 record a second"
        );
        let mut off = Lanes::new(ShardMap::whole(), Pace::Off, now);
        assert!((0..10_000).all(|_| off.lane(0).try_take(now, 1000)));
        assert!(!off.paced());
    }
}
