//! `read`: every record of a stream on stdout, one a line, from every shard
//! (parents before their children), oldest first per shard, within the
//! GetRecords limits; KPL aggregates are unpacked.

use crate::aggregate::{deaggregate, is_aggregated};
use crate::config::Config;
use crate::failure::Failure;
use crate::kinesis::{Kinesis, KinesisError, ReadRecord, Shard, StartPosition};
use crate::protocol::FailureType;
use crate::retry::Backoff;
use crate::session::Session;
use aws_smithy_types::date_time::{DateTime, Format};
use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::time::{Duration, Instant};

/// Kinesis allows 5 GetRecords calls a second per shard.
const MIN_CALL_INTERVAL: Duration = Duration::from_millis(200);
/// Wait after an empty page or a throughput refusal before asking that shard again.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How often `--follow` lists shards again to find new ones.
const RELIST_EVERY: Duration = Duration::from_secs(10);
/// Most records one GetRecords call returns.
const MAX_PAGE: u64 = 10_000;

/// How records are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// The record's bytes, then a newline.
    Text,
    /// One JSON object a record, with its metadata.
    Json,
}

/// What `read` was asked to do.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The Kinesis stream.
    pub stream: String,
    /// Where to start in every shard.
    pub from: StartPosition,
    /// Stop after this many records.
    pub limit: Option<u64>,
    /// Keep polling for new records and new shards.
    pub follow: bool,
    /// How records are printed.
    pub format: OutputFormat,
}

/// What a `read` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadSummary {
    /// Records printed (user records, once aggregates are unpacked).
    pub records: u64,
    /// Shards read.
    pub shards: u64,
    /// Whether stdout was closed before the end (`| head`).
    pub stdout_closed: bool,
}

/// Parses `--from`: `trim-horizon`, `latest` or an RFC 3339 time.
pub fn parse_from(value: &str) -> Result<StartPosition, String> {
    match value {
        "trim-horizon" | "TRIM_HORIZON" => Ok(StartPosition::TrimHorizon),
        "latest" | "LATEST" => Ok(StartPosition::Latest),
        other => DateTime::from_str(other, Format::DateTimeWithOffset)
            .map(|t| StartPosition::AtTimestamp(t.as_secs_f64()))
            .map_err(|e| {
                format!(
                    "`{other}` is not trim-horizon, latest or an RFC 3339 time such as 2024-05-01T12:00:00Z ({e})"
                )
            }),
    }
}

/// Parses `--format`: `text` or `json`.
pub fn parse_format(value: &str) -> Result<OutputFormat, String> {
    match value {
        "text" => Ok(OutputFormat::Text),
        "json" => Ok(OutputFormat::Json),
        other => Err(format!("`{other}` is not text or json")),
    }
}

/// Where one shard's reading stands.
enum Progress {
    /// Waiting for its parents to be read.
    Waiting,
    /// Being read.
    Reading {
        /// The iterator for the next call; None when one must be asked for.
        iterator: Option<String>,
        /// Not before this time.
        next_at: Instant,
        /// Set while calls fail and are retried.
        backoff: Option<Backoff>,
    },
    /// Read to its end (or its tip, without `--follow`).
    Done,
}

struct ShardRead {
    shard: Shard,
    progress: Progress,
    /// Where reading starts when no record was read yet.
    start: StartPosition,
    /// The last record's sequence number, to resume after an expired iterator.
    last_sequence: Option<String>,
}

/// The running state of one `read`.
struct Reader<'a, W: Write> {
    kinesis: &'a Kinesis,
    config: &'a Config,
    options: &'a ReadOptions,
    out: W,
    /// In ListShards order.
    shards: Vec<ShardRead>,
    index: HashMap<String, usize>,
    summary: ReadSummary,
    warned_bad_aggregate: bool,
    listed_at: Instant,
    line: Vec<u8>,
}

/// Runs `read`, writing records to `out`.
pub fn run(
    config: &Config,
    options: &ReadOptions,
    out: impl Write,
) -> Result<ReadSummary, Failure> {
    let kinesis = Session::open_for_pipeline(config)?.kinesis;
    let stream = options.stream.as_str();
    let shards = crate::retry::first_contact(|| kinesis.list_shards(stream))
        .map_err(|e| read_failure(&e, stream))?;
    let mut reader = Reader {
        kinesis: &kinesis,
        config,
        options,
        out,
        shards: Vec::new(),
        index: HashMap::new(),
        summary: ReadSummary::default(),
        warned_bad_aggregate: false,
        listed_at: Instant::now(),
        line: Vec::new(),
    };
    reader.add_shards(shards, true);
    reader.read_all()?;
    Ok(reader.summary)
}

