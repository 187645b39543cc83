//! Records up to the stream's own limit (`MaxRecordSizeInKiB`), against the
//! fault stand-in, which reports the limit as AWS does (emulators report
//! none: 1 MiB entries, 5 MiB requests) and refuses what breaks it: a record
//! that fits lands, in requests within 10 MiB; one that does not fails the
//! sync (`oversizeRecords: fail`) or is skipped and counted (`skip`); `put`
//! follows the same limits; created streams get `maxRecordSizeKiB`.

use crate::support::cli::cli;
use crate::support::live::record_number;
use crate::support::standin::{self, StandIn};
use crate::support::{catalog, record_line, run_as, run_write, state_line, Run, Stdout, TempDir};
use serde_json::{json, Value};

const MIB: usize = 1024 * 1024;

/// Record `i` of stream `s`, padded to about `pad` bytes of data.
fn rec(i: usize, pad: usize) -> String {
    record_line(
        None,
        "s",
        &format!("{{\"i\":{i},\"pad\":\"{}\"}}", "p".repeat(pad)),
        1_700_000_000_000,
    )
}

/// `write` of `input` into the stand-in, the catalog's streams `s` and `t`
/// going to `_s` and `_t`.
fn write(s: &StandIn, extra: Value, input: &str) -> Run {
    let run = run_write(
        &s.config(extra),
        &catalog(&[(None, "s"), (None, "t")]),
        input.as_bytes(),
    );
    standin::assert_no_secret("stdout", &run.stdout);
    standin::assert_no_secret("stderr", &run.stderr);
    run
}

/// The record numbers the stand-in stored, in order.
fn stored_numbers(s: &StandIn) -> Vec<usize> {
    s.stored().iter().map(record_number).collect()
}

#[test]
fn three_mib_records_land_in_a_stream_allowing_four() {
    let s = StandIn::start();
    s.add_stream_with_max_record_size("_s", 1, 4096);
    s.add_stream("_t", 1);
    // Four 3 MiB records and a small one: three fit a 10 MiB request.
    let mut input = String::new();
    for i in 0..4 {
        input.push_str(&rec(i, 3 * MIB));
    }
    input.push_str(&rec(4, 10));
    input.push_str(&state_line(0));
    // A long linger: batches close on size, not on time, however slow the build.
    let config = json!({"bufferSize": 500, "requestTimeoutSeconds": 60, "lingerMs": 10000});
    let run = write(&s, config, &input);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(stored_numbers(&s), [0, 1, 2, 3, 4]);
    let big = &s.stored()[0];
    assert!(big.data.len() > 3 * MIB, "{}", big.data.len());
    let sent: Value = serde_json::from_slice(&big.data).unwrap();
    let data: Value = serde_json::from_str(sent["_airbyte_data"].as_str().unwrap()).unwrap();
    assert_eq!(data["pad"].as_str().unwrap().len(), 3 * MIB);

    let puts = s.puts();
    let entries: Vec<usize> = puts.iter().map(|p| p.entries).collect();
    assert_eq!(entries, [3, 2], "requests of up to 10 MiB, not 5");
    assert!(puts[0].payload > 9 * MIB);
    assert!(puts
        .iter()
        .all(|p| p.payload <= standin::LARGE_REQUEST_BYTES));
    assert_eq!(run.states().len(), 1);
    assert_eq!(
        run.states()[0]["state"]["destinationStats"]["recordCount"],
        5.0
    );
}

#[test]
fn a_call_refused_for_its_size_is_split_and_the_stream_kept_to_smaller_calls() {
    let s = StandIn::start();
    // Reports 1 MiB records, so 10 MiB calls are allowed; takes only 5 MiB.
    s.add_stream_taking_requests_of("_s", 1024, 5 * MIB);
    s.add_stream("_t", 1);
    let mut input = String::new();
    for i in 0..40 {
        input.push_str(&rec(i, 900_000));
        if i % 10 == 9 {
            input.push_str(&state_line(i as u64 / 10));
        }
    }
    let config = json!({"bufferSize": 500, "requestTimeoutSeconds": 60, "lingerMs": 10000});
    let run = write(&s, config, &input);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let mut stored = stored_numbers(&s);
    stored.sort_unstable();
    assert_eq!(stored, (0..40).collect::<Vec<_>>(), "every record, once");
    assert_eq!(run.states().len(), 4, "every state echoed");
    let puts = s.puts();
    let refused = puts.iter().filter(|p| p.payload > 5 * MIB).count();
    assert!(refused >= 1, "a call over 5 MiB was tried and refused");
    assert_eq!(
        s.errors("InvalidArgumentException"),
        refused,
        "only those were refused"
    );
    // Once refused, the stream's calls stay within 5 MiB.
    let last_refused = puts.iter().rposition(|p| p.payload > 5 * MIB).unwrap_or(0);
    assert!(
        puts.len() - last_refused > 5,
        "the later calls: {:?}",
        puts.iter().map(|p| p.payload).collect::<Vec<_>>()
    );
}

