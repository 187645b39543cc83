//! A loopback Kinesis stand-in fast enough never to be the bottleneck: it
//! answers DescribeStreamSummary (for any stream name), CreateStream and
//! PutRecords with success at once (or after a simulated round trip),
//! counting calls and entries without parsing the JSON beyond counting
//! `"PartitionKey"`.

use super::loopback;
use std::io;
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
        let counters = Arc::new(Counters::default());
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (c, d) = (Arc::clone(&counters), Arc::clone(&delay_ms));
        let finder = memchr::memmem::Finder::new(b"\"PartitionKey\"").into_owned();
        let port = loopback::serve(Arc::new(move |operation, body, out| {
            answer(operation, body, out, &c, &d, &finder)
        }))?;
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

/// Answers one request.
fn answer(
    operation: &str,
    body: &[u8],
    out: &mut Vec<u8>,
    counters: &Counters,
    delay_ms: &AtomicU64,
    finder: &memchr::memmem::Finder,
) -> u16 {
    match operation {
        "putrecords" => {
            let entries = finder.find_iter(body).count();
            counters.calls.fetch_add(1, Ordering::Relaxed);
            counters
                .entries
                .fetch_add(entries as u64, Ordering::Relaxed);
            out.extend_from_slice(br#"{"FailedRecordCount":0,"Records":["#);
            for i in 0..entries {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(RESULT_ENTRY);
            }
            out.extend_from_slice(b"]}");
            let delay = delay_ms.load(Ordering::Relaxed);
            if delay > 0 {
                std::thread::sleep(Duration::from_millis(delay));
            }
        }
        "describestreamsummary" => {
            counters.other_calls.fetch_add(1, Ordering::Relaxed);
            out.extend_from_slice(
                br#"{"StreamDescriptionSummary":{"StreamName":"bench","StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/bench","StreamStatus":"ACTIVE","StreamModeDetails":{"StreamMode":"PROVISIONED"},"RetentionPeriodHours":24,"StreamCreationTimestamp":1700000000.0,"EnhancedMonitoring":[],"EncryptionType":"NONE","OpenShardCount":1,"ConsumerCount":0}}"#,
            );
        }
        _ => {
            // CreateStream, ListStreams and anything else: an empty success.
            counters.other_calls.fetch_add(1, Ordering::Relaxed);
            out.extend_from_slice(b"{}");
        }
    }
    200
}