fn read_failure(e: &KinesisError, stream: &str) -> Failure {
    if e.is_not_found() {
        return Failure::new(
            FailureType::Config,
            format!("Kinesis stream `{stream}` does not exist ({e})"),
        )
        .with_exit_code(crate::failure::EXIT_FAILURE);
    }
    Failure::from_kinesis(&format!("cannot read Kinesis stream `{stream}`"), e)
}

impl<W: Write> Reader<'_, W> {
    /// Adds shards not seen before; `initial` for the first listing.
    fn add_shards(&mut self, listed: Vec<Shard>, initial: bool) {
        for shard in listed {
            if let Some(&j) = self.index.get(&shard.shard_id) {
                // Keeps what is known of it current: it may have been closed since.
                self.shards[j].shard = shard;
                continue;
            }
            let start = match &self.options.from {
                // Everything in a shard that appeared later is newer than the start.
                StartPosition::Latest if !initial => StartPosition::TrimHorizon,
                other => other.clone(),
            };
            // From `latest`, a shard closed before the start has nothing to give.
            let progress = if initial && start == StartPosition::Latest && shard.is_closed() {
                Progress::Done
            } else {
                Progress::Waiting
            };
            self.index.insert(shard.shard_id.clone(), self.shards.len());
            self.shards.push(ShardRead {
                shard,
                progress,
                start,
                last_sequence: None,
            });
        }
        self.start_ready();
    }

    /// Starts reading every waiting shard whose parents are done (or gone).
    fn start_ready(&mut self) {
        let now = Instant::now();
        for i in 0..self.shards.len() {
            if !matches!(self.shards[i].progress, Progress::Waiting) {
                continue;
            }
            let parents_done = self.shards[i].shard.parents().all(|p| {
                self.index
                    .get(p)
                    .is_none_or(|&j| matches!(self.shards[j].progress, Progress::Done))
            });
            if parents_done {
                self.shards[i].progress = Progress::Reading {
                    iterator: None,
                    next_at: now,
                    backoff: None,
                };
                self.summary.shards += 1;
            }
        }
    }

    /// Lists shards again to find new ones; a passing error only delays that.
    fn relist(&mut self) -> Result<(), Failure> {
        let stream = self.options.stream.as_str();
        self.listed_at = Instant::now();
        match self.kinesis.list_shards(stream) {
            Ok(listed) => self.add_shards(listed, false),
            Err(e) if e.is_retryable() => {}
            Err(e) => return Err(read_failure(&e, stream)),
        }
        Ok(())
    }

    fn limit_reached(&self) -> bool {
        self.options
            .limit
            .is_some_and(|limit| self.summary.records >= limit)
    }

    /// Polls shards until each is done (or forever with `--follow`).
    fn read_all(&mut self) -> Result<(), Failure> {
        loop {
            if self.limit_reached() || self.summary.stdout_closed {
                return Ok(());
            }
            if self.options.follow && self.listed_at.elapsed() >= RELIST_EVERY {
                self.relist()?;
            }
            let next = self
                .shards
                .iter()
                .enumerate()
                .filter_map(|(i, s)| match &s.progress {
                    Progress::Reading { next_at, .. } => Some((*next_at, i)),
                    _ => None,
                })
                .min();
            let Some((next_at, i)) = next else {
                if !self.options.follow {
                    return Ok(());
                }
                std::thread::sleep(IDLE_POLL);
                self.relist()?;
                continue;
            };
            let now = Instant::now();
            if next_at > now {
                std::thread::sleep(next_at - now);
            }
            self.poll(i)?;
        }
    }

    /// One call for shard `i`: an iterator or a page of records.
    fn poll(&mut self, i: usize) -> Result<(), Failure> {
        let stream = self.options.stream.as_str();
        let kinesis = self.kinesis;
        let s = &mut self.shards[i];
        let Progress::Reading { iterator, .. } = &s.progress else {
            return Ok(());
        };
        let iterator = match iterator {
            Some(it) => it.clone(),
            None => {
                let position = match &s.last_sequence {
                    Some(n) => StartPosition::AfterSequenceNumber(n.clone()),
                    None => s.start.clone(),
                };
                match kinesis.shard_iterator(stream, &s.shard.shard_id, &position) {
                    Ok(it) => it,
                    Err(e) => return self.retry_later(i, &e),
                }
            }
        };
        let remaining = self
            .options
            .limit
            .map_or(MAX_PAGE, |l| (l - self.summary.records).clamp(1, MAX_PAGE));
        let page = match kinesis.get_records(stream, &iterator, remaining as u32) {
            Ok(page) => page,
            Err(e) if e.code() == Some("ExpiredIteratorException") => {
                // Resume after the last record printed, with a fresh iterator.
                self.set_iterator(i, None);
                return Ok(());
            }
            Err(e) => {
                self.set_iterator(i, Some(iterator));
                return self.retry_later(i, &e);
            }
        };
        let empty = page.records.is_empty();
        for record in &page.records {
            self.print(i, record)?;
            if self.limit_reached() || self.summary.stdout_closed {
                break;
            }
        }
        if let Some(last) = page.records.last() {
            self.shards[i].last_sequence = Some(last.sequence_number.clone());
        }
        if let Err(e) = self.out.flush() {
            self.output_error(e)?;
        }
        let at_tip = empty && page.millis_behind_latest.unwrap_or(0) == 0;
        match page.next_iterator {
            None => {
                // A closed shard read to its end: its children may start.
                self.shards[i].progress = Progress::Done;
                if self.options.follow {
                    self.relist()?;
                } else {
                    self.start_ready();
                }
            }
            Some(_) if at_tip && (!self.options.follow || self.shards[i].shard.is_closed()) => {
                self.shards[i].progress = Progress::Done;
                self.start_ready();
            }
            Some(next) => {
                let wait = if empty { IDLE_POLL } else { MIN_CALL_INTERVAL };
                self.set_reading(i, Some(next), Instant::now() + wait);
            }
        }
        Ok(())
    }

    /// Keeps the iterator for the next call, leaving the schedule and backoff as they are.
    fn set_iterator(&mut self, i: usize, next: Option<String>) {
        if let Progress::Reading { iterator, .. } = &mut self.shards[i].progress {
            *iterator = next;
        }
    }

    /// Schedules the next call after a successful one.
    fn set_reading(&mut self, i: usize, iterator: Option<String>, at: Instant) {
        self.shards[i].progress = Progress::Reading {
            iterator,
            next_at: at,
            backoff: None,
        };
    }

    /// Schedules shard `i` again after a failed call, or fails when the
    /// error cannot be cured or the retry budget is spent.
    fn retry_later(&mut self, i: usize, e: &KinesisError) -> Result<(), Failure> {
        let stream = self.options.stream.as_str();
        if !e.is_retryable() {
            return Err(read_failure(e, stream));
        }
        let retry_timeout = self.config.retry_timeout;
        let Progress::Reading {
            next_at, backoff, ..
        } = &mut self.shards[i].progress
        else {
            return Ok(());
        };
        let backoff = backoff.get_or_insert_with(|| Backoff::until(Instant::now() + retry_timeout));
        match backoff.next_delay() {
            Some(delay) => {
                *next_at = Instant::now() + delay.max(IDLE_POLL);
                Ok(())
            }
            None => Err(Failure::from_kinesis(
                &format!(
                    "gave up reading shard {} of Kinesis stream `{stream}` after retrying for {} s",
                    self.shards[i].shard.shard_id,
                    retry_timeout.as_secs()
                ),
                e,
            )),
        }
    }

    /// Prints one Kinesis record, unpacking a KPL aggregate.
    fn print(&mut self, i: usize, record: &ReadRecord) -> Result<(), Failure> {
        if is_aggregated(&record.data) {
            match deaggregate(&record.data) {
                Ok(users) => {
                    for (sub, user) in users.iter().enumerate() {
                        if self.limit_reached() || self.summary.stdout_closed {
                            break;
                        }
                        let meta = Meta {
                            partition_key: &user.partition_key,
                            explicit_hash_key: user.explicit_hash_key.as_deref(),
                            sub_sequence: Some(sub),
                        };
                        self.print_one(i, record, meta, &user.data)?;
                    }
                    return Ok(());
                }
                Err(e) => {
                    if !self.warned_bad_aggregate {
                        self.warned_bad_aggregate = true;
                        eprintln!(
                            "destination-kinesis: record {} starts like a KPL aggregate but cannot be unpacked ({e}); printing such records as they are",
                            record.sequence_number
                        );
                    }
                }
            }
        }
        let meta = Meta {
            partition_key: &record.partition_key,
            explicit_hash_key: None,
            sub_sequence: None,
        };
        self.print_one(i, record, meta, &record.data)
    }

    fn print_one(
        &mut self,
        i: usize,
        record: &ReadRecord,
        meta: Meta<'_>,
        data: &[u8],
    ) -> Result<(), Failure> {
        self.line.clear();
        match self.options.format {
            OutputFormat::Text => self.line.extend_from_slice(data),
            OutputFormat::Json => {
                let value = json_record(&self.shards[i].shard.shard_id, record, &meta, data);
                // Writing JSON into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut self.line, &value);
            }
        }
        self.line.push(b'\n');
        match self.out.write_all(&self.line) {
            Ok(()) => {
                self.summary.records += 1;
                Ok(())
            }
            Err(e) => self.output_error(e),
        }
    }

    /// A closed stdout ends the read quietly; any other write error fails it.
    fn output_error(&mut self, e: std::io::Error) -> Result<(), Failure> {
        if e.kind() == ErrorKind::BrokenPipe {
            self.summary.stdout_closed = true;
            return Ok(());
        }
        Err(Failure::new(
            FailureType::System,
            format!("cannot write to standard output: {e}"),
        ))
    }
}

