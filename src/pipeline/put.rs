//! `put`, the line adapter of the engine: each stdin line (newline-ended,
//! or ended by `--delimiter`) becomes one Kinesis record, its bytes as they
//! are or decoded from base64, its key from the line, the record or a flag;
//! batched, aggregated, retried and bounded as `write` sends Airbyte records.

use crate::engine::batch::TargetId;
use crate::engine::ids::UuidPool;
use crate::engine::input::Framing;
use crate::engine::outbox::{self, Outbox, TargetSpec};
use crate::engine::partition::PartitionKeySource;
use crate::engine::partition::{fit_key, KeyPicker, MAX_KEY_CHARS};
use crate::engine::{self, Adapter, InputLine, Report};
use crate::failure::Kind;
use crate::failure::{Failure, EXIT_FAILURE};
use crate::kinesis::setup::{ensure_stream, unlisted_shards_note, Creation};
use crate::kinesis::stream::StreamRef;
use crate::pipeline::progress::StatusLine;
use crate::pipeline::put_input::{HashKey, InputFormat, KeyDelimiter};
use crate::pipeline::Settings;
use crate::text::{count, size};
use serde_json::value::RawValue;
use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

/// Bytes a line may hold beyond its record's data when it carries its key:
/// the longest key Kinesis takes (256 characters of up to 4 bytes).
const KEY_LINE_BYTES: usize = 4 * MAX_KEY_CHARS;

/// Where each record's partition key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A random UUID per record: records spread over every shard.
    Random,
    /// A JSON Pointer into each record; records without it get a random key.
    Field(String),
    /// The same key for every record: all on one shard.
    Fixed(String),
    /// Each line is `key<D>value`: the key is what comes before the first
    /// delimiter, the record the rest (kcat's `-K`).
    Delimited(KeyDelimiter),
}

