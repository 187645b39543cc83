//! The Kinesis Data Streams API on top of `aws`: the calls and what their
//! errors mean (`api`), a stream's identity (`stream`), the PutRecords wire
//! format, shard maps and hash keys, KPL aggregation, stream set-up, and a
//! signed client from connection settings.

pub mod aggregate;
mod api;
mod failures;
pub mod put_records;
pub(crate) mod retry;
pub(crate) mod session;
pub(crate) mod setup;
pub mod shards;
pub mod stream;

pub use api::*;
pub use failures::{classify, classify_entry, missing_stream, stream_call_failed};
