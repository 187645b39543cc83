//! The second adversarial review (issue 21), through the binary: waits whose
//! deadline bounds the calls inside them, a `credential_process` that hangs,
//! SIGTERM in every phase of a sync (stdout blocked too), the pipeline
//! commands on a closed stdout, odd but well-formed input (`meta` of any
//! shape, an `emitted_at` out of range, numeric partition keys), messages
//! that read as sentences, and the progress lines of a long sync.

#[path = "support/cli.rs"]
mod clirun;
mod support;

use clirun::{cli, run_cli};

use serde_json::{json, Value};
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::standin::{with_stream_s as stand_in, Call, Fault, StandIn};
use support::{catalog_s as cat, record_s as rec, run_write, state_line, through_sh, TempDir};

/// A loopback endpoint that takes connections and never answers; it lives as
/// long as the test process.
fn silent_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// The seconds a `describe --wait-active` that gave up says it waited.
fn said_waited(stderr: &str) -> f64 {
    let rest = stderr
        .split_once("is not ACTIVE after ")
        .unwrap_or_else(|| panic!("no wait told: {stderr}"))
        .1;
    let number = rest.split_once("s:").map_or("", |(n, _)| n);
    number
        .parse()
        .unwrap_or_else(|_| panic!("no seconds: {stderr}"))
}

/// A RECORD of stream `s` with `data`, `emitted_at` and whatever `more`
/// adds to the record object (`,"meta":…`).
fn record_with(data: &str, emitted_at: &str, more: &str) -> String {
    format!(
        "{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"s\",\"data\":{data},\"emitted_at\":{emitted_at}{more}}}}}\n"
    )
}

// ------------------------------------------------ 1: a wait's deadline bounds its calls

#[test]
fn wait_active_gives_up_at_its_timeout_when_nothing_answers() {
    let endpoint = silent_endpoint();
    let started = Instant::now();
    let run = run_cli(
        &[
            "describe",
            "--stream",
            "s",
            "--endpoint",
            &endpoint,
            "--wait-active",
            "--timeout",
            "3s",
        ],
        b"",
    );
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_secs(5),
        "gave up after {took:?}"
    );
    let said = said_waited(&run.stderr);
    assert!((3.0..3.5).contains(&said), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "the last look failed: DescribeStreamSummary on stream `s` failed: no answer from"
        ) && run.stderr.contains(&endpoint),
        "{}",
        run.stderr
    );
}

#[test]
fn wait_active_waits_as_long_as_it_says() {
    let s = StandIn::start();
    let dir = TempDir::new("wait");
    let config = dir.file("config.json", s.config(json!({})).to_string().as_bytes());
    let config = config.to_str().unwrap();
    for (timeout, least) in [("1s", 1.0), ("2s", 2.0)] {
        let started = Instant::now();
        let args = [
            "describe",
            "--stream",
            "missing",
            "--config",
            config,
            "--wait-active",
            "--timeout",
            timeout,
        ];
        let run = run_cli(&args, b"");
        let took = started.elapsed();
        assert_eq!(run.code, 1, "{run:?}");
        assert!(
            took >= Duration::from_secs_f64(least - 0.02),
            "--timeout {timeout}: gave up after {took:?}"
        );
        let said = said_waited(&run.stderr);
        assert!(
            (least..least + 0.5).contains(&said)
                && run
                    .stderr
                    .contains("Kinesis stream `missing` is not ACTIVE after ")
                && run.stderr.contains("s: it does not exist"),
            "{}",
            run.stderr
        );
    }
}

// ------------------------------------------------ 5: pipeline commands on a closed stdout

#[test]
fn read_list_and_describe_fail_loudly_on_a_closed_stdout() {
    let kl = support::shared_kinesis_local(&[]);
    let dir = TempDir::new("closed");
    let config = dir.file(
        "config.json",
        kl.config(json!({"shardCount": 1})).to_string().as_bytes(),
    );
    let config = config.to_str().unwrap();
    let put = support::output_with_stdin(
        cli(&[
            "put",
            "--stream",
            "closed-out",
            "--create",
            "--config",
            config,
        ]),
        b"one\ntwo\n",
    );
    assert!(put.status.success(), "{put:?}");
    for args in [
        &["read", "--stream", "closed-out", "--config", config][..],
        &["list", "--config", config][..],
        &["describe", "--stream", "closed-out", "--config", config][..],
    ] {
        let out = through_sh(r#"exec "$0" "$@" >&-"#, args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .output()
            .expect("run through sh");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("standard output was closed when the program started"),
            "{args:?}: {stderr}"
        );
    }
}

