//! A loopback HTTP proxy that brings the stand-in's faults (`standin::Fault`)
//! to any Kinesis behind it (the benchmark's shard sink, kinesis-local): a
//! script picks the fault of each call, which the proxy carries out: an error
//! answer, a connection dropped before or after the call reaches the
//! upstream, an answer held back; and for PutRecords, entries refused (left
//! out of the call it forwards, refused in the answer) or stored but not
//! acknowledged. It counts what it did to PutRecords calls, so that a test
//! knows which entries may have been stored twice. A call it changes is no
//! longer the one signed: the upstream must not check signatures.

use super::http_server::{lock, Answer, Forwarder, Reply, Request, Server};
use super::standin::{mix, Call, Fault};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What the proxy did to PutRecords calls.
#[derive(Debug, Clone, Default)]
pub struct Injected {
    /// PutRecords calls seen.
    pub calls: u64,
    /// Calls per fault carried out (`None` left out), by the fault's name.
    pub faults: BTreeMap<&'static str, u64>,
    /// Entries refused by the proxy in answers (`FailEntries`).
    pub refused_entries: u64,
    /// Entries the upstream stored whose acknowledgement the client did not
    /// get (dropped after storing, no sequence number, answer held back):
    /// the only entries that may be stored twice.
    pub unacknowledged_entries: u64,
}

struct Shared {
    upstream: Forwarder,
    script: Box<dyn Fn(&Call) -> Fault + Send + Sync>,
    /// Calls seen, per operation.
    calls: Mutex<BTreeMap<String, u64>>,
    injected: Mutex<Injected>,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    shared: Arc<Shared>,
    server: Server,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (an http:// endpoint) on a free loopback
    /// port, faults chosen by `script` (`Call::n` counts the calls of its operation).
    pub fn start(
        upstream: &str,
        script: impl Fn(&Call) -> Fault + Send + Sync + 'static,
    ) -> FaultProxy {
        let shared = Arc::new(Shared {
            upstream: Forwarder::new(upstream),
            script: Box::new(script),
            calls: Mutex::new(BTreeMap::new()),
            injected: Mutex::new(Injected::default()),
        });
        let s = Arc::clone(&shared);
        let server = Server::start(move |request| relay(request, &s));
        FaultProxy { shared, server }
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        self.server.url()
    }

    /// What it did so far.
    pub fn injected(&self) -> Injected {
        lock(&self.shared.injected).clone()
    }
}

/// The name a fault is counted under.
fn name(fault: &Fault) -> &'static str {
    match fault {
        Fault::None => "none",
        Fault::FailEntries { .. } | Fault::FailEntriesWith { .. } => "failed entries",
        Fault::Reject { status, .. } if *status >= 500 => "5xx",
        Fault::Reject { .. } => "error answer",
        Fault::BareStatus(_) => "bare status",
        Fault::EmptySequenceNumbers { .. } => "no sequence number",
        Fault::CloseBeforeStore => "dropped before storing",
        Fault::CloseAfterStore => "dropped after storing",
        Fault::SlowAnswer(_) => "slow answer",
        Fault::DeleteStream => "stream deleted",
    }
}

/// Forwards a call, or carries out the fault the script picks for it.
fn relay(request: &Request, shared: &Shared) -> Reply {
    let op = request.operation().unwrap_or("?").to_string();
    let n = {
        let mut calls = lock(&shared.calls);
        let count = calls.entry(op.clone()).or_default();
        *count += 1;
        *count - 1
    };
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let put = op == "PutRecords";
    let fault = (shared.script)(&Call { op, n });
    let note = |refused: u64, unacknowledged: u64| {
        if !put {
            return;
        }
        let mut i = lock(&shared.injected);
        i.calls += 1;
        if fault != Fault::None {
            *i.faults.entry(name(&fault)).or_default() += 1;
        }
        i.refused_entries += refused;
        i.unacknowledged_entries += unacknowledged;
    };
    match &fault {
        Fault::Reject {
            status,
            code,
            message,
        } => {
            note(0, 0);
            let body = json!({"__type": code, "message": message});
            Reply::Answer(Answer::new(*status, body.to_string()))
        }
        Fault::BareStatus(status) => {
            note(0, 0);
            Reply::Answer(Answer::new(
                *status,
                format!("<html><body>{status}</body></html>"),
            ))
        }
        Fault::CloseBeforeStore => {
            note(0, 0);
            Reply::Close
        }
        Fault::CloseAfterStore => {
            let answer = shared.upstream.send(request);
            note(0, stored(&answer));
            Reply::Close
        }
        Fault::SlowAnswer(wait) => {
            // Counted as unacknowledged: the wait is meant to outlast the client.
            let answer = shared.upstream.send(request);
            note(0, stored(&answer));
            Reply::Later(*wait, answer)
        }
        Fault::EmptySequenceNumbers { every } if put => {
            let (answer, hidden) = hide_sequence_numbers(shared.upstream.send(request), *every);
            note(0, hidden);
            Reply::Answer(answer)
        }
        Fault::FailEntries { code, per_mille } if put => {
            let (answer, refused) = fail_entries(request, &body, n, code, *per_mille, shared);
            note(refused, 0);
            Reply::Answer(answer)
        }
        // Faults only the stand-in itself carries out are passed over.
        Fault::None
        | Fault::DeleteStream
        | Fault::EmptySequenceNumbers { .. }
        | Fault::FailEntries { .. }
        | Fault::FailEntriesWith { .. } => {
            note(0, 0);
            Reply::Answer(shared.upstream.send(request))
        }
    }
}

