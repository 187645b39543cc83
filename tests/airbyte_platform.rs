//! End to end against kinesis-local: what the Airbyte platform and PyAirbyte
//! really send. PyAirbyte's captured input (fixtures/pyairbyte), Clear jobs,
//! every destination sync mode, the platform's state `id`, and both record
//! formats read back field by field with every partition-key option.

use crate::support::*;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::SystemTime;

fn kl() -> &'static KinesisLocal {
    shared_kinesis_local(&[])
}

/// A config for the shared emulator: one shard (records of a stream come
/// back in input order), `streamName` from `template`, and `extra`.
fn config(template: &str, extra: Value) -> Value {
    let mut c = kl().config(json!({"shardCount": 1, "streamName": template}));
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

/// A state as it must come back: the input's, field by field, with only
/// `destinationStats` replaced by the destination's.
fn assert_echoed_unchanged(input: &Value, echoed: &Value) {
    let mut want = input["state"].clone();
    let mut got = echoed["state"].clone();
    if let Some(o) = want.as_object_mut() {
        o.remove("destinationStats");
    }
    if let Some(o) = got.as_object_mut() {
        o.remove("destinationStats");
    }
    assert_eq!(got, want, "echoed state differs from its input");
    assert_eq!(echoed["type"], "STATE");
}

/// One RECORD line's parts, its data as the raw text it was sent as.
#[derive(Debug, Clone)]
struct SentRecord {
    stream: String,
    data: String,
    emitted_at: i64,
    changes: Option<String>,
}

/// The RECORD lines of an input, each with its data's raw text.
fn sent_records(input: &str) -> Vec<SentRecord> {
    #[derive(Deserialize)]
    struct Line<'a> {
        #[serde(rename = "type")]
        kind: String,
        #[serde(borrow)]
        record: Option<Rec<'a>>,
    }
    #[derive(Deserialize)]
    struct Rec<'a> {
        stream: String,
        #[serde(borrow)]
        data: &'a RawValue,
        emitted_at: i64,
        #[serde(borrow)]
        meta: Option<Meta<'a>>,
    }
    #[derive(Deserialize)]
    struct Meta<'a> {
        #[serde(borrow)]
        changes: Option<&'a RawValue>,
    }
    input
        .lines()
        .filter_map(|line| {
            let l: Line<'_> = serde_json::from_str(line).ok()?;
            let r = l.record.filter(|_| l.kind == "RECORD")?;
            Some(SentRecord {
                stream: r.stream,
                data: r.data.get().to_string(),
                emitted_at: r.emitted_at,
                changes: r
                    .meta
                    .and_then(|m| m.changes)
                    .map(|c| c.get().to_string())
                    .filter(|c| c != "null"),
            })
        })
        .collect()
}

/// `_airbyte_data` of an envelope as the raw text it holds: the JSON text
/// of a string (`dataFormat: string`), or the object's own text.
fn data_text(envelope: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Env<'a> {
        #[serde(borrow, rename = "_airbyte_data")]
        data: &'a RawValue,
    }
    let e: Env<'_> = serde_json::from_slice(envelope).expect("an envelope with _airbyte_data");
    match serde_json::from_str::<String>(e.data.get()) {
        Ok(text) => text,
        Err(_) => e.data.get().to_string(),
    }
}

/// Where each field of an envelope starts in its text, checking that the
/// fields are exactly `fields`, in that order.
fn assert_fields_in_order(envelope: &[u8], fields: &[&str]) {
    let text = String::from_utf8_lossy(envelope);
    let v: Value = serde_json::from_slice(envelope).expect("envelope is JSON");
    let mut keys: Vec<&String> = v.as_object().expect("an object").keys().collect();
    keys.sort();
    let mut want: Vec<&str> = fields.to_vec();
    want.sort();
    assert_eq!(keys, want, "{text}");
    let at: Vec<usize> = fields
        .iter()
        .map(|f| text.find(&format!("\"{f}\":")).expect("field present"))
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "field order: {text}");
}

fn uuid_v4(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok_and(|u| u.get_version_num() == 4)
}

