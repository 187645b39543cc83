//! A fault-injecting Kinesis stand-in, owned by the tests: a small HTTP/1.1
//! server on a loopback port that checks every request's SigV4 signature with
//! its own implementation (hmac 0.12 and sha2 0.10, no code shared with
//! `src/http.rs`), serves the calls the program makes, keeps every record it
//! accepts (with a global accept counter) and misbehaves on demand.

use super::http_server::{lock, Answer, Reply, Request, Server};
use base64::Engine;
use ref_hmac::{Hmac, Mac};
use ref_sha2::{Digest, Sha256};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The access key the stand-in knows by default.
pub const ACCESS_KEY: &str = "AKIASTANDIN7EXAMPLE1";
/// Its secret: must never appear in anything the program prints.
pub const SECRET_KEY: &str = "sTaNdIn/SeCrEt+Key/9f3a7c1e5b2d4f6a8c0e2b4d6f";
/// Its session token: must never appear in anything the program prints.
pub const SESSION_TOKEN: &str = "FwoGZXIvYXdzEStandInSessionToken0q7W+x9Zk3v/mP2Lr8Yb5N1c==";
/// The region the stand-in serves unless `set_region` says another.
pub const REGION: &str = "us-east-1";
/// The account in ARNs and messages.
pub const ACCOUNT: &str = "123456789012";

/// Most entries in one PutRecords call.
pub const MAX_ENTRIES: usize = 500;
/// Largest record (data plus partition key) of a stream that reports no
/// `MaxRecordSizeInKiB`, as emulators and AWS before large records.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Largest PutRecords payload (data plus partition keys) for such a stream.
pub const MAX_REQUEST_BYTES: usize = 5 * 1024 * 1024;
/// Largest PutRecords payload for a stream that reports `MaxRecordSizeInKiB`,
/// as the current PutRecords reference gives it.
pub const LARGE_REQUEST_BYTES: usize = 10 * 1024 * 1024;

type HmacSha256 = Hmac<Sha256>;

/// What to do with one request, decided by the fault script.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Serve it normally.
    None,
    /// A 200 answer in which about `per_mille`/1000 entries fail with `code`
    /// (PutRecords only); the others are stored.
    FailEntries { code: &'static str, per_mille: u32 },
    /// A 200 answer in which the entries whose data holds `needle` fail with
    /// `code` (PutRecords only); the others are stored.
    FailEntriesWith {
        code: &'static str,
        needle: &'static str,
    },
    /// An error answer; nothing is stored.
    Reject {
        status: u16,
        code: &'static str,
        message: String,
    },
    /// An error status with a body that is not AWS's JSON (as a proxy or
    /// load balancer in front of the service may answer); nothing is stored.
    BareStatus(u16),
    /// A 200 answer in which every `every`-th entry has an empty
    /// `SequenceNumber` and no error code (PutRecords only): it is stored,
    /// but the answer does not acknowledge it.
    EmptySequenceNumbers { every: usize },
    /// Close the connection without an answer, before storing anything.
    CloseBeforeStore,
    /// Store the records, then close the connection without an answer.
    CloseAfterStore,
    /// Store the records, then answer only after this long (meant to be
    /// longer than the client's request timeout, so the answer is lost).
    SlowAnswer(Duration),
    /// The stream is deleted now: ResourceNotFoundException from here on.
    DeleteStream,
}

impl Fault {
    /// Whole-request throttling, as AWS answers it.
    pub fn throttle() -> Fault {
        Fault::Reject {
            status: 400,
            code: "ProvisionedThroughputExceededException",
            message: "Rate exceeded for shard shardId-000000000000 in stream s under account 123456789012.".into(),
        }
    }
    /// An HTTP 500 InternalFailure or 503 ServiceUnavailable.
    pub fn server_error(status: u16) -> Fault {
        Fault::Reject {
            status,
            code: if status == 503 {
                "ServiceUnavailable"
            } else {
                "InternalFailure"
            },
            message: "We encountered an internal error. Please try again.".into(),
        }
    }
    /// The caller lacks the permission.
    pub fn access_denied(op: &str) -> Fault {
        Fault::Reject {
            status: 400,
            code: "AccessDeniedException",
            message: format!(
                "User: arn:aws:iam::{ACCOUNT}:user/loader is not authorized to perform: kinesis:{op} on resource: arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/s because no identity-based policy allows the kinesis:{op} action"
            ),
        }
    }
}

