//! The connector configuration: the Java connector's fields, kept with the same
//! names and defaults, plus this connector's own, each validated with an error
//! that names the field.

use crate::airbyte::naming::StreamNaming;
use crate::aws::access::Access;
use crate::aws::region::normalize_endpoint;
use crate::aws::role::{self, Role};
use crate::aws::secret::Secret;
use crate::engine::in_flight::InFlight;
use crate::engine::partition::PartitionKeySource;
use crate::engine::sending::Sending;
use crate::failure::{Failure, Kind};
use crate::json::without_bom;
use crate::kinesis::stream::StreamArn;
use crate::kinesis::{NewStream, StreamMode};
use serde_json::{Map, Value};
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// A configuration that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The file could not be read.
    Unreadable { path: String, reason: String },
    /// The file is not a JSON object.
    NotJson { path: String, reason: String },
    /// A command-line flag that overrides a field has a wrong value.
    Flag { flag: &'static str, problem: String },
    /// One field has a wrong type or value.
    Field {
        field: &'static str,
        problem: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Unreadable { path, reason } => {
                write!(f, "cannot read config file {path}: {reason}")
            }
            ConfigError::NotJson { path, reason } => {
                write!(f, "config file {path} is not a JSON object: {reason}")
            }
            ConfigError::Flag { flag, problem } => write!(f, "{flag} {problem}"),
            ConfigError::Field { field, problem } => {
                write!(f, "config field `{field}` {problem}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// How `_airbyte_data` is written into the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    /// The data as JSON text inside a JSON string (the Java connector's format).
    String,
    /// The data as a nested JSON object.
    Object,
}

/// Which fields each Kinesis record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// The Java connector's: `_airbyte_ab_id`, `_airbyte_emitted_at` (when
    /// the destination read the record, in decimal epoch seconds) and `_airbyte_data`.
    Legacy,
    /// Airbyte's current destinations': `_airbyte_raw_id`,
    /// `_airbyte_extracted_at`, `_airbyte_generation_id`, `_airbyte_meta`, `_airbyte_data`.
    V2,
}

/// What happens to a record larger than its Kinesis stream takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OversizePolicy {
    /// The sync fails, naming the record.
    Fail,
    /// The record is not sent, and is counted and named.
    Skip,
}

/// A validated configuration, as the user wrote it (before any environment
/// fallback): how to reach AWS, how to send, how to make missing streams,
/// and what only the connector does (naming, keys, record formats).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where to reach AWS and as whom (`endpoint`, `region`, keys, `roleArn`, …).
    pub access: Access,
    /// How records are sent (`bufferSize`, `maxInFlight`, `shardRateLimit`, …).
    pub sending: Sending,
    /// Whether missing streams may be created.
    pub create_streams: bool,
    /// How missing streams are made (`streamMode`, `shardCount`, `maxRecordSizeKiB`).
    pub new_streams: NewStream,
    /// Target stream: a name template with `{namespace}` and `{stream}`, or
    /// one stream's ARN; None keeps the Java rule.
    pub stream_name: Option<StreamNaming>,
    /// Where partition keys come from.
    pub partition_key: PartitionKeySource,
    /// How `_airbyte_data` is written.
    pub data_format: DataFormat,
    /// Which fields each record carries.
    pub record_format: RecordFormat,
    /// What happens to a record larger than its stream takes.
    pub oversize: OversizePolicy,
    /// How often `write` logs its progress; zero: never.
    pub progress_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            access: Access::default(),
            sending: Sending::default(),
            create_streams: true,
            new_streams: NewStream {
                mode: StreamMode::Provisioned,
                shards: 5,
                max_record_size_kib: None,
            },
            stream_name: None,
            partition_key: PartitionKeySource::Uuid,
            data_format: DataFormat::String,
            record_format: RecordFormat::Legacy,
            oversize: OversizePolicy::Fail,
            progress_interval: Duration::from_secs(60),
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let value: Value =
            serde_json::from_str(without_bom(&text)).map_err(|e| ConfigError::NotJson {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
        match value {
            Value::Object(map) => Config::from_map(&map),
            other => Err(ConfigError::NotJson {
                path: shown,
                reason: format!("found {}", kind_of(&other)),
            }),
        }
    }

    /// Validates a config given as a JSON object.
    pub fn from_map(map: &Map<String, Value>) -> Result<Config, ConfigError> {
        let d = Config::default();
        let fields = Fields(map);
        let endpoint = fields.endpoint("endpoint")?;
        let sts_endpoint = fields.endpoint("stsEndpoint")?;
        let assume_role = assume_role(&fields)?;
        let stream_name = stream_naming(&fields)?;
        let stream_mode = fields.choice(
            "streamMode",
            &[
                ("PROVISIONED", StreamMode::Provisioned),
                ("ON_DEMAND", StreamMode::OnDemand),
            ],
        )?;
        let partition_key = partition_key_source(&fields)?;
        let data_format = fields.choice(
            "dataFormat",
            &[
                ("string", DataFormat::String),
                ("object", DataFormat::Object),
            ],
        )?;
        let record_format = fields.choice(
            "recordFormat",
            &[("legacy", RecordFormat::Legacy), ("v2", RecordFormat::V2)],
        )?;
        let oversize = fields.choice(
            "oversizeRecords",
            &[
                ("fail", OversizePolicy::Fail),
                ("skip", OversizePolicy::Skip),
            ],
        )?;
        let max_record_size_kib = match fields.0.get("maxRecordSizeKiB") {
            None | Some(Value::Null) => None,
            Some(_) => Some(fields.integer(
                "maxRecordSizeKiB",
                Bounds {
                    min: 1024,
                    max: 10240,
                },
                1024,
            )? as u32),
        };
        let sending = Sending {
            buffer_size: fields.integer(
                "bufferSize",
                Bounds { min: 1, max: 500 },
                d.sending.buffer_size as u64,
            )? as usize,
            retry_timeout: Duration::from_secs(fields.integer(
                "retryTimeoutSeconds",
                Bounds {
                    min: 1,
                    max: 86_400,
                },
                d.sending.retry_timeout.as_secs(),
            )?),
            max_in_flight: fields.in_flight("maxInFlight", d.sending.max_in_flight)?,
            aggregation: fields.boolean("aggregation", d.sending.aggregation)?,
            keep_key_order: fields.boolean("keepKeyOrder", d.sending.keep_key_order)?,
            linger: Duration::from_millis(fields.integer(
                "lingerMs",
                LINGER_MS,
                d.sending.linger.as_millis() as u64,
            )?),
            shard_rate_limit: fields.integer(
                "shardRateLimit",
                Bounds { min: 0, max: 1000 },
                u64::from(d.sending.shard_rate_limit),
            )? as u32,
        };
        let access = Access {
            endpoint,
            region: fields.string("region")?,
            access_key: fields.string("accessKey")?,
            secret_key: fields.string("privateKey")?.map(Secret::new),
            session_token: fields.string("sessionToken")?.map(Secret::new),
            assume_role,
            sts_endpoint,
            profile: None,
            request_timeout: Duration::from_secs(fields.integer(
                "requestTimeoutSeconds",
                Bounds { min: 1, max: 600 },
                d.access.request_timeout.as_secs(),
            )?),
        };
        Ok(Config {
            access,
            sending,
            create_streams: fields.boolean("createStreams", d.create_streams)?,
            new_streams: NewStream {
                mode: stream_mode,
                shards: fields.integer(
                    "shardCount",
                    SHARD_COUNT,
                    u64::from(d.new_streams.shards),
                )? as u32,
                max_record_size_kib,
            },
            stream_name,
            partition_key,
            data_format,
            record_format,
            oversize,
            progress_interval: Duration::from_secs(fields.integer(
                "progressIntervalSeconds",
                PROGRESS_INTERVAL_SECONDS,
                d.progress_interval.as_secs(),
            )?),
        })
    }
}

impl Config {
    /// The stream ARN `streamName` gives, if it is one.
    pub fn stream_arn(&self) -> Option<&StreamArn> {
        self.stream_name.as_ref().and_then(StreamNaming::arn)
    }
}

/// Command-line flags that override the config file's fields.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--endpoint`.
    pub endpoint: Option<String>,
    /// `--region`.
    pub region: Option<String>,
    /// `--profile`.
    pub profile: Option<String>,
    /// `--max-in-flight`.
    pub max_in_flight: Option<InFlight>,
    /// `--shards`.
    pub shards: Option<u32>,
    /// `--linger-ms`.
    pub linger_ms: Option<u64>,
}

