//! The outbox: records waiting to be sent, per Kinesis stream. It fills each
//! stream's open batch (and KPL aggregate), and closes a batch when it is
//! full, when it has waited `linger`, when `keepKeyOrder` needs it, or when
//! all open batches together pass the memory budget. Closed batches wait in
//! a queue for the engine to send; batches that come back are kept for reuse
//! within the budget.

use crate::aggregate::Aggregator;
use crate::batch::{Batch, TargetId};
use crate::config::{Config, PartitionKeySource};
use crate::put_records::Limits;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most bytes all open batches may hold together when no stream allows
/// requests larger than 5 MiB; past it the largest is closed early.
pub const BUFFER_BUDGET: usize = 8 * 1024 * 1024;

/// A Kinesis stream the outbox fills batches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// Its name.
    pub stream: String,
    /// What its PutRecords calls may carry.
    pub limits: Limits,
}

/// How batches are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Most entries in one call (`bufferSize`).
    pub max_entries: usize,
    /// Whether a batch may hold two records of one key (and a stream have two batches in flight).
    pub keep_key_order: bool,
    /// Whether records are packed into KPL aggregates.
    pub aggregation: bool,
    /// Whether partition keys may repeat (keys from the data), so that an
    /// aggregate's key table shares equal keys.
    pub keys_repeat: bool,
    /// Longest a record waits in an open batch.
    pub linger: Duration,
    /// Batches that may come back at once (calls in flight), worth keeping for reuse.
    pub reuse: usize,
}

impl Settings {
    /// How `config` asks batches to be filled.
    pub fn from_config(config: &Config) -> Settings {
        Settings {
            max_entries: config.buffer_size,
            keep_key_order: config.keep_key_order,
            aggregation: config.aggregation,
            keys_repeat: config.partition_key != PartitionKeySource::Uuid,
            linger: config.linger,
            reuse: config.max_in_flight + 1,
        }
    }
}

/// A record that no batch of its stream can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversize {
    /// Its size as Kinesis counts it: data plus partition key.
    pub size: usize,
    /// The stream's largest record.
    pub limit: usize,
}

/// One Kinesis stream's open batch and aggregate.
struct Target {
    stream: Arc<str>,
    limits: Limits,
    open: Option<Batch>,
    /// The aggregate being filled, made on first use (boxed: most targets of
    /// a large catalog never need one).
    aggregate: Option<Box<Aggregator>>,
    /// Hashes of the keys in the open batch, under `keepKeyOrder`.
    keys: HashSet<u64>,
    /// Its batches being sent.
    in_flight: usize,
    /// Bytes its open batch and aggregate hold, as counted in `Outbox::held`.
    held: usize,
}

/// Records waiting to be sent, per Kinesis stream.
pub struct Outbox {
    targets: Vec<Target>,
    settings: Settings,
    budget: usize,
    /// Bytes all open batches and aggregates hold.
    held: usize,
    /// When each open batch is due, in opening order (so in due order);
    /// entries of batches closed early are skipped when reached.
    due: VecDeque<(Instant, usize, u64)>,
    /// Closed batches, in closing order, waiting to be sent.
    ready: VecDeque<Batch>,
    /// Batches that came back, kept for reuse.
    pool: Vec<Batch>,
    pool_bytes: usize,
    next_batch: u64,
    next_record: u64,
    /// The first record of every batch not yet accepted in full (open,
    /// waiting, in flight or failed), with how many batches start there.
    unaccepted: BTreeMap<u64, u32>,
    /// Where an aggregate is encoded before it goes into its batch.
    scratch: Vec<u8>,
    /// Bytes of Kinesis records (data, not keys) put into batches.
    entry_bytes: u64,
}

impl Outbox {
    /// An outbox for `targets`, in the order their `TargetId`s number them.
    pub fn new(targets: Vec<TargetSpec>, settings: Settings) -> Outbox {
        // One full request of the largest kind, base64 and all, must fit.
        let largest_request = targets.iter().map(|t| t.limits.request).max().unwrap_or(0);
        let budget = BUFFER_BUDGET.max(largest_request / 3 * 4 * 2);
        let targets = targets
            .into_iter()
            .map(|spec| Target {
                stream: Arc::from(spec.stream),
                limits: spec.limits,
                open: None,
                aggregate: None,
                keys: HashSet::new(),
                in_flight: 0,
                held: 0,
            })
            .collect();
        Outbox {
            targets,
            settings,
            budget,
            held: 0,
            due: VecDeque::new(),
            ready: VecDeque::new(),
            pool: Vec::new(),
            pool_bytes: 0,
            next_batch: 0,
            next_record: 0,
            unaccepted: BTreeMap::new(),
            scratch: Vec::new(),
            entry_bytes: 0,
        }
    }

