//! Durations and points in time as people type them on the command line:
//! `500ms`, `2s`, `10m`, `1h`, `1d`; and times as RFC 3339 or `-DURATION`
//! (that long before now). Every flag that takes one parses it here.

use crate::text::show;
use aws_smithy_types::date_time::{DateTime, Format};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The units a duration may have, longest name first so `ms` is not read as `m`.
const UNITS: &[(&str, f64)] = &[
    ("ms", 0.001),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
    ("d", 86_400.0),
];

/// The longest duration any flag takes: beyond it `Instant + Duration` could overflow.
const LONGEST: Duration = Duration::from_secs(366 * 86_400);

/// Parses a duration: a non-negative number (decimals allowed) and a unit,
/// `ms`, `s`, `m`, `h` or `d`, e.g. `500ms`, `1.5s`, `10m`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let bad = || format!("`{value}` is not a duration such as 500ms, 2s, 10m, 1h or 1d");
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (number, unit) = value.split_at(split);
    let scale = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, scale)| *scale)
        .ok_or_else(bad)?;
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(bad());
    }
    let n: f64 = number.parse().map_err(|_| bad())?;
    let seconds = n * scale;
    if seconds > LONGEST.as_secs_f64() {
        return Err(format!("`{value}` is longer than a year"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses a duration that must lie within `min..=max`.
pub fn parse_duration_within(
    value: &str,
    min: Duration,
    max: Duration,
) -> Result<Duration, String> {
    let d = parse_duration(value)?;
    if d < min || d > max {
        return Err(format!(
            "`{value}` must be between {} and {}",
            show(min),
            show(max)
        ));
    }
    Ok(d)
}

/// Parses a point in time, as epoch seconds: RFC 3339 (`2024-05-01T12:00:00Z`,
/// `2024-05-01T14:00:00.5+02:00`) or `-DURATION`, that long before `now`.
pub fn parse_time(value: &str, now: SystemTime) -> Result<f64, String> {
    if let Some(ago) = value.strip_prefix('-') {
        let ago = parse_duration(ago)
            .map_err(|_| format!("`{value}` is not a time before now such as -30s, -10m or -2h"))?;
        let then = now.checked_sub(ago).unwrap_or(UNIX_EPOCH);
        return Ok(then
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64());
    }
    DateTime::from_str(value, Format::DateTimeWithOffset)
        .map(|t| t.as_secs_f64())
        .map_err(|_| {
            // The parser's own words (`the 'year' component could not be parsed`)
            // say less than the forms that are taken.
            if is_date(value) {
                format!("`{value}` is a date without a time: give an RFC 3339 time such as {value}T00:00:00Z")
            } else {
                format!(
                    "`{value}` is not an RFC 3339 time such as 2024-05-01T12:00:00Z, nor a time before now such as -10m"
                )
            }
        })
}

/// `YYYY-MM-DD` alone.
fn is_date(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// Parses a point in time relative to the clock now.
pub fn parse_time_now(value: &str) -> Result<f64, String> {
    parse_time(value, SystemTime::now())
}

/// The clock now, as epoch seconds.
pub fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Epoch seconds as RFC 3339 with milliseconds at most (what Kinesis keeps).
pub fn format_time(seconds: f64) -> Option<String> {
    // Rounding to milliseconds hides the float's binary noise.
    DateTime::from_millis((seconds * 1000.0).round() as i64)
        .fmt(Format::DateTime)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in [
            "", "5", "s", "ms", "-1s", "1.s", ".5s", "1..5s", "1 s", "1sec", "5M", "1e3s", "2s3",
            "400d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let e = parse_duration("soon").unwrap_err();
        assert!(e.contains("500ms"), "{e}");
        let within =
            |v| parse_duration_within(v, Duration::from_millis(200), Duration::from_secs(300));
        assert_eq!(within("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(within("5m"), Ok(Duration::from_secs(300)));
        let e = within("100ms").unwrap_err();
        assert!(e.contains("between 200ms and 300s"), "{e}");
        assert!(within("6m").is_err());
    }

    #[test]
    fn times() {
        let now = UNIX_EPOCH + Duration::from_secs(1_714_564_800);
        assert_eq!(parse_time("2024-05-01T12:00:00Z", now), Ok(1_714_564_800.0));
        assert_eq!(
            parse_time("2024-05-01T14:00:00.5+02:00", now),
            Ok(1_714_564_800.5)
        );
        assert_eq!(parse_time("-10m", now), Ok(1_714_564_200.0));
        assert_eq!(parse_time("-1.5s", now), Ok(1_714_564_798.5));
        assert_eq!(parse_time("-2h", now), Ok(1_714_557_600.0));
        for bad in [
            "yesterday",
            "2024-05-01",
            "2024-05-01 12:00:00Z",
            "",
            "-",
            "-10",
            "+10m",
            "10m",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
        assert!(parse_time("-x", now).unwrap_err().contains("-10m"));
        assert!(parse_time("noon", now).unwrap_err().contains("RFC 3339"));
        // What was wrong in words of the forms taken, not the parser's.
        for bad in ["yesterday", "2024-13-01T00:00:00Z", "2024-05-01T25:00:00Z"] {
            let e = parse_time(bad, now).unwrap_err();
            assert_eq!(
                e,
                format!("`{bad}` is not an RFC 3339 time such as 2024-05-01T12:00:00Z, nor a time before now such as -10m")
            );
        }
        assert!(parse_time("2024-05-01", now)
            .unwrap_err()
            .contains("such as 2024-05-01T00:00:00Z"));
        assert_eq!(
            format_time(1_714_564_800.25).as_deref(),
            Some("2024-05-01T12:00:00.25Z")
        );
        assert_eq!(show(Duration::from_millis(250)), "250ms");
        assert_eq!(show(Duration::from_millis(1500)), "1.5s");
    }
}
