//! The Airbyte destination: the protocol's messages, the configured catalog,
//! the config and its spec, `check` and `write` (the engine's Airbyte
//! adapter), when a STATE may be echoed, record envelopes, the naming rule,
//! and the progress lines of a long sync.

pub mod catalog;
pub mod check;
mod checkpoint;
pub mod config;
pub mod envelope;
pub mod naming;
pub mod progress_log;
pub mod protocol;
pub mod spec;
pub mod write;

use crate::airbyte::config::Config;
use crate::airbyte::protocol::Emitter;
use crate::failure::Failure;
use crate::kinesis::session::{timeouts, Session, SET_BY_CONFIG};

/// A Kinesis client for the connector: notices (a clock corrected) go to
/// `out` as WARN LOG lines. A `streamName` ARN gives the region when none is set.
pub fn open_session(config: &Config, out: &Emitter) -> Result<Session, Failure> {
    let log = out.clone();
    Session::open_with(
        &config.access,
        config.stream_arn(),
        timeouts(&config.access),
        SET_BY_CONFIG,
        // A failed write is remembered by the emitter and stops the run there.
        Box::new(move |m: &str| {
            let _ = log.log("WARN", m);
        }),
    )
}
