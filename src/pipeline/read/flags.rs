//! `read`'s flags: where to start (`--from`), where to stop (`--until`), how
//! often to poll a caught-up shard, how long to wait for a record.

use super::MIN_CALL_INTERVAL;
use crate::kinesis::StartPosition;
use crate::pipeline::timespec::{parse_duration_within, parse_time_now};
use std::time::Duration;

/// The range `--poll-interval` takes: faster than 200 ms breaks the 5 calls/s limit.
const POLL_INTERVAL_RANGE: (Duration, Duration) = (MIN_CALL_INTERVAL, Duration::from_secs(300));
/// The range `--idle-timeout` takes.
const IDLE_TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(7 * 86_400));
/// Parses `--from`: `trim-horizon`, `latest`, a time (RFC 3339 or `-10m`),
/// or `at:SEQ` / `after:SEQ` in one shard.
pub fn parse_from(value: &str) -> Result<StartPosition, String> {
    let sequence = |seq: &str| -> Result<String, String> {
        // Kinesis sequence numbers: decimal, no leading zero, at most 129 digits.
        let valid = !seq.is_empty()
            && seq.len() <= 129
            && seq.bytes().all(|b| b.is_ascii_digit())
            && (seq == "0" || !seq.starts_with('0'));
        if valid {
            Ok(seq.to_string())
        } else {
            Err(format!(
                "`{value}`: a sequence number is the digits of `sequenceNumber` in read --format json"
            ))
        }
    };
    match value {
        "trim-horizon" | "TRIM_HORIZON" => Ok(StartPosition::TrimHorizon),
        "latest" | "LATEST" => Ok(StartPosition::Latest),
        _ => {
            if let Some(seq) = value.strip_prefix("at:") {
                return sequence(seq).map(StartPosition::AtSequenceNumber);
            }
            if let Some(seq) = value.strip_prefix("after:") {
                return sequence(seq).map(StartPosition::AfterSequenceNumber);
            }
            parse_time_now(value)
                .map(StartPosition::AtTimestamp)
                .map_err(|e| format!("not trim-horizon, latest, at:SEQ or after:SEQ; {e}"))
        }
    }
}

/// Parses `--until`: an RFC 3339 time or `-10m` (that long before now).
pub fn parse_until(value: &str) -> Result<f64, String> {
    parse_time_now(value)
}

/// Parses `--poll-interval`: 200ms to 5m.
pub fn parse_poll_interval(value: &str) -> Result<Duration, String> {
    parse_duration_within(value, POLL_INTERVAL_RANGE.0, POLL_INTERVAL_RANGE.1)
}

/// Parses `--idle-timeout`: 100ms to 7 days.
pub fn parse_idle_timeout(value: &str) -> Result<Duration, String> {
    parse_duration_within(value, IDLE_TIMEOUT_RANGE.0, IDLE_TIMEOUT_RANGE.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::timespec::now_seconds;

    #[test]
    fn parses_from() {
        assert_eq!(parse_from("trim-horizon"), Ok(StartPosition::TrimHorizon));
        assert_eq!(parse_from("latest"), Ok(StartPosition::Latest));
        assert_eq!(
            parse_from("2024-05-01T12:00:00Z"),
            Ok(StartPosition::AtTimestamp(1_714_564_800.0))
        );
        assert_eq!(
            parse_from("2024-05-01T14:00:00.5+02:00"),
            Ok(StartPosition::AtTimestamp(1_714_564_800.5))
        );
        for bad in ["yesterday", "2024-05-01", "2024-05-01 12:00:00Z", ""] {
            let e = parse_from(bad).unwrap_err();
            assert!(e.contains("RFC 3339"), "{bad}: {e}");
        }
        assert!(
            matches!(parse_from("-10m"), Ok(StartPosition::AtTimestamp(t)) if t < now_seconds() - 599.0)
        );
        assert_eq!(
            parse_from("at:49590338271490256608559692538361571095921575989136588898"),
            Ok(StartPosition::AtSequenceNumber(
                "49590338271490256608559692538361571095921575989136588898".into()
            ))
        );
        assert_eq!(
            parse_from("after:0"),
            Ok(StartPosition::AfterSequenceNumber("0".into()))
        );
        for bad in [
            "at:",
            "after:12a",
            "at:0123",
            "at: 1",
            &format!("at:{}", "9".repeat(130)),
        ] {
            let e = parse_from(bad).unwrap_err();
            assert!(e.contains("sequence number"), "{bad}: {e}");
        }
        assert!(parse_poll_interval("1s").is_ok());
        assert!(parse_poll_interval("100ms").is_err());
        assert!(parse_idle_timeout("50ms").is_err());
        assert!(parse_until("-1h").is_ok());
    }
}
