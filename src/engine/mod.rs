//! The sending engine that `write` and `put` both drive. It reads stdin line
//! by line and hands each line to the command's adapter, which turns it into
//! records in the outbox; it sends the batches the outbox closes, as many at
//! once as `maxInFlight` allows, lets entries that wait in their shards'
//! lanes go as allowances refill, backoffs end and calls return, and gives
//! the results back to the adapter as they come. While the outbox (batches
//! in flight included) fills the memory budget, input is read no further.
//! At the end of input, on a bad line, on a signal or on a failed delivery,
//! it stops reading, sends what is buffered (unless a delivery failed) and
//! waits for every answer.

pub mod batch;
pub(crate) mod delivery;
pub(crate) mod ids;
pub mod in_flight;
pub(crate) mod input;
mod lanes;
pub mod outbox;
pub(crate) mod partition;
mod rate;
pub(crate) mod sending;

pub use sending::{Sending, DEFAULT_LINGER};

use crate::engine::delivery::{Dispatcher, Done, Sender, Sent};
use crate::engine::in_flight::InFlight;
use crate::engine::input::{Event, Framing, LineReader};
use crate::engine::outbox::{Outbox, Pacing};
use crate::failure::Kind;
use crate::failure::{stdin_failed, Failure};
use crate::kinesis::setup::read_shard_map;
use crate::kinesis::stream::StreamRef;
use crate::kinesis::Kinesis;
use crate::signals::Cancel;
use crate::signals::CANCEL_GRACE;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How long the engine waits for input when nothing is due, before it looks
/// again at what the adapter may want to do (redraw progress).
const IDLE_TICK: Duration = Duration::from_millis(500);

/// What a command does with the lines and the results: the part of `write`
/// and `put` that differs.
pub trait Adapter {
    /// Takes one input line; records go into `outbox`.
    fn line(&mut self, line: InputLine<'_>, outbox: &mut Outbox) -> Result<(), Failure>;

    /// The failure for a line longer than the engine's line limit, given
    /// the line's first bytes.
    fn too_long(&self, line_no: u64, limit: usize, head: &[u8]) -> Failure;

    /// The failure for a run stopped by a signal, once what was read is sent.
    fn stopped_by(&self, signal: &str) -> Failure;

    /// Kinesis accepted `records` more input records.
    fn accepted(&mut self, records: u64);

    /// Results came in, or time passed: echo what became safe, redraw progress.
    fn settle(&mut self, outbox: &Outbox) -> Result<(), Failure>;
}

/// One line of input as the engine hands it to its adapter.
#[derive(Debug, Clone, Copy)]
pub struct InputLine<'a> {
    /// The line, without its delimiter.
    pub bytes: &'a [u8],
    /// Its number, from 1.
    pub number: u64,
    /// When it was read from the input (the time of the read that
    /// completed it).
    pub read_at: SystemTime,
}

/// How the engine reads and sends.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How input is cut into lines.
    pub framing: Framing,
    /// PutRecords calls in flight at once.
    pub max_in_flight: InFlight,
}

/// What a run did, whatever its outcome.
#[derive(Debug, Default, Clone, Copy)]
pub struct Report {
    /// Lines read.
    pub lines: u64,
    /// Whether any input at all was read.
    pub read_anything: bool,
    /// Request figures, and what Kinesis accepted.
    pub sent: Sent,
    /// What pacing by shard did.
    pub pacing: Pacing,
    /// How long the run took.
    pub elapsed: Duration,
}

impl Report {
    /// What a summary adds when no input at all was read: nothing otherwise.
    pub fn no_input_note(&self) -> &'static str {
        if self.read_anything {
            ""
        } else {
            "; no input was read (standard input was empty or closed)"
        }
    }
}

/// The running state of one run.
struct Engine {
    kinesis: Arc<Kinesis>,
    outbox: Outbox,
    dispatcher: Dispatcher,
    lines: LineReader,
    cancel: Arc<Cancel>,
    /// The first failure that stops sending (a delivery, or stdout); once
    /// set, nothing more is sent.
    failed: Option<Failure>,
}

