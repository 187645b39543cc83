//! End-to-end: the built binary writes to a real kinesis-local, and what
//! landed is read back and compared with the input.

use crate::support::*;
use destination_kinesis::kinesis::NewStream;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The fixture records as (namespace, stream, raw data text, emitted_at).
fn fixture_records() -> Vec<(Option<String>, String, String, i64)> {
    fixture("messages.jsonl")
        .lines()
        .filter_map(|line| {
            let v: Value = serde_json::from_str(line).ok()?;
            if v["type"] != "RECORD" {
                return None;
            }
            // Raw data text, as it stands in the line.
            let start = line.find("\"data\":")? + 7;
            let end = line.rfind(",\"emitted_at\"")?;
            Some((
                v["record"]["namespace"].as_str().map(str::to_string),
                v["record"]["stream"].as_str()?.to_string(),
                line[start..end].to_string(),
                v["record"]["emitted_at"].as_i64()?,
            ))
        })
        .collect()
}

#[test]
fn fixtures_round_trip_exactly() {
    let kl = KinesisLocal::start();
    let config = kl.config(json!({}));
    let catalog: Value = serde_json::from_str(&fixture("catalog.json")).unwrap();
    let before = std::time::SystemTime::now();
    let run = run_write(&config, &catalog, fixture("messages.jsonl").as_bytes());
    let after = std::time::SystemTime::now();
    assert_eq!(run.code, 0, "{run:?}");

    let expected = fixture_records();
    assert_eq!(expected.len(), 9);
    let mut landed = 0;
    for (ns, stream) in [
        (Some("public"), "users"),
        (Some("archive"), "users"),
        (Some("Ventes-Été"), "Café Orders"),
        (None, "events"),
    ] {
        let kinesis_name = destination_kinesis::airbyte::naming::java_stream_name(ns, stream);
        let records = kl.read_back(&kinesis_name);
        let want: Vec<_> = expected
            .iter()
            .filter(|(n, s, _, _)| n.as_deref() == ns && s == stream)
            .collect();
        assert_eq!(records.len(), want.len(), "records in {kinesis_name}");
        let mut got: Vec<String> = records
            .iter()
            .map(|r| {
                let e = envelope(r);
                assert_eq!(e.as_object().unwrap().len(), 3, "{e}");
                let text = String::from_utf8_lossy(&r.data);
                let at = |field: &str| text.find(&format!("\"{field}\":")).unwrap();
                assert!(
                    text.starts_with("{\"_airbyte_ab_id\":")
                        && at("_airbyte_ab_id") < at("_airbyte_data")
                        && at("_airbyte_data") < at("_airbyte_emitted_at"),
                    "the Java connector's fields, in its order: {text}"
                );
                let id = e["_airbyte_ab_id"].as_str().unwrap();
                assert_eq!(id, r.partition_key, "the ab_id is the partition key");
                assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
                assert_read_between(&r.data, before, after);
                e["_airbyte_data"].as_str().unwrap().to_string()
            })
            .collect();
        let mut want: Vec<String> = want.iter().map(|(_, _, d, _)| d.clone()).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "data must come back byte for byte");
        landed += records.len();
    }
    assert_eq!(landed, 9);

    // Three states, in input order, with the destination's counts.
    let states = run.states();
    assert_eq!(states.len(), 3);
    assert_eq!(states[0]["state"]["type"], "STREAM");
    assert_eq!(states[0]["state"]["destinationStats"]["recordCount"], 3.0);
    assert_eq!(states[1]["state"]["type"], "GLOBAL");
    assert_eq!(states[1]["state"]["destinationStats"]["recordCount"], 8.0);
    assert_eq!(states[2]["state"]["data"]["legacy_cursor"], "2024-11-25");
    assert_eq!(states[2]["state"]["destinationStats"]["recordCount"], 1.0);
    // Numbers in states are echoed as they came.
    assert!(run.stdout.contains(r#""sourceStats":{"recordCount":3.0}"#));

    let logs = run.of_type("LOG");
    assert!(logs.first().unwrap()["log"]["message"]
        .as_str()
        .unwrap()
        .contains("public.users -> public_users"));
    // For people, the summary; for programs, the same figures as JSON.
    let summary = logs[logs.len() - 2]["log"]["message"].as_str().unwrap();
    assert!(summary.contains("Kinesis accepted 9 records"), "{summary}");
    assert_eq!(logs.last().unwrap()["log"]["level"], "DEBUG");
    assert_eq!(run.figures()["accepted"], 9);
}

#[test]
fn batches_by_buffer_size_and_echoes_each_state_after_its_records() {
    let kl = KinesisLocal::start();
    let config = kl.config(json!({ "bufferSize": 7 }));
    let catalog = catalog(&[(None, "a"), (Some("n"), "b")]);
    let mut input = String::new();
    for i in 0..100 {
        let stream = if i % 3 == 0 { "b" } else { "a" };
        let ns = if stream == "b" { Some("n") } else { None };
        input.push_str(&record_line(
            ns,
            stream,
            &format!("{{\"i\":{i}}}"),
            1_700_000_000_000 + i,
        ));
        if i % 10 == 9 {
            input.push_str(&state_line(i as u64));
        }
    }
    let run = run_write(&config, &catalog, input.as_bytes());
    assert_eq!(run.code, 0, "{run:?}");
    let a = kl.read_back("_a");
    let b = kl.read_back("n_b");
    assert_eq!(a.len() + b.len(), 100);
    assert_eq!(b.len(), 34);
    let states = run.states();
    let ns: Vec<u64> = states
        .iter()
        .map(|s| s["state"]["data"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, (0..10).map(|k| k * 10 + 9).collect::<Vec<_>>());
    assert!(states
        .iter()
        .all(|s| s["state"]["destinationStats"]["recordCount"] == 10.0));
    // 66 records to `a` in batches of 7 and 34 to `b`: ceil(66/7) + ceil(34/7) calls.
    assert_eq!(run.figures()["requests"], 15);
}

#[test]
fn existing_stream_is_kept_and_missing_one_created_with_shard_count() {
    let kl = KinesisLocal::start();
    let k = kl.client();
    k.create_stream("_pre", &NewStream::provisioned(1)).unwrap();
    let config = kl.config(json!({ "shardCount": 3 }));
    let run = run_write(
        &config,
        &catalog(&[(None, "pre"), (None, "fresh")]),
        record_line(None, "pre", "{}", 1).as_bytes(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        k.list_shards(&"_pre".into()).unwrap().len(),
        1,
        "an existing stream is not changed"
    );
    assert_eq!(k.list_shards(&"_fresh".into()).unwrap().len(), 3);
    assert!(run.of_type("LOG")[0]["log"]["message"]
        .as_str()
        .unwrap()
        .contains("created _fresh"));
    assert_eq!(kl.read_back("_pre").len(), 1);
}

#[test]
fn many_records_spread_over_shards() {
    let kl = KinesisLocal::start();
    let config = kl.config(json!({ "bufferSize": 500, "shardCount": 4 }));
    let mut input = String::new();
    for i in 0..2000 {
        input.push_str(&record_line(
            None,
            "bulk",
            &format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(100)),
            i,
        ));
    }
    input.push_str(&state_line(1));
    let run = run_write(&config, &catalog(&[(None, "bulk")]), input.as_bytes());
    assert_eq!(run.code, 0, "{run:?}");
    let records = kl.read_back("_bulk");
    assert_eq!(records.len(), 2000);
    let mut per_shard: HashMap<&str, usize> = HashMap::new();
    let mut seen = vec![false; 2000];
    for r in &records {
        *per_shard.entry(r.shard.as_str()).or_default() += 1;
        let data: Value =
            serde_json::from_str(envelope(r)["_airbyte_data"].as_str().unwrap()).unwrap();
        seen[data["i"].as_u64().unwrap() as usize] = true;
    }
    assert!(seen.iter().all(|s| *s), "every record landed");
    assert_eq!(per_shard.len(), 4, "random keys spread over every shard");
    assert_eq!(run.states().len(), 1);
}

#[test]
fn check_succeeds_against_emulator_and_creates_nothing() {
    let kl = KinesisLocal::start();
    let run = run_check(&kl.config(json!({})));
    assert_eq!(run.code, 0);
    let status = &run.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "SUCCEEDED", "{run:?}");
    assert!(
        kl.client().list_streams(100).unwrap().is_empty(),
        "check created nothing"
    );
}

#[test]
fn check_fails_fast_on_unreachable_endpoint() {
    let port = free_port();
    let started = std::time::Instant::now();
    let run = run_check(
        &json!({"endpoint": format!("http://127.0.0.1:{port}"), "accessKey": "a", "privateKey": "b"}),
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    assert_eq!(run.code, 0);
    let status = &run.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{status}"
    );
}

#[test]
fn write_fails_fast_on_unreachable_endpoint_and_echoes_no_state() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let started = std::time::Instant::now();
    let run = run_write(
        &json!({"endpoint": endpoint, "accessKey": "a", "privateKey": "b"}),
        &catalog(&[(None, "users")]),
        (record_line(None, "users", "{}", 1) + &state_line(1)).as_bytes(),
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.states().is_empty());
    let trace = &run.of_type("TRACE")[0]["trace"]["error"];
    let message = trace["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("cannot connect to") && message.contains(&endpoint),
        "{trace}"
    );
}

