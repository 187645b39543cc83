//! Retry policy: exponential backoff with full jitter, within a time budget;
//! and the short patience of a command's first call.

use crate::aws::http::TransportError;
use crate::kinesis::{Cause, KinesisError};
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

    /// The retry deadline.
    pub fn deadline(&self) -> Instant {
        self.deadline
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

/// How long a command's first call retries a refused connection: long enough
/// for an emulator that is still starting, short enough that a wrong endpoint
/// is reported in seconds rather than after the whole retry budget.
const FIRST_CONTACT_PATIENCE: Duration = Duration::from_secs(3);

/// Makes the first call of a command, retrying a refused connection only
/// for `FIRST_CONTACT_PATIENCE`.
pub fn first_contact<T>(
    mut call: impl FnMut() -> Result<T, KinesisError>,
) -> Result<T, KinesisError> {
    let mut backoff = Backoff::until(Instant::now() + FIRST_CONTACT_PATIENCE);
    loop {
        match call() {
            Err(e) if is_refused(&e) => match backoff.next_delay() {
                Some(delay) => std::thread::sleep(delay),
                None => return Err(e),
            },
            other => return other,
        }
    }
}

/// Makes a call, retrying what may pass (throttling, 5xx, dropped connections)
/// with backoff until `budget` is spent; a refused connection only for
/// `FIRST_CONTACT_PATIENCE` and a timeout not at all, so a wrong endpoint is
/// reported in seconds rather than after the whole budget.
pub fn retrying<T>(
    budget: Duration,
    mut call: impl FnMut() -> Result<T, KinesisError>,
) -> Result<T, KinesisError> {
    let started = Instant::now();
    let mut backoff = Backoff::until(started + budget);
    loop {
        match call() {
            Err(e) if e.is_retryable() && !is_timeout(&e) => {
                if is_refused(&e) {
                    backoff.shorten_to(started + FIRST_CONTACT_PATIENCE);
                }
                match backoff.next_delay() {
                    Some(delay) => std::thread::sleep(delay),
                    None => return Err(e),
                }
            }
            other => return other,
        }
    }
}

/// Whether no answer came in the time allowed.
fn is_timeout(e: &KinesisError) -> bool {
    matches!(e.cause, Cause::Transport(TransportError::Timeout { .. }))
}

/// Whether nothing accepts connections at the endpoint.
pub fn is_refused(e: &KinesisError) -> bool {
    matches!(e.cause, Cause::Transport(TransportError::Connect { .. }))
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

    fn error(cause: Cause) -> KinesisError {
        KinesisError {
            op: "ListStreams",
            stream: None,
            cause,
        }
    }

    #[test]
    fn retrying_retries_throttling_but_not_a_timeout() {
        let throttled = || {
            error(Cause::Aws(crate::kinesis::AwsError {
                status: 400,
                code: "LimitExceededException".into(),
                message: String::new(),
            }))
        };
        let mut calls = 0;
        let answer = retrying(Duration::from_secs(60), || {
            calls += 1;
            if calls < 3 {
                Err(throttled())
            } else {
                Ok(calls)
            }
        });
        assert_eq!(answer, Ok(3));
        let mut calls = 0;
        let timeout = error(Cause::Transport(TransportError::Timeout {
            endpoint: "http://127.0.0.1:1".into(),
            detail: "timed out".into(),
        }));
        let answer: Result<(), _> = retrying(Duration::from_secs(60), || {
            calls += 1;
            Err(timeout.clone())
        });
        assert_eq!((answer, calls), (Err(timeout), 1));
        let denied = error(Cause::Aws(crate::kinesis::AwsError {
            status: 400,
            code: "AccessDeniedException".into(),
            message: String::new(),
        }));
        let mut calls = 0;
        let answer: Result<(), _> = retrying(Duration::from_secs(60), || {
            calls += 1;
            Err(denied.clone())
        });
        assert_eq!((answer, calls), (Err(denied), 1));
    }

    #[test]
    fn jitter_is_spread() {
        let samples: Vec<f64> = (0..200).map(|_| random_fraction()).collect();
        assert!(samples.iter().all(|f| (0.0..1.0).contains(f)));
        assert!(samples.iter().any(|f| *f < 0.3) && samples.iter().any(|f| *f > 0.7));
    }
}