// ---------------------------------------------------------------- PyAirbyte

/// Runs a captured PyAirbyte input with its catalog and checks what the
/// platform and PyAirbyte check: exit 0, every state echoed unchanged with
/// the destination's count for its stream, one WARN per stream for `mode`,
/// and every record back in Kinesis byte for byte.
fn pyairbyte_input(catalog_file: &str, messages_file: &str, mode: &str, prefix: &str) {
    let catalog: Value = serde_json::from_str(&fixture(catalog_file)).unwrap();
    let input = fixture(messages_file);
    let run = run_write(
        &config(&format!("{prefix}-{{stream}}"), json!({})),
        &catalog,
        input.as_bytes(),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.error().is_none());

    let streams = ["products", "users", "purchases"];
    let warned = run.logs_at("WARN");
    assert_eq!(
        warned.len(),
        streams.len(),
        "one WARN per stream: {warned:?}"
    );
    for (w, name) in warned.iter().zip(streams) {
        assert!(w.contains(&format!("stream `{name}`")), "{w}");
        assert!(w.contains(&format!("`{mode}`")), "{w}");
        assert!(w.contains("written as append"), "{w}");
    }
    let cannot = match mode {
        "append_dedup" => "cannot deduplicate",
        _ => "cannot delete",
    };
    assert!(warned.iter().all(|w| w.contains(cannot)), "{warned:?}");

    // Every state, in input order, unchanged but for the destination's count,
    // which is the records of its stream since that stream's last state.
    let inputs: Vec<Value> = input
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut since: HashMap<String, f64> = HashMap::new();
    let mut expected_states = Vec::new();
    for m in &inputs {
        match m["type"].as_str() {
            Some("RECORD") => {
                *since
                    .entry(m["record"]["stream"].as_str().unwrap().to_string())
                    .or_default() += 1.0
            }
            Some("STATE") => {
                let name = m["state"]["stream"]["stream_descriptor"]["name"]
                    .as_str()
                    .unwrap();
                expected_states.push((m, since.remove(name).unwrap_or(0.0)));
            }
            _ => {}
        }
    }
    let states = run.states();
    assert_eq!(states.len(), 3);
    assert_eq!(states.len(), expected_states.len());
    for (echoed, (sent, count)) in states.iter().zip(&expected_states) {
        assert_echoed_unchanged(sent, echoed);
        assert_eq!(echoed["state"]["destinationStats"]["recordCount"], *count);
        assert_eq!(
            echoed["state"]["destinationStats"]["recordCount"],
            sent["state"]["sourceStats"]["recordCount"],
            "the platform's checksum: the destination agrees with the source"
        );
    }

    let sent = sent_records(&input);
    assert_eq!(sent.len(), 30);
    assert_eq!(run.figures()["records"], 30);
    assert_eq!(run.figures()["accepted"], 30);
    for name in streams {
        let landed = kl().read_back(&format!("{prefix}-{name}"));
        let want: Vec<&str> = sent
            .iter()
            .filter(|r| r.stream == name)
            .map(|r| r.data.as_str())
            .collect();
        let got: Vec<String> = landed.iter().map(|r| data_text(&r.data)).collect();
        assert_eq!(
            got, want,
            "{name}: every record back, byte for byte, in order"
        );
    }
}

#[test]
fn pyairbyte_default_write_with_its_cache_succeeds() {
    pyairbyte_input(
        "pyairbyte/pyairbyte_faker_catalog_auto.json",
        "pyairbyte/pyairbyte_faker_messages_cache.jsonl",
        "append_dedup",
        "pa-cache",
    );
}

#[test]
fn pyairbyte_write_without_cache_succeeds() {
    // Faker's own LOG, TRACE (status, estimates) and STATE messages come through.
    pyairbyte_input(
        "pyairbyte/pyairbyte_faker_catalog_auto.json",
        "pyairbyte/pyairbyte_faker_messages_nocache.jsonl",
        "append_dedup",
        "pa-nocache",
    );
}

