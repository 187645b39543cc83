//! Batching: the entries of one PutRecords request for one stream, within
//! Kinesis's limits, and the request body built from them.

/// Most entries in one PutRecords call.
pub const MAX_ENTRIES: usize = 500;
/// Largest record: data plus partition key.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Largest PutRecords payload: all data plus all partition keys.
pub const MAX_REQUEST_BYTES: usize = 5 * 1024 * 1024;

/// Body capacity a batch keeps when reused; a batch that once held a 5 MiB
/// request gives the rest back rather than holding it for the whole run.
const RETAINED_BODY_BYTES: usize = 2 * 1024 * 1024;

/// One entry's place in the batch's body.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
}

/// The records waiting to go to one Kinesis stream in one PutRecords call.
#[derive(Debug)]
pub struct Batch {
    /// The Kinesis stream.
    pub stream: String,
    /// This batch's number, increasing in creation order; checkpoints wait on it.
    pub id: u64,
    /// The PutRecords body for all entries, complete after every push so that
    /// it is sent as it is: `{"StreamName":…,"Records":[{"Data":…,"PartitionKey":…},…]}`.
    /// Empty until the first push.
    body: Vec<u8>,
    spans: Vec<Span>,
    /// How many input records each entry carries (more than one when aggregated).
    records: Vec<u32>,
    payload: usize,
}

impl Batch {
    /// An empty batch for `stream`.
    pub fn new(stream: &str, id: u64) -> Batch {
        Batch {
            stream: stream.to_string(),
            id,
            body: Vec::new(),
            spans: Vec::new(),
            records: Vec::new(),
            payload: 0,
        }
    }

    /// Empties the batch for reuse under a new id, keeping (some of) its memory.
    pub fn reset(&mut self, id: u64) {
        self.id = id;
        self.body.clear();
        self.body.shrink_to(RETAINED_BODY_BYTES);
        self.spans.clear();
        self.records.clear();
        self.payload = 0;
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Input records carried by all entries.
    pub fn record_count(&self) -> u64 {
        self.records.iter().map(|&n| n as u64).sum()
    }

    /// Data plus partition key bytes of all entries.
    pub fn payload_bytes(&self) -> usize {
        self.payload
    }

    /// Whether an entry of `size` bytes (data plus key) still fits under
    /// `max_entries` and the 5 MiB request limit.
    pub fn fits(&self, size: usize, max_entries: usize) -> bool {
        self.spans.len() < max_entries.min(MAX_ENTRIES) && self.payload + size <= MAX_REQUEST_BYTES
    }

    /// Bytes (data plus key) the next entry may take: within the record and
    /// request limits, and 0 once `max_entries` are in.
    pub fn room(&self, max_entries: usize) -> usize {
        if self.spans.len() >= max_entries.min(MAX_ENTRIES) {
            return 0;
        }
        MAX_REQUEST_BYTES
            .saturating_sub(self.payload)
            .min(MAX_RECORD_BYTES)
    }

    /// Bytes of request body held.
    pub fn body_bytes(&self) -> usize {
        self.body.len()
    }

    /// Adds an entry carrying `records` input records.
    pub fn push(
        &mut self,
        data: &[u8],
        partition_key: &str,
        explicit_hash_key: Option<&str>,
        records: u32,
    ) {
        if self.body.is_empty() {
            body_start(&mut self.body, &self.stream);
        } else {
            self.body.truncate(self.body.len() - BODY_END.len());
            self.body.push(b',');
        }
        let start = self.body.len();
        self.body.extend_from_slice(b"{\"Data\":\"");
        base64_simd::STANDARD.encode_append(data, &mut self.body);
        self.body.extend_from_slice(b"\",\"PartitionKey\":");
        crate::json::json_string(&mut self.body, partition_key);
        if let Some(hash) = explicit_hash_key {
            self.body.extend_from_slice(b",\"ExplicitHashKey\":");
            crate::json::json_string(&mut self.body, hash);
        }
        self.body.push(b'}');
        self.spans.push(Span {
            start,
            end: self.body.len(),
        });
        self.body.extend_from_slice(BODY_END);
        self.records.push(records);
        self.payload += data.len() + partition_key.len();
    }

    /// The PutRecords request body for the entries at `indexes` (every entry
    /// when None): the batch's own body, or one built in `scratch` for a
    /// resend of some entries.
    #[must_use]
    pub fn request_body<'a>(
        &'a self,
        indexes: Option<&[usize]>,
        scratch: &'a mut Vec<u8>,
    ) -> &'a [u8] {
        if indexes.is_none() && !self.body.is_empty() {
            return &self.body;
        }
        scratch.clear();
        body_start(scratch, &self.stream);
        let mut first = true;
        let mut put = |span: &Span, out: &mut Vec<u8>| {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&self.body[span.start..span.end]);
        };
        match indexes {
            None => self.spans.iter().for_each(|s| put(s, scratch)),
            Some(ix) => ix.iter().for_each(|&i| put(&self.spans[i], scratch)),
        }
        scratch.extend_from_slice(BODY_END);
        scratch
    }
}

