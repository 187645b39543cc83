//! Retry policy for any AWS call: which error codes and statuses a later
//! attempt may cure, and exponential backoff with full jitter within a time
//! budget.

use std::time::{Duration, Instant};

/// AWS error codes that a later attempt may cure, for whole calls and for
/// single PutRecords entries alike.
const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "InternalFailure",
    "InternalFailureException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "KMSThrottlingException",
    "RequestLimitExceeded",
];

/// Whether an AWS error code is worth another try after a pause.
pub fn is_retryable_code(code: &str) -> bool {
    RETRYABLE_CODES.contains(&code)
}

/// Whether an HTTP error status is worth another try: the service's own
/// failures (5xx) and its "slow down" (429).
pub fn is_retryable_status(status: u16) -> bool {
    status >= 500 || status == 429
}

/// First backoff ceiling.
const BASE: Duration = Duration::from_millis(100);
/// Largest backoff ceiling.
const CAP: Duration = Duration::from_secs(10);

/// Backoff state for one batch: grows per attempt, ends at a deadline.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    deadline: Instant,
}

impl Backoff {
    /// A backoff that allows retries until `deadline`.
    pub fn until(deadline: Instant) -> Backoff {
        Backoff {
            attempt: 0,
            deadline,
        }
    }

    /// Moves the deadline earlier (never later), e.g. on cancellation.
    pub fn shorten_to(&mut self, deadline: Instant) {
        self.deadline = self.deadline.min(deadline);
    }

    /// How long to wait before the next attempt, or None when the budget is spent.
    pub fn next_delay(&mut self) -> Option<Duration> {
        let now = Instant::now();
        if now >= self.deadline {
            return None;
        }
        let delay = backoff_delay(self.attempt);
        self.attempt += 1;
        Some(delay.min(self.deadline - now))
    }
}

/// The pause before attempt `failures + 1` after `failures` failed ones in a
/// row: full jitter under a ceiling that doubles from `BASE` up to `CAP`.
pub fn backoff_delay(failures: u32) -> Duration {
    let ceiling = BASE.saturating_mul(1u32 << failures.min(16)).min(CAP);
    ceiling.mul_f64(random_fraction())
}

/// A uniformly random number in [0, 1).
pub fn random_fraction() -> f64 {
    let mut bytes = [0u8; 8];
    // Without randomness the jitter degrades to no delay, which is still correct.
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_under_the_cap() {
        let mut b = Backoff::until(Instant::now() + Duration::from_secs(3600));
        for attempt in 0..30u32 {
            let d = b.next_delay().unwrap();
            let ceiling = BASE.saturating_mul(1 << attempt.min(16)).min(CAP);
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
        }
    }

    #[test]
    fn stops_at_deadline() {
        let mut b = Backoff::until(Instant::now());
        assert!(b.next_delay().is_none());
        let mut b = Backoff::until(Instant::now() + Duration::from_millis(50));
        for _ in 0..20 {
            if let Some(d) = b.next_delay() {
                assert!(d <= Duration::from_millis(50));
            }
        }
    }

    #[test]
    fn jitter_is_spread() {
        let samples: Vec<f64> = (0..200).map(|_| random_fraction()).collect();
        assert!(samples.iter().all(|f| (0.0..1.0).contains(f)));
        assert!(samples.iter().any(|f| *f < 0.3) && samples.iter().any(|f| *f > 0.7));
    }
}
