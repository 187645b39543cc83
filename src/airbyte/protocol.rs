//! Airbyte protocol messages: reading the ones a destination receives and
//! writing the ones it sends.

use crate::failure::{Failure, Kind};
use crate::json::Text;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// What a failure asks of the user, in Airbyte's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureType {
    /// The user must change the configuration.
    Config,
    /// A defect or bad input.
    System,
    /// Retrying later may succeed.
    Transient,
}

impl From<Kind> for FailureType {
    fn from(kind: Kind) -> FailureType {
        match kind {
            Kind::Config => FailureType::Config,
            Kind::System => FailureType::System,
            Kind::Transient => FailureType::Transient,
        }
    }
}

impl Failure {
    /// Writes this failure as a TRACE error.
    pub fn emit(&self, out: &Emitter) {
        let stream = self.stream.as_ref().map(|(ns, name)| (ns, name.as_str()));
        // stdout may be what failed; the message also goes to stderr.
        let _ = out.emit(&error_message(
            &self.message,
            &self.internal,
            self.kind.into(),
            stream,
        ));
    }
}

impl FailureType {
    /// The protocol's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureType::Config => "config_error",
            FailureType::System => "system_error",
            FailureType::Transient => "transient_error",
        }
    }
}

/// A RECORD message, borrowing from the input line.
#[derive(Debug)]
pub struct Record<'a> {
    /// The stream's namespace, if any.
    pub namespace: Option<Cow<'a, str>>,
    /// The stream name.
    pub stream: Cow<'a, str>,
    /// The data object exactly as it arrived.
    pub data: &'a RawValue,
    /// When the source emitted it, epoch milliseconds.
    pub emitted_at: i64,
    /// `meta.changes` as sent: the fields the source nulled or truncated,
    /// with reasons (a JSON array), when there are any.
    pub changes: Option<&'a RawValue>,
    /// What is wrong with `meta`, when it is not an object whose `changes`
    /// (if any) is a list: the record is still written, without changes.
    pub malformed_meta: Option<MalformedMeta>,
}

/// How a RECORD's `meta` departs from the protocol's shape, an object whose
/// `changes` is a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MalformedMeta {
    /// `meta` is not an object: what it is instead.
    NotAnObject(&'static str),
    /// `meta.changes` is not a list: what it is instead.
    ChangesNotAList(&'static str),
    /// `meta` is an object that cannot be read (a field given twice).
    Unreadable,
}

impl fmt::Display for MalformedMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MalformedMeta::NotAnObject(kind) => {
                write!(f, "`meta` is {kind}, where an object belongs")
            }
            MalformedMeta::ChangesNotAList(kind) => {
                write!(f, "`meta.changes` is {kind}, where a list belongs")
            }
            MalformedMeta::Unreadable => f.write_str("`meta` cannot be read as an object"),
        }
    }
}

/// Which records a STATE message vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateScope {
    /// One stream (`type: STREAM`).
    Stream {
        namespace: Option<String>,
        name: String,
    },
    /// All streams (`type: GLOBAL`).
    Global,
    /// All streams, old form (no `type`, or `LEGACY`).
    Legacy,
}

/// A STATE message, borrowing from the input line.
#[derive(Debug)]
pub struct State<'a> {
    /// The state object as it arrived, echoed back as is.
    pub raw: &'a RawValue,
    /// What it covers.
    pub scope: StateScope,
}

/// One parsed input line.
#[derive(Debug)]
pub enum Message<'a> {
    /// A record to write.
    Record(Record<'a>),
    /// A checkpoint to echo once safe.
    State(State<'a>),
    /// A message a destination may ignore (LOG, TRACE, CONTROL, ...).
    Ignored,
    /// A `type` this program does not know.
    Unknown(String),
}

/// Why an input line is not a message this destination can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The bytes are not UTF-8.
    NotUtf8 { at_byte: usize },
    /// The text is not JSON.
    NotJson(String),
    /// The JSON is not an object.
    NotObject,
    /// The object has no `type`.
    NoType,
    /// A field appears twice in one object (its name).
    DuplicateField(String),
    /// A RECORD or STATE whose fields are wrong.
    Invalid(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NotUtf8 { at_byte } => {
                write!(f, "is not valid UTF-8 (bad byte at offset {at_byte})")
            }
            ParseError::NotJson(e) => write!(f, "is not valid JSON: {e}"),
            ParseError::NotObject => write!(
                f,
                "is JSON but not an object; every message must be an object"
            ),
            ParseError::NoType => write!(f, "has no `type` field"),
            ParseError::DuplicateField(name) => write!(
                f,
                "has the field `{name}` twice; each field may appear only once"
            ),
            ParseError::Invalid(why) => f.write_str(why),
        }
    }
}

