//! Record encoding: the JSON object each Airbyte record becomes in Kinesis.

use crate::config::DataFormat;
use crate::json::json_string;
use serde_json::value::RawValue;

/// How records are wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    /// How `_airbyte_data` is written.
    pub format: DataFormat,
    /// Whether `_airbyte_stream` and `_airbyte_namespace` are added.
    pub with_stream: bool,
}

impl Envelope {
    /// Appends the Kinesis record for one Airbyte record to `out`:
    /// `{"_airbyte_ab_id":…,"_airbyte_emitted_at":…,"_airbyte_data":…}`.
    pub fn encode(
        &self,
        out: &mut Vec<u8>,
        id: &str,
        emitted_at: i64,
        data: &RawValue,
        stream: (Option<&str>, &str),
    ) {
        out.extend_from_slice(b"{\"_airbyte_ab_id\":\"");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"\",\"_airbyte_emitted_at\":");
        out.extend_from_slice(itoa(emitted_at).as_bytes());
        if self.with_stream {
            out.extend_from_slice(b",\"_airbyte_stream\":");
            json_string(out, stream.1);
            out.extend_from_slice(b",\"_airbyte_namespace\":");
            match stream.0 {
                Some(ns) => json_string(out, ns),
                None => out.extend_from_slice(b"null"),
            }
        }
        out.extend_from_slice(b",\"_airbyte_data\":");
        match self.format {
            DataFormat::String => json_string(out, data.get()),
            DataFormat::Object => out.extend_from_slice(data.get().as_bytes()),
        }
        out.push(b'}');
    }
}

fn itoa(n: i64) -> String {
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn java_compatible_envelope() {
        let env = Envelope {
            format: DataFormat::String,
            with_stream: false,
        };
        let mut out = Vec::new();
        let data = raw(r#"{"a": "x\"y\n", "n": 123456789012345678901, "f": 1.50}"#);
        env.encode(&mut out, "id-1", 1700000000000, &data, (None, "s"));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["_airbyte_ab_id"], "id-1");
        assert_eq!(v["_airbyte_emitted_at"], 1700000000000i64);
        assert_eq!(v["_airbyte_data"].as_str().unwrap(), data.get());
        assert!(v.get("_airbyte_stream").is_none());
    }

    #[test]
    fn object_format_and_stream_fields() {
        let env = Envelope {
            format: DataFormat::Object,
            with_stream: true,
        };
        let mut out = Vec::new();
        env.encode(
            &mut out,
            "id",
            1,
            &raw(r#"{"k":[1,2]}"#),
            (Some("ns"), "st"),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"_airbyte_ab_id":"id","_airbyte_emitted_at":1,"_airbyte_stream":"st","_airbyte_namespace":"ns","_airbyte_data":{"k":[1,2]}}"#
        );
    }
}
