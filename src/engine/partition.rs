//! Partition keys: a random UUID, the primary key, or a JSON Pointer into the
//! data, kept within Kinesis's 256-character limit.

use crate::json::Text;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::fmt::{self, Write};

/// Where each record's partition key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionKeySource {
    /// A random UUID per record (the Java connector's behaviour).
    Uuid,
    /// The catalog stream's primary key values, joined.
    PrimaryKey,
    /// A JSON Pointer into the record's data.
    Pointer(String),
}

/// Longest partition key Kinesis accepts, in characters.
pub const MAX_KEY_CHARS: usize = 256;

/// Picks each record's partition key.
#[derive(Debug, Clone)]
pub struct KeyPicker {
    source: PartitionKeySource,
    /// A pointer's tokens, unescaped once rather than for every record.
    tokens: Vec<String>,
}

impl KeyPicker {
    /// Picks keys from `source`.
    pub fn new(source: PartitionKeySource) -> KeyPicker {
        // RFC 6901: `/`-separated tokens, `~1` for `/` and `~0` for `~`.
        let tokens = match &source {
            PartitionKeySource::Pointer(pointer) => pointer
                .split('/')
                .skip(1)
                .map(|token| token.replace("~1", "/").replace("~0", "~"))
                .collect(),
            _ => Vec::new(),
        };
        KeyPicker { source, tokens }
    }

    /// Whether keys come from the data rather than a random UUID.
    pub fn reads_the_data(&self) -> bool {
        self.source != PartitionKeySource::Uuid
    }

    /// The key for a record into `out`; false when the data lacks it (the
    /// caller then uses the random one). `primary_key` is the catalog's.
    ///
    /// Only the path to the key is read: the rest of the data is skipped, not
    /// parsed into a tree, since this runs for every record.
    pub fn pick(&self, data: &RawValue, primary_key: &[Vec<String>], out: &mut String) -> bool {
        out.clear();
        let found = match &self.source {
            PartitionKeySource::Uuid => return false,
            PartitionKeySource::Pointer(_) => self
                .tokens
                .iter()
                .try_fold(data, |v, token| child(v, token, true))
                .is_some_and(|v| push_value(out, v)),
            PartitionKeySource::PrimaryKey => {
                !primary_key.is_empty()
                    && primary_key.iter().enumerate().all(|(i, path)| {
                        if i > 0 {
                            out.push('|');
                        }
                        path.iter()
                            .try_fold(data, |v, field| child(v, field, false))
                            .is_some_and(|v| push_value(out, v))
                    })
            }
        };
        if !found || out.is_empty() {
            out.clear();
            return false;
        }
        fit_key(out);
        true
    }
}

/// Keeps a key from the data within Kinesis's 256 characters: a longer one
/// is replaced by its SHA-256 (hex), so that equal keys still share a shard.
pub fn fit_key(key: &mut String) {
    if key.chars().count() > MAX_KEY_CHARS {
        let digest = Sha256::digest(key.as_bytes());
        key.clear();
        for b in digest {
            let _ = write!(key, "{b:02x}");
        }
    }
}

/// The member `name` of a JSON object, or (when `index_ok`) element `name`
/// of an array, as raw JSON borrowed from `value`.
fn child<'a>(value: &'a RawValue, name: &str, index_ok: bool) -> Option<&'a RawValue> {
    let mut de = serde_json::Deserializer::from_str(value.get());
    de::Deserializer::deserialize_any(&mut de, Child { name, index_ok })
        .ok()
        .flatten()
}

/// Finds one member or element, skipping the others without building them.
struct Child<'n> {
    name: &'n str,
    index_ok: bool,
}

