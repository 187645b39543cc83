//! The sending engine at its edges, through the binary (issue 12): stdout
//! that cannot be written, HTTP 429, answers without a sequence number, big
//! STATE lines, a quiet source's states, odd stdin (a BOM, blank lines of
//! any ASCII blanks, closed or empty), and stream names that collide.

use crate::support;
use crate::support::cli::cli;
use crate::support::live::{self, check_delivery, record_number, run_live};
use crate::support::standin::{with_stream_s as stand_in, Call, Fault, StandIn};
use crate::support::{
    catalog, catalog_s as cat, exit_within, record_line, record_s as rec, run_write, state_line,
    through_sh, write_command, Reaped, Run, TempDir,
};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `records` records with a LEGACY state after every 100.
fn many(records: usize) -> Vec<u8> {
    let mut input = String::new();
    for i in 0..records {
        input.push_str(&rec(i));
        if (i + 1) % 100 == 0 {
            input.push_str(&state_line(i as u64));
        }
    }
    input.into_bytes()
}

/// Feeds `input` to a child's stdin on a thread; the thread gives back how
/// many bytes the child took before it closed its end.
fn feed(child: &mut Child, input: Vec<u8>) -> JoinHandle<usize> {
    let mut stdin = child.stdin.take().expect("stdin piped");
    std::thread::spawn(move || {
        let mut fed = 0;
        for chunk in input.chunks(16 * 1024) {
            if stdin.write_all(chunk).is_err() {
                break;
            }
            fed += chunk.len();
        }
        fed
    })
}

/// Reads a child's stderr to its end on a thread.
fn stderr_of(child: &mut Child) -> JoinHandle<String> {
    let mut err = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    })
}

// ------------------------------------------------ 1: stdout that cannot be written

/// A run whose stdout broke: it must have stopped reading, said so, and failed.
fn assert_stopped_for_stdout(code: i32, stderr: &str, fed: usize, input: usize, s: &StandIn) {
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cannot write to standard output"),
        "said on stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        fed < input / 2,
        "stopped reading: took {fed} of {input} bytes"
    );
    assert!(
        s.stored_len() < 50_000,
        "stopped sending: {} stored",
        s.stored_len()
    );
}

#[test]
fn write_stops_when_stdout_is_closed_mid_run() {
    let s = stand_in();
    let input = many(100_000);
    let total = input.len();
    let (mut c, _dir) = write_command(&s.config(json!({})), &cat());
    let mut child = Reaped(c.spawn().expect("spawn"));
    let err = stderr_of(&mut child.0);
    let fed = feed(&mut child.0, input);
    // Read the start LOG, then close the read end, as `| head -1` does.
    let mut out = BufReader::new(child.0.stdout.take().expect("stdout"));
    let mut first = String::new();
    out.read_line(&mut first).expect("the start LOG");
    assert!(first.contains("writing to Kinesis"), "{first}");
    drop(out);
    let code = exit_within(&mut child.0, Duration::from_secs(30));
    let fed = fed.join().unwrap();
    assert_stopped_for_stdout(code, &err.join().unwrap(), fed, total, &s);
}

#[test]
fn dev_null_opened_for_writing_is_a_stdout_but_read_write_counts_as_closed() {
    // `> /dev/null` from a shell opens it write-only: states go nowhere on
    // purpose and the run succeeds. Opened read-write (what Rust's and
    // Python's DEVNULL give a child) it is taken for a closed stdout, as the
    // README says.
    let dir = TempDir::new("devnull");
    for read_too in [false, true] {
        let s = stand_in();
        let cfg = dir.file("config.json", s.config(json!({})).to_string().as_bytes());
        let catf = dir.file("catalog.json", cat().to_string().as_bytes());
        let (cfg, catf) = (cfg.to_str().unwrap(), catf.to_str().unwrap());
        let mut c = support::command(&["write", "--config", cfg, "--catalog", catf]);
        let null = std::fs::OpenOptions::new()
            .write(true)
            .read(read_too)
            .open("/dev/null")
            .expect("/dev/null");
        c.stdout(null).stdin(Stdio::piped()).stderr(Stdio::piped());
        let mut child = Reaped(c.spawn().expect("spawn"));
        let err = stderr_of(&mut child.0);
        let fed = feed(&mut child.0, many(100));
        let code = exit_within(&mut child.0, Duration::from_secs(30));
        let stderr = err.join().unwrap();
        fed.join().unwrap();
        if read_too {
            assert_eq!(code, 1, "{stderr}");
            assert_eq!(s.stored_len(), 0, "nothing sent: {stderr}");
        } else {
            assert_eq!(code, 0, "{stderr}");
            assert_eq!(s.stored_len(), 100, "every record sent: {stderr}");
        }
    }
}

