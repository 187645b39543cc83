//! End-to-end: the pipeline commands `put` and `read` against a real
//! kinesis-local, with what one writes read back by the other.

use crate::support;
use crate::support::cli::{run_cli, run_on_stream, run_on_terminal, Running};
use crate::support::*;
use destination_kinesis::kinesis::put_records::{read_answer, Body, EntryResult};
use destination_kinesis::kinesis::NewStream;
use md5::{Digest, Md5};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

/// One emulator for the whole file; each test uses its own streams.
fn kl() -> &'static KinesisLocal {
    shared_kinesis_local(&[])
}

fn put(stream: &str, extra: &[&str], stdin: &[u8]) -> Run {
    run_on_stream("put", stream, &kl().endpoint(), extra, stdin)
}

fn read(stream: &str, extra: &[&str]) -> Run {
    run_on_stream("read", stream, &kl().endpoint(), extra, b"")
}

/// Starts `put --linger-ms <linger>` on a stream that exists, writes `line`
/// without closing stdin, and waits until Kinesis holds `expected` records.
fn put_one_line_and_wait(
    stream: &str,
    linger: &str,
    line: &[u8],
    expected: usize,
) -> (Running, std::process::ChildStdin) {
    let endpoint = kl().endpoint();
    let mut writer = Running::start(&[
        "put",
        "--stream",
        stream,
        "--endpoint",
        &endpoint,
        "--linger-ms",
        linger,
    ]);
    let mut stdin = writer.child.stdin.take().unwrap();
    stdin.write_all(line).unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while kl().read_back(stream).len() < expected {
        assert!(
            Instant::now() < deadline,
            "the line was held back while stdin stayed open"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (writer, stdin)
}

/// Creates a one-shard stream and puts raw (data, partition key) records in it
/// with the library's client, bypassing `put`.
fn put_raw(stream: &str, records: &[(&[u8], &str)]) {
    let k = kl().client();
    k.create_stream(stream, &NewStream::provisioned(1)).unwrap();
    wait_active(&k, stream);
    let mut body = Body::default();
    for (data, key) in records {
        body.push(stream, data, key, None);
    }
    let mut scratch = Vec::new();
    let answer = k
        .call(
            "PutRecords",
            Some(stream),
            body.request(stream, None, &mut scratch),
        )
        .unwrap();
    let results = read_answer(&answer, records.len(), &mut Default::default()).unwrap();
    assert!(results.iter().all(|r| *r == EntryResult::Stored));
}

/// `prefix0`, `prefix1`, ... as lines.
fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Puts `lines` and checks that every one was accepted.
fn put_lines(stream: &str, extra: &[&str], lines: &[String]) {
    let run = put(stream, extra, (lines.join("\n") + "\n").as_bytes());
    assert_eq!(run.code, 0, "{run:?}");
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn text_lines_round_trip_and_create_with_shards() {
    let input =
        "alpha\nbêta ☕\n\n  spaced  \nwindows\r\n{\"not\":\"parsed\"}\nlast without newline";
    let run = put("cli-text", &["--create", "--shards", "3"], input.as_bytes());
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.is_empty(), "put keeps stdout clean");
    assert!(
        run.stderr.contains("put 6 of 6 lines") && run.stderr.contains("skipped 1 empty line"),
        "{}",
        run.stderr
    );
    assert!(run
        .stderr
        .contains("created Kinesis stream `cli-text` (3 shards)"));
    assert_eq!(
        kl().client().list_shards(&"cli-text".into()).unwrap().len(),
        3
    );

    let back = read("cli-text", &[]);
    assert_eq!(back.code, 0, "{back:?}");
    let want = [
        "alpha",
        "bêta ☕",
        "  spaced  ",
        "windows",
        "{\"not\":\"parsed\"}",
        "last without newline",
    ];
    assert_eq!(
        sorted(back.lines()),
        sorted(want.iter().map(|s| s.to_string()).collect())
    );
    // The bytes in Kinesis are exactly the line's, with no newline.
    let raw: HashSet<Vec<u8>> = kl()
        .read_back("cli-text")
        .into_iter()
        .map(|r| r.data)
        .collect();
    assert!(raw.contains("bêta ☕".as_bytes()) && raw.contains(&b"windows"[..]));
}

#[test]
fn json_lines_keyed_by_field_or_fixed_key() {
    let mut input = String::new();
    for i in 0..40 {
        input.push_str(&format!(
            "{{\"user\":{{\"id\":\"u{}\"}},\"n\":{i}}}\n",
            i % 5
        ));
    }
    input.push_str("{\"user\":{}}\nnot json\n");
    let run = put(
        "cli-keys",
        &[
            "--create",
            "--shards",
            "4",
            "--partition-key-field",
            "/user/id",
        ],
        input.as_bytes(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("2 lines had no partition key field and got a random key"),
        "{}",
        run.stderr
    );
    let back = read("cli-keys", &["--format", "json"]);
    assert_eq!(back.code, 0, "{back:?}");
    let records = back.json();
    assert_eq!(records.len(), 42);
    let mut shard_of_key: HashMap<String, String> = HashMap::new();
    let mut random = 0;
    for r in &records {
        let key = r["partitionKey"].as_str().unwrap().to_string();
        let shard = r["shard"].as_str().unwrap().to_string();
        assert!(r["sequenceNumber"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(r["arrivalTime"].as_str().unwrap().ends_with('Z'));
        let data = r["data"].as_str().unwrap();
        match serde_json::from_str::<Value>(data)
            .ok()
            .and_then(|v| v["user"]["id"].as_str().map(str::to_string))
        {
            Some(id) => {
                assert_eq!(key, id, "the key is the field's value");
                let first = shard_of_key.entry(key).or_insert(shard.clone());
                assert_eq!(*first, shard, "one key, one shard");
            }
            None => {
                assert!(uuid::Uuid::parse_str(&key).is_ok(), "random key: {key}");
                random += 1;
            }
        }
    }
    assert_eq!(random, 2);
    assert_eq!(shard_of_key.len(), 5);

    // A fixed key: one shard, input order kept.
    let lines = numbered("line ", 30);
    put_lines(
        "cli-keys",
        &["--partition-key", "same", "--max-in-flight", "1"],
        &lines,
    );
    let back = read("cli-keys", &["--format", "json"]).json();
    let fixed: Vec<&Value> = back
        .iter()
        .filter(|r| r["partitionKey"] == "same")
        .collect();
    assert_eq!(fixed.len(), 30);
    let shards: HashSet<&str> = fixed.iter().map(|r| r["shard"].as_str().unwrap()).collect();
    assert_eq!(shards.len(), 1);
    let order: Vec<&str> = fixed.iter().map(|r| r["data"].as_str().unwrap()).collect();
    assert_eq!(order, lines.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn from_timestamp_latest_and_limit() {
    let run = put(
        "cli-from",
        &["--create", "--shards", "2"],
        b"old1\nold2\nold3\n",
    );
    assert_eq!(run.code, 0, "{run:?}");
    std::thread::sleep(Duration::from_millis(1100));
    let between = aws_smithy_types::DateTime::from(SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let run = put("cli-from", &[], b"new1\nnew2\n");
    assert_eq!(run.code, 0, "{run:?}");

    let back = read("cli-from", &["--from", &between]);
    assert_eq!(back.code, 0, "{back:?}");
    assert_eq!(sorted(back.lines()), ["new1", "new2"]);

    let all = read("cli-from", &["--from", "trim-horizon"]);
    assert_eq!(all.lines().len(), 5);

    let limited = read("cli-from", &["--limit", "3"]);
    assert_eq!(limited.code, 0, "{limited:?}");
    assert_eq!(limited.lines().len(), 3);

    let latest = read("cli-from", &["--from", "latest"]);
    assert_eq!(latest.code, 0, "{latest:?}");
    assert!(latest.stdout.is_empty(), "nothing newer than now");
}

#[test]
fn follow_prints_new_records_and_new_shards() {
    let run = put("cli-follow", &["--create", "--shards", "1"], b"before\n");
    assert_eq!(run.code, 0, "{run:?}");
    let endpoint = kl().endpoint();
    let follower = Running::start(&[
        "read",
        "--stream",
        "cli-follow",
        "--endpoint",
        &endpoint,
        "--from",
        "latest",
        "--follow",
    ]);
    // Give it time to take its LATEST iterators before writing.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(put("cli-follow", &[], b"f1\nf2\n").code, 0);
    let got = follower.take(2, Duration::from_secs(15));
    assert_eq!(
        sorted(got),
        ["f1", "f2"],
        "new lines appear, `before` does not"
    );

    // After a reshard the parent closes; its children are picked up.
    reshard(&kl().client(), "cli-follow", 2);
    let lines = numbered("after ", 10);
    put_lines("cli-follow", &[], &lines);
    let got = follower.take(10, Duration::from_secs(30));
    assert_eq!(sorted(got), sorted(lines));
}

#[test]
fn reads_parents_before_children_after_resharding() {
    let first = numbered("p", 20);
    put_lines("cli-reshard", &["--create", "--shards", "2"], &first);
    reshard(&kl().client(), "cli-reshard", 4);
    let second = numbered("c", 20);
    put_lines("cli-reshard", &[], &second);
    let shards = kl().client().list_shards(&"cli-reshard".into()).unwrap();
    assert_eq!(shards.len(), 6, "two closed parents, four children");

    let back = read("cli-reshard", &["--format", "json"]);
    assert_eq!(back.code, 0, "{back:?}");
    let records = back.json();
    let data: Vec<String> = records
        .iter()
        .map(|r| r["data"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sorted(data), sorted([first, second].concat()));
    // Every record of a parent comes before any record of its children.
    let position = |shard: &str, last: bool| {
        let mut at = records
            .iter()
            .enumerate()
            .filter(|(_, r)| r["shard"] == shard)
            .map(|(i, _)| i);
        if last {
            at.next_back()
        } else {
            at.next()
        }
    };
    let mut checked = 0;
    for child in &shards {
        for parent in child.parents() {
            if let (Some(end), Some(start)) =
                (position(parent, true), position(&child.shard_id, false))
            {
                assert!(end < start, "{parent} read before {}", child.shard_id);
                checked += 1;
            }
        }
    }
    assert!(checked >= 2, "parent/child pairs with records: {checked}");
}

#[test]
fn linger_sends_a_slow_writers_line_before_stdin_closes() {
    let run = put("cli-linger", &["--create", "--shards", "1"], b"");
    assert_eq!(run.code, 0, "{run:?}");
    let (mut writer, stdin) = put_one_line_and_wait("cli-linger", "100", b"slow one\n", 1);
    assert_eq!(kl().read_back("cli-linger")[0].data, b"slow one");
    assert!(writer.child.try_wait().unwrap().is_none(), "still running");
    drop(stdin);
    assert_eq!(writer.wait_for_exit(Duration::from_secs(10)), Some(0));
    assert!(writer.stderr().contains("put 1 of 1 line"));
}

#[test]
fn unpacks_kpl_aggregated_records() {
    fn varint(mut n: u64, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }
    fn field(tag: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(tag << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }
    let mut message = Vec::new();
    field(1, b"key-a", &mut message);
    field(1, b"key-b", &mut message);
    for (key, data) in [(0u64, "one"), (1, "two"), (0, "three")] {
        let mut rec = vec![0x08];
        varint(key, &mut rec);
        field(3, data.as_bytes(), &mut rec);
        field(3, &rec, &mut message);
    }
    let mut aggregate = vec![0xF3, 0x89, 0x9A, 0xC2];
    aggregate.extend_from_slice(&message);
    aggregate.extend_from_slice(&Md5::digest(&message));

    put_raw("cli-kpl", &[(&aggregate, "outer"), (b"plain", "p")]);

    let text = read("cli-kpl", &[]);
    assert_eq!(text.code, 0, "{text:?}");
    assert_eq!(text.lines(), ["one", "two", "three", "plain"]);
    let records = read("cli-kpl", &["--format", "json"]).json();
    let keys: Vec<&str> = records
        .iter()
        .map(|r| r["partitionKey"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["key-a", "key-b", "key-a", "p"]);
    assert_eq!(records[2]["subSequenceNumber"], 2);
    assert_eq!(records[0]["sequenceNumber"], records[1]["sequenceNumber"]);
    assert!(records[3].get("subSequenceNumber").is_none());
}

#[test]
fn binary_data_is_base64_in_json() {
    put_raw("cli-binary", &[(&[0xFF, 0xFE, 0x00], "k")]);
    let records = read("cli-binary", &["--format", "json"]).json();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["dataBase64"], "//4A");
    assert!(records[0].get("data").is_none());
}

#[test]
fn read_ends_quietly_when_stdout_closes() {
    let lines = numbered("row ", 300);
    put_lines("cli-head", &["--create", "--shards", "1"], &lines);
    let endpoint = kl().endpoint();
    let mut reader = Running::start(&["read", "--stream", "cli-head", "--endpoint", &endpoint]);
    assert_eq!(reader.take(1, Duration::from_secs(10)), ["row 0"]);
    // Closing our end of the pipe, as `head` does when it has enough.
    let (_, rx) = std::sync::mpsc::channel();
    drop(std::mem::replace(&mut reader.lines, rx));
    drop(reader.child.stdout.take());
    let code = reader.wait_for_exit(Duration::from_secs(10));
    let stderr = reader.stderr();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn missing_stream_without_create_fails_clearly() {
    let run = put("cli-missing", &[], b"x\n");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("Kinesis stream `cli-missing` does not exist")
            && run.stderr.contains("--create"),
        "{}",
        run.stderr
    );
    assert!(kl()
        .client()
        .stream_status(&"cli-missing".into())
        .unwrap()
        .is_none());
    let back = read("cli-missing", &[]);
    assert_eq!(back.code, 1);
    assert!(back.stderr.contains("does not exist"), "{}", back.stderr);
}

#[test]
fn a_line_over_1_mib_is_refused_with_its_number() {
    let mut input = b"ok 1\nok 2\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 1024 * 1024 + 1));
    input.extend_from_slice(b"\nnever\n");
    let run = put("cli-big", &["--create", "--shards", "1"], &input);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("input line 3 is longer than 1048576 bytes"),
        "{}",
        run.stderr
    );
    let landed: Vec<Vec<u8>> = kl()
        .read_back("cli-big")
        .into_iter()
        .map(|r| r.data)
        .collect();
    assert_eq!(
        landed,
        [b"ok 1".to_vec(), b"ok 2".to_vec()],
        "lines before it were sent"
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["put"], "--stream"),
        (&["put", "--stream", "s", "--bogus"], "--bogus"),
        (
            &["put", "--stream", "s", "--partition-key-field", "id"],
            "JSON Pointer",
        ),
        (
            &[
                "put",
                "--stream",
                "s",
                "--partition-key",
                "a",
                "--partition-key-field",
                "/a",
            ],
            "not both",
        ),
        (
            &["put", "--stream", "s", "--max-in-flight", "0"],
            "--max-in-flight",
        ),
        (
            &["put", "--stream", "s", "--linger-ms", "soon"],
            "--linger-ms",
        ),
        (&["put", "--stream", "bad name"], "--stream"),
        (
            &["put", "--stream", "s", "--endpoint", "ftp://x"],
            "--endpoint",
        ),
        (
            &["put", "--stream", "s", "--config", "/nonexistent/c.json"],
            "cannot read config file",
        ),
        (
            &["read", "--stream", "s", "--from", "yesterday"],
            "RFC 3339",
        ),
        (&["read", "--stream", "s", "--format", "yaml"], "--format"),
        (&["read", "--stream", "s", "--limit", "-1"], "--limit"),
    ];
    for (args, expected) in cases {
        let run = run_cli(args, b"");
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn unreachable_endpoint_fails_fast_and_clearly() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    for args in [
        ["put", "--stream", "s", "--endpoint", &endpoint],
        ["read", "--stream", "s", "--endpoint", &endpoint],
    ] {
        let started = Instant::now();
        let run = run_cli(&args, b"x\n");
        assert!(started.elapsed() < Duration::from_secs(15));
        assert_eq!(run.code, 1, "{run:?}");
        assert!(
            run.stderr.contains("cannot connect to") && run.stderr.contains(&endpoint),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn help_and_version() {
    for args in [
        &["--help"][..],
        &["put", "--help"],
        &["read", "--help"],
        &["write", "--help"],
        &["check", "--help"],
        &["spec", "--help"],
    ] {
        let run = run_cli(args, b"");
        assert_eq!(run.code, 0, "{args:?}");
        let text = &run.stdout;
        assert!(text.contains("Examples:"), "{args:?}: {text}");
    }
    let top = run_cli(&["--help"], b"");
    let text = &top.stdout;
    assert!(text.contains("2 usage or configuration error"), "{text}");
    let version = run_cli(&["--version"], b"");
    assert_eq!(version.code, 0);
    assert_eq!(
        version.stdout.trim(),
        format!("destination-kinesis {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn put_fails_when_kinesis_refuses_a_batch() {
    let run = put("cli-refused", &["--create", "--shards", "1"], b"first\n");
    assert_eq!(run.code, 0, "{run:?}");
    let (mut writer, mut stdin) = put_one_line_and_wait("cli-refused", "50", b"second\n", 2);
    // The stream goes away while put runs: its next batch is refused.
    let k = kl().client();
    k.call(
        "DeleteStream",
        Some("cli-refused"),
        json!({"StreamName": "cli-refused"}).to_string().as_bytes(),
    )
    .expect("DeleteStream");
    let deadline = Instant::now() + Duration::from_secs(20);
    while k.stream_status(&"cli-refused".into()).unwrap().is_some() {
        assert!(Instant::now() < deadline, "stream not deleted");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Either the write or the pipe fails once put has given up.
    let _ = stdin.write_all(b"lost\n");
    drop(stdin);
    assert_eq!(writer.wait_for_exit(Duration::from_secs(20)), Some(1));
    let stderr = writer.stderr();
    assert!(
        stderr.contains("put 1 of 2 lines") && stderr.contains("ResourceNotFoundException"),
        "{stderr}"
    );
}

#[test]
fn put_shows_progress_on_a_terminal_only() {
    // `script` runs put with a terminal as its stderr; lines come 2 s apart
    // (the first may wait while the stream is created), long enough for a
    // progress line (every 0.5 s).
    let shell = format!(
        "(echo one; sleep 2; echo two) | {} put --stream cli-tty --create --shards 1 --endpoint {}",
        support::binary(),
        kl().endpoint()
    );
    let (ok, terminal) = run_on_terminal(&shell);
    assert!(ok, "{terminal}");
    assert!(
        terminal.contains("1 record sent,") && terminal.contains("records/s"),
        "{terminal:?}"
    );
    assert!(
        terminal.contains("\r\x1b[Kdestination-kinesis: put 2 of 2 lines"),
        "the summary clears the progress line: {terminal:?}"
    );
    // With stderr a pipe: the summary alone, no terminal codes.
    let run = put("cli-tty", &[], b"three\n");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .starts_with("destination-kinesis: put 1 of 1 line")
            && !run.stderr.contains('\x1b'),
        "{}",
        run.stderr
    );
}
