//! `read`: every record of a stream on stdout, one a line, from every shard
//! (parents before their children) or the shards chosen, oldest first per
//! shard, within the GetRecords limits; KPL aggregates are unpacked.
//! `records` is the same reading for a library caller: the records in a list.

mod flags;
mod print;

pub use flags::{parse_from, parse_idle_timeout, parse_poll_interval, parse_until};
pub use print::{Aggregates, Record};

use print::{Printer, Sink};

use crate::aws::retry::Backoff;
use crate::failure::Failure;
use crate::kinesis::stream::StreamRef;
use crate::kinesis::stream_call_failed;
use crate::kinesis::{Kinesis, KinesisError, ReadRecord, RecordsPage, Shard, StartPosition};
use crate::pipeline::output::OutputFormat;
use crate::pipeline::progress::StatusLine;
use crate::pipeline::shard_filter::ShardFilter;
use crate::pipeline::timespec::{format_time, now_seconds};
use crate::pipeline::Settings;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::time::{Duration, Instant};

/// Kinesis allows 5 GetRecords calls a second per shard: a shard that is
/// behind is read at up to that, counted as Kinesis counts it (at most five
/// calls in any second), so a short shard's tip is confirmed without a wait.
const CALLS_PER_SECOND: usize = 5;
/// The steady pace those 5 calls a second allow.
const MIN_CALL_INTERVAL: Duration = Duration::from_millis(200);
/// The pace once a shard has caught up: AWS advises about one call a second
/// per consumer, as the 5 calls are shared by every consumer of the stream.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Wait after a throughput refusal or a failed call before asking that shard again.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How long after `--until` a caught-up shard is taken to have passed it: a
/// record reaches readers a moment after it arrived.
const UNTIL_GRACE: Duration = Duration::from_secs(1);
/// How often `--follow` lists shards again to find new ones.
const RELIST_EVERY: Duration = Duration::from_secs(10);
/// Most records one GetRecords call returns.
const MAX_PAGE: u64 = 10_000;

/// What `read` was asked to do.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The Kinesis stream.
    pub stream: StreamRef,
    /// Where to start in every shard read.
    pub from: StartPosition,
    /// Stop each shard at its first record that arrived after this time (epoch seconds).
    pub until: Option<f64>,
    /// Stop after this many records.
    pub limit: Option<u64>,
    /// Keep polling for new records and new shards.
    pub follow: bool,
    /// How records are printed.
    pub format: OutputFormat,
    /// Pause between calls to a shard that has caught up.
    pub poll_interval: Duration,
    /// Stop once no record came for this long.
    pub idle_timeout: Option<Duration>,
    /// The shards read.
    pub shards: ShardFilter,
    /// Whether to show a status line (with the lag) on stderr and a summary at the end.
    pub progress: bool,
}

impl ReadOptions {
    /// Checks the flags that only make sense together.
    pub fn validate(&self) -> Result<(), Failure> {
        if let StartPosition::AtSequenceNumber(_) | StartPosition::AfterSequenceNumber(_) =
            &self.from
        {
            if self.shards.single_shard().is_none() {
                return Err(Failure::usage(
                    "--from at:SEQ and after:SEQ name a place in one shard: give that shard with one --shard \
                     (the `shard` field of --format json), e.g. --shard shardId-000000000001 --from after:4959...",
                ));
            }
        }
        if let (StartPosition::AtTimestamp(from), Some(until)) = (&self.from, self.until) {
            if until < *from {
                return Err(Failure::usage(format!(
                    "--until ({}) is before --from ({})",
                    format_time(until).unwrap_or_default(),
                    format_time(*from).unwrap_or_default()
                )));
            }
        }
        Ok(())
    }
}

/// Why a `read` ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every shard was read to its end (without `--follow`).
    #[default]
    EndOfData,
    /// `--limit` records were printed.
    Limit,
    /// Every shard passed `--until`.
    Until,
    /// No record came for `--idle-timeout`.
    Idle,
    /// Whoever read stdout closed it (`| head`).
    StdoutClosed,
}

