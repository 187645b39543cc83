//! KPL aggregated records, decode side: one Kinesis record carrying many user
//! records as `magic ++ protobuf(AggregatedRecord) ++ MD5(protobuf)`, unpacked
//! the way the Kinesis Client Library does.

use md5::{Digest, Md5};
use std::fmt;

/// The four bytes every aggregated record starts with.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
/// Length of the MD5 digest that ends an aggregated record.
const DIGEST_BYTES: usize = 16;

/// One user record unpacked from an aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Its own partition key (the Kinesis record's key only picked the shard).
    pub partition_key: String,
    /// Its explicit hash key, when the producer set one.
    pub explicit_hash_key: Option<String>,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// Why bytes that start like an aggregate cannot be unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggregateError {
    /// The bytes do not start with the magic or are too short to hold a digest.
    NotAggregated,
    /// The MD5 at the end does not match the protobuf bytes.
    DigestMismatch,
    /// The protobuf message is malformed.
    Malformed(String),
}

impl fmt::Display for AggregateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AggregateError::NotAggregated => f.write_str("not a KPL aggregated record"),
            AggregateError::DigestMismatch => {
                f.write_str("the MD5 digest does not match the aggregated record's contents")
            }
            AggregateError::Malformed(why) => write!(f, "malformed aggregated record: {why}"),
        }
    }
}

impl std::error::Error for AggregateError {}

/// Whether `bytes` has the shape of an aggregated record (magic, room for a digest).
pub fn is_aggregated(bytes: &[u8]) -> bool {
    bytes.len() >= MAGIC.len() + DIGEST_BYTES && bytes.starts_with(&MAGIC)
}

/// Unpacks every user record of an aggregated Kinesis record, in order.
pub fn deaggregate(bytes: &[u8]) -> Result<Vec<UserRecord>, AggregateError> {
    if !is_aggregated(bytes) {
        return Err(AggregateError::NotAggregated);
    }
    let (message, digest) = bytes[MAGIC.len()..].split_at(bytes.len() - MAGIC.len() - DIGEST_BYTES);
    if Md5::digest(message).as_slice() != digest {
        return Err(AggregateError::DigestMismatch);
    }
    let mut keys = Vec::new();
    let mut hash_keys = Vec::new();
    let mut records = Vec::new();
    let mut r = Reader::new(message);
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, WireType::Len) => keys.push(utf8(r.bytes()?, "partition key")?),
            (2, WireType::Len) => hash_keys.push(utf8(r.bytes()?, "explicit hash key")?),
            (3, WireType::Len) => records.push(RawRecord::parse(r.bytes()?)?),
            (1..=3, _) => return Err(malformed(format!("field {field} has the wrong wire type"))),
            (_, w) => r.skip(w)?,
        }
    }
    records
        .into_iter()
        .enumerate()
        .map(|(i, rec)| {
            let partition_key = keys.get(rec.key_index as usize).cloned().ok_or_else(|| {
                malformed(format!(
                    "record {i} uses partition key {} of a table of {}",
                    rec.key_index,
                    keys.len()
                ))
            })?;
            let explicit_hash_key = match rec.hash_key_index {
                None => None,
                Some(h) => Some(hash_keys.get(h as usize).cloned().ok_or_else(|| {
                    malformed(format!(
                        "record {i} uses explicit hash key {h} of a table of {}",
                        hash_keys.len()
                    ))
                })?),
            };
            Ok(UserRecord {
                partition_key,
                explicit_hash_key,
                data: rec.data.to_vec(),
            })
        })
        .collect()
}

/// A `Record` message before its table indexes are resolved.
struct RawRecord<'a> {
    key_index: u64,
    hash_key_index: Option<u64>,
    data: &'a [u8],
}

impl<'a> RawRecord<'a> {
    fn parse(bytes: &'a [u8]) -> Result<RawRecord<'a>, AggregateError> {
        let mut key_index = None;
        let mut hash_key_index = None;
        let mut data = None;
        let mut r = Reader::new(bytes);
        while let Some((field, wire)) = r.key()? {
            match (field, wire) {
                (1, WireType::Varint) => key_index = Some(r.varint()?),
                (2, WireType::Varint) => hash_key_index = Some(r.varint()?),
                (3, WireType::Len) => data = Some(r.bytes()?),
                (1..=3, _) => {
                    return Err(malformed(format!(
                        "record field {field} has the wrong wire type"
                    )))
                }
                // Tags (4) and anything newer are not needed to read the data.
                (_, w) => r.skip(w)?,
            }
        }
        Ok(RawRecord {
            key_index: key_index
                .ok_or_else(|| malformed("a record has no partition key index".into()))?,
            hash_key_index,
            data: data.ok_or_else(|| malformed("a record has no data".into()))?,
        })
    }
}

fn malformed(why: String) -> AggregateError {
    AggregateError::Malformed(why)
}

fn utf8(bytes: &[u8], what: &str) -> Result<String, AggregateError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed(format!("a {what} is not UTF-8")))
}

/// Protobuf wire types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

