//! Nothing lost, nothing invented: the program writes thousands of records to
//! the fault-injecting stand-in (`support/standin.rs`) through throttling,
//! failed entries, 5xx, dropped connections, lost and slow answers, a skewed
//! clock, streams that stay CREATING or vanish, refused permissions, and
//! SIGTERM/SIGINT/SIGHUP; the stand-in's records are compared with the input and
//! with the moment each STATE was echoed.

use crate::support;
use crate::support::live::{check_delivery, input, run_live, start, Started};
use crate::support::standin::{mix, Call, Fault, StandIn};
use crate::support::{catalog, record_line, state_line, Run};
use serde_json::json;
use std::io::Write;
use std::time::{Duration, Instant};

/// The entries in PutRecords requests whose outcome the program cannot know
/// (no answer, or a 5xx).
fn unknown_outcome_entries(s: &StandIn) -> u64 {
    s.puts()
        .iter()
        .filter(|p| match &p.fault {
            Fault::CloseBeforeStore | Fault::CloseAfterStore | Fault::SlowAnswer(_) => true,
            Fault::Reject { status, .. } => *status >= 500,
            _ => false,
        })
        .map(|p| p.entries as u64)
        .sum()
}

#[test]
fn thousands_of_records_through_mixed_faults() {
    let s = StandIn::start();
    s.add_stream("_a", 2);
    // `n_b` does not exist: the program creates it (CREATING, then ACTIVE).
    s.script(|c: &Call| {
        if c.op != "PutRecords" {
            return if c.op == "DescribeStreamSummary" && c.n == 0 {
                Fault::throttle()
            } else {
                Fault::None
            };
        }
        match mix(c.n, 1) % 20 {
            0 | 1 => Fault::FailEntries {
                code: "ProvisionedThroughputExceededException",
                per_mille: 300,
            },
            2 | 3 => Fault::FailEntries {
                code: "InternalFailure",
                per_mille: 200,
            },
            4 => Fault::throttle(),
            5 => Fault::server_error(500),
            6 => Fault::server_error(503),
            7 => Fault::CloseBeforeStore,
            8 | 9 => Fault::CloseAfterStore,
            _ => Fault::None,
        }
    });
    let streams = [(None, "a"), (Some("n"), "b")];
    let input = input(4000, 97, &streams, |i| i % 50);
    let config = s.config(json!({"bufferSize": 100, "maxInFlight": 3}));
    let live = run_live(&s, &config, &catalog(&streams), input.bytes.clone());
    assert_eq!(live.code, 0, "{}\n{}", live.stdout, live.stderr);
    let d = check_delivery(&s, &input, &live, true);
    assert_eq!(
        live.states().len(),
        input.boundaries.len(),
        "every state echoed"
    );
    assert_eq!(d.unique, 4000);
    assert!(
        d.duplicates > 0,
        "lost answers were injected, so duplicates exist"
    );
    // Each record sent again after an answer was lost counts once, however
    // often that happened to it: never more than the calls that lost answers
    // carried, nor than the records, nor fewer than the copies that landed.
    let possible = live.figures()["possibleDuplicates"].as_u64().unwrap();
    assert!(
        possible <= unknown_outcome_entries(&s) && possible <= 4000,
        "{possible} possible duplicates: at most {} entries lost their answers",
        unknown_outcome_entries(&s)
    );
    assert!(
        d.duplicates as u64 <= possible,
        "{} landed twice",
        d.duplicates
    );
    assert_eq!(
        live.figures()["records"],
        4000,
        "the final LOG counts every record read"
    );
    assert!(s
        .streams()
        .contains(&("n_b".to_string(), "ACTIVE".to_string())));
    let faults: Vec<_> = s.puts().iter().map(|p| format!("{:?}", p.fault)).collect();
    for kind in [
        "FailEntries",
        "ProvisionedThroughput",
        "InternalFailure",
        "500",
        "503",
        "CloseBeforeStore",
        "CloseAfterStore",
    ] {
        assert!(
            faults.iter().any(|f| f.contains(kind)),
            "fault {kind} was injected"
        );
    }
    eprintln!(
        "mixed faults: {} PutRecords, {} stored, {} duplicates, program said {possible} possible",
        s.puts().len(),
        s.stored_len(),
        d.duplicates
    );
}

