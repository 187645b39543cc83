//! Delivery: one PutRecords call per batch, on worker threads, as many at
//! once as `in_flight` allows. A worker makes one attempt and hands the
//! answer back; what each entry needs next (accepted, sent again after a
//! backoff in its shard's lane, or a refusal that ends the run) is decided
//! by the outbox (`outbox::results`), so that one refused entry holds up
//! neither its batch's other records nor the states they cover.

use crate::engine::batch::Batch;
use crate::engine::in_flight::{Answer as Pushback, Gate, InFlight, Limit};
use crate::failure::Failure;
use crate::failure::Kind;
use crate::kinesis::classify_entry;
use crate::kinesis::put_records::{read_answer, EntryFailure, EntryResult};
use crate::kinesis::{Cause, Kinesis, KinesisError};
use std::collections::HashSet;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender as ChannelSender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What it took to deliver the records, and what Kinesis took.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// PutRecords calls made.
    pub requests: u64,
    /// Times an entry was sent again.
    pub retried_entries: u64,
    /// Entries refused for throughput (throttling) along the way.
    pub throttled_entries: u64,
    /// Records sent again after an answer that did not say whether Kinesis
    /// stored them, each counted once: Kinesis may hold them twice.
    pub possible_duplicates: u64,
    /// Bytes (data plus partition key) of the entries Kinesis accepted.
    pub accepted_bytes: u64,
}

/// What a PutRecords call came back with.
#[derive(Debug)]
pub enum Answer {
    /// Every entry was stored.
    Stored,
    /// One result per entry, not all of them stored.
    Entries(Vec<EntryResult>),
    /// The call failed as a whole.
    Failed(Box<KinesisError>),
}

impl Answer {
    /// Whether Kinesis pushed back on the call: the limit on calls in flight shrinks.
    fn pushback(&self) -> Pushback {
        let pushed = match self {
            Answer::Stored => false,
            Answer::Entries(results) => {
                let throttled = results
                    .iter()
                    .filter(|r| matches!(r, EntryResult::Refused(f) if f.is_throttle()))
                    .count();
                throttled * 2 > results.len()
            }
            Answer::Failed(e) => e.is_retryable(),
        };
        if pushed {
            Pushback::PushedBack
        } else {
            Pushback::Answered
        }
    }
}

/// A batch back from its call.
pub struct Done {
    /// The batch.
    pub batch: Batch,
    /// What Kinesis said.
    pub answer: Answer,
    /// The shards the answer named, once each.
    pub shards: Vec<String>,
    /// When the answer came.
    pub at: Instant,
}

/// Why a run's records were not all accepted, as the outbox found it.
#[derive(Debug, Clone)]
pub struct DeliveryError {
    /// The stream.
    pub stream: Arc<str>,
    /// The refusal that ended the run (the last one, after a give-up).
    pub refusal: Box<Refusal>,
    /// Entries of the stream not accepted when it ended.
    pub unsent: usize,
    /// How long the oldest of them had been retried, when the retry budget
    /// ran out (the refusal itself was retryable).
    pub gave_up_after: Option<Duration>,
}

/// Why entries were not stored.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// The whole call failed.
    Call(KinesisError),
    /// Kinesis refused entries of a call (the first of them given).
    Entry(EntryFailure),
    /// The answer gave an entry neither a sequence number nor an error.
    Unconfirmed,
}

