//! Pacing per shard: how many records and bytes may go to one shard now.
//! Token buckets refill at the shard's write limits (times the configured
//! share). Throttling the limits did not predict (another producer, a wrong
//! map) lowers the rate to what the shard accepted, once the share refused
//! passes what it refuses whatever the rate; time raises it again.

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
/// Sends and refusals are weighed over windows this long: one refusal counts
/// as much in a small call as in a large one.
const WINDOW: Duration = Duration::from_millis(500);
/// A window's refusals can lower the rate before it ends once it is this
/// long and holds at least `EVIDENCE` of them.
const EARLY: Duration = Duration::from_millis(100);
/// Refusals weigh by records or by bytes, whichever a shard's limits count
/// more of: a record, or this many bytes (a shard takes 1,000 records or 1 MiB
/// a second), so that a large aggregate weighs as the records it carries.
const UNIT_BYTES: f64 = SHARD_BYTES_PER_S / SHARD_RECORDS_PER_S;
/// Fewer refusals than this weight in a window are no evidence of anything.
const EVIDENCE: f64 = 8.0;
/// A window of less than this weight tells nothing of the share refused.
const SAMPLE: f64 = 50.0;
/// The rate is lowered only when a window's refused share passes what the
/// shard refuses whatever the rate by this much: refusals that come at any
/// rate (another producer's bursts, a struggling shard) are resent, not
/// answered by sending less.
const MARGIN: f64 = 0.05;
/// Before a window is full, the refused share must pass the background by
/// this much for a cut: a storm, not noise.
const STORM: f64 = 0.25;
/// A cut cured the refusals when the share of the next window fell by at
/// least this much, plus `CURED_SHARE` of the share that caused the cut
/// (cutting by a share cures rate-dependent throttling at once; refusals
/// that come whatever the rate stay as they were)...
const CURED: f64 = 0.02;
/// ...see `CURED`.
const CURED_SHARE: f64 = 0.25;
/// A window after a cut sent at this share of the new rate or more: the cut
/// bound what was sent, and the window can tell whether it cured anything.
const BOUND: f64 = 0.8;
/// A cut keeps at least this share of the rate.
const MOST_CUT: f64 = 0.5;
/// After a cut, the rate climbs back this share of its ceiling a second...
const INCREASE_PER_S: f64 = 0.05;
/// ...but only this share while within `NEAR` above the rate the last cut found.
const INCREASE_NEAR_PER_S: f64 = 0.01;
/// See `INCREASE_NEAR_PER_S`.
const NEAR: f64 = 0.1;
/// The rate never falls below this share of its ceiling.
const FLOOR: f64 = 0.02;

/// Records and bytes a second (or, counted, records and bytes).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rate {
    /// Records a second.
    pub records: f64,
    /// Bytes a second.
    pub bytes: f64,
}

impl Rate {
    /// No records, no bytes.
    const ZERO: Rate = Rate {
        records: 0.0,
        bytes: 0.0,
    };

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

    /// Its weight: records, or bytes in `UNIT_BYTES`, whichever is more.
    fn weight(self) -> f64 {
        self.records.max(self.bytes / UNIT_BYTES)
    }
}

/// What one window saw: what was taken for the shard, and what the answers
/// said of it (accepted, refused for throughput).
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    taken: Rate,
    accepted: Rate,
    refused: Rate,
}

impl Window {
    fn new(start: Instant) -> Window {
        Window {
            start,
            taken: Rate::ZERO,
            accepted: Rate::ZERO,
            refused: Rate::ZERO,
        }
    }

    /// The weight the answers spoke of.
    fn answered(&self) -> f64 {
        self.accepted.weight() + self.refused.weight()
    }

    /// The share of what the answers spoke of that was refused, by weight.
    fn refused_share(&self) -> f64 {
        self.refused.weight() / self.answered().max(1.0)
    }
}

/// A cut on trial: the share that caused it, the rate before it and the one it set.
#[derive(Debug, Clone, Copy)]
struct Trial {
    share: f64,
    before: Option<Rate>,
    after: Rate,
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
    window: Window,
    /// The rate taken in the last full window.
    last_window: Rate,
    /// The share the shard refuses whatever the rate, as far as a cut that
    /// cured nothing showed; the least share of later windows brings it down.
    background: f64,
    /// The last cut, until a window after it tells whether it cured the refusals.
    trial: Option<Trial>,
    /// The rate the last cut that cured its refusals set: what the shard takes.
    found: Option<Rate>,
}

