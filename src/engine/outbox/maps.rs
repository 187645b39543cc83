//! Shard maps in the outbox: which streams' maps are read again, and what a
//! new map changes (aggregates closed, waiting entries routed again).

use super::Outbox;
use crate::engine::batch::TargetId;
use crate::kinesis::shards::ShardMap;
use std::time::Instant;

impl Outbox {
    /// The streams whose shard maps should be read again now (see
    /// `MapSchedule`); none when nothing is paced or aggregated by shard.
    pub fn maps_to_read(&mut self, now: Instant) -> Vec<(TargetId, String)> {
        let by_shard = self.settings.shard_share.is_some()
            || self.settings.aggregation
            || self.settings.one_batch_per_shard;
        if !by_shard {
            return Vec::new();
        }
        self.maps
            .due(now)
            .into_iter()
            .map(|t| (TargetId(t), self.targets[t].stream.to_string()))
            .collect()
    }

    /// Takes a stream's freshly read shard map (None: it could not be read,
    /// and the old one stays). A changed map closes the stream's aggregates
    /// and routes its waiting entries again.
    pub fn set_map(&mut self, t: TargetId, map: Option<ShardMap>, now: Instant) {
        let t = t.0;
        self.maps.read(t, now);
        let target = &mut self.targets[t];
        let Some(map) = map else {
            return;
        };
        if map == *target.lanes.map() {
            return;
        }
        for lane in 0..target.lanes.len() as u32 {
            self.close_aggregate(t, lane);
        }
        let back = self.targets[t].lanes.remap(map, now);
        self.pacing.map_changes += 1;
        for mut w in back.queued {
            w.meta.lane = self.targets[t].lanes.reroute(&w.entry, &mut w.meta);
            let lane = w.meta.lane;
            self.targets[t].lanes.queue_back(lane, w);
            self.note_waiting(t, lane);
        }
        for mut w in back.retries {
            w.meta.lane = self.targets[t].lanes.reroute(&w.entry, &mut w.meta);
            let lane = w.meta.lane;
            self.targets[t].lanes.retry(lane, vec![w], None);
            self.note_waiting(t, lane);
        }
        self.account(t);
    }
}