/// The range of a whole-number setting that both a config field and a flag
/// set, so that the two never take different values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The least value taken.
    pub min: u64,
    /// The greatest value taken.
    pub max: u64,
}

/// `shardCount` and `--shards`.
pub const SHARD_COUNT: Bounds = Bounds {
    min: 1,
    max: 100_000,
};
/// `lingerMs` and `--linger-ms`.
pub const LINGER_MS: Bounds = Bounds {
    min: 0,
    max: 60_000,
};
/// `progressIntervalSeconds` (0: no progress lines; a day at most).
pub const PROGRESS_INTERVAL_SECONDS: Bounds = Bounds {
    min: 0,
    max: 86_400,
};

impl Bounds {
    /// `n` when `flag`'s value is within the range.
    fn flag(self, flag: &'static str, n: u64) -> Result<u64, ConfigError> {
        if (self.min..=self.max).contains(&n) {
            Ok(n)
        } else {
            Err(ConfigError::Flag {
                flag,
                problem: format!("must be between {} and {}, got {n}", self.min, self.max),
            })
        }
    }
}

impl Config {
    /// The config: the file's when given (else the defaults), then the flags.
    pub fn load(file: Option<&Path>, flags: &Overrides) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(url) = &flags.endpoint {
            config.access.endpoint =
                Some(
                    normalize_endpoint(url).map_err(|problem| ConfigError::Flag {
                        flag: "--endpoint",
                        problem,
                    })?,
                );
        }
        if let Some(region) = &flags.region {
            config.access.region = Some(region.clone());
        }
        if let Some(profile) = &flags.profile {
            if profile.trim().is_empty() {
                return Err(ConfigError::Flag {
                    flag: "--profile",
                    problem: "names no profile: give a profile's name, as in ~/.aws/config".into(),
                });
            }
            config.access.profile = Some(profile.trim().to_string());
        }
        if let Some(n) = flags.max_in_flight {
            config.sending.max_in_flight = n;
        }
        if let Some(n) = flags.shards {
            config.new_streams.shards = SHARD_COUNT.flag("--shards", u64::from(n))? as u32;
        }
        if let Some(ms) = flags.linger_ms {
            config.sending.linger = Duration::from_millis(LINGER_MS.flag("--linger-ms", ms)?);
        }
        Ok(config)
    }
}