/// What a `read` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadSummary {
    /// Records printed (user records, once aggregates are unpacked).
    pub records: u64,
    /// Shards read.
    pub shards: u64,
    /// Why it ended.
    pub ending: Ending,
}

/// Where one shard's reading stands.
enum Progress {
    /// Waiting for its parents to be read.
    Waiting,
    /// Being read.
    Reading {
        /// The iterator for the next call; None when one must be asked for.
        iterator: Option<String>,
        /// Not before this time.
        next_at: Instant,
        /// Set while calls fail and are retried.
        backoff: Option<Backoff>,
    },
    /// Read to its end (or its tip, without `--follow`), or past `--until`.
    Done,
    /// Not chosen by `--shard` or `--key`.
    Skipped,
}

impl Progress {
    /// Whether its children may start: it is done with, or never read.
    fn finished(&self) -> bool {
        matches!(self, Progress::Done | Progress::Skipped)
    }
}

struct ShardRead {
    shard: Shard,
    progress: Progress,
    /// Where reading starts when no record was read yet.
    start: StartPosition,
    /// The last record's sequence number, to resume after an expired iterator.
    last_sequence: Option<String>,
    /// MillisBehindLatest of its last page.
    behind: Option<u64>,
    /// When its last GetRecords calls ended.
    calls: CallWindow,
}

/// When a shard's last `CALLS_PER_SECOND` GetRecords calls ended.
#[derive(Default)]
struct CallWindow(VecDeque<Instant>);

impl CallWindow {
    /// Notes a call that ended at `at`.
    fn note(&mut self, at: Instant) {
        if self.0.len() == CALLS_PER_SECOND {
            self.0.pop_front();
        }
        self.0.push_back(at);
    }

    /// The earliest time from `now` at which one more call keeps to
    /// `CALLS_PER_SECOND` in any second.
    fn next_free(&self, now: Instant) -> Instant {
        match self.0.front() {
            Some(&oldest) if self.0.len() == CALLS_PER_SECOND => {
                now.max(oldest + Duration::from_secs(1))
            }
            _ => now,
        }
    }
}

/// The running state of one `read`.
struct Reader<'a, S: Sink> {
    kinesis: &'a Kinesis,
    options: &'a ReadOptions,
    /// How long failing calls to one shard are retried.
    retry_timeout: Duration,
    aggregates: Aggregates,
    sink: S,
    /// In ListShards order.
    shards: Vec<ShardRead>,
    index: HashMap<String, usize>,
    summary: ReadSummary,
    warned_bad_aggregate: bool,
    listed_at: Instant,
    /// When the last record came (or the read started).
    last_record_at: Instant,
    /// Whether a shard stopped at a record after `--until`.
    passed_until: bool,
    status: StatusLine,
}

/// Runs `read`, writing records to `out`; shows a status line and a summary
/// on stderr when `options.progress`.
pub fn run(
    config: &Settings,
    options: &ReadOptions,
    out: impl Write,
) -> Result<ReadSummary, Failure> {
    options.validate()?;
    let kinesis = crate::pipeline::open_session(&config.access, Some(&options.stream))?.kinesis;
    let printer = Printer {
        out,
        format: options.format,
        line: Vec::new(),
    };
    read_into(
        &kinesis,
        options,
        config.sending.retry_timeout,
        Aggregates::Unpack,
        printer,
    )
    .map(|(summary, _)| summary)
}

/// Every record of `stream`, read to its end as `read` reads it: parents
/// before their children, oldest first per shard (shards of one generation
/// interleaved as their pages came). Failing calls are retried for `retry_timeout`.
pub fn records(
    kinesis: &Kinesis,
    stream: &StreamRef,
    aggregates: Aggregates,
    retry_timeout: Duration,
) -> Result<Vec<Record>, Failure> {
    let options = ReadOptions {
        stream: stream.clone(),
        from: StartPosition::TrimHorizon,
        until: None,
        limit: None,
        follow: false,
        format: OutputFormat::Text,
        poll_interval: DEFAULT_POLL_INTERVAL,
        idle_timeout: None,
        shards: ShardFilter::default(),
        progress: false,
    };
    read_into(kinesis, &options, retry_timeout, aggregates, Vec::new()).map(|(_, list)| list)
}

