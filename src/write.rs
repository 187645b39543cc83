//! The write loop: Airbyte messages in, PutRecords out, STATE messages echoed
//! once everything before them is in Kinesis.

use crate::aggregate::Aggregator;
use crate::batch::{Batch, MAX_RECORD_BYTES};
use crate::catalog::Catalog;
use crate::checkpoint::Checkpoints;
use crate::config::{Config, PartitionKeySource};
use crate::delivery::{Dispatcher, Done, Sender, Sent};
use crate::envelope::Envelope;
use crate::failure::Failure;
use crate::ids::UuidPool;
use crate::input::{Cancel, Event, LineReader};
use crate::naming::target_stream_name;
use crate::partition::KeyPicker;
use crate::protocol::FailureType;
use crate::protocol::{parse_line, Emitter, Message, Record, StateScope};
use crate::session::Session;
use crate::streams::{ensure_streams, Creation, Readiness};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest input line accepted: room for any record that fits in a Kinesis
/// record (1 MiB) and the message around it, while a runaway line is refused
/// without being held in memory.
pub const MAX_LINE_BYTES: usize = 2 * MAX_RECORD_BYTES;

/// Most request bytes all streams' open batches may hold together; past it
/// the largest is sent early. One full request (5 MiB of data, base64) fits.
pub const BUFFER_BUDGET: usize = 8 * 1024 * 1024;

/// How often (in record bytes read) the budget is checked.
const BUDGET_CHECK_BYTES: usize = 256 * 1024;

/// Buffered records are sent at the latest this long after the first of them
/// was read, however busy stdin is.
pub const FLUSH_AFTER: Duration = Duration::from_secs(1);

/// Totals of a write, for the final LOG.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    /// Records read.
    pub records: u64,
    /// Records Kinesis accepted.
    pub accepted: u64,
    /// Bytes of record data read.
    pub data_bytes: u64,
    /// Bytes sent as Kinesis records (envelopes).
    pub kinesis_bytes: u64,
    /// Request figures.
    pub sent: Sent,
    /// Records whose partition key was missing from the data.
    pub random_keys: u64,
}

/// One Kinesis stream being written.
struct Target {
    name: String,
    envelope: Envelope,
    open: Option<Batch>,
    /// The aggregate being filled, when records are aggregated.
    aggregate: Option<Aggregator>,
    /// Hashes of the partition keys in the open batch, under `keepKeyOrder`.
    keys: HashSet<u64>,
    /// Batches of this stream submitted and not yet collected.
    in_flight: usize,
    /// When the open batch got its first record.
    opened_at: Option<Instant>,
}

/// The running state of one write.
struct Writer<'a> {
    config: &'a Config,
    catalog: &'a Catalog,
    out: &'a Emitter,
    targets: Vec<Target>,
    /// Catalog stream index to target index.
    target_of: Vec<usize>,
    /// Stream name to (namespace, catalog index) pairs.
    lookup: HashMap<String, Vec<(Option<String>, usize)>>,
    checkpoints: Checkpoints,
    dispatcher: Dispatcher,
    spare: Vec<Batch>,
    ids: UuidPool,
    keys: KeyPicker,
    id_buf: String,
    key_buf: String,
    record_buf: Vec<u8>,
    /// Where an aggregate is encoded before it goes into its batch.
    aggregate_buf: Vec<u8>,
    /// Record bytes added since the buffer budget was last checked.
    unchecked_bytes: usize,
    /// When the oldest open batch is due to be sent (may be early, never late);
    /// None when nothing is buffered.
    flush_at: Option<Instant>,
    totals: Totals,
    /// The first delivery failure; once set nothing more is sent.
    failed: Option<Failure>,
    unknown_types: HashSet<String>,
}

