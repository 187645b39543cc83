//! What an answer means for each entry of its batch, in one place: an entry
//! Kinesis stored is accepted at once (a state waits for its own records,
//! not for the rest of their call); an entry refused for a reason a resend
//! may cure goes back to its shard's lane to be sent again, refused for
//! throughput after the shard's allowance (whose rate the refusals may
//! lower), otherwise after a backoff that grows with each such refusal in a
//! row, while the other shards' records, and new ones, keep going; an entry
//! refused past `retryTimeoutSeconds` since it was first sent, or for a
//! reason no resend cures, ends the run. A call that failed as a whole sends
//! all its entries again once the endpoint's backoff (`in_flight::Gate`) is
//! over, and a call too large for the endpoint is split.

use super::Outbox;
use crate::aws::retry::backoff_delay;
use crate::engine::batch::{Batch, EntryMeta};
use crate::engine::delivery::{Answer, DeliveryError, Done, Refusal};
use crate::engine::lanes::Waiting;
use crate::engine::rate::Rate;
use crate::kinesis::put_records::{EntryResult, Limits};
use crate::kinesis::{Cause, KinesisError};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What an answer did.
#[derive(Debug, Default)]
pub struct Answered {
    /// Input records Kinesis accepted.
    pub records: u64,
    /// Why the run must end, when it must: its entries not accepted stay
    /// unaccepted, so that no later state is echoed.
    pub failure: Option<DeliveryError>,
}

/// What is to become of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Stored,
    /// Refused for throughput.
    Throttled,
    /// Not stored, or not known to be, for a reason a later attempt may
    /// cure; `unsure` when Kinesis may hold it all the same.
    Again {
        unsure: bool,
    },
}

/// The entries of one lane to be sent again, in batch order.
#[derive(Default)]
struct LaneRetries {
    entries: Vec<Waiting>,
    throttled: usize,
    /// Whether any was refused for another reason than throughput.
    backoff: bool,
}

impl Outbox {
    /// Takes back a batch from its call: accepts what Kinesis stored, puts
    /// what it must see again back into the lanes, and says when the run
    /// must end instead.
    pub fn answered(&mut self, done: Done) -> Answered {
        let Done {
            batch,
            answer,
            shards,
            at: now,
        } = done;
        let t = batch.target.0;
        self.in_flight_bytes -= batch.capacity();
        if shards.iter().any(|s| !self.targets[t].lanes.map().knows(s)) {
            self.maps.contradicted(t);
        }
        if self.settings.one_batch_per_shard {
            let lanes = (0..batch.len()).map(|i| batch.meta(i).lane);
            self.targets[t]
                .lanes
                .unclaim(batch.id, batch.map_generation, lanes);
            // Entries that waited for this batch may go now.
            if self.targets[t].lanes.queued() > 0 {
                self.waiting.insert(t);
                self.next_release = Some(now);
            }
        }
        let answered = match &answer {
            Answer::Stored => {
                self.tell_shards(&batch, |_| Fate::Stored, now);
                Answered {
                    records: self.accept(&batch, |_| true),
                    failure: None,
                }
            }
            Answer::Entries(results) => {
                self.tell_shards(&batch, |i| fate_of(&results[i]), now);
                self.entries_answered(&batch, results, now)
            }
            Answer::Failed(e) => {
                if e.code() == Some("ProvisionedThroughputExceededException") {
                    self.tell_shards(&batch, |_| Fate::Throttled, now);
                }
                self.call_failed(&batch, e, now)
            }
        };
        self.account(t);
        // A batch that ends the run keeps its records unaccepted.
        if answered.failure.is_none() {
            self.release_hold(batch.first_record);
        }
        self.recycle(batch);
        answered
    }

    /// Counts the entries `stored` says Kinesis stored as accepted; gives
    /// their records. The backoff of each lane with entries stored starts
    /// over: its shard takes entries again.
    fn accept(&mut self, batch: &Batch, stored: impl Fn(usize) -> bool) -> u64 {
        let t = batch.target.0;
        let same_map = batch.map_generation == self.targets[t].lanes.generation();
        let mut records = 0;
        for i in (0..batch.len()).filter(|&i| stored(i)) {
            let meta = batch.meta(i);
            records += u64::from(meta.records);
            self.sent.accepted_bytes += u64::from(meta.payload);
            if same_map {
                self.targets[t].lanes.lane(meta.lane).failures = 0;
            }
        }
        records
    }