/// What closes a PutRecords body.
const BODY_END: &[u8] = b"]}";

/// Writes the opening of a PutRecords body for `stream`.
fn body_start(out: &mut Vec<u8>, stream: &str) {
    out.extend_from_slice(b"{\"StreamName\":");
    crate::json::json_string(out, stream);
    out.extend_from_slice(b",\"Records\":[");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn builds_put_records_body() {
        let mut b = Batch::new("my-stream", 7);
        b.push(b"hello", "k1", None, 1);
        b.push(b"{\"x\":1}", "k\"2", Some("123"), 3);
        assert_eq!(b.len(), 2);
        assert_eq!(b.record_count(), 4);
        assert_eq!(b.payload_bytes(), 5 + 2 + 7 + 3);
        let mut scratch = Vec::new();
        let v: Value = serde_json::from_slice(b.request_body(None, &mut scratch)).unwrap();
        assert!(
            scratch.is_empty(),
            "the whole batch is sent from its own body"
        );
        assert_eq!(v["StreamName"], "my-stream");
        assert_eq!(v["Records"][0]["Data"], "aGVsbG8=");
        assert_eq!(v["Records"][1]["PartitionKey"], "k\"2");
        assert_eq!(v["Records"][1]["ExplicitHashKey"], "123");
        let v: Value = serde_json::from_slice(b.request_body(Some(&[1]), &mut scratch)).unwrap();
        assert_eq!(v["Records"].as_array().unwrap().len(), 1);
        assert_eq!(v["Records"][0]["PartitionKey"], "k\"2");

        // Reused for another stream, the body starts afresh.
        b.reset(8);
        b.stream = "other".into();
        let v: Value = serde_json::from_slice(b.request_body(None, &mut scratch)).unwrap();
        assert_eq!(v, serde_json::json!({"StreamName": "other", "Records": []}));
        b.push(b"x", "k", None, 1);
        let v: Value = serde_json::from_slice(b.request_body(None, &mut scratch)).unwrap();
        assert_eq!(v["StreamName"], "other");
        assert_eq!(v["Records"].as_array().unwrap().len(), 1);
        assert_eq!(b.body_bytes(), b.request_body(None, &mut scratch).len());
    }

    #[test]
    fn respects_limits() {
        let mut b = Batch::new("s", 0);
        assert!(b.fits(MAX_REQUEST_BYTES, 500));
        assert!(!b.fits(MAX_REQUEST_BYTES + 1, 500));
        b.push(&[0u8; 10], "k", None, 1);
        assert!(!b.fits(1, 1), "bufferSize 1 reached");
        assert!(b.fits(1, 600), "500 is the hard limit, not reached yet");
        let big = vec![b'a'; MAX_RECORD_BYTES - 1];
        let mut b = Batch::new("s", 0);
        for _ in 0..5 {
            assert!(b.fits(big.len() + 1, 500));
            b.push(&big, "k", None, 1);
        }
        assert!(
            !b.fits(MAX_RECORD_BYTES, 500),
            "a sixth 1 MiB record would pass 5 MiB"
        );
        b.reset(9);
        assert!(b.is_empty() && b.id == 9 && b.payload_bytes() == 0);
    }
}