/// `streamName`: the Java connector's rule when absent, else a template or an ARN.
fn stream_naming(fields: &Fields<'_>) -> Result<Option<StreamNaming>, ConfigError> {
    let Some(value) = fields.string("streamName")? else {
        return Ok(None);
    };
    StreamNaming::parse(&value)
        .map(Some)
        .map_err(|problem| ConfigError::Field {
            field: "streamName",
            problem,
        })
}

/// `partitionKey`: a random UUID (the default), the primary key, or a JSON Pointer.
fn partition_key_source(fields: &Fields<'_>) -> Result<PartitionKeySource, ConfigError> {
    Ok(match fields.string("partitionKey")?.as_deref() {
        None | Some("uuid") => PartitionKeySource::Uuid,
        Some("primary_key") => PartitionKeySource::PrimaryKey,
        Some(p) if p.starts_with('/') => PartitionKeySource::Pointer(p.to_string()),
        Some(other) => {
            return Err(ConfigError::Field {
                field: "partitionKey",
                problem: format!(
                    "must be `uuid`, `primary_key` or a JSON Pointer such as `/customer/id`, got `{other}`"
                ),
            })
        }
    })
}

/// `roleArn` with `externalId` and `roleSessionName`, each checked; the two
/// without `roleArn` are refused, as they would otherwise be silently ignored.
fn assume_role(fields: &Fields) -> Result<Option<Role>, ConfigError> {
    let checked = |field: &'static str, check: fn(&str) -> Result<(), String>| {
        fields.string(field).and_then(|value| match value {
            Some(v) => check(&v)
                .map(|()| Some(v))
                .map_err(|problem| ConfigError::Field { field, problem }),
            None => Ok(None),
        })
    };
    let arn = checked("roleArn", role::check_arn)?;
    let external_id = checked("externalId", role::check_external_id)?;
    let session_name = checked("roleSessionName", role::check_session_name)?;
    let Some(arn) = arn else {
        return match (&external_id, &session_name) {
            (None, None) => Ok(None),
            (Some(_), _) => Err(ConfigError::Field {
                field: "externalId",
                problem: "is set but `roleArn` is not".into(),
            }),
            (None, Some(_)) => Err(ConfigError::Field {
                field: "roleSessionName",
                problem: "is set but `roleArn` is not".into(),
            }),
        };
    };
    Ok(Some(Role {
        arn,
        external_id,
        session_name: session_name.unwrap_or_else(role::default_session_name),
        duration_seconds: role::DEFAULT_DURATION_SECONDS,
    }))
}

