//! A loopback Kinesis whose shards have real limits, for measuring and testing
//! a shard-aware producer. Each stream has provisioned shards over evenly
//! split hash-key ranges; an entry goes to the open shard whose range holds the
//! MD5 of its partition key (a 128-bit big-endian integer) or its
//! ExplicitHashKey. Each shard is a pair of token buckets (records and bytes
//! of data plus key) that refill at the shard's rate and hold `burst` of it;
//! an entry over either gets `ProvisionedThroughputExceededException` in a
//! PutRecords answer that says so per entry, as Kinesis does. Another producer
//! can be made to use a share of every shard, and shards split at a planned
//! time or on demand (the parent closes, ListShards shows the two children).
//!
//! It answers DescribeStreamSummary (any stream name is made on first use),
//! CreateStream, ListShards (no pagination; or AccessDeniedException, as for
//! a producer without that permission), ListStreams and PutRecords; it
//! checks no signatures. Real networks and services are imitated by a round
//! trip added to every PutRecords answer, a share of the entries that fit
//! refused at random whatever the rate, and streams that say they are
//! ON_DEMAND. With `Tracking`, each accepted record's data is read
//! for a record number (to count losses and duplicates) and the time it was
//! written (to measure delays). The clock is real, or moved only by `advance`
//! so that tests can assert on counts.
//!
//! Built on std, serde_json, md-5, base64, memchr and the crate's own
//! de-aggregation (to track the user records of KPL aggregates); tests use it
//! too (`crate::bench::shard_sink`).

use super::loopback;
use base64::Engine;
use destination_kinesis::kinesis::aggregate::deaggregate;
use md5::{Digest, Md5};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// What each shard takes, and the shape of new streams.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Open shards of a stream made on first use (CreateStream's `ShardCount` wins).
    pub shards: usize,
    /// Records a second per shard (Kinesis: 1,000).
    pub records_per_s: f64,
    /// Bytes a second per shard, data plus partition key (Kinesis: 1 MiB).
    pub bytes_per_s: f64,
    /// How much unused capacity a shard saves up, as time at its full rate.
    pub burst: Duration,
    /// Share (0 to 1) of every shard's rate another producer uses all the time.
    pub other_producer: f64,
    /// Added to every PutRecords answer, as a network and service would.
    pub round_trip: Duration,
    /// Share (0 to 1) of the entries that fit their shard refused all the
    /// same (ProvisionedThroughputExceededException), whatever the rate.
    pub random_refusals: f64,
    /// Whether streams say they are ON_DEMAND (else PROVISIONED).
    pub on_demand: bool,
    /// Whether ListShards is answered (else AccessDeniedException).
    pub list_shards: bool,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            shards: 4,
            records_per_s: 1000.0,
            bytes_per_s: 1024.0 * 1024.0,
            burst: Duration::from_secs(1),
            other_producer: 0.0,
            round_trip: Duration::ZERO,
            random_refusals: 0.0,
            on_demand: false,
            list_shards: true,
        }
    }
}

impl Limits {
    /// Records a second a shard leaves for the producer under test.
    pub fn records_left(&self) -> f64 {
        self.records_per_s * (1.0 - self.other_producer)
    }
}

/// Where the sink finds a record's number and the time it was written: both
/// are digits after a JSON field name in the record's data, as a field of the
/// data itself or escaped inside a string field (`"id":"42"`, `\"at\":123`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracking {
    /// Field holding the record's number.
    pub id_field: String,
    /// Field holding nanoseconds from the sink's epoch (see `reset`) to when
    /// the record was written, if records carry it.
    pub sent_field: Option<String>,
}

/// A split planned at a time after `reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedSplit {
    /// Position of the shard in each stream's shard list (0: `shardId-000000000000`).
    pub shard: usize,
    /// When, from the epoch.
    pub at: Duration,
}