    /// A 200 answer with one result per entry, not all stored.
    fn entries_answered(
        &mut self,
        batch: &Batch,
        results: &[EntryResult],
        now: Instant,
    ) -> Answered {
        let records = self.accept(batch, |i| results[i] == EntryResult::Stored);
        let cured_by_no_resend = results.iter().find_map(|r| match r {
            EntryResult::Refused(f) if !f.is_retryable() => Some(f),
            _ => None,
        });
        if let Some(f) = cured_by_no_resend {
            let failure = self.refused(batch, Refusal::Entry(f.clone()), None, |i| {
                results[i] != EntryResult::Stored
            });
            return Answered {
                records,
                failure: Some(failure),
            };
        }
        let fates: Vec<Fate> = results.iter().map(fate_of).collect();
        let failure = self.send_again(batch, &fates, now).map(|after| {
            let last = results.iter().rev().find_map(|r| match r {
                EntryResult::Refused(f) => Some(Refusal::Entry(f.clone())),
                _ => None,
            });
            self.refused(
                batch,
                last.unwrap_or(Refusal::Unconfirmed),
                Some(after),
                |i| results[i] != EntryResult::Stored,
            )
        });
        Answered { records, failure }
    }

    /// A call that failed as a whole.
    fn call_failed(&mut self, batch: &Batch, e: &KinesisError, now: Instant) -> Answered {
        let t = batch.target.0;
        let fate = if self.too_large(batch, e) {
            // The endpoint takes less than the stream reports: smaller calls
            // from now on, and this one's entries in them.
            self.targets[t].limits.request = Limits::CLASSIC.request;
            Fate::Again { unsure: false }
        } else if !e.is_retryable() {
            let failure = self.refused(batch, Refusal::Call(e.clone()), None, |_| true);
            return Answered {
                records: 0,
                failure: Some(failure),
            };
        } else if e.code() == Some("ProvisionedThroughputExceededException") {
            Fate::Throttled
        } else {
            Fate::Again {
                unsure: e.outcome_unknown(),
            }
        };
        let fates = vec![fate; batch.len()];
        let failure = self
            .send_again(batch, &fates, now)
            .map(|after| self.refused(batch, Refusal::Call(e.clone()), Some(after), |_| true));
        Answered {
            records: 0,
            failure,
        }
    }

    /// Tells each paced shard of the batch what the answer said of its
    /// entries, for its rate (entries refused for other reasons than
    /// throughput say nothing of it).
    fn tell_shards(&mut self, batch: &Batch, fate: impl Fn(usize) -> Fate, now: Instant) {
        let lanes = &mut self.targets[batch.target.0].lanes;
        if !lanes.paced() || batch.map_generation != lanes.generation() {
            return;
        }
        let mut by_lane: Vec<(u32, usize)> =
            (0..batch.len()).map(|i| (batch.meta(i).lane, i)).collect();
        by_lane.sort_unstable();
        for entries in by_lane.chunk_by(|a, b| a.0 == b.0) {
            let (mut accepted, mut refused) = (Rate::default(), Rate::default());
            for &(_, i) in entries {
                let tally = match fate(i) {
                    Fate::Stored => &mut accepted,
                    Fate::Throttled => &mut refused,
                    Fate::Again { .. } => continue,
                };
                tally.records += 1.0;
                tally.bytes += f64::from(batch.meta(i).payload);
            }
            if let Some(a) = lanes.lane(entries[0].0).allowance.as_mut() {
                a.answered(now, accepted, refused, batch.opened_at);
            }
        }
    }

    /// Whether the call was refused for its total size, which the stream's
    /// reported limits allowed and the endpoint does not: a 4xx that no resend
    /// cures, for a call over the classic 5 MiB, of more than one entry.
    fn too_large(&self, batch: &Batch, e: &KinesisError) -> bool {
        let status = match &e.cause {
            Cause::Aws(a) => a.status,
            _ => return false,
        };
        (400..500).contains(&status)
            && !e.is_retryable()
            && !e.is_credential_error()
            && !e.is_not_found()
            && batch.len() > 1
            && batch.payload() > Limits::CLASSIC.request
    }

