//! How the pipeline commands print on stdout: plain text or one JSON object a
//! line, and what a closed stdout means.

use crate::failure::Failure;
use crate::protocol::FailureType;
use std::io::ErrorKind;

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

/// How records, streams and shards are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// For people and line tools (`grep`, `awk`).
    Text,
    /// One JSON object a line, with every field named (for `jq`).
    Json,
}

/// Parses `--format`: `text` or `json`.
pub fn parse_format(value: &str) -> Result<OutputFormat, String> {
    match value {
        "text" => Ok(OutputFormat::Text),
        "json" => Ok(OutputFormat::Json),
        other => Err(format!("`{other}` is not text or json")),
    }
}

/// What a failed write to stdout means: Ok when its reader went away
/// (`| head`), which ends a command quietly; any other error fails it.
pub fn closed_or_failed(e: std::io::Error) -> Result<(), Failure> {
    if e.kind() == ErrorKind::BrokenPipe {
        return Ok(());
    }
    Err(Failure::new(
        FailureType::System,
        format!("cannot write to standard output: {e}"),
    ))
}

/// Writes `text` to `out` and flushes; a closed stdout is not an error.
pub fn print_all(out: &mut impl std::io::Write, text: &[u8]) -> Result<(), Failure> {
    match out.write_all(text).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) => closed_or_failed(e),
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

    #[test]
    fn formats_and_closed_pipes() {
        assert_eq!(parse_format("json"), Ok(OutputFormat::Json));
        assert_eq!(parse_format("text"), Ok(OutputFormat::Text));
        assert!(parse_format("yaml").unwrap_err().contains("yaml"));
        assert!(closed_or_failed(std::io::Error::from(ErrorKind::BrokenPipe)).is_ok());
        let f = closed_or_failed(std::io::Error::from(ErrorKind::StorageFull)).unwrap_err();
        assert!(f.message.contains("standard output"));
    }
}
