//! KPL aggregation: many user records packed into one Kinesis record, in the
//! format the Kinesis Producer Library writes and the Kinesis Client Library,
//! Firehose and the de-aggregation libraries unpack:
//! `F3 89 9A C2 ++ protobuf(AggregatedRecord) ++ MD5(protobuf)`.
//!
//! ```text
//! message AggregatedRecord {            // proto2
//!   repeated string partition_key_table     = 1;
//!   repeated string explicit_hash_key_table = 2;
//!   repeated Record records                 = 3;
//! }
//! message Record {
//!   required uint64 partition_key_index     = 1;
//!   optional uint64 explicit_hash_key_index = 2;
//!   required bytes  data                    = 3;
//!   repeated Tag    tags                    = 4;   // read past, never written
//! }
//! ```
//! The message is small enough to encode by hand: varints and length-delimited fields.

use crate::kinesis::shards::hash_of;
use md5::{Digest, Md5};
use std::collections::HashMap;
use std::fmt;

/// The four bytes every aggregated record starts with.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
/// The MD5 trailer's length.
const DIGEST_BYTES: usize = 16;

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

/// Field keys (field number << 3 | wire type) as written.
const KEY_PARTITION_KEY_TABLE: u8 = 1 << 3 | WIRE_LEN;
const KEY_EXPLICIT_HASH_KEY_TABLE: u8 = 2 << 3 | WIRE_LEN;
const KEY_RECORDS: u8 = 3 << 3 | WIRE_LEN;
const KEY_PARTITION_KEY_INDEX: u8 = 1 << 3 | WIRE_VARINT;
const KEY_EXPLICIT_HASH_KEY_INDEX: u8 = 2 << 3 | WIRE_VARINT;
const KEY_DATA: u8 = 3 << 3 | WIRE_LEN;
/// What `explicit_hash_key_index = 0` adds to each record.
const HASH_INDEX_BYTES: usize = 2;

/// One user record taken out of an aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Its own partition key (from the aggregate's key table).
    pub partition_key: String,
    /// Its explicit hash key, if it had one.
    pub explicit_hash_key: Option<String>,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// Why bytes could not be de-aggregated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggregateError {
    /// No magic prefix, or too short: an ordinary Kinesis record.
    NotAggregated,
    /// The magic is there but the MD5 trailer does not match the protobuf;
    /// the KCL then hands the record on as it is.
    BadChecksum,
    /// The checksum matches but the protobuf is not a valid AggregatedRecord.
    Malformed(String),
}

impl fmt::Display for AggregateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AggregateError::NotAggregated => f.write_str("not a KPL aggregated record"),
            AggregateError::BadChecksum => {
                f.write_str("KPL aggregated record whose MD5 checksum does not match")
            }
            AggregateError::Malformed(why) => write!(f, "malformed KPL aggregated record: {why}"),
        }
    }
}

impl std::error::Error for AggregateError {}

/// Whether `bytes` start like a KPL aggregated record (magic and room for the checksum).
pub fn is_aggregated(bytes: &[u8]) -> bool {
    bytes.len() >= MAGIC.len() + DIGEST_BYTES && bytes.starts_with(&MAGIC)
}

/// The user records inside one aggregated Kinesis record, checksum verified.
pub fn deaggregate(bytes: &[u8]) -> Result<Vec<UserRecord>, AggregateError> {
    if !is_aggregated(bytes) {
        return Err(AggregateError::NotAggregated);
    }
    let (message, digest) = bytes[MAGIC.len()..].split_at(bytes.len() - MAGIC.len() - DIGEST_BYTES);
    if Md5::digest(message).as_slice() != digest {
        return Err(AggregateError::BadChecksum);
    }
    let mut keys: Vec<String> = Vec::new();
    let mut hash_keys: Vec<String> = Vec::new();
    let mut raw: Vec<(u64, Option<u64>, &[u8])> = Vec::new();
    let mut r = Reader(message);
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, WIRE_LEN) => keys.push(utf8(r.bytes()?, "partition key")?),
            (2, WIRE_LEN) => hash_keys.push(utf8(r.bytes()?, "explicit hash key")?),
            (3, WIRE_LEN) => raw.push(record(r.bytes()?)?),
            _ => r.skip(wire)?,
        }
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, (key_index, hash_index, data))| {
            let partition_key = keys.get(key_index as usize).cloned().ok_or_else(|| {
                malformed(format!(
                    "record {i} names partition key {key_index} of {}",
                    keys.len()
                ))
            })?;
            let explicit_hash_key = match hash_index {
                None => None,
                Some(h) => Some(hash_keys.get(h as usize).cloned().ok_or_else(|| {
                    malformed(format!(
                        "record {i} names explicit hash key {h} of {}",
                        hash_keys.len()
                    ))
                })?),
            };
            Ok(UserRecord {
                partition_key,
                explicit_hash_key,
                data: data.to_vec(),
            })
        })
        .collect()
}