/// One shard as the sink saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardReport {
    /// Its id, e.g. `shardId-000000000004`.
    pub id: String,
    /// The shard it was split from.
    pub parent: Option<String>,
    /// Its hash keys, inclusive.
    pub range: (u128, u128),
    /// When it opened (0 for the stream's first shards).
    pub opened_at: Duration,
    /// When it was closed by a split.
    pub closed_at: Option<Duration>,
    /// Entries it accepted.
    pub accepted: u64,
    /// Entries it refused for its limits.
    pub throttled: u64,
    /// Bytes (data plus key) it accepted.
    pub bytes: u64,
    /// When each accepted entry was accepted, in order.
    pub accepted_at: Vec<Duration>,
    /// With `Tracking`: the record number of each accepted entry, in the same order.
    pub accepted_ids: Vec<Option<u64>>,
    /// For accepted entries that carried a write time, how long after it.
    pub delays: Vec<Duration>,
}

impl ShardReport {
    /// The `q` quantile (0 to 1) of the delays, if any.
    pub fn delay_quantile(&self, q: f64) -> Option<Duration> {
        quantile(self.delays.clone(), q)
    }

    /// Entries accepted within [from, to).
    pub fn accepted_between(&self, from: Duration, to: Duration) -> u64 {
        self.accepted_at
            .iter()
            .filter(|&&t| t >= from && t < to)
            .count() as u64
    }

    /// How long it was open within [from, to).
    pub fn open_between(&self, from: Duration, to: Duration) -> Duration {
        let start = self.opened_at.max(from);
        let end = self.closed_at.unwrap_or(to).min(to);
        end.saturating_sub(start)
    }
}

/// What the sink saw since the last `reset`.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// PutRecords calls.
    pub put_calls: u64,
    /// PutRecords entries, accepted or not.
    pub entries: u64,
    /// Entries accepted.
    pub accepted: u64,
    /// Entries refused for a shard's limits.
    pub throttled: u64,
    /// ListShards calls.
    pub list_shards_calls: u64,
    /// DescribeStreamSummary calls.
    pub describe_calls: u64,
    /// Accepted entries without a record number (with `Tracking`).
    pub untracked: u64,
    /// With `Tracking`: how many times each record number was accepted.
    pub accepted_ids: HashMap<u64, u32>,
    /// Each stream's shards, in the order they were made.
    pub streams: BTreeMap<String, Vec<ShardReport>>,
}

impl Report {
    /// Record numbers below `records` never accepted.
    pub fn lost(&self, records: u64) -> u64 {
        (0..records)
            .filter(|i| !self.accepted_ids.contains_key(i))
            .count() as u64
    }

    /// Acceptances beyond the first of each record.
    pub fn duplicates(&self) -> u64 {
        self.accepted_ids
            .values()
            .map(|&n| u64::from(n.saturating_sub(1)))
            .sum()
    }

    /// Every shard of every stream.
    pub fn shards(&self) -> impl Iterator<Item = &ShardReport> {
        self.streams.values().flatten()
    }
}

/// The `q` quantile (0 to 1) of `values`, if any (nearest rank).
pub fn quantile(mut values: Vec<Duration>, q: f64) -> Option<Duration> {
    values.sort_unstable();
    let last = values.len().checked_sub(1)?;
    Some(values[((last as f64) * q).round() as usize])
}

/// The shard id Kinesis gives the `index`th shard of a stream.
pub fn shard_id(index: usize) -> String {
    format!("shardId-{index:012}")
}

/// MD5 of a partition key as a 128-bit big-endian integer: where Kinesis puts it.
pub fn hash_of(partition_key: &str) -> u128 {
    let digest: [u8; 16] = Md5::digest(partition_key.as_bytes()).into();
    u128::from_be_bytes(digest)
}

/// The hash-key ranges (inclusive) of `n` shards that split the key space evenly.
pub fn even_ranges(n: usize) -> Vec<(u128, u128)> {
    let n = n.max(1) as u128;
    // 2^128 = q * n + r + 1: the first r + 1 ranges get one key more.
    let (q, r) = (u128::MAX / n, u128::MAX % n);
    let start = |i: u128| q * i + i.min(r + 1);
    (0..n)
        .map(|i| {
            let end = if i + 1 == n {
                u128::MAX
            } else {
                start(i + 1) - 1
            };
            (start(i), end)
        })
        .collect()
}

