//! How many PutRecords calls may be in flight at once, and when the next may
//! start. `maxInFlight: "auto"` lets the number find itself, in the spirit of
//! TCP congestion control and Vector's adaptive request concurrency: it grows
//! by one a round trip while calls are waiting for a slot and the answers come
//! back as fast as before, and shrinks when round trips grow or Kinesis pushes
//! back (throttled or failed calls, or most entries of a call refused for
//! throughput). A number keeps it fixed. Either way, a
//! call that fails as a whole, or most of whose entries are refused for
//! throughput, holds back the next call to the endpoint for a backoff, so
//! that a struggling endpoint is not hammered by every slot.

use crate::aws::network::MAX_CONNECTIONS;
use crate::aws::retry::backoff_delay;
use std::time::{Duration, Instant};

/// The most calls `auto` lets be in flight (also the largest number taken):
/// as many as an agent keeps connections open for.
pub const CEILING: usize = MAX_CONNECTIONS;

/// What `maxInFlight` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlight {
    /// Found while running, between 1 and `CEILING`.
    Auto,
    /// Always this many.
    Fixed(usize),
}

impl InFlight {
    /// Reads `auto` or a whole number from 1 to `CEILING`; the problem otherwise.
    pub fn parse(text: &str) -> Result<InFlight, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("auto") {
            return Ok(InFlight::Auto);
        }
        match text.parse::<usize>() {
            Ok(n) if (1..=CEILING).contains(&n) => Ok(InFlight::Fixed(n)),
            _ => Err(format!(
                "must be \"auto\" or a whole number between 1 and {CEILING}, got `{text}`"
            )),
        }
    }

    /// The most calls it ever allows.
    pub fn most(self) -> usize {
        match self {
            InFlight::Auto => CEILING,
            InFlight::Fixed(n) => n,
        }
    }
}

impl std::fmt::Display for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InFlight::Auto => f.write_str("auto"),
            InFlight::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// A shrink keeps this share of the limit.
const DECREASE: f64 = 0.75;
/// How fast the round-trip baseline follows each window's mean.
const BASELINE_WEIGHT: f64 = 0.3;
/// A window's mean round trip counts as grown past the baseline plus this
/// many of its mean deviations...
const DEVIATIONS: f64 = 3.0;
/// ...and past this share of the baseline, so that the noise of sub-millisecond
/// loopback round trips is not taken for a queue building up.
const SLACK: f64 = 0.5;
/// The shortest window: on loopback a round trip is far shorter, and the
/// limit would swing with every answer.
const LEAST_WINDOW: Duration = Duration::from_millis(5);

/// How one call ended, as the limit sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Kinesis answered without pushing back (some entries may still have
    /// been refused: their shards' pacing deals with that).
    Answered,
    /// Kinesis pushed back on the call as a whole (throttling, 5xx, a
    /// timeout, a lost connection), or refused most of its entries for throughput.
    PushedBack,
}

/// The round trips of one window, about one round trip long.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    rtt_sum: f64,
    answers: u32,
    /// A call waited for a slot during the window: more were wanted than allowed.
    wanted_more: bool,
    pushed_back: bool,
}

impl Window {
    fn new(now: Instant) -> Window {
        Window {
            started: now,
            rtt_sum: 0.0,
            answers: 0,
            wanted_more: false,
            pushed_back: false,
        }
    }
}

/// The number of calls allowed in flight now.
#[derive(Debug, Clone)]
pub struct Limit {
    mode: InFlight,
    limit: usize,
    /// Doubling per window rather than adding one, until the first shrink.
    slow_start: bool,
    window: Window,
    /// The usual round trip in seconds, and its mean deviation; None before the first window.
    baseline: Option<(f64, f64)>,
}

impl Limit {
    /// The limit `mode` asks for; `auto` starts at one call.
    pub fn new(mode: InFlight, now: Instant) -> Limit {
        Limit {
            mode,
            limit: match mode {
                InFlight::Auto => 1,
                InFlight::Fixed(n) => n.max(1),
            },
            slow_start: true,
            window: Window::new(now),
            baseline: None,
        }
    }

    /// Calls allowed in flight now.
    pub fn allowed(&self) -> usize {
        self.limit
    }

    /// A call is waiting for a slot: every allowed call is out.
    pub fn wanted_more(&mut self) {
        self.window.wanted_more = true;
    }

    /// A call came back after `rtt`; at the end of a window the limit moves.
    pub fn answered(&mut self, now: Instant, rtt: Duration, answer: Answer) {
        if self.mode != InFlight::Auto {
            return;
        }
        let w = &mut self.window;
        w.rtt_sum += rtt.as_secs_f64();
        w.answers += 1;
        w.pushed_back |= answer == Answer::PushedBack;
        let mean = w.rtt_sum / f64::from(w.answers);
        let length = self
            .baseline
            .map_or(mean, |(b, _)| b)
            .max(LEAST_WINDOW.as_secs_f64());
        if now.saturating_duration_since(w.started).as_secs_f64() < length {
            return;
        }
        let window = std::mem::replace(&mut self.window, Window::new(now));
        self.close_window(&window, mean);
    }

