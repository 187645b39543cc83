//! Which shards `read` reads: all of them, the ones named with `--shard`, and
//! the ones a partition key given with `--key` maps to (through resharding:
//! every shard whose hash key range holds the key's hash, parents and children).

use crate::engine::partition::MAX_KEY_CHARS;
use crate::kinesis::shards::hash_of;
use crate::kinesis::stream::StreamRef;
use crate::kinesis::Shard;

/// Longest shard ID Kinesis accepts.
const MAX_SHARD_ID: usize = 128;

/// The shards to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardFilter {
    /// Shards named with `--shard`: read, and no others of their line.
    ids: Vec<String>,
    /// Partition keys given with `--key`, with their hashes.
    keys: Vec<(String, u128)>,
}

impl ShardFilter {
    /// A filter for the shards named and the shards the keys map to; every
    /// shard when both are empty.
    pub fn new(ids: Vec<String>, keys: Vec<String>) -> ShardFilter {
        let keys = keys
            .into_iter()
            .map(|k| {
                let hash = hash_of(&k);
                (k, hash)
            })
            .collect();
        ShardFilter { ids, keys }
    }

    /// Whether every shard is read.
    pub fn is_all(&self) -> bool {
        self.ids.is_empty() && self.keys.is_empty()
    }

    /// The one shard named, when exactly one is and no key is given.
    pub fn single_shard(&self) -> Option<&str> {
        match (self.ids.as_slice(), self.keys.is_empty()) {
            ([id], true) => Some(id),
            _ => None,
        }
    }

    /// Whether shards that appear later (children after a reshard) may be read:
    /// without `--shard` alone, a named shard's children are not.
    pub fn takes_new_shards(&self) -> bool {
        self.is_all() || !self.keys.is_empty()
    }

    /// Whether `shard` is read.
    pub fn selects(&self, shard: &Shard) -> bool {
        if self.is_all() || self.ids.contains(&shard.shard_id) {
            return true;
        }
        shard
            .hash_key_range
            .as_ref()
            .is_some_and(|range| self.keys.iter().any(|(_, hash)| range.contains(*hash)))
    }

    /// Checks that every shard named exists in `listed`.
    pub fn check_listed(&self, listed: &[Shard], stream: &StreamRef) -> Result<(), String> {
        for id in &self.ids {
            if !listed.iter().any(|s| &s.shard_id == id) {
                let known: Vec<&str> = listed.iter().map(|s| s.shard_id.as_str()).collect();
                return Err(format!(
                    "--shard: Kinesis stream {stream} has no shard `{id}`; its shards are {}",
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// Parses `--shard`: a shard ID as Kinesis prints it (`shardId-000000000003`),
/// or its number alone (`3`).
pub fn parse_shard_id(value: &str) -> Result<String, String> {
    if !value.is_empty() && value.len() <= 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = value
            .parse()
            .map_err(|_| format!("`{value}` is not a shard number"))?;
        return Ok(format!("shardId-{n:012}"));
    }
    let valid = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    if value.is_empty() || value.len() > MAX_SHARD_ID || !value.bytes().all(valid) {
        return Err(format!(
            "`{value}` is not a shard ID such as shardId-000000000003 (or its number, 3)"
        ));
    }
    Ok(value.to_string())
}

/// Parses `--key`: a partition key, 1 to 256 characters.
pub fn parse_key(value: &str) -> Result<String, String> {
    let chars = value.chars().count();
    if chars == 0 || chars > MAX_KEY_CHARS {
        return Err(format!(
            "a partition key has 1 to {MAX_KEY_CHARS} characters, got {chars}"
        ));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, start: u128, end: u128) -> Shard {
        Shard::open(id, start, end)
    }

    #[test]
    fn selects_by_id_and_by_key_hash() {
        let half = u128::MAX / 2;
        let (low, high) = (
            shard("shardId-0", 0, half),
            shard("shardId-1", half + 1, u128::MAX),
        );
        assert!(ShardFilter::default().selects(&low));
        let by_id = ShardFilter::new(vec!["shardId-1".into()], vec![]);
        assert!(!by_id.selects(&low) && by_id.selects(&high));
        assert!(!by_id.takes_new_shards());
        assert_eq!(by_id.single_shard(), Some("shardId-1"));
        // MD5("a") = 0cc175b9...: in the lower half.
        let by_key = ShardFilter::new(vec![], vec!["a".into()]);
        assert!(by_key.selects(&low) && !by_key.selects(&high));
        assert!(by_key.takes_new_shards());
        assert_eq!(by_key.single_shard(), None);
        assert!(by_id
            .check_listed(&[low.clone(), high.clone()], &"s".into())
            .is_ok());
        let e = ShardFilter::new(vec!["shardId-7".into()], vec![])
            .check_listed(&[low, high], &"s".into())
            .unwrap_err();
        assert!(
            e.contains("--shard") && e.contains("shardId-7") && e.contains("shardId-1"),
            "{e}"
        );
    }

    #[test]
    fn parses_shard_ids_and_keys() {
        assert_eq!(parse_shard_id("3").as_deref(), Ok("shardId-000000000003"));
        assert_eq!(
            parse_shard_id("shardId-000000000012").as_deref(),
            Ok("shardId-000000000012")
        );
        for bad in ["", "shard 1", "shardId-1/2", &"x".repeat(129)] {
            assert!(parse_shard_id(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_key("user-1").as_deref(), Ok("user-1"));
        assert!(parse_key("").is_err());
        assert!(parse_key(&"é".repeat(257)).is_err());
    }
}
