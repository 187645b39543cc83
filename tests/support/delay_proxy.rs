//! A loopback HTTP proxy in front of kinesis-local that holds back the answers
//! of chosen PutRecords calls, so that later calls finish first, notes the
//! records each answer accepted before the client can see that answer, counts
//! the calls of every operation, and answers chosen calls with an AWS error
//! instead of forwarding them.

use super::http_server::{lock, Answer, Forwarder, Reply, Request, Server};
use base64::Engine;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which PutRecords call (0-based, in arrival order) waits how long.
pub type DelayFor = dyn Fn(usize) -> Duration + Send + Sync;

struct Shared {
    upstream: Forwarder,
    delay: Box<DelayFor>,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    accepted: Mutex<Vec<Vec<u8>>>,
    per_op: Mutex<HashMap<String, usize>>,
    refusals: Mutex<Vec<Refusal>>,
}

/// An AWS error that stands in for the next `left` calls of `op`.
struct Refusal {
    op: String,
    status: u16,
    code: &'static str,
    left: usize,
}

/// A running proxy; it stops when dropped.
pub struct DelayProxy {
    shared: Arc<Shared>,
    server: Server,
}

impl DelayProxy {
    /// Starts a proxy to `upstream` (an http:// endpoint) on a free loopback port.
    pub fn start(
        upstream: &str,
        delay: impl Fn(usize) -> Duration + Send + Sync + 'static,
    ) -> DelayProxy {
        let shared = Arc::new(Shared {
            upstream: Forwarder::new(upstream),
            delay: Box::new(delay),
            calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            accepted: Mutex::new(Vec::new()),
            per_op: Mutex::new(HashMap::new()),
            refusals: Mutex::new(Vec::new()),
        });
        let s = Arc::clone(&shared);
        let server = Server::start(move |request| relay(request, &s));
        DelayProxy { shared, server }
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        self.server.url()
    }

    /// The data of every entry accepted so far, in the order the answers went out.
    pub fn accepted(&self) -> Vec<Vec<u8>> {
        lock(&self.shared.accepted).clone()
    }

    /// PutRecords calls seen.
    pub fn calls(&self) -> usize {
        self.shared.calls.load(Ordering::SeqCst)
    }

    /// Calls of `op` (e.g. `GetRecords`) seen so far.
    pub fn calls_of(&self, op: &str) -> usize {
        lock(&self.shared.per_op).get(op).copied().unwrap_or(0)
    }

    /// Answers the next `times` calls of `op` with the AWS error `code` (HTTP
    /// `status`) instead of forwarding them.
    pub fn refuse_next(&self, op: &str, times: usize, status: u16, code: &'static str) {
        lock(&self.shared.refusals).push(Refusal {
            op: op.to_string(),
            status,
            code,
            left: times,
        });
    }

    /// The connections clients opened to it so far.
    pub fn connections(&self) -> usize {
        self.server.connections()
    }

    /// The most PutRecords calls that were open at the same time.
    pub fn most_in_flight(&self) -> usize {
        self.shared.most_in_flight.load(Ordering::SeqCst)
    }
}

/// Counts a call, refuses it if asked to, or forwards it and holds back a
/// PutRecords answer as `delay` says.
fn relay(request: &Request, shared: &Shared) -> Reply {
    let op = request.operation().unwrap_or_default();
    // Counted once it is settled whether it is refused, so that a test that
    // sees the count and then asks for a refusal never gets this call refused.
    let refusal = lock(&shared.refusals)
        .iter_mut()
        .find(|r| r.op == op && r.left > 0)
        .map(|r| {
            r.left -= 1;
            (r.status, r.code)
        });
    *lock(&shared.per_op).entry(op.to_string()).or_insert(0) += 1;
    if let Some((status, code)) = refusal {
        let body = serde_json::json!({"__type": code, "message": "refused by the test proxy"});
        return Reply::Answer(Answer::new(status, body.to_string()));
    }
    if op != "PutRecords" {
        return Reply::Answer(shared.upstream.send(request));
    }
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.most_in_flight.fetch_max(now, Ordering::SeqCst);
    let n = shared.calls.fetch_add(1, Ordering::SeqCst);
    let answer = shared.upstream.send(request);
    std::thread::sleep((shared.delay)(n));
    if answer.status == 200 {
        note_accepted(shared, &request.body, &answer.body);
    }
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    Reply::Answer(answer)
}

/// Adds the data of each entry the answer gave a sequence number.
fn note_accepted(shared: &Shared, request: &[u8], answer: &[u8]) {
    let (Ok(request), Ok(answer)) = (
        serde_json::from_slice::<Value>(request),
        serde_json::from_slice::<Value>(answer),
    ) else {
        return;
    };
    let (Some(entries), Some(results)) =
        (request["Records"].as_array(), answer["Records"].as_array())
    else {
        return;
    };
    let mut accepted = lock(&shared.accepted);
    for (entry, result) in entries.iter().zip(results) {
        if result["SequenceNumber"].is_string() {
            let data = base64::engine::general_purpose::STANDARD
                .decode(entry["Data"].as_str().unwrap_or_default())
                .expect("entry data is base64");
            accepted.push(data);
        }
    }
}