/// Reads protobuf fields from a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    /// The next field's number and wire type, or None at the end.
    fn key(&mut self) -> Result<Option<(u64, WireType)>, AggregateError> {
        if self.pos == self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let wire = match key & 7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            5 => WireType::Fixed32,
            other => return Err(malformed(format!("unsupported wire type {other}"))),
        };
        let field = key >> 3;
        if field == 0 {
            return Err(malformed("field number 0".into()));
        }
        Ok(Some((field, wire)))
    }

    fn varint(&mut self) -> Result<u64, AggregateError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(malformed("truncated varint".into()));
            };
            self.pos += 1;
            value |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("varint longer than 10 bytes".into()))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], AggregateError> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| malformed("a field runs past the end".into()))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn bytes(&mut self) -> Result<&'a [u8], AggregateError> {
        let len = self.varint()?;
        self.take(len)
    }

    fn skip(&mut self, wire: WireType) -> Result<(), AggregateError> {
        match wire {
            WireType::Varint => self.varint().map(drop),
            WireType::Fixed64 => self.take(8).map(drop),
            WireType::Fixed32 => self.take(4).map(drop),
            WireType::Len => self.bytes().map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-built protobuf encoding, independent of the decoder.
    fn varint(mut n: u64, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    fn len_field(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    fn varint_field(field: u64, n: u64, out: &mut Vec<u8>) {
        varint(field << 3, out);
        varint(n, out);
    }

    fn record(key: u64, hash: Option<u64>, data: &[u8], tags: &[(&str, &str)]) -> Vec<u8> {
        let mut r = Vec::new();
        varint_field(1, key, &mut r);
        if let Some(h) = hash {
            varint_field(2, h, &mut r);
        }
        len_field(3, data, &mut r);
        for (k, v) in tags {
            let mut tag = Vec::new();
            len_field(1, k.as_bytes(), &mut tag);
            len_field(2, v.as_bytes(), &mut tag);
            len_field(4, &tag, &mut r);
        }
        r
    }

    fn wrap(message: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(message);
        out.extend_from_slice(&Md5::digest(message));
        out
    }

    fn sample() -> Vec<u8> {
        let mut m = Vec::new();
        len_field(1, b"alpha", &mut m);
        len_field(1, "bêta".as_bytes(), &mut m);
        len_field(2, b"340282366920938463463374607431768211455", &mut m);
        len_field(3, &record(0, None, b"first", &[]), &mut m);
        len_field(3, &record(1, Some(0), b"", &[("k", "v")]), &mut m);
        let big = vec![0xFFu8; 300];
        len_field(3, &record(0, None, &big, &[]), &mut m);
        wrap(&m)
    }

    #[test]
    fn unpacks_records_in_order() {
        let bytes = sample();
        assert!(is_aggregated(&bytes));
        let records = deaggregate(&bytes).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].partition_key, "alpha");
        assert_eq!(records[0].data, b"first");
        assert_eq!(records[0].explicit_hash_key, None);
        assert_eq!(records[1].partition_key, "bêta");
        assert_eq!(records[1].data, b"");
        assert_eq!(
            records[1].explicit_hash_key.as_deref(),
            Some("340282366920938463463374607431768211455")
        );
        assert_eq!(records[2].data, vec![0xFF; 300], "multi-byte lengths");
    }

    #[test]
    fn skips_unknown_fields() {
        let mut m = Vec::new();
        len_field(1, b"k", &mut m);
        varint_field(9, 300, &mut m);
        m.push(10 << 3 | 1);
        m.extend_from_slice(&[0; 8]);
        m.push(11 << 3 | 5);
        m.extend_from_slice(&[0; 4]);
        len_field(12, b"future", &mut m);
        len_field(3, &record(0, None, b"x", &[]), &mut m);
        let records = deaggregate(&wrap(&m)).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].data, b"x");
    }

    #[test]
    fn an_empty_aggregate_has_no_records() {
        assert_eq!(deaggregate(&wrap(&[])).unwrap(), Vec::new());
    }

    #[test]
    fn plain_records_are_not_aggregates() {
        assert!(!is_aggregated(b"{\"a\":1}"));
        assert!(!is_aggregated(&MAGIC), "too short for a digest");
        assert_eq!(
            deaggregate(b"hello world, plain data"),
            Err(AggregateError::NotAggregated)
        );
    }

    #[test]
    fn refuses_a_wrong_digest() {
        let mut bytes = sample();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(deaggregate(&bytes), Err(AggregateError::DigestMismatch));
        let mut bytes = sample();
        bytes[6] ^= 1;
        assert_eq!(deaggregate(&bytes), Err(AggregateError::DigestMismatch));
    }

    #[test]
    fn refuses_malformed_messages_without_panicking() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![0x0A, 0x05, b'a'], "past the end"),
            (vec![0x80], "truncated varint"),
            (vec![0xFF; 11], "longer than 10 bytes"),
            (vec![0x0B], "wire type 3"),
            (vec![0x00, 0x00], "field number 0"),
            (vec![0x08, 0x01], "wrong wire type"),
            (vec![0x0A, 0x01, 0xFF], "not UTF-8"),
            (
                {
                    let mut m = Vec::new();
                    len_field(3, &record(2, None, b"x", &[]), &mut m);
                    m
                },
                "partition key 2 of a table of 0",
            ),
            (
                {
                    let mut m = Vec::new();
                    len_field(1, b"k", &mut m);
                    len_field(3, &record(0, Some(0), b"x", &[]), &mut m);
                    m
                },
                "explicit hash key 0 of a table of 0",
            ),
            (
                {
                    let mut m = Vec::new();
                    let mut r = Vec::new();
                    len_field(3, b"x", &mut r);
                    len_field(3, &r, &mut m);
                    m
                },
                "no partition key index",
            ),
            (
                {
                    let mut m = Vec::new();
                    let mut r = Vec::new();
                    varint_field(1, 0, &mut r);
                    len_field(3, &r, &mut m);
                    m
                },
                "no data",
            ),
            (
                {
                    let mut m = Vec::new();
                    len_field(3, &[0x1A, 0x09, 0x00], &mut m);
                    m
                },
                "past the end",
            ),
        ];
        for (message, expected) in cases {
            let err = deaggregate(&wrap(&message)).unwrap_err().to_string();
            assert!(err.contains(expected), "{message:02x?}: {err}");
        }
    }
}
