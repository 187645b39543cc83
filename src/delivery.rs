//! Delivery: sending one batch until Kinesis has accepted every entry,
//! resending only the entries it did not store, within the retry budget; and
//! running up to `maxInFlight` such deliveries at once on plain threads.

use crate::batch::Batch;
use crate::failure::{classify_entry, Failure};
use crate::input::Cancel;
use crate::kinesis::{Cause, Kinesis, KinesisError};
use crate::protocol::FailureType;
use crate::put_records::{read_answer, EntryFailure, EntryResult};
use crate::retry::Backoff;
use std::collections::HashSet;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender as ChannelSender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a cancelled sync may still spend sending what it holds.
pub const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// What it took to deliver batches.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// PutRecords calls made.
    pub requests: u64,
    /// Entries sent more than once.
    pub retried_entries: u64,
    /// Entries refused for throughput (throttling) along the way.
    pub throttled_entries: u64,
    /// Entries resent after an answer was lost, which Kinesis may now hold twice.
    pub possible_duplicates: u64,
}

impl Sent {
    /// Adds another delivery's figures.
    pub fn add(&mut self, other: &Sent) {
        self.requests += other.requests;
        self.retried_entries += other.retried_entries;
        self.throttled_entries += other.throttled_entries;
        self.possible_duplicates += other.possible_duplicates;
    }
}

/// What a delivery did that ended with every entry stored, or handed back.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Request figures.
    pub sent: Sent,
    /// Entries a shard refused for throughput, handed back to wait for the
    /// shard's allowance (batches that ask for it), by index.
    pub set_aside: Vec<usize>,
    /// The shards the answers named, once each.
    pub shards: Vec<String>,
}

/// Why entries were not stored.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// The whole call failed.
    Call(Box<KinesisError>),
    /// The call succeeded but some entries were refused or left unconfirmed.
    Entries {
        /// The first refusal that no resend cures, else the first refusal;
        /// None when the entries were only left unconfirmed.
        first: Option<EntryFailure>,
        /// Entries in the request.
        of: usize,
    },
}

impl Refusal {
    /// Whether a resend may cure it.
    fn is_retryable(&self) -> bool {
        match self {
            Refusal::Call(e) => e.is_retryable(),
            Refusal::Entries { first, .. } => first.as_ref().is_none_or(EntryFailure::is_retryable),
        }
    }
}

/// A batch that could not be delivered in full.
#[derive(Debug, Clone)]
pub struct DeliveryError {
    /// The stream.
    pub stream: Arc<str>,
    /// The last refusal seen.
    pub refusal: Box<Refusal>,
    /// The entries not accepted, by index in the batch.
    pub unsent: Vec<usize>,
    /// How long it was retried when the retry budget ran out (the refusal itself was retryable).
    pub gave_up_after: Option<Duration>,
    /// The signal that cut the retry budget short, if one did.
    pub cancelled_by: Option<&'static str>,
    /// Figures up to the failure.
    pub sent: Sent,
}

impl DeliveryError {
    /// The failure that ends a run, for a batch of `entries` entries.
    pub fn to_failure(&self, entries: usize) -> Failure {
        let unsent = self.unsent.len();
        let context = match (self.gave_up_after, self.cancelled_by) {
            (Some(_), Some(signal)) => format!(
                "sync cancelled by {signal}: {unsent} of {entries} records were still not accepted by Kinesis \
                 when the {} s allowed after a signal ran out",
                CANCEL_GRACE.as_secs(),
            ),
            (Some(d), None) => format!(
                "gave up after retrying for {} s with {unsent} of {entries} records not accepted by Kinesis",
                d.as_secs(),
            ),
            (None, _) => format!("Kinesis refused {unsent} of {entries} records"),
        };
        let mut failure = match self.refusal.as_ref() {
            Refusal::Call(e) => Failure::from_kinesis(&context, e),
            Refusal::Entries { first, of } => {
                let (failure_type, detail) = match first {
                    Some(f) => (classify_entry(f), format!("{}: {}", f.code, f.message)),
                    None => (
                        FailureType::Transient,
                        "the answer gave neither a sequence number nor an error".to_string(),
                    ),
                };
                Failure::new(
                    failure_type,
                    format!(
                        "{context}: PutRecords on stream `{}`: {unsent} of {of} entries not stored; first: {detail}",
                        self.stream
                    ),
                )
                .with_exit_code(crate::failure::EXIT_FAILURE)
            }
        };
        if self.gave_up_after.is_some() {
            failure.failure_type = FailureType::Transient;
        }
        failure
    }
}

/// Sends batches one at a time, retrying as the policy says.
pub struct Sender {
    kinesis: Arc<Kinesis>,
    retry_timeout: Duration,
    cancel: Arc<Cancel>,
    body: Vec<u8>,
}