    /// The stream's name.
    pub fn stream(&self, t: TargetId) -> &str {
        &self.targets[t.0].stream
    }

    /// The stream's limits.
    pub fn limits(&self, t: TargetId) -> Limits {
        self.targets[t.0].limits
    }

    /// Whether a record of `data_len` bytes with `key` fits a Kinesis record
    /// of the stream (as Kinesis counts it: data plus partition key).
    pub fn check_size(&self, t: TargetId, data_len: usize, key: &str) -> Result<(), Oversize> {
        let size = data_len + key.len();
        let limit = self.targets[t.0].limits.record;
        if size > limit {
            return Err(Oversize { size, limit });
        }
        Ok(())
    }

    /// The number the next record added gets: records added so far.
    pub fn next_record(&self) -> u64 {
        self.next_record
    }

    /// The number of the first record not yet accepted, if any is not.
    pub fn lowest_unaccepted(&self) -> Option<u64> {
        self.unaccepted.keys().next().copied()
    }

    /// Bytes of Kinesis records put into batches so far.
    pub fn entry_bytes(&self) -> u64 {
        self.entry_bytes
    }

    /// Adds a record (which `check_size` accepted) for the stream, placed by
    /// its partition key or, when given, its explicit hash key; batches it
    /// closes wait in `pop_ready`.
    pub fn add(&mut self, t: TargetId, data: &[u8], key: &str, explicit_hash_key: Option<&str>) {
        if explicit_hash_key.is_some() {
            // An aggregate is placed by one hash for all its records.
            self.add_plain(t.0, data, key, explicit_hash_key);
        } else if self.settings.aggregation {
            let keys_repeat = self.settings.keys_repeat;
            self.targets[t.0]
                .aggregate
                .get_or_insert_with(|| Box::new(Aggregator::new(keys_repeat)));
            self.add_aggregated(t.0, data, key);
        } else {
            self.add_plain(t.0, data, key, None);
        }
        self.next_record += 1;
        self.account(t.0);
        if self.held > self.budget {
            // Oldest first: they are due soonest anyway, and with streams
            // filled alike the oldest batch is the fullest. Down to 3/4 of
            // the budget, so that this happens now and then, not per record.
            while self.held > self.budget / 4 * 3 {
                let Some((_, oldest, id)) = self.due.pop_front() else {
                    break;
                };
                if self.targets[oldest]
                    .open
                    .as_ref()
                    .is_some_and(|b| b.id == id)
                {
                    self.close(oldest);
                }
            }
        }
    }

    /// Adds the record to target `t`'s open batch as its own entry.
    fn add_plain(&mut self, t: usize, data: &[u8], key: &str, explicit_hash_key: Option<&str>) {
        let max_entries = self.settings.max_entries;
        let key_hash = self.settings.keep_key_order.then(|| key_hash(key));
        let target = &self.targets[t];
        // Under keepKeyOrder a batch holds at most one record per key, so a
        // partial failure can never let a key's later record land first.
        let repeats_key = key_hash.is_some_and(|h| target.keys.contains(&h));
        let full = target
            .open
            .as_ref()
            .is_some_and(|b| !b.fits(data.len() + key.len(), max_entries, target.limits));
        if repeats_key || full {
            self.close(t);
        }
        let batch = self.open_batch(t);
        batch.push(data, key, explicit_hash_key, 1);
        let filled = batch.len() >= max_entries;
        if let Some(h) = key_hash {
            self.targets[t].keys.insert(h);
        }
        self.entry_bytes += data.len() as u64;
        if filled {
            self.close(t);
        }
    }

