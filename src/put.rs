//! `put`, the line adapter of the engine: each stdin line becomes one
//! Kinesis record, batched, aggregated, retried and bounded as `write` sends
//! Airbyte records.

use crate::batch::{Batch, TargetId};
use crate::config::{Config, PartitionKeySource};
use crate::engine::{self, Adapter, Report};
use crate::failure::{Failure, EXIT_FAILURE};
use crate::ids::UuidPool;
use crate::input::Framing;
use crate::kinesis::NewStream;
use crate::naming::StreamRef;
use crate::outbox::{Outbox, Settings, TargetSpec};
use crate::partition::{KeyPicker, MAX_KEY_CHARS};
use crate::protocol::FailureType;
use crate::session::Session;
use crate::streams::{ensure_stream, Creation};
use serde_json::value::RawValue;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Where each record's partition key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A random UUID per record: records spread over every shard.
    Random,
    /// A JSON Pointer into each line; lines without it get a random key.
    Field(String),
    /// The same key for every record: all on one shard.
    Fixed(String),
}

impl KeySource {
    /// Checks a pointer or fixed key given on the command line.
    pub fn validate(&self) -> Result<(), Failure> {
        match self {
            KeySource::Random => Ok(()),
            KeySource::Field(p) if p.starts_with('/') => Ok(()),
            KeySource::Field(p) => Err(Failure::usage(format!(
                "--partition-key-field must be a JSON Pointer such as /customer/id, got `{p}`"
            ))),
            KeySource::Fixed(k) if !k.is_empty() && k.chars().count() <= MAX_KEY_CHARS => Ok(()),
            KeySource::Fixed(k) => Err(Failure::usage(format!(
                "--partition-key must be 1 to {MAX_KEY_CHARS} characters, got {}",
                k.chars().count()
            ))),
        }
    }
}

/// What `put` was asked to do.
#[derive(Debug, Clone)]
pub struct PutOptions {
    /// The Kinesis stream.
    pub stream: StreamRef,
    /// Partition keys.
    pub keys: KeySource,
    /// Whether a missing stream is created.
    pub create: bool,
    /// Whether to redraw a progress line on stderr.
    pub progress: bool,
}

/// What a `put` did.
#[derive(Debug, Default, Clone, Copy)]
pub struct PutSummary {
    /// Non-empty lines read.
    pub lines: u64,
    /// Of those, records Kinesis accepted.
    pub accepted: u64,
    /// Bytes of those lines.
    pub bytes: u64,
    /// Empty lines skipped.
    pub empty: u64,
    /// Lines without the partition key field, given a random key.
    pub random_keys: u64,
}

/// The line adapter's state during a `put`.
struct Putter<'a> {
    options: &'a PutOptions,
    target: TargetId,
    ids: UuidPool,
    picker: KeyPicker,
    key_buf: String,
    summary: PutSummary,
    started: Instant,
    last_progress: Instant,
}

/// Runs `put`: makes sure the stream is there, then sends every line of `input`.
/// Prints the summary on stderr; Ok only when every line was accepted.
pub fn run(
    config: &Config,
    options: &PutOptions,
    input: impl Read + Send + 'static,
) -> Result<PutSummary, Failure> {
    options.keys.validate()?;
    let stream = &options.stream;
    let kinesis = Arc::new(Session::open_for_pipeline(config, Some(stream))?.kinesis);
    let creation = Creation {
        allowed: options.create,
        shape: NewStream {
            mode: config.stream_mode,
            shards: config.shard_count,
            max_record_size_kib: config.max_record_size_kib,
        },
        when_missing: ": create it, or pass --create (and --shards N)",
    };
    // A missing stream is a failed run here, not a configuration error.
    let ready = ensure_stream(&kinesis, stream, creation, config.retry_timeout)
        .map_err(|f| f.with_exit_code(EXIT_FAILURE))?;
    if ready.created {
        eprintln!(
            "destination-kinesis: created Kinesis stream {stream} ({} shards)",
            config.shard_count
        );
    }
    let target = TargetSpec {
        stream: stream.wire().to_string(),
        limits: ready.limits,
    };
    let mut settings = Settings::from_config(config);
    settings.keys_repeat = !matches!(options.keys, KeySource::Random);
    let outbox = Outbox::new(vec![target], settings);
    let now = Instant::now();
    let mut putter = Putter {
        options,
        target: TargetId(0),
        ids: UuidPool::new(),
        picker: KeyPicker::new(match &options.keys {
            KeySource::Field(pointer) => PartitionKeySource::Pointer(pointer.clone()),
            _ => PartitionKeySource::Uuid,
        }),
        key_buf: String::new(),
        summary: PutSummary::default(),
        started: now,
        last_progress: now,
    };
    let settings = engine::Settings {
        framing: Framing {
            delimiter: b'\n',
            // A line is a record: it may be as long as the stream's records.
            max_line: ready.limits.record,
            skip_bom: false,
        },
        max_in_flight: config.max_in_flight,
        retry_timeout: config.retry_timeout,
    };
    let (report, result) = engine::run(kinesis, outbox, &settings, input, &mut putter);
    putter.print_summary(&report);
    result.map(|()| putter.summary)
}