/// Lists the stream's shards and reads them into `sink`.
fn read_into<S: Sink>(
    kinesis: &Kinesis,
    options: &ReadOptions,
    retry_timeout: Duration,
    aggregates: Aggregates,
    sink: S,
) -> Result<(ReadSummary, S), Failure> {
    let stream = &options.stream;
    let shards = crate::kinesis::retry::retrying(retry_timeout, || kinesis.list_shards(stream))
        .map_err(|e| read_failure(&e, stream))?;
    options
        .shards
        .check_listed(&shards, stream)
        .map_err(Failure::usage)?;
    let mut reader = Reader {
        kinesis,
        options,
        retry_timeout,
        aggregates,
        sink,
        shards: Vec::new(),
        index: HashMap::new(),
        summary: ReadSummary::default(),
        warned_bad_aggregate: false,
        listed_at: Instant::now(),
        last_record_at: Instant::now(),
        passed_until: false,
        status: StatusLine::new(options.progress),
    };
    reader.add_shards(shards, true);
    let result = reader.read_all();
    let summary = reader.status.enabled().then(|| reader.summary_text());
    let result = result.map(|()| (reader.summary, reader.sink));
    reader.status.end(result, summary)
}

fn read_failure(e: &KinesisError, stream: &StreamRef) -> Failure {
    stream_call_failed("read", stream, e)
}

