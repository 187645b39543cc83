//! The Kinesis API calls this program makes, and what their errors mean.

use crate::aws::http::{Client, Reply, TransportError};
use crate::aws::retry::{is_retryable_code, is_retryable_status};
use crate::kinesis::stream::StreamRef;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use std::fmt;
use std::time::Instant;

/// An error answer from AWS: HTTP status, error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// HTTP status.
    pub status: u16,
    /// Error code without any `prefix#`, e.g. `AccessDeniedException`.
    pub code: String,
    /// AWS's message.
    pub message: String,
}

/// What went wrong with a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// No HTTP answer.
    Transport(TransportError),
    /// AWS answered with an error.
    Aws(AwsError),
    /// A success answer we could not read.
    BadAnswer(String),
}

/// A failed Kinesis call, with the operation and stream it concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisError {
    /// The API operation, e.g. `PutRecords`.
    pub op: &'static str,
    /// The stream it concerned, if any, as requests carry it (a name or an ARN).
    pub stream: Option<String>,
    /// What went wrong.
    pub cause: Cause,
}

impl fmt::Display for KinesisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.op)?;
        if let Some(s) = &self.stream {
            write!(f, " on stream {}", StreamRef::from_wire(s))?;
        }
        match &self.cause {
            Cause::Transport(t) => write!(f, " failed: {t}"),
            Cause::Aws(e) => write!(f, " failed: {} (HTTP {}): {}", e.code, e.status, e.message),
            Cause::BadAnswer(why) => write!(f, " gave an answer that cannot be read: {why}"),
        }
    }
}

impl std::error::Error for KinesisError {}

/// Error codes that no retry can fix because the credentials or permissions are wrong.
const CREDENTIAL_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "AccessDeniedException",
    "ExpiredTokenException",
    "IncompleteSignature",
    "IncompleteSignatureException",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "KMSAccessDeniedException",
];

impl KinesisError {
    /// The AWS error code, if AWS answered.
    pub fn code(&self) -> Option<&str> {
        match &self.cause {
            Cause::Aws(e) => Some(&e.code),
            _ => None,
        }
    }

    /// Whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match &self.cause {
            Cause::Transport(t) => !matches!(
                t,
                TransportError::Dns { .. }
                    | TransportError::Tls { .. }
                    | TransportError::Signing { .. }
                    | TransportError::Credentials {
                        transient: false,
                        ..
                    }
            ),
            Cause::Aws(e) => is_retryable_status(e.status) || is_retryable_code(&e.code),
            Cause::BadAnswer(_) => false,
        }
    }

    /// Whether the call may have taken effect although no answer says so.
    pub fn outcome_unknown(&self) -> bool {
        match &self.cause {
            Cause::Transport(t) => t.outcome_unknown(),
            // A 5xx may come after the records were stored.
            Cause::Aws(e) => e.status >= 500,
            Cause::BadAnswer(_) => true,
        }
    }

    /// Whether AWS refused the credentials or the permissions, or their source
    /// refused to renew them: no retry can fix it.
    pub fn is_credential_error(&self) -> bool {
        matches!(
            self.cause,
            Cause::Transport(TransportError::Credentials {
                transient: false,
                ..
            })
        ) || self.code().is_some_and(|c| CREDENTIAL_CODES.contains(&c))
    }

    /// Whether the stream (or another resource named) does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some("ResourceNotFoundException")
    }

    /// Whether AWS says the request's time is too far from its own clock.
    pub fn is_clock_skew(&self) -> bool {
        match &self.cause {
            Cause::Aws(e) => {
                matches!(
                    e.code.as_str(),
                    "RequestTimeTooSkewed" | "RequestExpired" | "RequestInTheFuture"
                ) || (e.code == "InvalidSignatureException"
                    && (e.message.contains("Signature expired")
                        || e.message.contains("Signature not yet current")))
            }
            _ => false,
        }
    }
}