/// Reads `input` to its end through `adapter`, sending with `kinesis`.
/// Signals (SIGTERM, SIGINT, SIGHUP) are caught from here on.
pub fn run<A: Adapter>(
    kinesis: Arc<Kinesis>,
    outbox: Outbox,
    settings: &Settings,
    input: impl Read + Send + 'static,
    adapter: &mut A,
) -> (Report, Result<(), Failure>) {
    let started = Instant::now();
    let cancel = Cancel::install();
    let lines = LineReader::spawn(input, settings.framing, Arc::clone(&cancel));
    let waker = lines.waker();
    let for_senders = Arc::clone(&kinesis);
    let dispatcher = Dispatcher::new(
        settings.max_in_flight,
        move || Sender::new(Arc::clone(&for_senders)),
        move || waker.wake(),
    );
    let mut engine = Engine {
        kinesis,
        outbox,
        dispatcher,
        lines,
        cancel,
        failed: None,
    };
    let read = engine.read_all(adapter, settings.framing.max_line);
    // Whatever ended the input, what was read is sent, so that the states
    // it covers can be echoed; unless sending already failed.
    engine.drain(adapter);
    let report = Report {
        lines: engine.lines.line_number(),
        read_anything: engine.lines.read_anything(),
        sent: engine.outbox.sent(),
        pacing: engine.outbox.pacing(),
        elapsed: started.elapsed(),
    };
    let result = match engine.failed.take() {
        Some(f) => Err(f),
        // A signal that came after the end of input still ends the run as
        // one that came while reading: what was read is sent, then a failure.
        None => read.and_then(|()| match engine.cancel.signal() {
            Some(signal) => Err(adapter.stopped_by(signal)),
            None => Ok(()),
        }),
    };
    (report, result)
}

impl Engine {
    /// Reads lines until the end of input, a bad line, a signal or a failure.
    fn read_all<A: Adapter>(&mut self, adapter: &mut A, max_line: usize) -> Result<(), Failure> {
        while self.failed.is_none() {
            self.wait_while_over_budget(adapter);
            let line_no = self.lines.line_number() + 1;
            match self.lines.next_event(self.next_wake(), IDLE_TICK) {
                Event::Line(bytes, read_at) => {
                    let line = InputLine {
                        bytes,
                        number: line_no,
                        read_at,
                    };
                    adapter.line(line, &mut self.outbox)?;
                }
                Event::TooLong(head) => return Err(adapter.too_long(line_no, max_line, head)),
                Event::Idle => self.tick(adapter),
                Event::Eof => return Ok(()),
                Event::Cancelled(signal) => return Err(adapter.stopped_by(signal)),
                Event::Failed(e) => return Err(stdin_failed(&e)),
            }
            self.send_ready(adapter);
        }
        Ok(())
    }

    /// When the wait for input should end to do what is due: the oldest
    /// open batch's deadline (while a call could take it), the time waiting
    /// entries may go, or the end of a failed call's backoff while a batch
    /// waits for it.
    fn next_wake(&self) -> Option<Instant> {
        // While every call is in flight a due batch could not go out
        // anyway: it goes on filling until a call returns (which wakes the
        // wait), so slow answers make batches fuller, not smaller.
        let due = self
            .outbox
            .next_deadline()
            .filter(|_| self.dispatcher.has_free_slot());
        let gate = self
            .dispatcher
            .opens_at(Instant::now())
            .filter(|_| self.outbox.has_ready());
        [due, self.outbox.next_release(), gate]
            .into_iter()
            .flatten()
            .min()
    }

    /// Does what time brought: takes in finished calls, closes due batches,
    /// lets waiting entries go, reads changed shard maps, sends, settles.
    fn tick<A: Adapter>(&mut self, adapter: &mut A) {
        let done = self.dispatcher.poll();
        self.collect(done, adapter);
        let now = Instant::now();
        if self.dispatcher.has_free_slot() {
            self.outbox.close_due(now);
        } else if self.outbox.next_deadline().is_some_and(|at| at <= now) {
            self.dispatcher.wanted_more();
        }
        self.outbox.release(now);
        self.read_changed_maps(now);
        self.send_ready(adapter);
        self.settle(adapter);
    }

    /// Reads again the shard maps of streams whose shards changed (an answer
    /// named an unknown shard) or were not looked at for a while.
    fn read_changed_maps(&mut self, now: Instant) {
        for (t, stream) in self.outbox.maps_to_read(now) {
            let map = read_shard_map(&self.kinesis, &StreamRef::from_wire(&stream)).ok();
            self.outbox.set_map(t, map, now);
        }
    }