impl<S: Sink> Reader<'_, S> {
    /// Adds shards not seen before; `initial` for the first listing.
    fn add_shards(&mut self, listed: Vec<Shard>, initial: bool) {
        for shard in listed {
            if let Some(&j) = self.index.get(&shard.shard_id) {
                // Keeps what is known of it current: it may have been closed since.
                self.shards[j].shard = shard;
                continue;
            }
            let start = match &self.options.from {
                // Everything in a shard that appeared later is newer than the
                // start; a sequence number belongs to a shard listed at first.
                StartPosition::Latest
                | StartPosition::AtSequenceNumber(_)
                | StartPosition::AfterSequenceNumber(_)
                    if !initial =>
                {
                    StartPosition::TrimHorizon
                }
                other => other.clone(),
            };
            let progress = if !self.options.shards.selects(&shard) {
                Progress::Skipped
            } else if initial && start == StartPosition::Latest && shard.is_closed() {
                // From `latest`, a shard closed before the start has nothing to give.
                Progress::Done
            } else {
                Progress::Waiting
            };
            self.index.insert(shard.shard_id.clone(), self.shards.len());
            self.shards.push(ShardRead {
                shard,
                progress,
                start,
                last_sequence: None,
                behind: None,
                calls: CallWindow::default(),
            });
        }
        self.start_ready();
    }

    /// Starts reading every waiting shard whose parents are done (or gone).
    fn start_ready(&mut self) {
        let now = Instant::now();
        for i in 0..self.shards.len() {
            if !matches!(self.shards[i].progress, Progress::Waiting) {
                continue;
            }
            let parents_done = self.shards[i].shard.parents().all(|p| {
                self.index
                    .get(p)
                    .is_none_or(|&j| self.shards[j].progress.finished())
            });
            if parents_done {
                self.shards[i].progress = Progress::Reading {
                    iterator: None,
                    next_at: now,
                    backoff: None,
                };
                self.summary.shards += 1;
            }
        }
    }

    /// Lists shards again to find new ones; a passing error only delays that.
    fn relist(&mut self) -> Result<(), Failure> {
        let stream = &self.options.stream;
        self.listed_at = Instant::now();
        match self.kinesis.list_shards_by(stream, self.idle_deadline()) {
            Ok(listed) => self.add_shards(listed, false),
            Err(e) if e.is_retryable() => {}
            Err(e) => return Err(read_failure(&e, stream)),
        }
        Ok(())
    }

    /// When `--idle-timeout` ends `read` unless a record comes first; the
    /// calls made meanwhile end by then too.
    fn idle_deadline(&self) -> Option<Instant> {
        self.options.idle_timeout.map(|d| self.last_record_at + d)
    }

    fn limit_reached(&self) -> bool {
        self.options
            .limit
            .is_some_and(|limit| self.summary.records >= limit)
    }

    /// Whether printing stops now (`--limit`, or stdout closed).
    fn stop_printing(&self) -> bool {
        self.limit_reached() || self.summary.ending == Ending::StdoutClosed
    }

    /// Whether `--follow` can end: every shard chosen is done and no new one
    /// can bring anything (`--until` passed, or only named shards are read).
    fn follow_done(&self) -> bool {
        self.options.until.is_some() || !self.options.shards.takes_new_shards()
    }

    /// Polls shards until each is done (or forever with `--follow`), `--limit`,
    /// or `--idle-timeout`.
    fn read_all(&mut self) -> Result<(), Failure> {
        loop {
            if self.summary.ending == Ending::StdoutClosed {
                return Ok(());
            }
            if self.limit_reached() {
                self.summary.ending = Ending::Limit;
                return Ok(());
            }
            let idle_deadline = self.idle_deadline();
            if idle_deadline.is_some_and(|t| Instant::now() >= t) {
                self.summary.ending = Ending::Idle;
                return Ok(());
            }
            if self.options.follow && self.listed_at.elapsed() >= RELIST_EVERY {
                self.relist()?;
            }
            self.show_status();
            let next = self
                .shards
                .iter()
                .enumerate()
                .filter_map(|(i, s)| match &s.progress {
                    Progress::Reading { next_at, .. } => Some((*next_at, i)),
                    _ => None,
                })
                .min();
            let Some((next_at, i)) = next else {
                if !self.options.follow || self.follow_done() {
                    if self.passed_until {
                        self.summary.ending = Ending::Until;
                    }
                    return Ok(());
                }
                sleep_until(earliest(Instant::now() + IDLE_POLL, idle_deadline));
                self.relist()?;
                continue;
            };
            let wake = earliest(next_at, idle_deadline);
            if wake > Instant::now() {
                sleep_until(wake);
                // The idle deadline may have come first; look again.
                continue;
            }
            self.poll(i)?;
        }
    }

    /// One call for shard `i`: an iterator or a page of records.
    fn poll(&mut self, i: usize) -> Result<(), Failure> {
        let Some(iterator) = self.iterator(i)? else {
            return Ok(());
        };
        let remaining = self
            .options
            .limit
            .map_or(MAX_PAGE, |l| (l - self.summary.records).clamp(1, MAX_PAGE));
        let answer = self.kinesis.get_records_by(
            &self.options.stream,
            &iterator,
            remaining as u32,
            self.idle_deadline(),
        );
        self.shards[i].calls.note(Instant::now());
        let page = match answer {
            Ok(page) => page,
            Err(e) if e.code() == Some("ExpiredIteratorException") => {
                // Resume after the last record printed, with a fresh iterator.
                self.set_iterator(i, None);
                return Ok(());
            }
            Err(e) => {
                self.set_iterator(i, Some(iterator));
                return self.retry_later(i, &e);
            }
        };
        self.shards[i].behind = page.millis_behind_latest;
        if !page.records.is_empty() {
            self.last_record_at = Instant::now();
        }
        let past_until = self.print_page(i, &page.records)?;
        self.after_page(i, page, remaining, past_until)
    }

    /// Shard `i`'s iterator: the one the last page gave, or a new one from
    /// where reading stands; None when the shard is not being read or the
    /// call failed and was put off.
    fn iterator(&mut self, i: usize) -> Result<Option<String>, Failure> {
        let stream = &self.options.stream;
        let s = &self.shards[i];
        let Progress::Reading { iterator, .. } = &s.progress else {
            return Ok(None);
        };
        if let Some(it) = iterator {
            return Ok(Some(it.clone()));
        }
        let position = match &s.last_sequence {
            Some(n) => StartPosition::AfterSequenceNumber(n.clone()),
            None => s.start.clone(),
        };
        let asked_at = now_seconds();
        let deadline = self.idle_deadline();
        match self
            .kinesis
            .shard_iterator_by(stream, &s.shard.shard_id, &position, deadline)
        {
            Ok(it) => {
                if position == StartPosition::Latest {
                    // Should this iterator expire before a record comes, a new
                    // LATEST would skip what arrived meanwhile: start again
                    // from when this one was asked for instead.
                    self.shards[i].start = StartPosition::AtTimestamp(asked_at);
                }
                Ok(Some(it))
            }
            // Only the start the user gave is theirs to fix (not the
            // AT_TIMESTAMP an expired LATEST iterator became).
            Err(e)
                if s.last_sequence.is_none()
                    && position == self.options.from
                    && refuses_start(&e, &position) =>
            {
                // A sequence number from another shard or stream: the flag is wrong.
                Err(Failure::usage(format!(
                    "--from: Kinesis refused it for shard {} of stream {stream}: {e}",
                    s.shard.shard_id
                )))
            }
            Err(e) => self.retry_later(i, &e).map(|()| None),
        }
    }

    /// What shard `i` does after a page of up to `remaining` records: stop,
    /// let its children start, or read on now or after the poll interval.
    fn after_page(
        &mut self,
        i: usize,
        page: RecordsPage,
        remaining: u64,
        past_until: bool,
    ) -> Result<(), Failure> {
        let empty = page.records.is_empty();
        let at_tip = empty && page.millis_behind_latest.unwrap_or(0) == 0;
        // Caught up: nothing more to read now, so no hurry for the next call.
        // A full page says there is more whatever MillisBehindLatest says
        // (emulators give 0 throughout).
        let full = page.records.len() as u64 >= remaining;
        let caught_up = empty || (page.millis_behind_latest == Some(0) && !full);
        let follow = self.options.follow;
        match page.next_iterator {
            _ if past_until => {
                self.passed_until = true;
                self.shards[i].progress = Progress::Done;
                self.start_ready();
            }
            None => {
                // A closed shard read to its end: its children may start.
                self.shards[i].progress = Progress::Done;
                if follow {
                    self.relist()?;
                } else {
                    self.start_ready();
                }
            }
            Some(_)
                if at_tip
                    && (!follow || self.shards[i].shard.is_closed() || self.until_is_past()) =>
            {
                self.passed_until |= self.until_is_past();
                self.shards[i].progress = Progress::Done;
                self.start_ready();
            }
            Some(next) => {
                let now = Instant::now();
                let at = if follow && caught_up {
                    now + self.options.poll_interval
                } else {
                    self.shards[i].calls.next_free(now)
                };
                self.set_reading(i, Some(next), at);
            }
        }
        Ok(())
    }

    /// Whether a record arrived after `--until`.
    fn is_after_until(&self, record: &ReadRecord) -> bool {
        match (self.options.until, record.arrival) {
            (Some(until), Some(arrival)) => arrival > until,
            _ => false,
        }
    }

    /// Whether `--until` is far enough behind the clock that a caught-up
    /// shard can get nothing older.
    fn until_is_past(&self) -> bool {
        self.options
            .until
            .is_some_and(|until| now_seconds() >= until + UNTIL_GRACE.as_secs_f64())
    }

    /// Keeps the iterator for the next call, leaving the schedule and backoff as they are.
    fn set_iterator(&mut self, i: usize, next: Option<String>) {
        if let Progress::Reading { iterator, .. } = &mut self.shards[i].progress {
            *iterator = next;
        }
    }

    /// Schedules the next call after a successful one.
    fn set_reading(&mut self, i: usize, iterator: Option<String>, at: Instant) {
        self.shards[i].progress = Progress::Reading {
            iterator,
            next_at: at,
            backoff: None,
        };
    }

    /// Schedules shard `i` again after a failed call, or fails when the
    /// error cannot be cured or the retry budget is spent.
    fn retry_later(&mut self, i: usize, e: &KinesisError) -> Result<(), Failure> {
        let stream = &self.options.stream;
        if !e.is_retryable() {
            return Err(read_failure(e, stream));
        }
        let retry_timeout = self.retry_timeout;
        let Progress::Reading {
            next_at, backoff, ..
        } = &mut self.shards[i].progress
        else {
            return Ok(());
        };
        let backoff = backoff.get_or_insert_with(|| Backoff::until(Instant::now() + retry_timeout));
        match backoff.next_delay() {
            Some(delay) => {
                *next_at = Instant::now() + delay.max(IDLE_POLL);
                Ok(())
            }
            None => Err(Failure::from_kinesis(
                &format!(
                    "gave up reading shard {} of Kinesis stream {stream} after retrying for {} s",
                    self.shards[i].shard.shard_id,
                    retry_timeout.as_secs()
                ),
                e,
            )),
        }
    }
}

