//! Where records land: a stream's open shards with the hash-key ranges they
//! take, and the hash Kinesis derives from a partition key, so that the
//! producer can tell each record's shard before sending it; and when each
//! stream's map is read again.

use crate::kinesis::Shard;
use md5::{Digest, Md5};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// A stream's shard map is read again about this long after the last look
/// while the stream is written to, so that a reshard no answer told of is
/// found...
pub const MAP_MAX_AGE: Duration = Duration::from_secs(60);
/// ...and not sooner than this after the last look, however many answers
/// name a shard the map does not know.
pub const MAP_MIN_AGE: Duration = Duration::from_secs(5);
/// Those periodic looks go one stream at a time, at most this often: each is
/// a call the writer waits for, and ten thousand streams' looks at once
/// would stall it for minutes.
pub const MAP_CHECK_SPACING: Duration = Duration::from_secs(1);

/// The hash key Kinesis derives from a partition key: MD5 as a 128-bit
/// big-endian integer. The shard whose hash key range holds it takes the
/// key's records.
pub fn hash_of(partition_key: &str) -> u128 {
    let digest: [u8; 16] = Md5::digest(partition_key.as_bytes()).into();
    u128::from_be_bytes(digest)
}

/// An explicit hash key as Kinesis takes it: a decimal 128-bit integer.
pub fn parse_hash_key(text: &str) -> Option<u128> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// One open shard of a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedShard {
    /// Its ID.
    pub id: String,
    /// The lowest hash key it takes.
    pub start: u128,
    /// The highest hash key it takes.
    pub end: u128,
}

/// A stream's open shards, ordered by the hash keys they take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMap {
    shards: Vec<MappedShard>,
}

impl ShardMap {
    /// The map of the open shards among `listed` (ListShards' answer); None
    /// when their ranges are missing or do not cover every hash key once, so
    /// that no prediction is made from a map that cannot be right.
    pub fn from_listed(listed: &[Shard]) -> Option<ShardMap> {
        let mut shards = Vec::new();
        for s in listed.iter().filter(|s| !s.is_closed()) {
            let range = s.hash_key_range.as_ref()?;
            shards.push(MappedShard {
                id: s.shard_id.clone(),
                start: range.starting_hash_key.parse().ok()?,
                end: range.ending_hash_key.parse().ok()?,
            });
        }
        shards.sort_by_key(|s| s.start);
        let covers_all = shards.first().is_some_and(|s| s.start == 0)
            && shards.last().is_some_and(|s| s.end == u128::MAX)
            && shards
                .windows(2)
                .all(|w| w[0].end.checked_add(1) == Some(w[1].start));
        covers_all.then_some(ShardMap { shards })
    }

    /// One shard taking every hash key: a stream whose shards are not known.
    pub fn whole() -> ShardMap {
        ShardMap {
            shards: vec![MappedShard {
                id: String::new(),
                start: 0,
                end: u128::MAX,
            }],
        }
    }

    /// Number of shards.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Whether the map has no shard (never: a map covers every hash key).
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// The shards, by hash key.
    pub fn shards(&self) -> &[MappedShard] {
        &self.shards
    }

    /// The index of the shard that takes `hash`.
    pub fn index_of(&self, hash: u128) -> usize {
        // The first shard whose end is at or past the hash holds it: ranges are contiguous.
        self.shards
            .partition_point(|s| s.end < hash)
            .min(self.shards.len().saturating_sub(1))
    }

    /// Whether the map knows a shard by this ID.
    pub fn knows(&self, shard_id: &str) -> bool {
        self.shards.iter().any(|s| s.id == shard_id)
    }
}

/// When each stream's shard map should be read again: soon after an answer
/// names a shard the map does not know (a split or merge), and now and then
/// while the stream is written to, spaced so that many streams never stall
/// the writer. Each stream has at most one periodic entry, and only while
/// it is written to, so that idle streams cost nothing.
#[derive(Debug)]
pub struct MapSchedule {
    streams: Vec<MapLook>,
    /// Streams an answer contradicted, waiting for `MAP_MIN_AGE` to pass.
    contradicted: Vec<usize>,
    /// When each stream written to is next looked at periodically, soonest
    /// first; one entry per stream (see `MapLook::queued`).
    periodic: BinaryHeap<Reverse<(Instant, usize)>>,
    last_periodic: Option<Instant>,
}

