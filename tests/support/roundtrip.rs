//! The property shared by the generator-based test (`tests/roundtrip_props.rs`)
//! and the cargo-fuzz target (`tests/fuzz/`): whatever bytes arrive as an input line,
//! parsing never panics, and a parsed record comes out of the envelope and the
//! PutRecords body exactly as it went in; a parsed state is echoed with its
//! fields intact.

use base64::Engine;
use destination_kinesis::airbyte::config::{DataFormat, RecordFormat};
use destination_kinesis::airbyte::envelope::{Envelope, Fields};
use destination_kinesis::airbyte::protocol::{
    parse_line, state_message, Message, ParseError, StateStats,
};
use destination_kinesis::engine::batch::{Batch, EntryMeta, TargetId};
use serde_json::Value;

/// What one line turned out to be, for counting coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Refused with a reason.
    Refused,
    /// A record, checked through envelope and batch.
    Record,
    /// A state, checked through the echo.
    State,
    /// Ignored or unknown type.
    Other,
}

/// Checks one input line; panics (with the line) when a property fails.
pub fn check_line(line: &[u8]) -> Kind {
    match parse_line(line) {
        Err(e) => {
            check_refusal(line, &e);
            Kind::Refused
        }
        Ok(Message::Record(r)) => {
            let namespace = r.namespace.as_deref();
            check_record(line, namespace, &r.stream, r.data.get(), r.emitted_at);
            Kind::Record
        }
        Ok(Message::State(s)) => {
            check_state(line, s.raw.get());
            Kind::State
        }
        Ok(Message::Ignored) | Ok(Message::Unknown(_)) => {
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(line) {
                panic!("accepted a line that is not JSON ({e}): {}", show(line));
            }
            let first = line.iter().find(|b| !b.is_ascii_whitespace());
            assert_eq!(first, Some(&b'{'), "accepted a non-object: {}", show(line));
            Kind::Other
        }
    }
}

fn show(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    text.chars().take(400).collect()
}

/// Whether `text` is JSON by syntax (numbers of any size, any `\u` escapes).
fn is_json(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

fn check_refusal(line: &[u8], e: &ParseError) {
    let why = e.to_string();
    assert!(!why.is_empty(), "empty reason for {}", show(line));
    // A line that is valid UTF-8 JSON must not be called invalid JSON, and vice versa.
    match (e, std::str::from_utf8(line)) {
        (ParseError::NotUtf8 { at_byte }, Err(u)) => assert_eq!(*at_byte, u.valid_up_to()),
        (ParseError::NotUtf8 { .. }, Ok(_)) => panic!("valid UTF-8 called invalid: {}", show(line)),
        (_, Err(_)) => panic!("invalid UTF-8 not reported as such: {}", show(line)),
        // Unpaired surrogate escapes are JSON syntax but no Unicode text, and
        // serde_json reports a number beyond f64 where a `record` object was
        // expected as a syntax error: the reason then says which.
        (ParseError::NotJson(why), Ok(text)) => assert!(
            !is_json(text)
                || why.contains("surrogate")
                || why.contains("hex escape")
                || why.contains("number out of range"),
            "valid JSON called invalid: {}",
            show(line)
        ),
        (ParseError::NotObject, Ok(text)) => {
            assert!(
                is_json(text),
                "NotObject for a line that is not JSON: {}",
                show(line)
            );
            assert!(
                !text.trim_start().starts_with('{'),
                "an object called not an object: {}",
                show(line)
            );
        }
        (ParseError::NoType, Ok(text)) => {
            #[derive(serde::Deserialize)]
            struct TypeOnly<'a> {
                #[serde(rename = "type", borrow)]
                kind: Option<&'a serde_json::value::RawValue>,
            }
            let t: TypeOnly<'_> = serde_json::from_str(text).expect("NoType lines are objects");
            assert!(t.kind.is_none(), "{}", show(line));
        }
        (ParseError::DuplicateField(_), Ok(text)) => assert!(
            is_json(text),
            "a duplicate field in a line that is not JSON: {}",
            show(line)
        ),
        (ParseError::Invalid(_), Ok(_)) => {}
    }
}

