//! The progress lines `write` logs at a steady interval during a sync (the
//! config's `progressIntervalSeconds`): what happened since the last line, in
//! a sentence for people (INFO) and as JSON for programs (DEBUG, after
//! `PROGRESS_PREFIX`), as the final figures are.

use serde_json::json;
use std::time::{Duration, Instant};

/// How the machine-readable progress LOG starts; its JSON follows.
pub const PROGRESS_PREFIX: &str = "progress: ";

/// Running totals of a sync at one moment; a progress line tells the
/// difference between two.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Records read.
    pub records: u64,
    /// Bytes of record data read.
    pub data_bytes: u64,
    /// Records Kinesis accepted.
    pub accepted: u64,
    /// Bytes (data plus partition keys) of the Kinesis records it accepted.
    pub accepted_bytes: u64,
    /// Entries refused for throughput along the way.
    pub throttled: u64,
    /// Entries sent more than once.
    pub retried: u64,
    /// States echoed.
    pub states_echoed: u64,
}

impl Tally {
    /// What happened between `earlier` and this.
    fn since(&self, earlier: &Tally) -> Tally {
        Tally {
            records: self.records - earlier.records,
            data_bytes: self.data_bytes - earlier.data_bytes,
            accepted: self.accepted - earlier.accepted,
            accepted_bytes: self.accepted_bytes - earlier.accepted_bytes,
            throttled: self.throttled - earlier.throttled,
            retried: self.retried - earlier.retried,
            states_echoed: self.states_echoed - earlier.states_echoed,
        }
    }
}

/// Where a sync's checkpoints stand at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Waiting {
    /// States read and not echoed yet.
    pub states: u64,
    /// How long the oldest of them has waited.
    pub oldest: Option<Duration>,
}

/// When the next progress line is due, and the totals the last one ended at.
#[derive(Debug, Clone)]
pub struct ProgressLog {
    every: Option<Duration>,
    /// The next line's time on the interval's grid from the start: a line
    /// that comes late (the program waited for a call) does not move the
    /// ones after it.
    next_at: Instant,
    last_at: Instant,
    last: Tally,
}

/// One progress line: the sentence and the JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// For people (an INFO LOG).
    pub text: String,
    /// For programs (a DEBUG LOG, after `PROGRESS_PREFIX`).
    pub figures: serde_json::Value,
}

impl ProgressLog {
    /// Lines every `every` from `now` on; none when `every` is zero.
    pub fn new(every: Duration, now: Instant) -> ProgressLog {
        ProgressLog {
            every: (!every.is_zero()).then_some(every),
            next_at: now + every,
            last_at: now,
            last: Tally::default(),
        }
    }

    /// The line due at `now`, if its time on the grid has come: what
    /// `tally` adds to the totals the last line ended at, over the time since.
    pub fn due(&mut self, now: Instant, tally: Tally, waiting: Waiting) -> Option<Line> {
        let every = self.every?;
        if now < self.next_at {
            return None;
        }
        while self.next_at <= now {
            self.next_at += every;
        }
        let elapsed = now.saturating_duration_since(self.last_at);
        let d = tally.since(&self.last);
        self.last = tally;
        self.last_at = now;
        Some(line(elapsed, &d, waiting))
    }
}

