//! End-to-end: `list` and `describe` against a real kinesis-local (streams in
//! both capacity modes, resharded shards, a stream still being created), and
//! `list`'s pagination, with and without NextToken, against the stand-in.

use crate::support::cli::{run_cli, Running};
use crate::support::standin::{ListPages, StandIn};
use crate::support::*;
use destination_kinesis::kinesis::NewStream;
use destination_kinesis::kinesis::StreamMode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How long kinesis-local keeps a new stream CREATING here: long enough to
/// catch it in that state.
const CREATING_FOR: &str = "3s";

fn kl() -> &'static KinesisLocal {
    shared_kinesis_local(&[("CREATE_STREAM_DURATION", CREATING_FOR)])
}

fn cli(command: &str, extra: &[&str]) -> Run {
    let endpoint = kl().endpoint();
    let mut args = vec![command, "--endpoint", &endpoint];
    args.extend_from_slice(extra);
    run_cli(&args, b"")
}

fn create(stream: &str, mode: StreamMode, shards: u32) {
    create_active(&kl().client(), stream, mode, shards);
}

fn describe_json(stream: &str) -> Value {
    let run = cli("describe", &["--stream", stream, "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut objects = run.json();
    assert_eq!(objects.len(), 1, "one object");
    objects.remove(0)
}

#[test]
fn list_shows_streams_in_each_mode() {
    std::thread::scope(|s| {
        s.spawn(|| create("ld-provisioned", StreamMode::Provisioned, 2));
        s.spawn(|| create("ld-on-demand", StreamMode::OnDemand, 0));
    });
    let run = cli("list", &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let rows: Vec<Vec<String>> = run
        .lines()
        .iter()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    for (stream, mode) in [
        ("ld-provisioned", "PROVISIONED"),
        ("ld-on-demand", "ON_DEMAND"),
    ] {
        assert!(
            rows.contains(&vec![stream.to_string(), "ACTIVE".into(), mode.into()]),
            "{stream}: {rows:?}"
        );
    }
    let listed = cli("list", &["--format", "json"]).json();
    let on_demand = listed
        .iter()
        .find(|s| s["stream"] == "ld-on-demand")
        .expect("listed");
    assert_eq!(on_demand["status"], "ACTIVE");
    assert_eq!(on_demand["mode"], "ON_DEMAND");
    assert!(on_demand["arn"]
        .as_str()
        .unwrap()
        .ends_with(":stream/ld-on-demand"));
}

#[test]
fn describe_shows_settings_and_shards_with_parents() {
    std::thread::scope(|s| {
        s.spawn(|| create("ld-described", StreamMode::Provisioned, 2));
        s.spawn(|| create("ld-described-od", StreamMode::OnDemand, 0));
    });
    let k = kl().client();
    reshard(&k, "ld-described", 4);

    let d = describe_json("ld-described");
    assert_eq!(d["stream"], "ld-described");
    assert_eq!(d["status"], "ACTIVE");
    assert_eq!(d["mode"], "PROVISIONED");
    assert_eq!(d["retentionHours"], 24);
    assert_eq!(d["encryption"], "NONE");
    assert_eq!(d["openShards"], 4);
    // kinesis-local predates large records and does not report the size.
    assert_eq!(d["maxRecordSizeKiB"], Value::Null);
    let shards = d["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 6);
    let closed: Vec<&Value> = shards.iter().filter(|s| s["open"] == false).collect();
    let open: Vec<&Value> = shards.iter().filter(|s| s["open"] == true).collect();
    assert_eq!((closed.len(), open.len()), (2, 4));
    assert!(closed.iter().all(|s| s["parents"] == json!([])));
    for child in &open {
        let parents = child["parents"].as_array().unwrap();
        assert!(!parents.is_empty(), "{child}");
        assert!(parents
            .iter()
            .all(|p| closed.iter().any(|c| c["shard"] == *p)));
    }
    // The open shards' hash key ranges cover every hash once, in order.
    let mut ranges: Vec<(u128, u128)> = open
        .iter()
        .map(|s| {
            let key = |f: &str| s[f].as_str().unwrap().parse::<u128>().unwrap();
            (key("startingHashKey"), key("endingHashKey"))
        })
        .collect();
    ranges.sort();
    assert_eq!(ranges[0].0, 0);
    assert_eq!(ranges[3].1, u128::MAX);
    assert!(
        ranges.windows(2).all(|w| w[1].0 == w[0].1 + 1),
        "{ranges:?}"
    );

    let text = cli("describe", &["--stream", "ld-described"]);
    assert_eq!(text.code, 0, "{text:?}");
    let lines = text.lines();
    for (name, value) in [
        ("status", "ACTIVE"),
        ("mode", "PROVISIONED"),
        ("retention", "24 hours"),
        ("encryption", "NONE"),
        ("open shards", "4"),
        ("shards", "(6)"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(name) && l.ends_with(value)),
            "{name} {value}: {lines:?}"
        );
    }
    assert!(lines
        .iter()
        .any(|l| l.starts_with("max record size") && l.contains("1024 KiB")));
    let child_lines = lines
        .iter()
        .filter(|l| l.contains("  open  ") && l.contains(" from shardId-"))
        .count();
    assert_eq!(child_lines, 4, "{lines:?}");

    let od = describe_json("ld-described-od");
    assert_eq!(od["mode"], "ON_DEMAND");
    assert_eq!(od["shards"].as_array().unwrap().len(), 4);

    let missing = cli("describe", &["--stream", "ld-missing"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(
        missing
            .stderr
            .contains("Kinesis stream `ld-missing` does not exist"),
        "{}",
        missing.stderr
    );
}

#[test]
fn wait_active_waits_for_a_creating_or_missing_stream() {
    let k = kl().client();
    assert!(k
        .create_stream("ld-creating", &NewStream::provisioned(1))
        .unwrap());
    // Without --wait-active: described as it is, CREATING, without shards yet.
    let now = describe_json("ld-creating");
    assert_eq!(now["status"], "CREATING", "{now}");
    assert_eq!(now["shards"], json!([]));
    let waited = cli(
        "describe",
        &[
            "--stream",
            "ld-creating",
            "--wait-active",
            "--timeout",
            "30s",
            "--format",
            "json",
        ],
    );
    assert_eq!(waited.code, 0, "{waited:?}");
    let d = &waited.json()[0];
    assert_eq!(d["status"], "ACTIVE");
    assert_eq!(d["shards"].as_array().unwrap().len(), 1);

    // A stream that does not exist yet is waited for, as `aws kinesis wait stream-exists` does.
    let endpoint = kl().endpoint();
    let mut late = Running::start(&[
        "describe",
        "--stream",
        "ld-late",
        "--endpoint",
        &endpoint,
        "--wait-active",
        "--timeout",
        "30s",
    ]);
    std::thread::sleep(Duration::from_secs(1));
    assert!(late.child.try_wait().unwrap().is_none(), "still waiting");
    assert!(k
        .create_stream("ld-late", &NewStream::provisioned(1))
        .unwrap());
    assert_eq!(late.wait_for_exit(Duration::from_secs(30)), Some(0));
    let described = late.take(20, Duration::from_secs(1));
    assert!(
        described
            .iter()
            .any(|l| l.starts_with("status") && l.ends_with("ACTIVE")),
        "{described:?}"
    );

    // Until --timeout, then exit 1 saying what the stream was.
    let started = Instant::now();
    let never = cli(
        "describe",
        &["--stream", "ld-never", "--wait-active", "--timeout", "2s"],
    );
    assert_eq!(never.code, 1, "{never:?}");
    assert!(
        never
            .stderr
            .contains("Kinesis stream `ld-never` is not ACTIVE after 2s: it does not exist"),
        "{}",
        never.stderr
    );
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(never.stdout.is_empty());

    // An endpoint that never answers is waited for as long, then named.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let run = run_cli(
        &[
            "describe",
            "--stream",
            "ld-nowhere",
            "--endpoint",
            &nowhere,
            "--wait-active",
            "--timeout",
            "2s",
        ],
        b"",
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("is not ACTIVE after 2s") && run.stderr.contains(&nowhere),
        "{}",
        run.stderr
    );
}

#[test]
fn list_follows_pages_with_and_without_next_token() {
    let standin = StandIn::start();
    let names = ["p-a", "p-b", "p-c", "p-d", "p-e"];
    for name in names {
        standin.add_stream(name, 1);
    }
    let dir = TempDir::new("list");
    let config = dir.file(
        "config.json",
        standin.config(json!({})).to_string().as_bytes(),
    );
    let config = config.to_str().unwrap();
    let count = |op: &str| standin.seen().iter().filter(|s| s.op == op).count();

    for tokens in [true, false] {
        standin.set_list_pages(ListPages { size: 2, tokens });
        let (lists, describes) = (count("ListStreams"), count("DescribeStreamSummary"));
        let run = run_cli(&["list", "--config", config, "--format", "json"], b"");
        assert_eq!(run.code, 0, "{run:?}");
        let listed = run.json();
        let got: Vec<&str> = listed
            .iter()
            .map(|s| s["stream"].as_str().unwrap())
            .collect();
        assert_eq!(got, names, "tokens: {tokens}");
        assert!(listed
            .iter()
            .all(|s| s["status"] == "ACTIVE" && s["mode"] == "PROVISIONED"));
        assert_eq!(count("ListStreams") - lists, 3, "three pages of 2");
        // Summaries in the pages spare a DescribeStreamSummary per stream.
        let expected_describes = if tokens { 0 } else { names.len() };
        assert_eq!(
            count("DescribeStreamSummary") - describes,
            expected_describes
        );
    }
}