/// A stream's status as DescribeStreamSummary gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamStatus {
    /// Being created; not writable yet.
    Creating,
    /// Writable.
    Active,
    /// Writable while being resharded or changed.
    Updating,
    /// Going away.
    Deleting,
    /// A status this program does not know.
    Other(String),
}

impl StreamStatus {
    fn parse(s: &str) -> StreamStatus {
        match s {
            "CREATING" => StreamStatus::Creating,
            "ACTIVE" => StreamStatus::Active,
            "UPDATING" => StreamStatus::Updating,
            "DELETING" => StreamStatus::Deleting,
            other => StreamStatus::Other(other.to_string()),
        }
    }

    /// The status as AWS spells it.
    pub fn as_str(&self) -> &str {
        match self {
            StreamStatus::Creating => "CREATING",
            StreamStatus::Active => "ACTIVE",
            StreamStatus::Updating => "UPDATING",
            StreamStatus::Deleting => "DELETING",
            StreamStatus::Other(s) => s,
        }
    }

    /// Whether records can be written now.
    pub fn is_writable(&self) -> bool {
        matches!(self, StreamStatus::Active | StreamStatus::Updating)
    }
}

/// A stream as DescribeStreamSummary describes it. Fields newer than the
/// emulators (`MaxRecordSizeInKiB`) are optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSummary {
    /// Its name.
    pub stream_name: String,
    /// Its ARN.
    #[serde(rename = "StreamARN", default)]
    pub stream_arn: Option<String>,
    /// CREATING, ACTIVE, UPDATING or DELETING, as AWS spells it.
    pub stream_status: String,
    /// Its capacity mode.
    #[serde(default)]
    pub stream_mode_details: Option<StreamModeDetails>,
    /// How long records are kept.
    #[serde(default)]
    pub retention_period_hours: Option<u32>,
    /// `NONE` or `KMS`.
    #[serde(default)]
    pub encryption_type: Option<String>,
    /// The KMS key, when encrypted.
    #[serde(default)]
    pub key_id: Option<String>,
    /// Shards that take records.
    #[serde(default)]
    pub open_shard_count: Option<u32>,
    /// Registered enhanced fan-out consumers.
    #[serde(default)]
    pub consumer_count: Option<u32>,
    /// The largest record the stream takes, in KiB (1024 to 10240); None
    /// where the service predates large records (the limit is then 1 MiB).
    #[serde(rename = "MaxRecordSizeInKiB", default)]
    pub max_record_size_kib: Option<u32>,
}

/// How streams the connector creates are billed and sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// A fixed number of shards (`shardCount`).
    Provisioned,
    /// Kinesis scales the shards itself.
    OnDemand,
}

/// How a stream this program creates is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewStream {
    /// Its capacity mode.
    pub mode: StreamMode,
    /// Its shards in provisioned mode.
    pub shards: u32,
    /// Its largest record in KiB (1024 to 10240); None leaves AWS's default (1 MiB).
    pub max_record_size_kib: Option<u32>,
}

impl NewStream {
    /// A provisioned stream of `shards` shards with the default record size.
    pub fn provisioned(shards: u32) -> NewStream {
        NewStream {
            mode: StreamMode::Provisioned,
            shards,
            max_record_size_kib: None,
        }
    }
}

/// The capacity mode part of a stream's summary.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamModeDetails {
    /// `PROVISIONED` or `ON_DEMAND`.
    pub stream_mode: String,
}

impl StreamSummary {
    /// The stream's status.
    pub fn status(&self) -> StreamStatus {
        StreamStatus::parse(&self.stream_status)
    }

    /// `PROVISIONED` or `ON_DEMAND`, when given.
    pub fn mode(&self) -> Option<&str> {
        self.stream_mode_details
            .as_ref()
            .map(|d| d.stream_mode.as_str())
    }
}

/// Where a page of ListStreams starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageStart {
    /// At the first stream.
    First,
    /// After this stream name (`ExclusiveStartStreamName`, for services without `NextToken`).
    After(String),
    /// Where the previous page's `NextToken` says.
    Token(String),
}