/// A deterministic hash of a call number, for spreading faults over calls.
pub fn mix(n: u64, salt: u64) -> u64 {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

/// Which call a fault script is asked about.
#[derive(Debug, Clone)]
pub struct Call {
    /// The operation, e.g. `PutRecords`.
    pub op: String,
    /// 0-based count of earlier requests of this operation that passed the
    /// signature check.
    pub n: u64,
}

/// Decides the fault for each request.
pub type Script = Box<dyn Fn(&Call) -> Fault + Send + Sync>;

/// A record the stand-in accepted.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The stream.
    pub stream: String,
    /// The partition key.
    pub partition_key: String,
    /// The record's bytes.
    pub data: Vec<u8>,
    /// Whether the answer of that request was withheld (dropped connection,
    /// slow answer) or did not acknowledge it (an empty sequence number): the
    /// client cannot know it was stored.
    pub answer_lost: bool,
}

/// One PutRecords request as it arrived.
#[derive(Debug, Clone)]
pub struct Put {
    /// Entries.
    pub entries: usize,
    /// Data plus partition key bytes.
    pub payload: usize,
    /// The fault applied.
    pub fault: Fault,
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The operation (or `?` when unreadable).
    pub op: String,
    /// The HTTP status answered, or 0 when no answer was sent.
    pub status: u16,
    /// The error code answered, if any.
    pub error: Option<String>,
    /// The access key that signed it, if it was signed.
    pub access_key: Option<String>,
    /// The body field that named the stream: `StreamName`, `StreamARN`, or
    /// None when none did.
    pub stream_field: Option<&'static str>,
}

/// A key a stand-in knows.
pub struct Key {
    /// Its secret.
    pub secret: String,
    /// The session token that must come with it, for temporary credentials.
    pub token: Option<String>,
    /// Whether that token has expired.
    pub token_expired: bool,
}

impl Key {
    /// A key with `secret` and, for temporary credentials, `token`.
    pub fn new(secret: &str, token: Option<&str>) -> Key {
        Key {
            secret: secret.to_string(),
            token: token.map(str::to_string),
            token_expired: false,
        }
    }
}

struct StreamState {
    status: &'static str,
    shards: u32,
    describes_while_creating: u32,
    /// `MaxRecordSizeInKiB`, when the stream reports one.
    max_record_size_kib: Option<u32>,
    /// The largest PutRecords payload taken, when not what the reported
    /// limits say (an endpoint that reports large records but still takes
    /// 5 MiB calls).
    max_request: Option<usize>,
}

impl StreamState {
    fn new(status: &'static str, shards: u32, max_record_size_kib: Option<u32>) -> StreamState {
        StreamState {
            status,
            shards,
            describes_while_creating: 0,
            max_record_size_kib,
            max_request: None,
        }
    }

    /// Its largest entry and largest PutRecords payload, bytes.
    fn limits(&self) -> (usize, usize) {
        let (record, request) = match self.max_record_size_kib {
            Some(kib) => (kib as usize * 1024, LARGE_REQUEST_BYTES),
            None => (MAX_RECORD_BYTES, MAX_REQUEST_BYTES),
        };
        (record, self.max_request.unwrap_or(request))
    }
}

struct Inner {
    keys: HashMap<String, Key>,
    streams: BTreeMap<String, StreamState>,
    stored: Vec<Stored>,
    puts: Vec<Put>,
    seen: Vec<Seen>,
    per_op: HashMap<String, u64>,
    script: Option<Script>,
    clock_offset: i64,
    stays_creating: bool,
    list_pages: Option<ListPages>,
    rng: u64,
    /// The region requests must be signed for, and stream ARNs name.
    region: String,
}

/// How ListStreams answers in pages, as AWS does.
#[derive(Debug, Clone, Copy)]
pub struct ListPages {
    /// Streams per page, whatever the request's Limit.
    pub size: usize,
    /// Today's AWS: NextToken and StreamSummaries. Without: only names and
    /// HasMoreStreams, the next page asked for with ExclusiveStartStreamName.
    pub tokens: bool,
}

/// The running stand-in; stops when dropped.
pub struct StandIn {
    inner: Arc<Mutex<Inner>>,
    /// Its loopback port.
    pub port: u16,
    _server: Server,
}

