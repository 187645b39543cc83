//! Writing for people: a count with its noun, a size, a duration as it would
//! be typed. Every layer's messages use these, so that they read alike.

use std::time::Duration;

/// A count and its noun, for messages to people: `1 record`, `2 records`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A size for people: `512 bytes`, `1.5 KB`, `3.2 MB`, `1.1 GB` (units of 1000).
pub fn size(bytes: u64) -> String {
    const UNITS: [(f64, &str); 3] = [(1e9, "GB"), (1e6, "MB"), (1e3, "KB")];
    let n = bytes as f64;
    match UNITS.iter().find(|(unit, _)| n >= *unit) {
        Some((unit, name)) => format!("{:.1} {name}", n / unit),
        None => count(bytes, "byte", "bytes"),
    }
}

/// A duration as it would be typed: `500ms`, `2s`, `1.5s`.
pub fn show(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_sizes_read_as_people_write_them() {
        assert_eq!(count(1, "shard", "shards"), "1 shard");
        assert_eq!(count(0, "shard", "shards"), "0 shards");
        assert_eq!(size(0), "0 bytes");
        assert_eq!(size(1), "1 byte");
        assert_eq!(size(999), "999 bytes");
        assert_eq!(size(1_500), "1.5 KB");
        assert_eq!(size(3_200_000), "3.2 MB");
        assert_eq!(size(1_100_000_000), "1.1 GB");
    }
}