/// What the schedule knows of one stream's map.
#[derive(Debug, Clone, Copy)]
struct MapLook {
    read_at: Instant,
    contradicted: bool,
    /// Written to since the map was read.
    written: bool,
    /// Whether `periodic` holds an entry for it.
    queued: bool,
}

impl MapSchedule {
    /// A schedule for `streams` streams whose maps were read at `now`.
    pub fn new(streams: usize, now: Instant) -> MapSchedule {
        let look = MapLook {
            read_at: now,
            contradicted: false,
            written: false,
            queued: false,
        };
        MapSchedule {
            streams: vec![look; streams],
            contradicted: Vec::new(),
            periodic: BinaryHeap::new(),
            last_periodic: None,
        }
    }

    /// Stream `t` was written to.
    pub fn written(&mut self, t: usize) {
        let look = &mut self.streams[t];
        if !look.written {
            look.written = true;
            if !look.queued {
                look.queued = true;
                self.periodic.push(Reverse((look.read_at + MAP_MAX_AGE, t)));
            }
        }
    }

    /// An answer for stream `t` named a shard its map does not know.
    pub fn contradicted(&mut self, t: usize) {
        let look = &mut self.streams[t];
        if !look.contradicted {
            look.contradicted = true;
            self.contradicted.push(t);
        }
    }

    /// Stream `t`'s map was read (or the attempt failed) at `now`.
    pub fn read(&mut self, t: usize, now: Instant) {
        let look = &mut self.streams[t];
        look.read_at = now;
        look.contradicted = false;
        look.written = false;
    }

