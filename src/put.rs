//! `put`: each stdin line becomes one Kinesis record, batched, retried and
//! bounded exactly as `write` sends Airbyte records.

use crate::batch::{Batch, MAX_RECORD_BYTES};
use crate::config::{Config, PartitionKeySource};
use crate::delivery::{Dispatcher, Done, Sender, Sent};
use crate::failure::{Failure, EXIT_FAILURE};
use crate::ids::UuidPool;
use crate::input::{Cancel, Event, LineReader};
use crate::partition::{KeyPicker, MAX_KEY_CHARS};
use crate::protocol::FailureType;
use crate::session::Session;
use crate::streams::{ensure_stream, Creation, Readiness};
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
    pub stream: String,
    /// Partition keys.
    pub keys: KeySource,
    /// Whether a missing stream is created.
    pub create: bool,
    /// Longest a line waits in the buffer for others to share its call.
    pub linger: Duration,
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
    /// Request figures.
    pub sent: Sent,
}

/// Whole megabytes with one decimal, for the progress line and summary.
fn megabytes(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// The running state of one `put`.
struct Putter<'a> {
    config: &'a Config,
    options: &'a PutOptions,
    dispatcher: Dispatcher,
    open: Option<Batch>,
    /// When the open batch's first line was read.
    oldest: Option<Instant>,
    spare: Vec<Batch>,
    next_id: u64,
    ids: UuidPool,
    picker: KeyPicker,
    key_buf: String,
    summary: PutSummary,
    failed: Option<Failure>,
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
    if config.aggregation || config.keep_key_order {
        eprintln!(
            "destination-kinesis: put sends each line as its own Kinesis record and does not keep key order \
             through retries; the config's aggregation and keepKeyOrder apply to write only"
        );
    }
    let kinesis = Arc::new(Session::open_for_pipeline(config)?.kinesis);
    prepare(&kinesis, config, options)?;
    // Signals are caught only from here on: until a line is read nothing is
    // buffered, so the default action (exit at once) loses nothing.
    let cancel = Cancel::install();
    let dispatcher = Dispatcher::new(config.max_in_flight, || {
        Sender::new(
            Arc::clone(&kinesis),
            config.retry_timeout,
            Arc::clone(&cancel),
        )
    });
    let picker = KeyPicker::new(match &options.keys {
        KeySource::Field(pointer) => PartitionKeySource::Pointer(pointer.clone()),
        _ => PartitionKeySource::Uuid,
    });
    let now = Instant::now();
    let mut putter = Putter {
        config,
        options,
        dispatcher,
        open: None,
        oldest: None,
        spare: Vec::new(),
        next_id: 0,
        ids: UuidPool::new(),
        picker,
        key_buf: String::new(),
        summary: PutSummary::default(),
        failed: None,
        started: now,
        last_progress: now,
    };
    let mut lines = LineReader::spawn(input, MAX_RECORD_BYTES, cancel);
    let outcome = putter.read_all(&mut lines);
    // Whatever ended the input, what was read before it is still sent.
    putter.flush();
    let in_flight = putter.dispatcher.drain();
    putter.collect(in_flight);
    putter.print_summary();
    if let Some(f) = putter.failed.take() {
        return Err(f);
    }
    outcome.map(|()| putter.summary)
}

/// Makes sure the stream exists and is writable, creating it when allowed.
fn prepare(
    kinesis: &crate::kinesis::Kinesis,
    config: &Config,
    options: &PutOptions,
) -> Result<(), Failure> {
    let stream = options.stream.as_str();
    let creation = Creation {
        allowed: options.create,
        mode: config.stream_mode,
        shards: config.shard_count,
        when_missing: ": create it, or pass --create (and --shards N)",
    };
    // A missing stream is a failed run here, not a configuration error.
    let readiness = ensure_stream(kinesis, stream, creation, config.retry_timeout)
        .map_err(|f| f.with_exit_code(EXIT_FAILURE))?;
    if readiness == Readiness::Created {
        eprintln!(
            "destination-kinesis: created Kinesis stream `{stream}` ({} shards)",
            config.shard_count
        );
    }
    Ok(())
}

