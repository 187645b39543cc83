//! maxInFlight: several PutRecords at once against kinesis-local, with a proxy
//! that holds back some answers so later calls finish first. Every STATE must
//! still come out only once every record before it was accepted, whichever
//! call carried it; checked at the moment each state appears.

use crate::support::delay_proxy::DelayProxy;
use crate::support::*;
use destination_kinesis::kinesis::aggregate::{deaggregate, AggregateError};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

/// The input record numbers inside a Kinesis record (aggregated or not).
fn record_numbers(data: &[u8]) -> Vec<u64> {
    let envelopes = match deaggregate(data) {
        Ok(users) => users.into_iter().map(|u| u.data).collect(),
        Err(AggregateError::NotAggregated) => vec![data.to_vec()],
        Err(e) => panic!("a bad aggregate landed: {e}"),
    };
    envelopes
        .iter()
        .map(|e| {
            let envelope: Value = serde_json::from_slice(e).expect("envelope JSON");
            let data: Value = serde_json::from_str(envelope["_airbyte_data"].as_str().unwrap())
                .expect("data JSON");
            data["i"].as_u64().expect("record number")
        })
        .collect()
}

/// Writes `records` records alternating over streams `a` and `b`, a LEGACY
/// state carrying the count so far after every `state_every`, through a proxy
/// that delays the answer of every call `delay` picks; `flags` follow write's
/// own; the input stops for `pause` after each state. Returns the run's states.
fn write_checking_each_state(
    records: u64,
    pad: usize,
    state_every: u64,
    config: Value,
    flags: &[&str],
    delay: impl Fn(usize) -> Duration + Send + Sync + 'static,
    pause: Duration,
) -> (Vec<Value>, DelayProxy, KinesisLocal) {
    let kl = KinesisLocal::start();
    let proxy = DelayProxy::start(&kl.endpoint(), delay);
    let mut config = kl.config(config);
    config["endpoint"] = json!(proxy.endpoint());
    let mut input = vec![String::new()];
    for i in 0..records {
        let stream = if i % 2 == 0 { "a" } else { "b" };
        let data = format!("{{\"i\":{i},\"pad\":\"{}\"}}", "p".repeat(pad));
        let chunk = input.last_mut().expect("a chunk");
        chunk.push_str(&record_line(
            None,
            stream,
            &data,
            1_700_000_000_000 + i as i64,
        ));
        if (i + 1) % state_every == 0 {
            chunk.push_str(&state_line(i + 1));
            input.push(String::new());
        }
    }

    let dir = TempDir::new("in-flight");
    let cfg = dir.file("config.json", config.to_string().as_bytes());
    let cat = dir.file(
        "catalog.json",
        catalog(&[(None, "a"), (None, "b")]).to_string().as_bytes(),
    );
    let mut args = vec![
        "write",
        "--config",
        cfg.to_str().unwrap(),
        "--catalog",
        cat.to_str().unwrap(),
    ];
    args.extend_from_slice(flags);
    let mut child = command(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for chunk in input {
            let _ = stdin.write_all(chunk.as_bytes());
            std::thread::sleep(pause);
        }
    });
    let mut states = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let message: Value = serde_json::from_str(&line).expect("stdout is JSON");
        if message["type"] != "STATE" {
            continue;
        }
        // The answers that accepted these records went out before the state could.
        let covered = message["state"]["data"]["n"].as_u64().unwrap();
        let accepted: HashSet<u64> = proxy
            .accepted()
            .iter()
            .flat_map(|d| record_numbers(d))
            .collect();
        let missing: Vec<u64> = (0..covered).filter(|i| !accepted.contains(i)).collect();
        assert!(
            missing.is_empty(),
            "state {covered} echoed before records {missing:?} were accepted"
        );
        states.push(message);
    }
    feeder.join().unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    (states, proxy, kl)
}

fn assert_states_in_order(states: &[Value], records: u64, state_every: u64) {
    let covered: Vec<u64> = states
        .iter()
        .map(|s| s["state"]["data"]["n"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (1..=records / state_every)
        .map(|k| k * state_every)
        .collect();
    assert_eq!(covered, expected, "every state, once, in input order");
    for s in states {
        assert_eq!(
            s["state"]["destinationStats"]["recordCount"],
            state_every as f64
        );
    }
}

fn landed(kl: &KinesisLocal) -> Vec<u64> {
    let mut all: Vec<u64> = ["_a", "_b"]
        .iter()
        .flat_map(|s| kl.read_stored(s))
        .flat_map(|r| record_numbers(&r.data))
        .collect();
    all.sort_unstable();
    all
}

#[test]
fn states_wait_for_every_earlier_call_with_four_in_flight() {
    let (records, every) = (400, 10);
    // Calls 0, 3, 6, … answer late: the three after each finish first.
    let (states, proxy, kl) = write_checking_each_state(
        records,
        20,
        every,
        // The flag overrides the config's maxInFlight.
        json!({"maxInFlight": 1, "bufferSize": 10}),
        &["--max-in-flight", "4"],
        |n| Duration::from_millis(if n % 3 == 0 { 150 } else { 0 }),
        Duration::ZERO,
    );
    assert_states_in_order(&states, records, every);
    assert_eq!(proxy.calls(), 40, "ten records a call");
    let most = proxy.most_in_flight();
    assert!(
        (2..=4).contains(&most),
        "calls overlapped, never more than four: {most}"
    );
    assert_eq!(landed(&kl), (0..records).collect::<Vec<_>>());
}

#[test]
fn calls_in_flight_keep_their_connections_open_between_calls() {
    let (records, every) = (1600, 160);
    // The input comes in bursts of 16 calls' worth, each answer taking 100
    // ms, with a pause after each burst in which every connection is idle.
    let (states, proxy, kl) = write_checking_each_state(
        records,
        20,
        every,
        json!({"bufferSize": 10}),
        &["--max-in-flight", "16"],
        |_| Duration::from_millis(100),
        Duration::from_millis(500),
    );
    assert_states_in_order(&states, records, every);
    let (calls, most) = (proxy.calls(), proxy.most_in_flight());
    assert!(most >= 8, "calls overlapped: {most}");
    // A pool of 3 idle connections would close all but 3 after each burst
    // and open new ones for the next.
    assert!(
        proxy.connections() <= most + 8,
        "{} connections for {calls} calls, at most {most} at once",
        proxy.connections()
    );
    assert_eq!(landed(&kl), (0..records).collect::<Vec<_>>());
}

#[test]
fn aggregated_states_wait_for_the_aggregate_that_carries_their_records() {
    let (records, every) = (300, 25);
    // 10 KB records: five to an aggregate of at most 51,200 bytes, one
    // aggregate to a call.
    let (states, proxy, kl) = write_checking_each_state(
        records,
        10_000,
        every,
        json!({"maxInFlight": 4, "bufferSize": 1, "aggregation": true}),
        &[],
        |n| Duration::from_millis(if n == 0 { 300 } else { 0 }),
        Duration::ZERO,
    );
    assert_states_in_order(&states, records, every);
    assert!(
        (60..=66).contains(&proxy.calls()),
        "3 MB in aggregates of at most 51,200 bytes: {} calls",
        proxy.calls()
    );
    assert!(proxy.most_in_flight() >= 2, "aggregates overlapped");
    assert_eq!(landed(&kl), (0..records).collect::<Vec<_>>());
}