impl StandIn {
    /// Starts a stand-in on a free loopback port that knows `ACCESS_KEY` with
    /// `SECRET_KEY` and `SESSION_TOKEN`.
    pub fn start() -> StandIn {
        let mut keys = HashMap::new();
        keys.insert(
            ACCESS_KEY.to_string(),
            Key::new(SECRET_KEY, Some(SESSION_TOKEN)),
        );
        let inner = Arc::new(Mutex::new(Inner {
            keys,
            streams: BTreeMap::new(),
            stored: Vec::new(),
            puts: Vec::new(),
            seen: Vec::new(),
            per_op: HashMap::new(),
            script: None,
            clock_offset: 0,
            stays_creating: false,
            list_pages: None,
            rng: 0x853C_49E6_748F_EA9B,
            region: REGION.to_string(),
        }));
        let state = Arc::clone(&inner);
        let server = Server::start(move |request| handle(request, &state));
        StandIn {
            inner,
            port: server.port,
            _server: server,
        }
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A config for it with the default key and token, merged with `extra`.
    pub fn config(&self, extra: Value) -> Value {
        let mut c = json!({
            "endpoint": self.endpoint(),
            "region": REGION,
            "accessKey": ACCESS_KEY,
            "privateKey": SECRET_KEY,
            "sessionToken": SESSION_TOKEN,
            "bufferSize": 100,
            "requestTimeoutSeconds": 5,
            "retryTimeoutSeconds": 60,
            // Its throttling is injected at random, not a shard's capacity:
            // pacing by shard is proven against the benchmark's shard sink.
            "shardRateLimit": 0
        });
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                c.insert(k.clone(), v.clone());
            }
        }
        c
    }

    /// Adds an ACTIVE stream that reports no `MaxRecordSizeInKiB` (as
    /// emulators do): 1 MiB entries and 5 MiB requests.
    pub fn add_stream(&self, name: &str, shards: u32) {
        lock(&self.inner)
            .streams
            .insert(name.to_string(), StreamState::new("ACTIVE", shards, None));
    }

    /// Adds an ACTIVE stream whose `MaxRecordSizeInKiB` is `kib`: entries up to
    /// that, requests up to 10 MiB.
    pub fn add_stream_with_max_record_size(&self, name: &str, shards: u32, kib: u32) {
        lock(&self.inner).streams.insert(
            name.to_string(),
            StreamState::new("ACTIVE", shards, Some(kib)),
        );
    }

    /// Adds an ACTIVE stream that reports `MaxRecordSizeInKiB` `kib` but
    /// takes PutRecords calls of at most `max_request` bytes, as emulators
    /// and regions not yet updated may.
    pub fn add_stream_taking_requests_of(&self, name: &str, kib: u32, max_request: usize) {
        let mut stream = StreamState::new("ACTIVE", 1, Some(kib));
        stream.max_request = Some(max_request);
        lock(&self.inner).streams.insert(name.to_string(), stream);
    }

    /// Adds a stream that is CREATING (and stays so while `stays_creating`).
    pub fn add_creating_stream(&self, name: &str) {
        lock(&self.inner)
            .streams
            .insert(name.to_string(), StreamState::new("CREATING", 1, None));
    }

    /// The `MaxRecordSizeInKiB` a stream reports (None: it reports none, or
    /// there is no such stream).
    pub fn max_record_size_kib(&self, name: &str) -> Option<u32> {
        lock(&self.inner)
            .streams
            .get(name)
            .and_then(|s| s.max_record_size_kib)
    }

    /// Serves `region` instead of `REGION`: requests must be signed for it,
    /// and a stream ARN must name it (and `ACCOUNT`), as in AWS a stream is
    /// reached in its own region.
    pub fn set_region(&self, region: &str) {
        lock(&self.inner).region = region.to_string();
    }

    /// Whether created streams stay CREATING forever.
    pub fn set_stays_creating(&self, stays: bool) {
        lock(&self.inner).stays_creating = stays;
    }

    /// Makes ListStreams answer in pages (by default it lists every stream at once).
    pub fn set_list_pages(&self, pages: ListPages) {
        lock(&self.inner).list_pages = Some(pages);
    }

    /// The stream names and statuses.
    pub fn streams(&self) -> Vec<(String, String)> {
        lock(&self.inner)
            .streams
            .iter()
            .map(|(k, v)| (k.clone(), v.status.to_string()))
            .collect()
    }

    /// Sets the fault script.
    pub fn script(&self, script: impl Fn(&Call) -> Fault + Send + Sync + 'static) {
        lock(&self.inner).script = Some(Box::new(script));
    }

    /// Moves the simulated clock (seconds ahead of the real one; negative: behind).
    pub fn set_clock_offset(&self, seconds: i64) {
        lock(&self.inner).clock_offset = seconds;
    }

    /// Marks the default key's session token as expired.
    pub fn expire_token(&self) {
        if let Some(k) = lock(&self.inner).keys.get_mut(ACCESS_KEY) {
            k.token_expired = true;
        }
    }

    /// Adds a long-term key (no session token).
    pub fn add_key(&self, access_key: &str, secret: &str) {
        lock(&self.inner)
            .keys
            .insert(access_key.to_string(), Key::new(secret, None));
    }

    /// Adds temporary credentials: the key, its secret and its session token.
    pub fn add_session_key(&self, access_key: &str, secret: &str, token: &str) {
        lock(&self.inner)
            .keys
            .insert(access_key.to_string(), Key::new(secret, Some(token)));
    }

    /// Forgets a key, so requests signed with it are refused (e.g. the default
    /// key, when only keys issued by another stand-in may be used).
    pub fn forget_key(&self, access_key: &str) {
        lock(&self.inner).keys.remove(access_key);
    }

    /// How many records were stored so far (the accept counter).
    pub fn stored_len(&self) -> usize {
        lock(&self.inner).stored.len()
    }

    /// Every stored record, in acceptance order.
    pub fn stored(&self) -> Vec<Stored> {
        lock(&self.inner).stored.clone()
    }

    /// Every PutRecords request that passed the signature check, with its fault.
    pub fn puts(&self) -> Vec<Put> {
        lock(&self.inner).puts.clone()
    }

    /// Every request seen.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.inner).seen.clone()
    }

    /// Waits (at most 30 s) until `ready` holds for the stand-in.
    pub fn wait_for(&self, what: &str, ready: impl Fn(&StandIn) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !ready(self) {
            assert!(
                std::time::Instant::now() < deadline,
                "waited in vain for {what}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Requests answered with this error code.
    pub fn errors(&self, code: &str) -> usize {
        lock(&self.inner)
            .seen
            .iter()
            .filter(|s| s.error.as_deref() == Some(code))
            .count()
    }
}

/// A stand-in with one ACTIVE one-shard stream, `_s`: where catalog stream
/// `s` goes.
pub fn with_stream_s() -> StandIn {
    let s = StandIn::start();
    s.add_stream("_s", 1);
    s
}

/// An AWS error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// HTTP status.
    pub status: u16,
    /// `__type`.
    pub code: &'static str,
    /// `message`.
    pub message: String,
}

impl AwsError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> AwsError {
        AwsError {
            status,
            code,
            message: message.into(),
        }
    }
}

