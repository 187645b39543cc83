//! `write`, the Airbyte adapter of the engine: RECORD messages become
//! Kinesis records in the outbox, STATE messages are echoed once every
//! record before them is in Kinesis.

use crate::airbyte::catalog::{Catalog, StreamIndex};
use crate::airbyte::checkpoint::Checkpoints;
use crate::airbyte::config::{Config, OversizePolicy, RecordFormat};
use crate::airbyte::envelope::{Envelope, Fields};
use crate::airbyte::naming::{target_stream, StreamNaming};
use crate::airbyte::progress_log::{ProgressLog, Tally, Waiting, PROGRESS_PREFIX};
use crate::airbyte::protocol::{parse_line, Emitter, MalformedMeta, Message, Record, StateScope};
use crate::engine::batch::TargetId;
use crate::engine::delivery::Sent;
use crate::engine::ids::UuidPool;
use crate::engine::input::Framing;
use crate::engine::outbox::{Outbox, Oversize, Settings, TargetSpec};
use crate::engine::partition::KeyPicker;
use crate::engine::partition::PartitionKeySource;
use crate::engine::{self, Adapter, InputLine, Report};
use crate::failure::{Failure, Kind};
use crate::kinesis::setup::{ensure_streams, unlisted_shards_note, Creation};
use crate::kinesis::stream::StreamRef;
use crate::kinesis::Kinesis;
use crate::signals;
use crate::text::count;
use serde_json::json;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

/// Longest input line read. A STATE may be this long (the GLOBAL states of
/// CDC sources can be large); a RECORD line this long is read too, and then
/// judged by its size as a Kinesis record, which is at most 10 MiB.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// Stream mappings listed in the start LOG before the rest are counted.
const MAPPINGS_SHOWN: usize = 20;

/// What a write did, for the final LOG.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    /// Records read.
    pub records: u64,
    /// Records Kinesis accepted.
    pub accepted: u64,
    /// Bytes of record data read.
    pub data_bytes: u64,
    /// Records whose partition key was missing from the data.
    pub random_keys: u64,
    /// Records not sent because they were larger than their stream takes.
    pub skipped: u64,
}

/// Records skipped for size in one catalog stream.
#[derive(Debug, Clone)]
struct Skipped {
    count: u64,
    first_line: u64,
    /// The Kinesis stream they were too large for, and its limit in bytes.
    kinesis_stream: String,
    limit: usize,
}

/// The Airbyte adapter's state during a write.
struct Writer<'a> {
    config: &'a Config,
    catalog: &'a Catalog,
    out: &'a Emitter,
    index: StreamIndex,
    /// Catalog stream to target.
    target_of: Vec<TargetId>,
    /// Each target's record wrapping.
    envelopes: Vec<Envelope>,
    checkpoints: Checkpoints,
    ids: UuidPool,
    keys: KeyPicker,
    id_buf: String,
    key_buf: String,
    record_buf: Vec<u8>,
    totals: Totals,
    /// Per catalog stream, records skipped for size.
    skipped: HashMap<usize, Skipped>,
    /// Per catalog stream, records whose `meta` was malformed: how many, and
    /// the input line of the first.
    malformed_meta: HashMap<usize, (u64, u64)>,
    unknown_types: HashSet<String>,
    /// The progress lines: when the next is due, and what the engine has done.
    progress: ProgressLog,
    /// When each state not echoed yet was read, oldest first.
    states_read_at: VecDeque<Instant>,
}

