//! What `read` hands on: each record (a Kinesis record, or one user record
//! of a KPL aggregate) to stdout as text or JSON, or to a list for a library
//! caller; the status line and the summary.

use super::{Ending, Progress, Reader};
use crate::failure::Failure;
use crate::kinesis::aggregate::{deaggregate, is_aggregated};
use crate::kinesis::ReadRecord;
use crate::pipeline::output::{closed_or_failed, OutputFormat};
use crate::pipeline::timespec::format_time;
use crate::text::{count, show};
use base64::Engine;
use serde_json::{json, Map, Value};
use std::io::Write;

/// Whether KPL aggregates are unpacked into their user records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregates {
    /// Each user record of an aggregate is a record of its own (as `read` prints them).
    Unpack,
    /// Kinesis records as they are stored, aggregates whole.
    Keep,
}

/// A record read from a stream: a Kinesis record, or one user record of a KPL aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The shard it was read from.
    pub shard: String,
    /// Its Kinesis sequence number (its aggregate's, for a user record).
    pub sequence_number: String,
    /// Its place in its aggregate, for a user record.
    pub sub_sequence: Option<usize>,
    /// Its partition key (a user record's own).
    pub partition_key: String,
    /// A user record's explicit hash key, if it had one.
    pub explicit_hash_key: Option<String>,
    /// When Kinesis received it, epoch seconds.
    pub arrival: Option<f64>,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// One record as the reader hands it on, borrowed from the page it came in.
pub(super) struct Found<'a> {
    pub(super) shard: &'a str,
    /// The Kinesis record it is, or came in.
    pub(super) record: &'a ReadRecord,
    pub(super) partition_key: &'a str,
    pub(super) explicit_hash_key: Option<&'a str>,
    pub(super) sub_sequence: Option<usize>,
    pub(super) data: &'a [u8],
}