/// Entries an upstream answer says were stored.
fn stored(answer: &Answer) -> u64 {
    let Ok(v) = serde_json::from_slice::<Value>(&answer.body) else {
        return 0;
    };
    v["Records"].as_array().map_or(0, |results| {
        results
            .iter()
            .filter(|r| r["SequenceNumber"].is_string())
            .count() as u64
    })
}

/// The answer with every `every`-th stored entry's sequence number emptied
/// (stored, not acknowledged), and how many.
fn hide_sequence_numbers(answer: Answer, every: usize) -> (Answer, u64) {
    let Ok(mut v) = serde_json::from_slice::<Value>(&answer.body) else {
        return (answer, 0);
    };
    let mut hidden = 0;
    if let Some(results) = v["Records"].as_array_mut() {
        for (i, r) in results.iter_mut().enumerate() {
            if (i + 1) % every.max(1) == 0 && r["SequenceNumber"].is_string() {
                *r = json!({"SequenceNumber": ""});
                hidden += 1;
            }
        }
    }
    (Answer::new(answer.status, v.to_string()), hidden)
}

/// Refuses about `per_mille` of a call's entries with `code`: the others go
/// upstream, the answer has both in the request's order.
fn fail_entries(
    request: &Request,
    body: &Value,
    n: u64,
    code: &str,
    per_mille: u32,
    shared: &Shared,
) -> (Answer, u64) {
    let records = body["Records"].as_array().cloned().unwrap_or_default();
    let refuse: Vec<bool> = (0..records.len() as u64)
        .map(|i| mix(n << 20 ^ i, 0) % 1000 < u64::from(per_mille))
        .collect();
    let kept: Vec<Value> = records
        .iter()
        .zip(&refuse)
        .filter(|(_, r)| !**r)
        .map(|(e, _)| e.clone())
        .collect();
    let refused = refuse.iter().filter(|r| **r).count() as u64;
    let refusal = json!({"ErrorCode": code, "ErrorMessage": "refused by the fault proxy"});
    if kept.is_empty() {
        let results = vec![refusal; records.len()];
        let answer = json!({"FailedRecordCount": refused, "Records": results});
        return (Answer::new(200, answer.to_string()), refused);
    }
    let mut smaller = body.clone();
    smaller["Records"] = Value::Array(kept);
    let mut forwarded = request.clone();
    forwarded.body = smaller.to_string().into_bytes();
    let answer = shared.upstream.send(&forwarded);
    let Ok(upstream) = serde_json::from_slice::<Value>(&answer.body) else {
        return (answer, 0);
    };
    let Some(results) = upstream["Records"]
        .as_array()
        .filter(|_| answer.status == 200)
    else {
        return (answer, 0);
    };
    let mut theirs = results.iter();
    let merged: Vec<Value> = refuse
        .iter()
        .map(|&r| {
            if r {
                refusal.clone()
            } else {
                theirs.next().cloned().unwrap_or_else(|| refusal.clone())
            }
        })
        .collect();
    let failed = merged.iter().filter(|r| r["ErrorCode"].is_string()).count();
    let answer = json!({"FailedRecordCount": failed, "Records": merged, "EncryptionType": "NONE"});
    (Answer::new(200, answer.to_string()), refused)
}
