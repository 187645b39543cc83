//! A loopback Kinesis stand-in fast enough never to be the bottleneck: it
//! answers DescribeStreamSummary, CreateStream and PutRecords with success at
//! once (or after a simulated round trip), counting calls and entries without
//! parsing the JSON beyond counting `"PartitionKey"`.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One PutRecords result entry; every entry gets the same one.
const RESULT_ENTRY: &[u8] = br#"{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898","ShardId":"shardId-000000000000"}"#;

/// What the sink has seen since the last `reset`.
#[derive(Debug, Default)]
pub struct Counters {
    /// PutRecords calls.
    pub calls: AtomicU64,
    /// PutRecords entries.
    pub entries: AtomicU64,
    /// Requests of other operations.
    pub other_calls: AtomicU64,
}

/// A snapshot of the counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seen {
    pub calls: u64,
    pub entries: u64,
}

/// A running sink on a loopback port; it lives as long as the process.
pub struct Sink {
    /// Its port.
    pub port: u16,
    counters: Arc<Counters>,
    delay_ms: Arc<AtomicU64>,
}

impl Sink {
    /// Starts the sink on a free loopback port.
    pub fn start() -> io::Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let counters = Arc::new(Counters::default());
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (c, d) = (Arc::clone(&counters), Arc::clone(&delay_ms));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (c, d) = (Arc::clone(&c), Arc::clone(&d));
                std::thread::spawn(move || {
                    let _ = serve(stream, &c, &d);
                });
            }
        });
        Ok(Sink {
            port,
            counters,
            delay_ms,
        })
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sets the simulated round trip added to every PutRecords answer.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::Relaxed);
    }

    /// Zeroes the counters.
    pub fn reset(&self) {
        self.counters.calls.store(0, Ordering::Relaxed);
        self.counters.entries.store(0, Ordering::Relaxed);
        self.counters.other_calls.store(0, Ordering::Relaxed);
    }

    /// What was seen since the last reset.
    pub fn seen(&self) -> Seen {
        Seen {
            calls: self.counters.calls.load(Ordering::Relaxed),
            entries: self.counters.entries.load(Ordering::Relaxed),
        }
    }
}

/// Serves one keep-alive connection until the client closes it.
fn serve(mut stream: TcpStream, counters: &Counters, delay_ms: &AtomicU64) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut filled = 0usize;
    let mut answer: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut body_out: Vec<u8> = Vec::with_capacity(64 * 1024);
    let finder = memchr::memmem::Finder::new(b"\"PartitionKey\"");
    loop {
        // Read until the header block is complete.
        let head_end = loop {
            if let Some(i) = memchr::memmem::find(&buf[..filled], b"\r\n\r\n") {
                break i + 4;
            }
            if !read_more(&mut stream, &mut buf, &mut filled)? {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
                .map(str::to_string)
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let target = header("x-amz-target").unwrap_or_default();
        if header("expect").is_some_and(|v| v == "100-continue") && filled < head_end + length {
            stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        while filled < head_end + length {
            if !read_more(&mut stream, &mut buf, &mut filled)? {
                return Ok(());
            }
        }
        let body = &buf[head_end..head_end + length];
        body_out.clear();
        if target.ends_with(".putrecords") {
            let entries = finder.find_iter(body).count();
            counters.calls.fetch_add(1, Ordering::Relaxed);
            counters
                .entries
                .fetch_add(entries as u64, Ordering::Relaxed);
            body_out.extend_from_slice(br#"{"FailedRecordCount":0,"Records":["#);
            for i in 0..entries {
                if i > 0 {
                    body_out.push(b',');
                }
                body_out.extend_from_slice(RESULT_ENTRY);
            }
            body_out.extend_from_slice(b"]}");
            let delay = delay_ms.load(Ordering::Relaxed);
            if delay > 0 {
                std::thread::sleep(Duration::from_millis(delay));
            }
        } else if target.ends_with(".describestreamsummary") {
            counters.other_calls.fetch_add(1, Ordering::Relaxed);
            body_out.extend_from_slice(
                br#"{"StreamDescriptionSummary":{"StreamName":"bench","StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/bench","StreamStatus":"ACTIVE","StreamModeDetails":{"StreamMode":"PROVISIONED"},"RetentionPeriodHours":24,"StreamCreationTimestamp":1700000000.0,"EnhancedMonitoring":[],"EncryptionType":"NONE","OpenShardCount":1,"ConsumerCount":0}}"#,
            );
        } else {
            // CreateStream, ListStreams and anything else: an empty success.
            counters.other_calls.fetch_add(1, Ordering::Relaxed);
            body_out.extend_from_slice(b"{}");
        }
        answer.clear();
        answer.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\nContent-Length: ");
        answer.extend_from_slice(body_out.len().to_string().as_bytes());
        answer.extend_from_slice(b"\r\n\r\n");
        answer.extend_from_slice(&body_out);
        stream.write_all(&answer)?;
        // Keep whatever of the next request already arrived.
        let used = head_end + length;
        buf.copy_within(used..filled, 0);
        filled -= used;
    }
}

/// Reads more bytes into `buf` after `filled`; false at end of stream.
fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>, filled: &mut usize) -> io::Result<bool> {
    if buf.len() - *filled < 64 * 1024 {
        buf.resize((*filled + 64 * 1024).max(buf.len() * 2), 0);
    }
    let n = stream.read(&mut buf[*filled..])?;
    *filled += n;
    Ok(n > 0)
}