/// What one attempt left to do.
enum Attempt {
    /// Every pending entry is stored or set aside.
    Done,
    /// These entries must go again (or the batch fails), for this reason.
    Again(Vec<usize>, Refusal),
}

impl Sender {
    /// A sender over `kinesis` that retries a batch for up to `retry_timeout`.
    pub fn new(kinesis: Arc<Kinesis>, retry_timeout: Duration, cancel: Arc<Cancel>) -> Sender {
        Sender {
            kinesis,
            retry_timeout,
            cancel,
            body: Vec::new(),
        }
    }

    /// Delivers every entry of `batch` (or hands throttled ones back, when
    /// the batch asks for that), or says why not.
    pub fn deliver(&mut self, batch: &Batch) -> Result<Delivered, DeliveryError> {
        let started = Instant::now();
        let mut backoff = Backoff::until(started + self.retry_timeout);
        let mut done = Delivered::default();
        let mut shards = HashSet::new();
        let mut pending: Vec<usize> = (0..batch.len()).collect();
        loop {
            if let Some(since) = self.cancel.since() {
                backoff.shorten_to(since + CANCEL_GRACE);
            }
            let resend = pending.len() < batch.len();
            let attempt = self.attempt(batch, &pending, resend, &mut done, &mut shards);
            let Attempt::Again(failed, refusal) = attempt else {
                done.shards = shards.into_iter().collect();
                return Ok(done);
            };
            pending = failed;
            if refusal.is_retryable() {
                if let Some(delay) = backoff.next_delay() {
                    done.sent.retried_entries += pending.len() as u64;
                    self.sleep(delay, &mut backoff);
                    continue;
                }
            }
            pending.extend_from_slice(&done.set_aside);
            let gave_up_after = refusal.is_retryable().then(|| started.elapsed());
            return Err(DeliveryError {
                stream: Arc::clone(&batch.stream),
                refusal: Box::new(refusal),
                unsent: pending,
                gave_up_after,
                cancelled_by: gave_up_after.and(self.cancel.signal()),
                sent: done.sent,
            });
        }
    }

    /// One PutRecords call for the `pending` entries of `batch`.
    fn attempt(
        &mut self,
        batch: &Batch,
        pending: &[usize],
        resend: bool,
        done: &mut Delivered,
        shards: &mut HashSet<String>,
    ) -> Attempt {
        let sent = &mut done.sent;
        let body = batch.request(resend.then_some(pending), &mut self.body);
        sent.requests += 1;
        let answer = self
            .kinesis
            .call("PutRecords", Some(&batch.stream), body)
            .and_then(|bytes| {
                read_answer(&bytes, pending.len(), shards).map_err(|why| KinesisError {
                    op: "PutRecords",
                    stream: Some(batch.stream.to_string()),
                    cause: Cause::BadAnswer(why),
                })
            });
        let results = match answer {
            Ok(results) => results,
            Err(e) => {
                if e.outcome_unknown() {
                    sent.possible_duplicates += pending.len() as u64;
                }
                if e.code() == Some("ProvisionedThroughputExceededException") {
                    sent.throttled_entries += pending.len() as u64;
                }
                return Attempt::Again(pending.to_vec(), Refusal::Call(Box::new(e)));
            }
        };
        let mut failed = Vec::new();
        let mut first: Option<EntryFailure> = None;
        for (&index, result) in pending.iter().zip(results) {
            match result {
                EntryResult::Stored => {}
                EntryResult::Refused(f) if f.is_throttle() && batch.requeue_throttled => {
                    sent.throttled_entries += 1;
                    done.set_aside.push(index);
                }
                EntryResult::Refused(f) => {
                    if f.is_throttle() {
                        sent.throttled_entries += 1;
                    }
                    // The reason shown is one no resend cures, if there is one.
                    if first
                        .as_ref()
                        .is_none_or(|seen| seen.is_retryable() && !f.is_retryable())
                    {
                        first = Some(f);
                    }
                    failed.push(index);
                }
                EntryResult::Unconfirmed => {
                    sent.possible_duplicates += 1;
                    failed.push(index);
                }
            }
        }
        if failed.is_empty() {
            return Attempt::Done;
        }
        let of = pending.len();
        Attempt::Again(failed, Refusal::Entries { first, of })
    }

