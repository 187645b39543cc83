//! A catalogue of bad input, each with its exit code, a TRACE error on stdout
//! that names the problem, no panic, every stdout line an AirbyteMessage, and
//! no secret (secret key, session token) in anything the program prints.

use crate::support;
use crate::support::live::record_number;
use crate::support::standin::{
    self, assert_no_secret, with_stream_s as stand_in, Call, Fault, StandIn,
};
use crate::support::{
    catalog_s as cat, command, record_line, record_s as rec, run_command, state_line,
    write_command, Run, Stdout, TempDir,
};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs `write` with config and catalog given as text (or missing: None).
fn write_raw(config: Option<&str>, catalog: Option<&str>, stdin: &[u8]) -> Run {
    let dir = TempDir::new("bad");
    let cfg = match config {
        Some(text) => dir.file("config.json", text.as_bytes()),
        None => dir.path.join("missing-config.json"),
    };
    let cat = match catalog {
        Some(text) => dir.file("catalog.json", text.as_bytes()),
        None => dir.path.join("missing-catalog.json"),
    };
    let run = run_command(
        command(&[
            "write",
            "--config",
            cfg.to_str().unwrap(),
            "--catalog",
            cat.to_str().unwrap(),
        ]),
        stdin,
    );
    assert_no_secret("stdout", &run.stdout);
    assert_no_secret("stderr", &run.stderr);
    run
}

fn write(config: &Value, catalog: &Value, stdin: &[u8]) -> Run {
    write_raw(Some(&config.to_string()), Some(&catalog.to_string()), stdin)
}

/// Checks a failed run: exit code, failure type, and that the TRACE message names the problem.
fn failed(run: &Run, code: i32, failure_type: &str, names: &str) {
    assert_eq!(run.code, code, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.failure_type(), failure_type, "{}", run.stdout);
    assert!(
        run.error_message().contains(names),
        "`{names}` not in: {}",
        run.error_message()
    );
    assert_eq!(run.of_type("TRACE").len(), 1, "one TRACE error");
}

#[test]
fn empty_stdin_is_an_empty_sync() {
    let s = stand_in();
    let run = write(&s.config(json!({})), &cat(), b"");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.error().is_none());
    assert!(run.states().is_empty());
    assert_eq!(run.figures()["records"], 0);
    let logs: Vec<&str> = run
        .of_type("LOG")
        .iter()
        .filter_map(|m| m["log"]["message"].as_str())
        .collect();
    assert!(
        logs.iter()
            .any(|l| l.contains("read 0 records") && l.contains("no input was read")),
        "{logs:?}"
    );
    assert!(s.puts().is_empty());
}

#[test]
fn blank_lines_are_ignored() {
    let s = stand_in();
    let input = format!("\n{}   \n\r\n\t\n{}{}\n\n", rec(0), rec(1), state_line(0));
    let run = write(&s.config(json!({})), &cat(), input.as_bytes());
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(s.stored_len(), 2);
    assert_eq!(run.states().len(), 1);
}

#[test]
fn unknown_message_type_is_ignored_with_a_log() {
    let s = stand_in();
    let input = format!(
        "{}{{\"type\":\"FOO\",\"foo\":{{}}}}\n{{\"type\":\"FOO\"}}\n{}",
        rec(0),
        rec(1)
    );
    let run = write(&s.config(json!({})), &cat(), input.as_bytes());
    assert_eq!(run.code, 0, "{}", run.stdout);
    let warned: Vec<_> = run
        .of_type("LOG")
        .into_iter()
        .filter(|m| {
            m["log"]["message"]
                .as_str()
                .unwrap()
                .contains("ignoring message type `FOO`")
        })
        .collect();
    assert_eq!(warned.len(), 1, "logged once: {}", run.stdout);
    assert_eq!(warned[0]["log"]["level"], "WARN");
    assert_eq!(s.stored_len(), 2);
}

/// A bad line after two records and a state: the records stay accepted and
/// the state echoed, nothing after the bad line is sent.
fn bad_line(line: &[u8], names: &str) {
    let s = stand_in();
    let mut input = format!("{}{}{}", rec(0), rec(1), state_line(0)).into_bytes();
    input.extend_from_slice(line);
    input.push(b'\n');
    input.extend_from_slice(rec(2).as_bytes());
    let run = write(&s.config(json!({})), &cat(), &input);
    failed(&run, 1, "system_error", names);
    assert!(
        run.error_message().contains("input line 4"),
        "{}",
        run.error_message()
    );
    let numbers: Vec<usize> = s.stored().iter().map(record_number).collect();
    assert_eq!(
        numbers,
        vec![0, 1],
        "records before the bad line stay accepted"
    );
    assert_eq!(
        run.states().len(),
        1,
        "the state before the bad line is echoed"
    );
}

