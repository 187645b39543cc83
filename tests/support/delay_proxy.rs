//! A loopback HTTP proxy in front of kinesis-local that holds back the answers
//! of chosen PutRecords calls, so that later calls finish first, notes the
//! records each answer accepted before the client can see that answer, and
//! counts the calls of every operation.
#![allow(dead_code)]

use base64::Engine;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which PutRecords call (0-based, in arrival order) waits how long.
pub type DelayFor = dyn Fn(usize) -> Duration + Send + Sync;

struct Shared {
    upstream: String,
    delay: Box<DelayFor>,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    accepted: Mutex<Vec<Vec<u8>>>,
    per_op: Mutex<HashMap<String, usize>>,
}

/// A running proxy; it lives as long as the test process.
pub struct DelayProxy {
    /// Its port.
    pub port: u16,
    shared: Arc<Shared>,
}

impl DelayProxy {
    /// Starts a proxy to `upstream` (an http:// endpoint) on a free loopback port.
    pub fn start(
        upstream: &str,
        delay: impl Fn(usize) -> Duration + Send + Sync + 'static,
    ) -> DelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared {
            upstream: format!("{upstream}/"),
            delay: Box::new(delay),
            calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            accepted: Mutex::new(Vec::new()),
            per_op: Mutex::new(HashMap::new()),
        });
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = Arc::clone(&s);
                std::thread::spawn(move || serve(stream, &s));
            }
        });
        DelayProxy { port, shared }
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The data of every entry accepted so far, in the order the answers went out.
    pub fn accepted(&self) -> Vec<Vec<u8>> {
        self.shared
            .accepted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// PutRecords calls seen.
    pub fn calls(&self) -> usize {
        self.shared.calls.load(Ordering::SeqCst)
    }

    /// Calls of `op` (e.g. `GetRecords`) seen so far.
    pub fn calls_of(&self, op: &str) -> usize {
        let per_op = self.shared.per_op.lock().unwrap_or_else(|p| p.into_inner());
        per_op.get(op).copied().unwrap_or(0)
    }

    /// The most PutRecords calls that were open at the same time.
    pub fn most_in_flight(&self) -> usize {
        self.shared.most_in_flight.load(Ordering::SeqCst)
    }
}

/// One request: (head, body).
fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let mut chunk = [0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = header(&head, "content-length").parse().unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + length].to_vec();
    buf.drain(..head_end + length);
    Some((head, body))
}

/// A header's value ("" when absent); names compare without case.
fn header(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default()
}

fn serve(mut stream: TcpStream, shared: &Shared) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut buf = Vec::new();
    while let Some((head, body)) = read_request(&mut stream, &mut buf) {
        let target = header(&head, "x-amz-target");
        if let Some((_, op)) = target.split_once('.') {
            let mut per_op = shared.per_op.lock().unwrap_or_else(|p| p.into_inner());
            *per_op.entry(op.to_string()).or_insert(0) += 1;
        }
        let put = target.ends_with(".PutRecords");
        let call = if put {
            let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            shared.most_in_flight.fetch_max(now, Ordering::SeqCst);
            Some(shared.calls.fetch_add(1, Ordering::SeqCst))
        } else {
            None
        };
        let mut request = agent
            .post(&shared.upstream)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", &target);
        for name in ["authorization", "x-amz-date", "x-amz-security-token"] {
            let value = header(&head, name);
            if !value.is_empty() {
                request = request.header(name, &value);
            }
        }
        let (status, answer) = match request.send(&body[..]) {
            Ok(mut r) => (
                r.status().as_u16(),
                r.body_mut().read_to_vec().unwrap_or_default(),
            ),
            Err(e) => (502, format!("{{\"message\":\"proxy: {e}\"}}").into_bytes()),
        };
        if let Some(n) = call {
            std::thread::sleep((shared.delay)(n));
            if status == 200 {
                note_accepted(shared, &body, &answer);
            }
            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        let reply = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        );
        if stream.write_all(reply.as_bytes()).is_err() || stream.write_all(&answer).is_err() {
            return;
        }
    }
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
    let mut accepted = shared.accepted.lock().unwrap_or_else(|p| p.into_inner());
    for (entry, result) in entries.iter().zip(results) {
        if result["SequenceNumber"].is_string() {
            let data = base64::engine::general_purpose::STANDARD
                .decode(entry["Data"].as_str().unwrap_or_default())
                .expect("entry data is base64");
            accepted.push(data);
        }
    }
}
