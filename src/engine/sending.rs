//! How records are sent, as the user set it: the config's fields and the
//! pipeline commands' flags, which the engine and the outbox take.

use crate::engine::in_flight::InFlight;
use std::time::Duration;

/// How records are sent, as the user set it (the config's fields, the
/// pipeline commands' flags): what the engine and the outbox take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sending {
    /// Records per PutRecords call.
    pub buffer_size: usize,
    /// How long a record may be sent again, from its first send, before the run fails.
    pub retry_timeout: Duration,
    /// PutRecords calls allowed in flight at once.
    pub max_in_flight: InFlight,
    /// Pack records into KPL aggregated records.
    pub aggregation: bool,
    /// Keep each partition key's records in input order through retries.
    pub keep_key_order: bool,
    /// Longest a record waits to share a PutRecords call.
    pub linger: Duration,
    /// The share of each shard's write limits to send at, in percent; 0: no pacing.
    pub shard_rate_limit: u32,
}

/// How long a record waits at most for others to share its PutRecords call,
/// in `write` and `put` alike: short enough that a quiet source's states are
/// echoed within a fraction of a second, long enough that a trickle of
/// records still shares calls.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(200);

impl Sending {
    /// Whether records are sent by shard (paced, or aggregated per shard),
    /// so that each stream's shards must be listed.
    pub fn by_shard(&self) -> bool {
        self.shard_rate_limit > 0 || self.aggregation
    }
}

impl Default for Sending {
    fn default() -> Sending {
        Sending {
            buffer_size: 100,
            retry_timeout: Duration::from_secs(300),
            max_in_flight: InFlight::Auto,
            aggregation: false,
            keep_key_order: false,
            linger: DEFAULT_LINGER,
            shard_rate_limit: 100,
        }
    }
}