#[test]
fn write_with_stdout_closed_or_full_stops_at_once() {
    let dir = TempDir::new("stdout");
    for how in ["closed", "/dev/full"] {
        let s = stand_in();
        let cfg = dir.file("config.json", s.config(json!({})).to_string().as_bytes());
        let catf = dir.file("catalog.json", cat().to_string().as_bytes());
        let (cfg, catf) = (cfg.to_str().unwrap(), catf.to_str().unwrap());
        let args = ["write", "--config", cfg, "--catalog", catf];
        let mut c = if how == "closed" {
            // `>&-`: the program starts with no stdout at all.
            let mut c = through_sh(r#"exec "$0" "$@" >&-"#, &args);
            c.stdout(Stdio::null());
            c
        } else {
            let mut c = support::command(&args);
            let full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .expect("/dev/full");
            c.stdout(full);
            c
        };
        c.stdin(Stdio::piped()).stderr(Stdio::piped());
        let input = many(50_000);
        let total = input.len();
        let mut child = Reaped(c.spawn().expect("spawn"));
        let err = stderr_of(&mut child.0);
        let fed = feed(&mut child.0, input);
        let code = exit_within(&mut child.0, Duration::from_secs(30));
        let stderr = err.join().unwrap();
        assert_stopped_for_stdout(code, &stderr, fed.join().unwrap(), total, &s);
        assert_eq!(s.stored_len(), 0, "{how}: nothing sent");
        if how == "closed" {
            assert!(
                stderr.contains("closed when the program started"),
                "{stderr}"
            );
        } else {
            assert!(stderr.contains("No space left"), "{stderr}");
        }
    }
}

#[test]
fn read_closed_by_head_exits_0_quietly() {
    let kl = support::shared_kinesis_local(&[]);
    let dir = TempDir::new("head");
    let cfg = dir.file(
        "config.json",
        kl.config(json!({"shardCount": 1})).to_string().as_bytes(),
    );
    let cfg = cfg.to_str().unwrap();
    let lines: String = (0..3000).map(|i| format!("{i:0>200}\n")).collect();
    let put = support::output_with_stdin(
        cli(&[
            "put",
            "--stream",
            "edges-head",
            "--create",
            "--shards",
            "1",
            "--config",
            cfg,
        ]),
        lines.as_bytes(),
    );
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    // 600 KB of output through a 64 KB pipe: `head` is gone long before the end.
    let errors = dir.path.join("read.err");
    let out = Command::new("bash")
        .args([
            "-c",
            r#""$0" read --config "$1" --stream edges-head 2>"$2" | head -1; echo "read exited ${PIPESTATUS[0]}""#,
            support::binary(),
            cfg,
            errors.to_str().unwrap(),
        ])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut printed = stdout.lines();
    assert_eq!(printed.next(), Some(format!("{:0>200}", 0).as_str()));
    assert_eq!(printed.next(), Some("read exited 0"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&errors).unwrap(), "", "quiet");
}

// ---------------------------------------------------------------- 5: HTTP 429

#[test]
fn http_429_is_retried_like_a_throttle() {
    let s = stand_in();
    s.script(|c: &Call| match (c.op.as_str(), c.n) {
        ("PutRecords", 0) => Fault::Reject {
            status: 429,
            code: "ThrottlingException",
            message: "Rate exceeded".into(),
        },
        // What a proxy or load balancer says: no AWS error body at all.
        ("PutRecords", 1) => Fault::BareStatus(429),
        _ => Fault::None,
    });
    let input = live::input(10, 10, &[(None, "s")], |_| 0);
    let live = run_live(&s, &s.config(json!({})), &cat(), input.bytes.clone());
    assert_eq!(live.code, 0, "{}\n{}", live.stdout, live.stderr);
    check_delivery(&s, &input, &live, true);
    let statuses: Vec<u16> = s
        .seen()
        .iter()
        .filter(|x| x.op == "PutRecords")
        .map(|x| x.status)
        .collect();
    assert_eq!(statuses, [429, 429, 200]);
    assert_eq!(live.figures()["retriedEntries"], 20);
    assert_eq!(live.states().len(), 1);
}

// ------------------------------------------------ 12: an empty sequence number

#[test]
fn an_empty_sequence_number_is_not_an_acknowledgement() {
    let s = stand_in();
    s.script(|c: &Call| match (c.op.as_str(), c.n) {
        ("PutRecords", 0) => Fault::EmptySequenceNumbers { every: 3 },
        _ => Fault::None,
    });
    let input = live::input(10, 10, &[(None, "s")], |_| 0);
    let live = run_live(&s, &s.config(json!({})), &cat(), input.bytes.clone());
    assert_eq!(live.code, 0, "{}\n{}", live.stdout, live.stderr);
    let d = check_delivery(&s, &input, &live, true);
    // Entries 3, 6 and 9 of the first call were answered "" and sent again.
    let puts: Vec<usize> = s.puts().iter().map(|p| p.entries).collect();
    assert_eq!(puts, [10, 3]);
    let twice: Vec<usize> = (0..10).filter(|&i| d.copies[i] == 2).collect();
    assert_eq!(twice, [2, 5, 8]);
    let f = live.figures();
    assert_eq!(f["possibleDuplicates"], 3, "{f}");
    assert_eq!(f["retriedEntries"], 3, "{f}");
    assert_eq!(f["accepted"], 10, "{f}");
}

// ------------------------------------------------------------- 6: big STATEs

#[test]
fn a_three_mib_global_state_is_echoed() {
    let s = stand_in();
    let big = "g".repeat(3 * 1024 * 1024);
    let state = format!(
        "{{\"type\":\"STATE\",\"state\":{{\"type\":\"GLOBAL\",\"global\":{{\"shared_state\":{{\"lsn\":\"{big}\"}},\"stream_states\":[]}},\"id\":7}}}}\n"
    );
    let input = [rec(0), rec(1), state.clone(), rec(2), state_line(1)].concat();
    let run = run_write(&s.config(json!({})), &cat(), input.as_bytes());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let states = run.states();
    assert_eq!(states.len(), 2);
    assert_eq!(
        states[0]["state"]["global"]["shared_state"]["lsn"]
            .as_str()
            .map(str::len),
        Some(big.len())
    );
    assert_eq!(states[0]["state"]["id"], 7);
    assert_eq!(states[0]["state"]["destinationStats"]["recordCount"], 2.0);
    assert_eq!(s.stored_len(), 3);
}

/// A line of `kind` just over 64 MiB, after two records and a state: the
/// run fails naming the line and what it was, keeping what came before.
fn line_over_the_limit(kind: &str) {
    let s = stand_in();
    let mut input = [rec(0), rec(1), state_line(0)].concat().into_bytes();
    let head = match kind {
        "STATE" => r#"{"type":"STATE","state":{"type":"GLOBAL","global":{"shared_state":{"x":""#,
        _ => r#"{"type":"RECORD","record":{"stream":"s","emitted_at":1,"data":{"x":""#,
    };
    input.extend_from_slice(head.as_bytes());
    input.resize(input.len() + 64 * 1024 * 1024, b'x');
    input.extend_from_slice(b"\"}}}}\n");
    input.extend_from_slice(rec(2).as_bytes());
    let run = run_write(&s.config(json!({})), &cat(), &input);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let stored: Vec<usize> = s.stored().iter().map(record_number).collect();
    assert_eq!(stored, [0, 1], "earlier records kept, nothing after");
    assert_eq!(run.states().len(), 1, "the state before it is echoed");
    let m = run.error_message();
    assert!(
        m.contains("input line 4") && m.contains(&format!("a {kind} longer than 64 MiB")),
        "{m}"
    );
}

#[test]
fn a_state_line_over_64_mib_says_it_was_a_state() {
    line_over_the_limit("STATE");
}

#[test]
fn a_record_line_over_64_mib_says_it_was_a_record() {
    line_over_the_limit("RECORD");
}

// -------------------------------------------------------- 7: a quiet source

/// stdout lines of a child as they come, with when they came.
fn timed_lines(child: &mut Child) -> Receiver<(Instant, String)> {
    let out = child.stdout.take().expect("stdout piped");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    rx
}

#[test]
fn a_quiet_sources_state_comes_after_the_linger_not_seconds_later() {
    let s = stand_in();
    // The default linger (200 ms): what the wait is made of.
    let mut started = live::start(&s.config(json!({})), &cat());
    let lines = timed_lines(&mut started.child);
    let mut stdin = started.stdin.take().unwrap();
    let start_log = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("start LOG");
    assert!(start_log.1.contains("writing to Kinesis"));
    stdin
        .write_all([rec(0), rec(1), rec(2), state_line(9)].concat().as_bytes())
        .unwrap();
    stdin.flush().unwrap();
    let sent = Instant::now();
    // Then nothing, with stdin open, as a source that has nothing new.
    let (at, line) = lines
        .recv_timeout(Duration::from_secs(10))
        .expect("the state, while stdin is still open");
    let waited = at - sent;
    let state: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(state["type"], "STATE", "{line}");
    assert_eq!(state["state"]["data"]["n"], 9);
    assert_eq!(s.stored_len(), 3);
    assert!(
        started.child.try_wait().unwrap().is_none(),
        "stdin is still open and the program still running"
    );
    // About lingerMs and a round trip, well under the 2 s it took before.
    eprintln!("a quiet source's state came {waited:?} after its records");
    assert!(waited < Duration::from_millis(1200), "{waited:?}");
    drop(stdin);
    let code = exit_within(&mut started.child, Duration::from_secs(10));
    assert_eq!(code, 0);
}

// ---------------------------------------------------------- 9: odd stdin

const BOM: &[u8] = b"\xEF\xBB\xBF";

#[test]
fn a_bom_on_stdin_is_skipped_by_write() {
    let s = stand_in();
    let input = [BOM, rec(0).as_bytes(), state_line(0).as_bytes()].concat();
    let run = run_write(&s.config(json!({})), &cat(), &input);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.stored_len(), 1);
    assert_eq!(run.states().len(), 1);
}