#[test]
fn a_state_follows_its_own_records_not_the_rest_of_their_call() {
    for pacing in [0, 100] {
        let s = StandIn::start();
        s.add_stream("_a", 1);
        s.script(|c: &Call| match c.op.as_str() {
            "PutRecords" => Fault::FailEntriesWith {
                code: "ProvisionedThroughputExceededException",
                needle: "refused-forever",
            },
            _ => Fault::None,
        });
        let streams = [(None, "a")];
        // 100 records, state 0, a record Kinesis keeps refusing, state 1: all
        // in one call.
        let mut input = input(100, 100, &streams, |_| 10).bytes;
        input.extend(record_line(None, "a", r#"{"i":100,"pad":"refused-forever"}"#, 1).as_bytes());
        input.extend(state_line(1).as_bytes());
        let config = s.config(json!({
            "bufferSize": 500,
            "retryTimeoutSeconds": 4,
            "shardRateLimit": pacing
        }));
        let mut started = start(&config, &catalog(&streams));
        let began = Instant::now();
        let mut stdin = started.stdin.take().unwrap();
        stdin.write_all(&input).unwrap();
        drop(stdin);
        let stdout = started.child.stdout.take().unwrap();
        let mut states = Vec::new();
        let mut lines = Vec::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let line = line.unwrap();
            if line.contains(r#""type":"STATE""#) {
                states.push((began.elapsed(), line.clone()));
            }
            lines.push(line);
        }
        let status = started.child.wait().unwrap();
        assert_eq!(status.code(), Some(1), "shardRateLimit {pacing}: {lines:?}");
        assert_eq!(
            states.len(),
            1,
            "shardRateLimit {pacing}: only the first state"
        );
        let (at, first) = &states[0];
        assert!(first.contains(r#""n":0"#), "{first}");
        assert!(
            *at < Duration::from_secs(2),
            "shardRateLimit {pacing}: echoed after {at:?}, not when its records were accepted"
        );
        let trace = lines
            .iter()
            .find(|l| l.contains(r#""type":"TRACE""#))
            .expect("a TRACE error");
        assert!(
            trace.contains("gave up after retrying") && trace.contains("refused for throughput"),
            "{trace}"
        );
        assert_eq!(s.stored_len(), 100, "the refused record never landed");
    }
}

#[test]
fn final_figures_count_what_kinesis_accepted_and_each_possible_duplicate_once() {
    // The first four calls store their records but lose the answer: the
    // same 200 records are sent five times.
    let s = StandIn::start();
    s.add_stream("_a", 1);
    s.script(|c: &Call| match (c.op.as_str(), c.n) {
        ("PutRecords", n) if n < 4 => Fault::CloseAfterStore,
        _ => Fault::None,
    });
    let streams = [(None, "a")];
    let input = input(200, 200, &streams, |_| 50);
    let config = s.config(json!({"bufferSize": 500, "maxInFlight": 1}));
    let live = run_live(&s, &config, &catalog(&streams), input.bytes.clone());
    assert_eq!(live.code, 0, "{}\n{}", live.stdout, live.stderr);
    let d = check_delivery(&s, &input, &live, true);
    assert_eq!(
        d.duplicates, 800,
        "four lost answers: four more copies of each"
    );
    let figures = live.figures();
    assert_eq!(
        figures["possibleDuplicates"], 200,
        "each record counted once, however often it was sent again"
    );
    // The bytes Kinesis accepted: each record's data and key, once.
    let mut once = std::collections::HashMap::new();
    for r in s.stored() {
        once.insert(
            support::live::record_number(&r),
            r.data.len() + r.partition_key.len(),
        );
    }
    assert_eq!(
        figures["kinesisBytes"].as_u64().unwrap() as usize,
        once.values().sum::<usize>()
    );

    // A stream that stores nothing: nothing accepted, no bytes.
    let s = StandIn::start();
    s.add_stream("_a", 1);
    s.script(|c: &Call| match c.op.as_str() {
        "PutRecords" => Fault::FailEntries {
            code: "InternalFailure",
            per_mille: 1000,
        },
        _ => Fault::None,
    });
    let config = s.config(json!({"retryTimeoutSeconds": 1}));
    let live = run_live(&s, &config, &catalog(&streams), input.bytes.clone());
    assert_eq!(live.code, 1);
    let figures = live.figures();
    assert_eq!(
        (
            figures["accepted"].as_u64(),
            figures["kinesisBytes"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert!(
        live.logs()
            .iter()
            .any(|l| l.contains("Kinesis accepted 0 records (0 bytes)")),
        "{:?}",
        live.logs()
    );
}

#[test]
fn slow_answers_past_the_request_timeout_give_duplicates_only() {
    let s = StandIn::start();
    s.add_stream("_a", 1);
    s.script(|c: &Call| match (c.op.as_str(), c.n) {
        ("PutRecords", 2) | ("PutRecords", 9) => Fault::SlowAnswer(Duration::from_millis(1600)),
        ("PutRecords", n) if n % 7 == 3 => Fault::FailEntries {
            code: "InternalFailure",
            per_mille: 500,
        },
        _ => Fault::None,
    });
    let streams = [(None, "a")];
    let input = input(1500, 60, &streams, |_| 20);
    let config = s.config(json!({"bufferSize": 100, "requestTimeoutSeconds": 1}));
    let live = run_live(&s, &config, &catalog(&streams), input.bytes.clone());
    assert_eq!(live.code, 0, "{}\n{}", live.stdout, live.stderr);
    let d = check_delivery(&s, &input, &live, true);
    assert_eq!(d.unique, 1500);
    assert_eq!(d.duplicates, 200, "two slow answers of 100 records each");
    assert_eq!(live.figures()["possibleDuplicates"], 200);
}

#[test]
fn five_mib_and_500_entry_limits_hold_with_big_records() {
    let s = StandIn::start();
    s.add_stream("_big", 2);
    s.script(|c: &Call| match (c.op.as_str(), c.n % 5) {
        ("PutRecords", 1) => Fault::FailEntries {
            code: "ProvisionedThroughputExceededException",
            per_mille: 400,
        },
        ("PutRecords", 3) => Fault::CloseAfterStore,
        _ => Fault::None,
    });
    let streams = [(None, "big")];
    // Mostly small records with big ones among them: both limits bind.
    let input = input(
        1200,
        100,
        &streams,
        |i| if i % 40 == 0 { 900_000 } else { 300 },
    );
    // Generous: the stand-in decodes 5 MiB bodies in a debug build. A long
    // linger closes batches by their limits alone, not by how soon a call
    // was free to take them.
    let config = s.config(json!({
        "bufferSize": 500,
        "requestTimeoutSeconds": 30,
        "lingerMs": 10000
    }));
    let live = run_live(&s, &config, &catalog(&streams), input.bytes.clone());
    assert_eq!(live.code, 0, "{}\n{}", live.stdout, live.stderr);
    let d = check_delivery(&s, &input, &live, true);
    let puts = s.puts();
    let fullest = puts.iter().map(|p| p.payload).max().unwrap();
    assert!(
        fullest > 4 * 1024 * 1024,
        "some request came close to 5 MiB: {fullest}"
    );
    assert!(puts.iter().all(|p| p.payload <= 5 * 1024 * 1024));
    assert!(puts.iter().all(|p| p.entries <= 500));
    eprintln!(
        "big records: {} PutRecords, fullest {fullest} bytes, {} duplicates",
        puts.len(),
        d.duplicates
    );
}

#[test]
fn retry_budget_exhaustion_fails_transiently_and_keeps_what_was_accepted() {
    let s = StandIn::start();
    s.add_stream("_a", 1);
    s.script(|c: &Call| match (c.op.as_str(), c.n) {
        ("PutRecords", n) if n < 3 => Fault::None,
        ("PutRecords", n) if n % 2 == 0 => Fault::throttle(),
        ("PutRecords", _) => Fault::server_error(503),
        _ => Fault::None,
    });
    let streams = [(None, "a")];
    let input = input(1000, 50, &streams, |_| 10);
    let config = s.config(json!({"bufferSize": 100, "retryTimeoutSeconds": 1}));
    let live = run_live(&s, &config, &catalog(&streams), input.bytes.clone());
    assert_eq!(live.code, 1, "{}", live.stdout);
    assert_eq!(live.failure_type(), "transient_error", "{}", live.stdout);
    assert!(
        live.error_message().contains("gave up after retrying"),
        "{}",
        live.error_message()
    );
    let d = check_delivery(&s, &input, &live, false);
    assert_eq!(d.unique, 300, "the three accepted batches stay");
    assert!((0..300).all(|i| d.copies[i] == 1));
    let echoed: Vec<usize> = live.state_arrivals().iter().map(|(n, _)| *n).collect();
    assert_eq!(
        echoed,
        (0..6).collect::<Vec<_>>(),
        "the states covered by 300 records, no more"
    );
    assert!(live.elapsed < Duration::from_secs(20));
}

#[test]
fn clock_skew_is_corrected_from_the_date_header_and_logged() {
    let s = StandIn::start();
    s.add_stream("_a", 1);
    // The server's clock is 40 minutes ahead: the first request is "expired".
    s.set_clock_offset(2400);
    let streams = [(None, "a")];
    let input = input(600, 100, &streams, |_| 10);
    let mut started = start(&s.config(json!({"bufferSize": 50})), &catalog(&streams));
    let mut stdin = started.stdin.take().unwrap();
    let half = input.bytes.len() / 2;
    let (first, rest) = (input.bytes[..half].to_vec(), input.bytes[half..].to_vec());
    let writer = std::thread::spawn(move || {
        stdin.write_all(&first).unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        stdin.write_all(&rest).unwrap();
    });
    // Once the first half is in, the server's clock jumps to 30 minutes behind.
    s.wait_for("the first half", |s| s.stored_len() >= 250);
    s.set_clock_offset(-1800);
    let live = started.watch(&s);
    writer.join().unwrap();
    assert_eq!(live.code, 0, "{}\n{}", live.stdout, live.stderr);
    check_delivery(&s, &input, &live, true);
    let warnings: Vec<&str> = live
        .logs()
        .into_iter()
        .filter(|m| m.contains("clock is off"))
        .collect();
    assert_eq!(warnings.len(), 2, "{:?}", live.logs());
    assert!(
        warnings[0].contains("Signature expired") && warnings[0].contains("offset +"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].contains("Signature not yet current") && warnings[1].contains("offset -"),
        "{}",
        warnings[1]
    );
    // Each skew costs the calls in flight when it came one refusal each, and
    // is told once.
    assert!(
        s.errors("InvalidSignatureException") >= 2,
        "{} refused",
        s.errors("InvalidSignatureException")
    );
}

#[test]
fn stream_that_stays_creating_fails_within_the_retry_budget() {
    let s = StandIn::start();
    s.set_stays_creating(true);
    let streams = [(None, "slow")];
    let input = input(10, 5, &streams, |_| 1);
    let config = s.config(json!({"retryTimeoutSeconds": 2}));
    let live = run_live(&s, &config, &catalog(&streams), input.bytes.clone());
    assert_eq!(live.code, 1);
    assert_eq!(live.failure_type(), "transient_error");
    assert!(
        live.error_message()
            .contains("still not writable after 2s (status CREATING)"),
        "{}",
        live.error_message()
    );
    assert!(live.states().is_empty());
    assert_eq!(s.stored_len(), 0);
}

#[test]
fn new_streams_are_created_side_by_side() {
    let s = StandIn::start();
    s.set_stays_creating(true);
    let streams = [(None, "s1"), (None, "s2"), (None, "s3"), (None, "s4")];
    let input = input(8, 4, &streams, |_| 1);
    let config = s.config(json!({"retryTimeoutSeconds": 2}));
    let live = run_live(&s, &config, &catalog(&streams), input.bytes.clone());
    assert_eq!(live.code, 1);
    // One stream's wait ran out; the others were created meanwhile, not after it.
    assert!(
        live.error_message().contains("still not writable after 2s"),
        "{}",
        live.error_message()
    );
    let created = s.seen().iter().filter(|c| c.op == "CreateStream").count();
    assert_eq!(created, 4, "every stream was created within one wait");
}

/// From PutRecords number `from` on, `fault`: the program must stop with a
/// config error naming `code`, keeping the batches and states before it.
fn refused_mid_sync(from: u64, fault: Fault, code: &str) -> StandIn {
    let s = StandIn::start();
    s.add_stream("_a", 1);
    s.script(move |c: &Call| match (c.op.as_str(), c.n) {
        ("PutRecords", n) if n >= from => fault.clone(),
        _ => Fault::None,
    });
    let streams = [(None, "a")];
    let input = input(700, 100, &streams, |_| 10);
    // One call at a time, so that the calls before the fault are the first
    // batches (with more in flight, each call out when the fault starts is
    // refused once too).
    let live = run_live(
        &s,
        &s.config(json!({"maxInFlight": 1})),
        &catalog(&streams),
        input.bytes.clone(),
    );
    assert_eq!(live.code, 1);
    assert_eq!(live.failure_type(), "config_error", "{}", live.stdout);
    assert!(
        live.error_message().contains(code),
        "{}",
        live.error_message()
    );
    let d = check_delivery(&s, &input, &live, false);
    assert_eq!(d.unique, from as usize * 100, "the batches before stay");
    assert_eq!(
        live.states().len(),
        from as usize,
        "their states are echoed"
    );
    assert_eq!(s.errors(code), 1, "refusals are not retried");
    s
}

#[test]
fn stream_deleted_mid_sync_stops_with_earlier_records_and_states_kept() {
    let s = refused_mid_sync(4, Fault::DeleteStream, "ResourceNotFoundException");
    assert!(s.streams().is_empty());
}

#[test]
fn permission_denied_mid_sync_stops_cleanly() {
    refused_mid_sync(
        2,
        Fault::access_denied("PutRecords"),
        "AccessDeniedException",
    );
}

#[test]
fn expired_token_mid_sync_stops_cleanly() {
    let expired = Fault::Reject {
        status: 400,
        code: "ExpiredTokenException",
        message: "The security token included in the request is expired".into(),
    };
    refused_mid_sync(3, expired, "ExpiredTokenException");
}

/// Sends `signal` (TERM, INT) with a real `kill`, watches the run to its end,
/// and says how long it took to stop.
fn stop_with(started: Started, s: &StandIn, signal: &str) -> (Run, Duration) {
    started.signal(signal);
    let signalled = Instant::now();
    let live = started.watch(s);
    (live, signalled.elapsed())
}

/// Sends `signal` (TERM, HUP) while 250 records and the states they cover wait
/// in the buffer: they are sent, the states echoed, and a TRACE names the signal.
fn buffered_records_are_sent_on(signal: &str) {
    let s = StandIn::start();
    s.add_stream("_a", 1);
    let streams = [(None, "a")];
    let input = input(250, 125, &streams, |_| 10);
    let mut started = start(&s.config(json!({"bufferSize": 500})), &catalog(&streams));
    let mut stdin = started.stdin.take().unwrap();
    // Wait until the program is past its setup and reading.
    s.wait_for("the stream check", |s| {
        s.seen().iter().any(|c| c.op == "DescribeStreamSummary")
    });
    stdin.write_all(&input.bytes).unwrap();
    // Within the idle-flush second, nothing is sent yet: the 250 records wait in the buffer.
    std::thread::sleep(Duration::from_millis(400));
    let puts_before = s.puts().len();
    let (live, took) = stop_with(started, &s, signal);
    drop(stdin);
    assert!(
        took < Duration::from_secs(5),
        "stopped within a bounded time: {took:?}"
    );
    assert_eq!(live.code, 1, "{}\n{}", live.stdout, live.stderr);
    assert_eq!(live.failure_type(), "transient_error");
    assert!(
        live.error_message()
            .contains(&format!("cancelled by SIG{signal}")),
        "{}",
        live.stdout
    );
    let d = check_delivery(&s, &input, &live, true);
    assert_eq!(d.unique, 250);
    assert_eq!(
        live.states().len(),
        2,
        "the states covered by the buffered records are echoed"
    );
    eprintln!(
        "SIG{signal}: {puts_before} PutRecords before the signal, {} after",
        s.puts().len() - puts_before
    );
}

#[test]
fn sigterm_sends_what_is_buffered_and_echoes_covered_states() {
    buffered_records_are_sent_on("TERM");
}

/// A closed terminal or a supervisor's SIGHUP stops a sync like SIGTERM.
#[test]
fn sighup_sends_what_is_buffered_and_echoes_covered_states() {
    buffered_records_are_sent_on("HUP");
}

#[test]
fn sigint_during_a_steady_stream_stops_reading_and_keeps_the_checkpoint_rule() {
    let s = StandIn::start();
    s.add_stream("_a", 1);
    s.script(|c: &Call| match (c.op.as_str(), c.n % 4) {
        ("PutRecords", 1) => Fault::FailEntries {
            code: "ProvisionedThroughputExceededException",
            per_mille: 300,
        },
        _ => Fault::None,
    });
    let streams = [(None, "a")];
    let input = input(200_000, 40, &streams, |_| 10);
    let mut started = start(&s.config(json!({"bufferSize": 50})), &catalog(&streams));
    let mut stdin = started.stdin.take().unwrap();
    let bytes = input.bytes.clone();
    // A source that keeps producing and never closes stdin by itself.
    let writer = std::thread::spawn(move || {
        for chunk in bytes.chunks(4096) {
            if stdin.write_all(chunk).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_secs(60));
    });
    s.wait_for("a thousand records", |s| s.stored_len() >= 1000);
    let (live, took) = stop_with(started, &s, "INT");
    assert!(took < Duration::from_secs(12), "stopped after {took:?}");
    assert_eq!(live.code, 1);
    assert!(
        live.error_message().contains("cancelled by SIGINT"),
        "{}",
        live.error_message()
    );
    let d = check_delivery(&s, &input, &live, false);
    let read = live.figures()["records"].as_u64().unwrap() as usize;
    assert!(read < input.records, "it stopped reading");
    assert_eq!(d.unique, read, "everything read was sent");
    assert!((0..read).all(|i| d.copies[i] == 1));
    // Every state before the last record read was read, and is covered; one
    // right after it may or may not have been read before the signal.
    let surely = input.boundaries.iter().filter(|b| **b < read).count();
    let maybe = input.boundaries.iter().filter(|b| **b <= read).count();
    let echoed = live.states().len();
    assert!(
        echoed == surely || echoed == maybe,
        "echoed {echoed}, covered {surely}..={maybe}"
    );
    eprintln!(
        "SIGINT: stopped in {took:?} after reading {read} records, {echoed} states echoed, {} duplicates",
        d.duplicates
    );
    drop(writer);
}

#[test]
fn sigterm_while_retrying_stops_within_the_grace_period_echoing_nothing_unsent() {
    let s = StandIn::start();
    s.add_stream("_a", 1);
    s.script(|c: &Call| match (c.op.as_str(), c.n) {
        ("PutRecords", 0) => Fault::None,
        ("PutRecords", _) => Fault::throttle(),
        _ => Fault::None,
    });
    let streams = [(None, "a")];
    let input = input(300, 50, &streams, |_| 10);
    let mut started = start(
        &s.config(json!({"bufferSize": 100, "retryTimeoutSeconds": 600})),
        &catalog(&streams),
    );
    let mut stdin = started.stdin.take().unwrap();
    stdin.write_all(&input.bytes).unwrap();
    s.wait_for("retries", |s| s.puts().len() >= 3);
    let (live, took) = stop_with(started, &s, "TERM");
    drop(stdin);
    // The program allows itself 10 s (CANCEL_GRACE) to send what it holds.
    assert!(took < Duration::from_secs(15), "stopped after {took:?}");
    assert_eq!(live.code, 1);
    assert_eq!(live.failure_type(), "transient_error", "{}", live.stdout);
    assert!(
        live.error_message().contains("cancelled by SIGTERM"),
        "{}",
        live.error_message()
    );
    let d = check_delivery(&s, &input, &live, false);
    assert_eq!(d.unique, 100);
    assert_eq!(
        live.states().len(),
        2,
        "only the states the first batch covers"
    );
    eprintln!(
        "SIGTERM while retrying: stopped in {took:?}: {}",
        live.error_message()
    );
}

#[test]
fn sigterm_while_waiting_for_a_creating_stream_stops_promptly() {
    let s = StandIn::start();
    s.set_stays_creating(true);
    s.add_creating_stream("_a");
    let streams = [(None, "a")];
    let mut started = start(
        &s.config(json!({"retryTimeoutSeconds": 120})),
        &catalog(&streams),
    );
    let stdin = started.stdin.take().unwrap();
    s.wait_for("polling", |s| s.seen().len() >= 2);
    let (live, took) = stop_with(started, &s, "TERM");
    drop(stdin);
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    // Before the first record nothing is buffered, so the program leaves the
    // signal its default action (exit at once); a TRACE, if any, names it.
    assert_ne!(live.code, 0);
    assert!(
        live.error().is_none() || live.error_message().contains("SIGTERM"),
        "{}",
        live.stdout
    );
    assert!(live.states().is_empty());
    assert_eq!(s.stored_len(), 0);
}

#[test]
fn a_trickle_of_other_lines_does_not_hold_buffered_records_back() {
    let s = StandIn::start();
    s.add_stream("_a", 1);
    let mut started = start(
        &s.config(json!({"bufferSize": 500})),
        &catalog(&[(None, "a")]),
    );
    let mut stdin = started.stdin.take().unwrap();
    let first = support::record_line(None, "a", "{\"i\":0}", 1) + &support::state_line(1);
    stdin.write_all(first.as_bytes()).unwrap();
    // A LOG line every 200 ms keeps stdin busy; the record is due after 1 s all the same.
    let log = "{\"type\":\"LOG\",\"log\":{\"level\":\"INFO\",\"message\":\"tick\"}}\n";
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until && s.stored_len() == 0 {
        stdin.write_all(log.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        s.stored_len(),
        1,
        "the record was sent while stdin stayed busy"
    );
    drop(stdin);
    let live = started.watch(&s);
    assert_eq!(live.code, 0, "{}", live.stderr);
    assert_eq!(live.states().len(), 1);
    assert_eq!(s.puts().len(), 1);
}
