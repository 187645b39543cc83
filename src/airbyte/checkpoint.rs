//! Checkpointing: which STATE messages may be echoed, given which input
//! records Kinesis has accepted. A state waits for every record read before it.

use crate::airbyte::protocol::{state_message, State, StateScope, StateStats};
use std::collections::VecDeque;

/// Records sent and rejected since a scope's last state: together, the
/// records received (the platform checks their sum against the source's count).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    records: u64,
    rejected: u64,
}

/// A catalog stream's counts, valid only in the generation they were made:
/// a GLOBAL or LEGACY state starts a new generation, which zeroes every
/// stream's counts at once rather than one by one.
#[derive(Debug, Default, Clone, Copy)]
struct StreamCounts {
    generation: u64,
    counts: Counts,
}

/// States waiting to be echoed, and record counts per state scope.
#[derive(Debug, Default)]
pub struct Checkpoints {
    /// States in input order, each with the number of records read before it.
    waiting: VecDeque<(u64, String)>,
    /// Counts since the last STREAM state, per catalog stream.
    per_stream: Vec<StreamCounts>,
    /// Counts since the last GLOBAL or LEGACY state.
    global: Counts,
    generation: u64,
    /// States echoed so far.
    echoed: u64,
}

impl Checkpoints {
    /// Tracking for a catalog of `streams` streams.
    pub fn new(streams: usize) -> Checkpoints {
        Checkpoints {
            per_stream: vec![StreamCounts::default(); streams],
            ..Checkpoints::default()
        }
    }

    fn counts_of(&mut self, stream: usize) -> &mut Counts {
        let generation = self.generation;
        let entry = &mut self.per_stream[stream];
        if entry.generation != generation {
            *entry = StreamCounts {
                generation,
                counts: Counts::default(),
            };
        }
        &mut entry.counts
    }

    /// Counts one record of catalog stream `stream` that was received and sent.
    pub fn count_record(&mut self, stream: usize) {
        self.counts_of(stream).records += 1;
        self.global.records += 1;
    }

    /// Counts one record of catalog stream `stream` that was received and
    /// deliberately not sent: in `rejectedRecordCount`, not in `recordCount`.
    pub fn count_rejected(&mut self, stream: usize) {
        self.counts_of(stream).rejected += 1;
        self.global.rejected += 1;
    }

    /// Queues a state that came after `records_before` records were read;
    /// `stream` is its catalog stream for STREAM states.
    pub fn add_state(&mut self, state: &State<'_>, stream: Option<usize>, records_before: u64) {
        let counts = match (&state.scope, stream) {
            (StateScope::Stream { .. }, Some(i)) => std::mem::take(self.counts_of(i)),
            (StateScope::Stream { .. }, None) => Counts::default(),
            (StateScope::Global | StateScope::Legacy, _) => {
                self.generation += 1;
                std::mem::take(&mut self.global)
            }
        };
        let stats = StateStats {
            records: counts.records,
            rejected: counts.rejected,
        };
        self.waiting
            .push_back((records_before, state_message(state.raw, stats)));
    }

    /// The states that are now safe to echo, in input order, given the
    /// number of the first record not yet accepted (None: all are).
    pub fn take_ready(&mut self, lowest_unaccepted: Option<u64>) -> Vec<String> {
        let mut ready = Vec::new();
        while let Some((records_before, _)) = self.waiting.front() {
            if lowest_unaccepted.is_some_and(|lowest| lowest < *records_before) {
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
    use crate::airbyte::protocol::{parse_line, Message};

    fn with_state<R>(line: &str, f: impl FnOnce(&State<'_>) -> R) -> R {
        match parse_line(line.as_bytes()).unwrap() {
            Message::State(s) => f(&s),
            _ => panic!("not a state"),
        }
    }

    const LEGACY: &str = r#"{"type":"STATE","state":{"data":{"n":1}}}"#;
    const STREAM0: &str =
        r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"a"}}}}"#;

    #[test]
    fn a_state_waits_for_the_records_before_it() {
        let mut c = Checkpoints::new(1);
        c.count_record(0);
        c.count_record(0);
        with_state(LEGACY, |s| c.add_state(s, None, 2));
        assert!(c.take_ready(Some(0)).is_empty());
        assert!(
            c.take_ready(Some(1)).is_empty(),
            "record 1 is not accepted yet"
        );
        let ready = c.take_ready(Some(2));
        assert_eq!(ready.len(), 1, "records after the state do not hold it");
        assert!(ready[0].contains(r#""recordCount":2.0"#));
        assert!(!ready[0].contains("rejectedRecordCount"));
    }

    #[test]
    fn states_echo_in_order_and_immediately_when_nothing_is_open() {
        let mut c = Checkpoints::new(1);
        with_state(LEGACY, |s| c.add_state(s, None, 0));
        with_state(LEGACY, |s| c.add_state(s, None, 0));
        assert_eq!(c.take_ready(None).len(), 2);
        assert_eq!(c.echoed_states(), 2);
        assert_eq!(c.pending_states(), 0);
    }

    #[test]
    fn counts_per_scope() {
        let mut c = Checkpoints::new(2);
        c.count_record(0);
        c.count_rejected(0);
        c.count_record(1);
        with_state(STREAM0, |s| c.add_state(s, Some(0), 3));
        with_state(STREAM0, |s| c.add_state(s, Some(0), 3));
        with_state(LEGACY, |s| c.add_state(s, None, 3));
        c.count_record(0);
        with_state(STREAM0, |s| c.add_state(s, Some(0), 4));
        let ready = c.take_ready(None);
        // Sent and rejected are apart: their sum is what was received.
        assert!(
            ready[0].contains(r#""recordCount":1.0,"rejectedRecordCount":1.0"#),
            "{}",
            ready[0]
        );
        assert!(ready[1].contains(r#""recordCount":0.0"#));
        assert!(ready[2].contains(r#""recordCount":2.0,"rejectedRecordCount":1.0"#));
        // The GLOBAL state zeroed stream 0's count.
        assert!(ready[3].contains(r#""recordCount":1.0}"#), "{}", ready[3]);
    }
}
