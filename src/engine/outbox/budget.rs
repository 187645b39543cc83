//! The outbox's memory: what each target holds (open batch, aggregates,
//! waiting entries), batches closed and in flight, the budget they are kept
//! within, and batches kept for reuse.

use super::Outbox;
use crate::engine::batch::Batch;

impl Outbox {
    /// Brings `held` up to date with target `t`.
    pub(super) fn account(&mut self, t: usize) {
        let target = &mut self.targets[t];
        // The memory an open batch holds, used or not.
        let waiting = target.lanes.queued_bytes();
        let now =
            target.open.as_ref().map_or(0, Batch::capacity) + target.aggregate_bytes + waiting;
        self.held = self.held - target.held + now;
        target.held = now;
        self.waiting_bytes = self.waiting_bytes - target.waiting + waiting;
        target.waiting = waiting;
    }

    /// All the bytes the outbox answers for: what targets hold, and batches
    /// closed or in flight.
    pub(super) fn total(&self) -> usize {
        self.held + self.ready_bytes + self.in_flight_bytes
    }

    /// Past the budget, closes the oldest batches and aggregates: they are
    /// due soonest anyway, and with streams filled alike the oldest is the
    /// fullest. Only while what they hold is a good part of the budget, and
    /// then down to 3/4 of it, so that this happens now and then, not per
    /// record: entries waiting for their shards, or batches waiting for
    /// calls, cannot go sooner for it (the engine stops reading instead),
    /// and closing batches because of them would only make the calls small.
    pub(super) fn keep_within_budget(&mut self) {
        let sendable = |o: &Outbox| o.held - o.waiting_bytes;
        if self.total() <= self.budget || sendable(self) <= self.budget / 2 {
            return;
        }
        while sendable(self) > self.budget / 4 * 3 {
            let Some((_, t, due)) = self.due.pop_front() else {
                return;
            };
            self.close_due_one(t, due);
        }
    }

    /// Whether what the outbox holds (batches in flight included) passes the
    /// budget, so that reading input must wait.
    pub fn over_budget(&self) -> bool {
        self.total() > self.budget
    }

    /// Keeps a batch for reuse while that stays within the budget.
    pub(super) fn recycle(&mut self, batch: Batch) {
        let bytes = batch.capacity();
        if self.pool.len() < self.settings.reuse && self.pool_bytes + bytes <= self.budget / 2 {
            self.pool_bytes += bytes;
            self.pool.push(batch);
        }
    }

    /// Bytes of memory the outbox holds: open batches, aggregates, waiting
    /// entries, and batches kept for reuse.
    #[cfg(test)]
    pub fn held_bytes(&self) -> usize {
        self.held + self.pool_bytes
    }

    /// The memory the outbox's batches really hold (their capacity), counted
    /// afresh rather than from its own accounting.
    #[cfg(test)]
    pub(super) fn memory_in_use(&self) -> usize {
        let open: usize = self
            .targets
            .iter()
            .filter_map(|t| t.open.as_ref())
            .map(Batch::capacity)
            .sum();
        open + self.pool.iter().map(Batch::capacity).sum::<usize>()
    }

    /// The most bytes the outbox holds before it closes batches early.
    #[cfg(test)]
    pub fn budget(&self) -> usize {
        self.budget
    }
}