impl Adapter for Putter<'_> {
    fn line(&mut self, line: &[u8], line_no: u64, outbox: &mut Outbox) -> Result<(), Failure> {
        if line.is_empty() {
            self.summary.empty += 1;
            return Ok(());
        }
        self.pick_key(line);
        if let Err(o) = outbox.check_size(self.target, line.len(), &self.key_buf) {
            return Err(Failure::new(
                FailureType::System,
                format!(
                    "input line {line_no} is {} bytes; with its {}-byte partition key that is over the {}-byte \
                     record limit of Kinesis stream {}; it was not sent, nor anything after it",
                    line.len(),
                    self.key_buf.len(),
                    o.limit,
                    self.options.stream
                ),
            ));
        }
        outbox.add(self.target, line, &self.key_buf, None);
        self.summary.lines += 1;
        self.summary.bytes += line.len() as u64;
        Ok(())
    }

    fn too_long(&self, line_no: u64, limit: usize, _head: &[u8]) -> Failure {
        Failure::new(
            FailureType::System,
            format!(
                "input line {line_no} is longer than {limit} bytes, the most a record of Kinesis stream {} holds; \
                 it was not sent, nor anything after it",
                self.options.stream
            ),
        )
    }

    fn stopped_by(&self, signal: &str) -> Failure {
        Failure::new(
            FailureType::Transient,
            format!("interrupted by {signal}: the lines read before it were sent"),
        )
    }

    fn accepted(&mut self, _batch: &Batch, records: u64) {
        self.summary.accepted += records;
    }

    fn settle(&mut self, _outbox: &Outbox) -> Result<(), Failure> {
        self.show_progress();
        Ok(())
    }
}

impl Putter<'_> {
    /// The line's partition key into `key_buf`.
    fn pick_key(&mut self, line: &[u8]) {
        match &self.options.keys {
            KeySource::Fixed(k) => {
                self.key_buf.clear();
                self.key_buf.push_str(k);
            }
            KeySource::Field(_) => {
                let found = serde_json::from_slice::<&RawValue>(line)
                    .is_ok_and(|v| self.picker.pick(v, &[], &mut self.key_buf));
                if !found {
                    self.summary.random_keys += 1;
                    self.ids.next_into(&mut self.key_buf);
                }
            }
            KeySource::Random => self.ids.next_into(&mut self.key_buf),
        }
    }

    fn show_progress(&mut self) {
        if !self.options.progress || self.last_progress.elapsed() < PROGRESS_EVERY {
            return;
        }
        self.last_progress = Instant::now();
        let s = &self.summary;
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[K{} records sent, {} MB, {:.0} records/s",
            s.accepted,
            megabytes(s.bytes),
            s.accepted as f64 / secs
        );
        let _ = err.flush();
    }

    fn print_summary(&self, report: &Report) {
        let s = &self.summary;
        let sent = &report.sent;
        let secs = report.elapsed.as_secs_f64();
        let mut text = format!(
            "put {} of {} lines into Kinesis stream {} ({} MB) in {} PutRecords calls, {secs:.1} s ({:.0} records/s)",
            s.accepted,
            s.lines,
            self.options.stream,
            megabytes(s.bytes),
            sent.requests,
            s.accepted as f64 / secs.max(0.001),
        );
        if s.empty > 0 {
            text.push_str(&format!("; skipped {} empty lines", s.empty));
        }
        if s.random_keys > 0 {
            text.push_str(&format!(
                "; {} lines had no partition key field and got a random key",
                s.random_keys
            ));
        }
        if sent.retried_entries > 0 {
            text.push_str(&format!(
                "; {} entries retried ({} throttled)",
                sent.retried_entries, sent.throttled_entries
            ));
        }
        if sent.possible_duplicates > 0 {
            text.push_str(&format!(
                "; {} records may have been stored twice (an answer was lost)",
                sent.possible_duplicates
            ));
        }
        if !report.read_anything {
            text.push_str("; no input was read (standard input was empty or closed)");
        }
        let clear = if self.options.progress {
            "\r\x1b[K"
        } else {
            ""
        };
        eprintln!("{clear}destination-kinesis: {text}");
    }
}

/// Whole megabytes with one decimal, for the progress line and summary.
fn megabytes(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sources_are_checked() {
        assert!(KeySource::Random.validate().is_ok());
        assert!(KeySource::Field("/a/b".into()).validate().is_ok());
        let e = KeySource::Field("a.b".into()).validate().unwrap_err();
        assert!(e.message.contains("JSON Pointer"));
        assert_eq!(e.exit_code, crate::failure::EXIT_CONFIG);
        assert!(KeySource::Fixed("k".into()).validate().is_ok());
        assert!(KeySource::Fixed("é".repeat(256)).validate().is_ok());
        assert!(KeySource::Fixed("é".repeat(257)).validate().is_err());
        assert!(KeySource::Fixed(String::new()).validate().is_err());
    }
}