impl DeliveryError {
    /// The failure that ends the run.
    pub fn to_failure(&self) -> Failure {
        let unsent = crate::text::count(self.unsent as u64, "record", "records");
        if let (Some(after), Refusal::Entry(f)) = (self.gave_up_after, self.refusal.as_ref()) {
            if f.is_throttle() {
                return Failure::new(
                    Kind::Transient,
                    format!(
                        "gave up after retrying for {} s: {unsent} of Kinesis stream `{}` {} still refused for \
                         throughput (ProvisionedThroughputExceededException); add shards, or raise retryTimeoutSeconds",
                        after.as_secs(),
                        self.stream,
                        if self.unsent == 1 { "was" } else { "were" }
                    ),
                );
            }
        }
        let context = match self.gave_up_after {
            Some(d) => format!(
                "gave up after retrying for {} s with {unsent} not accepted by Kinesis",
                d.as_secs()
            ),
            None => format!("Kinesis refused {unsent}"),
        };
        let mut failure = match self.refusal.as_ref() {
            Refusal::Call(e) => Failure::from_kinesis(&context, e),
            Refusal::Entry(f) => Failure::new(
                classify_entry(f),
                format!(
                    "{context}: PutRecords on stream `{}`: {}: {}",
                    self.stream, f.code, f.message
                ),
            ),
            Refusal::Unconfirmed => Failure::new(
                Kind::Transient,
                format!(
                    "{context}: PutRecords on stream `{}`: the answer gave neither a sequence number nor an error",
                    self.stream
                ),
            ),
        }
        .with_exit_code(crate::failure::EXIT_FAILURE);
        if self.gave_up_after.is_some() {
            failure.kind = Kind::Transient;
        }
        failure
    }
}

/// Keeps glibc's allocator to one arena for the whole process. glibc gives
/// each new thread an arena of its own (up to eight per core), each keeping
/// what its thread freed: as more workers take calls over a sync, memory grew
/// by steps and was never returned (a 10-minute soak: peak RSS +19.8% from the
/// first third to the last, +4.0% with one arena, at the same CPU per record).
/// Workers allocate little (a request body and its answer); musl, which the
/// static builds use, has one heap anyway.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        // SAFETY: mallopt only changes a setting of the allocator; arenas
        // already made stay, no more are made.
        ONCE.call_once(|| unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        });
    }
}

/// Makes one PutRecords call for a batch.
pub struct Sender {
    kinesis: Arc<Kinesis>,
    body: Vec<u8>,
    shards: HashSet<String>,
}

impl Sender {
    /// A sender over `kinesis`.
    pub fn new(kinesis: Arc<Kinesis>) -> Sender {
        Sender {
            kinesis,
            body: Vec::new(),
            shards: HashSet::new(),
        }
    }

    /// Sends `batch` once and reads the answer.
    pub fn attempt(&mut self, batch: Batch) -> Done {
        self.shards.clear();
        let body = batch.request(None, &mut self.body);
        let answer = self
            .kinesis
            .call("PutRecords", Some(&batch.stream), body)
            .and_then(|bytes| {
                read_answer(&bytes, batch.len(), &mut self.shards).map_err(|why| KinesisError {
                    op: "PutRecords",
                    stream: Some(batch.stream.to_string()),
                    cause: Cause::BadAnswer(why),
                })
            });
        let answer = match answer {
            Ok(results) if results.iter().all(|r| *r == EntryResult::Stored) => Answer::Stored,
            Ok(results) => Answer::Entries(results),
            Err(e) => Answer::Failed(Box::new(e)),
        };
        Done {
            batch,
            answer,
            shards: self.shards.drain().collect(),
            at: Instant::now(),
        }
    }
}

/// Runs calls on worker threads, as many at once as the limit allows; a
/// worker thread is started the first time that many calls are out, and
/// kept. With one call at a time, calls go strictly one after another, in
/// order; the caller prepares the next batch meanwhile instead of waiting.
pub struct Dispatcher {
    work: Option<SyncSender<Batch>>,
    work_rx: Arc<Mutex<Receiver<Batch>>>,
    done_tx: ChannelSender<Done>,
    done: Receiver<Done>,
    make_sender: Box<dyn Fn() -> Sender>,
    wake: Arc<dyn Fn() + Send + Sync>,
    workers: Vec<JoinHandle<()>>,
    /// Calls submitted and not yet collected.
    in_flight: usize,
    limit: Limit,
    gate: Gate,
}

impl Dispatcher {
    /// A dispatcher whose calls in flight `mode` limits; `wake` is called
    /// after each call returns, so that a caller waiting for input learns of
    /// it at once.
    pub fn new(
        mode: InFlight,
        make_sender: impl Fn() -> Sender + 'static,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Dispatcher {
        one_malloc_arena();
        let (work, work_rx) = sync_channel::<Batch>(0);
        let (done_tx, done) = channel();
        Dispatcher {
            work: Some(work),
            work_rx: Arc::new(Mutex::new(work_rx)),
            done_tx,
            done,
            make_sender: Box::new(make_sender),
            wake: Arc::new(wake),
            workers: Vec::new(),
            in_flight: 0,
            limit: Limit::new(mode, Instant::now()),
            gate: Gate::default(),
        }
    }