fn error_body(e: &AwsError) -> Vec<u8> {
    json!({"__type": e.code, "message": e.message})
        .to_string()
        .into_bytes()
}

/// An answer with `body`, to be sent with the stand-in's headers.
fn answer(status: u16, body: Vec<u8>) -> Reply {
    Reply::Answer(Answer::new(status, body))
}

fn handle(request: &Request, inner: &Mutex<Inner>) -> Reply {
    let op = request
        .header("x-amz-target")
        .and_then(|t| t.strip_prefix("Kinesis_20131202."))
        .unwrap_or("?")
        .to_string();
    let mut g = lock(inner);
    let region = g.region.clone();
    let outcome =
        authenticate_in(request, &g.keys, g.clock_offset, "kinesis", &region).and_then(|()| {
            let n = {
                let c = g.per_op.entry(op.clone()).or_insert(0);
                *c += 1;
                *c - 1
            };
            serve(&op, n, request, &mut g)
        });
    let (error, reply) = match outcome {
        Ok(reply) => (None, reply),
        Err(e) => (Some(e.code.to_string()), answer(e.status, error_body(&e))),
    };
    // As AWS answers: its clock in Date, and a request id.
    let headed = |a: Answer| {
        a.with_header("Date", &http_date(now_secs() + g.clock_offset))
            .with_header("x-amzn-RequestId", "standin")
    };
    let (status, reply) = match reply {
        Reply::Answer(a) => (a.status, Reply::Answer(headed(a))),
        Reply::Later(wait, a) => (a.status, Reply::Later(wait, headed(a))),
        other => (0, other),
    };
    g.seen.push(Seen {
        op,
        status,
        error,
        access_key: signer(request),
        stream_field: stream_field(request),
    });
    reply
}

/// The body field that names the stream, if any.
fn stream_field(request: &Request) -> Option<&'static str> {
    let body: Value = serde_json::from_slice(&request.body).ok()?;
    ["StreamARN", "StreamName"]
        .into_iter()
        .find(|field| body.get(*field).is_some())
}

/// Checks the signature for `service` in `REGION`, the key, its token and
/// the clock (the stand-in's, `clock_offset` seconds off the real one) as AWS does.
pub fn authenticate(
    request: &Request,
    keys: &HashMap<String, Key>,
    clock_offset: i64,
    service: &str,
) -> Result<(), AwsError> {
    authenticate_in(request, keys, clock_offset, service, REGION)
}