#[test]
fn a_record_over_the_limit_fails_the_sync_by_default() {
    let s = StandIn::start();
    // Reports no MaxRecordSizeInKiB, as emulators: 1 MiB.
    s.add_stream("_s", 1);
    s.add_stream("_t", 1);
    let input = [
        rec(0, 10),
        rec(1, 10),
        state_line(0),
        rec(2, 2 * MIB),
        rec(3, 10),
        state_line(1),
    ]
    .concat();
    let run = write(&s, json!({}), &input);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.failure_type(), "system_error");
    let message = run.error_message();
    let size = 2 * MIB + 300;
    for part in [
        "input line 4",
        "stream `s`",
        "over the 1048576-byte limit of Kinesis stream `_s`",
        "`oversizeRecords`",
    ] {
        assert!(message.contains(part), "`{part}` in {message}");
    }
    // The size as Kinesis counts it (envelope and key), within a few bytes of the data.
    let said: usize = message
        .split(" is ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the record's size");
    assert!((2 * MIB..size).contains(&said), "{said}");
    assert_eq!(stored_numbers(&s), [0, 1], "earlier records kept");
    assert_eq!(run.states().len(), 1, "the state before it is echoed");
    assert_eq!(run.states()[0]["state"]["data"]["n"], 0);
}

#[test]
fn records_over_the_limit_are_skipped_and_counted_under_skip() {
    let s = StandIn::start();
    s.add_stream_with_max_record_size("_s", 1, 1024);
    s.add_stream("_t", 1);
    let t = |i: usize| {
        record_line(
            None,
            "t",
            &format!("{{\"i\":{i},\"pad\":\"\"}}"),
            1_700_000_000_000,
        )
    };
    let stream_state = |name: &str| {
        format!("{{\"type\":\"STATE\",\"state\":{{\"type\":\"STREAM\",\"stream\":{{\"stream_descriptor\":{{\"name\":\"{name}\"}},\"stream_state\":{{}}}}}}}}\n")
    };
    let input = [
        rec(0, 10),        // line 1
        state_line(0),     // 2: covers record 0
        rec(1, 2 * MIB),   // 3: skipped
        rec(2, 10),        // 4
        t(3),              // 5
        stream_state("s"), // 6: covers 1 (skipped) and 2
        stream_state("t"), // 7: covers 3
        rec(4, 10),        // 8
        rec(5, 3 * MIB),   // 9: skipped
        state_line(1),     // 10: covers 4, 5 (skipped) and the skipped 1
        rec(6, 10),        // 11
        state_line(2),     // 12: covers 6
    ]
    .concat();
    let run = write(&s, json!({"oversizeRecords": "skip"}), &input);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.error().is_none());
    let mut stored = stored_numbers(&s);
    stored.sort();
    assert_eq!(stored, [0, 2, 3, 4, 6], "later records go on");

    let states = run.states();
    assert_eq!(states.len(), 5, "every state echoed");
    let stats: Vec<&Value> = states
        .iter()
        .map(|st| &st["state"]["destinationStats"])
        .collect();
    // Without sourceStats, sent plus skipped is every record the destination
    // read for the state's scope.
    assert_eq!(*stats[0], json!({"recordCount": 1.0}));
    assert_eq!(
        *stats[1],
        json!({"recordCount": 1.0, "rejectedRecordCount": 1.0}),
        "stream s: record 2 sent, 1 skipped"
    );
    assert_eq!(*stats[2], json!({"recordCount": 1.0}), "stream t");
    // The LEGACY state counts every record since the last LEGACY one: 2, 3
    // and 4 sent, 1 and 5 skipped.
    assert_eq!(
        *stats[3],
        json!({"recordCount": 3.0, "rejectedRecordCount": 2.0})
    );
    assert_eq!(*stats[4], json!({"recordCount": 1.0}));

    let warned = run.logs_at("WARN");
    let about_s: Vec<&&str> = warned.iter().filter(|w| w.contains("`s`")).collect();
    assert!(!about_s.is_empty(), "{warned:?}");
    assert!(
        about_s
            .iter()
            .any(|w| w.contains("2 records") && w.contains("line 3")),
        "a WARN with the count and the first line: {warned:?}"
    );
    // The first skip of the stream is told as it happens, with its line.
    assert!(
        about_s
            .iter()
            .any(|w| w.contains("skipped, as `oversizeRecords` is `skip`") && w.contains("line 3")),
        "a WARN at the first skip: {warned:?}"
    );
    assert!(
        about_s.iter().all(|w| w.contains("1048576-byte limit")),
        "{warned:?}"
    );
    let infos = run.logs_at("INFO");
    let summary = infos.last().unwrap();
    assert!(
        summary.contains("skipped 2 records") && summary.contains("first on line 3"),
        "{summary}"
    );
    let figures = run.figures();
    assert_eq!(figures["skippedRecords"], 2);
    assert_eq!(figures["records"], 7, "skipped records were received");
    assert_eq!(figures["accepted"], 5);
}