/// One `Record` message: (partition key index, explicit hash key index, data).
fn record(bytes: &[u8]) -> Result<(u64, Option<u64>, &[u8]), AggregateError> {
    let (mut key_index, mut hash_index, mut data) = (None, None, None);
    let mut r = Reader(bytes);
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, WIRE_VARINT) => key_index = Some(r.varint()?),
            (2, WIRE_VARINT) => hash_index = Some(r.varint()?),
            (3, WIRE_LEN) => data = Some(r.bytes()?),
            _ => r.skip(wire)?,
        }
    }
    match (key_index, data) {
        (Some(k), Some(d)) => Ok((k, hash_index, d)),
        (None, _) => Err(malformed("a record without partition_key_index".into())),
        (_, None) => Err(malformed("a record without data".into())),
    }
}

/// The hash key Kinesis derives from a partition key: MD5 as a 128-bit
/// big-endian integer, in decimal.
pub fn hash_key_of(partition_key: &str) -> String {
    hash_of(partition_key).to_string()
}

fn malformed(why: String) -> AggregateError {
    AggregateError::Malformed(why)
}

fn utf8(bytes: &[u8], what: &str) -> Result<String, AggregateError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed(format!("a {what} is not UTF-8")))
}

/// A cursor over protobuf bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// The next field's number and wire type, or None at the end.
    fn key(&mut self) -> Result<Option<(u64, u8)>, AggregateError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        Ok(Some((key >> 3, (key & 7) as u8)))
    }

    fn varint(&mut self) -> Result<u64, AggregateError> {
        let mut value = 0u64;
        for (i, &b) in self.0.iter().enumerate().take(10) {
            value |= u64::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Ok(value);
            }
        }
        Err(malformed("a truncated or overlong varint".into()))
    }

    fn bytes(&mut self) -> Result<&'a [u8], AggregateError> {
        let len = self.varint()?;
        if len > self.0.len() as u64 {
            return Err(malformed(format!(
                "a field of {len} bytes where {} remain",
                self.0.len()
            )));
        }
        let (field, rest) = self.0.split_at(len as usize);
        self.0 = rest;
        Ok(field)
    }

    fn skip(&mut self, wire: u8) -> Result<(), AggregateError> {
        let fixed = |r: &mut Self, n: usize| {
            if r.0.len() < n {
                return Err(malformed("a truncated fixed-size field".into()));
            }
            r.0 = &r.0[n..];
            Ok(())
        };
        match wire {
            WIRE_VARINT => self.varint().map(drop),
            WIRE_FIXED64 => fixed(self, 8),
            WIRE_LEN => self.bytes().map(drop),
            WIRE_FIXED32 => fixed(self, 4),
            other => Err(malformed(format!("unsupported wire type {other}"))),
        }
    }
}

/// The most decimal digits of a 128-bit hash key.
const HASH_KEY_MAX_DIGITS: usize = 39;

/// Bytes of one `Record` message (without its own key and length).
fn record_inner_len(key_index: u64, data_len: usize) -> usize {
    1 + varint_len(key_index) + HASH_INDEX_BYTES + 1 + varint_len(data_len as u64) + data_len
}