#[test]
fn line_that_is_not_json() {
    bad_line(b"this is not json", "is not valid JSON");
}

#[test]
fn json_that_is_not_an_object() {
    bad_line(b"[1,2,3]", "is JSON but not an object");
    bad_line(b"\"RECORD\"", "is JSON but not an object");
}

#[test]
fn message_without_type() {
    bad_line(
        br#"{"record":{"stream":"s","data":{},"emitted_at":1}}"#,
        "has no `type` field",
    );
}

#[test]
fn record_without_stream() {
    bad_line(
        br#"{"type":"RECORD","record":{"data":{},"emitted_at":1}}"#,
        "is a RECORD without `stream`",
    );
}

#[test]
fn record_whose_data_is_not_an_object() {
    bad_line(
        br#"{"type":"RECORD","record":{"stream":"s","data":"text","emitted_at":1}}"#,
        "whose `data` is not an object",
    );
}

#[test]
fn record_of_a_stream_not_in_the_catalog() {
    let line = record_line(Some("ns"), "other", "{}", 1);
    bad_line(
        line.trim_end().as_bytes(),
        "RECORD of stream `ns.other`, which is not in the catalog",
    );
}

#[test]
fn record_over_one_mib() {
    let line = record_line(
        None,
        "s",
        &format!("{{\"big\":\"{}\"}}", "x".repeat(1_200_000)),
        1,
    );
    bad_line(
        line.trim_end().as_bytes(),
        "is 1200169 bytes as a Kinesis record, over the 1048576-byte limit of Kinesis stream `_s`",
    );
}

#[test]
fn invalid_utf8() {
    bad_line(
        b"{\"type\":\"RECORD\",\"record\":{\"stream\":\"s\xff\xfe\",\"data\":{},\"emitted_at\":1}}",
        "is not valid UTF-8",
    );
}