    /// The streams whose maps should be read now: every contradicted one
    /// whose last look is `MAP_MIN_AGE` old, and at most one whose look is
    /// `MAP_MAX_AGE` old and that was written to since.
    pub fn due(&mut self, now: Instant) -> Vec<usize> {
        let streams = &self.streams;
        let mut due = Vec::new();
        self.contradicted.retain(|&t| {
            let ready = now.saturating_duration_since(streams[t].read_at) >= MAP_MIN_AGE;
            if ready {
                due.push(t);
            }
            !ready
        });
        if self
            .last_periodic
            .is_some_and(|last| now.saturating_duration_since(last) < MAP_CHECK_SPACING)
        {
            return due;
        }
        while let Some(&Reverse((at, t))) = self.periodic.peek() {
            if at > now {
                break;
            }
            self.periodic.pop();
            let look = &mut self.streams[t];
            if !look.written {
                // Not written to since its last read: `written` queues it again.
                look.queued = false;
                continue;
            }
            let next = look.read_at + MAP_MAX_AGE;
            if next > now || due.contains(&t) {
                // Read since this entry was made: look again a while after that read.
                self.periodic
                    .push(Reverse((next.max(now + MAP_MIN_AGE), t)));
                continue;
            }
            // Stays queued: it is looked at again a while after this read.
            self.periodic.push(Reverse((now + MAP_MAX_AGE, t)));
            due.push(t);
            self.last_periodic = Some(now);
            break;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinesis::SequenceNumberRange;

    fn shard(id: &str, start: u128, end: u128, closed: bool) -> Shard {
        Shard {
            sequence_number_range: Some(SequenceNumberRange {
                starting_sequence_number: Some("1".into()),
                ending_sequence_number: closed.then(|| "9".into()),
            }),
            ..Shard::open(id, start, end)
        }
    }

    #[test]
    fn predicts_shards_from_open_ranges() {
        let half = u128::MAX / 2;
        let listed = [
            shard("shardId-0", 0, u128::MAX, true),
            shard("shardId-2", half + 1, u128::MAX, false),
            shard("shardId-1", 0, half, false),
        ];
        let map = ShardMap::from_listed(&listed).unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map.index_of(0), 0);
        assert_eq!(map.index_of(half), 0);
        assert_eq!(map.index_of(half + 1), 1);
        assert_eq!(map.index_of(u128::MAX), 1);
        assert_eq!(map.shards()[1].id, "shardId-2");
        assert!(map.knows("shardId-1") && !map.knows("shardId-0"));
    }

    #[test]
    fn refuses_maps_with_gaps() {
        let listed = [shard("a", 0, 10, false), shard("b", 12, u128::MAX, false)];
        assert!(ShardMap::from_listed(&listed).is_none());
        assert!(ShardMap::from_listed(&[]).is_none());
        let mut no_range = shard("c", 0, u128::MAX, false);
        no_range.hash_key_range = None;
        assert!(ShardMap::from_listed(&[no_range]).is_none());
        assert_eq!(ShardMap::whole().index_of(12345), 0);
    }

    #[test]
    fn hashes_as_kinesis_does() {
        // MD5("k1") as a decimal integer, as the aggregation tests pin it.
        assert_eq!(
            hash_of("k1").to_string(),
            "242208671286853988395785178707875403226"
        );
        assert_eq!(
            parse_hash_key("340282366920938463463374607431768211455"),
            Some(u128::MAX)
        );
        assert_eq!(
            parse_hash_key("340282366920938463463374607431768211456"),
            None
        );
        assert_eq!(parse_hash_key("-1"), None);
        assert_eq!(parse_hash_key(""), None);
    }

    #[test]
    fn a_contradicted_map_is_read_again_after_five_seconds_once() {
        let start = Instant::now();
        let mut maps = MapSchedule::new(3, start);
        maps.contradicted(1);
        maps.contradicted(1);
        assert!(maps.due(start + Duration::from_secs(4)).is_empty());
        let later = start + MAP_MIN_AGE;
        assert_eq!(maps.due(later), vec![1]);
        maps.read(1, later);
        assert!(maps.due(later + Duration::from_secs(10)).is_empty());
    }

    #[test]
    fn only_streams_written_to_are_looked_at_each_minute() {
        let start = Instant::now();
        let mut maps = MapSchedule::new(2, start);
        maps.written(0);
        assert!(maps.due(start + Duration::from_secs(59)).is_empty());
        let minute = start + MAP_MAX_AGE;
        assert_eq!(maps.due(minute), vec![0]);
        maps.read(0, minute);
        // Stream 1 starts being written to: found within seconds.
        maps.written(1);
        let soon = minute + MAP_MIN_AGE;
        assert_eq!(maps.due(soon), vec![1]);
        maps.read(1, soon);
        // Stream 0 was not written to since its read: not looked at again.
        assert!(maps.due(minute + MAP_MAX_AGE + MAP_MIN_AGE).is_empty());
    }

    #[test]
    fn many_streams_are_looked_at_one_a_second() {
        let start = Instant::now();
        let mut maps = MapSchedule::new(10_000, start);
        for t in 0..10_000 {
            maps.written(t);
        }
        let mut now = start + MAP_MAX_AGE;
        let mut read = Vec::new();
        for _ in 0..5 {
            let due = maps.due(now);
            assert_eq!(due.len(), 1, "one periodic look at a time");
            assert!(maps.due(now + Duration::from_millis(500)).is_empty());
            maps.read(due[0], now);
            read.extend(due);
            now += MAP_CHECK_SPACING;
        }
        read.dedup();
        assert_eq!(read.len(), 5, "each look is of another stream");
        // A contradiction is not held back by the spacing.
        maps.contradicted(9_999);
        assert_eq!(maps.due(now - Duration::from_millis(500)), vec![9_999]);
        // Contradictions over many rounds add no entries: one per stream at most.
        for round in 1..=20 {
            let at = now + MAP_MIN_AGE * round;
            for t in 0..100 {
                maps.contradicted(t);
                maps.written(t);
            }
            for t in maps.due(at) {
                maps.read(t, at);
            }
        }
        assert!(maps.periodic.len() <= 10_000);
    }
}