/// Runs `write`: sets up every catalog stream's Kinesis stream, then writes
/// the messages of `input` until its end.
pub fn run(
    config: &Config,
    catalog: &Catalog,
    input: impl Read + Send + 'static,
    out: &Emitter,
) -> Result<Totals, Failure> {
    let session = crate::airbyte::open_session(config, out)?;
    let kinesis = Arc::new(session.kinesis);
    let plan = plan_targets(config, catalog)?;
    let outbox = set_up(config, catalog, &plan, &kinesis, out)?;
    let mut writer = Writer {
        config,
        catalog,
        out,
        index: catalog.index(),
        target_of: plan.target_of,
        envelopes: plan.envelopes,
        checkpoints: Checkpoints::new(catalog.streams.len()),
        ids: UuidPool::new(),
        keys: KeyPicker::new(config.partition_key.clone()),
        id_buf: String::new(),
        key_buf: String::new(),
        record_buf: Vec::new(),
        totals: Totals::default(),
        skipped: HashMap::new(),
        malformed_meta: HashMap::new(),
        unknown_types: HashSet::new(),
        progress: ProgressLog::new(config.progress_interval, Instant::now()),
        states_read_at: VecDeque::new(),
    };
    let settings = engine::Settings {
        framing: Framing {
            delimiter: b'\n',
            max_line: MAX_LINE_BYTES,
            skip_bom: true,
        },
        max_in_flight: config.sending.max_in_flight,
    };
    // Should a signal's grace period run out, the platform still gets a TRACE.
    let trace_to = out.clone();
    signals::last_words(Arc::new(move |why: &str| {
        Failure::new(Kind::Transient, why).emit(&trace_to)
    }));
    let (report, result) = engine::run(kinesis, outbox, &settings, input, &mut writer);
    writer.log_totals(&report);
    result?;
    // Every batch came back accepted, so every state must have been echoed;
    // one that was not means records went missing inside this program.
    let unconfirmed = writer.checkpoints.pending_states();
    if unconfirmed > 0 {
        return Err(Failure::new(
            Kind::System,
            format!("internal error: {unconfirmed} states were never confirmed, so they were not echoed; run again from the last echoed state"),
        ));
    }
    Ok(writer.totals)
}

/// Sets up every target stream (created when missing and allowed, its
/// limits and shards read), says what the sync will do in LOG lines, and
/// gives the outbox for the targets.
fn set_up(
    config: &Config,
    catalog: &Catalog,
    plan: &Plan,
    kinesis: &Kinesis,
    out: &Emitter,
) -> Result<Outbox, Failure> {
    for note in catalog
        .streams
        .iter()
        .filter_map(|s| s.sync_mode_caveat())
        .chain(plan.collisions.iter().cloned())
    {
        out.log("WARN", &note)?;
    }
    let creation = Creation {
        allowed: config.create_streams,
        shape: config.new_streams,
        when_missing: " and `createStreams` is false: create it, or set `createStreams` to true",
        list_shards: config.sending.by_shard(),
    };
    let names: Vec<&StreamRef> = plan.names.iter().collect();
    let ready = ensure_streams(kinesis, &names, creation, config.sending.retry_timeout)?;
    let (endpoint, region) = (kinesis.http().endpoint(), kinesis.http().region());
    out.log(
        "INFO",
        &start_message(catalog, plan, &ready, endpoint, region),
    )?;
    if let Some(note) = unlisted_shards_note(plan.names.iter().map(StreamRef::wire).zip(&ready)) {
        out.log("WARN", &note)?;
    }
    let specs = plan
        .names
        .iter()
        .zip(&ready)
        .map(|(name, r)| TargetSpec::of(name.wire(), r))
        .collect();
    let keys_repeat = config.partition_key != PartitionKeySource::Uuid;
    Ok(Outbox::new(
        specs,
        Settings::new(&config.sending, keys_repeat),
    ))
}

/// Where the catalog's streams go.
struct Plan {
    /// Each Kinesis stream, once, in catalog order.
    names: Vec<StreamRef>,
    /// Catalog stream to target.
    target_of: Vec<TargetId>,
    /// Each target's record wrapping.
    envelopes: Vec<Envelope>,
    /// Warnings for streams the naming rule merged by accident.
    collisions: Vec<String>,
}