// ------------------------------------------------ 7: odd but well-formed input

#[test]
fn meta_of_any_shape_is_told_and_the_record_kept_and_keys_are_the_text_sent() {
    let s = stand_in();
    let changes = r#"[{"field":"b","change":"NULLED","reason":"SOURCE_FIELD_SIZE_LIMITATION"}]"#;
    let records = [
        (r#"{"id":1e2}"#, r#","meta":"x""#.to_string()),
        (
            r#"{"id":-0}"#,
            r#","meta":{"changes":{"field":"a"}}"#.into(),
        ),
        (
            r#"{"id":123456789012345678901234567890}"#,
            r#","meta":[1]"#.into(),
        ),
        (
            r#"{"id":1.50}"#,
            format!(r#","meta":{{"changes":{changes}}}"#),
        ),
        (r#"{"id":true}"#, r#","meta":{"changes":null}"#.into()),
        (r#"{"id":"k"}"#, r#","meta":{"changes":"none"}"#.into()),
    ];
    let mut input = String::new();
    for (i, (data, meta)) in records.iter().enumerate() {
        input.push_str(&record_with(data, &i.to_string(), meta));
    }
    input.push_str(&state_line(1));
    let config = s.config(json!({"recordFormat": "v2", "partitionKey": "/id"}));
    let run = run_write(&config, &cat(), input.as_bytes());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.states().len(), 1);
    let stored = s.stored();
    let keys: Vec<&str> = stored.iter().map(|r| r.partition_key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "1e2",
            "-0",
            "123456789012345678901234567890",
            "1.50",
            "true",
            "k"
        ]
    );
    let written: Vec<Value> = stored
        .iter()
        .map(|r| {
            let envelope: Value = serde_json::from_slice(&r.data).unwrap();
            envelope["_airbyte_meta"]["changes"].clone()
        })
        .collect();
    let listed: Value = serde_json::from_str(changes).unwrap();
    assert_eq!(
        written,
        [
            json!([]),
            json!([]),
            json!([]),
            listed,
            json!([]),
            json!([])
        ]
    );
    let warnings = run.logs_at("WARN");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].starts_with(
            "input line 1: the RECORD of stream `s` has a malformed meta: `meta` is a string, where an object belongs; \
             the record is written with an empty `_airbyte_meta.changes`"
        ),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1]
            .starts_with("4 records of stream `s` had a malformed meta, the first on input line 1"),
        "{}",
        warnings[1]
    );
}

#[test]
fn an_emitted_at_out_of_range_is_named() {
    let s = stand_in();
    let input = [
        rec(0),
        state_line(1),
        record_with(r#"{"i":1}"#, "9.3e18", ""),
        rec(2),
    ]
    .concat();
    let run = run_write(&s.config(json!({})), &cat(), input.as_bytes());
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.error_message().contains(
            "input line 3 is a RECORD of stream `s` whose `emitted_at` (9.3e18) is out of range"
        ),
        "{}",
        run.error_message()
    );
    assert_eq!(s.stored_len(), 1, "the record before it is sent");
    assert_eq!(run.states().len(), 1, "and its state echoed");
}

// ------------------------------------------------ 8: messages

#[test]
fn an_unknown_mode_and_a_refused_call_are_told_in_sentences() {
    let s = stand_in();
    s.script(|c: &Call| match c.op.as_str() {
        "PutRecords" => Fault::access_denied("PutRecords"),
        _ => Fault::None,
    });
    let mut catalog = cat();
    catalog["streams"][0]["destination_sync_mode"] = json!("upsert_someday");
    let run = run_write(&s.config(json!({})), &catalog, rec(0).as_bytes());
    assert_eq!(run.code, 1, "{}", run.stdout);
    let warnings = run.logs_at("WARN");
    assert!(
        warnings.iter().any(|w| w.starts_with(
            "stream `s` asks for destination sync mode `upsert_someday`, a mode this destination does not know: \
             Kinesis can only append records; its records are written as append"
        )),
        "{warnings:?}"
    );
    let error = &run.error().expect("a TRACE error")["trace"]["error"];
    let internal = error["internal_message"].as_str().unwrap();
    assert!(
        internal.starts_with(
            "PutRecords on stream `_s` failed: AccessDeniedException (HTTP 400): User: "
        ) && internal.ends_with("(AWS answered with an error; no retry can mend it)")
            && !internal.contains("KinesisError")
            && !internal.contains('{'),
        "{internal}"
    );
}