/// `authenticate` for a service in `region`.
pub fn authenticate_in(
    request: &Request,
    keys: &HashMap<String, Key>,
    clock_offset: i64,
    service: &str,
    region: &str,
) -> Result<(), AwsError> {
    let auth = Authorization::parse(request)?;
    let key = keys.get(&auth.access_key).ok_or_else(|| {
        AwsError::new(
            400,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    })?;
    verify(request, &auth, &key.secret, region, service)?;
    let now = now_secs() + clock_offset;
    let amz = request.header("x-amz-date").unwrap_or("");
    let at = parse_amz_date(amz).ok_or_else(|| {
        AwsError::new(
            400,
            "IncompleteSignatureException",
            format!("Date must be in ISO-8601 'basic format'. Got '{amz}'."),
        )
    })?;
    if at < now - 300 {
        return Err(AwsError::new(
            400,
            "InvalidSignatureException",
            format!(
                "Signature expired: {amz} is now earlier than {} ({} - 5 min.)",
                amz_date(now - 300),
                amz_date(now)
            ),
        ));
    }
    if at > now + 300 {
        return Err(AwsError::new(
            400,
            "InvalidSignatureException",
            format!(
                "Signature not yet current: {amz} is still later than {} ({} + 5 min.)",
                amz_date(now + 300),
                amz_date(now)
            ),
        ));
    }
    let token = request.header("x-amz-security-token");
    if token != key.token.as_deref() {
        return Err(AwsError::new(
            400,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    if token.is_some()
        && !auth
            .signed_headers
            .iter()
            .any(|h| h == "x-amz-security-token")
    {
        return Err(AwsError::new(
            400,
            "IncompleteSignatureException",
            "x-amz-security-token must be signed",
        ));
    }
    if key.token_expired {
        return Err(AwsError::new(
            400,
            "ExpiredTokenException",
            "The security token included in the request is expired",
        ));
    }
    Ok(())
}

/// The access key that signed a request (SigV4), if it was signed.
pub fn signer(request: &Request) -> Option<String> {
    Authorization::parse(request).ok().map(|a| a.access_key)
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone)]
pub struct Authorization {
    /// Access key ID.
    pub access_key: String,
    /// Scope date, yyyymmdd.
    pub date: String,
    /// Scope region.
    pub region: String,
    /// Scope service.
    pub service: String,
    /// Signed header names, as listed.
    pub signed_headers: Vec<String>,
    /// The hex signature.
    pub signature: String,
}

impl Authorization {
    /// Reads the request's Authorization header.
    pub fn parse(request: &Request) -> Result<Authorization, AwsError> {
        let header = request.header("authorization").ok_or_else(|| {
            AwsError::new(
                400,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            )
        })?;
        let incomplete = |what: &str| {
            AwsError::new(
                400,
                "IncompleteSignatureException",
                format!("Authorization header requires '{what}' parameter. Authorization={header}"),
            )
        };
        let rest = header
            .strip_prefix("AWS4-HMAC-SHA256 ")
            .ok_or_else(|| incomplete("Algorithm"))?;
        let mut fields = HashMap::new();
        for part in rest.split(',') {
            if let Some((k, v)) = part.trim().split_once('=') {
                fields.insert(k.to_string(), v.to_string());
            }
        }
        let credential = fields
            .get("Credential")
            .ok_or_else(|| incomplete("Credential"))?;
        let signed = fields
            .get("SignedHeaders")
            .ok_or_else(|| incomplete("SignedHeaders"))?;
        let signature = fields
            .get("Signature")
            .ok_or_else(|| incomplete("Signature"))?;
        let scope: Vec<&str> = credential.split('/').collect();
        if scope.len() != 5 || scope[4] != "aws4_request" {
            return Err(incomplete("Credential"));
        }
        Ok(Authorization {
            access_key: scope[0].to_string(),
            date: scope[1].to_string(),
            region: scope[2].to_string(),
            service: scope[3].to_string(),
            signed_headers: signed.split(';').map(str::to_string).collect(),
            signature: signature.to_string(),
        })
    }
}

const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// Verifies a request's SigV4 signature with `secret`, for `region` and `service`.
pub fn verify(
    request: &Request,
    auth: &Authorization,
    secret: &str,
    region: &str,
    service: &str,
) -> Result<(), AwsError> {
    let invalid = |m: String| AwsError::new(400, "InvalidSignatureException", m);
    let amz = request.header("x-amz-date").ok_or_else(|| {
        invalid(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .into(),
        )
    })?;
    if !amz.starts_with(&auth.date) || auth.date.len() != 8 {
        return Err(invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz}'.",
            auth.date,
            &amz[..amz.len().min(8)]
        )));
    }
    if auth.region != region {
        return Err(invalid(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            auth.region
        )));
    }
    if auth.service != service {
        return Err(invalid(format!(
            "Credential should be scoped to correct service: '{service}'. "
        )));
    }
    for must in ["host", "x-amz-date"] {
        if !auth.signed_headers.iter().any(|h| h == must) {
            return Err(invalid(format!(
                "'{must}' must be a 'SignedHeader' in the AWS Authorization."
            )));
        }
    }
    let canonical = canonical_request(request, &auth.signed_headers)
        .ok_or_else(|| invalid(SIGNATURE_MISMATCH.into()))?;
    let expected = signature(secret, amz, region, service, &canonical);
    if expected != auth.signature {
        return Err(invalid(SIGNATURE_MISMATCH.into()));
    }
    Ok(())
}

