//! The PutRecords wire format, both ways: the request body, built entry by
//! entry so that it is ready to send the moment a batch closes, and the
//! answer, read into one result per entry.

use crate::aws::retry::is_retryable_code;
use crate::json::{json_string, Text};
use crate::kinesis::stream::request_field;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashSet;

/// Most entries in one PutRecords call.
pub const MAX_ENTRIES: usize = 500;

const MIB: usize = 1024 * 1024;

/// What one stream's PutRecords calls may carry: the largest entry (data
/// plus partition key) and the largest request (all data plus all keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest entry, bytes.
    pub record: usize,
    /// Largest request payload, bytes.
    pub request: usize,
}

impl Limits {
    /// The limits before large records (and of services that report no
    /// `MaxRecordSizeInKiB`): 1 MiB an entry, 5 MiB a request.
    pub const CLASSIC: Limits = Limits {
        record: MIB,
        request: 5 * MIB,
    };

    /// The limits of a stream that reports `MaxRecordSizeInKiB` (or none):
    /// the current PutRecords reference allows entries up to the stream's
    /// maximum and 10 MiB a request.
    pub fn for_stream(max_record_size_kib: Option<u32>) -> Limits {
        match max_record_size_kib {
            None => Limits::CLASSIC,
            Some(kib) => {
                let record = (kib as usize * 1024).clamp(MIB, 10 * MIB);
                Limits {
                    record,
                    request: 10 * MIB,
                }
            }
        }
    }
}

/// One entry's place in the body.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
}

/// A PutRecords request body, complete after every push:
/// `{"StreamName":…,"Records":[{"Data":…,"PartitionKey":…},…]}` (or `StreamARN`).
#[derive(Debug, Default)]
pub struct Body {
    bytes: Vec<u8>,
    spans: Vec<Span>,
    payload: usize,
}

/// Bytes of an entry besides its data and keys (field names, quotes), and of
/// a body besides its entries; enough either way.
const ENTRY_OVERHEAD: usize = 96;

/// What closes a PutRecords body.
const BODY_END: &[u8] = b"]}";

impl Body {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Data plus partition key bytes of all entries: what the request limit counts.
    pub fn payload(&self) -> usize {
        self.payload
    }

    /// Bytes of body held.
    #[cfg(test)]
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Bytes of memory the body keeps, used or not.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity() + self.spans.capacity() * std::mem::size_of::<Span>()
    }

    /// Empties the body, keeping at most `keep` bytes of its memory.
    pub fn clear(&mut self, keep: usize) {
        self.bytes.clear();
        self.bytes.shrink_to(keep);
        self.spans.clear();
        self.payload = 0;
    }

    /// Adds an entry for `stream` (the name opens the body on the first push).
    pub fn push(
        &mut self,
        stream: &str,
        data: &[u8],
        partition_key: &str,
        explicit_hash_key: Option<&str>,
    ) {
        let room = data.len() / 3 * 4 + partition_key.len() * 2 + ENTRY_OVERHEAD;
        let start = self.open_entry(stream, room);
        encode_entry(&mut self.bytes, data, partition_key, explicit_hash_key);
        self.close_entry(start, data.len() + partition_key.len());
    }

    /// Adds an entry encoded earlier by `encode_entry`, of `payload` bytes
    /// (data plus partition key).
    pub fn push_encoded(&mut self, stream: &str, entry: &[u8], payload: usize) {
        let start = self.open_entry(stream, entry.len());
        self.bytes.extend_from_slice(entry);
        self.close_entry(start, payload);
    }

    /// Entry `i` as `encode_entry` writes it.
    pub fn entry(&self, i: usize) -> &[u8] {
        let span = self.spans[i];
        &self.bytes[span.start..span.end]
    }

    /// Makes room for the next entry of about `room` bytes; returns where it
    /// starts. A body grows by half of itself rather than doubling, so that
    /// the memory a large batch holds stays near what it uses (the outbox's
    /// budget counts what it holds).
    fn open_entry(&mut self, stream: &str, room: usize) -> usize {
        let needed = room + stream.len() + ENTRY_OVERHEAD;
        if self.bytes.capacity() - self.bytes.len() < needed {
            self.bytes.reserve_exact(needed.max(self.bytes.len() / 2));
        }
        if self.bytes.is_empty() {
            body_start(&mut self.bytes, stream);
        } else {
            self.bytes.truncate(self.bytes.len() - BODY_END.len());
            self.bytes.push(b',');
        }
        self.bytes.len()
    }

    /// Notes the entry that starts at `start` and closes the body again.
    fn close_entry(&mut self, start: usize, payload: usize) {
        self.spans.push(Span {
            start,
            end: self.bytes.len(),
        });
        self.bytes.extend_from_slice(BODY_END);
        self.payload += payload;
    }

    /// The request for the entries at `indexes` (every entry when None): the
    /// body itself, or one built in `scratch` for a resend of some entries.
    #[must_use]
    pub fn request<'a>(
        &'a self,
        stream: &str,
        indexes: Option<&[usize]>,
        scratch: &'a mut Vec<u8>,
    ) -> &'a [u8] {
        if indexes.is_none() && !self.bytes.is_empty() {
            return &self.bytes;
        }
        scratch.clear();
        body_start(scratch, stream);
        let mut first = true;
        let mut put = |span: &Span, out: &mut Vec<u8>| {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&self.bytes[span.start..span.end]);
        };
        match indexes {
            None => self.spans.iter().for_each(|s| put(s, scratch)),
            Some(ix) => ix.iter().for_each(|&i| put(&self.spans[i], scratch)),
        }
        scratch.extend_from_slice(BODY_END);
        scratch
    }
}

