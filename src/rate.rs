//! Pacing per shard: how many records and bytes may go to one shard now.
//! Token buckets refill at the shard's write limits (times the configured
//! share); throttling the limits did not predict (another producer, a wrong
//! map) lowers the rate, and time without throttling raises it again
//! (additive increase, multiplicative decrease).

use std::time::{Duration, Instant};

/// Records a second one shard takes.
pub const SHARD_RECORDS_PER_S: f64 = 1000.0;
/// Bytes (data plus partition key) a second one shard takes.
pub const SHARD_BYTES_PER_S: f64 = 1024.0 * 1024.0;

/// A bucket holds this long of its rate: half the second's worth a shard
/// saves up, so that entries counted here but delivered a little later
/// (gathered into a batch, waiting for a call in flight) never find the
/// shard's own burst spent.
const BURST: Duration = Duration::from_millis(500);
/// A throttle cuts the rate by the share of entries the shard refused, but
/// by at least this much...
const LEAST_CUT: f64 = 0.02;
/// ...and at most this much.
const MOST_CUT: f64 = 0.5;
/// ...at most once in this window, since one call brings many refusals that
/// all tell the same thing.
const CUT_WINDOW: Duration = Duration::from_millis(500);
/// After a throttle, the rate climbs back this share of its ceiling a second.
const INCREASE_PER_S: f64 = 0.05;
/// The rate never falls below this share of its ceiling.
const FLOOR: f64 = 0.02;
/// Without a ceiling (pacing by adaptation alone), a throttle sets the rate
/// to what was sent in about this long before it.
const OBSERVED: Duration = Duration::from_secs(1);

/// Records and bytes a second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Records a second.
    pub records: f64,
    /// Bytes a second.
    pub bytes: f64,
}

impl Rate {
    /// A shard's write limits times `share` (1.0: the limits themselves).
    pub fn shard(share: f64) -> Rate {
        Rate {
            records: SHARD_RECORDS_PER_S * share,
            bytes: SHARD_BYTES_PER_S * share,
        }
    }

    fn scaled(self, by: f64) -> Rate {
        Rate {
            records: self.records * by,
            bytes: self.bytes * by,
        }
    }
}

/// One shard's allowance.
#[derive(Debug, Clone)]
pub struct Allowance {
    /// The rate it climbs back to; None when only adaptation paces (the
    /// shard's limits are not known to hold, as in on-demand streams).
    ceiling: Option<Rate>,
    /// The rate now; None: no limit (adaptation alone, nothing throttled yet).
    rate: Option<Rate>,
    records: f64,
    bytes: f64,
    refilled: Instant,
    last_cut: Option<Instant>,
    /// What was taken since `window_start`, to learn a rate from when there
    /// is no ceiling.
    taken: Rate,
    window_start: Instant,
    /// The rate taken in the last full window.
    last_window: Rate,
}

impl Allowance {
    /// An allowance that keeps to `ceiling` (a shard's limits times the
    /// configured share), or paces by adaptation alone when None.
    pub fn new(ceiling: Option<Rate>, now: Instant) -> Allowance {
        let full = ceiling.map_or(
            Rate {
                records: 0.0,
                bytes: 0.0,
            },
            |c| c.scaled(BURST.as_secs_f64()),
        );
        Allowance {
            ceiling,
            rate: ceiling,
            records: full.records,
            bytes: full.bytes,
            refilled: now,
            last_cut: None,
            taken: Rate {
                records: 0.0,
                bytes: 0.0,
            },
            window_start: now,
            last_window: Rate {
                records: 0.0,
                bytes: 0.0,
            },
        }
    }

    /// The rate now, if limited.
    #[cfg(test)]
    pub fn rate(&self) -> Option<Rate> {
        self.rate
    }

    /// Whether the rate is limited now (else every entry may go).
    pub fn is_limited(&self) -> bool {
        self.rate.is_some()
    }

    /// Notes an entry that went without a limit, to learn the rate from
    /// should the shard throttle; needs no clock.
    pub fn note(&mut self, records: f64, bytes: f64) {
        self.taken.records += records;
        self.taken.bytes += bytes;
    }

