//! A batch: the entries of one PutRecords call to one stream, and what the
//! engine must know of them: which target, which input records they carry.

use crate::kinesis::put_records::{Body, Limits, MAX_ENTRIES};
use std::sync::Arc;
use std::time::Instant;

/// Which of the engine's Kinesis streams a batch or record goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TargetId(pub usize);

/// What the engine knows of one entry of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryMeta {
    /// Input records it carries (more than one when aggregated).
    pub records: u32,
    /// Data plus partition key bytes: what the shard counts.
    pub payload: u32,
    /// The number of the first of them.
    pub record: u64,
    /// The shard it is meant for: its place in the stream's shard map of the
    /// batch's `map_generation`.
    pub lane: u32,
    /// Its hash key, when it was worked out.
    pub hash: Option<u128>,
    /// When it was first sent, if it was sent before (an entry sent again).
    pub since: Option<Instant>,
    /// Whether an earlier attempt's outcome is unknown (no answer, or an
    /// answer that did not say): Kinesis may hold it already.
    pub unsure: bool,
}

impl EntryMeta {
    /// One record numbered `record` of `payload` bytes, for shard `lane`.
    pub fn one(record: u64, payload: usize, lane: u32, hash: Option<u128>) -> EntryMeta {
        EntryMeta {
            records: 1,
            payload: payload as u32,
            record,
            lane,
            hash,
            since: None,
            unsure: false,
        }
    }
}

/// The records waiting to go to one Kinesis stream in one PutRecords call.
#[derive(Debug)]
pub struct Batch {
    /// The stream's place among the engine's targets.
    pub target: TargetId,
    /// The Kinesis stream.
    pub stream: Arc<str>,
    /// This batch's number, increasing in opening order.
    pub id: u64,
    /// The lowest number of the input records it carries (checkpoints wait on this).
    pub first_record: u64,
    /// Which shard map of its stream the entries' lanes refer to.
    pub map_generation: u64,
    /// When it was opened: none of its entries joined it earlier.
    pub opened_at: Instant,
    /// When it was handed to a sender.
    pub sent_at: Option<Instant>,
    body: Body,
    meta: Vec<EntryMeta>,
}

impl Batch {
    /// An empty batch.
    pub fn new(target: TargetId, stream: Arc<str>, id: u64, first_record: u64) -> Batch {
        Batch {
            target,
            stream,
            id,
            first_record,
            map_generation: 0,
            opened_at: Instant::now(),
            sent_at: None,
            body: Body::default(),
            meta: Vec::new(),
        }
    }

    /// Empties the batch for reuse by another target, keeping at most
    /// `keep` bytes of its body's memory.
    pub fn reuse(
        &mut self,
        target: TargetId,
        stream: Arc<str>,
        id: u64,
        first_record: u64,
        keep: usize,
    ) {
        self.target = target;
        self.stream = stream;
        self.id = id;
        self.first_record = first_record;
        self.map_generation = 0;
        self.opened_at = Instant::now();
        self.sent_at = None;
        self.body.clear(keep);
        self.meta.clear();
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// Input records carried by all entries.
    pub fn record_count(&self) -> u64 {
        self.meta.iter().map(|m| u64::from(m.records)).sum()
    }

    /// What is known of entry `i`.
    pub fn meta(&self, i: usize) -> EntryMeta {
        self.meta[i]
    }

    /// Entry `i` in the wire format, to be moved into another batch.
    pub fn entry(&self, i: usize) -> &[u8] {
        self.body.entry(i)
    }

    /// Data plus partition key bytes of all entries.
    pub fn payload(&self) -> usize {
        self.body.payload()
    }

    /// Bytes of memory held, used or not.
    pub fn capacity(&self) -> usize {
        self.body.capacity() + self.meta.capacity() * std::mem::size_of::<EntryMeta>()
    }

    /// Whether an entry of `size` bytes (data plus key) still fits under
    /// `max_entries` and the request limit.
    pub fn fits(&self, size: usize, max_entries: usize, limits: Limits) -> bool {
        self.len() < max_entries.min(MAX_ENTRIES) && self.payload() + size <= limits.request
    }

    /// Adds an entry.
    pub fn push(
        &mut self,
        data: &[u8],
        partition_key: &str,
        explicit_hash_key: Option<&str>,
        meta: EntryMeta,
    ) {
        self.body
            .push(&self.stream, data, partition_key, explicit_hash_key);
        self.note(meta);
    }

    /// Adds an entry already in the wire format (see `put_records::encode_entry`).
    pub fn push_encoded(&mut self, entry: &[u8], payload: usize, meta: EntryMeta) {
        self.body.push_encoded(&self.stream, entry, payload);
        self.note(meta);
    }

    fn note(&mut self, meta: EntryMeta) {
        self.first_record = self.first_record.min(meta.record);
        self.meta.push(meta);
    }

    /// The PutRecords request for the entries at `indexes` (every entry
    /// when None); see `Body::request`.
    #[must_use]
    pub fn request<'a>(&'a self, indexes: Option<&[usize]>, scratch: &'a mut Vec<u8>) -> &'a [u8] {
        self.body.request(&self.stream, indexes, scratch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn respects_limits() {
        let limits = Limits::CLASSIC;
        let mut b = Batch::new(TargetId(0), "s".into(), 0, 0);
        assert!(b.fits(limits.request, 500, limits));
        assert!(!b.fits(limits.request + 1, 500, limits));
        b.push(&[0u8; 10], "k", None, EntryMeta::one(0, 0, 0, None));
        assert!(!b.fits(1, 1, limits), "bufferSize 1 reached");
        assert!(
            b.fits(1, 600, limits),
            "500 is the hard limit, not reached yet"
        );
        let big = vec![b'a'; MIB - 1];
        let mut b = Batch::new(TargetId(0), "s".into(), 0, 0);
        for _ in 0..5 {
            assert!(b.fits(big.len() + 1, 500, limits));
            b.push(&big, "k", None, EntryMeta::one(0, 0, 0, None));
        }
        assert!(
            !b.fits(MIB, 500, limits),
            "a sixth 1 MiB record would pass 5 MiB"
        );
        let large = Limits::for_stream(Some(4096));
        assert!(
            b.fits(MIB, 500, large),
            "10 MiB requests for large-record streams"
        );
        b.reuse(TargetId(3), "t".into(), 9, 40, 0);
        assert!(b.is_empty() && b.id == 9 && b.payload() == 0 && b.target == TargetId(3));
        assert_eq!(b.first_record, 40);
    }

    #[test]
    fn counts_records_per_entry() {
        let mut b = Batch::new(TargetId(0), "s".into(), 0, 0);
        b.push(b"a", "k", None, EntryMeta::one(3, 0, 0, None));
        let aggregate = EntryMeta {
            records: 7,
            ..EntryMeta::one(1, 0, 0, None)
        };
        b.push(b"agg", "k", None, aggregate);
        b.push(b"c", "k", None, EntryMeta::one(11, 0, 0, None));
        assert_eq!(b.first_record, 0, "the lowest record number, 0 at opening");
        assert_eq!(b.record_count(), 9);
        let mut scratch = Vec::new();
        let v: serde_json::Value =
            serde_json::from_slice(b.request(Some(&[2]), &mut scratch)).unwrap();
        assert_eq!(v["StreamName"], "s");
        assert_eq!(v["Records"][0]["Data"], "Yw==");
    }
}