/// Names each catalog stream's Kinesis stream and notes which share one.
fn plan_targets(config: &Config, catalog: &Catalog) -> Result<Plan, Failure> {
    let naming = config.stream_name.as_ref();
    let merging_is_meant = naming.is_some_and(StreamNaming::merges_on_purpose);
    let mut plan = Plan {
        names: Vec::new(),
        target_of: Vec::with_capacity(catalog.streams.len()),
        envelopes: Vec::new(),
        collisions: Vec::new(),
    };
    let mut by_name: HashMap<StreamRef, (TargetId, usize)> = HashMap::new();
    for (i, s) in catalog.streams.iter().enumerate() {
        let name = target_stream(naming, s.namespace.as_deref(), &s.name).map_err(|why| {
            Failure::new(Kind::Config, why).for_stream(s.namespace.as_deref(), &s.name)
        })?;
        let target = match by_name.get(&name) {
            Some(&(t, first)) => {
                // More than one Airbyte stream lands here: say which each record is.
                plan.envelopes[t.0].with_stream = true;
                if !merging_is_meant {
                    plan.collisions.push(format!(
                        "catalog streams `{}` and `{}` both go to Kinesis stream {name}, so their records are mixed there \
                         (each carries `_airbyte_stream` and `_airbyte_namespace`); to keep them apart, set `streamName` to a \
                         template that tells them apart, such as `{{namespace}}.{{stream}}`, which keeps dashes and dots \
                         (Kinesis names take only A-Z, a-z, 0-9, `_`, `.` and `-`)",
                        catalog.streams[first].display_name(),
                        s.display_name()
                    ));
                }
                t
            }
            None => {
                let t = TargetId(plan.names.len());
                plan.envelopes.push(Envelope {
                    format: config.record_format,
                    data: config.data_format,
                    with_stream: false,
                });
                by_name.insert(name.clone(), (t, i));
                plan.names.push(name);
                t
            }
        };
        plan.target_of.push(target);
    }
    Ok(plan)
}

/// The start LOG: where each stream goes, and which streams were created.
fn start_message(
    catalog: &Catalog,
    plan: &Plan,
    ready: &[crate::kinesis::setup::Ready],
    endpoint: &str,
    region: &str,
) -> String {
    let mut mapping: Vec<String> = catalog
        .streams
        .iter()
        .zip(&plan.target_of)
        .take(MAPPINGS_SHOWN)
        .map(|(s, t)| format!("{} -> {}", s.display_name(), plan.names[t.0].wire()))
        .collect();
    if catalog.streams.len() > MAPPINGS_SHOWN {
        mapping.push(format!(
            "and {} more streams",
            catalog.streams.len() - MAPPINGS_SHOWN
        ));
    }
    let created: Vec<&str> = plan
        .names
        .iter()
        .zip(ready)
        .filter(|(_, r)| r.created)
        .map(|(name, _)| name.wire())
        .take(MAPPINGS_SHOWN)
        .collect();
    let mut text = format!(
        "writing to Kinesis at {endpoint} ({region}): {}",
        mapping.join(", ")
    );
    if !created.is_empty() {
        text.push_str(&format!("; created {}", created.join(", ")));
    }
    text
}

/// Whether a line holds nothing but whitespace (JSON's, and the other ASCII
/// blanks: vertical tab and form feed), which is skipped.
fn is_blank(line: &[u8]) -> bool {
    line.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0B | 0x0C))
}

/// What a line over the limit most likely was, from its start.
fn line_kind(prefix: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(prefix);
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.starts_with("{\"type\":\"STATE\"") {
        Some("STATE")
    } else if compact.starts_with("{\"type\":\"RECORD\"") {
        Some("RECORD")
    } else {
        None
    }
}

impl Adapter for Writer<'_> {
    fn line(&mut self, input: InputLine<'_>, outbox: &mut Outbox) -> Result<(), Failure> {
        let (line, line_no) = (input.bytes, input.number);
        if is_blank(line) {
            return Ok(());
        }
        let message = parse_line(line)
            .map_err(|e| Failure::new(Kind::System, format!("input line {line_no} {e}")))?;
        match message {
            Message::Record(r) => self.record(&r, input, outbox),
            Message::State(s) => {
                let stream = match &s.scope {
                    StateScope::Stream { namespace, name } => {
                        self.index.find(namespace.as_deref(), name)
                    }
                    _ => None,
                };
                self.checkpoints.add_state(&s, stream, outbox.next_record());
                self.states_read_at.push_back(Instant::now());
                self.settle(outbox)
            }
            Message::Ignored => Ok(()),
            Message::Unknown(kind) => {
                if self.unknown_types.insert(kind.clone()) {
                    self.out.log(
                        "WARN",
                        &format!(
                            "ignoring message type `{kind}` first seen on input line {line_no}"
                        ),
                    )?;
                }
                Ok(())
            }
        }
    }

    fn too_long(&self, line_no: u64, limit: usize, head: &[u8]) -> Failure {
        let mib = limit / (1024 * 1024);
        let why = match line_kind(head) {
            Some("STATE") => format!(
                "a STATE longer than {mib} MiB, the most this destination takes for a state"
            ),
            Some(_) => format!(
                "a RECORD longer than {mib} MiB, which cannot fit in a Kinesis record (10 MiB at most)"
            ),
            None => format!(
                "longer than {mib} MiB: a STATE may be up to that long, and no RECORD that long fits in a Kinesis record (10 MiB at most)"
            ),
        };
        Failure::new(
            Kind::System,
            format!("input line {line_no} is {why}; it was not read, nor anything after it"),
        )
    }

    fn stopped_by(&self, signal: &str) -> Failure {
        Failure::new(
            Kind::Transient,
            format!("sync cancelled by {signal}: sent what was buffered and echoed the states it covered"),
        )
    }

    fn accepted(&mut self, records: u64) {
        self.totals.accepted += records;
    }

    fn settle(&mut self, outbox: &Outbox) -> Result<(), Failure> {
        for state in self.checkpoints.take_ready(outbox.lowest_unaccepted()) {
            self.states_read_at.pop_front();
            self.out.emit(&state)?;
        }
        self.log_progress(&outbox.sent())?;
        // A notice from another thread may have found stdout broken.
        match self.out.broken() {
            Some(e) => Err(e.clone().into()),
            None => Ok(()),
        }
    }
}