    /// Takes one entry of `records` Kinesis records and `bytes` bytes if the
    /// allowance has room for it now. An entry larger than a full bucket
    /// still goes once the bucket is full, leaving it in debt, as a shard
    /// takes a large record out of its burst capacity.
    pub fn try_take(&mut self, now: Instant, records: f64, bytes: f64) -> bool {
        self.refill(now);
        self.roll(now);
        if let Some(rate) = self.rate {
            let burst = BURST.as_secs_f64();
            let fits = self.records >= records.min(rate.records * burst)
                && self.bytes >= bytes.min(rate.bytes * burst);
            if !fits {
                return false;
            }
            self.records -= records;
            self.bytes -= bytes;
        }
        self.note(records, bytes);
        true
    }

    /// When an entry of `records` and `bytes` could be taken, at the rate now.
    pub fn ready_at(&self, now: Instant, records: f64, bytes: f64) -> Instant {
        let Some(rate) = self.rate else {
            return now;
        };
        let burst = BURST.as_secs_f64();
        let wait = |have: f64, need: f64, per_s: f64| {
            let short = need.min(per_s * burst) - have;
            if short <= 0.0 || per_s <= 0.0 {
                0.0
            } else {
                short / per_s
            }
        };
        let secs =
            wait(self.records, records, rate.records).max(wait(self.bytes, bytes, rate.bytes));
        // A millisecond more, so that the wait never ends a hair too early.
        self.refilled + Duration::from_secs_f64(secs) + Duration::from_millis(1)
    }

    /// The shard refused `refused` of `sent` entries for throughput: the
    /// rate goes down by that share (within `LEAST_CUT` and `MOST_CUT`), so
    /// a stray refusal costs little and another producer taking half of the
    /// shard halves the rate at once.
    pub fn throttled(&mut self, now: Instant, refused: usize, sent: usize) {
        if self
            .last_cut
            .is_some_and(|at| now.duration_since(at) < CUT_WINDOW)
        {
            return;
        }
        self.refill(now);
        self.last_cut = Some(now);
        let current = self.rate.unwrap_or_else(|| self.sent_rate(now));
        let floor = self.ceiling.map_or(
            Rate {
                records: 1.0,
                bytes: 1024.0,
            },
            |c| c.scaled(FLOOR),
        );
        let share = refused as f64 / sent.max(1) as f64;
        let keep = 1.0 - share.clamp(LEAST_CUT, MOST_CUT);
        self.rate = Some(Rate {
            records: (current.records * keep).max(floor.records),
            bytes: (current.bytes * keep).max(floor.bytes),
        });
        // What the bucket held was what the shard just refused.
        self.records = self.records.min(0.0);
        self.bytes = self.bytes.min(0.0);
    }