/// Where read records go: stdout for `read`, a list for `records`.
pub(super) trait Sink {
    /// Takes one record; an error is the output's (stdout closed or failing).
    fn take(&mut self, found: &Found<'_>) -> std::io::Result<()>;
    /// Called after every page.
    fn flush(&mut self) -> std::io::Result<()>;
}

/// Prints records on stdout, one a line, as text or JSON.
pub(super) struct Printer<W: Write> {
    pub(super) out: W,
    pub(super) format: OutputFormat,
    pub(super) line: Vec<u8>,
}

impl<W: Write> Sink for Printer<W> {
    fn take(&mut self, found: &Found<'_>) -> std::io::Result<()> {
        self.line.clear();
        match self.format {
            OutputFormat::Text => self.line.extend_from_slice(found.data),
            OutputFormat::Json => {
                // Writing JSON into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut self.line, &json_record(found));
            }
        }
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl Sink for Vec<Record> {
    fn take(&mut self, found: &Found<'_>) -> std::io::Result<()> {
        self.push(Record {
            shard: found.shard.to_string(),
            sequence_number: found.record.sequence_number.clone(),
            sub_sequence: found.sub_sequence,
            partition_key: found.partition_key.to_string(),
            explicit_hash_key: found.explicit_hash_key.map(str::to_string),
            arrival: found.record.arrival,
            data: found.data.to_vec(),
        });
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<S: Sink> Reader<'_, S> {
    /// Prints a page's records up to `--until` and `--limit`; whether it
    /// reached a record past `--until`.
    pub(super) fn print_page(&mut self, i: usize, records: &[ReadRecord]) -> Result<bool, Failure> {
        let mut printed = None;
        let mut past_until = false;
        for record in records {
            if self.is_after_until(record) {
                past_until = true;
                break;
            }
            self.print(i, record)?;
            printed = Some(record);
            if self.stop_printing() {
                break;
            }
        }
        if let Some(last) = printed {
            self.shards[i].last_sequence = Some(last.sequence_number.clone());
        }
        if let Err(e) = self.sink.flush() {
            self.output_error(e)?;
        }
        Ok(past_until)
    }

    /// Redraws the status line: records so far and the lag of the shard furthest behind.
    pub(super) fn show_status(&mut self) {
        if !self.status.due() {
            return;
        }
        let lag = self
            .shards
            .iter()
            .filter(|s| matches!(s.progress, Progress::Reading { .. }))
            .filter_map(|s| s.behind)
            .max();
        let mut text = format!(
            "{} from {}",
            count(self.summary.records, "record", "records"),
            count(self.summary.shards, "shard", "shards")
        );
        if let Some(ms) = lag {
            text.push_str(&format!(
                ", lag {:.1} s behind the latest",
                ms as f64 / 1000.0
            ));
        }
        self.status.draw(&text);
    }

    /// The summary line: what was read and why it ended.
    pub(super) fn summary_text(&self) -> String {
        let s = &self.summary;
        let why = match s.ending {
            Ending::EndOfData => String::new(),
            Ending::Limit => "; reached --limit".into(),
            Ending::Until => "; reached --until".into(),
            Ending::Idle => format!(
                "; no record for {}",
                show(self.options.idle_timeout.unwrap_or_default())
            ),
            Ending::StdoutClosed => "; standard output was closed".into(),
        };
        format!(
            "read {} from {} of {}{why}",
            count(s.records, "record", "records"),
            count(s.shards, "shard", "shards"),
            self.options.stream
        )
    }

    /// Hands on one Kinesis record, unpacking a KPL aggregate when asked.
    pub(super) fn print(&mut self, i: usize, record: &ReadRecord) -> Result<(), Failure> {
        if self.aggregates == Aggregates::Unpack && is_aggregated(&record.data) {
            match deaggregate(&record.data) {
                Ok(users) => {
                    for (sub, user) in users.iter().enumerate() {
                        if self.stop_printing() {
                            break;
                        }
                        let found = Found {
                            shard: &self.shards[i].shard.shard_id,
                            record,
                            partition_key: &user.partition_key,
                            explicit_hash_key: user.explicit_hash_key.as_deref(),
                            sub_sequence: Some(sub),
                            data: &user.data,
                        };
                        let taken = self.sink.take(&found);
                        self.count(taken)?;
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
        let found = Found {
            shard: &self.shards[i].shard.shard_id,
            record,
            partition_key: &record.partition_key,
            explicit_hash_key: None,
            sub_sequence: None,
            data: &record.data,
        };
        let taken = self.sink.take(&found);
        self.count(taken)
    }

    /// Counts a record the sink took.
    pub(super) fn count(&mut self, taken: std::io::Result<()>) -> Result<(), Failure> {
        match taken {
            Ok(()) => {
                self.summary.records += 1;
                Ok(())
            }
            Err(e) => self.output_error(e),
        }
    }

    /// A closed stdout ends the read quietly; any other write error fails it.
    pub(super) fn output_error(&mut self, e: std::io::Error) -> Result<(), Failure> {
        closed_or_failed(e)?;
        self.summary.ending = Ending::StdoutClosed;
        Ok(())
    }
}

/// The `--format json` object for one record.
fn json_record(found: &Found<'_>) -> Value {
    let mut o = Map::new();
    o.insert("shard".into(), json!(found.shard));
    o.insert("sequenceNumber".into(), json!(found.record.sequence_number));
    if let Some(sub) = found.sub_sequence {
        o.insert("subSequenceNumber".into(), json!(sub));
    }
    o.insert("partitionKey".into(), json!(found.partition_key));
    if let Some(h) = found.explicit_hash_key {
        o.insert("explicitHashKey".into(), json!(h));
    }
    if let Some(t) = found.record.arrival.and_then(format_time) {
        o.insert("arrivalTime".into(), json!(t));
    }
    match std::str::from_utf8(found.data) {
        Ok(text) => o.insert("data".into(), json!(text)),
        Err(_) => o.insert(
            "dataBase64".into(),
            json!(base64::engine::general_purpose::STANDARD.encode(found.data)),
        ),
    };
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let found = Found {
            shard: "shardId-000000000001",
            record: &r,
            partition_key: "pk",
            explicit_hash_key: None,
            sub_sequence: None,
            data: &r.data,
        };
        let v = json_record(&found);
        assert_eq!(
            v,
            json!({"shard": "shardId-000000000001", "sequenceNumber": "4960", "partitionKey": "pk",
                   "arrivalTime": "2024-05-01T12:00:00.25Z", "data": "hello"})
        );
        let found = Found {
            shard: "s",
            record: &r,
            partition_key: "user",
            explicit_hash_key: Some("42"),
            sub_sequence: Some(3),
            data: &[0xFF, 0x00],
        };
        let v = json_record(&found);
        assert_eq!(v["dataBase64"], "/wA=");
        assert!(v.get("data").is_none());
        assert_eq!(v["subSequenceNumber"], 3);
        assert_eq!(v["explicitHashKey"], "42");
        assert_eq!(v["partitionKey"], "user");
    }
}
