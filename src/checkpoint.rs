//! Checkpointing: which STATE messages may be echoed, given which batches
//! Kinesis has accepted. A state waits for every batch opened before it.

use crate::protocol::{state_message, State, StateScope};
use std::collections::{BTreeSet, VecDeque};

/// Tracks open batches, record counts per state scope, and states waiting to be echoed.
#[derive(Debug, Default)]
pub struct Checkpoints {
    next_batch: u64,
    /// Batches opened and not yet accepted in full.
    outstanding: BTreeSet<u64>,
    /// States in input order, each with the highest batch id it waits for.
    waiting: VecDeque<(Option<u64>, String)>,
    /// Records since the last STREAM state, per catalog stream.
    per_stream: Vec<u64>,
    /// Records since the last GLOBAL or LEGACY state.
    global: u64,
    /// States echoed so far.
    echoed: u64,
}

impl Checkpoints {
    /// Tracking for a catalog of `streams` streams.
    pub fn new(streams: usize) -> Checkpoints {
        Checkpoints {
            per_stream: vec![0; streams],
            ..Checkpoints::default()
        }
    }

    /// Opens a new batch and returns its id.
    pub fn open_batch(&mut self) -> u64 {
        let id = self.next_batch;
        self.next_batch += 1;
        self.outstanding.insert(id);
        id
    }

    /// Notes that a batch was accepted in full.
    pub fn batch_done(&mut self, id: u64) {
        self.outstanding.remove(&id);
    }

    /// Counts one record of catalog stream `stream`.
    pub fn count_record(&mut self, stream: usize) {
        self.per_stream[stream] += 1;
        self.global += 1;
    }

    /// Queues a state; `stream` is its catalog stream for STREAM states.
    pub fn add_state(&mut self, state: &State<'_>, stream: Option<usize>) {
        let count = match (&state.scope, stream) {
            (StateScope::Stream { .. }, Some(i)) => std::mem::take(&mut self.per_stream[i]),
            (StateScope::Stream { .. }, None) => 0,
            (StateScope::Global | StateScope::Legacy, _) => {
                self.per_stream.iter_mut().for_each(|c| *c = 0);
                std::mem::take(&mut self.global)
            }
        };
        let last_batch = self.next_batch.checked_sub(1);
        self.waiting
            .push_back((last_batch, state_message(state.raw, count)));
    }

    /// The states that are now safe to echo, in input order.
    pub fn take_ready(&mut self) -> Vec<String> {
        let mut ready = Vec::new();
        let lowest_open = self.outstanding.first().copied();
        while let Some((waits_for, _)) = self.waiting.front() {
            let safe = match (waits_for, lowest_open) {
                (None, _) | (_, None) => true,
                (Some(w), Some(open)) => open > *w,
            };
            if !safe {
                break;
            }
            if let Some((_, message)) = self.waiting.pop_front() {
                ready.push(message);
            }
        }
        self.echoed += ready.len() as u64;
        ready
    }

    /// States received but not echoed.
    pub fn pending_states(&self) -> usize {
        self.waiting.len()
    }

    /// States echoed so far.
    pub fn echoed_states(&self) -> u64 {
        self.echoed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{parse_line, Message};

    fn with_state<R>(line: &str, f: impl FnOnce(&State<'_>) -> R) -> R {
        match parse_line(line.as_bytes()).unwrap() {
            Message::State(s) => f(&s),
            _ => panic!("not a state"),
        }
    }

    const LEGACY: &str = r#"{"type":"STATE","state":{"data":{"n":1}}}"#;

    #[test]
    fn state_waits_for_batches_opened_before_it() {
        let mut c = Checkpoints::new(1);
        let a = c.open_batch();
        c.count_record(0);
        with_state(LEGACY, |s| c.add_state(s, None));
        let b = c.open_batch();
        assert!(c.take_ready().is_empty());
        c.batch_done(b);
        assert!(
            c.take_ready().is_empty(),
            "a later batch does not release an earlier state"
        );
        c.batch_done(a);
        let ready = c.take_ready();
        assert_eq!(ready.len(), 1);
        assert!(ready[0].contains(r#""recordCount":1.0"#));
    }

    #[test]
    fn states_echo_in_order_and_immediately_when_nothing_is_open() {
        let mut c = Checkpoints::new(1);
        with_state(LEGACY, |s| c.add_state(s, None));
        with_state(LEGACY, |s| c.add_state(s, None));
        assert_eq!(c.take_ready().len(), 2);
        assert_eq!(c.echoed_states(), 2);
    }

    #[test]
    fn counts_per_scope() {
        let mut c = Checkpoints::new(2);
        c.count_record(0);
        c.count_record(0);
        c.count_record(1);
        let stream0 = r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"a"}}}}"#;
        with_state(stream0, |s| c.add_state(s, Some(0)));
        with_state(stream0, |s| c.add_state(s, Some(0)));
        with_state(LEGACY, |s| c.add_state(s, None));
        let ready = c.take_ready();
        assert!(ready[0].contains(r#""recordCount":2.0"#));
        assert!(ready[1].contains(r#""recordCount":0.0"#));
        assert!(ready[2].contains(r#""recordCount":3.0"#));
    }
}
