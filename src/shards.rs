//! Where records land: a stream's open shards with the hash-key ranges they
//! take, and the hash Kinesis derives from a partition key, so that the
//! producer can tell each record's shard before sending it.

use crate::kinesis::Shard;
use md5::{Digest, Md5};

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
}