/// The SigV4 signature of a canonical request.
pub fn signature(
    secret: &str,
    amz_date: &str,
    region: &str,
    service: &str,
    canonical: &str,
) -> String {
    let date = &amz_date[..8.min(amz_date.len())];
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    hex::encode(hmac(&key, string_to_sign.as_bytes()))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The canonical request for the listed signed headers; None when a signed
/// header is missing.
pub fn canonical_request(request: &Request, signed_headers: &[String]) -> Option<String> {
    let (path, query) = match request.target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (request.target.as_str(), ""),
    };
    let mut headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = request
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() {
            return None;
        }
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    Some(format!(
        "{}\n{}\n{}\n{headers}\n{}\n{}",
        request.method,
        canonical_uri(path),
        canonical_query(query),
        signed_headers.join(";"),
        hex::encode(Sha256::digest(&request.body))
    ))
}

/// Removes dot segments and empty segments, then encodes each (decoded) segment.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for s in path.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::new();
    for s in &segments {
        out.push('/');
        out.push_str(&uri_encode(&percent_decode(s), true));
    }
    if out.is_empty() || (path.ends_with('/') && !segments.is_empty()) {
        out.push('/');
    }
    out
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), true),
                uri_encode(&percent_decode(v), true),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (b == b'/' && !encode_slash) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The stream a request names: its `StreamName`, or the name in its
/// `StreamARN`, which must be of `ACCOUNT` in the stand-in's region.
fn named_stream(op: &str, body: &Value, region: &str) -> Result<String, AwsError> {
    let Some(arn) = body["StreamARN"].as_str() else {
        return Ok(body["StreamName"].as_str().unwrap_or("").to_string());
    };
    if op == "CreateStream" {
        return Err(AwsError::new(
            400,
            "SerializationException",
            "CreateStream takes a StreamName, not a StreamARN",
        ));
    }
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let (arn_region, account, name) = match parts[..] {
        ["arn", "aws", "kinesis", r, a, resource] => match resource.strip_prefix("stream/") {
            Some(name) => (r, a, name),
            None => {
                return Err(AwsError::new(
                    400,
                    "ValidationException",
                    format!("bad StreamARN {arn}"),
                ))
            }
        },
        _ => {
            return Err(AwsError::new(
                400,
                "ValidationException",
                format!("bad StreamARN {arn}"),
            ))
        }
    };
    if account != ACCOUNT {
        return Err(AwsError::new(
            400,
            "AccessDeniedException",
            format!(
                "User: arn:aws:iam::{ACCOUNT}:user/loader is not authorized to perform: kinesis:{op} on resource: {arn} \
                 because no resource-based policy allows the kinesis:{op} action"
            ),
        ));
    }
    if arn_region != region {
        return Err(AwsError::new(
            400,
            "ResourceNotFoundException",
            format!("Stream {arn} not found: this endpoint serves {region}."),
        ));
    }
    Ok(name.to_string())
}