#[derive(Deserialize)]
struct WireMessage<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    record: Option<WireRecord<'a>>,
    #[serde(borrow)]
    state: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WireRecord<'a> {
    #[serde(borrow)]
    namespace: Option<Text<'a>>,
    #[serde(borrow)]
    stream: Option<Text<'a>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    // Raw, so that a number beyond f64 is reported as a bad `emitted_at`, not as bad JSON.
    #[serde(borrow)]
    emitted_at: Option<&'a RawValue>,
    // Raw, so that a `meta` of the wrong shape is told and the record kept,
    // whatever the shape.
    #[serde(borrow)]
    meta: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WireMeta<'a> {
    #[serde(borrow)]
    changes: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WireState {
    #[serde(rename = "type")]
    kind: Option<String>,
    stream: Option<WireStreamState>,
}

#[derive(Deserialize)]
struct WireStreamState {
    stream_descriptor: Option<WireDescriptor>,
}

#[derive(Deserialize)]
struct WireDescriptor {
    name: String,
    namespace: Option<String>,
}

/// Parses one input line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<Message<'_>, ParseError> {
    let text = std::str::from_utf8(line).map_err(|e| ParseError::NotUtf8 {
        at_byte: e.valid_up_to(),
    })?;
    if !text.trim_start().starts_with('{') {
        return Err(match serde_json::from_str::<&RawValue>(text) {
            Ok(_) => ParseError::NotObject,
            Err(e) => ParseError::NotJson(e.to_string()),
        });
    }
    let wire: WireMessage<'_> = serde_json::from_str(text).map_err(|e| {
        if let Some(name) = duplicate_field(&e) {
            ParseError::DuplicateField(name)
        } else if e.is_data() {
            ParseError::Invalid(format!("has a field of the wrong type: {e}"))
        } else {
            ParseError::NotJson(e.to_string())
        }
    })?;
    let kind = wire.kind.ok_or(ParseError::NoType)?.0;
    match kind.as_ref() {
        "RECORD" => record(wire.record),
        "STATE" => state(wire.state),
        "LOG" | "TRACE" | "CONTROL" | "SPEC" | "CONNECTION_STATUS" | "CATALOG" => {
            Ok(Message::Ignored)
        }
        other => Ok(Message::Unknown(other.to_string())),
    }
}

