//! The second adversarial review (issue 21), through the binary: waits whose
//! deadline bounds the calls inside them, a `credential_process` that hangs,
//! SIGTERM in every phase of a sync (stdout blocked too), the pipeline
//! commands on a closed stdout, odd but well-formed input (`meta` of any
//! shape, an `emitted_at` out of range, numeric partition keys), messages
//! that read as sentences, and the progress lines of a long sync.

use crate::support;
use crate::support::cli::{cli, run_cli};
use crate::support::fault_proxy::FaultProxy;
use crate::support::live;
use crate::support::standin::{self, with_stream_s as stand_in, Call, Fault, StandIn};
use crate::support::{
    catalog_s as cat, record_s as rec, run_write, state_line, through_sh, TempDir,
};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

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

#[test]
fn read_idle_timeout_ends_a_call_that_gets_no_answer() {
    let kl = support::shared_kinesis_local(&[]);
    let dir = TempDir::new("idle");
    let config = kl.config(json!({"shardCount": 1}));
    let config = dir.file("config.json", config.to_string().as_bytes());
    let config = config.to_str().unwrap();
    let put = support::output_with_stdin(
        cli(&[
            "put",
            "--stream",
            "idle-calls",
            "--create",
            "--config",
            config,
        ]),
        b"one\ntwo\n",
    );
    assert!(put.status.success(), "{put:?}");
    // The first page comes; every later GetRecords gets its answer after a minute.
    let proxy = FaultProxy::start(&kl.endpoint(), |c: &Call| match (c.op.as_str(), c.n) {
        ("GetRecords", n) if n > 0 => Fault::SlowAnswer(Duration::from_secs(60)),
        _ => Fault::None,
    });
    let started = Instant::now();
    let run = run_cli(
        &[
            "read",
            "--stream",
            "idle-calls",
            "--config",
            config,
            "--endpoint",
            &proxy.endpoint(),
            "--follow",
            "--idle-timeout",
            "3s",
        ],
        b"",
    );
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.lines(), ["one", "two"]);
    assert!(took < Duration::from_secs(8), "read ended after {took:?}");
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

// ------------------------------------------------ 3: a credential_process that hangs