    /// While the outbox holds more than the budget, input is not read: the
    /// engine waits for calls to return and shards to refill, so that a slow
    /// shard or a slow endpoint slows the reading, never the memory.
    fn wait_while_over_budget<A: Adapter>(&mut self, adapter: &mut A) {
        while self.failed.is_none() && self.outbox.over_budget() && self.cancel.signal().is_none() {
            self.wait_for_results(adapter);
        }
    }

    /// Waits until a call returns or something is due, then does what is due.
    fn wait_for_results<A: Adapter>(&mut self, adapter: &mut A) {
        let idle = Instant::now() + IDLE_TICK;
        let until = self.next_wake().map_or(idle, |due| due.min(idle));
        let done = self.dispatcher.wait_until(until);
        self.collect(done, adapter);
        self.tick(adapter);
    }

    /// Sends everything held, and waits for every answer (within the grace
    /// a signal leaves), unless sending failed.
    fn drain<A: Adapter>(&mut self, adapter: &mut A) {
        loop {
            if self.failed.is_some() {
                let done = self.dispatcher.drain();
                self.collect(done, adapter);
                while let Some(batch) = self.outbox.pop_ready() {
                    self.outbox.abandon(batch);
                }
                return;
            }
            self.outbox.release(Instant::now());
            // Entries still waiting in lanes, or coming back refused from the
            // calls in flight, fill batches that close when full or due, as
            // while reading; once none waits and no call can bring any back,
            // nothing more can join a batch, and the last ones go at once.
            if !self.outbox.has_waiting() && self.dispatcher.in_flight() == 0 {
                self.outbox.close_all();
            }
            self.send_ready(adapter);
            // Closing aggregates may have made entries wait.
            let held =
                self.outbox.has_waiting() || self.outbox.has_ready() || self.outbox.has_open();
            if !held && self.dispatcher.in_flight() == 0 {
                return;
            }
            if held
                && self
                    .cancel
                    .since()
                    .is_some_and(|at| at.elapsed() >= CANCEL_GRACE)
            {
                let signal = self.cancel.signal().unwrap_or("a signal");
                self.fail(Failure::new(
                    Kind::Transient,
                    format!(
                        "sync cancelled by {signal}: records were still waiting to be sent or sent again \
                         when the {} s allowed after a signal ran out",
                        CANCEL_GRACE.as_secs()
                    ),
                ));
                continue;
            }
            self.wait_for_results(adapter);
        }
    }

    /// Sends the batches the outbox closed while calls may start; the rest
    /// wait for a call to return (or a failed call's backoff to end).
    fn send_ready<A: Adapter>(&mut self, adapter: &mut A) {
        while self.outbox.has_ready() && self.failed.is_none() {
            let now = Instant::now();
            if !self.dispatcher.may_start(now) {
                // Calls that returned free their slots.
                let done = self.dispatcher.poll();
                if done.is_empty() {
                    if !self.dispatcher.has_free_slot() {
                        self.dispatcher.wanted_more();
                    }
                    return;
                }
                self.collect(done, adapter);
                continue;
            }
            let Some(mut batch) = self.outbox.pop_ready() else {
                return;
            };
            self.outbox.sending(&mut batch, now);
            if let Err(batch) = self.dispatcher.submit(batch) {
                self.outbox.abandon(*batch);
                self.fail(Failure::new(
                    Kind::System,
                    "internal error: no thread is left to send requests; run again from the last echoed state",
                ));
            }
        }
    }

    /// Takes in returned calls.
    fn collect<A: Adapter>(&mut self, done: Vec<Done>, adapter: &mut A) {
        if done.is_empty() {
            return;
        }
        for d in done {
            let answered = self.outbox.answered(d);
            adapter.accepted(answered.records);
            if let Some(e) = answered.failure {
                self.fail(e.to_failure());
            }
        }
        self.settle(adapter);
    }

    fn settle<A: Adapter>(&mut self, adapter: &mut A) {
        if let Err(f) = adapter.settle(&self.outbox) {
            self.fail(f);
        }
    }

    /// Notes the first failure; later ones follow from it.
    fn fail(&mut self, failure: Failure) {
        self.failed.get_or_insert(failure);
    }
}