    /// Puts the entries not stored back into their lanes; or, when one of
    /// them was refused past the retry budget, none, and gives how long the
    /// oldest had been retried.
    fn send_again(&mut self, batch: &Batch, fates: &[Fate], now: Instant) -> Option<Duration> {
        let t = batch.target.0;
        let same_map = batch.map_generation == self.targets[t].lanes.generation();
        let sent_at = batch.sent_at.unwrap_or(now);
        let mut per_lane: BTreeMap<u32, LaneRetries> = BTreeMap::new();
        let mut oldest = now;
        for (i, &fate) in fates.iter().enumerate() {
            let mut meta = batch.meta(i);
            if fate == Fate::Stored {
                continue;
            }
            let since = meta.since.unwrap_or(sent_at);
            oldest = oldest.min(since);
            meta.since = Some(since);
            if let Fate::Again { unsure: true } = fate {
                if !meta.unsure {
                    self.sent.possible_duplicates += u64::from(meta.records);
                }
                meta.unsure = true;
            }
            let entry = batch.entry(i).to_vec();
            if !same_map {
                meta.lane = self.targets[t].lanes.reroute(&entry, &mut meta);
            }
            let lane = per_lane.entry(meta.lane).or_default();
            match fate {
                Fate::Throttled => lane.throttled += 1,
                _ => lane.backoff = true,
            }
            let key_hash = batch_key_hash(&self.settings, &meta, &entry);
            lane.entries.push(Waiting {
                entry,
                meta,
                key_hash,
            });
        }
        let waited = now.saturating_duration_since(oldest);
        if waited > self.settings.retry_timeout {
            return Some(waited);
        }
        for (lane, retries) in per_lane {
            self.retry_lane(t, lane, retries, now);
        }
        None
    }

    /// Puts one lane's refused entries back, to go after its allowance
    /// (throttled ones on a paced lane) or after a backoff.
    fn retry_lane(&mut self, t: usize, lane: u32, retries: LaneRetries, now: Instant) {
        let count = retries.entries.len();
        for w in &retries.entries {
            self.hold(w.meta.record);
        }
        self.sent.retried_entries += count as u64;
        self.sent.throttled_entries += retries.throttled as u64;
        let l = self.targets[t].lanes.lane(lane);
        let paced = l.allowance.is_some();
        // A throttled entry of a paced lane waits for the shard's allowance;
        // anything else waits a backoff, longer for each answer in a row that
        // stored nothing of the lane.
        let at = if retries.backoff || !paced {
            let delay = backoff_delay(l.failures);
            l.failures = l.failures.saturating_add(1);
            Some(now + delay)
        } else {
            None
        };
        if paced {
            self.pacing.requeued += retries.throttled as u64;
        }
        self.targets[t].lanes.retry(lane, retries.entries, at);
        self.note_waiting(t, lane);
    }

    /// The error that ends the run: `refusal` for `batch`, whose entries
    /// `unsent` picks were not accepted (after `gave_up_after` of retries).
    fn refused(
        &self,
        batch: &Batch,
        refusal: Refusal,
        gave_up_after: Option<Duration>,
        unsent: impl Fn(usize) -> bool,
    ) -> DeliveryError {
        let unsent = (0..batch.len())
            .filter(|&i| unsent(i))
            .map(|i| batch.meta(i).records as usize)
            .sum();
        DeliveryError {
            stream: batch.stream.clone(),
            refusal: Box::new(refusal),
            unsent,
            gave_up_after,
        }
    }
}

/// What a result means for its entry.
fn fate_of(result: &EntryResult) -> Fate {
    match result {
        EntryResult::Stored => Fate::Stored,
        EntryResult::Refused(f) if f.is_throttle() => Fate::Throttled,
        EntryResult::Refused(_) => Fate::Again { unsure: false },
        EntryResult::Unconfirmed => Fate::Again { unsure: true },
    }
}

/// The key hash an entry sent again keeps its order by under keepKeyOrder:
/// its key's, as when it first joined a batch (an aggregate stands for its lane).
fn batch_key_hash(settings: &super::Settings, meta: &EntryMeta, entry: &[u8]) -> u64 {
    if !settings.keep_key_order {
        return 0;
    }
    if meta.records > 1 {
        return super::key_hash(&[b"aggregate of lane ", &meta.lane.to_le_bytes()[..]].concat());
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Key<'a> {
        #[serde(borrow)]
        partition_key: std::borrow::Cow<'a, str>,
    }
    serde_json::from_slice::<Key>(entry).map_or(0, |k| super::key_hash(k.partition_key.as_bytes()))
}
