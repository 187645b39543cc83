//! The Airbyte destination: the protocol's messages, the configured catalog,
//! the config and its spec, `check` and `write` (the engine's Airbyte
//! adapter), when a STATE may be echoed, record envelopes, the naming rule,
//! and the progress lines of a long sync.

pub mod catalog;
pub mod check;
pub mod checkpoint;
pub mod config;
pub mod envelope;
pub mod progress_log;
pub mod protocol;
pub mod spec;
pub mod write;