/// The line for `d`, which happened over `elapsed`.
fn line(elapsed: Duration, d: &Tally, waiting: Waiting) -> Line {
    let seconds = elapsed.as_secs_f64();
    let per_second = d.accepted as f64 / seconds;
    let mb = |bytes: u64| bytes as f64 / 1e6;
    let held = match (waiting.states, waiting.oldest) {
        (0, _) | (_, None) => "none held back".to_string(),
        (n, Some(oldest)) => format!(
            "{n} held back, the oldest for {:.1} s",
            oldest.as_secs_f64()
        ),
    };
    let text = format!(
        "progress over the last {seconds:.1} s: read {} records ({:.2} MB of data); Kinesis accepted {} \
         ({:.2} MB), {per_second:.0} records/s; {} entries throttled, {} retried; echoed {} states, {held}",
        d.records,
        mb(d.data_bytes),
        d.accepted,
        mb(d.accepted_bytes),
        d.throttled,
        d.retried,
        d.states_echoed,
    );
    let figures = json!({
        "seconds": seconds,
        "records": d.records,
        "dataBytes": d.data_bytes,
        "accepted": d.accepted,
        "acceptedBytes": d.accepted_bytes,
        "recordsPerSecond": per_second,
        "throttledEntries": d.throttled,
        "retriedEntries": d.retried,
        "statesEchoed": d.states_echoed,
        "statesHeldBack": waiting.states,
        "oldestStateWaitingSeconds": waiting.oldest.map(|d| d.as_secs_f64()),
    });
    Line { text, figures }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_per_interval_with_what_happened_since_the_last() {
        let start = Instant::now();
        let mut log = ProgressLog::new(Duration::from_secs(60), start);
        let first = Tally {
            records: 1200,
            data_bytes: 2_500_000,
            accepted: 1000,
            accepted_bytes: 3_000_000,
            throttled: 7,
            retried: 9,
            states_echoed: 4,
        };
        assert_eq!(
            log.due(start + Duration::from_secs(59), first, Waiting::default()),
            None
        );
        let waiting = Waiting {
            states: 2,
            oldest: Some(Duration::from_millis(1500)),
        };
        let at = start + Duration::from_secs(60);
        let line = log.due(at, first, waiting).unwrap();
        assert_eq!(
            line.text,
            "progress over the last 60.0 s: read 1200 records (2.50 MB of data); Kinesis accepted 1000 (3.00 MB), \
             17 records/s; 7 entries throttled, 9 retried; echoed 4 states, 2 held back, the oldest for 1.5 s"
        );
        assert_eq!(line.figures["statesHeldBack"], 2);
        assert_eq!(line.figures["oldestStateWaitingSeconds"], 1.5);
        let later = Tally {
            records: 1300,
            accepted: 1300,
            ..first
        };
        let line = log
            .due(at + Duration::from_secs(120), later, Waiting::default())
            .unwrap();
        assert_eq!(line.figures["records"], 100);
        assert_eq!(line.figures["accepted"], 300);
        assert_eq!(line.figures["throttledEntries"], 0);
        assert_eq!(line.figures["seconds"], 120.0);
        assert!(line.figures["oldestStateWaitingSeconds"].is_null());
        assert!(line.text.ends_with("echoed 0 states, none held back"));
    }

    #[test]
    fn a_late_line_does_not_move_the_next() {
        let start = Instant::now();
        let mut log = ProgressLog::new(Duration::from_secs(60), start);
        let at = |s: u64| start + Duration::from_secs(s);
        let waiting = Waiting::default();
        // Due at 60 s, told at 70 s (the program was waiting for a call).
        let late = log.due(at(70), Tally::default(), waiting).unwrap();
        assert_eq!(late.figures["seconds"], 70.0);
        assert_eq!(log.due(at(119), Tally::default(), waiting), None);
        let next = log.due(at(120), Tally::default(), waiting).unwrap();
        assert_eq!(next.figures["seconds"], 50.0);
        // Told more than an interval late: the grid's next point after it.
        assert!(log.due(at(250), Tally::default(), waiting).is_some());
        assert_eq!(log.due(at(299), Tally::default(), waiting), None);
        assert!(log.due(at(300), Tally::default(), waiting).is_some());
    }

    #[test]
    fn none_when_turned_off() {
        let start = Instant::now();
        let mut log = ProgressLog::new(Duration::ZERO, start);
        let later = start + Duration::from_secs(3600);
        assert_eq!(log.due(later, Tally::default(), Waiting::default()), None);
    }
}