fn serve(op: &str, n: u64, request: &Request, g: &mut Inner) -> Result<Reply, AwsError> {
    let body: Value = serde_json::from_slice(&request.body)
        .map_err(|e| AwsError::new(400, "SerializationException", e.to_string()))?;
    let stream_name = named_stream(op, &body, &g.region)?;
    let entries = body["Records"].as_array().map_or(0, Vec::len);
    let call = Call {
        op: op.to_string(),
        n,
    };
    let fault = g.script.as_ref().map_or(Fault::None, |s| s(&call));
    if op == "PutRecords" {
        let payload = body["Records"].as_array().map_or(0, |records| {
            records
                .iter()
                .map(|r| {
                    let data = r["Data"].as_str().unwrap_or("");
                    let key = r["PartitionKey"].as_str().unwrap_or("");
                    base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .map_or(0, |d| d.len())
                        + key.len()
                })
                .sum()
        });
        g.puts.push(Put {
            entries,
            payload,
            fault: fault.clone(),
        });
    }
    let not_found = |name: &str| {
        AwsError::new(
            400,
            "ResourceNotFoundException",
            format!("Stream {name} under account {ACCOUNT} not found."),
        )
    };
    match &fault {
        Fault::Reject {
            status,
            code,
            message,
        } => return Err(AwsError::new(*status, code, message.clone())),
        Fault::BareStatus(status) => {
            return Ok(answer(
                *status,
                format!("<html><body>{status}</body></html>").into_bytes(),
            ))
        }
        Fault::CloseBeforeStore => return Ok(Reply::Close),
        Fault::DeleteStream => {
            g.streams.remove(&stream_name);
            return Err(not_found(&stream_name));
        }
        _ => {}
    }
    let ok = |v: Value| answer(200, v.to_string().into_bytes());
    match op {
        "ListStreams" => Ok(ok(list_streams(&body, g)?)),
        "DescribeStreamSummary" => {
            let stays = g.stays_creating;
            let s = g
                .streams
                .get_mut(&stream_name)
                .ok_or_else(|| not_found(&stream_name))?;
            let status = s.status;
            if status == "CREATING" && !stays {
                s.describes_while_creating += 1;
                if s.describes_while_creating >= 1 {
                    s.status = "ACTIVE";
                }
            }
            let mut summary = json!({
                "StreamName": stream_name,
                "StreamARN": format!("arn:aws:kinesis:{}:{ACCOUNT}:stream/{stream_name}", g.region),
                "StreamStatus": status,
                "StreamModeDetails": {"StreamMode": "PROVISIONED"},
                "RetentionPeriodHours": 24,
                "StreamCreationTimestamp": 1.7e9,
                "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
                "EncryptionType": "NONE",
                "OpenShardCount": s.shards,
                "ConsumerCount": 0
            });
            // Emulators and AWS before large records leave the field out.
            if let Some(kib) = s.max_record_size_kib {
                summary["MaxRecordSizeInKiB"] = json!(kib);
            }
            Ok(ok(json!({ "StreamDescriptionSummary": summary })))
        }
        "CreateStream" => {
            if g.streams.contains_key(&stream_name) {
                return Err(AwsError::new(
                    400,
                    "ResourceInUseException",
                    format!("Stream {stream_name} under account {ACCOUNT} already exists."),
                ));
            }
            let shards = body["ShardCount"].as_u64().unwrap_or(4) as u32;
            let max_record_size_kib = match &body["MaxRecordSizeInKiB"] {
                Value::Null => None,
                v => match v.as_u64().filter(|k| (1024..=10240).contains(k)) {
                    Some(kib) => Some(kib as u32),
                    None => return Err(AwsError::new(
                        400,
                        "ValidationException",
                        format!("1 validation error detected: Value '{v}' at 'maxRecordSizeInKiB' failed to satisfy constraint: Member must have value between 1024 and 10240"),
                    )),
                },
            };
            g.streams.insert(
                stream_name,
                StreamState::new("CREATING", shards, max_record_size_kib),
            );
            Ok(answer(200, Vec::new()))
        }
        "PutRecords" => put_records(&stream_name, &body, fault, g),
        _ => Err(AwsError::new(
            400,
            "UnknownOperationException",
            format!("unknown operation {op}"),
        )),
    }
}

/// A ListStreams answer: every stream, or one page when `list_pages` is set.
fn list_streams(body: &Value, g: &Inner) -> Result<Value, AwsError> {
    let names: Vec<&String> = g.streams.keys().collect();
    let Some(pages) = g.list_pages else {
        return Ok(json!({"StreamNames": names, "HasMoreStreams": false}));
    };
    let bad = |m: &str| AwsError::new(400, "InvalidArgumentException", m.to_string());
    let start = match (
        body["NextToken"].as_str(),
        body["ExclusiveStartStreamName"].as_str(),
    ) {
        (Some(_), Some(_)) => return Err(bad("NextToken and ExclusiveStartStreamName together")),
        (Some(token), None) if pages.tokens => token
            .strip_prefix("page-")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| bad("bad NextToken"))?,
        (Some(_), None) => return Err(bad("this service gives no NextToken")),
        (None, Some(after)) => names.iter().take_while(|n| n.as_str() <= after).count(),
        (None, None) => 0,
    };
    let page: Vec<&String> = names.iter().skip(start).take(pages.size).copied().collect();
    let more = start + page.len() < names.len();
    let mut answer = json!({"StreamNames": page, "HasMoreStreams": more});
    if pages.tokens {
        if more {
            answer["NextToken"] = json!(format!("page-{}", start + page.len()));
        }
        let summaries: Vec<Value> = page
            .iter()
            .map(|name| {
                json!({
                    "StreamName": name,
                    "StreamARN": format!("arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"),
                    "StreamStatus": g.streams[name.as_str()].status,
                    "StreamModeDetails": {"StreamMode": "PROVISIONED"},
                    "StreamCreationTimestamp": 1.7e9
                })
            })
            .collect();
        answer["StreamSummaries"] = json!(summaries);
    }
    Ok(answer)
}