    /// Moves the limit by what a window saw, then lets the baseline follow.
    fn close_window(&mut self, w: &Window, mean: f64) {
        let grown = self.baseline.is_some_and(|(base, deviation)| {
            mean > base + (deviation * DEVIATIONS).max(base * SLACK)
        });
        if w.pushed_back || grown {
            self.slow_start = false;
            self.limit = ((self.limit as f64 * DECREASE) as usize).max(1);
        } else if w.wanted_more {
            let grown = if self.slow_start {
                self.limit * 2
            } else {
                self.limit + 1
            };
            self.limit = grown.min(CEILING);
        }
        // Pushed-back calls' round trips (a timeout, an instant refusal) say
        // nothing of the usual one.
        if !w.pushed_back {
            self.baseline = Some(match self.baseline {
                None => (mean, mean / 2.0),
                Some((base, deviation)) => (
                    base + (mean - base) * BASELINE_WEIGHT,
                    deviation + ((mean - base).abs() - deviation) * BASELINE_WEIGHT,
                ),
            });
        }
    }
}

/// When the next call to the endpoint may start: at once, unless calls
/// failed as a whole, which holds the next one back for a backoff that grows
/// with each such failure in a row.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    failures: u32,
    opens_at: Option<Instant>,
}

impl Gate {
    /// When the next call may start, if not now.
    pub fn opens_at(&self, now: Instant) -> Option<Instant> {
        self.opens_at.filter(|&at| at > now)
    }

    /// A call failed as a whole: the next waits a backoff.
    pub fn failed(&mut self, now: Instant) {
        let delay = backoff_delay(self.failures);
        self.failures = self.failures.saturating_add(1);
        self.opens_at = Some(now + delay);
    }

    /// A call was answered: the endpoint is fine again.
    pub fn answered(&mut self) {
        self.failures = 0;
        self.opens_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_auto_and_numbers() {
        assert_eq!(InFlight::parse("auto"), Ok(InFlight::Auto));
        assert_eq!(InFlight::parse(" AUTO "), Ok(InFlight::Auto));
        assert_eq!(InFlight::parse("8"), Ok(InFlight::Fixed(8)));
        assert!(InFlight::parse("0").is_err());
        assert!(InFlight::parse("65")
            .unwrap_err()
            .contains("between 1 and 64"));
        assert!(InFlight::parse("many").is_err());
        assert_eq!(InFlight::Fixed(3).most(), 3);
        assert_eq!(InFlight::Auto.to_string(), "auto");
    }

    /// Answers `calls` calls of `rtt` each, one window after another, each
    /// window wanting more calls when `wanted` says so.
    fn run(limit: &mut Limit, t: &mut Instant, windows: usize, rtt: Duration, wanted: bool) {
        for _ in 0..windows {
            if wanted {
                limit.wanted_more();
            }
            *t += rtt;
            limit.answered(*t, rtt, Answer::Answered);
        }
    }

    #[test]
    fn grows_while_calls_wait_and_round_trips_hold() {
        let mut t = Instant::now();
        let mut limit = Limit::new(InFlight::Auto, t);
        assert_eq!(limit.allowed(), 1);
        run(&mut limit, &mut t, 4, ms(20), true);
        assert_eq!(limit.allowed(), 16, "doubling per round trip at first");
        run(&mut limit, &mut t, 10, ms(20), true);
        assert_eq!(limit.allowed(), CEILING, "never past the ceiling");
        let mut idle = Limit::new(InFlight::Auto, t);
        run(&mut idle, &mut t, 10, ms(20), false);
        assert_eq!(
            idle.allowed(),
            1,
            "no growth while no call waits for a slot"
        );
    }

    #[test]
    fn shrinks_on_pushback_and_on_grown_round_trips_then_adds_one() {
        let mut t = Instant::now();
        let mut limit = Limit::new(InFlight::Auto, t);
        run(&mut limit, &mut t, 4, ms(20), true);
        assert_eq!(limit.allowed(), 16);
        t += ms(20);
        limit.answered(t, ms(20), Answer::PushedBack);
        assert_eq!(limit.allowed(), 12);
        run(&mut limit, &mut t, 2, ms(20), true);
        assert_eq!(limit.allowed(), 14, "one more a window after a shrink");
        // Round trips five times as long: a queue is building up.
        t += ms(100);
        limit.answered(t, ms(100), Answer::Answered);
        assert_eq!(limit.allowed(), 10);
        let mut one = Limit::new(InFlight::Auto, t);
        for _ in 0..5 {
            t += ms(20);
            one.answered(t, ms(20), Answer::PushedBack);
        }
        assert_eq!(one.allowed(), 1, "never below one");
    }

    #[test]
    fn a_fixed_number_stays() {
        let mut t = Instant::now();
        let mut limit = Limit::new(InFlight::Fixed(8), t);
        run(&mut limit, &mut t, 5, ms(20), true);
        t += ms(20);
        limit.answered(t, ms(20), Answer::PushedBack);
        assert_eq!(limit.allowed(), 8);
    }

    #[test]
    fn the_gate_holds_calls_back_after_failures_only() {
        let now = Instant::now();
        let mut gate = Gate::default();
        assert_eq!(gate.opens_at(now), None);
        gate.failed(now);
        gate.failed(now);
        let at = gate.opens_at(now - ms(1)).unwrap();
        assert!(at <= now + ms(200), "{:?}", at - now);
        gate.answered();
        assert_eq!(gate.opens_at(now), None);
    }
}