/// Peak resident memory (VmHWM) of a process, in kB.
fn peak_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn line_of_hundreds_of_megabytes_is_refused_without_being_held() {
    let s = stand_in();
    let (mut c, _dir) = write_command(&s.config(json!({})), &cat());
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let w = Arc::clone(&written);
    let head = format!("{}{}", rec(0), state_line(0));
    // 300 MB of one line, generated a chunk at a time: never held by the test either.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(head.as_bytes());
        let _ = stdin.write_all(br#"{"type":"RECORD","record":{"stream":"s","data":{"x":""#);
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..300 {
            if stdin.write_all(&chunk).is_err() {
                return;
            }
            w.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        let _ = stdin.write_all(b"\"}},\"emitted_at\":1}}\n");
    });
    let pid = child.id();
    let started = Instant::now();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(kb) = peak_kb(pid) {
            peak = peak.max(kb);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the program did not stop"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let code = child.wait().unwrap().code();
    writer.join().unwrap();
    assert_no_secret("stdout", &stdout);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let run = Run::new(
        Stdout::Airbyte,
        code.unwrap_or(-1),
        stdout,
        stderr,
        started.elapsed(),
    );
    failed(
        &run,
        1,
        "system_error",
        "input line 3 is a RECORD longer than 64 MiB",
    );
    let sent = written.load(Ordering::Relaxed);
    assert!(
        sent < 80 << 20,
        "the program stopped reading soon after 64 MiB, after {sent} bytes"
    );
    assert!(peak < 160 * 1024, "peak memory {peak} kB");
    assert_eq!(s.stored_len(), 1, "the record before it was sent");
    assert_eq!(run.states().len(), 1);
    eprintln!(
        "300 MB line: refused after {sent} bytes were written, peak RSS {peak} kB, in {:?}",
        started.elapsed()
    );
}

/// A config with the secrets in it, as text.
fn secret_config(s: &StandIn, extra: Value) -> String {
    s.config(extra).to_string()
}

#[test]
fn config_problems_are_config_errors_naming_the_field() {
    let s = stand_in();
    let input = rec(0);
    let run = write_raw(None, Some(&cat().to_string()), input.as_bytes());
    failed(&run, 2, "config_error", "cannot read config file");
    let not_json = format!(
        "{{\"privateKey\": \"{}\", \"sessionToken\": \"{}\",",
        standin::SECRET_KEY,
        standin::SESSION_TOKEN
    );
    let run = write_raw(Some(&not_json), Some(&cat().to_string()), input.as_bytes());
    failed(&run, 2, "config_error", "is not a JSON object");
    let run = write_raw(Some("[1]"), Some(&cat().to_string()), input.as_bytes());
    failed(&run, 2, "config_error", "is not a JSON object");
    for (extra, names) in [
        (
            json!({"bufferSize": "100"}),
            "config field `bufferSize` must be a whole number, found a string",
        ),
        (
            json!({"bufferSize": 0}),
            "config field `bufferSize` must be between 1 and 500, got 0",
        ),
        (
            json!({"bufferSize": 501}),
            "config field `bufferSize` must be between 1 and 500, got 501",
        ),
        (
            json!({"shardCount": 0}),
            "config field `shardCount` must be between 1",
        ),
        (
            json!({"privateKey": 12345}),
            "config field `privateKey` must be a string, found a number",
        ),
        (
            json!({"sessionToken": ["x"]}),
            "config field `sessionToken` must be a string, found an array",
        ),
        (
            json!({"createStreams": "yes"}),
            "config field `createStreams` must be true or false",
        ),
        (
            json!({"endpoint": "ftp://127.0.0.1:1"}),
            "config field `endpoint` must start with http:// or https://",
        ),
        (
            json!({"endpoint": "http://exa mple.com"}),
            "config field `endpoint` is not a valid URL",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:1/path"}),
            "config field `endpoint` must not have a path",
        ),
    ] {
        let run = write_raw(
            Some(&secret_config(&s, extra)),
            Some(&cat().to_string()),
            input.as_bytes(),
        );
        failed(&run, 2, "config_error", names);
    }
    assert!(s.seen().is_empty(), "no request for a bad config");
}

#[test]
fn catalog_problems_are_config_errors() {
    let s = stand_in();
    let config = secret_config(&s, json!({}));
    let input = rec(0);
    let run = write_raw(Some(&config), None, input.as_bytes());
    failed(&run, 2, "config_error", "cannot read catalog file");
    let run = write_raw(Some(&config), Some(r#"{"streams":[]}"#), input.as_bytes());
    failed(&run, 2, "config_error", "has no streams");
    let run = write_raw(Some(&config), Some(""), input.as_bytes());
    failed(&run, 2, "config_error", "is not a configured catalog");
    assert!(s.seen().is_empty());
}

#[test]
fn credential_problems_are_config_errors_without_secrets() {
    // From the config.
    let s = stand_in();
    s.expire_token();
    let run = write(&s.config(json!({})), &cat(), rec(0).as_bytes());
    failed(&run, 1, "config_error", "ExpiredTokenException");
    let s = stand_in();
    let run = write(
        &s.config(json!({"privateKey": format!("{}x", standin::SECRET_KEY)})),
        &cat(),
        rec(0).as_bytes(),
    );
    failed(&run, 1, "config_error", "InvalidSignatureException");
    let run = write(
        &s.config(json!({"accessKey": "AKIANOBODY0000000000"})),
        &cat(),
        rec(0).as_bytes(),
    );
    failed(&run, 1, "config_error", "UnrecognizedClientException");
    // From the environment.
    let s = stand_in();
    s.expire_token();
    let config = json!({"endpoint": s.endpoint(), "region": standin::REGION});
    let (mut c, _dir) = write_command(&config, &cat());
    c.env("AWS_ACCESS_KEY_ID", standin::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", standin::SECRET_KEY)
        .env("AWS_SESSION_TOKEN", standin::SESSION_TOKEN);
    let run = run_command(c, rec(0).as_bytes());
    assert_no_secret("stdout", &run.stdout);
    assert_no_secret("stderr", &run.stderr);
    failed(&run, 1, "config_error", "ExpiredTokenException");
}

#[test]
fn permission_denied_on_put_records() {
    let s = stand_in();
    s.script(|c: &Call| {
        if c.op == "PutRecords" {
            Fault::access_denied("PutRecords")
        } else {
            Fault::None
        }
    });
    let input = format!("{}{}{}", state_line(0), rec(0), state_line(1));
    let run = write(&s.config(json!({})), &cat(), input.as_bytes());
    failed(&run, 1, "config_error", "AccessDeniedException");
    assert!(run
        .error_message()
        .contains("not authorized to perform: kinesis:PutRecords"));
    let echoed: Vec<_> = run
        .states()
        .iter()
        .map(|m| m["state"]["data"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(echoed, vec![0], "only the state with nothing before it");
    assert_eq!(s.stored_len(), 0);
    assert_eq!(s.errors("AccessDeniedException"), 1, "not retried");
}

/// A key pasted with an invisible character (a zero-width space, a no-break
/// space) is refused before any request, naming where it came from and the
/// character's position and code point, never the value: `write` fails at
/// start with a config_error (exit 2), `check` answers FAILED saying so.
#[test]
fn a_stray_character_in_a_key_is_named_without_the_key() {
    let s = stand_in();
    let zwsp = format!("AKIA\u{200B}{}", &standin::ACCESS_KEY[4..]);
    let nbsp = format!("sTaN\u{00A0}{}", &standin::SECRET_KEY[4..]);
    let token = format!("{}\u{200B}", standin::SESSION_TOKEN);
    let cases = [
        (
            json!({"accessKey": zwsp}),
            "config field `accessKey` has U+200B ZERO WIDTH SPACE at character 5",
        ),
        (
            json!({"privateKey": nbsp}),
            "config field `privateKey` has U+00A0 NO-BREAK SPACE at character 5",
        ),
        (
            json!({"sessionToken": token}),
            "config field `sessionToken` has U+200B ZERO WIDTH SPACE at character 59",
        ),
    ];
    for (extra, names) in &cases {
        let config = s.config(extra.clone());
        let run = write(&config, &cat(), rec(0).as_bytes());
        failed(&run, 2, "config_error", names);
        assert!(run.stderr.contains(names), "{}", run.stderr);
        let checked = support::run_check(&config);
        let (state, message) = checked.connection_status();
        assert_eq!(state, "FAILED");
        assert!(message.contains(names), "{message}");
        assert_no_secret("check", &checked.stdout);
    }
    // From the environment.
    let config = json!({"endpoint": s.endpoint(), "region": standin::REGION});
    let (mut c, _dir) = write_command(&config, &cat());
    c.env(
        "AWS_ACCESS_KEY_ID",
        cases[0].0["accessKey"].as_str().unwrap(),
    )
    .env("AWS_SECRET_ACCESS_KEY", standin::SECRET_KEY);
    let run = run_command(c, rec(0).as_bytes());
    failed(
        &run,
        2,
        "config_error",
        "AWS_ACCESS_KEY_ID has U+200B ZERO WIDTH SPACE at character 5",
    );
    // From the shared credentials file.
    let dir = TempDir::new("bad-profile");
    let file = dir.file(
        "credentials",
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = sTaN\u{00A0}{}\n",
            standin::ACCESS_KEY,
            &standin::SECRET_KEY[4..]
        )
        .as_bytes(),
    );
    let (mut c, _dir) = write_command(&config, &cat());
    c.env("AWS_SHARED_CREDENTIALS_FILE", &file);
    let run = run_command(c, rec(0).as_bytes());
    failed(
        &run,
        2,
        "config_error",
        "`aws_secret_access_key` of profile `default` has U+00A0 NO-BREAK SPACE at character 5",
    );
    assert!(s.seen().is_empty(), "no request with a broken key");
    // A plain space inside a key is refused too.
    let run = write(
        &s.config(json!({"accessKey": "AKIA STANDIN"})),
        &cat(),
        rec(0).as_bytes(),
    );
    failed(&run, 2, "config_error", "U+0020 SPACE at character 5");
}

/// Files saved by editors that start them with a UTF-8 byte order mark work.
#[test]
fn config_and_catalog_files_may_start_with_a_byte_order_mark() {
    let s = stand_in();
    let bom = |text: String| format!("\u{FEFF}{text}");
    let run = write_raw(
        Some(&bom(secret_config(&s, json!({})))),
        Some(&bom(cat().to_string())),
        format!("{}{}", rec(0), state_line(0)).as_bytes(),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.stored_len(), 1);
    assert_eq!(run.states().len(), 1);
    let dir = TempDir::new("bom-check");
    let cfg = dir.file("config.json", bom(secret_config(&s, json!({}))).as_bytes());
    let checked = run_command(command(&["check", "--config", cfg.to_str().unwrap()]), b"");
    let (state, message) = checked.connection_status();
    assert_eq!(state, "SUCCEEDED", "{message}");
}

#[test]
fn a_duplicate_field_is_named_as_such() {
    bad_line(
        br#"{"type":"RECORD","type":"STATE","record":{"stream":"s","data":{},"emitted_at":1}}"#,
        "has the field `type` twice",
    );
}