fn put_records(stream: &str, body: &Value, fault: Fault, g: &mut Inner) -> Result<Reply, AwsError> {
    let (shards, (max_record, max_request)) = match g.streams.get(stream) {
        Some(s) if s.status == "ACTIVE" || s.status == "UPDATING" => (s.shards.max(1), s.limits()),
        _ => {
            return Err(AwsError::new(
                400,
                "ResourceNotFoundException",
                format!("Stream {stream} under account {ACCOUNT} not found."),
            ))
        }
    };
    let records = body["Records"].as_array().cloned().unwrap_or_default();
    let mut decoded = Vec::with_capacity(records.len());
    let mut payload = 0;
    for r in &records {
        let data = base64::engine::general_purpose::STANDARD
            .decode(r["Data"].as_str().unwrap_or(""))
            .map_err(|e| AwsError::new(400, "SerializationException", format!("Data: {e}")))?;
        let key = r["PartitionKey"].as_str().unwrap_or("").to_string();
        let chars = key.chars().count();
        // An entry over the stream's limit fails the whole request: the
        // reference allows entry errors only for throttling and InternalFailure.
        if !(1..=256).contains(&chars) || data.len() + key.len() > max_record {
            return Err(AwsError::new(
                400,
                "ValidationException",
                format!("1 validation error detected: a record's data and partition key ({} bytes) are over the stream's {max_record}-byte limit, or its partition key is out of bounds", data.len() + key.len()),
            ));
        }
        payload += data.len() + key.len();
        decoded.push((key, data));
    }
    if decoded.is_empty() || decoded.len() > MAX_ENTRIES {
        return Err(AwsError::new(
            400,
            "ValidationException",
            format!("1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length less than or equal to {MAX_ENTRIES}"),
        ));
    }
    if payload > max_request {
        return Err(AwsError::new(
            400,
            "InvalidArgumentException",
            format!(
                "Records size exceeds {} MB limit: {payload} bytes",
                max_request / (1024 * 1024)
            ),
        ));
    }
    let answer_lost = matches!(fault, Fault::CloseAfterStore | Fault::SlowAnswer(_));
    let mut results = Vec::with_capacity(decoded.len());
    let mut failed = 0;
    for (index, (key, data)) in decoded.into_iter().enumerate() {
        if let Fault::FailEntriesWith { code, needle } = &fault {
            if memchr::memmem::find(&data, needle.as_bytes()).is_some() {
                failed += 1;
                results.push(json!({"ErrorCode": code, "ErrorMessage": format!("Rate exceeded for shard shardId-000000000000 in stream {stream} under account {ACCOUNT}.")}));
                continue;
            }
        }
        if let Fault::FailEntries { code, per_mille } = &fault {
            g.rng ^= g.rng << 13;
            g.rng ^= g.rng >> 7;
            g.rng ^= g.rng << 17;
            if (g.rng % 1000) < *per_mille as u64 {
                failed += 1;
                results.push(json!({"ErrorCode": code, "ErrorMessage": if *code == "InternalFailure" {
                    "Internal service failure.".to_string()
                } else {
                    format!("Rate exceeded for shard shardId-000000000000 in stream {stream} under account {ACCOUNT}.")
                }}));
                continue;
            }
        }
        let seq = g.stored.len() as u64 + 1;
        let shard = key
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32))
            % shards;
        let unacknowledged =
            matches!(fault, Fault::EmptySequenceNumbers { every } if (index + 1) % every == 0);
        results.push(if unacknowledged {
            json!({"SequenceNumber": ""})
        } else {
            json!({
                "SequenceNumber": format!("4960{seq:052}"),
                "ShardId": format!("shardId-{shard:012}")
            })
        });
        g.stored.push(Stored {
            stream: stream.to_string(),
            partition_key: key,
            data,
            answer_lost: answer_lost || unacknowledged,
        });
    }
    let answer = json!({"FailedRecordCount": failed, "Records": results, "EncryptionType": "NONE"})
        .to_string()
        .into_bytes();
    Ok(match fault {
        Fault::CloseAfterStore => Reply::Close,
        Fault::SlowAnswer(d) => Reply::Later(d, Answer::new(200, answer)),
        _ => Reply::Answer(Answer::new(200, answer)),
    })
}

/// Seconds since the epoch, now.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYYMMDDTHHMMSSZ` for epoch seconds.
pub fn amz_date(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Epoch seconds of a `YYYYMMDDTHHMMSSZ` date.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    if s.len() != 16 || &s[8..9] != "T" || !s.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(n(0..4)?, n(4..6)?, n(6..8)?);
    Some(days * 86_400 + n(9..11)? * 3600 + n(11..13)? * 60 + n(13..15)?)
}

/// An HTTP `Date` (IMF-fixdate) for epoch seconds.
pub fn http_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let s = secs.rem_euclid(86_400);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{weekday}, {d:02} {month} {y} {:02}:{:02}:{:02} GMT",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Panics if a secret of the stand-in's key shows up in `text`, whole or in
/// part (any 12-character piece).
pub fn assert_no_secret(what: &str, text: &str) {
    for secret in [SECRET_KEY, SESSION_TOKEN] {
        for start in (0..=secret.len() - 12).step_by(4) {
            let piece = &secret[start..start + 12];
            assert!(
                !text.contains(piece),
                "{what} shows part of a secret ({piece}): {text}"
            );
        }
    }
}