/// A RECORD message's `record`, checked.
fn record(r: Option<WireRecord<'_>>) -> Result<Message<'_>, ParseError> {
    let r = r.ok_or_else(|| ParseError::Invalid("is a RECORD without a `record` object".into()))?;
    let stream = r
        .stream
        .map(|t| t.0)
        .ok_or_else(|| ParseError::Invalid("is a RECORD without `stream`".into()))?;
    let data = r.data.ok_or_else(|| {
        ParseError::Invalid(format!("is a RECORD of stream `{stream}` without `data`"))
    })?;
    if !data.get().starts_with('{') {
        return Err(ParseError::Invalid(format!(
            "is a RECORD of stream `{stream}` whose `data` is not an object"
        )));
    }
    let emitted_at = emitted_at(r.emitted_at.map(RawValue::get))
        .map_err(|why| ParseError::Invalid(format!("is a RECORD of stream `{stream}` {why}")))?;
    let (changes, malformed_meta) = match r.meta.map(meta_changes) {
        None => (None, None),
        Some(Ok(changes)) => (changes, None),
        Some(Err(problem)) => (None, Some(problem)),
    };
    Ok(Message::Record(Record {
        namespace: r.namespace.map(|t| t.0).filter(|n| !n.is_empty()),
        stream,
        data,
        emitted_at,
        changes,
        malformed_meta,
    }))
}

/// A RECORD's `emitted_at`, epoch milliseconds: an integer, or a number that
/// falls within the integers' range (its fraction dropped). Why not, after
/// "is a RECORD of stream `s`".
fn emitted_at(raw: Option<&str>) -> Result<i64, String> {
    let Some(text) = raw else {
        return Err("without a numeric `emitted_at`".into());
    };
    if let Ok(n) = text.parse::<i64>() {
        return Ok(n);
    }
    let Ok(f) = text.parse::<f64>() else {
        return Err(format!("whose `emitted_at` ({text}) is not a number"));
    };
    // i64::MAX as f64 rounds up to 2^63, which is out of range itself.
    if f.is_finite() && f >= i64::MIN as f64 && f < i64::MAX as f64 {
        return Ok(f as i64);
    }
    Err(format!(
        "whose `emitted_at` ({text}) is out of range: it must be epoch milliseconds, \
         between {} and {}",
        i64::MIN,
        i64::MAX
    ))
}

/// `meta.changes` (None when absent or null), or why `meta` is malformed.
fn meta_changes(meta: &RawValue) -> Result<Option<&RawValue>, MalformedMeta> {
    match json_kind(meta) {
        "null" => return Ok(None),
        "an object" => {}
        other => return Err(MalformedMeta::NotAnObject(other)),
    }
    let parsed: WireMeta<'_> =
        serde_json::from_str(meta.get()).map_err(|_| MalformedMeta::Unreadable)?;
    match parsed.changes.map(|c| (c, json_kind(c))) {
        None | Some((_, "null")) => Ok(None),
        Some((changes, "a list")) => Ok(Some(changes)),
        Some((_, other)) => Err(MalformedMeta::ChangesNotAList(other)),
    }
}

/// What kind of JSON value `raw` is, for messages: `a string`, `a list`, ...
fn json_kind(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "a list",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// A STATE message's `state`, kept as it came, with its scope read.
fn state(raw: Option<&RawValue>) -> Result<Message<'_>, ParseError> {
    let raw =
        raw.ok_or_else(|| ParseError::Invalid("is a STATE without a `state` object".into()))?;
    if !raw.get().starts_with('{') {
        return Err(ParseError::Invalid(
            "is a STATE whose `state` is not an object".into(),
        ));
    }
    let parsed: WireState = serde_json::from_str(raw.get())
        .map_err(|e| ParseError::Invalid(format!("is a STATE that cannot be read: {e}")))?;
    let scope = match parsed.kind.as_deref() {
        None | Some("LEGACY") => StateScope::Legacy,
        Some("GLOBAL") => StateScope::Global,
        Some("STREAM") => {
            let d = parsed
                .stream
                .and_then(|s| s.stream_descriptor)
                .ok_or_else(|| {
                    ParseError::Invalid(
                        "is a STREAM state without `stream.stream_descriptor`".into(),
                    )
                })?;
            StateScope::Stream {
                namespace: d.namespace.filter(|n| !n.is_empty()),
                name: d.name,
            }
        }
        Some(other) => {
            return Err(ParseError::Invalid(format!(
                "is a STATE of unknown type `{other}`"
            )))
        }
    };
    Ok(Message::State(State { raw, scope }))
}

/// The state object's fields in their input order, values untouched.
struct OrderedObject(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedObject, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                    fields.push((k, v));
                }
                Ok(OrderedObject(fields))
            }
        }
        d.deserialize_map(V)
    }
}

/// What a destination says of the records a state covers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StateStats {
    /// Records received for the state's scope since the scope's last state.
    pub records: u64,
    /// Of those, records deliberately not written (counted so that the
    /// platform's own count still agrees).
    pub rejected: u64,
}