#[test]
fn pyairbyte_replace_write_succeeds() {
    pyairbyte_input(
        "pyairbyte/pyairbyte_faker_catalog_replace.json",
        "pyairbyte/pyairbyte_faker_messages_cache.jsonl",
        "overwrite",
        "pa-replace",
    );
}

// ---------------------------------------------------------- the platform

/// A configured stream asking for `mode`, with the refresh ids every
/// platform catalog carries.
fn stream_asking(name: &str, namespace: Option<&str>, mode: &str) -> Value {
    let mut stream = json!({"name": name, "json_schema": {"type": "object"}, "supported_sync_modes": ["full_refresh", "incremental"]});
    if let Some(ns) = namespace {
        stream["namespace"] = json!(ns);
    }
    json!({"stream": stream, "sync_mode": "full_refresh", "destination_sync_mode": mode,
           "primary_key": [["id"]], "generation_id": 5, "minimum_generation_id": 5, "sync_id": 1234})
}

#[test]
fn a_clear_job_exits_0_and_echoes_every_state_with_a_zero_count() {
    // What the platform sends to clear data: overwrite everywhere, no
    // records, a null state per stream, each state with its integer id.
    let catalog = json!({"streams": [
        stream_asking("users", Some("public"), "overwrite"),
        stream_asking("orders", Some("public"), "overwrite"),
        stream_asking("events", None, "overwrite"),
    ]});
    let lines = [
        r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"users","namespace":"public"},"stream_state":null},"sourceStats":{"recordCount":0.0},"id":1}}"#,
        r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"orders","namespace":"public"},"stream_state":null},"sourceStats":{"recordCount":0.0},"id":2}}"#,
        r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"events"},"stream_state":null},"sourceStats":{"recordCount":0.0},"id":3}}"#,
    ];
    let input = lines.join("\n") + "\n";
    let run = run_write(
        &config("clear-{namespace}-{stream}", json!({})),
        &catalog,
        input.as_bytes(),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.error().is_none());

    let states = run.states();
    assert_eq!(states.len(), 3);
    for (echoed, line) in states.iter().zip(lines) {
        let sent: Value = serde_json::from_str(line).unwrap();
        assert_echoed_unchanged(&sent, echoed);
        assert_eq!(
            echoed["state"]["destinationStats"],
            json!({"recordCount": 0.0})
        );
        assert!(echoed["state"]["stream"]["stream_state"].is_null());
    }
    // The id comes back as the integer it was, and the count with its decimal point.
    for id in 1..=3 {
        assert!(
            run.stdout.contains(&format!(r#""id":{id},"#)),
            "{}",
            run.stdout
        );
    }
    assert!(run
        .stdout
        .contains(r#""destinationStats":{"recordCount":0.0}"#));

    let warned = run.logs_at("WARN");
    assert_eq!(warned.len(), 3, "{warned:?}");
    assert!(warned
        .iter()
        .all(|w| w.contains("`overwrite`") && w.contains("cannot delete records")));
    assert_eq!(run.figures()["records"], 0);
    assert_eq!(run.figures()["requests"], 0, "nothing to send");
    assert_eq!(run.figures()["statesEchoed"], 3);
}

#[test]
fn every_sync_mode_is_written_as_append_with_one_warning_per_stream() {
    let modes = [
        "append_dedup",
        "update",
        "soft_delete",
        "merge_by_2031_rules",
    ];
    let mut streams: Vec<Value> = modes
        .iter()
        .map(|m| stream_asking(&format!("s_{m}"), None, m))
        .collect();
    streams.push(stream_asking("s_append", None, "append"));
    let catalog = json!({ "streams": streams });
    let mut input = String::new();
    let all: Vec<&str> = modes.iter().copied().chain(["append"]).collect();
    for m in &all {
        // The same primary key twice: nothing is deduplicated or replaced.
        for version in 0..2 {
            input.push_str(&record_line(
                None,
                &format!("s_{m}"),
                &format!("{{\"id\":1,\"version\":{version}}}"),
                1_700_000_000_000,
            ));
        }
    }
    input.push_str(&state_line(1));
    let run = run_write(
        &config("modes-{stream}", json!({})),
        &catalog,
        input.as_bytes(),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.states().len(), 1);
    assert_eq!(
        run.states()[0]["state"]["destinationStats"]["recordCount"],
        10.0
    );

    let warned = run.logs_at("WARN");
    assert_eq!(warned.len(), modes.len(), "none for append: {warned:?}");
    for (w, m) in warned.iter().zip(modes) {
        assert!(
            w.contains(&format!(
                "stream `s_{m}` asks for destination sync mode `{m}`"
            )),
            "{w}"
        );
        assert!(w.contains("its records are written as append"), "{w}");
    }
    assert!(warned[0].contains("cannot deduplicate"));
    assert!(warned[1].contains("cannot change or delete"));
    assert!(warned[2].contains("cannot change or delete"));
    assert!(warned[3].contains("does not know") && warned[3].contains("can only append"));

    for m in &all {
        let landed = kl().read_back(&format!("modes-s_{m}"));
        let got: Vec<String> = landed.iter().map(|r| data_text(&r.data)).collect();
        assert_eq!(
            got,
            [r#"{"id":1,"version":0}"#, r#"{"id":1,"version":1}"#],
            "{m}: both versions appended"
        );
    }
}

#[test]
fn the_platforms_state_id_is_echoed_unchanged() {
    // Every shape of state with the id the platform adds and matches the
    // echo by; one id beyond 2^53 must keep every digit.
    let catalog = catalog(&[(Some("ns"), "a"), (None, "b")]);
    let states = [
        r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"a","namespace":"ns"},"stream_state":{"cursor":"2024-01-01"}},"sourceStats":{"recordCount":2.0},"id":17}}"#,
        r#"{"type":"STATE","state":{"type":"GLOBAL","global":{"shared_state":{"lsn":99},"stream_states":[{"stream_descriptor":{"name":"b"},"stream_state":{"c":1}}]},"id":9007199254740993}}"#,
        r#"{"type":"STATE","state":{"data":{"legacy":true},"id":-4,"destinationStats":{"recordCount":123.0}}}"#,
        r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"b"},"stream_state":null},"id":0}}"#,
    ];
    let rec = |ns: Option<&str>, s: &str, i: u32| {
        record_line(ns, s, &format!("{{\"i\":{i}}}"), 1_700_000_000_000)
    };
    let input = [
        rec(Some("ns"), "a", 0),
        rec(Some("ns"), "a", 1),
        rec(None, "b", 2),
        states[0].to_string() + "\n",
        rec(None, "b", 3),
        states[1].to_string() + "\n",
        rec(Some("ns"), "a", 4),
        states[2].to_string() + "\n",
        states[3].to_string() + "\n",
    ]
    .concat();
    let run = run_write(
        &config("ids-{stream}", json!({})),
        &catalog,
        input.as_bytes(),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let echoed = run.states();
    assert_eq!(echoed.len(), states.len());
    for (e, line) in echoed.iter().zip(states) {
        assert_echoed_unchanged(&serde_json::from_str(line).unwrap(), e);
    }
    let counts: Vec<f64> = echoed
        .iter()
        .map(|e| {
            e["state"]["destinationStats"]["recordCount"]
                .as_f64()
                .unwrap()
        })
        .collect();
    // STREAM a: 2 since start; GLOBAL: all 4; LEGACY: 1 (its own 123.0 replaced); STREAM b: none since the GLOBAL.
    assert_eq!(counts, [2.0, 4.0, 1.0, 0.0]);
    for id in [
        r#""id":17,"#,
        r#""id":9007199254740993,"#,
        r#""id":-4,"#,
        r#""id":0,"#,
    ] {
        assert!(run.stdout.contains(id), "{id} in {}", run.stdout);
    }
}