/// A page of ListStreams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPage {
    /// Stream names, in the service's order.
    pub names: Vec<String>,
    /// Whether more pages follow.
    pub has_more: bool,
    /// Where the next page starts, where the service gives tokens.
    pub next_token: Option<String>,
    /// Name, ARN, status and mode of each stream, where the service gives them
    /// (AWS does since 2022; emulators may not).
    pub summaries: Option<Vec<StreamSummary>>,
}

impl StreamPage {
    /// Where the next page starts, or None after the last.
    pub fn next(&self) -> Option<PageStart> {
        if !self.has_more {
            return None;
        }
        match (&self.next_token, self.names.last()) {
            (Some(token), _) => Some(PageStart::Token(token.clone())),
            (None, Some(last)) => Some(PageStart::After(last.clone())),
            (None, None) => None,
        }
    }
}

/// One shard of a stream, as ListShards gives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Shard {
    /// Shard ID.
    pub shard_id: String,
    /// The shard it was split from or merged from.
    pub parent_shard_id: Option<String>,
    /// The other shard of a merge.
    pub adjacent_parent_shard_id: Option<String>,
    /// Its sequence numbers; a closed shard has an ending one.
    #[serde(default)]
    pub sequence_number_range: Option<SequenceNumberRange>,
    /// The partition-key hashes it takes.
    #[serde(default)]
    pub hash_key_range: Option<HashKeyRange>,
}

/// The 128-bit hash keys a shard takes, as decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HashKeyRange {
    /// Lowest hash key, inclusive.
    pub starting_hash_key: String,
    /// Highest hash key, inclusive.
    pub ending_hash_key: String,
}

impl HashKeyRange {
    /// Whether `hash` (a partition key's MD5 as an integer) falls in the range.
    pub fn contains(&self, hash: u128) -> bool {
        match (
            self.starting_hash_key.parse::<u128>(),
            self.ending_hash_key.parse::<u128>(),
        ) {
            (Ok(start), Ok(end)) => (start..=end).contains(&hash),
            _ => false,
        }
    }
}

impl Shard {
    /// An open shard taking the hash keys `start..=end`, as ListShards gives it.
    pub fn open(id: &str, start: u128, end: u128) -> Shard {
        Shard {
            shard_id: id.to_string(),
            parent_shard_id: None,
            adjacent_parent_shard_id: None,
            sequence_number_range: None,
            hash_key_range: Some(HashKeyRange {
                starting_hash_key: start.to_string(),
                ending_hash_key: end.to_string(),
            }),
        }
    }

    /// Whether the shard was closed by a split or merge (it takes no new records).
    pub fn is_closed(&self) -> bool {
        self.sequence_number_range
            .as_ref()
            .is_some_and(|r| r.ending_sequence_number.is_some())
    }

    /// The shards it came from, if any.
    pub fn parents(&self) -> impl Iterator<Item = &str> {
        self.parent_shard_id
            .iter()
            .chain(&self.adjacent_parent_shard_id)
            .map(String::as_str)
    }
}

/// The sequence numbers a shard covers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SequenceNumberRange {
    /// The first.
    pub starting_sequence_number: Option<String>,
    /// The last, once the shard is closed.
    pub ending_sequence_number: Option<String>,
}

/// Where to start reading a shard.
#[derive(Debug, Clone, PartialEq)]
pub enum StartPosition {
    /// The oldest record kept.
    TrimHorizon,
    /// Only records written from now on.
    Latest,
    /// Records that arrived at or after this time (epoch seconds).
    AtTimestamp(f64),
    /// The record with this sequence number and those after it.
    AtSequenceNumber(String),
    /// Records after this sequence number.
    AfterSequenceNumber(String),
}