/// Whether process `pid` is gone (or a zombie nobody reaped yet).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn a_hanging_credential_process_is_named_and_ended_with_its_children() {
    let s = stand_in();
    let dir = TempDir::new("hang");
    let pids = dir.path.join("pids");
    let script = dir.file(
        "hang.sh",
        format!(
            "echo $$ > {0}; sleep 300 & echo $! >> {0}; wait\n",
            pids.display()
        )
        .as_bytes(),
    );
    let profiles = dir.file(
        "config",
        format!(
            "[profile hang]\ncredential_process = sh {}\n",
            script.display()
        )
        .as_bytes(),
    );
    let mut list = support::command(&["list", "--endpoint", &s.endpoint()]);
    list.env("AWS_CONFIG_FILE", &profiles)
        .env("AWS_PROFILE", "hang")
        .env("AWS_REGION", standin::REGION);
    // In a session of its own, without a terminal, as under Airbyte or CI
    // (under a terminal the process may prompt, so it shares the program's
    // group); setsid execs the binary, which keeps its pid.
    let mut command = support::under("setsid", &[], &list);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = support::Reaped(command.spawn().expect("spawn the binary"));
    let (lines, stderr) = std::sync::mpsc::channel();
    let err = child.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(err)).map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let notice = stderr
        .recv_timeout(Duration::from_secs(10))
        .expect("a line on stderr while the process hangs");
    assert!(
        notice.starts_with(
            "destination-kinesis: still waiting for credential_process `sh ...` of profile `hang` \
             (`sh -c` with its command line) to print credentials, 3 s so far"
        ),
        "{notice}"
    );
    let started: Vec<u32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(started.len(), 2, "the script and its child run");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = support::exit_within(&mut child.0, Duration::from_secs(5));
    assert_eq!(code, -1, "ended by SIGTERM, as by default during set-up");
    let deadline = Instant::now() + Duration::from_secs(3);
    while !started.iter().all(|&pid| gone(pid)) {
        assert!(
            Instant::now() < deadline,
            "the credential_process and its child are still running: {started:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ------------------------------------------------ 4: SIGTERM in every phase

/// A write of 200 records (a state every 100) to the stand-in's one-shard
/// `_a`, its PutRecords calls faulted as `fault` says, its input closed at
/// once, and SIGTERM once the first call came: the run, and how long after
/// the signal it ended.
fn sigterm_once_the_input_ended(
    extra: Value,
    fault: impl Fn(&Call) -> Fault + Send + Sync + 'static,
) -> (StandIn, live::Input, support::Run, Duration) {
    let s = StandIn::start();
    s.add_stream("_a", 1);
    s.script(move |c: &Call| match c.op.as_str() {
        "PutRecords" => fault(c),
        _ => Fault::None,
    });
    let streams = [(None, "a")];
    let input = live::input(200, 100, &streams, |_| 10);
    let mut started = live::start(&s.config(extra), &support::catalog(&streams));
    let mut stdin = started.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, &input.bytes).unwrap();
    drop(stdin);
    s.wait_for("the first call", |s| !s.puts().is_empty());
    started.signal("TERM");
    let signalled = Instant::now();
    let run = started.watch(&s);
    let took = signalled.elapsed();
    (s, input, run, took)
}

#[test]
fn sigterm_after_the_end_of_input_still_ends_with_a_trace_and_exit_1() {
    // Calls are throttled for 2 s: the input is at its end long before they
    // pass, and in one batch, which goes once the whole input is read.
    let until = Instant::now() + Duration::from_secs(2);
    let (s, input, run, took) =
        sigterm_once_the_input_ended(json!({"bufferSize": 500}), move |_| {
            if Instant::now() < until {
                Fault::throttle()
            } else {
                Fault::None
            }
        });
    assert!(
        took < Duration::from_secs(10),
        "ended {took:?} after the signal"
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.failure_type(), "transient_error");
    assert!(
        run.error_message()
            .starts_with("sync cancelled by SIGTERM: sent what was buffered"),
        "{}",
        run.error_message()
    );
    let d = live::check_delivery(&s, &input, &run, true);
    assert_eq!(d.unique, 200, "nothing was lost");
    assert_eq!(run.states().len(), 2, "every state echoed: {}", run.stdout);
}

#[test]
fn sigterm_ends_a_run_whose_stdout_nobody_reads_within_the_grace_period() {
    let s = stand_in();
    let pad = "p".repeat(1024);
    let mut input = String::new();
    for i in 0..500 {
        input.push_str(&rec(i));
        input.push_str(&format!(
            "{{\"type\":\"STATE\",\"state\":{{\"data\":{{\"n\":{i},\"pad\":\"{pad}\"}}}}}}\n"
        ));
    }
    let mut started = live::start(&s.config(json!({})), &cat());
    let mut stdin = started.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = std::io::Write::write_all(&mut stdin, input.as_bytes());
    });
    // Half a megabyte of states into a 64 KiB pipe nobody reads: the program
    // blocks writing them long before the end.
    s.wait_for("records stored", |s| s.stored_len() >= 50);
    std::thread::sleep(Duration::from_millis(500));
    started.signal("TERM");
    let signalled = Instant::now();
    let code = support::exit_within(&mut started.child, Duration::from_secs(20));
    let took = signalled.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut started.child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(16),
        "ended {took:?} after the signal"
    );
    assert!(
        stderr.contains("sync cancelled by SIGTERM, which came 12 s ago")
            && stderr.contains("room on standard output"),
        "{stderr}"
    );
    drop(feeder);
}

