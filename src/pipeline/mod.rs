//! The commands for shells and CI: `put` (the engine's line adapter and its
//! input formats), `read` (records on stdout), `list` and `describe`, their
//! output formats, the status line on a terminal, and durations and times as
//! flags.

pub mod describe;
pub mod list;
pub mod output;
pub mod progress;
pub mod put;
pub mod put_input;
pub mod read;
pub mod shard_filter;
pub mod timespec;
