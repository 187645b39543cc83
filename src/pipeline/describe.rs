//! `describe`: one stream's status, capacity mode, retention, encryption,
//! maximum record size and shards (hash key ranges, parents); optionally
//! after waiting until it is ACTIVE.

use crate::failure::Failure;
use crate::kinesis::put_records::Limits;
use crate::kinesis::retry::retrying;
use crate::kinesis::setup::wait_active;
use crate::kinesis::stream::StreamRef;
use crate::kinesis::{missing_stream, stream_call_failed};
use crate::kinesis::{Shard, StreamStatus, StreamSummary};
use crate::pipeline::output::{print_all, OutputFormat};
use crate::pipeline::timespec::parse_duration_within;
use crate::pipeline::Settings;
use serde_json::{json, Value};
use std::time::Duration;

/// How long `--wait-active` waits unless `--timeout` says otherwise: as long
/// as `aws kinesis wait stream-exists` (18 looks 10 s apart).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(180);

/// What `describe` was asked to do.
#[derive(Debug, Clone)]
pub struct DescribeOptions {
    /// The stream.
    pub stream: StreamRef,
    /// How it is printed.
    pub format: OutputFormat,
    /// Wait until the stream is ACTIVE, for at most this long, before describing it.
    pub wait_active: Option<Duration>,
}

/// Parses `--timeout`: 1s to 7 days.
pub fn parse_timeout(value: &str) -> Result<Duration, String> {
    parse_duration_within(
        value,
        Duration::from_secs(1),
        Duration::from_secs(7 * 86_400),
    )
}

/// Runs `describe`, printing the stream's description on `out`.
pub fn run(
    config: &Settings,
    options: &DescribeOptions,
    mut out: impl std::io::Write,
) -> Result<(), Failure> {
    let stream = &options.stream;
    let kinesis = crate::pipeline::open_session(&config.access, Some(stream))?.kinesis;
    let budget = config.sending.retry_timeout;
    let failed = |e| stream_call_failed("describe", stream, &e);
    // Waiting ends with the summary it looked at: no second call for it.
    let summary = match options.wait_active {
        Some(timeout) => wait_active(&kinesis, stream, timeout)?,
        None => retrying(budget, || kinesis.describe_stream(stream))
            .map_err(failed)?
            .ok_or_else(|| missing_stream(stream, ""))?,
    };
    // A stream being created has no shards to list yet.
    let shards = if summary.status() == StreamStatus::Creating {
        Vec::new()
    } else {
        retrying(budget, || kinesis.list_shards(stream)).map_err(failed)?
    };
    let text = match options.format {
        OutputFormat::Text => text(&summary, &shards),
        OutputFormat::Json => format!("{}\n", json_description(&summary, &shards)),
    };
    print_all(&mut out, text.as_bytes())
}

/// The description for people: one field a line, then one shard a line.
fn text(s: &StreamSummary, shards: &[Shard]) -> String {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let max_record = match s.max_record_size_kib {
        Some(kib) => format!("{kib} KiB"),
        None => {
            format!(
                "{} KiB (not reported by the service: the 1 MiB limit)",
                Limits::CLASSIC.record / 1024
            )
        }
    };
    let encryption = match (&s.encryption_type, &s.key_id) {
        (Some(kind), Some(key)) => format!("{kind} (key {key})"),
        (kind, _) => or_dash(kind.clone()),
    };
    let fields = [
        ("stream", s.stream_name.clone()),
        ("arn", or_dash(s.stream_arn.clone())),
        ("status", s.stream_status.clone()),
        ("mode", or_dash(s.mode().map(str::to_string))),
        (
            "retention",
            or_dash(s.retention_period_hours.map(|h| format!("{h} hours"))),
        ),
        ("encryption", encryption),
        ("max record size", max_record),
        (
            "open shards",
            or_dash(s.open_shard_count.map(|n| n.to_string())),
        ),
        (
            "consumers",
            or_dash(s.consumer_count.map(|n| n.to_string())),
        ),
    ];
    let mut out = String::new();
    for (name, value) in fields {
        out.push_str(&format!("{name:16} {value}\n"));
    }
    out.push_str(&format!("shards ({})\n", shards.len()));
    for shard in shards {
        let range = shard
            .hash_key_range
            .as_ref()
            .map(|r| format!("{}..{}", r.starting_hash_key, r.ending_hash_key))
            .unwrap_or_else(|| "-".into());
        let state = if shard.is_closed() { "closed" } else { "open" };
        let parents: Vec<&str> = shard.parents().collect();
        let from = if parents.is_empty() {
            String::new()
        } else {
            format!("  from {}", parents.join(" + "))
        };
        out.push_str(&format!("  {}  {state:6}  {range}{from}\n", shard.shard_id));
    }
    out
}

/// The description as one JSON object.
fn json_description(s: &StreamSummary, shards: &[Shard]) -> Value {
    let shards: Vec<Value> = shards
        .iter()
        .map(|shard| {
            let range = shard.hash_key_range.as_ref();
            let sequence = shard.sequence_number_range.as_ref();
            json!({
                "shard": shard.shard_id,
                "open": !shard.is_closed(),
                "parents": shard.parents().collect::<Vec<_>>(),
                "startingHashKey": range.map(|r| &r.starting_hash_key),
                "endingHashKey": range.map(|r| &r.ending_hash_key),
                "startingSequenceNumber": sequence.and_then(|r| r.starting_sequence_number.as_ref()),
                "endingSequenceNumber": sequence.and_then(|r| r.ending_sequence_number.as_ref()),
            })
        })
        .collect();
    json!({
        "stream": s.stream_name,
        "arn": s.stream_arn,
        "status": s.stream_status,
        "mode": s.mode(),
        "retentionHours": s.retention_period_hours,
        "encryption": s.encryption_type,
        "keyId": s.key_id,
        "maxRecordSizeKiB": s.max_record_size_kib,
        "openShards": s.open_shard_count,
        "consumers": s.consumer_count,
        "shards": shards,
    })
}
