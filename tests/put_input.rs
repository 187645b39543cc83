//! End to end against kinesis-local: `put`'s input options. NUL-framed,
//! key-delimited and base64 input read back byte-exact with `read --format
//! json`; an explicit hash key lands on the shard whose range holds it; bad
//! lines stop the run naming the line; bad flag values are usage errors
//! naming the flag.

use crate::support::cli::{cli, run_cli, run_on_stream};
use crate::support::*;
use base64::Engine;
use destination_kinesis::kinesis::shards::hash_of;
use destination_kinesis::kinesis::StreamMode;
use serde_json::{json, Value};

/// One emulator for the whole file; each test uses its own streams.
fn kl() -> &'static KinesisLocal {
    shared_kinesis_local(&[])
}

fn put(stream: &str, extra: &[&str], stdin: &[u8]) -> Run {
    run_on_stream("put", stream, &kl().endpoint(), extra, stdin)
}

/// Every record of `stream` as `read --format json` prints it.
fn read_json(stream: &str) -> Vec<Value> {
    let run = run_on_stream("read", stream, &kl().endpoint(), &["--format", "json"], b"");
    assert_eq!(run.code, 0, "{run:?}");
    run.json()
}

/// A record's bytes from `read --format json`: `data`, or `dataBase64`.
fn bytes_of(record: &Value) -> Vec<u8> {
    match (record["data"].as_str(), record["dataBase64"].as_str()) {
        (Some(text), _) => text.as_bytes().to_vec(),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("dataBase64 is base64"),
        _ => panic!("no data in {record}"),
    }
}

fn one_shard(stream: &str) {
    create_active(&kl().client(), stream, StreamMode::Provisioned, 1);
}

#[test]
fn nul_framed_input_reads_back_byte_exact() {
    one_shard("pi-nul");
    // Newlines and carriage returns are data here; empty records are skipped.
    let input = b"one\ntwo\0three\r\n\0\0\xff\xfe binary\0last without a NUL";
    let run = put("pi-nul", &["--delimiter", r"\0"], input);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("put 4 of 4 lines") && run.stderr.contains("skipped 1 empty line"),
        "{}",
        run.stderr
    );
    let got: Vec<Vec<u8>> = read_json("pi-nul").iter().map(bytes_of).collect();
    let want: Vec<&[u8]> = vec![
        b"one\ntwo",
        b"three\r\n",
        b"\xff\xfe binary",
        b"last without a NUL",
    ];
    assert_eq!(got, want);

    // Any one byte: a comma, with the default `\r\n` handling off.
    one_shard("pi-comma");
    let run = put("pi-comma", &["--delimiter", ","], b"a\r\n,b,c");
    assert_eq!(run.code, 0, "{run:?}");
    let got: Vec<Vec<u8>> = read_json("pi-comma").iter().map(bytes_of).collect();
    assert_eq!(got, [b"a\r\n".to_vec(), b"b".to_vec(), b"c".to_vec()]);
}

