//! Partition keys: a random UUID, the primary key, or a JSON Pointer into the
//! data, kept within Kinesis's 256-character limit.

use crate::config::PartitionKeySource;
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Longest partition key Kinesis accepts, in characters.
pub const MAX_KEY_CHARS: usize = 256;

/// Picks each record's partition key.
#[derive(Debug, Clone)]
pub struct KeyPicker {
    source: PartitionKeySource,
}

impl KeyPicker {
    /// Picks keys from `source`.
    pub fn new(source: PartitionKeySource) -> KeyPicker {
        KeyPicker { source }
    }

    /// Whether keys come from the data rather than a random UUID.
    pub fn from_data(&self) -> bool {
        self.source != PartitionKeySource::Uuid
    }

    /// The key for a record into `out`; false when the data lacks it (the
    /// caller then uses the random one). `primary_key` is the catalog's.
    pub fn pick(&self, data: &RawValue, primary_key: &[Vec<String>], out: &mut String) -> bool {
        out.clear();
        if !self.from_data() {
            return false;
        }
        match serde_json::from_str::<Value>(data.get()) {
            Ok(value) => self.pick_from(&value, primary_key, out),
            Err(_) => false,
        }
    }

    /// Like [`KeyPicker::pick`], for data already parsed.
    pub fn pick_from(&self, value: &Value, primary_key: &[Vec<String>], out: &mut String) -> bool {
        out.clear();
        let found = match &self.source {
            PartitionKeySource::Uuid => return false,
            PartitionKeySource::Pointer(pointer) => match value.pointer(pointer) {
                Some(v) => push_value(out, v),
                None => false,
            },
            PartitionKeySource::PrimaryKey => {
                if primary_key.is_empty() {
                    return false;
                }
                let mut all = true;
                for (i, path) in primary_key.iter().enumerate() {
                    if i > 0 {
                        out.push('|');
                    }
                    let mut v = value;
                    for field in path {
                        match v.get(field) {
                            Some(inner) => v = inner,
                            None => {
                                all = false;
                                break;
                            }
                        }
                    }
                    all = all && push_value(out, v);
                    if !all {
                        break;
                    }
                }
                all
            }
        };
        if !found || out.is_empty() {
            out.clear();
            return false;
        }
        if out.chars().count() > MAX_KEY_CHARS {
            let digest = Sha256::digest(out.as_bytes());
            out.clear();
            for b in digest {
                out.push_str(&format!("{b:02x}"));
            }
        }
        true
    }
}

/// Appends a value's key text: strings as they are, numbers and booleans as
/// JSON; null, objects and arrays are no key.
fn push_value(out: &mut String, v: &Value) -> bool {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null | Value::Object(_) | Value::Array(_) => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(source: PartitionKeySource, data: &str, pk: &[&[&str]]) -> Option<String> {
        let raw: Box<RawValue> = serde_json::from_str(data).unwrap();
        let pk: Vec<Vec<String>> = pk
            .iter()
            .map(|p| p.iter().map(|s| s.to_string()).collect())
            .collect();
        let mut out = String::new();
        KeyPicker::new(source)
            .pick(&raw, &pk, &mut out)
            .then_some(out)
    }

    #[test]
    fn pointer_keys() {
        let p = || PartitionKeySource::Pointer("/customer/id".into());
        assert_eq!(
            pick(p(), r#"{"customer":{"id":"c-7"}}"#, &[]).as_deref(),
            Some("c-7")
        );
        assert_eq!(
            pick(p(), r#"{"customer":{"id":42}}"#, &[]).as_deref(),
            Some("42")
        );
        assert_eq!(pick(p(), r#"{"customer":{}}"#, &[]), None);
        assert_eq!(pick(p(), r#"{"customer":{"id":null}}"#, &[]), None);
        assert_eq!(pick(p(), r#"{"customer":{"id":""}}"#, &[]), None);
    }

    #[test]
    fn primary_keys_joined() {
        let pk = PartitionKeySource::PrimaryKey;
        assert_eq!(
            pick(pk.clone(), r#"{"a":1,"b":"x"}"#, &[&["a"], &["b"]]).as_deref(),
            Some("1|x")
        );
        assert_eq!(
            pick(pk.clone(), r#"{"o":{"id":5}}"#, &[&["o", "id"]]).as_deref(),
            Some("5")
        );
        assert_eq!(pick(pk.clone(), r#"{"a":1}"#, &[&["a"], &["b"]]), None);
        assert_eq!(pick(pk, r#"{"a":1}"#, &[]), None);
    }

    #[test]
    fn long_keys_hashed_stably() {
        let long = "k".repeat(300);
        let data = format!(r#"{{"id":"{long}"}}"#);
        let a = pick(PartitionKeySource::Pointer("/id".into()), &data, &[]).unwrap();
        let b = pick(PartitionKeySource::Pointer("/id".into()), &data, &[]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        let exact = "é".repeat(256);
        let data = format!(r#"{{"id":"{exact}"}}"#);
        assert_eq!(
            pick(PartitionKeySource::Pointer("/id".into()), &data, &[]).unwrap(),
            exact
        );
    }
}
