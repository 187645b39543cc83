//! destination-kinesis: an Airbyte destination and pipeline tool for Amazon Kinesis Data Streams.

// The connector specification is one `json!` literal, deeper than the default allows.
#![recursion_limit = "256"]

pub mod aggregate;
pub mod batch;
pub mod catalog;
pub mod check;
pub mod checkpoint;
pub mod config;
pub mod credentials;
pub mod delivery;
pub mod describe;
pub mod dns;
pub mod engine;
pub mod envelope;
pub mod environment;
pub mod failure;
pub mod http;
pub mod ids;
pub mod input;
pub mod json;
pub mod kinesis;
pub mod lanes;
pub mod list;
pub mod naming;
pub mod network;
pub mod outbox;
pub mod output;
pub mod partition;
pub mod progress;
pub mod protocol;
pub mod put;
pub mod put_input;
pub mod put_records;
pub mod rate;
pub mod read;
pub mod retry;
pub mod role;
pub mod session;
pub mod shard_filter;
pub mod shards;
pub mod spec;
pub mod streams;
pub mod timespec;
pub mod tls;
pub mod write;