impl Writer<'_> {
    /// Wraps one RECORD and adds it to its stream's batch.
    fn record(
        &mut self,
        r: &Record<'_>,
        input: InputLine<'_>,
        outbox: &mut Outbox,
    ) -> Result<(), Failure> {
        let line_no = input.number;
        let namespace = r.namespace.as_deref();
        let Some(stream) = self.index.find(namespace, &r.stream) else {
            let shown =
                namespace.map_or_else(|| r.stream.to_string(), |ns| format!("{ns}.{}", r.stream));
            return Err(Failure::new(
                Kind::System,
                format!("input line {line_no} is a RECORD of stream `{shown}`, which is not in the catalog"),
            )
            .for_stream(namespace, &r.stream));
        };
        if let Some(problem) = r.malformed_meta {
            self.malformed_meta(stream, line_no, problem)?;
        }
        let target = self.target_of[stream];
        let catalog_stream = &self.catalog.streams[stream];
        self.ids.next_into(&mut self.id_buf);
        // The partition key goes into `key_buf`: from the data, else the record's ID.
        if !self
            .keys
            .pick(r.data, &catalog_stream.primary_key, &mut self.key_buf)
        {
            if self.keys.reads_the_data() {
                self.totals.random_keys += 1;
            }
            self.key_buf.push_str(&self.id_buf);
        }
        let envelope = self.envelopes[target.0];
        self.record_buf.clear();
        envelope.encode(
            &mut self.record_buf,
            &Fields {
                id: &self.id_buf,
                received_at: input.read_at,
                emitted_at: r.emitted_at,
                data: r.data,
                changes: r.changes,
                namespace,
                stream: &r.stream,
                generation_id: catalog_stream.generation_id,
                sync_id: catalog_stream.sync_id,
            },
        );
        self.totals.records += 1;
        self.totals.data_bytes += r.data.get().len() as u64;
        if let Err(o) = outbox.check_size(target, self.record_buf.len(), &self.key_buf) {
            return self.oversize(stream, target, line_no, o, outbox);
        }
        outbox.add(target, &self.record_buf, &self.key_buf, None);
        self.checkpoints.count_record(stream);
        Ok(())
    }

    /// The progress lines, when they are due.
    fn log_progress(&mut self, sent: &Sent) -> Result<(), Failure> {
        let tally = Tally {
            records: self.totals.records,
            data_bytes: self.totals.data_bytes,
            accepted: self.totals.accepted,
            accepted_bytes: sent.accepted_bytes,
            throttled: sent.throttled_entries,
            retried: sent.retried_entries,
            states_echoed: self.checkpoints.echoed_states(),
        };
        let now = Instant::now();
        let waiting = Waiting {
            states: self.checkpoints.pending_states() as u64,
            oldest: self.states_read_at.front().map(|at| now - *at),
        };
        if let Some(line) = self.progress.due(now, tally, waiting) {
            self.out.log("INFO", &line.text)?;
            self.out
                .log("DEBUG", &format!("{PROGRESS_PREFIX}{}", line.figures))?;
        }
        Ok(())
    }

    /// A record whose `meta` is malformed: written all the same, without the
    /// changes `meta` should list; told at the first of its stream, counted.
    fn malformed_meta(
        &mut self,
        stream: usize,
        line_no: u64,
        problem: MalformedMeta,
    ) -> Result<(), Failure> {
        let seen = self.malformed_meta.entry(stream).or_insert((0, line_no));
        seen.0 += 1;
        if seen.0 > 1 {
            return Ok(());
        }
        let written = match self.config.record_format {
            RecordFormat::V2 => "with an empty `_airbyte_meta.changes`",
            RecordFormat::Legacy => "as usual (the legacy record format carries no meta)",
        };
        self.out.log(
            "WARN",
            &format!(
                "input line {line_no}: the RECORD of stream `{}` has a malformed meta: {problem}; the record is \
                 written {written}. Later records of this stream with a malformed meta are written the same way \
                 and counted at the end",
                self.catalog.streams[stream].display_name()
            ),
        )?;
        Ok(())
    }

    /// A record too large for its stream: fails the sync, or is skipped and counted.
    fn oversize(
        &mut self,
        stream: usize,
        target: TargetId,
        line_no: u64,
        o: Oversize,
        outbox: &Outbox,
    ) -> Result<(), Failure> {
        let s = &self.catalog.streams[stream];
        // Told for a failure and a stream's first skip only, not per skipped record.
        let what = || {
            format!(
                "input line {line_no}: a record of stream `{}` is {} bytes as a Kinesis record, over the {}-byte limit of Kinesis stream {}",
                s.display_name(),
                o.size,
                o.limit,
                StreamRef::from_wire(outbox.stream(target))
            )
        };
        if self.config.oversize == OversizePolicy::Fail {
            return Err(Failure::new(
                Kind::System,
                format!(
                    "{}; it was not sent. Set `oversizeRecords` to `skip` to skip such records \
                     (they are counted), or raise the stream's maximum record size (UpdateMaxRecordSize, up to 10240 KiB)",
                    what()
                ),
            )
            .for_stream(s.namespace.as_deref(), &s.name));
        }
        self.totals.skipped += 1;
        self.checkpoints.count_rejected(stream);
        match self.skipped.get_mut(&stream) {
            Some(seen) => seen.count += 1,
            None => {
                self.skipped.insert(
                    stream,
                    Skipped {
                        count: 1,
                        first_line: line_no,
                        kinesis_stream: outbox.stream(target).to_string(),
                        limit: o.limit,
                    },
                );
                self.out.log(
                    "WARN",
                    &format!(
                        "{}; skipped, as `oversizeRecords` is `skip`. How many records of this stream are \
                         skipped for size is told at the end; the states that cover them count them in rejectedRecordCount",
                        what()
                    ),
                )?;
            }
        }
        Ok(())
    }

    /// The final LOG for people, and its figures as JSON for programs.
    /// The end of a write: how many records each stream skipped for size,
    /// the final LOG for people, and its figures as JSON for programs. The
    /// run's outcome is decided already: a broken stdout is reported by it.
    fn log_totals(&self, report: &Report) {
        let skipped = self.skipped_by_stream();
        for (stream, s) in &skipped {
            // The first skip was told as it happened; now how many there were.
            let _ = self.out.log(
                "WARN",
                &format!(
                    "skipped {} of stream `{}` over the {}-byte limit of Kinesis stream `{}`, the first on input line {}; \
                     the states that cover them count them in rejectedRecordCount",
                    count(s.count, "record", "records"),
                    self.catalog.streams[*stream].display_name(),
                    s.limit,
                    s.kinesis_stream,
                    s.first_line
                ),
            );
        }
        let mut malformed: Vec<(&usize, &(u64, u64))> = self.malformed_meta.iter().collect();
        malformed.sort_unstable();
        for (stream, (n, first_line)) in malformed {
            let _ = self.out.log(
                "WARN",
                &format!(
                    "{} of stream `{}` had a malformed meta, the first on input line {first_line}; \
                     {} written without the changes a meta lists",
                    count(*n, "record", "records"),
                    self.catalog.streams[*stream].display_name(),
                    if *n == 1 { "it was" } else { "they were" },
                ),
            );
        }
        let _ = self.out.log("INFO", &self.summary(report, &skipped));
        let _ = self.out.log(
            "DEBUG",
            &format!("{FIGURES_PREFIX}{}", self.figures(report)),
        );
    }

    /// The streams that skipped records for size, in catalog order.
    fn skipped_by_stream(&self) -> Vec<(usize, &Skipped)> {
        let mut per_stream: Vec<(usize, &Skipped)> = self
            .skipped
            .iter()
            .map(|(&stream, s)| (stream, s))
            .collect();
        per_stream.sort_by_key(|(stream, _)| *stream);
        per_stream
    }

    /// The final LOG's sentence.
    fn summary(&self, report: &Report, skipped: &[(usize, &Skipped)]) -> String {
        let t = &self.totals;
        let sent = &report.sent;
        let mut text = format!(
            "read {} ({} of data); Kinesis accepted {} ({}) in {}; \
             {} retried ({} throttled), {} from lost answers; \
             echoed {}, {} held back; {:.3} s",
            count(t.records, "record", "records"),
            count(t.data_bytes, "byte", "bytes"),
            count(t.accepted, "record", "records"),
            count(report.sent.accepted_bytes, "byte", "bytes"),
            count(sent.requests, "PutRecords call", "PutRecords calls"),
            count(sent.retried_entries, "entry", "entries"),
            sent.throttled_entries,
            count(
                sent.possible_duplicates,
                "possible duplicate",
                "possible duplicates"
            ),
            count(self.checkpoints.echoed_states(), "state", "states"),
            self.checkpoints.pending_states(),
            report.elapsed.as_secs_f64()
        );
        if self.config.partition_key != PartitionKeySource::Uuid {
            text.push_str(&format!(
                "; {} had no partition key value and got a random key",
                count(t.random_keys, "record", "records")
            ));
        }
        if !skipped.is_empty() {
            let list: Vec<String> = skipped
                .iter()
                .map(|(stream, s)| {
                    format!(
                        "{} from `{}` (first on line {})",
                        s.count,
                        self.catalog.streams[*stream].display_name(),
                        s.first_line
                    )
                })
                .collect();
            text.push_str(&format!(
                "; skipped {} too large for their stream: {}",
                count(t.skipped, "record", "records"),
                list.join(", ")
            ));
        }
        if report.pacing.waited > 0 || report.pacing.requeued > 0 {
            text.push_str(&format!(
                "; {} waited for their shard's allowance, {} went back to it after throttling",
                count(report.pacing.waited, "record", "records"),
                report.pacing.requeued
            ));
        }
        text.push_str(report.no_input_note());
        text
    }

    /// The final figures, for programs.
    fn figures(&self, report: &Report) -> serde_json::Value {
        let t = &self.totals;
        let sent = &report.sent;
        json!({
            "records": t.records,
            "dataBytes": t.data_bytes,
            "accepted": t.accepted,
            "kinesisBytes": report.sent.accepted_bytes,
            "requests": sent.requests,
            "retriedEntries": sent.retried_entries,
            "throttledEntries": sent.throttled_entries,
            "possibleDuplicates": sent.possible_duplicates,
            "statesEchoed": self.checkpoints.echoed_states(),
            "statesHeldBack": self.checkpoints.pending_states(),
            "randomKeys": t.random_keys,
            "skippedRecords": t.skipped,
            "pacedRecords": report.pacing.waited,
            "requeuedRecords": report.pacing.requeued,
            "shardMapChanges": report.pacing.map_changes,
            "lines": report.lines,
            "seconds": report.elapsed.as_secs_f64(),
        })
    }
}

/// How the machine-readable final LOG starts; its JSON follows.
pub const FIGURES_PREFIX: &str = "figures: ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_are_alike() {
        for blank in [&b""[..], b"   ", b"\t", b"\x0b", b"\x0c", b" \r"] {
            assert!(is_blank(blank), "{blank:?}");
        }
        assert!(!is_blank(b" {}"));
    }

    #[test]
    fn tells_states_from_records_by_their_start() {
        assert_eq!(line_kind(br#"{"type":"STATE","state":{"#), Some("STATE"));
        assert_eq!(line_kind(br#" { "type" : "RECORD" , "#), Some("RECORD"));
        assert_eq!(line_kind(br#"{"record":{"#), None);
    }
}