/// Runs `write`: sets up every catalog stream's Kinesis stream, then reads
/// messages from `input` until its end.
pub fn run(
    config: &Config,
    catalog: &Catalog,
    input: impl Read + Send + 'static,
    out: &Emitter,
) -> Result<Totals, Failure> {
    if let Some(s) = catalog.unsupported_stream() {
        return Err(Failure::new(
            FailureType::Config,
            format!(
                "stream `{}` asks for destination sync mode `{}`; this destination supports only `append`",
                s.display_name(),
                s.destination_sync_mode
            ),
        )
        .for_stream(s.namespace.as_deref(), &s.name));
    }
    let session = Session::open(config, out)?;
    let kinesis = Arc::new(session.kinesis);

    let mut targets: Vec<Target> = Vec::new();
    let mut target_of = Vec::with_capacity(catalog.streams.len());
    for s in &catalog.streams {
        let name = target_stream_name(
            config.stream_name.as_deref(),
            s.namespace.as_deref(),
            &s.name,
        )
        .map_err(|why| {
            Failure::new(FailureType::Config, why).for_stream(s.namespace.as_deref(), &s.name)
        })?;
        let index = match targets.iter().position(|t| t.name == name) {
            Some(i) => {
                // More than one Airbyte stream lands here: say which each record is.
                targets[i].envelope.with_stream = true;
                i
            }
            None => {
                targets.push(Target {
                    name,
                    envelope: Envelope {
                        format: config.data_format,
                        with_stream: false,
                    },
                    open: None,
                    aggregate: config
                        .aggregation
                        .then(|| Aggregator::new(config.partition_key != PartitionKeySource::Uuid)),
                    keys: HashSet::new(),
                    in_flight: 0,
                    opened_at: None,
                });
                targets.len() - 1
            }
        };
        target_of.push(index);
    }
    let creation = Creation {
        allowed: config.create_streams,
        mode: config.stream_mode,
        shards: config.shard_count,
        when_missing: " and `createStreams` is false: create it, or set `createStreams` to true",
    };
    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    let readiness = ensure_streams(&kinesis, &names, creation, config.retry_timeout)?;
    let created: Vec<&str> = names
        .iter()
        .zip(readiness)
        .filter(|(_, r)| *r == Readiness::Created)
        .map(|(name, _)| *name)
        .collect();
    let mapping: Vec<String> = catalog
        .streams
        .iter()
        .zip(&target_of)
        .map(|(s, &t)| format!("{} -> {}", s.display_name(), targets[t].name))
        .collect();
    out.log(
        "INFO",
        &format!(
            "writing to Kinesis at {} ({}): {}{}",
            kinesis.http().endpoint(),
            kinesis.http().region(),
            mapping.join(", "),
            if created.is_empty() {
                String::new()
            } else {
                format!("; created {}", created.join(", "))
            }
        ),
    );

    let mut lookup: HashMap<String, Vec<(Option<String>, usize)>> = HashMap::new();
    for (i, s) in catalog.streams.iter().enumerate() {
        lookup
            .entry(s.name.clone())
            .or_default()
            .push((s.namespace.clone(), i));
    }
    // Signals are caught only from here on: before the first record nothing
    // is buffered, so the default action (exit at once) loses nothing.
    let cancel = Cancel::install();
    let dispatcher = Dispatcher::new(config.max_in_flight, || {
        Sender::new(
            Arc::clone(&kinesis),
            config.retry_timeout,
            Arc::clone(&cancel),
        )
    });
    let mut writer = Writer {
        config,
        catalog,
        out,
        targets,
        target_of,
        lookup,
        checkpoints: Checkpoints::new(catalog.streams.len()),
        dispatcher,
        spare: Vec::new(),
        ids: UuidPool::new(),
        keys: KeyPicker::new(config.partition_key.clone()),
        id_buf: String::new(),
        key_buf: String::new(),
        record_buf: Vec::new(),
        aggregate_buf: Vec::new(),
        unchecked_bytes: 0,
        flush_at: None,
        totals: Totals::default(),
        failed: None,
        unknown_types: HashSet::new(),
    };
    let started = Instant::now();
    let mut lines = LineReader::spawn(input, MAX_LINE_BYTES, Arc::clone(&cancel));
    let outcome = writer.read_all(&mut lines);
    // Whatever ended the input, send what is buffered so the states it covers can be echoed.
    if writer.failed.is_none() {
        writer.flush_all();
    }
    let in_flight = writer.dispatcher.drain();
    writer.collect(in_flight);
    writer.echo_ready();
    writer.log_totals(started.elapsed());
    if let Some(f) = writer.failed.take() {
        return Err(f);
    }
    outcome?;
    // Every batch came back accepted, so every state must have been echoed;
    // one that was not means records went missing inside this program.
    let unconfirmed = writer.checkpoints.pending_states();
    if unconfirmed > 0 {
        return Err(Failure::new(
            FailureType::System,
            format!("internal error: {unconfirmed} states were never confirmed, so they were not echoed; run again from the last echoed state"),
        ));
    }
    Ok(writer.totals)
}