#[test]
fn sigterm_while_an_answer_never_comes_ends_the_run_within_the_grace_period() {
    let (_s, _input, run, took) =
        sigterm_once_the_input_ended(json!({"requestTimeoutSeconds": 90}), |c: &Call| match c.n {
            0 => Fault::SlowAnswer(Duration::from_secs(120)),
            _ => Fault::None,
        });
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(16),
        "ended {took:?} after the signal"
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.failure_type(), "transient_error");
    assert!(
        run.error_message()
            .starts_with("sync cancelled by SIGTERM, which came 12 s ago")
            && run.error_message().contains("an answer from Kinesis"),
        "{}",
        run.error_message()
    );
    assert!(run.states().is_empty(), "no answer, no state");
}

// ------------------------------------------------ progress during long syncs

#[test]
fn a_sync_logs_its_progress_at_the_interval_with_figures_that_add_up() {
    let s = stand_in();
    s.script(|c: &Call| match (c.op.as_str(), c.n % 3) {
        ("PutRecords", 1) => Fault::FailEntries {
            code: "ProvisionedThroughputExceededException",
            per_mille: 300,
        },
        _ => Fault::None,
    });
    let config = s.config(json!({"progressIntervalSeconds": 1}));
    let mut started = live::start(&config, &cat());
    let mut stdin = started.stdin.take().unwrap();
    // 2000 records over 4 s, then 2.5 s of quiet: a line comes after the
    // last record is stored and its state echoed, so the lines add up to the
    // final figures.
    let feeder = std::thread::spawn(move || {
        for i in 0..2000 {
            let mut lines = rec(i);
            if (i + 1) % 100 == 0 {
                lines.push_str(&state_line(i as u64));
            }
            std::io::Write::write_all(&mut stdin, lines.as_bytes()).unwrap();
            if (i + 1) % 50 == 0 {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        std::thread::sleep(Duration::from_millis(2500));
    });
    let run = started.watch(&s);
    feeder.join().unwrap();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let prefix = destination_kinesis::airbyte::progress_log::PROGRESS_PREFIX;
    let lines: Vec<Value> = run
        .logs_at("DEBUG")
        .into_iter()
        .filter_map(|m| m.strip_prefix(prefix))
        .map(|json| serde_json::from_str(json).expect("progress figures are JSON"))
        .collect();
    let texts: Vec<&str> = run
        .logs_at("INFO")
        .into_iter()
        .filter(|m| m.starts_with("progress over the last "))
        .collect();
    assert!(lines.len() >= 5, "{:?}", run.logs());
    assert_eq!(texts.len(), lines.len());
    let figures = run.figures();
    for key in [
        "records",
        "dataBytes",
        "accepted",
        "throttledEntries",
        "retriedEntries",
        "statesEchoed",
    ] {
        let sum: u64 = lines.iter().map(|l| l[key].as_u64().unwrap()).sum();
        assert_eq!(Value::from(sum), figures[key], "{key}: {lines:?}");
    }
    assert!(figures["throttledEntries"].as_u64().unwrap() > 0);
    let stored_bytes: u64 = s
        .stored()
        .iter()
        .map(|r| (r.data.len() + r.partition_key.len()) as u64)
        .sum();
    let accepted_bytes: u64 = lines
        .iter()
        .map(|l| l["acceptedBytes"].as_u64().unwrap())
        .sum();
    assert_eq!(accepted_bytes, stored_bytes);
    for (line, text) in lines.iter().zip(&texts) {
        let seconds = line["seconds"].as_f64().unwrap();
        // On a 1 s grid: a line that came late is followed by a nearer one.
        assert!(seconds > 0.0 && seconds < 4.0, "{line}");
        let rate = line["accepted"].as_f64().unwrap() / seconds;
        assert!((line["recordsPerSecond"].as_f64().unwrap() - rate).abs() < 1e-6);
        assert!(
            text.contains(&format!("read {} records", line["records"]))
                && text.contains(&format!("echoed {} states", line["statesEchoed"])),
            "{text} / {line}"
        );
    }
    let last = lines.last().unwrap();
    assert_eq!(last["statesHeldBack"], 0);
    // While records flowed, states waited for their records, briefly.
    assert!(
        lines
            .iter()
            .filter_map(|l| l["oldestStateWaitingSeconds"].as_f64())
            .all(|age| age < 5.0),
        "{lines:?}"
    );
}