impl KeySource {
    /// The key source the flags ask for; the three exclude one another.
    pub fn from_flags(
        field: Option<String>,
        fixed: Option<String>,
        delimited: Option<KeyDelimiter>,
    ) -> Result<KeySource, Failure> {
        let given: Vec<&str> = [
            field.as_ref().map(|_| "--partition-key-field"),
            fixed.as_ref().map(|_| "--partition-key"),
            delimited.as_ref().map(|_| "--key-delimiter"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() > 1 {
            let (last, rest) = given.split_last().unwrap_or((&"", &[]));
            let all = if rest.len() == 1 { "both" } else { "all" };
            return Err(Failure::usage(format!(
                "give {} or {last}, not {all}: each says where the partition key comes from",
                rest.join(", ")
            )));
        }
        let keys = match (field, fixed, delimited) {
            (Some(field), _, _) => KeySource::Field(field),
            (_, Some(key), _) => KeySource::Fixed(key),
            (_, _, Some(d)) => KeySource::Delimited(d),
            (None, None, None) => KeySource::Random,
        };
        keys.validate()?;
        Ok(keys)
    }

    /// Checks a pointer or fixed key given on the command line.
    pub fn validate(&self) -> Result<(), Failure> {
        match self {
            KeySource::Random | KeySource::Delimited(_) => Ok(()),
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
    /// The byte that ends each record in the input.
    pub delimiter: u8,
    /// How each line holds its record.
    pub input: InputFormat,
    /// The hash key of every record, in place of its partition key's MD5.
    pub explicit_hash_key: Option<HashKey>,
    /// Whether a missing stream is created.
    pub create: bool,
    /// Whether to redraw a progress line on stderr.
    pub progress: bool,
}

impl PutOptions {
    /// Checks the options that only make sense together.
    pub fn validate(&self) -> Result<(), Failure> {
        self.keys.validate()?;
        if let KeySource::Delimited(d) = &self.keys {
            if d.as_bytes().contains(&self.delimiter) {
                return Err(Failure::usage(
                    "--key-delimiter holds the byte that ends each record (--delimiter, a newline unless given): \
                     no record could hold it; choose another",
                ));
            }
        }
        Ok(())
    }
}

/// What a `put` did.
#[derive(Debug, Default, Clone, Copy)]
pub struct PutSummary {
    /// Records read (non-empty lines).
    pub lines: u64,
    /// Of those, records Kinesis accepted.
    pub accepted: u64,
    /// Bytes of those records.
    pub bytes: u64,
    /// Empty lines skipped.
    pub empty: u64,
    /// Records without the partition key field, given a random key.
    pub random_keys: u64,
}

/// The line adapter's state during a `put`.
struct Putter<'a> {
    options: &'a PutOptions,
    target: TargetId,
    ids: UuidPool,
    picker: KeyPicker,
    key_buf: String,
    /// A base64 line's record, decoded.
    data_buf: Vec<u8>,
    summary: PutSummary,
    started: Instant,
    status: StatusLine,
}

/// Runs `put`: makes sure the stream is there, then sends every record of `input`.
/// Prints the summary on stderr; Ok only when every record was accepted.
pub fn run(
    config: &Settings,
    options: &PutOptions,
    input: impl Read + Send + 'static,
) -> Result<PutSummary, Failure> {
    options.validate()?;
    let stream = &options.stream;
    let kinesis = Arc::new(crate::pipeline::open_session(&config.access, Some(stream))?.kinesis);
    let creation = Creation {
        allowed: options.create,
        shape: config.new_streams,
        when_missing: ": create it, or pass --create (and --shards N)",
        list_shards: config.sending.by_shard(),
    };
    // A missing stream is a failed run here, not a configuration error.
    let ready = ensure_stream(&kinesis, stream, creation, config.sending.retry_timeout)
        .map_err(|f| f.with_exit_code(EXIT_FAILURE))?;
    if ready.created {
        eprintln!(
            "destination-kinesis: created Kinesis stream {stream} ({})",
            count(u64::from(config.new_streams.shards), "shard", "shards")
        );
    }
    if let Some(note) = unlisted_shards_note([(stream.wire(), &ready)]) {
        eprintln!("destination-kinesis: {note}");
    }
    let target = TargetSpec::of(stream.wire(), &ready);
    let keys_repeat = !matches!(options.keys, KeySource::Random);
    let settings = outbox::Settings::new(&config.sending, keys_repeat);
    let outbox = Outbox::new(vec![target], settings);
    let mut putter = Putter {
        options,
        target: TargetId(0),
        ids: UuidPool::new(),
        picker: KeyPicker::new(match &options.keys {
            KeySource::Field(pointer) => PartitionKeySource::Pointer(pointer.clone()),
            _ => PartitionKeySource::Uuid,
        }),
        key_buf: String::new(),
        data_buf: Vec::new(),
        summary: PutSummary::default(),
        started: Instant::now(),
        status: StatusLine::new(options.progress),
    };
    // A line holds one record (and its key, when it carries it).
    let key_bytes = match &options.keys {
        KeySource::Delimited(d) => KEY_LINE_BYTES + d.as_bytes().len(),
        _ => 0,
    };
    let settings = engine::Settings {
        framing: Framing {
            delimiter: options.delimiter,
            max_line: options.input.line_bytes(ready.limits.record) + key_bytes,
            skip_bom: false,
        },
        max_in_flight: config.sending.max_in_flight,
    };
    let (report, result) = engine::run(kinesis, outbox, &settings, input, &mut putter);
    let summary = putter.summary_text(&report);
    let result = result.map(|()| putter.summary);
    putter.status.end(result, Some(summary))
}

impl Adapter for Putter<'_> {
    fn line(&mut self, input: InputLine<'_>, outbox: &mut Outbox) -> Result<(), Failure> {
        let (line, line_no) = (input.bytes, input.number);
        if line.is_empty() {
            self.summary.empty += 1;
            return Ok(());
        }
        let value = match &self.options.keys {
            KeySource::Delimited(d) => {
                let Some((key, value)) = d.split(line) else {
                    return Err(self.bad_line(line_no, "has no key delimiter (--key-delimiter)"));
                };
                self.key_from_line(key)
                    .map_err(|why| self.bad_line(line_no, why))?;
                value
            }
            _ => line,
        };
        let data = match self.options.input.decode(value, &mut self.data_buf) {
            Ok(data) => data,
            Err(why) => {
                let why =
                    format!("{why}; with --input base64 each line is the base64 of one record");
                return Err(self.bad_line(line_no, &why));
            }
        };
        match &self.options.keys {
            KeySource::Delimited(_) => {}
            KeySource::Fixed(k) => {
                self.key_buf.clear();
                self.key_buf.push_str(k);
            }
            KeySource::Field(_) => {
                let found = serde_json::from_slice::<&RawValue>(data)
                    .is_ok_and(|v| self.picker.pick(v, &[], &mut self.key_buf));
                if !found {
                    self.summary.random_keys += 1;
                    self.ids.next_into(&mut self.key_buf);
                }
            }
            KeySource::Random => self.ids.next_into(&mut self.key_buf),
        }
        if let Err(o) = outbox.check_size(self.target, data.len(), &self.key_buf) {
            return Err(Failure::new(
                Kind::System,
                format!(
                    "input line {line_no}: its record is {} bytes; with its {}-byte partition key that is over the \
                     {}-byte record limit of Kinesis stream {}; it was not sent, nor anything after it",
                    data.len(),
                    self.key_buf.len(),
                    o.limit,
                    self.options.stream
                ),
            ));
        }
        let hash = self.options.explicit_hash_key.as_ref().map(HashKey::as_str);
        outbox.add(self.target, data, &self.key_buf, hash);
        self.summary.lines += 1;
        self.summary.bytes += data.len() as u64;
        Ok(())
    }

    fn too_long(&self, line_no: u64, limit: usize, _head: &[u8]) -> Failure {
        let form = match self.options.input {
            InputFormat::Text => "",
            InputFormat::Base64 => " in base64",
        };
        Failure::new(
            Kind::System,
            format!(
                "input line {line_no} is longer than {limit} bytes, more than a record of Kinesis stream {} \
                 holds{form}; it was not sent, nor anything after it",
                self.options.stream
            ),
        )
    }

    fn stopped_by(&self, signal: &str) -> Failure {
        Failure::new(
            Kind::Transient,
            format!("interrupted by {signal}: the lines read before it were sent"),
        )
    }

    fn accepted(&mut self, records: u64) {
        self.summary.accepted += records;
    }

    fn settle(&mut self, _outbox: &Outbox) -> Result<(), Failure> {
        if self.status.due() {
            let s = &self.summary;
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            self.status.draw(&format!(
                "{} sent, {}, {:.0} records/s",
                count(s.accepted, "record", "records"),
                size(s.bytes),
                s.accepted as f64 / secs
            ));
        }
        Ok(())
    }
}

impl Putter<'_> {
    /// A key before the key delimiter into `key_buf`: text of 1 or more
    /// characters; a longer one than Kinesis takes is hashed as `write` does.
    fn key_from_line(&mut self, key: &[u8]) -> Result<(), &'static str> {
        if key.is_empty() {
            return Err("has an empty key before the key delimiter (--key-delimiter); a partition key is 1 to 256 characters");
        }
        let Ok(key) = std::str::from_utf8(key) else {
            return Err(
                "has a key that is not UTF-8 text before the key delimiter (--key-delimiter)",
            );
        };
        self.key_buf.clear();
        self.key_buf.push_str(key);
        fit_key(&mut self.key_buf);
        Ok(())
    }

