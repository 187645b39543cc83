//! destination-kinesis: an Airbyte destination and pipeline tool for Amazon Kinesis Data Streams.

pub mod aggregate;
pub mod batch;
pub mod catalog;
pub mod check;
pub mod checkpoint;
pub mod config;
pub mod credentials;
pub mod delivery;
pub mod envelope;
pub mod failure;
pub mod http;
pub mod input;
pub mod kinesis;
pub mod naming;
pub mod partition;
pub mod protocol;
pub mod retry;
pub mod session;
pub mod spec;
pub mod streams;
pub mod write;
