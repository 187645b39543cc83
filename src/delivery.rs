//! Delivery: sending one batch until Kinesis has accepted every entry, resending
//! only the failed ones, within the retry budget; and running up to
//! `maxInFlight` such deliveries at once on plain threads.

use crate::batch::Batch;
use crate::failure::Failure;
use crate::input::Cancel;
use crate::kinesis::{AwsError, Cause, EntryOutcome, Kinesis, KinesisError};
use crate::protocol::FailureType;
use crate::retry::Backoff;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender as ChannelSender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a cancelled sync may still spend sending what it holds.
pub const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// What it took to deliver a batch.
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

/// A batch that could not be delivered in full.
#[derive(Debug, Clone)]
pub struct DeliveryError {
    /// The last error seen.
    pub error: Box<KinesisError>,
    /// Entries not accepted.
    pub unsent: usize,
    /// Whether the retry budget ran out (the error itself was retryable).
    pub gave_up_after: Option<Duration>,
    /// The signal that cut the retry budget short, if one did.
    pub cancelled_by: Option<&'static str>,
    /// Figures up to the failure.
    pub sent: Sent,
}

impl DeliveryError {
    /// The failure that ends a run, for a batch of `entries` entries.
    pub fn to_failure(&self, entries: usize) -> Failure {
        let failure_type = if self.gave_up_after.is_some() {
            FailureType::Transient
        } else {
            crate::failure::classify(&self.error)
        };
        let context = match (self.gave_up_after, self.cancelled_by) {
            (Some(_), Some(signal)) => format!(
                "sync cancelled by {signal}: {} of {entries} records were still not accepted by Kinesis \
                 when the {} s allowed after a signal ran out",
                self.unsent,
                CANCEL_GRACE.as_secs(),
            ),
            (Some(d), None) => format!(
                "gave up after retrying for {} s with {} of {entries} records not accepted by Kinesis",
                d.as_secs(),
                self.unsent,
            ),
            (None, _) => format!("Kinesis refused {} of {entries} records", self.unsent),
        };
        let mut f = Failure::from_kinesis(&context, &self.error);
        f.failure_type = failure_type;
        f
    }
}

/// Entry error codes that a resend can cure.
const RETRYABLE_ENTRY_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "InternalFailure",
    "KMSThrottlingException",
    "ServiceUnavailable",
];

/// Sends batches one at a time, retrying as the policy says.
pub struct Sender {
    kinesis: Arc<Kinesis>,
    retry_timeout: Duration,
    cancel: Arc<Cancel>,
    body: Vec<u8>,
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

    /// Delivers every entry of `batch`, or says why not.
    pub fn deliver(&mut self, batch: &Batch) -> Result<Sent, DeliveryError> {
        let started = Instant::now();
        let mut backoff = Backoff::until(started + self.retry_timeout);
        let mut sent = Sent::default();
        let mut pending: Option<Vec<usize>> = None;
        loop {
            if let Some(since) = self.cancel.since() {
                backoff.shorten_to(since + CANCEL_GRACE);
            }
            let count = pending.as_ref().map_or(batch.len(), Vec::len);
            let body = batch.request_body(pending.as_deref(), &mut self.body);
            sent.requests += 1;
            let failure = match self.kinesis.put_records(&batch.stream, body, count) {
                Ok(outcomes) => {
                    let indexes: Vec<usize> =
                        pending.take().unwrap_or_else(|| (0..batch.len()).collect());
                    let mut failed = Vec::new();
                    let mut first_error = None;
                    for (index, outcome) in indexes.into_iter().zip(outcomes) {
                        if let EntryOutcome::Failed { code, message } = outcome {
                            if code == "ProvisionedThroughputExceededException" {
                                sent.throttled_entries += 1;
                            }
                            if first_error.is_none()
                                || !RETRYABLE_ENTRY_CODES.contains(&code.as_str())
                            {
                                first_error = Some((code, message));
                            }
                            failed.push(index);
                        }
                    }
                    let Some((code, message)) = first_error else {
                        return Ok(sent);
                    };
                    let error = KinesisError {
                        op: "PutRecords",
                        stream: Some(batch.stream.clone()),
                        cause: Cause::Aws(AwsError {
                            status: 200,
                            message: format!(
                                "{} of {count} records failed; first: {message}",
                                failed.len()
                            ),
                            code,
                        }),
                    };
                    let retryable = error
                        .code()
                        .is_some_and(|c| RETRYABLE_ENTRY_CODES.contains(&c));
                    let unsent = failed.len();
                    pending = Some(failed);
                    if !retryable {
                        return Err(DeliveryError {
                            error: Box::new(error),
                            unsent,
                            gave_up_after: None,
                            cancelled_by: None,
                            sent,
                        });
                    }
                    sent.retried_entries += unsent as u64;
                    error
                }
                Err(error) => {
                    if !error.is_retryable() {
                        return Err(DeliveryError {
                            error: Box::new(error),
                            unsent: count,
                            gave_up_after: None,
                            cancelled_by: None,
                            sent,
                        });
                    }
                    if error.outcome_unknown() {
                        sent.possible_duplicates += count as u64;
                    }
                    if error.code() == Some("ProvisionedThroughputExceededException") {
                        sent.throttled_entries += count as u64;
                    }
                    sent.retried_entries += count as u64;
                    error
                }
            };
            match backoff.next_delay() {
                Some(delay) => self.sleep(delay, &mut backoff),
                None => {
                    let unsent = pending.as_ref().map_or(batch.len(), Vec::len);
                    return Err(DeliveryError {
                        error: Box::new(failure),
                        unsent,
                        gave_up_after: Some(started.elapsed()),
                        cancelled_by: self.cancel.signal(),
                        sent,
                    });
                }
            }
        }
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
    /// The batch, with its id.
    pub batch: Batch,
    /// Its outcome.
    pub result: Result<Sent, DeliveryError>,
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
    /// A dispatcher allowing `max_in_flight` concurrent PutRecords calls (at least one).
    pub fn new(max_in_flight: usize, make_sender: impl Fn() -> Sender) -> Dispatcher {
        let max = max_in_flight.max(1);
        let (work_tx, work_rx) = sync_channel::<Batch>(0);
        let work_rx = Arc::new(std::sync::Mutex::new(work_rx));
        let (done_tx, done) = channel();
        let workers = (0..max)
            .map(|_| {
                let work_rx = Arc::clone(&work_rx);
                let done_tx: ChannelSender<Done> = done_tx.clone();
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

    /// Starts delivering `batch`, first waiting for a free slot; returns
    /// whatever deliveries finished meanwhile.
    pub fn submit(&mut self, batch: Batch) -> Vec<Done> {
        let mut finished = self.wait_for_slot();
        if let Some(work) = &self.work {
            if work.send(batch).is_ok() {
                self.in_flight += 1;
            }
        }
        finished.extend(self.collect(Wait::No));
        finished
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
