//! Record encoding: the JSON object each Airbyte record becomes in Kinesis,
//! in the archived Java connector's shape ("legacy") or with the fields of
//! Airbyte's current destinations ("v2").

use crate::airbyte::config::{DataFormat, RecordFormat};
use crate::json::json_string;
use serde_json::value::RawValue;
use std::time::{SystemTime, UNIX_EPOCH};

/// How records are wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    /// Which fields.
    pub format: RecordFormat,
    /// How `_airbyte_data` is written.
    pub data: DataFormat,
    /// Whether `_airbyte_stream` and `_airbyte_namespace` are added.
    pub with_stream: bool,
}

/// What one record's envelope is made of.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// The record's random ID.
    pub id: &'a str,
    /// When the destination read it (legacy format).
    pub received_at: SystemTime,
    /// When the source emitted it, epoch milliseconds as sent (v2 format).
    pub emitted_at: i64,
    /// The data, exactly as it arrived.
    pub data: &'a RawValue,
    /// `meta.changes` as sent, when there are any (v2 format).
    pub changes: Option<&'a RawValue>,
    /// The Airbyte stream's namespace, if any.
    pub namespace: Option<&'a str>,
    /// The Airbyte stream's name.
    pub stream: &'a str,
    /// The catalog's `generation_id` (v2 format).
    pub generation_id: Option<i64>,
    /// The catalog's `sync_id` (v2 format).
    pub sync_id: Option<i64>,
}

impl Envelope {
    /// Appends the Kinesis record for one Airbyte record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>, r: &Fields<'_>) {
        match self.format {
            // The Java connector's KinesisRecord, as Jackson wrote it: its
            // fields in declaration order (id, data, timestamp).
            RecordFormat::Legacy => {
                out.extend_from_slice(b"{\"_airbyte_ab_id\":\"");
                out.extend_from_slice(r.id.as_bytes());
                out.push(b'"');
                self.push_data(out, r);
                out.extend_from_slice(b",\"_airbyte_emitted_at\":");
                push_epoch_seconds(out, r.received_at);
                self.push_stream(out, r);
            }
            RecordFormat::V2 => {
                out.extend_from_slice(b"{\"_airbyte_raw_id\":\"");
                out.extend_from_slice(r.id.as_bytes());
                out.extend_from_slice(b"\",\"_airbyte_extracted_at\":");
                push_int(out, r.emitted_at);
                out.extend_from_slice(b",\"_airbyte_generation_id\":");
                push_optional_int(out, r.generation_id);
                out.extend_from_slice(b",\"_airbyte_meta\":{\"sync_id\":");
                push_optional_int(out, r.sync_id);
                out.extend_from_slice(b",\"changes\":");
                out.extend_from_slice(r.changes.map_or("[]", RawValue::get).as_bytes());
                out.push(b'}');
                self.push_stream(out, r);
                self.push_data(out, r);
            }
        }
        out.push(b'}');
    }

    /// `,"_airbyte_data":…`, as text or as an object.
    fn push_data(&self, out: &mut Vec<u8>, r: &Fields<'_>) {
        out.extend_from_slice(b",\"_airbyte_data\":");
        match self.data {
            DataFormat::String => json_string(out, r.data.get()),
            DataFormat::Object => out.extend_from_slice(r.data.get().as_bytes()),
        }
    }

    /// `,"_airbyte_stream":…,"_airbyte_namespace":…` when streams share a target.
    fn push_stream(&self, out: &mut Vec<u8>, r: &Fields<'_>) {
        if self.with_stream {
            out.extend_from_slice(b",\"_airbyte_stream\":");
            json_string(out, r.stream);
            out.extend_from_slice(b",\"_airbyte_namespace\":");
            match r.namespace {
                Some(ns) => json_string(out, ns),
                None => out.extend_from_slice(b"null"),
            }
        }
    }
}

/// Appends `at` as the Java connector wrote an `Instant` (Jackson's
/// JavaTimeModule defaults): decimal epoch seconds with nine fraction digits.
fn push_epoch_seconds(out: &mut Vec<u8>, at: SystemTime) {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    push_int(out, since.as_secs() as i64);
    out.push(b'.');
    let nanos = since.subsec_nanos();
    let mut digits = [b'0'; 9];
    let mut rest = nanos;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.extend_from_slice(&digits);
}

/// Appends `n` in decimal, without the formatting machinery (this runs for
/// every record).
fn push_int(out: &mut Vec<u8>, n: i64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[at..]);
}

fn push_optional_int(out: &mut Vec<u8>, n: Option<i64>) {
    match n {
        Some(n) => push_int(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::time::Duration;

    fn raw(s: &str) -> Box<RawValue> {
        serde_json::from_str(s).unwrap()
    }

    fn fields<'a>(data: &'a RawValue, changes: Option<&'a RawValue>) -> Fields<'a> {
        Fields {
            id: "id-1",
            received_at: UNIX_EPOCH + Duration::new(1_663_849_572, 123_456_000),
            emitted_at: 1_700_000_000_000,
            data,
            changes,
            namespace: None,
            stream: "s",
            generation_id: Some(3),
            sync_id: None,
        }
    }

    fn envelope(format: RecordFormat, data: DataFormat, with_stream: bool) -> Envelope {
        Envelope {
            format,
            data,
            with_stream,
        }
    }

    #[test]
    fn legacy_is_the_java_connectors_shape() {
        let mut out = Vec::new();
        let data = raw(r#"{"a": "x\"y\n", "n": 123456789012345678901, "f": 1.50}"#);
        envelope(RecordFormat::Legacy, DataFormat::String, false)
            .encode(&mut out, &fields(&data, None));
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"_airbyte_ab_id":"id-1","_airbyte_data":"{\"a\": "#),
            "{text}"
        );
        assert!(
            text.ends_with(r#"","_airbyte_emitted_at":1663849572.123456000}"#),
            "{text}"
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["_airbyte_data"].as_str().unwrap(), data.get());
        assert!(v.get("_airbyte_stream").is_none());
        // Whole seconds keep their nine zeros, as Jackson writes them.
        let mut out = Vec::new();
        push_epoch_seconds(&mut out, UNIX_EPOCH + Duration::from_secs(5));
        assert_eq!(out, b"5.000000000");
    }

    #[test]
    fn v2_carries_ids_and_changes() {
        let data = raw(r#"{"k":[1,2]}"#);
        let changes =
            raw(r#"[{"field":"k","change":"NULLED","reason":"SOURCE_FIELD_SIZE_LIMITATION"}]"#);
        let mut out = Vec::new();
        envelope(RecordFormat::V2, DataFormat::Object, true)
            .encode(&mut out, &fields(&data, Some(&changes)));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"_airbyte_raw_id":"id-1","_airbyte_extracted_at":1700000000000,"_airbyte_generation_id":3,"_airbyte_meta":{"sync_id":null,"changes":[{"field":"k","change":"NULLED","reason":"SOURCE_FIELD_SIZE_LIMITATION"}]},"_airbyte_stream":"s","_airbyte_namespace":null,"_airbyte_data":{"k":[1,2]}}"#
        );
        let mut out = Vec::new();
        envelope(RecordFormat::V2, DataFormat::String, false)
            .encode(&mut out, &fields(&data, None));
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["_airbyte_meta"],
            serde_json::json!({"sync_id": null, "changes": []})
        );
        assert_eq!(v["_airbyte_data"], r#"{"k":[1,2]}"#);
    }

    #[test]
    fn integers_as_std_writes_them() {
        for n in [0, 7, -7, 10, 1_700_000_000_000, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            push_int(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }
}