/// Puts target's open aggregate, if any, into its open batch as one entry
/// (encoded in `scratch`); returns the aggregate's bytes.
fn close_aggregate(target: &mut Target, scratch: &mut Vec<u8>) -> usize {
    let (Some(aggregate), Some(batch)) = (target.aggregate.as_mut(), target.open.as_mut()) else {
        return 0;
    };
    if aggregate.is_empty() {
        return 0;
    }
    aggregate.encode_into(scratch);
    batch.push(scratch, aggregate.partition_key(), None, aggregate.len());
    aggregate.clear();
    scratch.len()
}

/// Bytes target `t` holds for requests not yet sent.
fn held_bytes(target: &Target) -> usize {
    let aggregate = match &target.aggregate {
        Some(a) if !a.is_empty() => a.size(),
        _ => 0,
    };
    target.open.as_ref().map_or(0, Batch::body_bytes) + aggregate
}

/// A 64-bit hash of a partition key; a collision only costs an early flush.
fn key_hash(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

impl Writer<'_> {
    /// Reads messages until the end of input, a bad line, a signal or a delivery failure.
    fn read_all(&mut self, lines: &mut LineReader) -> Result<(), Failure> {
        loop {
            if self.failed.is_some() {
                return Ok(());
            }
            let line_no = lines.line_number() + 1;
            // With nothing buffered, wake up anyway to echo states whose calls finished.
            let deadline = self
                .flush_at
                .unwrap_or_else(|| Instant::now() + FLUSH_AFTER);
            match lines.next_event(deadline) {
                Event::Line(line) => {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let message = parse_line(line).map_err(|e| {
                        Failure::new(FailureType::System, format!("input line {line_no} {e}"))
                    })?;
                    self.handle(message, line_no)?;
                }
                Event::TooLong => {
                    return Err(Failure::new(
                        FailureType::System,
                        format!(
                            "input line {line_no} is longer than {MAX_LINE_BYTES} bytes; no record that large fits in a Kinesis record (1 MiB)"
                        ),
                    ))
                }
                Event::Idle => self.flush_due(),
                Event::Eof => return Ok(()),
                Event::Cancelled(signal) => {
                    return Err(Failure::new(
                        FailureType::Transient,
                        format!("sync cancelled by {signal}: sent what was buffered and echoed the states it covered"),
                    ))
                }
                Event::Failed(e) => return Err(crate::failure::stdin_failed(&e)),
            }
        }
    }

    fn handle(&mut self, message: Message<'_>, line_no: u64) -> Result<(), Failure> {
        match message {
            Message::Record(r) => self.add_record(&r, line_no),
            Message::State(s) => {
                let stream = match &s.scope {
                    StateScope::Stream { namespace, name } => self.find(namespace.as_deref(), name),
                    _ => None,
                };
                self.checkpoints.add_state(&s, stream);
                self.echo_ready();
                Ok(())
            }
            Message::Ignored => Ok(()),
            Message::Unknown(kind) => {
                if self.unknown_types.insert(kind.clone()) {
                    self.out.log(
                        "WARN",
                        &format!(
                            "ignoring message type `{kind}` first seen on input line {line_no}"
                        ),
                    );
                }
                Ok(())
            }
        }
    }

    fn find(&self, namespace: Option<&str>, name: &str) -> Option<usize> {
        self.lookup
            .get(name)?
            .iter()
            .find(|(ns, _)| ns.as_deref() == namespace)
            .map(|(_, i)| *i)
    }

    fn add_record(&mut self, r: &Record<'_>, line_no: u64) -> Result<(), Failure> {
        let namespace = r.namespace.as_deref();
        let Some(stream) = self.find(namespace, &r.stream) else {
            let shown =
                namespace.map_or_else(|| r.stream.to_string(), |ns| format!("{ns}.{}", r.stream));
            return Err(Failure::new(
                FailureType::System,
                format!("input line {line_no} is a RECORD of stream `{shown}`, which is not in the catalog"),
            )
            .for_stream(namespace, &r.stream));
        };
        let t = self.target_of[stream];
        self.ids.next_into(&mut self.id_buf);
        // The partition key goes into `key_buf`: from the data, else the record's ID.
        let primary_key = &self.catalog.streams[stream].primary_key;
        if !self.keys.pick(r.data, primary_key, &mut self.key_buf) {
            if self.keys.from_data() {
                self.totals.random_keys += 1;
            }
            self.key_buf.push_str(&self.id_buf);
        }
        self.record_buf.clear();
        self.targets[t].envelope.encode(
            &mut self.record_buf,
            &self.id_buf,
            r.emitted_at,
            r.data,
            (namespace, &r.stream),
        );
        let size = self.record_buf.len() + self.key_buf.len();
        if size > MAX_RECORD_BYTES {
            return Err(Failure::new(
                FailureType::System,
                format!(
                    "input line {line_no}: a record of stream `{}` is {size} bytes as a Kinesis record, over the 1 MiB ({MAX_RECORD_BYTES} bytes) limit; it was not sent",
                    r.stream
                ),
            )
            .for_stream(namespace, &r.stream));
        }
        if self.targets[t].aggregate.is_some() {
            self.add_aggregated(t);
        } else {
            self.add_plain(t, size);
        }
        self.checkpoints.count_record(stream);
        self.totals.records += 1;
        self.totals.data_bytes += r.data.get().len() as u64;
        self.unchecked_bytes += self.record_buf.len();
        if self.unchecked_bytes >= BUDGET_CHECK_BYTES {
            self.unchecked_bytes = 0;
            self.keep_within_budget();
        }
        Ok(())
    }

    /// Sends the largest open batches while all of them together hold more
    /// than `BUFFER_BUDGET`, so memory does not grow with the number of streams.
    fn keep_within_budget(&mut self) {
        while self.failed.is_none() {
            let total: usize = self.targets.iter().map(held_bytes).sum();
            if total <= BUFFER_BUDGET {
                return;
            }
            let largest = (0..self.targets.len()).max_by_key(|&t| held_bytes(&self.targets[t]));
            match largest {
                Some(t) => self.flush(t),
                None => return,
            }
        }
    }

    /// Adds the record in `record_buf` to target `t`'s batch as its own entry.
    fn add_plain(&mut self, t: usize, size: usize) {
        let buffer_size = self.config.buffer_size;
        let key = &self.key_buf;
        // Under keepKeyOrder a batch holds at most one record per key, so a
        // partial failure can never let a key's later record land first.
        let key_hash = self.config.keep_key_order.then(|| key_hash(key));
        let repeats_key = key_hash.is_some_and(|h| self.targets[t].keys.contains(&h));
        if repeats_key
            || self.targets[t]
                .open
                .as_ref()
                .is_some_and(|b| !b.fits(size, buffer_size))
        {
            self.flush(t);
        }
        self.open_batch(t);
        if let Some(batch) = self.targets[t].open.as_mut() {
            batch.push(&self.record_buf, &self.key_buf, None, 1);
        }
        if let Some(h) = key_hash {
            self.targets[t].keys.insert(h);
        }
        self.totals.kinesis_bytes += self.record_buf.len() as u64;
        if self.targets[t]
            .open
            .as_ref()
            .is_some_and(|b| b.len() >= buffer_size)
        {
            self.flush(t);
        }
    }

    /// Adds the record in `record_buf` to target `t`'s open aggregate. The
    /// aggregate is kept small enough to go into the open batch as its next
    /// entry, so its records always travel in the batch that was open when
    /// they came (which the states after them wait for).
    fn add_aggregated(&mut self, t: usize) {
        let buffer_size = self.config.buffer_size;
        loop {
            self.open_batch(t);
            let target = &mut self.targets[t];
            let (Some(batch), Some(aggregate)) = (target.open.as_mut(), target.aggregate.as_mut())
            else {
                return;
            };
            let key = &self.key_buf;
            // Under keepKeyOrder a batch carries one aggregate: a partial
            // failure then never lets a later aggregate of a key land first.
            let room = if self.config.keep_key_order && !batch.is_empty() {
                0
            } else {
                batch.room(buffer_size)
            };
            if aggregate.try_add(&self.record_buf, key, room) {
                return;
            }
            if !aggregate.is_empty() {
                self.totals.kinesis_bytes +=
                    close_aggregate(target, &mut self.aggregate_buf) as u64;
            } else if !batch.is_empty() {
                self.flush(t);
            } else {
                // Too big to aggregate even alone: it goes as a plain record,
                // which consumers read as it is.
                batch.push(&self.record_buf, key, None, 1);
                self.totals.kinesis_bytes += self.record_buf.len() as u64;
                return;
            }
        }
    }

    /// Makes sure target `t` has an open batch.
    fn open_batch(&mut self, t: usize) {
        if self.targets[t].open.is_some() {
            return;
        }
        let now = Instant::now();
        self.targets[t].opened_at = Some(now);
        self.flush_at.get_or_insert(now + FLUSH_AFTER);
        let id = self.checkpoints.open_batch();
        let batch = match self.spare.pop() {
            Some(mut b) => {
                b.reset(id);
                b.stream.clone_from(&self.targets[t].name);
                b
            }
            None => Batch::new(&self.targets[t].name, id),
        };
        self.targets[t].open = Some(batch);
    }

    /// Sends target `t`'s open batch, with its open aggregate.
    fn flush(&mut self, t: usize) {
        if self.failed.is_some() {
            return;
        }
        self.totals.kinesis_bytes +=
            close_aggregate(&mut self.targets[t], &mut self.aggregate_buf) as u64;
        let Some(batch) = self.targets[t].open.take() else {
            return;
        };
        self.targets[t].opened_at = None;
        self.targets[t].keys.clear();
        // Under keepKeyOrder a stream has one batch in flight at a time,
        // so a key's next record never overtakes a retried earlier one.
        while self.config.keep_key_order && self.targets[t].in_flight > 0 && self.failed.is_none() {
            let done = self.dispatcher.wait_one();
            if done.is_empty() {
                break; // the dispatcher holds nothing: no delivery can come back
            }
            self.collect(done);
        }
        // Once a delivery has failed nothing more is sent: look before sending.
        let done = self.dispatcher.wait_for_slot();
        self.collect(done);
        if self.failed.is_some() {
            self.spare.push(batch);
        } else {
            self.targets[t].in_flight += 1;
            let done = self.dispatcher.submit(batch);
            self.collect(done);
        }
        self.echo_ready();
    }

    /// Sends the batches that have waited `FLUSH_AFTER`, and notes when the
    /// next one is due.
    fn flush_due(&mut self) {
        let now = Instant::now();
        self.flush_at = None;
        for t in 0..self.targets.len() {
            let Some(opened) = self.targets[t].opened_at else {
                continue;
            };
            let due = opened + FLUSH_AFTER;
            if due <= now {
                self.flush(t);
            } else {
                self.flush_at = Some(self.flush_at.map_or(due, |at| at.min(due)));
            }
        }
        let done = self.dispatcher.poll();
        self.collect(done);
        self.echo_ready();
    }

    fn flush_all(&mut self) {
        self.flush_at = None;
        for t in 0..self.targets.len() {
            self.flush(t);
        }
        let done = self.dispatcher.poll();
        self.collect(done);
        self.echo_ready();
    }

    fn collect(&mut self, done: Vec<Done>) {
        for Done { batch, result } in done {
            if let Some(t) = self.targets.iter_mut().find(|t| t.name == batch.stream) {
                t.in_flight = t.in_flight.saturating_sub(1);
            }
            match result {
                Ok(sent) => {
                    self.checkpoints.batch_done(batch.id);
                    self.totals.accepted += batch.record_count();
                    self.totals.sent.add(&sent);
                    self.spare.push(batch);
                }
                Err(e) => {
                    self.totals.sent.add(&e.sent);
                    if self.failed.is_none() {
                        self.failed = Some(e.to_failure(batch.len()));
                    }
                }
            }
        }
    }

    fn echo_ready(&mut self) {
        for state in self.checkpoints.take_ready() {
            self.out.emit(&state);
        }
    }

    fn log_totals(&self, elapsed: Duration) {
        let t = &self.totals;
        let mut text = format!(
            "read {} records ({} bytes of data); Kinesis accepted {} records ({} bytes) in {} PutRecords calls; \
             {} entries retried ({} throttled), {} possible duplicates from lost answers; \
             echoed {} states, {} held back; {:.3} s",
            t.records,
            t.data_bytes,
            t.accepted,
            t.kinesis_bytes,
            t.sent.requests,
            t.sent.retried_entries,
            t.sent.throttled_entries,
            t.sent.possible_duplicates,
            self.checkpoints.echoed_states(),
            self.checkpoints.pending_states(),
            elapsed.as_secs_f64()
        );
        if self.config.partition_key != PartitionKeySource::Uuid {
            text.push_str(&format!(
                "; {} records had no partition key value and got a random key",
                t.random_keys
            ));
        }
        self.out.log("INFO", &text);
    }
}