#[test]
fn key_delimited_input_gives_each_record_its_key() {
    one_shard("pi-keys");
    let input = b"customer-1:{\"n\":1}\ncustomer-2:a:b\r\ncustomer-1:\nk\xc3\xa9y:\xff\x00\n";
    let run = put("pi-keys", &["--key-delimiter", ":"], input);
    assert_eq!(run.code, 0, "{run:?}");
    let records = read_json("pi-keys");
    let got: Vec<(String, Vec<u8>)> = records
        .iter()
        .map(|r| (r["partitionKey"].as_str().unwrap().to_string(), bytes_of(r)))
        .collect();
    let want: Vec<(String, Vec<u8>)> = vec![
        ("customer-1".into(), b"{\"n\":1}".to_vec()),
        ("customer-2".into(), b"a:b".to_vec()),
        ("customer-1".into(), Vec::new()),
        ("kéy".into(), b"\xff\x00".to_vec()),
    ];
    assert_eq!(
        got, want,
        "the key is before the first delimiter, the record all after it"
    );

    // A multi-byte delimiter, with NUL framing.
    one_shard("pi-keys-tab");
    let run = put(
        "pi-keys-tab",
        &["--key-delimiter", r"\t=", "--delimiter", r"\0"],
        b"k1\t=line one\nline two\0k2\t=x\t=y\0",
    );
    assert_eq!(run.code, 0, "{run:?}");
    let records = read_json("pi-keys-tab");
    assert_eq!(records[0]["partitionKey"], "k1");
    assert_eq!(records[0]["data"], "line one\nline two");
    assert_eq!(
        (
            records[1]["partitionKey"].as_str(),
            records[1]["data"].as_str()
        ),
        (Some("k2"), Some("x\t=y"))
    );

    // A key longer than Kinesis takes is hashed, as write does.
    one_shard("pi-keys-long");
    let long = "k".repeat(300);
    let run = put(
        "pi-keys-long",
        &["--key-delimiter", ":"],
        format!("{long}:v\n").as_bytes(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    let key = read_json("pi-keys-long")[0]["partitionKey"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(key.len(), 64, "{key}");
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
}

#[test]
fn a_line_without_its_key_stops_the_run_naming_the_line() {
    one_shard("pi-nokey");
    let run = put(
        "pi-nokey",
        &["--key-delimiter", ":"],
        b"a:1\nno delimiter here\nb:2\n",
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("input line 2 has no key delimiter (--key-delimiter)")
            && run.stderr.contains("nor anything after it"),
        "{}",
        run.stderr
    );
    let got: Vec<Value> = read_json("pi-nokey")
        .iter()
        .map(|r| r["data"].clone())
        .collect();
    assert_eq!(got, [json!("1")], "the lines before it were sent");

    for (input, why) in [
        (&b"a:1\n:2\n"[..], "input line 2 has an empty key"),
        (b"\xff\xfe:2\n", "input line 1 has a key that is not UTF-8"),
    ] {
        let run = put("pi-nokey", &["--key-delimiter", ":"], input);
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.stderr.contains(why), "{}", run.stderr);
    }
}

#[test]
fn base64_input_carries_any_bytes() {
    one_shard("pi-b64");
    let all: Vec<u8> = (0..=255u8).collect();
    let records: Vec<Vec<u8>> = vec![
        vec![0x00, 0xFF, b'\n', b'a'],
        b"\r\n".to_vec(),
        b"plain text".to_vec(),
        all,
    ];
    let b64 = &base64::engine::general_purpose::STANDARD;
    let mut input = String::new();
    for r in &records {
        input.push_str(&b64.encode(r));
        input.push('\n');
    }
    // Unpadded base64 is taken too, and so are `\r\n` line ends.
    input.push_str("AP8\r\n");
    let run = put("pi-b64", &["--input", "base64"], input.as_bytes());
    assert_eq!(run.code, 0, "{run:?}");
    let mut want = records.clone();
    want.push(vec![0x00, 0xFF]);
    let got: Vec<Vec<u8>> = read_json("pi-b64").iter().map(bytes_of).collect();
    assert_eq!(got, want);

    // With keys: the key is text, the record after the delimiter base64.
    one_shard("pi-b64-keys");
    let run = put(
        "pi-b64-keys",
        &["--input", "base64", "--key-delimiter", ":"],
        format!("bin:{}\n", b64.encode([0u8, 255, 10])).as_bytes(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    let record = &read_json("pi-b64-keys")[0];
    assert_eq!(record["partitionKey"], "bin");
    assert_eq!(bytes_of(record), [0u8, 255, 10]);

    // A line that is not base64 stops the run there.
    let run = put("pi-b64", &["--input", "base64"], b"aGk=\nnot base64!\n");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("input line 2 is not base64"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_explicit_hash_key_picks_the_shard() {
    let k = kl().client();
    create_active(&k, "pi-hash", StreamMode::Provisioned, 2);
    let shards = k.list_shards(&"pi-hash".into()).unwrap();
    let low = shards
        .iter()
        .find(|s| s.hash_key_range.as_ref().is_some_and(|r| r.contains(0)))
        .unwrap()
        .shard_id
        .clone();
    let high = shards
        .iter()
        .find(|s| {
            s.hash_key_range
                .as_ref()
                .is_some_and(|r| r.contains(u128::MAX))
        })
        .unwrap()
        .shard_id
        .clone();
    assert_ne!(low, high);
    // Keys whose MD5 would put them on the high shard, and keys of the low one.
    let keys: Vec<String> = (0..200).map(|i| format!("key-{i}")).collect();
    let high_keys: Vec<&String> = keys
        .iter()
        .filter(|k| hash_of(k) > u128::MAX / 2)
        .take(5)
        .collect();
    let low_keys: Vec<&String> = keys
        .iter()
        .filter(|k| hash_of(k) <= u128::MAX / 2)
        .take(5)
        .collect();
    let lines = |keys: &[&String]| {
        keys.iter()
            .map(|k| format!("{k}:to-{k}\n"))
            .collect::<String>()
    };

    let run = put(
        "pi-hash",
        &["--key-delimiter", ":", "--explicit-hash-key", "0"],
        lines(&high_keys).as_bytes(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    let run = put(
        "pi-hash",
        &[
            "--key-delimiter",
            ":",
            "--explicit-hash-key",
            &u128::MAX.to_string(),
        ],
        lines(&low_keys).as_bytes(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    let records = read_json("pi-hash");
    assert_eq!(records.len(), 10);
    for r in &records {
        let key = r["partitionKey"].as_str().unwrap();
        let expected = if high_keys.iter().any(|k| k.as_str() == key) {
            &low
        } else {
            &high
        };
        assert_eq!(r["shard"].as_str(), Some(expected.as_str()), "{r}");
    }

    // Under aggregation, records with an explicit hash key are sent plain.
    let dir = TempDir::new("pi-hash");
    let config = dir.file(
        "c.json",
        json!({"aggregation": true}).to_string().as_bytes(),
    );
    create_active(&k, "pi-hash-agg", StreamMode::Provisioned, 2);
    let run = put(
        "pi-hash-agg",
        &[
            "--config",
            config.to_str().unwrap(),
            "--explicit-hash-key",
            &u128::MAX.to_string(),
        ],
        b"a\nb\nc\n",
    );
    assert_eq!(run.code, 0, "{run:?}");
    let records = read_json("pi-hash-agg");
    assert_eq!(records.len(), 3);
    for r in &records {
        assert!(r.get("subSequenceNumber").is_none(), "not aggregated: {r}");
        assert_eq!(r["shard"].as_str(), Some(high.as_str()), "{r}");
    }
    // Without it, the same config aggregates.
    create_active(&k, "pi-agg", StreamMode::Provisioned, 1);
    let run = put(
        "pi-agg",
        &["--config", config.to_str().unwrap()],
        b"a\nb\nc\n",
    );
    assert_eq!(run.code, 0, "{run:?}");
    let records = read_json("pi-agg");
    assert_eq!(records.len(), 3);
    assert!(
        records.iter().all(|r| r.get("subSequenceNumber").is_some()),
        "{records:?}"
    );
}

#[test]
fn a_raw_byte_that_is_not_utf8_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt;
    let mut c = cli(&["put", "--stream", "s", "--delimiter"]);
    c.arg(std::ffi::OsStr::from_bytes(b"\xff"));
    let out = output_with_stdin(c, b"x\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not UTF-8") && stderr.contains(r"\xff"),
        "{stderr}"
    );
}

#[test]
fn bad_values_of_the_new_flags_are_usage_errors_naming_the_flag() {
    for (args, flag, why) in [
        (&["--delimiter", "ab"][..], "--delimiter", "one byte"),
        (&["--delimiter", ""], "--delimiter", "empty"),
        (&["--delimiter", r"\q"], "--delimiter", "unknown escape"),
        (&["--delimiter", r"\x4"], "--delimiter", "two hex digits"),
        (&["--delimiter", "é"], "--delimiter", "2 bytes"),
        (&["--key-delimiter", ""], "--key-delimiter", "empty"),
        (
            &["--key-delimiter", r"\xZZ"],
            "--key-delimiter",
            "two hex digits",
        ),
        (&["--input", "binary"], "--input", "`text` or `base64`"),
        (
            &["--explicit-hash-key", "-1"],
            "--explicit-hash-key",
            "2^128 - 1",
        ),
        (
            &[
                "--explicit-hash-key",
                "340282366920938463463374607431768211456",
            ],
            "--explicit-hash-key",
            "2^128 - 1",
        ),
        (
            &["--explicit-hash-key", "0x10"],
            "--explicit-hash-key",
            "decimal",
        ),
        (
            &["--explicit-hash-key", ""],
            "--explicit-hash-key",
            "decimal",
        ),
        (
            &["--key-delimiter", ":", "--partition-key", "k"],
            "give --partition-key or --key-delimiter",
            "not both",
        ),
        (
            &["--key-delimiter", ":", "--partition-key-field", "/id"],
            "give --partition-key-field or --key-delimiter",
            "not both",
        ),
        (
            &["--key-delimiter", r"a\n"],
            "--key-delimiter",
            "--delimiter",
        ),
        (
            &["--key-delimiter", ",", "--delimiter", ","],
            "--key-delimiter",
            "--delimiter",
        ),
    ] {
        let mut all = vec!["put", "--stream", "s", "--endpoint", "http://127.0.0.1:1"];
        all.extend_from_slice(args);
        let run = run_cli(&all, b"x\n");
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains(flag) && run.stderr.contains(why),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
}