/// Whether Kinesis refused the start position the user gave: AWS answers a
/// sequence number of another shard with InvalidArgumentException, emulators
/// with ResourceNotFoundException.
fn refuses_start(e: &KinesisError, position: &StartPosition) -> bool {
    match position {
        StartPosition::AtSequenceNumber(_) | StartPosition::AfterSequenceNumber(_) => {
            e.code() == Some("InvalidArgumentException") || e.is_not_found()
        }
        StartPosition::AtTimestamp(_) => e.code() == Some("InvalidArgumentException"),
        StartPosition::TrimHorizon | StartPosition::Latest => false,
    }
}

/// The earlier of `t` and an optional deadline.
fn earliest(t: Instant, deadline: Option<Instant>) -> Instant {
    deadline.map_or(t, |d| d.min(t))
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(from: StartPosition, until: Option<f64>, shards: ShardFilter) -> ReadOptions {
        ReadOptions {
            stream: StreamRef::from("s"),
            from,
            until,
            limit: None,
            follow: false,
            format: OutputFormat::Text,
            poll_interval: DEFAULT_POLL_INTERVAL,
            idle_timeout: None,
            shards,
            progress: false,
        }
    }

    #[test]
    fn sequence_starts_need_one_shard() {
        let seq = StartPosition::AfterSequenceNumber("1".into());
        let one = ShardFilter::new(vec!["shardId-000000000001".into()], vec![]);
        assert!(options(seq.clone(), None, one).validate().is_ok());
        for filter in [
            ShardFilter::default(),
            ShardFilter::new(vec!["a".into(), "b".into()], vec![]),
            ShardFilter::new(vec![], vec!["k".into()]),
        ] {
            let e = options(seq.clone(), None, filter).validate().unwrap_err();
            assert!(e.message.contains("--shard"), "{}", e.message);
            assert_eq!(e.exit_code, crate::failure::EXIT_CONFIG);
        }
        let e = options(
            StartPosition::AtTimestamp(100.0),
            Some(50.0),
            ShardFilter::default(),
        )
        .validate()
        .unwrap_err();
        assert!(e.message.contains("--until"), "{}", e.message);
        assert!(options(
            StartPosition::AtTimestamp(100.0),
            Some(150.0),
            ShardFilter::default()
        )
        .validate()
        .is_ok());
    }

    #[test]
    fn a_shard_gets_five_calls_in_any_second() {
        let start = Instant::now();
        let mut calls = CallWindow::default();
        for k in 0..CALLS_PER_SECOND as u64 {
            assert_eq!(calls.next_free(start), start, "call {k} goes at once");
            calls.note(start + Duration::from_millis(10 * k));
        }
        // The sixth waits until the first is a second old.
        assert_eq!(calls.next_free(start), start + Duration::from_secs(1));
        calls.note(start + Duration::from_secs(1));
        assert_eq!(
            calls.next_free(start + Duration::from_secs(1)),
            start + Duration::from_millis(1010)
        );
        let later = start + Duration::from_secs(5);
        assert_eq!(calls.next_free(later), later);
    }
}