/// Typed, named access to the fields of a config object.
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    /// An endpoint URL field, normalized.
    fn endpoint(&self, field: &'static str) -> Result<Option<String>, ConfigError> {
        match self.string(field)? {
            Some(url) => normalize_endpoint(&url)
                .map(Some)
                .map_err(|problem| ConfigError::Field { field, problem }),
            None => Ok(None),
        }
    }

    /// A string field; absent, null and empty all mean "not set".
    fn string(&self, field: &'static str) -> Result<Option<String>, ConfigError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(other) => Err(wrong_type(field, "a string", other)),
        }
    }

    /// A string field that names one of `choices`; unset means the first.
    fn choice<T: Copy>(
        &self,
        field: &'static str,
        choices: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let Some(value) = self.string(field)? else {
            return Ok(choices[0].1);
        };
        if let Some((_, chosen)) = choices.iter().find(|(name, _)| *name == value) {
            return Ok(*chosen);
        }
        let names: Vec<String> = choices
            .iter()
            .map(|(name, _)| format!("`{name}`"))
            .collect();
        Err(ConfigError::Field {
            field,
            problem: format!("must be {}, got `{value}`", names.join(" or ")),
        })
    }

    fn integer(
        &self,
        field: &'static str,
        bounds: Bounds,
        default: u64,
    ) -> Result<u64, ConfigError> {
        let Bounds { min, max } = bounds;
        let value = match self.0.get(field) {
            None | Some(Value::Null) => return Ok(default),
            Some(v) => v,
        };
        let n = value
            .as_i64()
            .or_else(|| {
                value
                    .as_f64()
                    .filter(|f| f.fract() == 0.0)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| wrong_type(field, "a whole number", value))?;
        if n < min as i64 || n > max as i64 {
            return Err(ConfigError::Field {
                field,
                problem: format!("must be between {min} and {max}, got {n}"),
            });
        }
        Ok(n as u64)
    }

    /// `"auto"` or a whole number of calls in flight (see `InFlight::parse`).
    fn in_flight(&self, field: &'static str, default: InFlight) -> Result<InFlight, ConfigError> {
        let text = match self.0.get(field) {
            None | Some(Value::Null) => return Ok(default),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => return Err(wrong_type(field, "\"auto\" or a whole number", other)),
        };
        InFlight::parse(&text).map_err(|problem| ConfigError::Field { field, problem })
    }

    fn boolean(&self, field: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(wrong_type(field, "true or false", other)),
        }
    }
}