    /// Adds what time earned since the last refill, and lets the rate climb.
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        if elapsed <= 0.0 {
            return;
        }
        self.refilled = now;
        let Some(rate) = self.rate else {
            return;
        };
        let burst = BURST.as_secs_f64();
        self.records = (self.records + rate.records * elapsed).min(rate.records * burst);
        self.bytes = (self.bytes + rate.bytes * elapsed).min(rate.bytes * burst);
        let calm = self
            .last_cut
            .is_none_or(|at| now.duration_since(at) >= CUT_WINDOW);
        if !calm {
            return;
        }
        self.rate = match self.ceiling {
            Some(ceiling) => Some(Rate {
                records: (rate.records + ceiling.records * INCREASE_PER_S * elapsed)
                    .min(ceiling.records),
                bytes: (rate.bytes + ceiling.bytes * INCREASE_PER_S * elapsed).min(ceiling.bytes),
            }),
            // Without a ceiling the rate grows by a share of itself, and the
            // limit is dropped once it is well above what is being sent.
            None => {
                let grown = rate.scaled(1.0 + INCREASE_PER_S * 2.0 * elapsed);
                let sent = self.sent_rate(now);
                (grown.records <= sent.records * 4.0 + 10.0).then_some(grown)
            }
        };
    }

    /// Starts a new window of what was taken once the current one is full.
    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= OBSERVED {
            let secs = elapsed.as_secs_f64();
            self.last_window = Rate {
                records: self.taken.records / secs,
                bytes: self.taken.bytes / secs,
            };
            self.taken = Rate {
                records: 0.0,
                bytes: 0.0,
            };
            self.window_start = now;
        }
    }

    /// About what was sent a second lately: the last full window's rate
    /// weighed with the current window's.
    fn sent_rate(&self, now: Instant) -> Rate {
        let this_window = now
            .saturating_duration_since(self.window_start)
            .as_secs_f64();
        let window = OBSERVED.as_secs_f64();
        let secs = window + this_window;
        Rate {
            records: ((self.last_window.records * window + self.taken.records) / secs).max(1.0),
            bytes: ((self.last_window.bytes * window + self.taken.bytes) / secs).max(1024.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn keeps_to_the_shard_limits() {
        let t0 = Instant::now();
        let mut a = Allowance::new(Some(Rate::shard(1.0)), t0);
        // A full bucket: half a second's worth at once, then no more.
        let taken = (0..1500).filter(|_| a.try_take(t0, 1.0, 100.0)).count();
        assert_eq!(taken, 500);
        // A quarter second later, a quarter second's worth.
        let taken = (0..1000)
            .filter(|_| a.try_take(t0 + ms(250), 1.0, 100.0))
            .count();
        assert_eq!(taken, 250);
        let ready = a.ready_at(t0 + ms(250), 1.0, 100.0);
        assert!(
            ready > t0 + ms(250) && ready <= t0 + ms(253),
            "{:?}",
            ready - t0
        );
    }

    #[test]
    fn bytes_bind_too_and_large_records_go_out_of_a_full_bucket() {
        let t0 = Instant::now();
        let mut a = Allowance::new(Some(Rate::shard(1.0)), t0);
        assert!(
            a.try_take(t0, 1.0, 3.0 * SHARD_BYTES_PER_S),
            "3 MiB out of a full bucket"
        );
        assert!(
            !a.try_take(t0 + ms(1000), 1.0, 10.0),
            "in debt for two more seconds"
        );
        assert!(a.try_take(t0 + ms(3100), 1.0, 10.0));
    }

    #[test]
    fn throttling_lowers_the_rate_and_calm_raises_it() {
        let t0 = Instant::now();
        let mut a = Allowance::new(Some(Rate::shard(1.0)), t0);
        a.throttled(t0, 20, 100);
        a.throttled(t0 + ms(100), 50, 100); // same window: one cut
        let cut = a.rate().unwrap().records;
        assert!((cut - 800.0).abs() < 1e-6, "cut by the 20% refused: {cut}");
        a.throttled(t0 + ms(600), 1, 500);
        // 800 climbed by 5% of 1,000 a second for 0.6 s, then cut by 2%,
        // the least cut (0.2% were refused).
        let second = a.rate().unwrap().records;
        assert!((second - 830.0 * 0.98).abs() < 1e-6, "{second}");
        let mut half = Allowance::new(Some(Rate::shard(1.0)), t0);
        half.throttled(t0, 90, 100);
        assert_eq!(half.rate().unwrap().records, 500.0, "at most halved");
        // Calm for 3 s: +5% of 1,000 a second.
        assert!(a.try_take(t0 + ms(3600), 1.0, 1.0));
        assert!(
            (a.rate().unwrap().records - (second + 150.0)).abs() < 1.0,
            "{:?}",
            a.rate()
        );
        // Never past the ceiling.
        assert!(a.try_take(t0 + ms(60_000), 1.0, 1.0));
        assert_eq!(a.rate().unwrap().records, 1000.0);
    }

    #[test]
    fn without_a_ceiling_adapts_to_what_was_sent() {
        let t0 = Instant::now();
        let mut a = Allowance::new(None, t0);
        assert!(
            (0..5000).all(|_| a.try_take(t0, 1.0, 10.0)),
            "no limit at first"
        );
        a.throttled(t0 + ms(900), 1, 5);
        let rate = a.rate().unwrap().records;
        assert!(
            (1000.0..5000.0).contains(&rate),
            "about 80% of what was sent: {rate}"
        );
        assert!(!(0..10_000).all(|_| a.try_take(t0 + ms(1000), 1.0, 10.0)));
        // Long calm with little sent: the limit goes away.
        a.try_take(t0 + ms(120_000), 1.0, 1.0);
        assert!(a.rate().is_none());
    }
}