/// One record read back from a shard.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRecord {
    /// The record's bytes.
    pub data: Vec<u8>,
    /// Its partition key.
    pub partition_key: String,
    /// Its sequence number.
    pub sequence_number: String,
    /// When Kinesis received it, epoch seconds.
    pub arrival: Option<f64>,
}

/// A page of GetRecords.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordsPage {
    /// The records.
    pub records: Vec<ReadRecord>,
    /// Where to go on; None once a closed shard is read to its end.
    pub next_iterator: Option<String>,
    /// How far behind the tip of the shard this page is.
    pub millis_behind_latest: Option<u64>,
}

/// A Kinesis API client.
pub struct Kinesis {
    http: Client,
    notice: Box<dyn Fn(&str) + Send + Sync>,
}

impl Kinesis {
    /// Wraps a signing HTTP client; `notice` receives messages worth a LOG line.
    pub fn new(http: Client, notice: Box<dyn Fn(&str) + Send + Sync>) -> Kinesis {
        Kinesis { http, notice }
    }

    /// The HTTP client underneath.
    pub fn http(&self) -> &Client {
        &self.http
    }

    /// Makes one call; on a clock-skew answer, corrects the clock from the
    /// server's `Date` and tries once more, as the AWS SDKs do.
    pub fn call(
        &self,
        op: &'static str,
        stream: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<u8>, KinesisError> {
        self.call_by(op, stream, body, None)
    }

    /// `call`, given up as timed out at `deadline` when that comes first.
    pub fn call_by(
        &self,
        op: &'static str,
        stream: Option<&str>,
        body: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>, KinesisError> {
        let target = format!("Kinesis_20131202.{op}");
        let mut corrected = false;
        loop {
            let error = |cause| KinesisError {
                op,
                stream: stream.map(str::to_string),
                cause,
            };
            let reply = self
                .http
                .post_by(&target, body, deadline)
                .map_err(|t| error(Cause::Transport(t)))?;
            if (200..300).contains(&reply.status) {
                return Ok(reply.body);
            }
            let err = error(Cause::Aws(aws_error(&reply)));
            if !corrected && err.is_clock_skew() {
                if let Some(date) = reply.server_date {
                    if let Some(offset) = self.http.correct_clock(date) {
                        (self.notice)(&format!(
                            "AWS says this machine's clock is off ({}); signing with the server's time, offset {offset:+} s",
                            match &err.cause {
                                Cause::Aws(e) => e.message.as_str(),
                                _ => "",
                            }
                        ));
                    }
                    corrected = true;
                    continue;
                }
            }
            return Err(err);
        }
    }

    fn call_json<T: for<'de> Deserialize<'de>>(
        &self,
        op: &'static str,
        stream: Option<&str>,
        body: &serde_json::Value,
        deadline: Option<Instant>,
    ) -> Result<T, KinesisError> {
        let bytes = self.call_by(op, stream, body.to_string().as_bytes(), deadline)?;
        serde_json::from_slice(&bytes).map_err(|e| KinesisError {
            op,
            stream: stream.map(str::to_string),
            cause: Cause::BadAnswer(e.to_string()),
        })
    }

    /// Lists up to `limit` stream names; a cheap signed call that changes nothing.
    pub fn list_streams(&self, limit: u32) -> Result<Vec<String>, KinesisError> {
        self.list_streams_page(limit, &PageStart::First)
            .map(|page| page.names)
    }

    /// One page of ListStreams, starting where `from` says.
    pub fn list_streams_page(
        &self,
        limit: u32,
        from: &PageStart,
    ) -> Result<StreamPage, KinesisError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Answer {
            #[serde(default)]
            stream_names: Vec<String>,
            #[serde(default)]
            has_more_streams: bool,
            #[serde(default)]
            next_token: Option<String>,
            #[serde(default)]
            stream_summaries: Option<Vec<StreamSummary>>,
        }
        let mut body = json!({ "Limit": limit });
        match from {
            PageStart::First => {}
            PageStart::After(name) => body["ExclusiveStartStreamName"] = json!(name),
            PageStart::Token(token) => body["NextToken"] = json!(token),
        }
        let a: Answer = self.call_json("ListStreams", None, &body, None)?;
        Ok(StreamPage {
            names: a.stream_names,
            has_more: a.has_more_streams,
            next_token: a.next_token.filter(|t| !t.is_empty()),
            summaries: a.stream_summaries,
        })
    }

    /// What DescribeStreamSummary says of the stream, or None when it does not exist.
    pub fn describe_stream(
        &self,
        stream: &StreamRef,
    ) -> Result<Option<StreamSummary>, KinesisError> {
        self.describe_stream_by(stream, None)
    }

    /// `describe_stream`, given up as timed out at `deadline` when that comes first.
    pub fn describe_stream_by(
        &self,
        stream: &StreamRef,
        deadline: Option<Instant>,
    ) -> Result<Option<StreamSummary>, KinesisError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Answer {
            stream_description_summary: StreamSummary,
        }
        match self.call_json::<Answer>(
            "DescribeStreamSummary",
            Some(stream.wire()),
            &naming(stream),
            deadline,
        ) {
            Ok(a) => Ok(Some(a.stream_description_summary)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The stream's status, or None when it does not exist.
    pub fn stream_status(&self, stream: &StreamRef) -> Result<Option<StreamStatus>, KinesisError> {
        Ok(self.describe_stream(stream)?.map(|s| s.status()))
    }

    /// Creates a stream in the account of the credentials (CreateStream takes
    /// a name, never an ARN); Ok(false) when it already exists.
    pub fn create_stream(&self, stream: &str, shape: &NewStream) -> Result<bool, KinesisError> {
        self.create_stream_by(stream, shape, None)
    }

    /// `create_stream`, given up as timed out at `deadline` when that comes first.
    pub fn create_stream_by(
        &self,
        stream: &str,
        shape: &NewStream,
        deadline: Option<Instant>,
    ) -> Result<bool, KinesisError> {
        let mut body = match shape.mode {
            StreamMode::Provisioned => json!({ "StreamName": stream, "ShardCount": shape.shards }),
            StreamMode::OnDemand => json!({
                "StreamName": stream,
                "StreamModeDetails": { "StreamMode": "ON_DEMAND" }
            }),
        };
        if let Some(kib) = shape.max_record_size_kib {
            body["MaxRecordSizeInKiB"] = json!(kib);
        }
        let body = body.to_string();
        match self.call_by("CreateStream", Some(stream), body.as_bytes(), deadline) {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ResourceInUseException") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every shard of the stream, following pagination.
    pub fn list_shards(&self, stream: &StreamRef) -> Result<Vec<Shard>, KinesisError> {
        self.list_shards_by(stream, None)
    }

    /// `list_shards`, given up as timed out at `deadline` when that comes first.
    pub fn list_shards_by(
        &self,
        stream: &StreamRef,
        deadline: Option<Instant>,
    ) -> Result<Vec<Shard>, KinesisError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Answer {
            shards: Vec<Shard>,
            next_token: Option<String>,
        }
        let mut shards = Vec::new();
        let mut body = naming(stream);
        loop {
            let a: Answer = self.call_json("ListShards", Some(stream.wire()), &body, deadline)?;
            shards.extend(a.shards);
            match a.next_token {
                Some(token) if !token.is_empty() => body = json!({ "NextToken": token }),
                _ => return Ok(shards),
            }
        }
    }

    /// An iterator for reading one shard from `position`.
    pub fn shard_iterator(
        &self,
        stream: &StreamRef,
        shard_id: &str,
        position: &StartPosition,
    ) -> Result<String, KinesisError> {
        self.shard_iterator_by(stream, shard_id, position, None)
    }

    /// `shard_iterator`, given up as timed out at `deadline` when that comes first.
    pub fn shard_iterator_by(
        &self,
        stream: &StreamRef,
        shard_id: &str,
        position: &StartPosition,
        deadline: Option<Instant>,
    ) -> Result<String, KinesisError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Answer {
            shard_iterator: String,
        }
        let mut body = naming(stream);
        body["ShardId"] = json!(shard_id);
        match position {
            StartPosition::TrimHorizon => body["ShardIteratorType"] = json!("TRIM_HORIZON"),
            StartPosition::Latest => body["ShardIteratorType"] = json!("LATEST"),
            StartPosition::AtTimestamp(t) => {
                body["ShardIteratorType"] = json!("AT_TIMESTAMP");
                body["Timestamp"] = json!(t);
            }
            StartPosition::AtSequenceNumber(n) => {
                body["ShardIteratorType"] = json!("AT_SEQUENCE_NUMBER");
                body["StartingSequenceNumber"] = json!(n);
            }
            StartPosition::AfterSequenceNumber(n) => {
                body["ShardIteratorType"] = json!("AFTER_SEQUENCE_NUMBER");
                body["StartingSequenceNumber"] = json!(n);
            }
        }
        let a: Answer = self.call_json("GetShardIterator", Some(stream.wire()), &body, deadline)?;
        Ok(a.shard_iterator)
    }

    /// One page of records from a shard iterator. A stream named by ARN is
    /// named in the call too, as AWS advises for streams of other accounts.
    pub fn get_records(
        &self,
        stream: &StreamRef,
        iterator: &str,
        limit: u32,
    ) -> Result<RecordsPage, KinesisError> {
        self.get_records_by(stream, iterator, limit, None)
    }

    /// `get_records`, given up as timed out at `deadline` when that comes first.
    pub fn get_records_by(
        &self,
        stream: &StreamRef,
        iterator: &str,
        limit: u32,
        deadline: Option<Instant>,
    ) -> Result<RecordsPage, KinesisError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Answer {
            records: Vec<Rec>,
            next_shard_iterator: Option<String>,
            millis_behind_latest: Option<u64>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Rec {
            data: String,
            partition_key: String,
            sequence_number: String,
            approximate_arrival_timestamp: Option<f64>,
        }
        let mut body = json!({ "ShardIterator": iterator, "Limit": limit });
        if let Some(arn) = stream.arn() {
            body["StreamARN"] = json!(arn.as_str());
        }
        let a: Answer = self.call_json("GetRecords", Some(stream.wire()), &body, deadline)?;
        let mut records = Vec::with_capacity(a.records.len());
        for r in a.records {
            let data = base64::engine::general_purpose::STANDARD
                .decode(r.data.as_bytes())
                .map_err(|e| KinesisError {
                    op: "GetRecords",
                    stream: Some(stream.wire().to_string()),
                    cause: Cause::BadAnswer(format!("record data is not base64: {e}")),
                })?;
            records.push(ReadRecord {
                data,
                partition_key: r.partition_key,
                sequence_number: r.sequence_number,
                arrival: r.approximate_arrival_timestamp,
            });
        }
        Ok(RecordsPage {
            records,
            next_iterator: a.next_shard_iterator,
            millis_behind_latest: a.millis_behind_latest,
        })
    }
}

/// A request body that names `stream`: `{"StreamName": …}` or `{"StreamARN": …}`.
fn naming(stream: &StreamRef) -> serde_json::Value {
    let mut body = serde_json::Map::new();
    body.insert(stream.field().to_string(), json!(stream.wire()));
    serde_json::Value::Object(body)
}

/// Reads an AWS error answer: `__type` (without `prefix#`) and `message`/`Message`.
pub fn aws_error(reply: &Reply) -> AwsError {
    #[derive(Deserialize, Default)]
    struct Body {
        #[serde(rename = "__type")]
        kind: Option<String>,
        message: Option<String>,
        #[serde(rename = "Message")]
        message_upper: Option<String>,
    }
    let body: Body = serde_json::from_slice(&reply.body).unwrap_or_default();
    let code = body
        .kind
        .map(|k| k.rsplit('#').next().unwrap_or_default().to_string())
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| format!("HTTP{}", reply.status));
    let message = body.message.or(body.message_upper).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&reply.body);
        text.chars().take(300).collect()
    });
    AwsError {
        status: reply.status,
        code,
        message,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.as_bytes().to_vec(),
            server_date: None,
        }
    }

    /// A PutRecords call on stream `s` that AWS answered with `code`.
    pub(crate) fn err(status: u16, code: &str, message: &str) -> KinesisError {
        KinesisError {
            op: "PutRecords",
            stream: Some("s".into()),
            cause: Cause::Aws(AwsError {
                status,
                code: code.into(),
                message: message.into(),
            }),
        }
    }

    #[test]
    fn reads_error_bodies() {
        let e = aws_error(&reply(
            400,
            r#"{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"no"}"#,
        ));
        assert_eq!(e.code, "AccessDeniedException");
        assert_eq!(e.message, "no");
        let e = aws_error(&reply(503, "Service Unavailable"));
        assert_eq!(e.code, "HTTP503");
        assert_eq!(e.message, "Service Unavailable");
    }

    #[test]
    fn classifies_errors() {
        assert!(err(400, "ProvisionedThroughputExceededException", "").is_retryable());
        assert!(err(500, "InternalFailure", "").is_retryable());
        assert!(err(502, "HTTP502", "").is_retryable());
        assert!(!err(400, "AccessDeniedException", "").is_retryable());
        assert!(err(400, "AccessDeniedException", "").is_credential_error());
        assert!(!err(400, "ValidationException", "").is_credential_error());
        assert!(err(
            400,
            "InvalidSignatureException",
            "Signature expired: 20130524T000000Z is now earlier than ..."
        )
        .is_clock_skew());
        assert!(!err(
            400,
            "InvalidSignatureException",
            "The request signature we calculated does not match"
        )
        .is_clock_skew());
    }

    #[test]
    fn reads_stream_summaries_old_and_new() {
        let old: StreamSummary = serde_json::from_str(
            r#"{"StreamName":"s","StreamStatus":"ACTIVE","StreamModeDetails":{"StreamMode":"ON_DEMAND"},
               "RetentionPeriodHours":24,"OpenShardCount":4,"EncryptionType":"NONE"}"#,
        )
        .unwrap();
        assert_eq!(old.status(), StreamStatus::Active);
        assert_eq!(old.mode(), Some("ON_DEMAND"));
        assert_eq!(old.max_record_size_kib, None);
        let new: StreamSummary = serde_json::from_str(
            r#"{"StreamName":"s","StreamARN":"arn:aws:kinesis:us-east-1:123456789012:stream/s",
               "StreamStatus":"UPDATING","MaxRecordSizeInKiB":4096}"#,
        )
        .unwrap();
        assert!(new.status().is_writable());
        assert_eq!(new.max_record_size_kib, Some(4096));
    }

    #[test]
    fn names_operation_and_stream() {
        let shown = err(400, "AccessDeniedException", "User x is not authorized").to_string();
        assert_eq!(shown, "PutRecords on stream `s` failed: AccessDeniedException (HTTP 400): User x is not authorized");
        let mut by_arn = err(400, "AccessDeniedException", "no");
        by_arn.stream = Some("arn:aws:kinesis:eu-west-1:222222222222:stream/s".into());
        assert_eq!(
            by_arn.to_string(),
            "PutRecords on stream `s` in account 222222222222 (eu-west-1) failed: AccessDeniedException (HTTP 400): no"
        );
    }

    #[test]
    fn bodies_name_the_stream_by_name_or_arn() {
        assert_eq!(naming(&"s".into()), json!({"StreamName": "s"}));
        let arn = "arn:aws:kinesis:eu-west-1:222222222222:stream/s";
        assert_eq!(naming(&arn.into()), json!({ "StreamARN": arn }));
    }
}