/// The STATE message to echo: the input state, fields and values as they
/// came (its `id` among them), with `destinationStats` set.
pub fn state_message(state: &RawValue, stats: StateStats) -> String {
    let mut stats_json = format!("{{\"recordCount\":{:?}", stats.records as f64);
    if stats.rejected > 0 {
        stats_json.push_str(&format!(
            ",\"rejectedRecordCount\":{:?}",
            stats.rejected as f64
        ));
    }
    stats_json.push('}');
    let mut out = String::with_capacity(state.get().len() + 64);
    out.push_str("{\"type\":\"STATE\",\"state\":{");
    let fields = serde_json::from_str::<OrderedObject>(state.get())
        .map(|o| o.0)
        .unwrap_or_default();
    let mut first = true;
    for (key, value) in fields.iter().filter(|(k, _)| k != "destinationStats") {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&serde_json::to_string(key).unwrap_or_default());
        out.push(':');
        out.push_str(value.get());
    }
    if !first {
        out.push(',');
    }
    out.push_str("\"destinationStats\":");
    out.push_str(&stats_json);
    out.push_str("}}");
    out
}

/// Milliseconds since the epoch, now.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A LOG message.
pub fn log_message(level: &str, message: &str) -> String {
    json!({"type": "LOG", "log": {"level": level, "message": message}}).to_string()
}

/// A TRACE error message.
pub fn error_message(
    message: &str,
    internal: &str,
    failure: FailureType,
    stream: Option<(&Option<String>, &str)>,
) -> String {
    let mut error = json!({
        "message": message,
        "internal_message": internal,
        "failure_type": failure.as_str(),
    });
    if let Some((namespace, name)) = stream {
        let mut descriptor = json!({ "name": name });
        if let Some(ns) = namespace {
            descriptor["namespace"] = json!(ns);
        }
        error["stream_descriptor"] = descriptor;
    }
    json!({"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": now_millis() as f64, "error": error}}).to_string()
}

/// A CONNECTION_STATUS message.
pub fn connection_status(succeeded: bool, message: &str) -> String {
    let status = if succeeded { "SUCCEEDED" } else { "FAILED" };
    json!({"type": "CONNECTION_STATUS", "connectionStatus": {"status": status, "message": message}})
        .to_string()
}

/// A SPEC message around a spec object.
pub fn spec_message(spec: Value) -> String {
    json!({"type": "SPEC", "spec": spec}).to_string()
}

/// Standard output could not take a message: nothing more can reach the
/// platform, so the run must stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputError(pub String);

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write to standard output ({})", self.0)
    }
}

impl std::error::Error for OutputError {}

/// Where AirbyteMessages go: one line each, flushed, from any thread. The
/// first failed write is remembered, so that writers that cannot return an
/// error (notices from other threads) still stop the run.
#[derive(Clone)]
pub struct Emitter {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    broken: Arc<std::sync::OnceLock<OutputError>>,
}

