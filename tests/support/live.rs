//! Running `write` against the stand-in while watching it: stdout is read line
//! by line as the program writes it, and for each line the stand-in's accept
//! counter at that moment is noted, so a test can prove that every STATE came
//! only after the records before it were stored.

use super::standin::{self, StandIn, Stored};
use super::{write_command, Run, Stdout, TempDir};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin};
use std::time::Instant;

/// Generated input: records `{"i":N,...}` over some streams, a LEGACY state
/// `{"data":{"n":k}}` every so many records.
pub struct Input {
    /// The stdin bytes.
    pub bytes: Vec<u8>,
    /// Records in it.
    pub records: usize,
    /// For state k, how many records come before it.
    pub boundaries: Vec<usize>,
}

/// `records` records spread over `streams` (round robin), a state after every
/// `state_every`, each record padded with `pad(i)` bytes.
pub fn input(
    records: usize,
    state_every: usize,
    streams: &[(Option<&str>, &str)],
    pad: impl Fn(usize) -> usize,
) -> Input {
    let mut bytes = Vec::new();
    let mut boundaries = Vec::new();
    for i in 0..records {
        let (ns, name) = streams[i % streams.len()];
        let data = format!("{{\"i\":{i},\"pad\":\"{}\"}}", "p".repeat(pad(i)));
        bytes.extend_from_slice(
            super::record_line(ns, name, &data, 1_700_000_000_000 + i as i64).as_bytes(),
        );
        if (i + 1) % state_every == 0 {
            bytes.extend_from_slice(super::state_line(boundaries.len() as u64).as_bytes());
            boundaries.push(i + 1);
        }
    }
    Input {
        bytes,
        records,
        boundaries,
    }
}

/// The record number `i` in a stored record's envelope.
pub fn record_number(s: &Stored) -> usize {
    let env: Value = serde_json::from_slice(&s.data).expect("stored data is the envelope");
    let data: Value = serde_json::from_str(env["_airbyte_data"].as_str().expect("string data"))
        .expect("data is JSON");
    data["i"].as_u64().expect("record number") as usize
}

/// A started `write`, its config and catalog files kept alive.
pub struct Started {
    /// The process.
    pub child: Child,
    /// Its stdin (None once taken).
    pub stdin: Option<ChildStdin>,
    _dir: TempDir,
    started: Instant,
}

/// Starts `write` with the config and catalog, stdin, stdout and stderr piped.
pub fn start(config: &Value, catalog: &Value) -> Started {
    let (mut c, dir) = write_command(config, catalog);
    let mut child = c.spawn().expect("spawn the binary");
    let stdin = child.stdin.take();
    Started {
        child,
        stdin,
        _dir: dir,
        started: Instant::now(),
    }
}

impl Started {
    /// Sends `signal` (`TERM`, `INT`, `HUP`) with a real `kill`.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal}");
    }

    /// Reads stdout to its end, noting the accept counter at each line, then waits.
    pub fn watch(mut self, s: &StandIn) -> Run {
        let mut err = self.child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        let out = self.child.stdout.take().expect("stdout");
        let mut stdout = String::new();
        let mut stored_at = Vec::new();
        for line in BufReader::new(out).lines() {
            let line = line.expect("stdout is UTF-8");
            stored_at.push(s.stored_len());
            stdout.push_str(&line);
            stdout.push('\n');
        }
        let status = self.child.wait().expect("wait");
        let stderr = stderr.join().unwrap_or_default();
        assert!(
            !stderr.contains("panicked"),
            "the program panicked: {stderr}"
        );
        standin::assert_no_secret("stdout", &stdout);
        standin::assert_no_secret("stderr", &stderr);
        let mut run = Run::new(
            Stdout::Airbyte,
            status.code().unwrap_or(-1),
            stdout,
            stderr,
            self.started.elapsed(),
        );
        run.stored_at = stored_at;
        run
    }
}

impl Drop for Started {
    /// A run a failed test leaves behind is ended, not left reading its input.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `write` on `input` (stdin closed after it) and watches it.
pub fn run_live(s: &StandIn, config: &Value, catalog: &Value, input: Vec<u8>) -> Run {
    let mut started = start(config, catalog);
    let mut stdin = started.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        // The program may stop reading early (on an error): a broken pipe is fine.
        let _ = stdin.write_all(&input);
    });
    let live = started.watch(s);
    let _ = writer.join();
    live
}

/// What the stand-in holds, checked against the input and the echoed states.
#[derive(Debug)]
pub struct Delivery {
    /// Copies stored of each record number.
    pub copies: Vec<usize>,
    /// Records stored at least once.
    pub unique: usize,
    /// Extra copies (each stored by a request whose answer was withheld).
    pub duplicates: usize,
}

/// Checks the stand-in's records against `input` and the run: nothing
/// invented, every echoed state in order and only after every record before
/// it was stored, and no record stored twice through answers that arrived.
/// `complete`: every input record must be there.
pub fn check_delivery(s: &StandIn, input: &Input, live: &Run, complete: bool) -> Delivery {
    let stored = s.stored();
    let mut copies = vec![0usize; input.records];
    let mut answered = vec![0usize; input.records];
    // first[i]: how many records were stored when record i first was.
    let mut first = vec![usize::MAX; input.records];
    let mut lost = 0;
    for (at, r) in stored.iter().enumerate() {
        let i = record_number(r);
        assert!(
            i < input.records,
            "stored a record that was never sent: {i}"
        );
        copies[i] += 1;
        if r.answer_lost {
            lost += 1;
        } else {
            answered[i] += 1;
        }
        first[i] = first[i].min(at + 1);
    }
    for i in 0..input.records {
        assert!(
            answered[i] <= 1,
            "record {i} stored twice with answers that arrived"
        );
        if complete {
            assert!(copies[i] >= 1, "record {i} lost");
            assert_eq!(
                answered[i], 1,
                "record {i}: its last send must have been answered"
            );
        }
    }
    let states = live.state_arrivals();
    for (k, (n, at)) in states.iter().enumerate() {
        assert_eq!(*n, k, "states echoed in input order, none skipped");
        let before = input.boundaries[*n];
        let latest = first[..before].iter().copied().max().unwrap_or(0);
        if let Some(missing) = first[..before].iter().position(|f| *f == usize::MAX) {
            panic!("state {n} echoed, but record {missing} before it was never stored");
        }
        assert!(
            latest <= *at,
            "state {n} echoed when {at} records were stored, but a record before it was stored as number {latest}"
        );
    }
    let puts = s.puts();
    assert!(puts.iter().all(|p| p.entries <= standin::MAX_ENTRIES));
    assert!(puts.iter().all(|p| p.payload <= standin::MAX_REQUEST_BYTES));
    let unique = copies.iter().filter(|c| **c > 0).count();
    let duplicates = stored.len() - unique;
    assert_eq!(duplicates, lost, "every duplicate comes from a lost answer");
    Delivery {
        copies,
        unique,
        duplicates,
    }
}
