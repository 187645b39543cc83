//! How the pipeline commands print on stdout: plain text or one JSON object a
//! line, and what a closed stdout means (at the start, or later).

use crate::failure::Failure;
use crate::failure::Kind;
use crate::stdout::stdout_was_closed;
use std::io::ErrorKind;

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
    fn formats_and_closed_pipes() {
        assert_eq!(parse_format("json"), Ok(OutputFormat::Json));
        assert_eq!(parse_format("text"), Ok(OutputFormat::Text));
        assert!(parse_format("yaml").unwrap_err().contains("yaml"));
        assert!(closed_or_failed(std::io::Error::from(ErrorKind::BrokenPipe)).is_ok());
        let f = closed_or_failed(std::io::Error::from(ErrorKind::StorageFull)).unwrap_err();
        assert!(f.message.contains("standard output"));
    }
}