#[test]
fn check_names_the_bad_field() {
    let run = run_check(&json!({"endpoint": "http://127.0.0.1:1", "bufferSize": 501}));
    let status = &run.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED");
    assert!(
        status["message"].as_str().unwrap().contains("`bufferSize`"),
        "{status}"
    );
}

fn check_message(config: Value) -> String {
    let run = run_check(&config);
    assert_eq!(run.code, 0);
    let status = &run.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED", "{run:?}");
    status["message"].as_str().unwrap().to_string()
}

#[test]
fn check_explains_dns_and_tls_failures() {
    let creds =
        |endpoint: String| json!({"endpoint": endpoint, "accessKey": "a", "privateKey": "b"});
    let m = check_message(creds("http://no-such-host.invalid".into()));
    assert!(m.contains("cannot resolve the host"), "{m}");
    let kl = KinesisLocal::start();
    // The emulator's self-signed certificate is not trusted.
    let m = check_message(creds(format!("https://127.0.0.1:{}", kl.tls_port)));
    assert!(
        m.contains("TLS handshake") && m.contains("UnknownIssuer"),
        "{m}"
    );
    // https:// to a plain HTTP port.
    let m = check_message(creds(format!("https://127.0.0.1:{}", kl.port)));
    assert!(
        m.contains("TLS handshake") && m.contains("URL scheme"),
        "{m}"
    );
}

#[test]
fn check_without_credentials_says_where_to_put_them() {
    let m = check_message(json!({"endpoint": "http://127.0.0.1:1"}));
    assert!(
        m.contains("accessKey") && m.contains("AWS_ACCESS_KEY_ID"),
        "{m}"
    );
}
