//! End-to-end: `read`'s choices of pace, slice and shards against a real
//! kinesis-local: the poll rate of a caught-up follower (counted by a loopback
//! proxy), `--until`, `--from at:/after:`, `--shard`, `--key`, `--idle-timeout`,
//! the lag on a terminal, a usage error for every bad value, and what it does
//! when a loopback proxy refuses GetRecords calls (throttling, a server error,
//! an expired iterator).

use crate::support;
use crate::support::cli::{run_cli, run_on_terminal, Running};
use crate::support::delay_proxy::DelayProxy;
use crate::support::*;
use base64::Engine;
use destination_kinesis::kinesis::shards::hash_of;
use destination_kinesis::kinesis::Kinesis;
use destination_kinesis::kinesis::StreamMode;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime};

fn kl() -> &'static KinesisLocal {
    shared_kinesis_local(&[])
}

fn read_via(endpoint: &str, stream: &str, extra: &[&str]) -> Run {
    let mut args = vec!["read", "--stream", stream, "--endpoint", endpoint];
    args.extend_from_slice(extra);
    run_cli(&args, b"")
}

fn read(stream: &str, extra: &[&str]) -> Run {
    read_via(&kl().endpoint(), stream, extra)
}

/// A loopback proxy to kinesis-local that counts (and can refuse) calls.
fn counting_proxy() -> DelayProxy {
    DelayProxy::start(&kl().endpoint(), |_| Duration::ZERO)
}

/// `read --follow` of `stream` through `proxy`, left running.
fn follow_via(proxy: &DelayProxy, stream: &str, extra: &[&str]) -> Running {
    let endpoint = proxy.endpoint();
    let mut args = vec![
        "read",
        "--stream",
        stream,
        "--endpoint",
        &endpoint,
        "--follow",
    ];
    args.extend_from_slice(extra);
    Running::start(&args)
}

fn create(stream: &str, shards: u32) {
    create_active(&kl().client(), stream, StreamMode::Provisioned, shards);
}

/// Puts (data, partition key) records in one PutRecords call, in order.
fn put_records(stream: &str, records: &[(String, &str)]) {
    let entries: Vec<Value> = records
        .iter()
        .map(|(data, key)| {
            json!({"Data": base64::engine::general_purpose::STANDARD.encode(data), "PartitionKey": key})
        })
        .collect();
    let body = json!({"StreamName": stream, "Records": entries});
    let answer = kl()
        .client()
        .call("PutRecords", Some(stream), body.to_string().as_bytes())
        .expect("PutRecords");
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["FailedRecordCount"], 0, "{answer}");
}