    /// Calls submitted and not yet collected.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether a call could start at `now`: a slot is free and no failed
    /// call holds the endpoint back.
    pub fn may_start(&self, now: Instant) -> bool {
        self.in_flight < self.limit.allowed() && self.gate.opens_at(now).is_none()
    }

    /// Whether a slot is free, whatever the gate says.
    pub fn has_free_slot(&self) -> bool {
        self.in_flight < self.limit.allowed()
    }

    /// When a failed call stops holding the endpoint back, if it does.
    pub fn opens_at(&self, now: Instant) -> Option<Instant> {
        self.gate.opens_at(now)
    }

    /// A call waits for a slot: more calls are wanted than allowed.
    pub fn wanted_more(&mut self) {
        self.limit.wanted_more();
    }

    /// Starts the call for `batch`; the caller made sure it may (`may_start`).
    /// Gives the batch back if no worker can take it.
    pub fn submit(&mut self, batch: Batch) -> Result<(), Box<Batch>> {
        if self.in_flight >= self.workers.len() {
            self.spawn_worker();
        }
        let Some(work) = &self.work else {
            return Err(Box::new(batch));
        };
        work.send(batch).map_err(|e| Box::new(e.0))?;
        self.in_flight += 1;
        Ok(())
    }

    fn spawn_worker(&mut self) {
        let work_rx = Arc::clone(&self.work_rx);
        let done_tx = self.done_tx.clone();
        let wake = Arc::clone(&self.wake);
        let mut sender = (self.make_sender)();
        self.workers.push(std::thread::spawn(move || loop {
            let next = match work_rx.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => return,
            };
            let Ok(batch) = next else { return };
            if done_tx.send(sender.attempt(batch)).is_err() {
                return;
            }
            wake();
        }));
    }

    /// Calls that returned, without waiting.
    pub fn poll(&mut self) -> Vec<Done> {
        self.collect(Wait::No)
    }

    /// Waits until a call returns or `deadline` passes; gives the calls that returned.
    pub fn wait_until(&mut self, deadline: Instant) -> Vec<Done> {
        let wait = deadline.saturating_duration_since(Instant::now());
        if self.in_flight == 0 {
            std::thread::sleep(wait);
            return Vec::new();
        }
        let mut finished = Vec::new();
        if let Ok(d) = self.done.recv_timeout(wait) {
            self.note(&d);
            finished.push(d);
        }
        finished.extend(self.collect(Wait::No));
        finished
    }

    /// Waits for every call in flight.
    pub fn drain(&mut self) -> Vec<Done> {
        self.collect(Wait::All)
    }

    /// Collects returned calls, waiting as `wait` says.
    fn collect(&mut self, wait: Wait) -> Vec<Done> {
        let mut finished = Vec::new();
        while self.in_flight > 0 {
            let next = match wait {
                Wait::All => self.done.recv().ok(),
                Wait::No => self.done.try_recv().ok(),
            };
            let Some(d) = next else { break };
            self.note(&d);
            finished.push(d);
        }
        finished
    }

    /// Lets the limit and the gate learn from a returned call.
    fn note(&mut self, d: &Done) {
        self.in_flight -= 1;
        let rtt = d
            .batch
            .sent_at
            .map_or(Duration::ZERO, |at| d.at.saturating_duration_since(at));
        let pushback = d.answer.pushback();
        self.limit.answered(d.at, rtt, pushback);
        // Kinesis pushing back holds every call back a while, as a shard's
        // allowance would: with pacing off, nothing else slows a storm.
        match pushback {
            Pushback::PushedBack => self.gate.failed(d.at),
            Pushback::Answered => self.gate.answered(),
        }
    }
}

/// How long `Dispatcher::collect` waits.
#[derive(Clone, Copy)]
enum Wait {
    /// Not at all.
    No,
    /// Until every call returned.
    All,
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        // Closing the work channel ends each worker after its current call.
        self.work.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