impl Putter<'_> {
    /// Reads lines until the end of input, a bad line, a signal or a delivery failure.
    fn read_all(&mut self, lines: &mut LineReader) -> Result<(), Failure> {
        loop {
            if self.failed.is_some() {
                return Ok(());
            }
            let deadline = match self.oldest {
                Some(t) => t + self.options.linger,
                None => Instant::now() + PROGRESS_EVERY,
            };
            let line_no = lines.line_number() + 1;
            match lines.next_event(deadline) {
                Event::Line([]) => self.summary.empty += 1,
                Event::Line(line) => self.add(line, line_no)?,
                Event::TooLong => {
                    return Err(Failure::new(
                        FailureType::System,
                        format!(
                            "input line {line_no} is longer than {MAX_RECORD_BYTES} bytes (1 MiB), the most a Kinesis record holds; \
                             it was not sent, nor anything after it"
                        ),
                    ))
                }
                Event::Idle => {
                    if self.oldest.is_some_and(|t| t.elapsed() >= self.options.linger) {
                        self.flush();
                    }
                    let done = self.dispatcher.poll();
                    self.collect(done);
                }
                Event::Eof => return Ok(()),
                Event::Cancelled(signal) => {
                    return Err(Failure::new(
                        FailureType::Transient,
                        format!("interrupted by {signal}: the lines read before it were sent"),
                    ))
                }
                Event::Failed(e) => return Err(crate::failure::stdin_failed(&e)),
            }
            self.show_progress();
        }
    }

    /// Buffers one line as a record, sending the batch when it is full.
    fn add(&mut self, line: &[u8], line_no: u64) -> Result<(), Failure> {
        self.pick_key(line);
        let key = std::mem::take(&mut self.key_buf);
        let result = self.push(line, &key, line_no);
        self.key_buf = key;
        result
    }

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

    fn push(&mut self, line: &[u8], key: &str, line_no: u64) -> Result<(), Failure> {
        let size = line.len() + key.len();
        if size > MAX_RECORD_BYTES {
            return Err(Failure::new(
                FailureType::System,
                format!(
                    "input line {line_no} is {} bytes; with its {}-byte partition key that is over the {MAX_RECORD_BYTES}-byte (1 MiB) \
                     Kinesis record limit; it was not sent, nor anything after it",
                    line.len(),
                    key.len()
                ),
            ));
        }
        let buffer_size = self.config.buffer_size;
        if self
            .open
            .as_ref()
            .is_some_and(|b| !b.fits(size, buffer_size))
        {
            self.send_open();
        }
        let batch = match self.open.take() {
            Some(b) => b,
            None => {
                self.oldest = Some(Instant::now());
                self.next_id += 1;
                match self.spare.pop() {
                    Some(mut b) => {
                        b.reset(self.next_id);
                        b
                    }
                    None => Batch::new(&self.options.stream, self.next_id),
                }
            }
        };
        let batch = self.open.insert(batch);
        batch.push(line, key, None, 1);
        let full = batch.len() >= buffer_size;
        self.summary.lines += 1;
        self.summary.bytes += line.len() as u64;
        if full {
            self.send_open();
        }
        Ok(())
    }

    /// Sends the open batch, unless a delivery already failed.
    fn send_open(&mut self) {
        self.oldest = None;
        let Some(batch) = self.open.take() else {
            return;
        };
        if self.failed.is_some() {
            return;
        }
        let done = self.dispatcher.submit(batch);
        self.collect(done);
    }

    /// Sends what is buffered and collects finished deliveries.
    fn flush(&mut self) {
        self.send_open();
        let done = self.dispatcher.poll();
        self.collect(done);
    }

    fn collect(&mut self, done: Vec<Done>) {
        for Done { batch, result } in done {
            match result {
                Ok(sent) => {
                    self.summary.accepted += batch.record_count();
                    self.summary.sent.add(&sent);
                    self.spare.push(batch);
                }
                Err(e) => {
                    self.summary.sent.add(&e.sent);
                    self.summary.accepted += (batch.len() - e.unsent) as u64;
                    if self.failed.is_none() {
                        self.failed = Some(e.to_failure(batch.len()));
                    }
                }
            }
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

    fn print_summary(&self) {
        let s = &self.summary;
        let secs = self.started.elapsed().as_secs_f64();
        let mut text = format!(
            "put {} of {} lines into Kinesis stream `{}` ({} MB) in {} PutRecords calls, {secs:.1} s ({:.0} records/s)",
            s.accepted,
            s.lines,
            self.options.stream,
            megabytes(s.bytes),
            s.sent.requests,
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
        if s.sent.retried_entries > 0 {
            text.push_str(&format!(
                "; {} entries retried ({} throttled)",
                s.sent.retried_entries, s.sent.throttled_entries
            ));
        }
        if s.sent.possible_duplicates > 0 {
            text.push_str(&format!(
                "; {} records may have been stored twice (an answer was lost)",
                s.sent.possible_duplicates
            ));
        }
        let clear = if self.options.progress {
            "\r\x1b[K"
        } else {
            ""
        };
        eprintln!("{clear}destination-kinesis: {text}");
    }
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