/// A user record's own keys and place inside its Kinesis record.
struct Meta<'a> {
    partition_key: &'a str,
    explicit_hash_key: Option<&'a str>,
    sub_sequence: Option<usize>,
}

/// The `--format json` object for one record.
fn json_record(shard: &str, record: &ReadRecord, meta: &Meta<'_>, data: &[u8]) -> Value {
    let mut o = Map::new();
    o.insert("shard".into(), json!(shard));
    o.insert("sequenceNumber".into(), json!(record.sequence_number));
    if let Some(sub) = meta.sub_sequence {
        o.insert("subSequenceNumber".into(), json!(sub));
    }
    o.insert("partitionKey".into(), json!(meta.partition_key));
    if let Some(h) = meta.explicit_hash_key {
        o.insert("explicitHashKey".into(), json!(h));
    }
    if let Some(t) = record
        .arrival
        // Kinesis keeps milliseconds; rounding hides the float's binary noise.
        .and_then(|t| {
            DateTime::from_millis((t * 1000.0).round() as i64)
                .fmt(Format::DateTime)
                .ok()
        })
    {
        o.insert("arrivalTime".into(), json!(t));
    }
    match std::str::from_utf8(data) {
        Ok(text) => o.insert("data".into(), json!(text)),
        Err(_) => o.insert(
            "dataBase64".into(),
            json!(base64::engine::general_purpose::STANDARD.encode(data)),
        ),
    };
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_from() {
        assert_eq!(parse_from("trim-horizon"), Ok(StartPosition::TrimHorizon));
        assert_eq!(parse_from("latest"), Ok(StartPosition::Latest));
        assert_eq!(
            parse_from("2024-05-01T12:00:00Z"),
            Ok(StartPosition::AtTimestamp(1_714_564_800.0))
        );
        assert_eq!(
            parse_from("2024-05-01T14:00:00.5+02:00"),
            Ok(StartPosition::AtTimestamp(1_714_564_800.5))
        );
        for bad in ["yesterday", "2024-05-01", "2024-05-01 12:00:00Z", ""] {
            let e = parse_from(bad).unwrap_err();
            assert!(e.contains("RFC 3339"), "{bad}: {e}");
        }
        assert_eq!(parse_format("json"), Ok(OutputFormat::Json));
        assert!(parse_format("yaml").is_err());
    }

    fn record(data: &[u8]) -> ReadRecord {
        ReadRecord {
            data: data.to_vec(),
            partition_key: "pk".into(),
            sequence_number: "4960".into(),
            arrival: Some(1_714_564_800.25),
        }
    }

    #[test]
    fn json_records_carry_metadata() {
        let r = record(b"hello");
        let meta = Meta {
            partition_key: "pk",
            explicit_hash_key: None,
            sub_sequence: None,
        };
        let v = json_record("shardId-000000000001", &r, &meta, &r.data);
        assert_eq!(
            v,
            json!({"shard": "shardId-000000000001", "sequenceNumber": "4960", "partitionKey": "pk",
                   "arrivalTime": "2024-05-01T12:00:00.25Z", "data": "hello"})
        );
        let meta = Meta {
            partition_key: "user",
            explicit_hash_key: Some("42"),
            sub_sequence: Some(3),
        };
        let v = json_record("s", &r, &meta, &[0xFF, 0x00]);
        assert_eq!(v["dataBase64"], "/wA=");
        assert!(v.get("data").is_none());
        assert_eq!(v["subSequenceNumber"], 3);
        assert_eq!(v["explicitHashKey"], "42");
        assert_eq!(v["partitionKey"], "user");
    }
}