    /// A line that cannot become a record: the run stops there.
    fn bad_line(&self, line_no: u64, why: &str) -> Failure {
        Failure::new(
            Kind::System,
            format!("input line {line_no} {why}; it was not sent, nor anything after it"),
        )
    }

    /// The line that tells what the run did.
    fn summary_text(&self, report: &Report) -> String {
        let s = &self.summary;
        let sent = &report.sent;
        let secs = report.elapsed.as_secs_f64();
        let mut text = format!(
            "put {} of {} into Kinesis stream {} ({}) in {}, {secs:.1} s ({:.0} records/s)",
            s.accepted,
            count(s.lines, "line", "lines"),
            self.options.stream,
            size(s.bytes),
            count(sent.requests, "PutRecords call", "PutRecords calls"),
            s.accepted as f64 / secs.max(0.001),
        );
        if s.empty > 0 {
            text.push_str(&format!(
                "; skipped {}",
                count(s.empty, "empty line", "empty lines")
            ));
        }
        if s.random_keys > 0 {
            text.push_str(&format!(
                "; {} had no partition key field and got a random key",
                count(s.random_keys, "line", "lines")
            ));
        }
        if sent.retried_entries > 0 {
            text.push_str(&format!(
                "; {} retried ({} throttled)",
                count(sent.retried_entries, "entry", "entries"),
                sent.throttled_entries
            ));
        }
        if sent.possible_duplicates > 0 {
            text.push_str(&format!(
                "; {} may have been stored twice (an answer was lost)",
                count(sent.possible_duplicates, "record", "records")
            ));
        }
        text.push_str(report.no_input_note());
        text
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

    #[test]
    fn one_key_source_at_a_time() {
        let d = || Some(crate::pipeline::put_input::parse_key_delimiter(":").unwrap());
        assert_eq!(
            KeySource::from_flags(None, None, None).unwrap(),
            KeySource::Random
        );
        assert!(matches!(
            KeySource::from_flags(None, None, d()).unwrap(),
            KeySource::Delimited(_)
        ));
        for (field, fixed, delimited, named) in [
            (
                Some("/a"),
                Some("k"),
                None,
                ["--partition-key-field", "--partition-key"],
            ),
            (
                Some("/a"),
                None,
                d(),
                ["--partition-key-field", "--key-delimiter"],
            ),
            (None, Some("k"), d(), ["--partition-key", "--key-delimiter"]),
        ] {
            let e = KeySource::from_flags(field.map(Into::into), fixed.map(Into::into), delimited)
                .unwrap_err();
            assert_eq!(e.exit_code, crate::failure::EXIT_CONFIG);
            let both = format!("give {} or {}, not both", named[0], named[1]);
            assert!(e.message.starts_with(&both), "{}", e.message);
        }
        assert!(KeySource::from_flags(Some("a".into()), None, None).is_err());
    }

    #[test]
    fn a_key_delimiter_may_not_hold_the_record_delimiter() {
        let options = |key: &str, delimiter: u8| PutOptions {
            stream: StreamRef::from("s"),
            keys: KeySource::Delimited(
                crate::pipeline::put_input::parse_key_delimiter(key).unwrap(),
            ),
            delimiter,
            input: InputFormat::Text,
            explicit_hash_key: None,
            create: false,
            progress: false,
        };
        assert!(options(":", b'\n').validate().is_ok());
        let e = options(r"\n", b'\n').validate().unwrap_err();
        assert!(e.message.contains("--key-delimiter") && e.message.contains("--delimiter"));
        assert!(options(r"a\0", 0).validate().is_err());
        assert!(options(r"\n", 0).validate().is_ok());
    }
}