impl Emitter {
    /// Writes to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Emitter {
        Emitter {
            out: Arc::new(Mutex::new(out)),
            broken: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// Writes to standard output; broken from the start if standard output
    /// was closed when the program started.
    pub fn stdout() -> Emitter {
        let emitter = Emitter::new(Box::new(std::io::stdout()));
        if crate::stdout::stdout_was_closed() {
            let _ = emitter
                .broken
                .set(OutputError("it was closed when the program started".into()));
        }
        emitter
    }

    /// Writes one message line and flushes it; fails, now and from then on,
    /// once a write failed (a closed pipe, a full disk).
    pub fn emit(&self, line: &str) -> Result<(), OutputError> {
        if let Some(e) = self.broken.get() {
            return Err(e.clone());
        }
        let mut out = match self.out.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let written = out
            .write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
        written.map_err(|e| {
            self.broken
                .get_or_init(|| OutputError(e.to_string()))
                .clone()
        })
    }

    /// Writes a LOG message.
    pub fn log(&self, level: &str, message: &str) -> Result<(), OutputError> {
        self.emit(&log_message(level, message))
    }

    /// The failed write, once one failed.
    pub fn broken(&self) -> Option<&OutputError> {
        self.broken.get()
    }
}

/// The field serde found twice, if that is the error. serde reports it only
/// in its message (``duplicate field `type` ``), as a data error that would
/// otherwise read as a wrong type.
fn duplicate_field(e: &serde_json::Error) -> Option<String> {
    let text = e.to_string();
    let rest = text.strip_prefix("duplicate field `")?;
    rest.split_once('`').map(|(name, _)| name.to_string())
}

impl From<OutputError> for Failure {
    fn from(e: OutputError) -> Failure {
        Failure::new(
            Kind::System,
            format!("{e}: the platform can get no more states from this run, so it stops here"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(line: &str) -> Record<'_> {
        match parse_line(line.as_bytes()).unwrap() {
            Message::Record(r) => r,
            other => panic!("not a record: {other:?}"),
        }
    }

    #[test]
    fn parses_records_keeping_raw_data() {
        let line = r#"{"type":"RECORD","record":{"stream":"users","namespace":"pub","data":{"n": 12345678901234567890123, "x":1.50},"emitted_at":1700000000000}}"#;
        let r = record(line);
        assert_eq!(r.stream, "users");
        assert_eq!(r.namespace.as_deref(), Some("pub"));
        assert_eq!(r.data.get(), r#"{"n": 12345678901234567890123, "x":1.50}"#);
        assert_eq!(r.emitted_at, 1_700_000_000_000);
    }

    #[test]
    fn rejects_bad_lines_with_reasons() {
        let cases: &[(&[u8], &str)] = &[
            (b"not json", "not valid JSON"),
            (b"[1,2]", "not an object"),
            (b"42", "not an object"),
            (b"{\"record\":{}}", "no `type`"),
            (b"{\"type\":\"RECORD\",\"record\":{\"data\":{},\"emitted_at\":1}}", "without `stream`"),
            (b"{\"type\":\"RECORD\",\"record\":{\"stream\":\"s\",\"data\":[1],\"emitted_at\":1}}", "not an object"),
            (b"{\"type\":\"RECORD\",\"record\":{\"stream\":\"s\",\"data\":{}}}", "emitted_at"),
            (b"{\"type\":\"RECORD\",\"record\":{\"stream\":\"s\",\"data\":{},\"emitted_at\":1e400}}", "`emitted_at` (1e400) is out of range"),
            (b"{\"type\":\"RECORD\",\"record\":{\"stream\":\"s\",\"data\":{},\"emitted_at\":9.3e18}}", "`emitted_at` (9.3e18) is out of range"),
            (b"{\"type\":\"RECORD\",\"record\":{\"stream\":\"s\",\"data\":{},\"emitted_at\":-9300000000000000000}}", "out of range: it must be epoch milliseconds"),
            (b"{\"type\":\"RECORD\",\"record\":{\"stream\":\"s\",\"data\":{},\"emitted_at\":\"12\"}}", "`emitted_at` (\"12\") is not a number"),
            (b"{\"type\":\"RECORD\",\"record\":{\"stream\":5,\"data\":{},\"emitted_at\":1}}", "wrong type"),
            (b"{\"type\":\"RECORD\",\"record\":{\"stream\":\"s\",\"data\":{}", "not valid JSON"),
            (b"{\"type\":\"RECORD\",\"record\":{\"stream\":\"\xff\"}}", "UTF-8"),
            (b"{\"type\":\"RECORD\",\"type\":\"STATE\"}", "has the field `type` twice"),
            (b"{\"type\":\"RECORD\",\"record\":{\"stream\":\"s\",\"stream\":\"t\"}}", "has the field `stream` twice"),
        ];
        for (line, expected) in cases {
            let err = parse_line(line).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{}: {err}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn emitted_at_within_range_and_meta_of_any_shape() {
        let line = |emitted_at: &str, meta: &str| {
            format!(
                r#"{{"type":"RECORD","record":{{"stream":"s","data":{{}},"emitted_at":{emitted_at}{meta}}}}}"#
            )
        };
        assert_eq!(record(&line("1.7e12", "")).emitted_at, 1_700_000_000_000);
        assert_eq!(record(&line("-5", "")).emitted_at, -5);
        assert_eq!(
            record(&line("9223372036854775807", "")).emitted_at,
            i64::MAX
        );
        assert_eq!(
            record(&line("-9.2e18", "")).emitted_at,
            -9_200_000_000_000_000_000
        );
        let meta = |meta: &str| {
            let text = line("1", &format!(r#","meta":{meta}"#));
            let r = record(&text);
            (r.changes.map(|c| c.get().to_string()), r.malformed_meta)
        };
        let listed = r#"[{"field":"a","change":"NULLED","reason":"SOURCE_RETRIEVAL_ERROR"}]"#;
        assert_eq!(
            meta(&format!(r#"{{"changes":{listed}}}"#)),
            (Some(listed.into()), None)
        );
        for fine in ["null", "{}", r#"{"changes":null}"#, r#"{"other":1}"#] {
            assert_eq!(meta(fine), (None, None), "{fine}");
        }
        for (bad, problem) in [
            (r#""x""#, "`meta` is a string, where an object belongs"),
            ("[1]", "`meta` is a list, where an object belongs"),
            ("7", "`meta` is a number, where an object belongs"),
            (
                r#"{"changes":{"field":"a"}}"#,
                "`meta.changes` is an object, where a list belongs",
            ),
            (
                r#"{"changes":"x"}"#,
                "`meta.changes` is a string, where a list belongs",
            ),
            (
                r#"{"changes":[],"changes":[]}"#,
                "`meta` cannot be read as an object",
            ),
        ] {
            let (changes, malformed) = meta(bad);
            assert_eq!(changes, None, "{bad}");
            assert_eq!(
                malformed.map(|m| m.to_string()).as_deref(),
                Some(problem),
                "{bad}"
            );
        }
    }

    #[test]
    fn classifies_states() {
        let scope = |line: &str| match parse_line(line.as_bytes()).unwrap() {
            Message::State(s) => s.scope,
            other => panic!("not a state: {other:?}"),
        };
        assert_eq!(
            scope(r#"{"type":"STATE","state":{"data":{"c":1}}}"#),
            StateScope::Legacy
        );
        assert_eq!(
            scope(r#"{"type":"STATE","state":{"type":"GLOBAL","global":{}}}"#),
            StateScope::Global
        );
        assert_eq!(
            scope(
                r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"u","namespace":"p"}}}}"#
            ),
            StateScope::Stream {
                namespace: Some("p".into()),
                name: "u".into()
            }
        );
    }

    #[test]
    fn tolerates_other_messages() {
        assert!(matches!(
            parse_line(br#"{"type":"LOG","log":{}}"#).unwrap(),
            Message::Ignored
        ));
        assert!(matches!(
            parse_line(br#"{"type":"TRACE"}"#).unwrap(),
            Message::Ignored
        ));
        assert!(
            matches!(parse_line(br#"{"type":"FOO"}"#).unwrap(), Message::Unknown(t) if t == "FOO")
        );
    }

    #[test]
    fn echoes_state_exactly_with_stats() {
        let raw: Box<RawValue> = serde_json::from_str(
            r#"{"type":"STREAM","zeta":1.10,"alpha":{"big":123456789012345678901234},"destinationStats":{"recordCount":1.0}}"#,
        )
        .unwrap();
        let stats = |records, rejected| StateStats { records, rejected };
        assert_eq!(
            state_message(&raw, stats(3, 0)),
            r#"{"type":"STATE","state":{"type":"STREAM","zeta":1.10,"alpha":{"big":123456789012345678901234},"destinationStats":{"recordCount":3.0}}}"#
        );
        let empty: Box<RawValue> = serde_json::from_str("{}").unwrap();
        assert_eq!(
            state_message(&empty, stats(0, 0)),
            r#"{"type":"STATE","state":{"destinationStats":{"recordCount":0.0}}}"#
        );
        // The platform's `id` goes back unchanged; rejected records are counted.
        let with_id: Box<RawValue> = serde_json::from_str(
            r#"{"type":"STREAM","stream":{"stream_descriptor":{"name":"s"},"stream_state":null},"id":4711}"#,
        )
        .unwrap();
        assert_eq!(
            state_message(&with_id, stats(5, 2)),
            r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"s"},"stream_state":null},"id":4711,"destinationStats":{"recordCount":5.0,"rejectedRecordCount":2.0}}}"#
        );
    }

    #[test]
    fn trace_names_stream() {
        let line = error_message(
            "m",
            "i",
            FailureType::System,
            Some((&Some("ns".into()), "s")),
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["trace"]["error"]["failure_type"], "system_error");
        assert_eq!(v["trace"]["error"]["stream_descriptor"]["namespace"], "ns");
    }
}