/// Bytes a varint of `n` takes.
fn varint_len(n: u64) -> usize {
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Builds one aggregated record at a time, reusing its buffers.
///
/// Every user record keeps its own partition key and carries the aggregate's
/// hash key (that of the first record's key, which places the aggregate) as its
/// explicit hash key: the KCL drops user records whose hash key falls outside
/// the shard the aggregate landed on.
#[derive(Debug, Default)]
pub struct Aggregator {
    /// Encoded `partition_key_table` fields.
    keys: Vec<u8>,
    /// Index of each key already in the table, when keys may repeat.
    key_index: HashMap<String, u64>,
    key_count: u64,
    /// Encoded `records` fields.
    records: Vec<u8>,
    count: u32,
    /// The first record's key: the aggregate's own partition key.
    first_key: String,
    /// The encoded `explicit_hash_key_table`: one entry, the hash of `first_key`.
    hash_table: Vec<u8>,
    /// Whether equal keys share one table entry (worth it only when keys can repeat).
    share_keys: bool,
}

impl Aggregator {
    /// An empty aggregator; `share_keys` when the same key may come again.
    pub fn new(share_keys: bool) -> Aggregator {
        Aggregator {
            share_keys,
            ..Aggregator::default()
        }
    }

    /// User records in the aggregate being built.
    pub fn len(&self) -> u32 {
        self.count
    }

    /// Whether no record was added since the last `clear`.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// What the aggregate counts against the Kinesis record limit: its bytes
    /// plus its partition key.
    pub fn size(&self) -> usize {
        MAGIC.len()
            + self.keys.len()
            + self.hash_table.len()
            + self.records.len()
            + DIGEST_BYTES
            + self.first_key.len()
    }

    /// What adding a record adds to `size`, and the key's table index if the
    /// key is already in the table.
    fn growth(&self, data_len: usize, key: &str) -> (usize, Option<u64>) {
        let known = if self.share_keys {
            self.key_index.get(key).copied()
        } else {
            None
        };
        let index = known.unwrap_or(self.key_count);
        let key_entry = match known {
            Some(_) => 0,
            None => 1 + varint_len(key.len() as u64) + key.len(),
        };
        let inner = record_inner_len(index, data_len);
        let entry = 1 + varint_len(inner as u64) + inner;
        // The first record's key becomes the aggregate's own, with its hash in the table.
        let own_key = if self.count == 0 {
            key.len() + 2 + HASH_KEY_MAX_DIGITS
        } else {
            0
        };
        (key_entry + entry + own_key, known)
    }

    /// Adds a user record if the aggregate then stays within `limit` bytes
    /// (as `size` counts it); false, and nothing added, if it would not.
    pub fn try_add(&mut self, data: &[u8], key: &str, limit: usize) -> bool {
        let (growth, known) = self.growth(data.len(), key);
        if self.size() + growth > limit {
            return false;
        }
        let index = known.unwrap_or(self.key_count);
        let inner = record_inner_len(index, data.len());
        let hash_key = (self.count == 0).then(|| hash_key_of(key));
        if known.is_none() {
            self.keys.push(KEY_PARTITION_KEY_TABLE);
            put_varint(&mut self.keys, key.len() as u64);
            self.keys.extend_from_slice(key.as_bytes());
            if self.share_keys {
                self.key_index.insert(key.to_string(), index);
            }
            self.key_count += 1;
        }
        if let Some(hash_key) = hash_key {
            self.first_key.push_str(key);
            self.hash_table.push(KEY_EXPLICIT_HASH_KEY_TABLE);
            put_varint(&mut self.hash_table, hash_key.len() as u64);
            self.hash_table.extend_from_slice(hash_key.as_bytes());
        }
        self.records.push(KEY_RECORDS);
        put_varint(&mut self.records, inner as u64);
        self.records.push(KEY_PARTITION_KEY_INDEX);
        put_varint(&mut self.records, index);
        self.records.push(KEY_EXPLICIT_HASH_KEY_INDEX);
        self.records.push(0);
        self.records.push(KEY_DATA);
        put_varint(&mut self.records, data.len() as u64);
        self.records.extend_from_slice(data);
        self.count += 1;
        true
    }

    /// Writes the aggregated record into `out`, replacing its contents.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.keys);
        out.extend_from_slice(&self.hash_table);
        out.extend_from_slice(&self.records);
        let digest = Md5::digest(&out[MAGIC.len()..]);
        out.extend_from_slice(digest.as_slice());
    }

    /// The aggregate's Kinesis partition key: its first record's.
    pub fn partition_key(&self) -> &str {
        &self.first_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(records: &[(&str, &[u8])], share_keys: bool) -> (Vec<u8>, String) {
        let mut a = Aggregator::new(share_keys);
        for (key, data) in records {
            assert!(a.try_add(data, key, usize::MAX));
        }
        let mut bytes = Vec::new();
        a.encode_into(&mut bytes);
        assert_eq!(a.size(), bytes.len() + a.partition_key().len());
        (bytes, a.partition_key().to_string())
    }

    #[test]
    fn round_trips_records_and_keys() {
        let big = vec![7u8; 300];
        let input: Vec<(&str, &[u8])> = vec![
            ("k1", b"hello"),
            ("k2", b""),
            ("k1", &big),
            ("\u{e9}t\u{e9}", b"{\"x\":1}"),
        ];
        for share in [false, true] {
            let (bytes, key) = build(&input, share);
            assert_eq!(key, "k1");
            assert_eq!(&bytes[..4], &MAGIC);
            let out = deaggregate(&bytes).unwrap();
            let got: Vec<(&str, &[u8])> = out
                .iter()
                .map(|u| (u.partition_key.as_str(), u.data.as_slice()))
                .collect();
            assert_eq!(got, input);
            // Each record carries the hash of the aggregate's own key.
            let hash = hash_key_of("k1");
            assert_eq!(hash, "242208671286853988395785178707875403226");
            assert!(out
                .iter()
                .all(|u| u.explicit_hash_key.as_deref() == Some(hash.as_str())));
        }
        let (shared, _) = build(&input, true);
        let (separate, _) = build(&input, false);
        assert_eq!(separate.len() - shared.len(), 4, "one `k1` entry saved");
    }

    #[test]
    fn matches_a_hand_encoded_aggregate() {
        // AggregatedRecord{partition_key_table:["a"], explicit_hash_key_table:[MD5("a")
        // in decimal], records:[{0, 0, "xy"}]}, as protoc encodes it.
        let hash = b"16955237001963240173058271559858726497";
        let mut proto = vec![0x0A, 0x01, b'a', 0x12, hash.len() as u8];
        proto.extend_from_slice(hash);
        proto.extend_from_slice(&[0x1A, 0x08, 0x08, 0x00, 0x10, 0x00, 0x1A, 0x02, b'x', b'y']);
        let (bytes, _) = build(&[("a", b"xy")], false);
        assert_eq!(&bytes[4..bytes.len() - 16], &proto);
        assert_eq!(&bytes[bytes.len() - 16..], Md5::digest(&proto).as_slice());
    }

    #[test]
    fn limit_counts_every_byte() {
        let mut a = Aggregator::new(false);
        let data = [1u8; 100];
        // magic 4 + key entry 3 + hash key entry (2 + 39 digits) + record entry
        // (2 + 2 + 2 + 2 + 100) + md5 16 + key 1; then a key entry and a record entry.
        assert!(!a.try_add(&data, "k", 172));
        assert!(a.is_empty());
        assert!(a.try_add(&data, "k", 173));
        assert_eq!(a.size(), 173);
        assert!(!a.try_add(&data, "k", 173 + 110));
        assert!(a.try_add(&data, "k", 173 + 111));
        let mut bytes = Vec::new();
        a.encode_into(&mut bytes);
        assert_eq!(bytes.len() + 1, 284);
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn varints() {
        for (n, len) in [
            (0u64, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (u64::MAX, 10),
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, n);
            assert_eq!(out.len(), len, "{n}");
            assert_eq!(varint_len(n), len, "{n}");
            assert_eq!(Reader(&out).varint().unwrap(), n);
        }
    }

    #[test]
    fn refuses_what_is_not_a_good_aggregate() {
        assert_eq!(
            deaggregate(b"{\"plain\":1}"),
            Err(AggregateError::NotAggregated)
        );
        assert_eq!(deaggregate(&MAGIC), Err(AggregateError::NotAggregated));
        let (mut bytes, _) = build(&[("k", b"data")], false);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(deaggregate(&bytes), Err(AggregateError::BadChecksum));
        bytes[last] ^= 1;
        bytes[10] ^= 0x20;
        assert_eq!(deaggregate(&bytes), Err(AggregateError::BadChecksum));

        let wrap = |proto: &[u8]| {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(proto);
            b.extend_from_slice(Md5::digest(proto).as_slice());
            b
        };
        let bad = |proto: &[u8], expected: &str| match deaggregate(&wrap(proto)) {
            Err(AggregateError::Malformed(why)) => assert!(why.contains(expected), "{why}"),
            other => panic!("{proto:?}: {other:?}"),
        };
        bad(
            &[0x1A, 0x04, 0x08, 0x00, 0x1A, 0x00],
            "names partition key 0 of 0",
        );
        bad(
            &[0x0A, 0x01, b'a', 0x1A, 0x02, 0x1A, 0x00],
            "without partition_key_index",
        );
        bad(&[0x0A, 0x01, b'a', 0x1A, 0x02, 0x08, 0x00], "without data");
        bad(&[0x0A, 0x05, b'a'], "a field of 5 bytes where 1 remain");
        bad(&[0x0A, 0x01, 0xFF], "not UTF-8");
        bad(&[0x0A], "truncated");
        bad(&[0x0B], "unsupported wire type 3");
        bad(
            &[
                0x0A, 0x01, b'a', 0x1A, 0x06, 0x08, 0x00, 0x10, 0x03, 0x1A, 0x00,
            ],
            "names explicit hash key 3 of 0",
        );
        // Unknown fields and tags are read past.
        let tagged = [
            0x0A, 0x01, b'a', 0x12, 0x01, b'9', 0x1A, 0x0A, 0x08, 0x00, 0x10, 0x00, 0x1A, 0x01,
            b'z', 0x22, 0x01, 0x0A, 0x28, 0x05,
        ];
        let out = deaggregate(&wrap(&tagged)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out[0].data, b"z");
        assert_eq!(out[0].explicit_hash_key.as_deref(), Some("9"));
    }
}