    /// Adds the record to target `t`'s open aggregate. The aggregate is kept
    /// small enough to go into the open batch as its next entry, so its
    /// records travel in the batch that was open when they came.
    fn add_aggregated(&mut self, t: usize, data: &[u8], key: &str) {
        let max_entries = self.settings.max_entries;
        loop {
            let keep_key_order = self.settings.keep_key_order;
            let limits = self.targets[t].limits;
            let batch = self.open_batch(t);
            // Under keepKeyOrder a batch carries one aggregate: a partial
            // failure then never lets a later aggregate of a key land first.
            let room = if keep_key_order && !batch.is_empty() {
                0
            } else {
                batch.room(max_entries, limits)
            };
            let batch_empty = batch.is_empty();
            let Some(aggregate) = self.targets[t].aggregate.as_mut() else {
                return;
            };
            if aggregate.try_add(data, key, room) {
                return;
            }
            if !aggregate.is_empty() {
                self.close_aggregate(t);
            } else if Aggregator::default().size_with(data.len(), key) > limits.record {
                // Too big to aggregate even alone: it goes as a plain record,
                // which consumers read as it is, sharing the call with others.
                self.add_plain(t, data, key, None);
                return;
            } else if !batch_empty {
                self.close(t);
            } else {
                // An empty batch's room is a whole record: it fits next time.
                return self.add_plain(t, data, key, None);
            }
        }
    }

    /// Target `t`'s open batch, opened now if there is none.
    fn open_batch(&mut self, t: usize) -> &mut Batch {
        let batch = match self.targets[t].open.take() {
            Some(batch) => batch,
            None => self.fresh_batch(t),
        };
        self.targets[t].open.insert(batch)
    }

    /// A new batch for target `t`, from the pool when one is there.
    fn fresh_batch(&mut self, t: usize) -> Batch {
        let id = self.next_batch;
        self.next_batch += 1;
        let first = self.next_record;
        *self.unaccepted.entry(first).or_default() += 1;
        let stream = Arc::clone(&self.targets[t].stream);
        let batch = match self.pool.pop() {
            Some(mut b) => {
                self.pool_bytes -= b.capacity();
                b.reuse(TargetId(t), stream, id, first, self.budget / 4);
                b
            }
            None => Batch::new(TargetId(t), stream, id, first),
        };
        self.due
            .push_back((Instant::now() + self.settings.linger, t, id));
        batch
    }

    /// Puts target `t`'s open aggregate, if any, into its open batch as one entry.
    fn close_aggregate(&mut self, t: usize) {
        let target = &mut self.targets[t];
        let (Some(aggregate), Some(batch)) = (target.aggregate.as_mut(), target.open.as_mut())
        else {
            return;
        };
        if aggregate.is_empty() {
            return;
        }
        aggregate.encode_into(&mut self.scratch);
        batch.push(
            &self.scratch,
            aggregate.partition_key(),
            None,
            aggregate.len(),
        );
        self.entry_bytes += self.scratch.len() as u64;
        aggregate.clear();
    }

    /// Closes target `t`'s open batch (with its aggregate) and queues it.
    fn close(&mut self, t: usize) {
        self.close_aggregate(t);
        let target = &mut self.targets[t];
        let Some(batch) = target.open.take() else {
            return;
        };
        target.keys.clear();
        if batch.is_empty() {
            self.accepted(&batch);
            self.recycle(batch);
        } else {
            self.ready.push_back(batch);
        }
        self.account(t);
    }

    /// Brings `held` up to date with target `t`'s open batch and aggregate.
    fn account(&mut self, t: usize) {
        let target = &mut self.targets[t];
        let now = target.open.as_ref().map_or(0, Batch::byte_len)
            + target
                .aggregate
                .as_ref()
                .filter(|a| !a.is_empty())
                .map_or(0, |a| a.size());
        self.held = self.held - target.held + now;
        target.held = now;
    }