/// A running sink on a loopback port; it lives as long as the process.
pub struct ShardSink {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl ShardSink {
    /// Starts a sink whose buckets refill in real time.
    pub fn start(limits: Limits) -> io::Result<ShardSink> {
        ShardSink::with_clock(limits, false)
    }

    /// Starts a sink whose clock moves only by `advance`, so that what is
    /// throttled depends on the calls alone.
    pub fn start_manual(limits: Limits) -> io::Result<ShardSink> {
        ShardSink::with_clock(limits, true)
    }

    fn with_clock(limits: Limits, manual: bool) -> io::Result<ShardSink> {
        let state = Arc::new(Mutex::new(State::new(limits, Instant::now(), manual)));
        let shared = Arc::clone(&state);
        let port = loopback::serve(Arc::new(move |operation, body, out| {
            let (status, answer) = handle(&shared, operation, body);
            out.extend_from_slice(answer.as_bytes());
            status
        }))?;
        Ok(ShardSink { port, state })
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Forgets every stream, split and count; new streams get `limits`. Times
    /// are from `epoch` on (a manual clock restarts at zero).
    pub fn reset(&self, limits: Limits, epoch: Instant) {
        let mut s = lock(&self.state);
        let (manual, tracking) = (s.manual, s.tracking.take());
        *s = State::new(limits, epoch, manual);
        s.tracking = tracking;
    }

    /// Reads record numbers (and write times) from accepted records' data.
    pub fn track(&self, tracking: Option<Tracking>) {
        lock(&self.state).tracking = tracking;
    }

    /// Splits a shard of every stream at `split.at` (checked at each request).
    pub fn plan_split(&self, split: PlannedSplit) {
        lock(&self.state).planned.push(split);
    }

    /// Splits `stream`'s shard `shard` now; gives the children's ids.
    pub fn split(&self, stream: &str, shard: &str) -> Result<(String, String), String> {
        let mut s = lock(&self.state);
        let now = s.now();
        let st = s
            .streams
            .get_mut(stream)
            .ok_or_else(|| format!("no stream `{stream}`"))?;
        let index = st
            .shards
            .iter()
            .position(|x| x.id == shard)
            .ok_or_else(|| format!("no shard `{shard}` in `{stream}`"))?;
        st.split(index, now)
    }

    /// Moves a manual clock on.
    pub fn advance(&self, by: Duration) {
        let mut s = lock(&self.state);
        assert!(s.manual, "advance is for a sink started with start_manual");
        s.manual_now += by;
    }

    /// What was seen since the last reset.
    pub fn report(&self) -> Report {
        let s = lock(&self.state);
        let mut r = s.counts.clone();
        r.streams = s
            .streams
            .iter()
            .map(|(name, st)| (name.clone(), st.shards.iter().map(Shard::report).collect()))
            .collect();
        r
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    size: f64,
    rate: f64,
    at: Duration,
}

impl Bucket {
    /// A full bucket at `now`.
    fn new(rate: f64, size: f64, now: Duration) -> Bucket {
        Bucket {
            tokens: size,
            size,
            rate,
            at: now,
        }
    }

    fn refill(&mut self, now: Duration) {
        let elapsed = now.saturating_sub(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.size);
        self.at = self.at.max(now);
    }
}

/// One shard: its range, sequence numbers, buckets and what it accepted.
#[derive(Debug, Clone)]
struct Shard {
    id: String,
    parent: Option<String>,
    start: u128,
    end: u128,
    first_sequence: u128,
    /// Set when closed: the last sequence number it could have given.
    last_sequence: Option<u128>,
    opened_at: Duration,
    closed_at: Option<Duration>,
    records: Bucket,
    bytes: Bucket,
    accepted: u64,
    throttled: u64,
    accepted_bytes: u64,
    accepted_at: Vec<Duration>,
    accepted_ids: Vec<Option<u64>>,
    delays: Vec<Duration>,
}

impl Shard {
    fn report(&self) -> ShardReport {
        ShardReport {
            id: self.id.clone(),
            parent: self.parent.clone(),
            range: (self.start, self.end),
            opened_at: self.opened_at,
            closed_at: self.closed_at,
            accepted: self.accepted,
            throttled: self.throttled,
            bytes: self.accepted_bytes,
            accepted_at: self.accepted_at.clone(),
            accepted_ids: self.accepted_ids.clone(),
            delays: self.delays.clone(),
        }
    }

    fn listed(&self) -> Value {
        let mut v = json!({
            "ShardId": self.id,
            "HashKeyRange": {
                "StartingHashKey": self.start.to_string(),
                "EndingHashKey": self.end.to_string(),
            },
            "SequenceNumberRange": {"StartingSequenceNumber": sequence_text(self.first_sequence)},
        });
        if let Some(parent) = &self.parent {
            v["ParentShardId"] = json!(parent);
        }
        if let Some(last) = self.last_sequence {
            v["SequenceNumberRange"]["EndingSequenceNumber"] = json!(sequence_text(last));
        }
        v
    }
}

/// Sequence numbers as Kinesis writes them: long decimal strings.
fn sequence_text(n: u128) -> String {
    format!("49{n:054}")
}

/// One stream.
#[derive(Debug, Clone)]
struct Stream {
    shards: Vec<Shard>,
    next_sequence: u128,
    limits: Limits,
}

impl Stream {
    fn new(count: usize, limits: Limits, now: Duration) -> Stream {
        let mut s = Stream {
            shards: Vec::new(),
            next_sequence: 1,
            limits,
        };
        for (start, end) in even_ranges(count) {
            s.open(start, end, None, now);
        }
        s
    }

    fn open(&mut self, start: u128, end: u128, parent: Option<String>, now: Duration) -> String {
        let l = self.limits;
        let left = 1.0 - l.other_producer.clamp(0.0, 1.0);
        let burst = l.burst.as_secs_f64();
        let id = shard_id(self.shards.len());
        self.shards.push(Shard {
            id: id.clone(),
            parent,
            start,
            end,
            first_sequence: self.next_sequence,
            last_sequence: None,
            opened_at: now,
            closed_at: None,
            records: Bucket::new(l.records_per_s * left, l.records_per_s * burst, now),
            bytes: Bucket::new(l.bytes_per_s * left, l.bytes_per_s * burst, now),
            accepted: 0,
            throttled: 0,
            accepted_bytes: 0,
            accepted_at: Vec::new(),
            accepted_ids: Vec::new(),
            delays: Vec::new(),
        });
        id
    }

    fn split(&mut self, index: usize, now: Duration) -> Result<(String, String), String> {
        let parent = &mut self.shards[index];
        if parent.closed_at.is_some() {
            return Err(format!("shard `{}` is already closed", parent.id));
        }
        if parent.start == parent.end {
            return Err(format!("shard `{}` has one hash key", parent.id));
        }
        parent.closed_at = Some(now);
        parent.last_sequence = Some(self.next_sequence);
        self.next_sequence += 1;
        let (start, end, id) = (parent.start, parent.end, parent.id.clone());
        let middle = start + (end - start) / 2;
        let low = self.open(start, middle, Some(id.clone()), now);
        let high = self.open(middle + 1, end, Some(id), now);
        Ok((low, high))
    }

    fn open_shard_for(&self, hash: u128) -> Option<usize> {
        self.shards
            .iter()
            .position(|s| s.closed_at.is_none() && s.start <= hash && hash <= s.end)
    }

    fn open_count(&self) -> usize {
        self.shards.iter().filter(|s| s.closed_at.is_none()).count()
    }
}

/// Everything the sink knows.
struct State {
    limits: Limits,
    epoch: Instant,
    manual: bool,
    manual_now: Duration,
    tracking: Option<Tracking>,
    planned: Vec<PlannedSplit>,
    streams: BTreeMap<String, Stream>,
    counts: Report,
    /// xorshift state for the random refusals (the same sequence every run).
    random: u64,
}

impl State {
    fn new(limits: Limits, epoch: Instant, manual: bool) -> State {
        State {
            limits,
            epoch,
            manual,
            manual_now: Duration::ZERO,
            tracking: None,
            planned: Vec::new(),
            streams: BTreeMap::new(),
            counts: Report::default(),
            random: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// Whether the next entry that fits is refused at random.
    fn refuse_at_random(&mut self) -> bool {
        if self.limits.random_refusals <= 0.0 {
            return false;
        }
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        ((self.random >> 11) as f64 / (1u64 << 53) as f64) < self.limits.random_refusals
    }

    fn now(&self) -> Duration {
        if self.manual {
            self.manual_now
        } else {
            self.epoch.elapsed()
        }
    }

    /// The stream, made with the sink's limits if it is new.
    fn stream(&mut self, name: &str) -> &mut Stream {
        let (limits, now) = (self.limits, self.now());
        self.streams
            .entry(name.to_string())
            .or_insert_with(|| Stream::new(limits.shards, limits, now))
    }

    /// Carries out the planned splits that are due.
    fn split_due(&mut self) {
        let now = self.now();
        let due: Vec<PlannedSplit> = self
            .planned
            .iter()
            .filter(|p| p.at <= now)
            .copied()
            .collect();
        self.planned.retain(|p| p.at > now);
        for p in due {
            for stream in self.streams.values_mut() {
                if p.shard < stream.shards.len() {
                    let _ = stream.split(p.shard, p.at);
                }
            }
        }
    }
}

/// An error answer as Kinesis gives it.
fn refusal(status: u16, kind: &str, message: &str) -> (u16, String) {
    (
        status,
        json!({"__type": kind, "message": message}).to_string(),
    )
}

/// The stream a request names, by `StreamName` or `StreamARN`.
fn stream_name(body: &Value) -> Option<String> {
    if let Some(name) = body["StreamName"].as_str() {
        return Some(name.to_string());
    }
    let arn = body["StreamARN"].as_str()?;
    Some(arn.rsplit_once("stream/")?.1.to_string())
}

fn handle(state: &Mutex<State>, operation: &str, body: &[u8]) -> (u16, String) {
    if operation == "putrecords" {
        return put_records(state, body);
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return refusal(400, "SerializationException", "the body is not JSON");
    };
    let mut s = lock(state);
    s.split_due();
    match operation {
        "describestreamsummary" => {
            s.counts.describe_calls += 1;
            let Some(name) = stream_name(&request) else {
                return refusal(400, "ValidationException", "StreamName is missing");
            };
            let open = s.stream(&name).open_count();
            let summary = json!({"StreamDescriptionSummary": {
                "StreamName": name,
                "StreamARN": format!("arn:aws:kinesis:us-east-1:000000000000:stream/{name}"),
                "StreamStatus": "ACTIVE",
                "StreamModeDetails": {"StreamMode": if s.limits.on_demand { "ON_DEMAND" } else { "PROVISIONED" }},
                "RetentionPeriodHours": 24,
                "StreamCreationTimestamp": 1700000000.0,
                "EnhancedMonitoring": [],
                "EncryptionType": "NONE",
                "OpenShardCount": open,
                "ConsumerCount": 0,
            }});
            (200, summary.to_string())
        }
        "createstream" => {
            let Some(name) = stream_name(&request) else {
                return refusal(400, "ValidationException", "StreamName is missing");
            };
            if s.streams.contains_key(&name) {
                return refusal(
                    400,
                    "ResourceInUseException",
                    &format!("Stream {name} under account 000000000000 already exists."),
                );
            }
            let count = request["ShardCount"]
                .as_u64()
                .map_or(s.limits.shards, |n| n as usize);
            let (limits, now) = (s.limits, s.now());
            s.streams.insert(name, Stream::new(count, limits, now));
            (200, "{}".to_string())
        }
        "listshards" => {
            s.counts.list_shards_calls += 1;
            if !s.limits.list_shards {
                return refusal(
                    400,
                    "AccessDeniedException",
                    "User: arn:aws:iam::000000000000:user/bench is not authorized to perform: kinesis:ListShards",
                );
            }
            // A NextToken is never given out, so a request with one is refused.
            let Some(name) = stream_name(&request) else {
                return refusal(400, "InvalidArgumentException", "StreamName is missing");
            };
            let shards: Vec<Value> = s.stream(&name).shards.iter().map(Shard::listed).collect();
            (200, json!({"Shards": shards}).to_string())
        }
        "liststreams" => {
            let names: Vec<&String> = s.streams.keys().collect();
            (
                200,
                json!({"StreamNames": names, "HasMoreStreams": false}).to_string(),
            )
        }
        _ => (200, "{}".to_string()),
    }
}

/// A PutRecords entry as sent.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EntryIn {
    data: String,
    partition_key: String,
    explicit_hash_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsIn {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    records: Vec<EntryIn>,
}

/// An entry ready to be judged: where it goes, its size, what it carries.
struct Entry {
    hash: u128,
    size: usize,
    /// The record numbers it carries (several in a KPL aggregate), with `Tracking`.
    ids: Vec<Option<u64>>,
    sent: Option<Duration>,
}

fn put_records(state: &Mutex<State>, body: &[u8]) -> (u16, String) {
    let request: PutRecordsIn = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return refusal(400, "SerializationException", &e.to_string()),
    };
    let name = match (&request.stream_name, &request.stream_arn) {
        (Some(n), _) => n.clone(),
        (None, Some(arn)) => arn
            .rsplit_once("stream/")
            .map_or(arn.clone(), |(_, n)| n.to_string()),
        (None, None) => return refusal(400, "ValidationException", "StreamName is missing"),
    };
    if request.records.is_empty() || request.records.len() > 500 {
        return refusal(
            400,
            "ValidationException",
            &format!("1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length between 1 and 500 (got {})", request.records.len()),
        );
    }
    let tracking = lock(state).tracking.clone();
    let mut entries = Vec::with_capacity(request.records.len());
    for e in &request.records {
        let keys = e.partition_key.chars().count();
        if !(1..=256).contains(&keys) {
            return refusal(
                400,
                "ValidationException",
                "a partition key must be 1 to 256 characters",
            );
        }
        let Ok(data) = base64::engine::general_purpose::STANDARD.decode(&e.data) else {
            return refusal(400, "SerializationException", "Data is not base64");
        };
        let hash = match &e.explicit_hash_key {
            Some(h) => match h.parse::<u128>() {
                Ok(h) => h,
                Err(_) => {
                    return refusal(
                        400,
                        "InvalidArgumentException",
                        "ExplicitHashKey is not a 128-bit decimal number",
                    )
                }
            },
            None => hash_of(&e.partition_key),
        };
        // An aggregate's user records are tracked one by one.
        let users: Vec<Vec<u8>> = match (&tracking, deaggregate(&data)) {
            (Some(_), Ok(users)) => users.into_iter().map(|u| u.data).collect(),
            _ => Vec::new(),
        };
        let carried: Vec<&[u8]> = if users.is_empty() {
            vec![&data]
        } else {
            users.iter().map(Vec::as_slice).collect()
        };
        let number = |data: &[u8], field: &str| digits_after(data, field);
        entries.push(Entry {
            hash,
            size: data.len() + e.partition_key.len(),
            ids: match &tracking {
                Some(t) => carried.iter().map(|d| number(d, &t.id_field)).collect(),
                None => Vec::new(),
            },
            sent: tracking
                .as_ref()
                .and_then(|t| number(carried[0], t.sent_field.as_deref()?))
                .map(Duration::from_nanos),
        });
    }
    let round_trip = lock(state).limits.round_trip;
    let answer = judge_entries(state, &name, &entries);
    // The round trip is spent after the entries are judged, as a service's
    // answer travels back: the shards' clocks see the call when it arrives.
    std::thread::sleep(round_trip);
    answer
}

/// Stores what fits of `entries` in `name`'s shards, refuses the rest; the answer.
fn judge_entries(state: &Mutex<State>, name: &str, entries: &[Entry]) -> (u16, String) {
    let mut s = lock(state);
    s.split_due();
    let now = s.now();
    let tracked = s.tracking.is_some();
    let mut results = Vec::with_capacity(entries.len());
    let (mut failed, mut accepted_ids) = (0u64, Vec::new());
    let random: Vec<bool> = (0..entries.len()).map(|_| s.refuse_at_random()).collect();
    let stream = s.stream(name);
    for (e, &unlucky) in entries.iter().zip(&random) {
        let Some(i) = stream.open_shard_for(e.hash) else {
            // The open shards always cover the key space.
            failed += 1;
            results.push(json!({"ErrorCode": "InternalFailure", "ErrorMessage": "no open shard"}));
            continue;
        };
        let shard = &mut stream.shards[i];
        shard.records.refill(now);
        shard.bytes.refill(now);
        if unlucky || shard.records.tokens < 1.0 || shard.bytes.tokens < e.size as f64 {
            shard.throttled += 1;
            failed += 1;
            results.push(json!({
                "ErrorCode": "ProvisionedThroughputExceededException",
                "ErrorMessage": format!("Rate exceeded for shard {} in stream {name} under account 000000000000.", shard.id),
            }));
            continue;
        }
        shard.records.tokens -= 1.0;
        shard.bytes.tokens -= e.size as f64;
        shard.accepted += 1;
        shard.accepted_bytes += e.size as u64;
        shard.accepted_at.push(now);
        if tracked {
            shard.accepted_ids.push(e.ids.first().copied().flatten());
        }
        if let Some(sent) = e.sent {
            shard.delays.push(now.saturating_sub(sent));
        }
        let sequence = stream.next_sequence;
        stream.next_sequence += 1;
        results.push(json!({"SequenceNumber": sequence_text(sequence), "ShardId": shard.id}));
        if tracked {
            accepted_ids.extend(e.ids.iter().copied());
        }
    }
    let c = &mut s.counts;
    c.put_calls += 1;
    c.entries += entries.len() as u64;
    c.throttled += failed;
    c.accepted += entries.len() as u64 - failed;
    for id in accepted_ids {
        match id {
            Some(id) => *c.accepted_ids.entry(id).or_default() += 1,
            None => c.untracked += 1,
        }
    }
    let answer = json!({"FailedRecordCount": failed, "Records": results, "EncryptionType": "NONE"});
    (200, answer.to_string())
}

/// The number in the digits after the JSON field `name` in `data`, whether
/// the field is in the data itself or escaped inside a string (`\"name\":\"12\"`).
pub fn digits_after(data: &[u8], name: &str) -> Option<u64> {
    let needle = format!("\"{name}");
    for at in memchr::memmem::find_iter(data, needle.as_bytes()) {
        let rest = &data[at + needle.len()..];
        // The name ends with a quote (escaped or not), then a colon, then
        // maybe a quote: at most `\":\"` before the digits.
        let skip = rest
            .iter()
            .take(6)
            .position(|b| b.is_ascii_digit())
            .filter(|&n| {
                rest[..n].contains(&b':') && rest[..n].iter().all(|b| b"\\\": ".contains(b))
            });
        if let Some(n) = skip {
            let mut digits = rest[n..].iter().take_while(|b| b.is_ascii_digit());
            return digits.try_fold(0u64, |acc, &d| {
                acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            });
        }
    }
    None
}