fn check_record(line: &[u8], namespace: Option<&str>, stream: &str, data: &str, emitted_at: i64) {
    // JSON syntax that a full parse into values refuses (a `\uD8xx` escape
    // without its pair, a number beyond f64 such as 1e999) is passed on verbatim.
    let data_value: Option<Value> = match serde_json::from_str::<Value>(data) {
        Ok(v) => {
            assert!(
                v.is_object(),
                "record data is not an object: {}",
                show(line)
            );
            Some(v)
        }
        Err(e) => {
            if let Err(syntax) = serde_json::from_str::<serde::de::IgnoredAny>(data) {
                panic!("record data is not JSON ({e}; {syntax}): {}", show(line));
            }
            None
        }
    };
    let id = "0b7c5e4e-2f7a-4c53-9f35-6a0f8d1e2c3b";
    let mut batch = Batch::new(TargetId(0), "fuzz-stream".into(), 1, 0);
    let mut envelopes = Vec::new();
    let shapes = [RecordFormat::Legacy, RecordFormat::V2]
        .into_iter()
        .flat_map(|r| {
            [DataFormat::String, DataFormat::Object]
                .into_iter()
                .flat_map(move |d| [false, true].map(|w| (r, d, w)))
        });
    for (record_format, format, with_stream) in shapes {
        let env = Envelope {
            format: record_format,
            data: format,
            with_stream,
        };
        let mut out = Vec::new();
        let raw: Box<serde_json::value::RawValue> =
            serde_json::value::RawValue::from_string(data.to_string()).expect("raw data re-wraps");
        let received_at = std::time::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 5);
        env.encode(
            &mut out,
            &Fields {
                id,
                received_at,
                emitted_at,
                data: &raw,
                changes: None,
                namespace,
                stream,
                generation_id: Some(1),
                sync_id: Some(2),
            },
        );
        if format == DataFormat::Object && data_value.is_none() {
            let text = String::from_utf8_lossy(&out);
            assert!(
                text.contains(data),
                "object data not verbatim: {}",
                show(line)
            );
            batch.push(
                &out,
                stream,
                None,
                EntryMeta::one(0, out.len() + stream.len(), 0, None),
            );
            envelopes.push((out, stream.to_string()));
            continue;
        }
        let v: Value = serde_json::from_slice(&out).unwrap_or_else(|e| {
            panic!(
                "envelope is not JSON ({e}): {} from {}",
                String::from_utf8_lossy(&out),
                show(line)
            )
        });
        match record_format {
            RecordFormat::Legacy => {
                assert_eq!(v["_airbyte_ab_id"], id);
                let text = String::from_utf8_lossy(&out);
                assert!(text.contains(r#""_airbyte_emitted_at":1700000000.000000005"#));
            }
            RecordFormat::V2 => {
                assert_eq!(v["_airbyte_raw_id"], id);
                assert_eq!(v["_airbyte_extracted_at"].as_i64(), Some(emitted_at));
                assert_eq!(v["_airbyte_generation_id"], 1);
                assert_eq!(
                    v["_airbyte_meta"],
                    serde_json::json!({"sync_id": 2, "changes": []})
                );
            }
        }
        match format {
            DataFormat::String => assert_eq!(
                v["_airbyte_data"].as_str(),
                Some(data),
                "string data changed: {}",
                show(line)
            ),
            DataFormat::Object => {
                assert_eq!(
                    Some(&v["_airbyte_data"]),
                    data_value.as_ref(),
                    "object data changed: {}",
                    show(line)
                );
                // Byte for byte: the data text stands in the envelope unchanged.
                let text = String::from_utf8_lossy(&out);
                assert!(
                    text.contains(data),
                    "object data not verbatim: {}",
                    show(line)
                );
            }
        }
        if with_stream {
            assert_eq!(v["_airbyte_stream"].as_str(), Some(stream));
            assert_eq!(v["_airbyte_namespace"].as_str(), namespace);
        } else {
            assert!(v.get("_airbyte_stream").is_none());
        }
        // Partition keys with JSON-special characters survive too.
        let key = stream;
        batch.push(
            &out,
            key,
            None,
            EntryMeta::one(0, out.len() + key.len(), 0, None),
        );
        envelopes.push((out, key.to_string()));
    }
    let mut scratch = Vec::new();
    for indexes in [None, Some(&[3usize, 0][..])] {
        let body = batch.request(indexes, &mut scratch);
        let v: Value = serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("PutRecords body is not JSON ({e}) for {}", show(line)));
        assert_eq!(v["StreamName"], "fuzz-stream");
        let records = v["Records"].as_array().expect("Records array");
        let wanted: Vec<usize> =
            indexes.map_or_else(|| (0..envelopes.len()).collect(), <[usize]>::to_vec);
        assert_eq!(records.len(), wanted.len());
        for (entry, &i) in records.iter().zip(&wanted) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(entry["Data"].as_str().expect("Data is a string"))
                .expect("Data is base64");
            assert_eq!(
                decoded,
                envelopes[i].0,
                "Data changed in the body: {}",
                show(line)
            );
            assert_eq!(
                entry["PartitionKey"].as_str(),
                Some(envelopes[i].1.as_str())
            );
        }
    }
    let payload: usize = envelopes.iter().map(|(d, k)| d.len() + k.len()).sum();
    assert_eq!(batch.payload(), payload);
    assert_eq!(batch.record_count(), envelopes.len() as u64);
}

fn check_state(line: &[u8], raw: &str) {
    let raw_value: Box<serde_json::value::RawValue> =
        serde_json::value::RawValue::from_string(raw.to_string()).expect("raw state re-wraps");
    let echoed = state_message(
        &raw_value,
        StateStats {
            records: 7,
            rejected: 0,
        },
    );
    if serde_json::from_str::<Value>(raw).is_err() {
        // Legal JSON beyond what values hold (see check_record): echoed verbatim.
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&echoed) {
            panic!(
                "echoed state is not JSON ({e}): {echoed} from {}",
                show(line)
            );
        }
        assert!(echoed.ends_with(r#""destinationStats":{"recordCount":7.0}}}"#));
        return;
    }
    let v: Value = serde_json::from_str(&echoed).unwrap_or_else(|e| {
        panic!(
            "echoed state is not JSON ({e}): {echoed} from {}",
            show(line)
        )
    });
    assert_eq!(v["type"], "STATE");
    assert_eq!(
        v["state"]["destinationStats"]["recordCount"].as_f64(),
        Some(7.0)
    );
    let original: Value = serde_json::from_str(raw).expect("state is JSON");
    let original = original.as_object().expect("state is an object");
    let echoed_state = v["state"].as_object().expect("echoed state is an object");
    for (k, val) in original {
        if k != "destinationStats" {
            assert_eq!(
                echoed_state.get(k),
                Some(val),
                "state field `{k}` changed: {}",
                show(line)
            );
        }
    }
    assert_eq!(
        echoed_state.len(),
        original.len() + usize::from(!original.contains_key("destinationStats")),
        "echoed state gained or lost fields: {}",
        show(line)
    );
}
