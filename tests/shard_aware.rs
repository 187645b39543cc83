//! Shard-aware pacing (issue 14), through the binary against `shard_sink`:
//! a loopback Kinesis whose shards have real limits (token buckets of records
//! and bytes, a second of burst) and that splits shards on a schedule. Counts,
//! not timings, decide: throttled entries per accepted record, losses and
//! duplicates, which shard took what. The figures for the scenarios at
//! full scale are `make bench`'s (BENCHMARKS.md, "Shards with real limits").

use crate::bench::shard_sink::{
    even_ranges, hash_of, Limits, PlannedSplit, Report, ShardSink, Tracking,
};
use crate::support::{catalog_s, record_line, run_write, state_line, Run};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// `shards` shards with Kinesis's own limits (1,000 records/s, 1 MiB/s).
fn limits(shards: usize) -> Limits {
    Limits {
        shards,
        ..Limits::default()
    }
}

/// Runs `write` on `input` against a fresh sink with `limits` and the
/// config's `extra` fields; gives the run and what the sink saw.
fn run(limits: Limits, split: Option<PlannedSplit>, extra: Value, input: &[u8]) -> (Run, Report) {
    let sink = ShardSink::start(limits).expect("start the shard sink");
    sink.reset(limits, Instant::now());
    sink.track(Some(Tracking {
        id_field: "id".to_string(),
        sent_field: None,
    }));
    if let Some(split) = split {
        sink.plan_split(split);
    }
    let mut config = json!({
        "endpoint": sink.endpoint(),
        "region": "us-east-1",
        "accessKey": "AKIDSHARDS",
        "privateKey": "shard-secret",
        "bufferSize": 500,
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    let run = run_write(&config, &catalog_s(), input);
    (run, sink.report())
}

/// `n` records of stream `s` numbered from `from`, each with the partition
/// key `key(i)` in its `customer` field, and a state after every 500.
fn records(from: usize, n: usize, key: impl Fn(usize) -> String) -> String {
    let mut input = String::new();
    for i in from..from + n {
        let data = json!({"id": i, "customer": key(i), "pad": "x".repeat(100)});
        input.push_str(&record_line(
            None,
            "s",
            &data.to_string(),
            1_700_000_000_000,
        ));
        if (i + 1) % 500 == 0 {
            input.push_str(&state_line(i as u64));
        }
    }
    input
}

/// A key whose MD5 falls in shard `shard` of `shards` even ranges.
fn key_on(shard: usize, shards: usize, nth: usize) -> String {
    let (low, high) = even_ranges(shards)[shard];
    (0..)
        .map(|i| format!("customer-{i}"))
        .filter(|k| (low..=high).contains(&hash_of(k)))
        .nth(nth)
        .unwrap_or_default()
}

/// Every record accepted once, every state echoed, exit 0.
fn assert_complete(run: &Run, report: &Report, records: u64, states: usize) {
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report.lost(records), 0, "records lost");
    assert_eq!(report.duplicates(), 0, "records accepted twice");
    assert_eq!(run.states().len(), states, "states echoed");
}

fn throttled_share(report: &Report) -> f64 {
    report.throttled as f64 / report.accepted.max(1) as f64
}

#[test]
fn pacing_keeps_shards_from_throttling_where_retries_alone_do_not() {
    // 8,000 records at once into two shards: four times what they take in
    // a second, twice that with their saved burst.
    let shards = limits(2);
    let input = records(0, 8_000, |i| format!("k{i}"));
    let key = json!({"partitionKey": "/customer"});
    let mut share = Vec::new();
    for limit in [0, 100] {
        let mut extra = key.clone();
        extra["shardRateLimit"] = json!(limit);
        let (run, report) = run(shards, None, extra, input.as_bytes());
        assert_complete(&run, &report, 8_000, 16);
        assert_eq!(run.figures()["accepted"], 8_000);
        share.push(throttled_share(&report));
        if limit > 0 {
            // Paced, the records waited for their shards: they were counted so.
            assert!(run.figures()["pacedRecords"].as_u64().unwrap_or(0) > 2_000);
            // ...and went in full batches all the same: not a call per record.
            assert!(report.put_calls < 200, "{} calls", report.put_calls);
        }
    }
    assert!(
        share[0] >= 0.2,
        "off: {:.3} throttled per accepted",
        share[0]
    );
    assert!(
        share[1] <= 0.05,
        "paced: {:.3} throttled per accepted",
        share[1]
    );
}

#[test]
fn a_hot_key_does_not_hold_back_the_other_shard() {
    // One key takes 4,000 records (4 s of its shard); 800 records of keys
    // on the other shard come between them.
    let shards = limits(2);
    let hot = key_on(0, 2, 0);
    let cold: Vec<String> = (0..20).map(|n| key_on(1, 2, n)).collect();
    let input = records(0, 4_800, |i| {
        if i % 6 == 5 {
            cold[i % cold.len()].clone()
        } else {
            hot.clone()
        }
    });
    let extra = json!({"partitionKey": "/customer", "shardRateLimit": 100});
    let (run, report) = run(shards, None, extra, input.as_bytes());
    assert_complete(&run, &report, 4_800, 9);
    let by_shard: Vec<_> = report.shards().collect();
    let (hot_shard, cold_shard) = (by_shard[0], by_shard[1]);
    assert_eq!((hot_shard.accepted, cold_shard.accepted), (4_000, 800));
    assert_eq!(cold_shard.throttled, 0, "the cold shard never throttled");
    assert!(
        hot_shard.throttled <= 200,
        "the hot shard throttled {} times",
        hot_shard.throttled
    );
    // The cold shard's records did not queue behind the hot key's: its last
    // was in before the hot shard had taken half of its backlog.
    let cold_done = cold_shard.accepted_at.last().copied().unwrap_or_default();
    let hot_half = hot_shard.accepted_at[hot_shard.accepted_at.len() / 2];
    assert!(
        cold_done < hot_half,
        "cold shard done at {cold_done:?}, hot shard half done at {hot_half:?}"
    );
}

#[test]
fn a_split_shard_is_found_and_its_children_used_without_loss() {
    // One shard splits 1.5 s in; 6,000 records at once.
    let shards = limits(1);
    let split = PlannedSplit {
        shard: 0,
        at: Duration::from_millis(1_500),
    };
    let input = records(0, 6_000, |i| format!("k{i}"));
    let extra = json!({"partitionKey": "/customer", "shardRateLimit": 100});
    let (run, report) = run(shards, Some(split), extra, input.as_bytes());
    assert_complete(&run, &report, 6_000, 12);
    assert!(run.figures()["shardMapChanges"].as_u64().unwrap_or(0) >= 1);
    let all: Vec<_> = report.shards().collect();
    assert_eq!(all.len(), 3, "the parent and two children: {all:?}");
    let children: Vec<_> = all.iter().filter(|s| s.parent.is_some()).collect();
    assert!(
        children.iter().all(|c| c.accepted > 500),
        "both children took records: {:?}",
        children.iter().map(|c| c.accepted).collect::<Vec<_>>()
    );
    // The map was read again at the first answer naming a shard it did not
    // know, not once per throttle: a handful of ListShards calls.
    assert!(
        report.list_shards_calls <= 4,
        "{} ListShards",
        report.list_shards_calls
    );
}
