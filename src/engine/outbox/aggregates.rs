//! KPL aggregation in the outbox: each shard's lane fills an aggregate of
//! the records meant for it, which becomes one entry when it is full, due,
//! or the map changes.

use super::{key_hash, Due, Outbox, Source};
use crate::engine::batch::EntryMeta;
use crate::kinesis::aggregate::Aggregator;
use std::time::Instant;

/// The largest KPL aggregate, as the KPL's `AggregationMaxSize`: far below a
/// shard's 1 MiB a second, so that one aggregate never needs more than a
/// twentieth of its shard's byte allowance and fits beside other producers.
pub const AGGREGATE_MAX_BYTES: usize = 51_200;

impl Outbox {
    /// Adds the record to lane `lane`'s aggregate (a full aggregate becomes
    /// an entry); false when it is too big to aggregate even alone.
    pub(super) fn aggregate(
        &mut self,
        t: usize,
        lane: u32,
        data: &[u8],
        key: &str,
        record: u64,
        hash: Option<u128>,
    ) -> bool {
        let (keys_repeat, linger) = (self.settings.keys_repeat, self.settings.linger);
        loop {
            let target = &mut self.targets[t];
            let limit = target.limits.record.min(AGGREGATE_MAX_BYTES);
            let map_generation = target.lanes.generation();
            let l = target.lanes.lane(lane);
            let aggregate = l
                .aggregate
                .get_or_insert_with(|| Box::new(Aggregator::new(keys_repeat)));
            let was_empty = aggregate.is_empty();
            let before = if was_empty { 0 } else { aggregate.size() };
            if aggregate.try_add(data, key, limit) {
                target.aggregate_bytes += aggregate.size() - before;
                if was_empty {
                    l.aggregate_first = (record, hash);
                    l.aggregate_generation += 1;
                    let due = Due::Aggregate(lane, l.aggregate_generation, map_generation);
                    self.due.push_back((Instant::now() + linger, t, due));
                    self.hold(record);
                }
                return true;
            }
            if was_empty {
                return false;
            }
            self.close_aggregate(t, lane);
        }
    }

    /// Turns lane `lane`'s aggregate, if it holds records, into an entry.
    pub(super) fn close_aggregate(&mut self, t: usize, lane: u32) {
        let target = &mut self.targets[t];
        let l = target.lanes.lane(lane);
        let Some(aggregate) = l.aggregate.as_mut().filter(|a| !a.is_empty()) else {
            return;
        };
        let mut encoded = std::mem::take(&mut self.scratch);
        aggregate.encode_into(&mut encoded);
        let key = aggregate.partition_key().to_string();
        let (first, hash) = l.aggregate_first;
        let meta = EntryMeta {
            records: aggregate.len(),
            payload: (encoded.len() + key.len()) as u32,
            ..EntryMeta::one(first, 0, lane, hash)
        };
        target.aggregate_bytes -= aggregate.size();
        // Dropped rather than cleared: a stream with many shards would
        // otherwise keep an aggregate's worth of memory per shard.
        l.aggregate = None;
        self.release_hold(first);
        let source = Source::Raw {
            data: &encoded,
            key: &key,
            explicit_hash_key: None,
        };
        // Under keepKeyOrder a batch carries one aggregate of a shard: a
        // partial failure then never lets a later aggregate of a key land
        // first. Its lane stands for its keys.
        let key_hash = if self.settings.keep_key_order {
            key_hash(&[b"aggregate of lane ", &lane.to_le_bytes()[..]].concat())
        } else {
            0
        };
        self.offer(t, lane, source, meta, key_hash);
        self.scratch = encoded;
    }
}