/// Runs `put` into the stand-in's `stream` through `sh -c SCRIPT` (the
/// binary is `$0`, its arguments follow), feeding `stdin`.
fn put_via_sh(s: &StandIn, stream: &str, script: &str, stdin: &[u8]) -> (i32, String) {
    let dir = TempDir::new("put");
    let cfg = dir.file("config.json", s.config(json!({})).to_string().as_bytes());
    let sh = through_sh(
        script,
        &["put", "--stream", stream, "--config", cfg.to_str().unwrap()],
    );
    let out = support::output_with_stdin(sh, stdin);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn put_sends_a_bom_as_it_is() {
    let s = StandIn::start();
    s.add_stream("raw", 1);
    let input = [BOM, b"first\nsecond\n"].concat();
    let (code, stderr) = put_via_sh(&s, "raw", r#"exec "$0" "$@""#, &input);
    assert_eq!(code, 0, "{stderr}");
    let data: Vec<Vec<u8>> = s.stored().into_iter().map(|r| r.data).collect();
    assert_eq!(data, [[BOM, b"first"].concat(), b"second".to_vec()]);
}

#[test]
fn blank_lines_of_any_ascii_blanks_are_skipped_alike() {
    let s = stand_in();
    let blanks = [" ", "\t", "\r", "\x0b", "\x0c", " \x0b\t\x0c\r", ""];
    let mut input = String::new();
    for (i, blank) in blanks.iter().enumerate() {
        input.push_str(&rec(i));
        input.push_str(blank);
        input.push('\n');
    }
    input.push_str(&state_line(0));
    let run = run_write(&s.config(json!({})), &cat(), input.as_bytes());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.stored_len(), blanks.len());
    assert_eq!(run.states().len(), 1);
    assert_eq!(run.figures()["lines"], 2 * blanks.len() as u64 + 1);
}

#[test]
fn closed_or_empty_stdin_says_no_input_was_read() {
    let said = "no input was read";
    let dir = TempDir::new("stdin");
    for script in [r#"exec "$0" "$@" <&-"#, r#"exec "$0" "$@" </dev/null"#] {
        // write: the final LOG says so.
        let s = stand_in();
        let cfg = dir.file("config.json", s.config(json!({})).to_string().as_bytes());
        let catf = dir.file("catalog.json", cat().to_string().as_bytes());
        let out = through_sh(
            script,
            &[
                "write",
                "--config",
                cfg.to_str().unwrap(),
                "--catalog",
                catf.to_str().unwrap(),
            ],
        )
        .output()
        .expect("sh");
        let run = Run::airbyte(&out);
        assert_eq!(run.code, 0, "{script}: {run:?}");
        let infos = run.logs_at("INFO");
        assert!(
            infos.last().is_some_and(|l| l.contains(said)),
            "{script}: {infos:?}"
        );
        assert!(s.puts().is_empty());

        // put: the stderr summary says so.
        let (code, stderr) = put_via_sh(&s, "_s", script, b"");
        assert_eq!(code, 0, "{script}: {stderr}");
        assert!(stderr.contains(said), "{script}: {stderr}");
    }
}

// ------------------------------------------------- 11: colliding stream names

#[test]
fn streams_that_normalise_to_one_name_are_warned_about() {
    let s = StandIn::start();
    let catalog = catalog(&[
        (None, "a-b.x"),
        (None, "a_b.x"),
        (None, "東京都庁"),
        (None, "大阪城址"),
        (None, "alone"),
    ]);
    let input = [
        record_line(None, "a-b.x", "{\"i\":0}", 1),
        record_line(None, "a_b.x", "{\"i\":1}", 1),
        record_line(None, "東京都庁", "{\"i\":2}", 1),
        record_line(None, "大阪城址", "{\"i\":3}", 1),
    ]
    .concat();
    let run = run_write(&s.config(json!({})), &catalog, input.as_bytes());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let warned = run.logs_at("WARN");
    assert_eq!(warned.len(), 2, "{warned:?}");
    for (w, (a, b, kinesis)) in warned.iter().zip([
        ("a-b.x", "a_b.x", "_a_b_x"),
        ("東京都庁", "大阪城址", "_____"),
    ]) {
        assert!(
            w.contains(&format!(
                "`{a}` and `{b}` both go to Kinesis stream `{kinesis}`"
            )),
            "{w}"
        );
        assert!(w.contains("`streamName`"), "says how to avoid it: {w}");
    }
    // Mixed, but each record says where it came from.
    let in_a: Vec<Value> = s
        .stored()
        .iter()
        .filter(|r| r.stream == "_a_b_x")
        .map(|r| serde_json::from_slice::<Value>(&r.data).unwrap()["_airbyte_stream"].clone())
        .collect();
    assert_eq!(in_a, [json!("a-b.x"), json!("a_b.x")]);

    // A template without `{stream}` merges on purpose: no warning.
    let s = StandIn::start();
    let run = run_write(
        &s.config(json!({"streamName": "everything"})),
        &catalog,
        input.as_bytes(),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.logs_at("WARN").is_empty(), "{}", run.stdout);
    assert_eq!(s.stored_len(), 4);
}