fn wrong_type(field: &'static str, expected: &str, found: &Value) -> ConfigError {
    ConfigError::Field {
        field,
        problem: format!("must be {expected}, found {}", kind_of(found)),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Failure {
        Failure::new(Kind::Config, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("dk-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.json");
        std::fs::write(
            &file,
            r#"{"endpoint":"http://127.0.0.1:1","region":"eu-west-1","maxInFlight":3,"shardCount":7}"#,
        )
        .unwrap();
        let c = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(c.access.endpoint.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(
            (c.sending.max_in_flight, c.new_streams.shards),
            (InFlight::Fixed(3), 7)
        );
        let flags = Overrides {
            endpoint: Some("http://localhost:4566/".into()),
            region: Some("us-west-2".into()),
            profile: Some("ci".into()),
            max_in_flight: Some(InFlight::Fixed(4)),
            shards: Some(1),
            linger_ms: Some(5),
        };
        let c = Config::load(Some(&file), &flags).unwrap();
        assert_eq!(c.access.endpoint.as_deref(), Some("http://localhost:4566"));
        assert_eq!(c.access.region.as_deref(), Some("us-west-2"));
        assert_eq!(
            (c.sending.max_in_flight, c.new_streams.shards),
            (InFlight::Fixed(4), 1)
        );
        assert_eq!(c.sending.linger, Duration::from_millis(5));
        assert_eq!(c.access.profile.as_deref(), Some("ci"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        let bad = |flags: Overrides, expected: &str| {
            let f = Config::load(None, &flags).unwrap_err().to_string();
            assert!(f.contains(expected), "{f}");
        };
        bad(
            Overrides {
                endpoint: Some("ftp://x".into()),
                ..Overrides::default()
            },
            "--endpoint must start with http",
        );
        bad(
            Overrides {
                shards: Some(0),
                ..Overrides::default()
            },
            "--shards",
        );
        let f = Config::load(
            Some(Path::new("/nonexistent/c.json")),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(f.to_string().contains("cannot read config file"));
    }
    use serde_json::json;

    fn parse(v: Value) -> Result<Config, ConfigError> {
        Config::from_map(v.as_object().expect("test config is an object"))
    }

    #[test]
    fn java_config_keeps_working() {
        let c = parse(
            json!({"endpoint": "http://localhost:4566", "region": "eu-west-1",
            "shardCount": 2, "accessKey": "AK", "privateKey": "SK", "bufferSize": 50}),
        )
        .unwrap();
        assert_eq!(c.new_streams.shards, 2);
        assert_eq!(c.sending.buffer_size, 50);
        assert_eq!(c.access.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.access.secret_key.as_ref().map(Secret::expose), Some("SK"));
    }

    #[test]
    fn defaults() {
        let c = parse(json!({})).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.new_streams.shards, 5);
        assert_eq!(c.sending.buffer_size, 100);
        assert_eq!(c.sending.retry_timeout, Duration::from_secs(300));
    }

    #[test]
    fn names_the_bad_field() {
        let e = parse(json!({"bufferSize": 501})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config field `bufferSize` must be between 1 and 500, got 501"
        );
        let e = parse(json!({"bufferSize": 0})).unwrap_err();
        assert!(e.to_string().contains("bufferSize"));
        let e = parse(json!({"shardCount": 0})).unwrap_err();
        assert!(e.to_string().contains("shardCount"));
        let e = parse(json!({"shardCount": "5"})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config field `shardCount` must be a whole number, found a string"
        );
        let e = parse(json!({"region": 3})).unwrap_err();
        assert!(e.to_string().contains("`region` must be a string"));
        let e = parse(json!({"aggregation": "yes"})).unwrap_err();
        assert!(e.to_string().contains("aggregation"));
        let e = parse(json!({"streamMode": "FAST"})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config field `streamMode` must be `PROVISIONED` or `ON_DEMAND`, got `FAST`"
        );
        let c =
            parse(json!({"recordFormat": "v2", "oversizeRecords": "skip", "shardRateLimit": 0}));
        let c = c.unwrap();
        assert_eq!(
            (c.record_format, c.oversize, c.sending.shard_rate_limit),
            (RecordFormat::V2, OversizePolicy::Skip, 0)
        );
        assert!(parse(json!({"maxRecordSizeKiB": 1023})).is_err());
        assert!(parse(json!({"lingerMs": 60_001})).is_err());
        let e = parse(json!({"progressIntervalSeconds": -1})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config field `progressIntervalSeconds` must be between 0 and 86400, got -1"
        );
        let c = parse(json!({"progressIntervalSeconds": 0})).unwrap();
        assert_eq!(c.progress_interval, Duration::ZERO);
    }

    #[test]
    fn endpoint_must_be_http_url() {
        assert!(parse(json!({"endpoint": "https://kinesis.us-east-1.amazonaws.com"})).is_ok());
        let c = parse(json!({"endpoint": "http://127.0.0.1:4566/"})).unwrap();
        assert_eq!(c.access.endpoint.as_deref(), Some("http://127.0.0.1:4566"));
        let c = parse(json!({"endpoint": "kinesis.us-west-1.amazonaws.com"})).unwrap();
        assert_eq!(
            c.access.endpoint.as_deref(),
            Some("https://kinesis.us-west-1.amazonaws.com")
        );
        for bad in [
            "ftp://x",
            "http://",
            "not a url",
            "http://h/path",
            "http://exa mple.com",
            "https://h?x=1",
            "http://user:pw@h",
        ] {
            let e = parse(json!({ "endpoint": bad })).unwrap_err();
            assert!(e.to_string().contains("endpoint"), "{bad}: {e}");
        }
        // No message shows a password, whatever else is wrong with the URL.
        for bad in [
            "http://user:s3cret@h:1",
            "ftp://u:s3cret@h",
            "http://u:s3cr/et@h/x",
        ] {
            let e = parse(json!({ "endpoint": bad })).unwrap_err().to_string();
            assert!(e.contains("`endpoint`") && !e.contains("s3cr"), "{e}");
        }
    }

    #[test]
    fn empty_strings_mean_unset() {
        let c = parse(json!({"endpoint": "", "accessKey": "", "privateKey": ""})).unwrap();
        assert!(
            c.access.endpoint.is_none()
                && c.access.access_key.is_none()
                && c.access.secret_key.is_none()
        );
    }

    #[test]
    fn secrets_hidden_from_debug() {
        let c = parse(json!({"privateKey": "TOPSECRET", "sessionToken": "TOKENSECRET"})).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("TOPSECRET") && !shown.contains("TOKENSECRET"));
    }

    #[test]
    fn assume_role_fields() {
        let c = parse(json!({"roleArn": "arn:aws:iam::123456789012:role/writer",
            "externalId": "ext-hidden-1", "roleSessionName": "airbyte-1",
            "stsEndpoint": "http://127.0.0.1:5/"}))
        .unwrap();
        let role = c.access.assume_role.clone().unwrap();
        assert_eq!(role.arn, "arn:aws:iam::123456789012:role/writer");
        assert_eq!(role.external_id.as_deref(), Some("ext-hidden-1"));
        assert_eq!(role.session_name, "airbyte-1");
        assert_eq!(role.duration_seconds, 3600);
        assert_eq!(c.access.sts_endpoint.as_deref(), Some("http://127.0.0.1:5"));
        assert!(!format!("{c:?}").contains("ext-hidden-1"));
        let c = parse(json!({"roleArn": "arn:aws:iam::123456789012:role/writer"})).unwrap();
        let name = c.access.assume_role.unwrap().session_name;
        assert!(name.starts_with("destination-kinesis-"), "{name}");
        for (bad, field) in [
            (
                json!({"roleArn": "writer"}),
                "config field `roleArn` `writer` is not a role ARN",
            ),
            (
                json!({"roleArn": "arn:aws:iam::123456789012:role/w", "roleSessionName": "a b"}),
                "config field `roleSessionName`",
            ),
            (
                json!({"externalId": "ext-1"}),
                "config field `externalId` is set but `roleArn` is not",
            ),
            (
                json!({"roleSessionName": "s1"}),
                "config field `roleSessionName` is set but `roleArn` is not",
            ),
            (
                json!({"roleArn": "arn:aws:iam::123456789012:role/w", "externalId": "bad id!"}),
                "config field `externalId` must be",
            ),
            (
                json!({"stsEndpoint": "ftp://x"}),
                "config field `stsEndpoint`",
            ),
            (
                json!({"roleArn": 5}),
                "config field `roleArn` must be a string",
            ),
        ] {
            let e = parse(bad.clone()).unwrap_err().to_string();
            assert!(e.starts_with(field), "{bad}: {e}");
            assert!(!e.contains("bad id!"), "{e}");
        }
    }

    #[test]
    fn routing_options() {
        let c = parse(
            json!({"streamName": "all-{namespace}.{stream}", "streamMode": "ON_DEMAND",
            "partitionKey": "/customer/id", "dataFormat": "object", "createStreams": false}),
        )
        .unwrap();
        assert_eq!(c.new_streams.mode, StreamMode::OnDemand);
        assert_eq!(
            c.partition_key,
            PartitionKeySource::Pointer("/customer/id".into())
        );
        assert_eq!(c.data_format, DataFormat::Object);
        assert!(!c.create_streams);
        assert!(parse(json!({"streamName": "{table}"})).is_err());
        let arn = "arn:aws:kinesis:eu-west-1:222222222222:stream/shared";
        let c = parse(json!({ "streamName": arn })).unwrap();
        assert_eq!(c.stream_arn().map(StreamArn::as_str), Some(arn));
        let e =
            parse(json!({"streamName": "arn:aws:kinesis:eu-west-1:222222222222:stream/{stream}"}))
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("`streamName`") && e.contains("placeholders"),
            "{e}"
        );
        let e = parse(json!({"streamName": "arn:aws:kinesis:eu-west-1:2222:stream/x"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`streamName`") && e.contains("12 digits"), "{e}");
        assert!(parse(json!({"partitionKey": "customer"})).is_err());
        assert!(parse(json!({"streamMode": "ondemand"})).is_err());
    }
}