    /// When the next open batch is due to be sent, if any is open.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.due.front().map(|&(at, _, _)| at)
    }

    /// Closes the batches that have waited `linger` by `now`.
    pub fn close_due(&mut self, now: Instant) {
        while let Some(&(at, t, id)) = self.due.front() {
            if at > now {
                return;
            }
            self.due.pop_front();
            if self.targets[t].open.as_ref().is_some_and(|b| b.id == id) {
                self.close(t);
            }
        }
    }

    /// Closes every open batch: the end of input.
    pub fn close_all(&mut self) {
        self.due.clear();
        for t in 0..self.targets.len() {
            self.close(t);
        }
    }

    /// The next closed batch to send.
    pub fn pop_ready(&mut self) -> Option<Batch> {
        self.ready.pop_front()
    }

    /// Whether a stream may have only one batch in flight (`keepKeyOrder`).
    pub fn keeps_key_order(&self) -> bool {
        self.settings.keep_key_order
    }

    /// Drops a closed batch that will not be sent (sending failed): its
    /// records stay unaccepted.
    pub fn discard(&mut self, batch: Batch) {
        self.recycle(batch);
    }

    /// Batches of the stream being sent.
    pub fn in_flight(&self, t: TargetId) -> usize {
        self.targets[t.0].in_flight
    }

    /// Notes that `batch` is being sent.
    pub fn sending(&mut self, batch: &Batch) {
        self.targets[batch.target.0].in_flight += 1;
    }

    /// Takes back a batch that was sent: accepted in full or not. Records of
    /// a batch not accepted stay unaccepted, so no later state is echoed.
    pub fn finished(&mut self, batch: Batch, accepted: bool) {
        let target = &mut self.targets[batch.target.0];
        target.in_flight = target.in_flight.saturating_sub(1);
        if accepted {
            self.accepted(&batch);
            self.recycle(batch);
        }
    }

    fn accepted(&mut self, batch: &Batch) {
        if let Some(count) = self.unaccepted.get_mut(&batch.first_record) {
            *count -= 1;
            if *count == 0 {
                self.unaccepted.remove(&batch.first_record);
            }
        }
    }

    /// Keeps a batch for reuse while that stays within the budget.
    fn recycle(&mut self, batch: Batch) {
        let bytes = batch.capacity();
        if self.pool.len() < self.settings.reuse && self.pool_bytes + bytes <= self.budget / 2 {
            self.pool_bytes += bytes;
            self.pool.push(batch);
        }
    }

    /// Bytes of memory the outbox holds: open batches and aggregates, and
    /// batches kept for reuse.
    pub fn held_bytes(&self) -> usize {
        self.held + self.pool_bytes
    }

    /// The most bytes open batches may hold together.
    pub fn budget(&self) -> usize {
        self.budget
    }
}