/// Appends one PutRecords entry: `{"Data":…,"PartitionKey":…}`, with
/// `"ExplicitHashKey"` when given.
pub fn encode_entry(
    out: &mut Vec<u8>,
    data: &[u8],
    partition_key: &str,
    explicit_hash_key: Option<&str>,
) {
    out.extend_from_slice(b"{\"Data\":\"");
    base64_simd::STANDARD.encode_append(data, out);
    out.extend_from_slice(b"\",\"PartitionKey\":");
    json_string(out, partition_key);
    if let Some(hash) = explicit_hash_key {
        out.extend_from_slice(b",\"ExplicitHashKey\":");
        json_string(out, hash);
    }
    out.push(b'}');
}

/// Writes the opening of a PutRecords body for `stream` (a name, or an ARN
/// in `StreamARN`, as the stream travels through the outbox).
fn body_start(out: &mut Vec<u8>, stream: &str) {
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(request_field(stream).as_bytes());
    out.extend_from_slice(b"\":");
    json_string(out, stream);
    out.extend_from_slice(b",\"Records\":[");
}

/// One entry that Kinesis did not store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFailure {
    /// Its error code, e.g. `ProvisionedThroughputExceededException`.
    pub code: String,
    /// Kinesis's message.
    pub message: String,
}

impl EntryFailure {
    /// Whether sending the entry again may succeed.
    pub fn is_retryable(&self) -> bool {
        is_retryable_code(&self.code)
    }

    /// Whether the shard refused it for throughput.
    pub fn is_throttle(&self) -> bool {
        self.code == "ProvisionedThroughputExceededException"
    }
}

/// What the answer says of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryResult {
    /// Stored (its shard is among those `read_answer` collects).
    Stored,
    /// Refused, with a reason.
    Refused(EntryFailure),
    /// Neither a sequence number nor an error: not an acknowledgement, and
    /// the entry may or may not be stored.
    Unconfirmed,
}

