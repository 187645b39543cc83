//! destination-kinesis: an Airbyte destination and pipeline tool for Amazon Kinesis Data Streams.
//!
//! The crate is built in layers, each a folder, each importing only the ones
//! below it. `aws` is what any AWS client needs: the credential chain, region
//! and endpoint, the signing HTTP client with its network, TLS and DNS, and
//! which AWS errors a retry may cure. `kinesis` speaks the Kinesis API on top
//! of it: the calls and their errors, stream identity, the PutRecords wire
//! format, shard maps, KPL aggregation, stream set-up. `engine` is the sender
//! both writing commands share: stdin as lines, the outbox that batches
//! records per shard, pacing, calls in flight, retries, delivery. On top,
//! side by side and unaware of each other: `airbyte`, the connector (its
//! protocol, catalog, config and spec, `check` and `write`, checkpoints,
//! record envelopes, the naming rule), and `pipeline`, the commands for
//! shells and CI (`put`, `read`, `list`, `describe`). `failure` (what went
//! wrong, for people and for exit codes), `json` and `text` (writing for
//! machines and for people) and `stdout` are used by every layer; `main.rs` and `args`
//! parse the command line.

// The connector specification is one `json!` literal, deeper than the default allows.
#![recursion_limit = "256"]

pub mod airbyte;
pub mod args;
pub mod aws;
pub mod engine;
pub mod failure;
pub(crate) mod json;
pub mod kinesis;
pub mod pipeline;
pub(crate) mod signals;
pub(crate) mod stdout;
pub(crate) mod text;