// ------------------------------------------------------------ record formats

/// Streams of the format tests: `a.s1` and `a.s2` share the Kinesis stream
/// `<prefix>-a`, `b.s3` has `<prefix>-b` alone and no refresh ids.
fn format_catalog() -> Value {
    let configured = |ns: &str, name: &str, pk: Value, ids: Option<(i64, i64)>| {
        let mut c = json!({"stream": {"name": name, "namespace": ns, "json_schema": {"type": "object"}},
                           "sync_mode": "incremental", "destination_sync_mode": "append", "primary_key": pk});
        if let Some((generation, sync)) = ids {
            c["generation_id"] = json!(generation);
            c["minimum_generation_id"] = json!(0);
            c["sync_id"] = json!(sync);
        }
        c
    };
    json!({"streams": [
        configured("a", "s1", json!([["id"]]), Some((3, 77))),
        configured("a", "s2", json!([["k1"], ["k2"]]), Some((4, 78))),
        configured("b", "s3", json!([]), None),
    ]})
}

/// Input of the format tests: data with everything that must survive byte
/// for byte, `meta.changes` in every shape, distinct `emitted_at`s.
fn format_input() -> String {
    let changes = r#"{"changes":[{"field":"text","change":"NULLED","reason":"SOURCE_FIELD_SIZE_LIMITATION"}]}"#;
    let spaced = r#"{"changes": [ {"field": "x", "change": "TRUNCATED", "reason": "SOURCE_RECORD_SIZE_LIMITATION"} ] }"#;
    let records: [(&str, &str, &str, Option<&str>); 6] = [
        (
            "a",
            "s1",
            r#"{"n":0,"id":1,"customer":{"id":"c-1"},"text":"line\nbreak \"q\" \\ é 漢字 😀","big":123456789012345678901234567890,"dec":1.10000000000000000001}"#,
            Some(changes),
        ),
        (
            "a",
            "s1",
            r#"{ "n" : 1, "id": 2 ,"customer":{"id":42},"nested":{"a":[{},[]],"b":null}}"#,
            None,
        ),
        (
            "a",
            "s2",
            r#"{"n":2,"k1":"x","k2":7,"customer":{"id":true}}"#,
            Some(r#"{"changes":[]}"#),
        ),
        ("a", "s2", r#"{"n":3,"k1":"y","k2":8}"#, Some("{}")),
        (
            "b",
            "s3",
            r#"{"n":4,"customer":{"id":"c-1"}}"#,
            Some(spaced),
        ),
        ("b", "s3", r#"{"n":5}"#, Some("null")),
    ];
    let mut input = String::new();
    for (i, (ns, stream, data, meta)) in records.iter().enumerate() {
        let meta = meta.map(|m| format!(",\"meta\":{m}")).unwrap_or_default();
        input.push_str(&format!(
            "{{\"type\":\"RECORD\",\"record\":{{\"namespace\":\"{ns}\",\"stream\":\"{stream}\",\"data\":{data},\"emitted_at\":{}{meta}}}}}\n",
            1_700_000_000_000i64 + i as i64 * 1111
        ));
        if i == 3 {
            input.push_str(&state_line(0));
        }
    }
    input + &state_line(1)
}

/// The partition key each `format_input` record must have, by its `n`
/// (None: the record's random ID).
fn expected_key(partition_key: &str, n: usize) -> Option<&'static str> {
    match partition_key {
        "uuid" => None,
        "primary_key" => [Some("1"), Some("2"), Some("x|7"), Some("y|8"), None, None][n],
        _ => [
            Some("c-1"),
            Some("42"),
            Some("true"),
            None,
            Some("c-1"),
            None,
        ][n],
    }
}

/// Writes `format_input` with a record format, data format and partition
/// key, then checks every field of every record read back.
fn formats_round_trip(record_format: &str, data_format: &str, partition_key: &str) {
    let prefix = format!(
        "fmt-{record_format}-{data_format}-{}",
        partition_key.trim_start_matches('/').replace('/', ".")
    );
    let mut extra = json!({"dataFormat": data_format, "partitionKey": partition_key});
    // legacy is the default: leave it out once, as old configs do.
    if record_format != "legacy" || data_format != "string" {
        extra["recordFormat"] = json!(record_format);
    }
    let input = format_input();
    let before = SystemTime::now();
    let run = run_write(
        &config(&format!("{prefix}-{{namespace}}"), extra),
        &format_catalog(),
        input.as_bytes(),
    );
    let after = SystemTime::now();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.states().len(), 2);
    let random_keys = if partition_key == "uuid" { 0 } else { 2 };
    assert_eq!(run.figures()["randomKeys"], random_keys);

    let sent = sent_records(&input);
    let shared = kl().read_back(&format!("{prefix}-a"));
    let alone = kl().read_back(&format!("{prefix}-b"));
    assert_eq!((shared.len(), alone.len()), (4, 2));
    for (n, r) in shared.iter().chain(&alone).enumerate() {
        let s = &sent[n];
        let text = String::from_utf8_lossy(&r.data).to_string();
        let e = envelope(r);
        let in_shared = n < 4;
        assert_eq!(data_text(&r.data), s.data, "data byte for byte: {text}");
        if data_format == "object" {
            assert!(e["_airbyte_data"].is_object(), "{text}");
        } else {
            assert!(e["_airbyte_data"].is_string(), "{text}");
        }
        // The Java connector's field order (its KinesisRecord's declaration
        // order), then the shared-stream fields; v2 ends with the data.
        let (id_field, mut fields) = match record_format {
            "legacy" => (
                "_airbyte_ab_id",
                vec!["_airbyte_ab_id", "_airbyte_data", "_airbyte_emitted_at"],
            ),
            _ => (
                "_airbyte_raw_id",
                vec![
                    "_airbyte_raw_id",
                    "_airbyte_extracted_at",
                    "_airbyte_generation_id",
                    "_airbyte_meta",
                ],
            ),
        };
        if in_shared {
            fields.extend(["_airbyte_stream", "_airbyte_namespace"]);
            assert_eq!(e["_airbyte_stream"], s.stream.as_str());
            assert_eq!(e["_airbyte_namespace"], "a");
        }
        if record_format != "legacy" {
            fields.push("_airbyte_data");
        }
        assert_fields_in_order(&r.data, &fields);

        let id = e[id_field].as_str().expect("the record id");
        assert!(uuid_v4(id), "{id} is a v4 UUID");
        match expected_key(partition_key, n) {
            None => assert_eq!(r.partition_key, id, "the random key is the record id"),
            Some(key) => assert_eq!(r.partition_key, key),
        }
        if record_format == "legacy" {
            assert_read_between(&r.data, before, after);
            continue;
        }
        assert_eq!(e["_airbyte_extracted_at"], json!(s.emitted_at));
        let (generation, sync) = match s.stream.as_str() {
            "s1" => (json!(3), json!(77)),
            "s2" => (json!(4), json!(78)),
            _ => (Value::Null, Value::Null),
        };
        assert_eq!(e["_airbyte_generation_id"], generation, "{text}");
        assert_eq!(e["_airbyte_meta"]["sync_id"], sync, "{text}");
        let meta = e["_airbyte_meta"].as_object().unwrap();
        assert_eq!(meta.len(), 2, "sync_id and changes only: {text}");
        match &s.changes {
            // As sent, to the byte.
            Some(changes) => assert!(
                text.contains(&format!("\"changes\":{changes}}}")),
                "{changes} in {text}"
            ),
            None => assert_eq!(e["_airbyte_meta"]["changes"], json!([]), "{text}"),
        }
    }
}

fn formats_with_every_partition_key(record_format: &str, data_format: &str) {
    for key in ["uuid", "primary_key", "/customer/id"] {
        formats_round_trip(record_format, data_format, key);
    }
}

#[test]
fn legacy_records_with_string_data() {
    formats_with_every_partition_key("legacy", "string");
}

#[test]
fn legacy_records_with_object_data() {
    formats_with_every_partition_key("legacy", "object");
}

#[test]
fn v2_records_with_string_data() {
    formats_with_every_partition_key("v2", "string");
}

#[test]
fn v2_records_with_object_data() {
    formats_with_every_partition_key("v2", "object");
}