/// A STREAM state of stream `name` whose source read `count` records for it.
fn stream_state_with_source_count(name: &str, count: u64) -> String {
    format!(
        "{{\"type\":\"STATE\",\"state\":{{\"type\":\"STREAM\",\"stream\":{{\"stream_descriptor\":{{\"name\":\"{name}\"}},\"stream_state\":{{}}}},\"sourceStats\":{{\"recordCount\":{count}.0}}}}}}\n"
    )
}

#[test]
fn skipped_records_keep_the_platforms_checksum() {
    // The platform's checksum: recordCount + rejectedRecordCount of each echoed
    // state equals the source's count for it (sourceStats.recordCount).
    let s = StandIn::start();
    s.add_stream_with_max_record_size("_s", 1, 1024);
    s.add_stream("_t", 1);
    let input = [
        rec(0, 10),
        rec(1, 2 * MIB), // skipped
        rec(2, 3 * MIB), // skipped
        rec(3, 10),
        stream_state_with_source_count("s", 4),
        stream_state_with_source_count("t", 0),
        rec(4, 2 * MIB), // skipped
        stream_state_with_source_count("s", 1),
        rec(5, 10),
        stream_state_with_source_count("s", 1),
    ]
    .concat();
    let run = write(&s, json!({"oversizeRecords": "skip"}), &input);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let states = run.states();
    assert_eq!(states.len(), 4, "every state echoed");
    let count = |v: &Value| v.as_f64().unwrap_or(0.0);
    for st in &states {
        let stats = &st["state"]["destinationStats"];
        let source = count(&st["state"]["sourceStats"]["recordCount"]);
        assert_eq!(
            count(&stats["recordCount"]) + count(&stats["rejectedRecordCount"]),
            source,
            "recordCount + rejectedRecordCount = sourceStats.recordCount: {st}"
        );
    }
    let sent: Vec<f64> = states
        .iter()
        .map(|st| count(&st["state"]["destinationStats"]["recordCount"]))
        .collect();
    assert_eq!(
        sent,
        [2.0, 0.0, 0.0, 1.0],
        "recordCount counts records sent only"
    );
    let mut stored = stored_numbers(&s);
    stored.sort();
    assert_eq!(stored, [0, 3, 5]);
}

#[test]
fn created_streams_take_max_record_size_from_the_config() {
    let s = StandIn::start();
    let input = [rec(0, 3 * MIB), state_line(0)].concat();
    let run = write(
        &s,
        json!({"maxRecordSizeKiB": 4096, "requestTimeoutSeconds": 60}),
        &input,
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        s.max_record_size_kib("_s"),
        Some(4096),
        "CreateStream carried it"
    );
    assert_eq!(
        stored_numbers(&s),
        [0],
        "and the new stream's limit is used"
    );

    // Without it, CreateStream leaves AWS's default: a 3 MiB record does not fit.
    let s = StandIn::start();
    let run = write(&s, json!({}), &input);
    assert_eq!(s.max_record_size_kib("_s"), None);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.error_message().contains("1048576-byte limit"));
}

/// `put` of `stdin` into the stand-in's `stream`.
fn put(s: &StandIn, stream: &str, stdin: &[u8]) -> Run {
    let dir = TempDir::new("put");
    let cfg = dir.file("config.json", s.config(json!({})).to_string().as_bytes());
    run_as(
        Stdout::Data,
        cli(&["put", "--stream", stream, "--config", cfg.to_str().unwrap()]),
        stdin,
    )
}

#[test]
fn put_follows_the_streams_limit() {
    let s = StandIn::start();
    s.add_stream_with_max_record_size("big", 1, 4096);
    s.add_stream("small", 1);
    let line = "x".repeat(3 * MIB);
    let input = format!("first\n{line}\nlast\n");

    let run = put(&s, "big", input.as_bytes());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stored = s.stored();
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[1].data.len(), 3 * MIB);
    assert!(s
        .puts()
        .iter()
        .all(|p| p.payload <= standin::LARGE_REQUEST_BYTES));

    let run = put(&s, "small", input.as_bytes());
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("input line 2") && run.stderr.contains("1048576 bytes"),
        "names the line and the limit: {}",
        run.stderr
    );
    assert!(run.stderr.contains("`small`"), "{}", run.stderr);
    let small: Vec<_> = s
        .stored()
        .into_iter()
        .filter(|r| r.stream == "small")
        .collect();
    assert!(
        small.iter().all(|r| r.data == b"first"),
        "nothing from the long line on"
    );
}