impl Allowance {
    /// An allowance that keeps to `ceiling` (a shard's limits times the
    /// configured share), or paces by adaptation alone when None.
    pub fn new(ceiling: Option<Rate>, now: Instant) -> Allowance {
        let full = ceiling.map_or(Rate::ZERO, |c| c.scaled(BURST.as_secs_f64()));
        Allowance {
            ceiling,
            rate: ceiling,
            records: full.records,
            bytes: full.bytes,
            refilled: now,
            last_cut: None,
            window: Window::new(now),
            last_window: Rate::ZERO,
            background: 0.0,
            trial: None,
            found: None,
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
        self.window.taken.records += records;
        self.window.taken.bytes += bytes;
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

    /// An answer said of this shard's entries that it accepted `accepted`
    /// and refused `refused` for throughput. When the window's refused share
    /// passes what the shard refuses whatever the rate, the rate goes down
    /// by that share, to what the shard accepted of it: never far below what
    /// it demonstrably takes, so that refusals cannot spiral the rate down.
    /// Entries taken before the last cut (`taken_from` is the earliest time
    /// any of them may have been) are not counted: they tell of the rate
    /// before it.
    pub fn answered(&mut self, now: Instant, accepted: Rate, refused: Rate, taken_from: Instant) {
        self.refill(now);
        self.roll(now);
        if self.last_cut.is_some_and(|cut| taken_from < cut) {
            return;
        }
        add(&mut self.window.accepted, accepted);
        add(&mut self.window.refused, refused);
        if refused.records > 0.0 && now.saturating_duration_since(self.window.start) >= EARLY {
            self.judge(now, false);
        }
    }

    /// Lowers the rate if the window shows throttling that sending less
    /// cures (and undoes a cut that cured nothing); at the end of a window
    /// (`closing`), lets the background come down to its share.
    fn judge(&mut self, now: Instant, closing: bool) {
        let w = self.window;
        let share = w.refused_share();
        let enough = w.answered() >= SAMPLE;
        // A cut is on trial until a full window after it: no other cut
        // meanwhile. Before a window is full, only a storm cuts: a few
        // refusals early in a window are noise.
        if self.trial.is_some() && !closing {
            return;
        }
        let margin = if closing { MARGIN } else { STORM };
        if let (Some(trial), true) = (self.trial, enough) {
            self.trial = None;
            self.found = Some(trial.after);
            // Only a cut that bound what was sent tells anything.
            let secs = now.saturating_duration_since(w.start).as_secs_f64();
            let bound = self.rate.is_some_and(|r| {
                w.taken.records >= BOUND * r.records * secs
                    || w.taken.bytes >= BOUND * r.bytes * secs
            });
            if bound && share > trial.share - (CURED + CURED_SHARE * trial.share) {
                // The refusals come whatever the rate: sending less was for
                // nothing. They are resent, and this share is their level.
                self.rate = trial.before;
                self.found = None;
                self.background = self.background.max(share);
                return;
            }
        }
        if closing && enough && self.trial.is_none() {
            self.background = self.background.min(share);
        }
        if w.refused.weight() < EVIDENCE || !enough || share <= self.background + margin {
            return;
        }
        // What the shard accepts: what was being sent (if less than the
        // rate) less the share it refused (a share of answers, which come in
        // clumps, is steadier than their rate); never less than half at once.
        let sent = self.sent_rate(now);
        let current = self.rate.map_or(sent, |r| Rate {
            records: r.records.min(sent.records),
            bytes: r.bytes.min(sent.bytes),
        });
        let floor = self.ceiling.map_or(
            Rate {
                records: 1.0,
                bytes: 1024.0,
            },
            |c| c.scaled(FLOOR),
        );
        let keep = (1.0 - share).max(MOST_CUT);
        let after = Rate {
            records: (current.records * keep).max(floor.records),
            bytes: (current.bytes * keep).max(floor.bytes),
        };
        self.trial = Some(Trial {
            share,
            before: self.rate,
            after,
        });
        self.rate = Some(after);
        self.last_cut = Some(now);
        // What the bucket held was what the shard just refused.
        self.records = self.records.min(0.0);
        self.bytes = self.bytes.min(0.0);
        self.close_window(now);
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
        self.rate = match self.ceiling {
            // Near the rate a cut found, the climb is slow: that is where the
            // shard throttled, and probing it gently costs few refusals; past
            // it (the other producer gone), at full speed.
            Some(ceiling) => {
                let near = self
                    .found
                    .is_some_and(|found| rate.records < found.records * (1.0 + NEAR));
                let per_s = if near {
                    INCREASE_NEAR_PER_S
                } else {
                    INCREASE_PER_S
                };
                Some(Rate {
                    records: (rate.records + ceiling.records * per_s * elapsed)
                        .min(ceiling.records),
                    bytes: (rate.bytes + ceiling.bytes * per_s * elapsed).min(ceiling.bytes),
                })
            }
            // Without a ceiling the rate grows by a share of itself, and the
            // limit is dropped once it is well above what is being sent.
            // Without a ceiling the rate grows by a share of itself, and at
            // least as fast as a limited one (a shard's limits are the same
            // in any mode); the limit is dropped once it is well above what
            // is being sent.
            None => {
                let floor = Rate::shard(INCREASE_PER_S * elapsed);
                let grown = Rate {
                    records: rate.records
                        + (rate.records * INCREASE_PER_S * 2.0 * elapsed).max(floor.records),
                    bytes: rate.bytes
                        + (rate.bytes * INCREASE_PER_S * 2.0 * elapsed).max(floor.bytes),
                };
                let sent = self.sent_rate(now);
                (grown.records <= sent.records * 4.0 + 10.0).then_some(grown)
            }
        };
    }

    /// Closes the window once it is full, judging it.
    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window.start);
        // A window left open through a pause tells of no rate: its
        // refusals are of entries sent long before.
        if elapsed >= WINDOW && elapsed < WINDOW * 2 {
            self.judge(now, true);
        }
        if elapsed >= WINDOW && self.window.start != now {
            self.close_window(now);
        }
    }