/// Reads a PutRecords answer: one result per entry of a request of
/// `entries`; adds the shards that stored entries to `shards`. Sequence
/// numbers and shard IDs are read where they lie in the answer, so that an
/// entry costs no allocation unless it failed or names a new shard.
pub fn read_answer(
    bytes: &[u8],
    entries: usize,
    shards: &mut HashSet<String>,
) -> Result<Vec<EntryResult>, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer<'a> {
        #[serde(borrow)]
        records: Vec<Entry<'a>>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry<'a> {
        #[serde(borrow)]
        sequence_number: Option<Text<'a>>,
        #[serde(borrow)]
        shard_id: Option<Text<'a>>,
        error_code: Option<String>,
        error_message: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if answer.records.len() != entries {
        return Err(format!(
            "{} results for {entries} records",
            answer.records.len()
        ));
    }
    Ok(answer
        .records
        .into_iter()
        .map(|e| {
            let code = e.error_code.filter(|c| !c.is_empty());
            let sequence_number = e.sequence_number.filter(|s| !s.0.is_empty());
            match (code, sequence_number) {
                (Some(code), _) => EntryResult::Refused(EntryFailure {
                    code,
                    message: e.error_message.unwrap_or_default(),
                }),
                (None, Some(_)) => {
                    let shard = e.shard_id.map_or(Cow::Borrowed(""), |t| t.0);
                    if !shards.contains(shard.as_ref()) {
                        shards.insert(shard.into_owned());
                    }
                    EntryResult::Stored
                }
                (None, None) => EntryResult::Unconfirmed,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn builds_request_bodies() {
        let mut b = Body::default();
        b.push("my-stream", b"hello", "k1", None);
        b.push("my-stream", b"{\"x\":1}", "k\"2", Some("123"));
        assert_eq!(b.len(), 2);
        assert_eq!(b.payload(), 5 + 2 + 7 + 3);
        let mut scratch = Vec::new();
        let v: Value = serde_json::from_slice(b.request("my-stream", None, &mut scratch)).unwrap();
        assert!(scratch.is_empty(), "the whole body is sent as it is");
        assert_eq!(v["StreamName"], "my-stream");
        assert_eq!(v["Records"][0]["Data"], "aGVsbG8=");
        assert_eq!(v["Records"][1]["PartitionKey"], "k\"2");
        assert_eq!(v["Records"][1]["ExplicitHashKey"], "123");
        let v: Value =
            serde_json::from_slice(b.request("my-stream", Some(&[1]), &mut scratch)).unwrap();
        assert_eq!(v["Records"].as_array().unwrap().len(), 1);
        assert_eq!(v["StreamName"], "my-stream");
        assert_eq!(v["Records"][0]["PartitionKey"], "k\"2");
        // An entry taken out of one body goes into another unchanged.
        let moved = b.entry(1).to_vec();
        let mut other = Body::default();
        other.push_encoded("my-stream", &moved, 10);
        assert_eq!(other.entry(0), b.entry(1));
        assert_eq!(other.payload(), 10);
        let v: Value =
            serde_json::from_slice(other.request("my-stream", None, &mut scratch)).unwrap();
        assert_eq!(v["Records"][0]["ExplicitHashKey"], "123");
        b.clear(0);
        assert!(b.is_empty() && b.payload() == 0 && b.byte_len() == 0);
        let v: Value = serde_json::from_slice(b.request("other", None, &mut scratch)).unwrap();
        assert_eq!(v, serde_json::json!({"StreamName": "other", "Records": []}));
        let arn = "arn:aws:kinesis:eu-west-1:222222222222:stream/s";
        b.push(arn, b"x", "k", None);
        let v: Value = serde_json::from_slice(b.request(arn, None, &mut scratch)).unwrap();
        assert_eq!(v["StreamARN"], arn);
        assert!(v.get("StreamName").is_none());
        let v: Value = serde_json::from_slice(b.request(arn, Some(&[0]), &mut scratch)).unwrap();
        assert_eq!(
            v["StreamARN"], arn,
            "a resend names the stream the same way"
        );
    }

    #[test]
    fn reads_answers_entry_by_entry() {
        let answer = br#"{"FailedRecordCount":2,"Records":[
            {"SequenceNumber":"1","ShardId":"shardId-000000000001"},
            {"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"slow down"},
            {"SequenceNumber":""},
            {"ErrorCode":"","SequenceNumber":"2","ShardId":"s"},
            {}]}"#;
        let mut shards = HashSet::new();
        let r = read_answer(answer, 5, &mut shards).unwrap();
        assert_eq!(r[0], EntryResult::Stored);
        assert_eq!(
            shards,
            HashSet::from(["shardId-000000000001".to_string(), "s".to_string()])
        );
        let EntryResult::Refused(f) = &r[1] else {
            panic!("{:?}", r[1])
        };
        assert!(f.is_throttle() && f.is_retryable());
        assert_eq!(
            r[2],
            EntryResult::Unconfirmed,
            "an empty sequence number is no acknowledgement"
        );
        assert_eq!(r[3], EntryResult::Stored);
        assert_eq!(r[4], EntryResult::Unconfirmed);
        assert!(read_answer(answer, 4, &mut shards)
            .unwrap_err()
            .contains("5 results for 4"));
        assert!(read_answer(b"nope", 1, &mut shards).is_err());
    }

    #[test]
    fn limits_follow_the_stream() {
        assert_eq!(Limits::for_stream(None), Limits::CLASSIC);
        let big = Limits::for_stream(Some(4096));
        assert_eq!((big.record, big.request), (4 * MIB, 10 * MIB));
        assert_eq!(Limits::for_stream(Some(1024)).record, MIB);
    }
}