impl<'de> Visitor<'de> for Child<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Every entry is read (the parser wants the object whole), and a
        // repeated name gives its last value, as serde_json's Value does.
        let mut found = None;
        while let Some(wanted) = map.next_key_seed(NameIs(self.name))? {
            if wanted {
                found = Some(map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // As serde_json's Value::pointer: digits only, no leading zero.
        let name = self.name;
        let canonical =
            name.bytes().all(|b| b.is_ascii_digit()) && (name == "0" || !name.starts_with('0'));
        let index = if self.index_ok && canonical {
            name.parse::<usize>().ok()
        } else {
            None
        };
        let mut found = None;
        let mut i = 0;
        while let Some(element) = seq.next_element::<&'de RawValue>()? {
            if Some(i) == index {
                found = Some(element);
            }
            i += 1;
        }
        Ok(found)
    }

    // Scalars have no members.
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Whether an object member's name is the one looked for, read without
/// allocating when it has no escapes.
struct NameIs<'n>(&'n str);

impl<'de> DeserializeSeed<'de> for NameIs<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NameIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E>(self, name: &str) -> Result<bool, E> {
        Ok(name == self.0)
    }
}

/// Appends a value's key text: strings as they are, numbers and booleans as
/// the JSON text that was sent (`1e2` stays `1e2`, a 30-digit integer keeps
/// every digit); null, objects and arrays are no key.
fn push_value(out: &mut String, raw: &RawValue) -> bool {
    let text = raw.get();
    match text.as_bytes().first() {
        // Borrowed unless escaped: no allocation for most keys.
        Some(b'"') => serde_json::from_str::<Text>(text).is_ok_and(|s| {
            out.push_str(&s.0);
            true
        }),
        // Valid JSON (the parser checked it) starting so is a number or a boolean.
        Some(b't' | b'f' | b'-' | b'0'..=b'9') => {
            out.push_str(text);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

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
    fn pointers_read_as_serde_json_reads_them() {
        let docs = [
            r#"{"a":[10,{"b":"x"},true],"a/b":"slash","m~n":1.50,"e\u0073c":"esc","d":1,"d":2}"#,
            r#"{"a":{"0":"zero","01":"one"},"s":"str","n":null,"deep":{"x":{"y":[[1,2],[3,"4"]]}}}"#,
            r#"[{"k":"v"},"t"]"#,
            r#""just a string""#,
        ];
        let pointers = [
            "/a/0",
            "/a/1/b",
            "/a/2",
            "/a/3",
            "/a/01",
            "/a/+1",
            "/a/-1",
            "/a/0/b",
            "/a~1b",
            "/m~0n",
            "/esc",
            "/d",
            "/s",
            "/s/0",
            "/n",
            "/a",
            "/deep/x/y/1/1",
            "/deep/x/y/1/0",
            "/0/k",
            "/1",
            "/missing",
            "",
        ];
        for doc in docs {
            let value: Value = serde_json::from_str(doc).unwrap();
            for pointer in pointers {
                // What Value::pointer and the key rule give, the tree built
                // whole; a number's key is its text as sent, the same number.
                let want = value.pointer(pointer).and_then(|v| match v {
                    Value::String(s) if !s.is_empty() => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                });
                let got = pick(PartitionKeySource::Pointer(pointer.into()), doc, &[]);
                let same_number = |got: &str, want: &str| {
                    serde_json::from_str::<Value>(got).ok() == serde_json::from_str(want).ok()
                };
                match (&got, &want) {
                    (Some(g), Some(w)) if value.pointer(pointer).is_some_and(Value::is_number) => {
                        assert!(same_number(g, w), "{pointer} in {doc}: {g} is not {w}")
                    }
                    _ => assert_eq!(got, want, "{pointer} in {doc}"),
                }
            }
        }
    }

    #[test]
    fn numbers_are_keys_as_sent() {
        let p = || PartitionKeySource::Pointer("/id".into());
        for text in [
            "1e2",
            "-0",
            "123456789012345678901234567890",
            "1.50",
            "7",
            "true",
        ] {
            let data = format!(r#"{{"id": {text} }}"#);
            assert_eq!(pick(p(), &data, &[]).as_deref(), Some(text), "{data}");
        }
        assert_eq!(
            pick(
                PartitionKeySource::PrimaryKey,
                r#"{"a":1E+2,"b":false}"#,
                &[&["a"], &["b"]]
            )
            .as_deref(),
            Some("1E+2|false")
        );
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