fn now_rfc3339() -> String {
    aws_smithy_types::DateTime::from(SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap()
}

/// `field` of each JSON record printed.
fn field(records: &[Value], field: &str) -> Vec<String> {
    records
        .iter()
        .map(|r| r[field].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_caught_up_follower_polls_each_shard_about_once_a_second() {
    let stream = "rf-pace";
    create(stream, 2);
    let default = counting_proxy();
    let slow = counting_proxy();
    let follow = |proxy: &DelayProxy, extra: &[&str]| {
        let mut args = vec!["--from", "latest", "--idle-timeout", "4s"];
        args.extend_from_slice(extra);
        (follow_via(proxy, stream, &args), Instant::now())
    };
    let (mut at_default, started_default) = follow(&default, &[]);
    let (mut at_2s, started_2s) = follow(&slow, &["--poll-interval", "2s"]);
    // Give both time to take their LATEST iterators.
    std::thread::sleep(Duration::from_millis(1500));
    // A trickle to both shards, a record every 100 ms for 4 s: nearly every
    // page has records, yet the shards are caught up.
    let mut sent = Vec::new();
    for i in 0..40 {
        let line = format!("t{i}");
        put_records(stream, &[(line.clone(), &format!("key-{i}"))]);
        sent.push(line);
        std::thread::sleep(Duration::from_millis(100));
    }
    let check = |running: &mut Running, started: Instant, proxy: &DelayProxy, per_shard: f64| {
        let got = running.take(sent.len(), Duration::from_secs(20));
        assert_eq!(
            got.iter().collect::<BTreeSet<_>>(),
            sent.iter().collect::<BTreeSet<_>>()
        );
        assert_eq!(running.wait_for_exit(Duration::from_secs(20)), Some(0));
        let seconds = started.elapsed().as_secs_f64();
        let calls = proxy.calls_of("GetRecords");
        let allowed = per_shard * 2.0 * seconds;
        assert!(
            calls > 0 && (calls as f64) <= allowed,
            "{calls} GetRecords calls in {seconds:.1} s over 2 shards, allowed {allowed:.0}"
        );
        calls
    };
    let at_default_calls = check(&mut at_default, started_default, &default, 1.5);
    let at_2s_calls = check(&mut at_2s, started_2s, &slow, 0.75);
    assert!(
        at_2s_calls < at_default_calls,
        "{at_2s_calls} vs {at_default_calls}"
    );
}

#[test]
fn until_and_sequence_starts_return_exact_slices() {
    let stream = "rf-slice";
    create(stream, 2);
    let lines = |prefix: &str| -> Vec<String> { (1..=3).map(|i| format!("{prefix}{i}")).collect() };
    let (early, late) = (lines("a"), lines("b"));
    let keyed = |v: &[String]| -> Vec<(String, &'static str)> {
        v.iter().map(|l| (l.clone(), "one-key")).collect()
    };
    put_records(stream, &keyed(&early));
    std::thread::sleep(Duration::from_secs(2));
    let between = now_rfc3339();
    let between_at = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    put_records(stream, &keyed(&late));

    let all = read(stream, &["--format", "json"]).json();
    assert_eq!(field(&all, "data"), [early.clone(), late.clone()].concat());
    let shard = all[0]["shard"].as_str().unwrap().to_string();
    let seq = field(&all, "sequenceNumber");

    // The relative form, measured now to land between the two groups.
    let ago = format!("-{:.3}s", between_at.elapsed().as_secs_f64());
    for until in [&between, &ago] {
        let run = read(stream, &["--until", until]);
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(run.lines(), early, "--until {until}");
    }
    assert_eq!(read(stream, &["--from", &between]).lines(), late);
    assert_eq!(read(stream, &["--from", "-1h"]).lines().len(), 6);
    assert!(read(stream, &["--until", "-1h"]).stdout.is_empty());

    let from = |start: String, extra: &[&str]| {
        let mut args = vec!["--shard", &shard, "--from", &start];
        args.extend_from_slice(extra);
        let run = read(stream, &args);
        assert_eq!(run.code, 0, "{run:?}");
        run.lines()
    };
    assert_eq!(from(format!("at:{}", seq[3]), &[]), late);
    assert_eq!(from(format!("after:{}", seq[3]), &[]), &late[1..]);
    assert_eq!(
        from(format!("after:{}", seq[0]), &["--until", &between]),
        &early[1..]
    );
    // The shard given by its number alone.
    let number = shard.trim_start_matches("shardId-").trim_start_matches('0');
    let run = read(
        stream,
        &["--shard", number, "--from", &format!("at:{}", seq[5])],
    );
    assert_eq!(run.lines(), &late[2..]);

    // A sequence number the shard does not have is a bad --from. (AWS also
    // refuses one of another shard; kinesis-local accepts it for an empty shard.)
    let run = read(stream, &["--shard", &shard, "--from", "at:1"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--from"), "{}", run.stderr);

    // With --follow, the read ends once every shard is past --until.
    let started = Instant::now();
    let run = read(stream, &["--follow", "--until", &between]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.lines(), early);
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// Shard ID -> a key whose records that shard takes, one key per shard.
fn key_per_shard(k: &Kinesis, stream: &str) -> HashMap<String, String> {
    let shards = k.list_shards(&stream.into()).unwrap();
    let mut keys = HashMap::new();
    for i in 0.. {
        let key = format!("key-{i}");
        let hash = hash_of(&key);
        let holder = shards
            .iter()
            .find(|s| s.hash_key_range.as_ref().unwrap().contains(hash))
            .unwrap();
        keys.entry(holder.shard_id.clone()).or_insert(key);
        if keys.len() == shards.len() {
            return keys;
        }
    }
    unreachable!()
}

#[test]
fn shard_and_key_read_only_their_shards() {
    let stream = "rf-keys";
    create(stream, 4);
    let k = kl().client();
    let keys = key_per_shard(&k, stream);
    let mut records = Vec::new();
    for key in keys.values() {
        for n in 0..3 {
            records.push((format!("{key}:{n}"), key.as_str()));
        }
    }
    put_records(stream, &records);

    for (shard, key) in &keys {
        let got = read(stream, &["--shard", shard, "--format", "json"]).json();
        assert_eq!(got.len(), 3, "{shard}");
        assert!(field(&got, "shard").iter().all(|s| s == shard));
        assert!(field(&got, "partitionKey").iter().all(|k| k == key));
    }
    let two = read(
        stream,
        &["--shard", "1", "--shard", "3", "--format", "json"],
    )
    .json();
    assert_eq!(
        field(&two, "shard").into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from(["shardId-000000000001".into(), "shardId-000000000003".into()])
    );
    assert_eq!(two.len(), 6);

    let (first_shard, first_key) = keys.iter().min().unwrap();
    let by_key = read(stream, &["--key", first_key, "--format", "json"]).json();
    assert_eq!(by_key.len(), 3);
    assert!(field(&by_key, "partitionKey")
        .iter()
        .all(|k| k == first_key));

    // After a reshard, --key follows the key into the child that takes it;
    // --shard reads the shard named and not its children.
    reshard(&k, stream, 8);
    let later: Vec<(String, &str)> = keys
        .values()
        .map(|key| (format!("{key}:later"), key.as_str()))
        .collect();
    put_records(stream, &later);
    let by_key = read(stream, &["--key", first_key, "--format", "json"]).json();
    assert_eq!(
        field(&by_key, "data"),
        ["0", "1", "2", "later"].map(|n| format!("{first_key}:{n}"))
    );
    let shards: Vec<String> = field(&by_key, "shard");
    assert_eq!(&shards[0], first_shard);
    assert_ne!(&shards[3], first_shard, "the child holding the key");
    let named = read(stream, &["--shard", first_shard]);
    assert_eq!(named.lines().len(), 3, "{named:?}");
}

/// The lines a follower printed until it exited (all of them, up to the end
/// of its stdout), and its exit code.
fn rest_of(running: &mut Running) -> (Vec<String>, Option<i32>) {
    let code = running.wait_for_exit(Duration::from_secs(30));
    let rest = match code {
        Some(_) => running.lines.iter().collect(),
        None => running.lines.try_iter().collect(),
    };
    (rest, code)
}

/// Waits until `proxy` has seen `n` calls of `op`.
fn wait_for_calls(proxy: &DelayProxy, op: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while proxy.calls_of(op) < n {
        assert!(Instant::now() < deadline, "no {n} {op} calls within 20 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn refused_get_records_are_retried_and_an_expired_iterator_resumes_after_the_last_record() {
    let stream = "rf-refused";
    create(stream, 1);
    let first: Vec<(String, &str)> = (0..5).map(|i| (format!("r{i}"), "k")).collect();
    put_records(stream, &first);
    let proxy = counting_proxy();
    proxy.refuse_next(
        "GetRecords",
        1,
        400,
        "ProvisionedThroughputExceededException",
    );
    proxy.refuse_next("GetRecords", 1, 500, "InternalFailure");
    let mut running = follow_via(&proxy, stream, &["--idle-timeout", "8s"]);
    assert_eq!(
        running.take(5, Duration::from_secs(20)),
        ["r0", "r1", "r2", "r3", "r4"]
    );
    assert_eq!(proxy.calls_of("GetShardIterator"), 1);
    // The iterator of the next page expires: a new one must start after r4,
    // not at the start again (duplicates). (Whether r5.. come before or after
    // the expiry is timing; the LATEST case has its own test below.)
    let calls = proxy.calls_of("GetRecords");
    proxy.refuse_next("GetRecords", 1, 400, "ExpiredIteratorException");
    let later: Vec<(String, &str)> = (5..10).map(|i| (format!("r{i}"), "k")).collect();
    put_records(stream, &later);
    assert_eq!(
        running.take(5, Duration::from_secs(20)),
        ["r5", "r6", "r7", "r8", "r9"]
    );
    let (rest, code) = rest_of(&mut running);
    assert_eq!((rest, code), (Vec::<String>::new(), Some(0)));
    assert!(proxy.calls_of("GetRecords") > calls + 1);
    assert_eq!(
        proxy.calls_of("GetShardIterator"),
        2,
        "one new iterator after the expired one"
    );
}

#[test]
fn an_iterator_expiring_before_any_record_from_latest_skips_nothing() {
    let stream = "rf-expired-latest";
    create(stream, 1);
    put_records(stream, &[("before".into(), "k")]);
    let proxy = counting_proxy();
    let mut running = follow_via(
        &proxy,
        stream,
        &[
            "--from",
            "latest",
            "--poll-interval",
            "3s",
            "--idle-timeout",
            "12s",
        ],
    );
    // Right after a caught-up poll the next is 3 s away: the records put now
    // come after the LATEST iterator, and the next GetRecords finds it expired.
    wait_for_calls(&proxy, "GetRecords", 1);
    proxy.refuse_next("GetRecords", 1, 400, "ExpiredIteratorException");
    put_records(stream, &[("after-1".into(), "k"), ("after-2".into(), "k")]);
    assert_eq!(
        running.take(2, Duration::from_secs(20)),
        ["after-1", "after-2"],
        "a new LATEST iterator would have skipped them"
    );
    let (rest, code) = rest_of(&mut running);
    assert_eq!((rest, code), (Vec::<String>::new(), Some(0)));
    assert_eq!(proxy.calls_of("GetShardIterator"), 2);
}

#[test]
fn a_get_records_refusal_that_retrying_cannot_mend_ends_read_at_once() {
    let stream = "rf-denied";
    create(stream, 1);
    put_records(stream, &[("one".into(), "k")]);
    let proxy = counting_proxy();
    proxy.refuse_next("GetRecords", 100, 400, "AccessDeniedException");
    let started = Instant::now();
    let run = read_via(&proxy.endpoint(), stream, &[]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(
        run.stderr.contains("AccessDeniedException") && run.stderr.contains(stream),
        "{}",
        run.stderr
    );
    assert_eq!(proxy.calls_of("GetRecords"), 1, "not retried");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn idle_timeout_ends_a_quiet_follow_with_exit_0() {
    let stream = "rf-idle";
    create(stream, 1);
    put_records(stream, &[("one".into(), "k"), ("two".into(), "k")]);
    let started = Instant::now();
    let run = read(stream, &["--follow", "--idle-timeout", "2s"]);
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.lines(), ["one", "two"]);
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(30),
        "{took:?}"
    );
    assert!(
        run.stderr.is_empty(),
        "quiet when stderr is not a terminal: {}",
        run.stderr
    );
}

#[test]
fn lag_shows_on_a_terminal_only() {
    let stream = "rf-tty";
    create(stream, 2);
    put_records(stream, &[("x".into(), "k")]);
    let shell = format!(
        "{} read --stream {stream} --endpoint {} --follow --idle-timeout 2s",
        support::binary(),
        kl().endpoint()
    );
    let (ok, terminal) = run_on_terminal(&shell);
    assert!(ok, "{terminal}");
    assert!(
        terminal.contains("1 record from 2 shards, lag 0.0 s behind the latest"),
        "{terminal:?}"
    );
    assert!(
        terminal.contains(&format!(
            "\r\x1b[Kdestination-kinesis: read 1 record from 2 shards of `{stream}`; no record for 2s"
        )),
        "the summary replaces the status line: {terminal:?}"
    );
}

#[test]
fn bad_values_of_new_flags_are_usage_errors() {
    const S: &str = "rf-bad";
    create(S, 2);
    let cases: &[(&[&str], &str)] = &[
        (
            &["read", "--stream", S, "--poll-interval", "soon"],
            "--poll-interval",
        ),
        (
            &["read", "--stream", S, "--poll-interval", "100ms"],
            "--poll-interval",
        ),
        (
            &["read", "--stream", S, "--poll-interval", "10m"],
            "--poll-interval",
        ),
        (
            &["read", "--stream", S, "--poll-interval", "1"],
            "--poll-interval",
        ),
        (
            &["read", "--stream", S, "--idle-timeout", "0s"],
            "--idle-timeout",
        ),
        (
            &["read", "--stream", S, "--idle-timeout", "later"],
            "--idle-timeout",
        ),
        (&["read", "--stream", S, "--until", "tomorrow"], "--until"),
        (&["read", "--stream", S, "--until", "-5x"], "--until"),
        (&["read", "--stream", S, "--from", "-5"], "--from"),
        (&["read", "--stream", S, "--from", "at:abc"], "--from"),
        (&["read", "--stream", S, "--from", "after:"], "--from"),
        (&["read", "--stream", S, "--from", "after:1"], "--shard"),
        (
            &[
                "read", "--stream", S, "--from", "at:1", "--shard", "0", "--shard", "1",
            ],
            "--shard",
        ),
        (
            &["read", "--stream", S, "--from", "at:1", "--key", "k"],
            "--shard",
        ),
        (&["read", "--stream", S, "--shard", "bad id!"], "--shard"),
        (
            &["read", "--stream", S, "--shard", "shardId-000000000009"],
            "--shard",
        ),
        (&["read", "--stream", S, "--key", ""], "--key"),
        (
            &[
                "read",
                "--stream",
                S,
                "--from",
                "2024-05-01T12:00:00Z",
                "--until",
                "2024-05-01T11:00:00Z",
            ],
            "--until",
        ),
        (&["list", "--format", "yaml"], "--format"),
        (&["list", "--endpoint", "ftp://x"], "--endpoint"),
        (&["describe", "--stream", S, "--timeout", "5s"], "--timeout"),
        (
            &[
                "describe",
                "--stream",
                S,
                "--wait-active",
                "--timeout",
                "0s",
            ],
            "--timeout",
        ),
        (
            &[
                "describe",
                "--stream",
                S,
                "--wait-active",
                "--timeout",
                "soon",
            ],
            "--timeout",
        ),
        (&["describe"], "--stream"),
        (&["describe", "--stream", "bad name"], "--stream"),
    ];
    let endpoint = kl().endpoint();
    let long_key = "k".repeat(257);
    let long: &[&str] = &["read", "--stream", S, "--key", &long_key];
    for (args, expected) in cases.iter().copied().chain([(long, "--key")]) {
        let mut full = args.to_vec();
        if !args.contains(&"--endpoint") {
            full.splice(1..1, ["--endpoint", endpoint.as_str()]);
        }
        let run = run_cli(&full, b"");
        assert_eq!(run.code, 2, "{full:?}: {run:?}");
        assert!(run.stderr.contains(expected), "{full:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{full:?}");
    }
}

#[test]
fn help_shows_examples_of_the_new_flags_and_commands() {
    for (command, wanted) in [
        (
            "read",
            &[
                "--until",
                "--poll-interval",
                "--idle-timeout",
                "--shard",
                "--key",
                "after:",
            ][..],
        ),
        ("list", &["--format json"][..]),
        ("describe", &["--wait-active", "--timeout"][..]),
    ] {
        let run = run_cli(&[command, "--help"], b"");
        assert_eq!(run.code, 0, "{command}");
        let text = &run.stdout;
        let examples = text.split("Examples:").nth(1).unwrap_or_default();
        for flag in wanted {
            assert!(
                examples.contains(&format!("destination-kinesis {command}"))
                    && examples.contains(flag),
                "{command} --help has an example with {flag}: {text}"
            );
        }
    }
}