    /// Starts a new window, keeping the rate taken in the one that ends.
    fn close_window(&mut self, now: Instant) {
        let secs = now
            .saturating_duration_since(self.window.start)
            .as_secs_f64()
            .max(EARLY.as_secs_f64());
        self.last_window = self.window.taken.scaled(1.0 / secs);
        self.window = Window::new(now);
    }

    /// About what was sent a second lately: the last full window's rate
    /// weighed with the current window's.
    fn sent_rate(&self, now: Instant) -> Rate {
        let this_window = now
            .saturating_duration_since(self.window.start)
            .as_secs_f64();
        // Before the first full window, this one alone.
        let window = if self.last_window == Rate::ZERO {
            0.0
        } else {
            WINDOW.as_secs_f64()
        };
        let secs = (window + this_window).max(EARLY.as_secs_f64());
        let taken = self.window.taken;
        Rate {
            records: ((self.last_window.records * window + taken.records) / secs).max(1.0),
            bytes: ((self.last_window.bytes * window + taken.bytes) / secs).max(1024.0),
        }
    }
}

/// Adds `more` to `to`.
fn add(to: &mut Rate, more: Rate) {
    to.records += more.records;
    to.bytes += more.bytes;
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

    /// A shard as the simulation sees it: `capacity` records a second for
    /// this producer with a second of burst (None: no limit), and every
    /// `refuse_every`-th entry that fits refused whatever the rate.
    struct Shard {
        capacity: Option<f64>,
        tokens: f64,
        refuse_every: Option<u64>,
        fitted: u64,
    }

    impl Shard {
        fn new(capacity: Option<f64>, refuse_every: Option<u64>) -> Shard {
            Shard {
                capacity,
                tokens: capacity.unwrap_or(0.0),
                refuse_every,
                fitted: 0,
            }
        }

        /// Whether it takes one more entry now; `dt` passed since the last step.
        fn takes(&mut self) -> bool {
            if self.capacity.is_some() {
                if self.tokens < 1.0 {
                    return false;
                }
                self.tokens -= 1.0;
            }
            self.fitted += 1;
            self.refuse_every.is_none_or(|k| self.fitted % k != 0)
        }

        fn step(&mut self, dt: f64) {
            if let Some(c) = self.capacity {
                self.tokens = (self.tokens + c * dt).min(c);
            }
        }
    }

    /// Offers `offered` records a second to `a` for `secs` in steps of 10 ms,
    /// `per_call` entries a call, answered 20 ms later; gives the records the
    /// shard accepted and refused in the last half of the time.
    fn simulate(
        a: &mut Allowance,
        shard: &mut Shard,
        t0: Instant,
        secs: u64,
        offered: f64,
        per_call: usize,
    ) -> (u64, u64) {
        let steps = secs * 100;
        let (mut owed, mut accepted, mut refused) = (0.0, 0, 0);
        let mut answers: Vec<(Instant, Instant, usize, usize)> = Vec::new();
        for step in 0..steps {
            let now = t0 + ms(step * 10);
            shard.step(0.01);
            let (due, later): (Vec<_>, Vec<_>) = answers.into_iter().partition(|x| x.1 <= now);
            answers = later;
            for (sent_at, _, took, refused) in due {
                let rate = |n: usize| Rate {
                    records: n as f64,
                    bytes: n as f64 * 200.0,
                };
                a.answered(now, rate(took), rate(refused), sent_at);
            }
            owed += offered * 0.01;
            let mut in_call = 0;
            let mut call_refused = 0;
            let mut call_took = 0;
            while owed >= 1.0 && a.try_take(now, 1.0, 200.0) {
                owed -= 1.0;
                let took = shard.takes();
                if step >= steps / 2 {
                    if took {
                        accepted += 1;
                    } else {
                        refused += 1;
                    }
                }
                call_refused += usize::from(!took);
                call_took += usize::from(took);
                in_call += 1;
                if in_call == per_call {
                    answers.push((now, now + ms(20), call_took, call_refused));
                    (in_call, call_refused, call_took) = (0, 0, 0);
                }
            }
            answers.push((now, now + ms(20), call_took, call_refused));
            // What the allowance held back is not offered again.
            owed = owed.min(1.0);
        }
        (accepted, refused)
    }

    #[test]
    fn throttling_lowers_the_rate_to_what_the_shard_takes_and_time_raises_it() {
        let t0 = Instant::now();
        let mut a = Allowance::new(Some(Rate::shard(1.0)), t0);
        // Another producer uses half of the shard; 1,500 a second offered.
        let mut shard = Shard::new(Some(500.0), None);
        let (accepted, refused) = simulate(&mut a, &mut shard, t0, 10, 1500.0, 100);
        let rate = a.rate().unwrap().records;
        assert!((450.0..650.0).contains(&rate), "{rate}");
        let per_s = accepted as f64 / 5.0;
        assert!(per_s > 450.0, "the shard stays busy: {per_s}");
        let share = refused as f64 / (accepted + refused) as f64;
        assert!(share < 0.06, "few refusals once adapted: {share}");
        // Calm: +1% of the ceiling a second near the rate the cut found,
        // +5% past it, never past the ceiling.
        assert!(a.try_take(t0 + ms(13_000), 1.0, 1.0));
        let climbed = a.rate().unwrap().records;
        assert!(climbed > rate + 25.0, "{rate} -> {climbed}");
        for step in 131..=200 {
            a.try_take(t0 + ms(step * 100), 1.0, 1.0);
        }
        let faster = a.rate().unwrap().records;
        assert!(faster > climbed + 200.0, "{climbed} -> {faster}");
        assert!(a.try_take(t0 + ms(60_000), 1.0, 1.0));
        assert_eq!(a.rate().unwrap().records, 1000.0);
    }

    #[test]
    fn refusals_that_come_at_any_rate_do_not_lower_it() {
        for per_call in [5, 100] {
            let t0 = Instant::now();
            let mut a = Allowance::new(Some(Rate::shard(1.0)), t0);
            // 3% refused whatever the rate; 700 a second offered.
            let mut shard = Shard::new(None, Some(33));
            let (accepted, _) = simulate(&mut a, &mut shard, t0, 20, 700.0, per_call);
            assert!(
                accepted as f64 / 10.0 > 0.96 * 700.0,
                "{per_call} a call: {accepted} in 10 s"
            );
            assert!(
                a.rate().unwrap().records > 900.0,
                "{per_call} a call: {:?}",
                a.rate()
            );
            let mut on_demand = Allowance::new(None, t0);
            let mut shard = Shard::new(None, Some(33));
            simulate(&mut on_demand, &mut shard, t0, 20, 700.0, per_call);
            assert!(
                on_demand.rate().is_none_or(|r| r.records > 700.0),
                "{:?}",
                on_demand.rate()
            );
        }
    }

    #[test]
    fn without_a_ceiling_finds_what_the_shard_takes() {
        let t0 = Instant::now();
        let mut a = Allowance::new(None, t0);
        assert!(
            (0..5000).all(|_| a.try_take(t0, 1.0, 200.0)),
            "no limit at first"
        );
        let mut shard = Shard::new(Some(1000.0), Some(50));
        let (accepted, refused) = simulate(&mut a, &mut shard, t0, 10, 3000.0, 100);
        // Records of 200 bytes: whichever of the two binds.
        let rate = a.rate().map(|r| r.records.min(r.bytes / 200.0)).unwrap();
        assert!((900.0..1400.0).contains(&rate), "{rate}");
        assert!(accepted as f64 / 5.0 > 850.0, "{accepted}");
        assert!(
            (refused as f64) < 0.15 * accepted as f64,
            "{refused} refused, {accepted} accepted"
        );
        // Long calm with little sent: the limit goes away.
        a.try_take(t0 + ms(120_000), 1.0, 1.0);
        assert!(a.rate().is_none(), "{:?}", a.rate());
    }
}
