//! Retrying Kinesis calls: the short patience of a command's first call,
//! and retries within a budget for what may pass (not a timeout, which is
//! reported at once).

use crate::aws::http::TransportError;
use crate::aws::retry::Backoff;
use crate::kinesis::{Cause, KinesisError};
use std::time::{Duration, Instant};

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
}
