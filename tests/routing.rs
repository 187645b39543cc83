//! Routing options end to end against kinesis-local: one target stream,
//! stream name templates, createStreams, streamMode, partition keys, data
//! format, and keepKeyOrder under injected partial failures.

use crate::support::http_server::{Answer, Forwarder, Reply, Request, Server};
use crate::support::*;
use destination_kinesis::kinesis::NewStream;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

#[test]
fn one_target_stream_for_all_airbyte_streams_marks_each_record() {
    let kl = KinesisLocal::start();
    let config = kl.config(json!({"streamName": "all-events"}));
    let mut input = record_line(Some("shop"), "orders", r#"{"o":1}"#, 1);
    input += &record_line(None, "clicks", r#"{"c":2}"#, 2);
    let run = run_write(
        &config,
        &catalog(&[(Some("shop"), "orders"), (None, "clicks")]),
        input.as_bytes(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    let records = kl.read_back("all-events");
    assert_eq!(records.len(), 2);
    let mut seen: Vec<(Value, Value, String)> = records
        .iter()
        .map(|r| {
            let e = envelope(r);
            (
                e["_airbyte_stream"].clone(),
                e["_airbyte_namespace"].clone(),
                e["_airbyte_data"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort_by_key(|s| s.2.clone());
    assert_eq!(
        seen[0],
        (json!("clicks"), Value::Null, r#"{"c":2}"#.to_string())
    );
    assert_eq!(
        seen[1],
        (json!("orders"), json!("shop"), r#"{"o":1}"#.to_string())
    );
    assert!(
        kl.client().list_streams(100).unwrap() == vec!["all-events".to_string()],
        "no other stream created"
    );
}

#[test]
fn template_names_without_stream_fields_when_one_to_one() {
    let kl = KinesisLocal::start();
    let config = kl.config(json!({"streamName": "raw.{namespace}.{stream}"}));
    let run = run_write(
        &config,
        &catalog(&[(Some("ns"), "s")]),
        record_line(Some("ns"), "s", "{}", 5).as_bytes(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    let records = kl.read_back("raw.ns.s");
    assert_eq!(records.len(), 1);
    let e = envelope(&records[0]);
    assert!(
        e.get("_airbyte_stream").is_none(),
        "one Airbyte stream per Kinesis stream needs no marker"
    );
    legacy_emitted_at(&records[0].data);
}

#[test]
fn template_giving_an_invalid_name_is_a_config_error() {
    let kl = KinesisLocal::start();
    let config = kl.config(json!({"streamName": "x-{stream}"}));
    let run = run_write(&config, &catalog(&[(None, "has space")]), b"");
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.failure_type(), "config_error");
    assert!(
        run.error_message().contains("x-has space"),
        "{}",
        run.error_message()
    );
    assert_eq!(
        run.error().unwrap()["trace"]["error"]["stream_descriptor"]["name"],
        "has space"
    );
}

#[test]
fn create_streams_false_never_creates_and_names_the_missing_stream() {
    let kl = KinesisLocal::start();
    let k = kl.client();
    k.create_stream("_present", &NewStream::provisioned(1))
        .unwrap();
    let config = kl.config(json!({"createStreams": false}));
    let run = run_write(
        &config,
        &catalog(&[(None, "present"), (None, "absent")]),
        record_line(None, "present", "{}", 1).as_bytes(),
    );
    assert_ne!(run.code, 0);
    assert_eq!(run.failure_type(), "config_error");
    assert!(
        run.error_message().contains("`_absent` does not exist"),
        "{}",
        run.error_message()
    );
    assert_eq!(k.list_streams(100).unwrap(), vec!["_present".to_string()]);

    // With every stream present it writes, and leaves the stream as it was.
    let run = run_write(
        &config,
        &catalog(&[(None, "present")]),
        record_line(None, "present", "{}", 1).as_bytes(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(kl.read_back("_present").len(), 1);
    assert_eq!(k.list_shards(&"_present".into()).unwrap().len(), 1);
}

#[test]
fn on_demand_mode_for_created_streams() {
    let kl = KinesisLocal::start();
    let config = kl.config(json!({"streamMode": "ON_DEMAND"}));
    let run = run_write(
        &config,
        &catalog(&[(None, "od")]),
        record_line(None, "od", "{}", 1).as_bytes(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(stream_mode(&kl, "_od"), "ON_DEMAND");
    // The default stays provisioned.
    let run = run_write(&kl.config(json!({})), &catalog(&[(None, "prov")]), b"");
    assert_eq!(run.code, 0);
    assert_eq!(stream_mode(&kl, "_prov"), "PROVISIONED");
}

/// The capacity mode DescribeStreamSummary gives for `stream`.
fn stream_mode(kl: &KinesisLocal, stream: &str) -> String {
    let body = json!({ "StreamName": stream }).to_string();
    let answer = kl
        .client()
        .call("DescribeStreamSummary", Some(stream), body.as_bytes())
        .expect("DescribeStreamSummary");
    let summary: Value = serde_json::from_slice(&answer).expect("JSON answer");
    summary["StreamDescriptionSummary"]["StreamModeDetails"]["StreamMode"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn partition_key_from_json_pointer_keeps_a_key_on_one_shard() {
    let kl = KinesisLocal::start();
    let config =
        kl.config(json!({"partitionKey": "/customer/id", "shardCount": 4, "bufferSize": 13}));
    let mut input = String::new();
    for i in 0..120 {
        let data = if i % 40 == 39 {
            format!(r#"{{"i":{i},"customer":{{}}}}"#)
        } else {
            format!(r#"{{"i":{i},"customer":{{"id":"c{}"}}}}"#, i % 7)
        };
        input += &record_line(None, "orders", &data, i);
    }
    let long = "k".repeat(300);
    input += &record_line(
        None,
        "orders",
        &format!(r#"{{"i":999,"customer":{{"id":"{long}"}}}}"#),
        1,
    );
    let run = run_write(&config, &catalog(&[(None, "orders")]), input.as_bytes());
    assert_eq!(run.code, 0, "{run:?}");
    let records = kl.read_back("_orders");
    assert_eq!(records.len(), 121);
    let mut shard_of: HashMap<String, HashSet<String>> = HashMap::new();
    let mut random = 0;
    for r in &records {
        let e = envelope(r);
        let data: Value = serde_json::from_str(e["_airbyte_data"].as_str().unwrap()).unwrap();
        match data["customer"]["id"].as_str() {
            Some(id) if id.len() > 256 => {
                assert_eq!(r.partition_key.len(), 64, "long keys become their SHA-256");
                assert!(r.partition_key.chars().all(|c| c.is_ascii_hexdigit()));
            }
            Some(id) => {
                assert_eq!(r.partition_key, id);
                shard_of
                    .entry(id.to_string())
                    .or_default()
                    .insert(r.shard.clone());
            }
            None => {
                random += 1;
                assert_eq!(
                    r.partition_key,
                    e["_airbyte_ab_id"].as_str().unwrap(),
                    "missing key falls back to the random id"
                );
            }
        }
    }
    assert_eq!(random, 3);
    assert_eq!(shard_of.len(), 7);
    assert!(
        shard_of.values().all(|shards| shards.len() == 1),
        "same key, same shard: {shard_of:?}"
    );
    assert_eq!(run.figures()["randomKeys"], 3);
}

#[test]
fn partition_key_from_primary_key() {
    let kl = KinesisLocal::start();
    let config = kl.config(json!({"partitionKey": "primary_key"}));
    let catalog = json!({"streams": [{
        "stream": {"name": "t", "json_schema": {}},
        "sync_mode": "full_refresh", "destination_sync_mode": "append",
        "primary_key": [["region"], ["id"]]
    }]});
    let input = record_line(None, "t", r#"{"id":17,"region":"eu"}"#, 1)
        + &record_line(None, "t", r#"{"id":18}"#, 2);
    let run = run_write(&config, &catalog, input.as_bytes());
    assert_eq!(run.code, 0, "{run:?}");
    let keys: HashSet<String> = kl
        .read_back("_t")
        .into_iter()
        .map(|r| r.partition_key)
        .collect();
    assert!(keys.contains("eu|17"), "{keys:?}");
    assert_eq!(keys.len(), 2);
    assert_eq!(run.figures()["randomKeys"], 1);
}

#[test]
fn object_data_format_nests_the_data_unchanged() {
    let kl = KinesisLocal::start();
    let data = r#"{"big":123456789012345678901234567890,"f":1.10,"s":"é\n"}"#;
    let run = run_write(
        &kl.config(json!({"dataFormat": "object"})),
        &catalog(&[(None, "o")]),
        record_line(None, "o", data, 1).as_bytes(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    let records = kl.read_back("_o");
    let text = String::from_utf8(records[0].data.clone()).unwrap();
    assert!(
        text.contains(&format!(
            r#","_airbyte_data":{data},"_airbyte_emitted_at":"#
        )),
        "{text}"
    );
}

/// A loopback proxy in front of kinesis-local that fails some PutRecords
/// entries on their first attempt (as a throttled shard does) and forwards
/// the rest, so what lands is real.
fn failing_proxy(upstream: &str) -> Server {
    let upstream = Forwarder::new(upstream);
    let attempts: Mutex<HashMap<String, u32>> = Mutex::default();
    Server::start(move |request| {
        if request.operation() != Some("PutRecords") {
            return Reply::Answer(upstream.send(request));
        }
        let mut req: Value = serde_json::from_slice(&request.body).unwrap();
        let entries = req["Records"].as_array().unwrap().clone();
        let mut fail = Vec::new();
        {
            let mut seen = attempts.lock().unwrap();
            for e in &entries {
                let data = e["Data"].as_str().unwrap().to_string();
                let n = seen.entry(data.clone()).or_insert(0);
                // Fail about a third of the entries, each on its first attempt only.
                fail.push(*n == 0 && data.bytes().map(u32::from).sum::<u32>() % 3 == 0);
                *n += 1;
            }
        }
        let kept: Vec<Value> = entries
            .iter()
            .zip(&fail)
            .filter(|(_, f)| !**f)
            .map(|(e, _)| e.clone())
            .collect();
        let mut upstream_results = Vec::new().into_iter();
        if !kept.is_empty() {
            req["Records"] = Value::Array(kept);
            let sent = Request {
                body: req.to_string().into_bytes(),
                ..request.clone()
            };
            let answer = upstream.send(&sent);
            assert_eq!(
                answer.status,
                200,
                "{}",
                String::from_utf8_lossy(&answer.body)
            );
            let a: Value = serde_json::from_slice(&answer.body).unwrap();
            upstream_results = a["Records"].as_array().unwrap().clone().into_iter();
        }
        let results: Vec<Value> = fail
            .iter()
            .map(|f| {
                if *f {
                    json!({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard"})
                } else {
                    upstream_results.next().unwrap()
                }
            })
            .collect();
        let failed = fail.iter().filter(|f| **f).count();
        let body = json!({"FailedRecordCount": failed, "Records": results});
        Reply::Answer(Answer::new(200, body.to_string()))
    })
}

/// Writes 300 records over 5 keys through the failing proxy; returns, per key,
/// the input positions in the order they landed.
fn landed_order(
    keep_key_order: bool,
    max_in_flight: u32,
    stream: &str,
) -> (Run, HashMap<String, Vec<u64>>) {
    let kl = KinesisLocal::start();
    let proxy = failing_proxy(&kl.endpoint());
    let mut config = kl.config(json!({"partitionKey": "/k", "bufferSize": 50,
        "keepKeyOrder": keep_key_order, "maxInFlight": max_in_flight}));
    config["endpoint"] = json!(proxy.url());
    let mut input = String::new();
    for i in 0..300u64 {
        input += &record_line(
            None,
            stream,
            &format!(r#"{{"k":"key{}","seq":{i}}}"#, i % 5),
            1,
        );
    }
    let run = run_write(&config, &catalog(&[(None, stream)]), input.as_bytes());
    let mut order: HashMap<String, Vec<u64>> = HashMap::new();
    for r in kl.read_back(&format!("_{stream}")) {
        let data: Value =
            serde_json::from_str(envelope(&r)["_airbyte_data"].as_str().unwrap()).unwrap();
        order
            .entry(r.partition_key)
            .or_default()
            .push(data["seq"].as_u64().unwrap());
    }
    (run, order)
}

#[test]
fn keep_key_order_survives_partial_failures() {
    // Whatever maxInFlight is: a stream never has two batches in flight.
    for (max_in_flight, stream) in [(1, "ordered"), (8, "ordered8")] {
        let (run, order) = landed_order(true, max_in_flight, stream);
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(
            order.values().map(Vec::len).sum::<usize>(),
            300,
            "every record landed once"
        );
        for (key, seqs) in &order {
            assert!(
                seqs.windows(2).all(|w| w[0] < w[1]),
                "maxInFlight {max_in_flight}: {key} out of order: {seqs:?}"
            );
        }
        assert!(
            run.figures()["retriedEntries"].as_u64() > Some(0),
            "partial failures happened: {}",
            run.figures()
        );
    }

    // The same faults without keepKeyOrder do reorder keys: the check above has teeth.
    let (run, order) = landed_order(false, 1, "unordered");
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(order.values().map(Vec::len).sum::<usize>(), 300);
    assert!(
        order
            .values()
            .any(|seqs| seqs.windows(2).any(|w| w[0] > w[1])),
        "expected reordering without keepKeyOrder"
    );
}