/// A 64-bit hash of a partition key; a collision only costs an early close.
fn key_hash(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    fn settings() -> Settings {
        Settings {
            max_entries: 500,
            keep_key_order: false,
            aggregation: false,
            keys_repeat: false,
            linger: Duration::from_secs(1),
            reuse: 2,
        }
    }

    fn outbox(streams: usize, limits: Limits, settings: Settings) -> Outbox {
        let targets = (0..streams)
            .map(|i| TargetSpec {
                stream: format!("s{i}"),
                limits,
            })
            .collect();
        Outbox::new(targets, settings)
    }

    fn drain(o: &mut Outbox) -> Vec<Batch> {
        std::iter::from_fn(|| o.pop_ready()).collect()
    }

    #[test]
    fn closes_full_batches_and_counts_records() {
        let mut o = outbox(
            1,
            Limits::CLASSIC,
            Settings {
                max_entries: 3,
                ..settings()
            },
        );
        for i in 0..7 {
            o.add(TargetId(0), format!("r{i}").as_bytes(), "k", None);
        }
        let ready = drain(&mut o);
        assert_eq!(ready.len(), 2);
        assert_eq!((ready[0].first_record, ready[1].first_record), (0, 3));
        assert_eq!(o.lowest_unaccepted(), Some(0));
        o.close_all();
        let last = drain(&mut o);
        assert_eq!((last.len(), last[0].first_record, last[0].len()), (1, 6, 1));
        let mut all = ready.into_iter().chain(last);
        let first = all.next().unwrap();
        o.sending(&first);
        o.finished(first, true);
        assert_eq!(o.lowest_unaccepted(), Some(3));
        for b in all {
            o.finished(b, true);
        }
        assert_eq!(o.lowest_unaccepted(), None);
    }

    #[test]
    fn a_failed_batch_holds_back_every_later_state() {
        let mut o = outbox(
            2,
            Limits::CLASSIC,
            Settings {
                max_entries: 1,
                ..settings()
            },
        );
        o.add(TargetId(0), b"a", "k", None);
        o.add(TargetId(1), b"b", "k", None);
        let mut ready = drain(&mut o);
        let second = ready.pop().unwrap();
        let first = ready.pop().unwrap();
        o.finished(second, true);
        o.finished(first, false);
        assert_eq!(o.lowest_unaccepted(), Some(0));
    }

    #[test]
    fn keeps_key_order_and_request_limits() {
        let mut o = outbox(
            1,
            Limits::CLASSIC,
            Settings {
                keep_key_order: true,
                ..settings()
            },
        );
        for key in ["a", "b", "a", "c", "b"] {
            o.add(TargetId(0), b"x", key, None);
        }
        o.close_all();
        let sizes: Vec<usize> = drain(&mut o).iter().map(Batch::len).collect();
        assert_eq!(sizes, [2, 3], "a batch closes at the first repeated key");

        let mut o = outbox(1, Limits::CLASSIC, settings());
        let big = vec![b'x'; MIB - 1];
        for _ in 0..6 {
            assert!(o.check_size(TargetId(0), big.len(), "k").is_ok());
            o.add(TargetId(0), &big, "k", None);
        }
        assert_eq!(
            drain(&mut o).iter().map(Batch::len).collect::<Vec<_>>(),
            [5]
        );
        assert_eq!(
            o.check_size(TargetId(0), MIB, "k"),
            Err(Oversize {
                size: MIB + 1,
                limit: MIB
            })
        );
    }

    #[test]
    fn closes_due_batches_in_order() {
        let mut o = outbox(3, Limits::CLASSIC, settings());
        let start = Instant::now();
        o.add(TargetId(2), b"x", "k", None);
        o.add(TargetId(0), b"y", "k", None);
        assert!(o
            .next_deadline()
            .is_some_and(|d| d >= start + Duration::from_secs(1)));
        o.close_due(start);
        assert!(o.pop_ready().is_none());
        o.close_due(Instant::now() + Duration::from_secs(2));
        let order: Vec<TargetId> = drain(&mut o).iter().map(|b| b.target).collect();
        assert_eq!(order, [TargetId(2), TargetId(0)]);
        assert!(o.next_deadline().is_none());
    }

    #[test]
    fn memory_stays_within_the_budget_whatever_the_number_of_streams() {
        let mut o = outbox(
            200,
            Limits::CLASSIC,
            Settings {
                max_entries: 100,
                ..settings()
            },
        );
        let record = vec![b'r'; 2_000];
        let mut most = 0;
        for round in 0..60 {
            for t in 0..200 {
                o.add(TargetId(t), &record, "key", None);
                most = most.max(o.held_bytes());
                // Sent batches come back and are kept for reuse, or dropped.
                if (round + t) % 7 == 0 {
                    for b in drain(&mut o) {
                        o.sending(&b);
                        o.finished(b, true);
                    }
                }
            }
        }
        assert!(most > o.budget() / 2, "the budget was reached: {most}");
        assert!(most <= o.budget() + o.budget() / 2 + 64 * 1024, "{most}");
    }

    #[test]
    fn big_records_share_calls_under_aggregation() {
        let mut o = outbox(
            1,
            Limits::CLASSIC,
            Settings {
                aggregation: true,
                ..settings()
            },
        );
        let big = vec![b'b'; MIB - 100];
        for _ in 0..12 {
            o.add(TargetId(0), &big, "k", None);
        }
        o.close_all();
        let calls = drain(&mut o);
        assert_eq!(calls.len(), 3, "twelve 1 MiB records in three calls");
        assert_eq!(calls.iter().map(Batch::record_count).sum::<u64>(), 12);

        let mut o = outbox(
            1,
            Limits::CLASSIC,
            Settings {
                aggregation: true,
                ..settings()
            },
        );
        for i in 0..1000 {
            o.add(
                TargetId(0),
                format!("small {i}").as_bytes(),
                &format!("k{i}"),
                None,
            );
        }
        o.close_all();
        let calls = drain(&mut o);
        assert_eq!(
            (calls.len(), calls[0].len(), calls[0].record_count()),
            (1, 1, 1000)
        );
    }
}
