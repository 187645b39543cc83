//! How the pipeline commands print on stdout: plain text or one JSON object a
//! line, and what a closed stdout means (at the start, or later).

use crate::failure::Failure;
use crate::failure::Kind;
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
        Kind::System,
        format!("cannot write to standard output: {e}"),
    ))
}

/// Standard output for a pipeline command's data; a failure when it was
/// closed when the program started (`>&-`), where everything printed would
/// vanish without an error and the command would seem to have found nothing.
pub fn stdout() -> Result<std::io::StdoutLock<'static>, Failure> {
    if stdout_was_closed() {
        return Err(Failure::new(
            Kind::System,
            "standard output was closed when the program started (as by `>&-`), so there is nowhere to \
             print to; give it a file or a pipe (`> /dev/null` to drop what it prints)",
        ));
    }
    Ok(std::io::stdout().lock())
}

/// Whether standard output was closed when the program started (`>&-`).
/// The Rust runtime then puts /dev/null in its place, opened read-write, so
/// every message would vanish without an error; a shell's `> /dev/null`
/// opens it write-only. Linux only (it reads /proc); elsewhere false.
pub fn stdout_was_closed() -> bool {
    const O_ACCMODE: u32 = 0o3;
    const O_RDWR: u32 = 0o2;
    let is_null = std::fs::read_link("/proc/self/fd/1")
        .is_ok_and(|target| target == std::path::Path::new("/dev/null"));
    is_null
        && std::fs::read_to_string("/proc/self/fdinfo/1").is_ok_and(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
                .is_some_and(|flags| flags & O_ACCMODE == O_RDWR)
        })
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
