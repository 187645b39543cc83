//! The commands for shells and CI: `put` (the engine's line adapter and its
//! input formats), `read` (records on stdout), `list` and `describe`, their
//! output formats, the status line on a terminal, and durations and times as
//! flags.

pub mod describe;
pub mod list;
pub mod output;
mod progress;
pub mod put;
pub mod put_input;
pub mod read;
pub mod shard_filter;
mod timespec;

use crate::aws::access::Access;
use crate::engine::sending::Sending;
use crate::failure::Failure;
use crate::kinesis::session::{timeouts, Session, SET_BY_FLAGS};
use crate::kinesis::stream::StreamRef;
use crate::kinesis::NewStream;

/// What the pipeline commands take of a config file and their flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Where to reach AWS and as whom.
    pub access: Access,
    /// How `put` sends.
    pub sending: Sending,
    /// Whether `put` may create a missing stream.
    pub create_streams: bool,
    /// How it makes one.
    pub new_streams: NewStream,
}

/// A Kinesis client for a pipeline command, whose stdout carries data:
/// notices go to stderr. A `stream` named by ARN gives the region when none
/// is set.
pub fn open_session(access: &Access, stream: Option<&StreamRef>) -> Result<Session, Failure> {
    let notice = Box::new(|m: &str| eprintln!("destination-kinesis: {m}"));
    let arn = stream.and_then(StreamRef::arn);
    Session::open_with(access, arn, timeouts(access), SET_BY_FLAGS, notice)
}