    /// Sleeps, waking early if a cancellation moves the deadline closer.
    fn sleep(&self, delay: Duration, backoff: &mut Backoff) {
        let until = Instant::now() + delay;
        while Instant::now() < until {
            if let Some(since) = self.cancel.since() {
                backoff.shorten_to(since + CANCEL_GRACE);
                if Instant::now() >= backoff.deadline() {
                    return;
                }
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
    }
}

/// A finished delivery, handing the batch back for reuse.
pub struct Done {
    /// The batch.
    pub batch: Batch,
    /// Its outcome.
    pub result: Result<Delivered, DeliveryError>,
}

/// Runs deliveries on worker threads, up to `maxInFlight` at once. With one,
/// requests still go strictly one after another, in order; the caller
/// prepares the next batch meanwhile instead of waiting.
pub struct Dispatcher {
    /// Work for the threads.
    work: Option<SyncSender<Batch>>,
    /// Finished deliveries.
    done: Receiver<Done>,
    /// Deliveries submitted and not yet collected.
    in_flight: usize,
    /// Most deliveries at once.
    max: usize,
    /// The worker threads.
    workers: Vec<JoinHandle<()>>,
}

impl Dispatcher {
    /// A dispatcher allowing `max_in_flight` concurrent PutRecords calls (at
    /// least one); `wake` is called after each delivery finishes, so that a
    /// caller waiting for input learns of it at once.
    pub fn new(
        max_in_flight: usize,
        make_sender: impl Fn() -> Sender,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Dispatcher {
        let max = max_in_flight.max(1);
        let (work_tx, work_rx) = sync_channel::<Batch>(0);
        let work_rx = Arc::new(std::sync::Mutex::new(work_rx));
        let (done_tx, done) = channel();
        let wake = Arc::new(wake);
        let workers = (0..max)
            .map(|_| {
                let work_rx = Arc::clone(&work_rx);
                let done_tx: ChannelSender<Done> = done_tx.clone();
                let wake = Arc::clone(&wake);
                let mut sender = make_sender();
                std::thread::spawn(move || loop {
                    let next = match work_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(batch) = next else { return };
                    let result = sender.deliver(&batch);
                    if done_tx.send(Done { batch, result }).is_err() {
                        return;
                    }
                    wake();
                })
            })
            .collect();
        Dispatcher {
            work: Some(work_tx),
            done,
            in_flight: 0,
            max,
            workers,
        }
    }

    /// Deliveries submitted and not yet collected.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Waits until a delivery finishes or `deadline` passes; returns the
    /// deliveries that finished.
    pub fn wait_until(&mut self, deadline: Instant) -> Vec<Done> {
        let wait = deadline.saturating_duration_since(Instant::now());
        if self.in_flight == 0 {
            std::thread::sleep(wait);
            return Vec::new();
        }
        let mut finished = Vec::new();
        if let Ok(d) = self.done.recv_timeout(wait) {
            self.in_flight -= 1;
            finished.push(d);
        }
        finished.extend(self.collect(Wait::No));
        finished
    }

    /// Whether a delivery could start now without waiting.
    pub fn has_free_slot(&self) -> bool {
        self.in_flight < self.max
    }

    /// Waits until another delivery may start; returns the deliveries that
    /// finished meanwhile, so a failure among them can stop the next one.
    pub fn wait_for_slot(&mut self) -> Vec<Done> {
        let mut finished = if self.in_flight >= self.max {
            self.collect(Wait::One)
        } else {
            Vec::new()
        };
        finished.extend(self.collect(Wait::No));
        finished
    }

    /// Starts delivering `batch`; the caller has made sure a slot is free
    /// (`wait_for_slot`). Gives the batch back if no worker can take it.
    pub fn submit(&mut self, batch: Batch) -> Result<(), Box<Batch>> {
        let Some(work) = &self.work else {
            return Err(Box::new(batch));
        };
        work.send(batch).map_err(|e| Box::new(e.0))?;
        self.in_flight += 1;
        Ok(())
    }

    /// Deliveries that finished, without waiting.
    pub fn poll(&mut self) -> Vec<Done> {
        self.collect(Wait::No)
    }

    /// Waits for one delivery in flight to finish (none when nothing is in flight).
    pub fn wait_one(&mut self) -> Vec<Done> {
        self.collect(Wait::One)
    }

    /// Waits for every delivery in flight.
    pub fn drain(&mut self) -> Vec<Done> {
        self.collect(Wait::All)
    }

    /// Collects finished deliveries, waiting as `wait` says.
    fn collect(&mut self, wait: Wait) -> Vec<Done> {
        let mut finished = Vec::new();
        while self.in_flight > 0 {
            let must_wait = match wait {
                Wait::No => false,
                Wait::One => finished.is_empty(),
                Wait::All => true,
            };
            let next = if must_wait {
                self.done.recv().ok()
            } else {
                self.done.try_recv().ok()
            };
            let Some(d) = next else { break };
            self.in_flight -= 1;
            finished.push(d);
        }
        finished
    }
}

/// How long `Dispatcher::collect` waits.
#[derive(Clone, Copy)]
enum Wait {
    /// Not at all.
    No,
    /// Until one delivery finished.
    One,
    /// Until every delivery finished.
    All,
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        // Closing the work channel ends each worker after its current batch.
        self.work.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
