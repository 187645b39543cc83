//! What the pipeline commands (`put`, `read`) share: the config from a file
//! and flags, a Kinesis client whose notices go to stderr, and a first call
//! that fails fast when nothing answers.

use crate::config::{normalize_endpoint, Config};
use crate::failure::Failure;
use crate::http::Timeouts;
use crate::kinesis::{FailureType, Kinesis};
use crate::naming::check_stream_name;
use crate::session::{Session, CONNECT_TIMEOUT};
use std::path::Path;

/// Connection flags that override the config file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--endpoint`.
    pub endpoint: Option<String>,
    /// `--region`.
    pub region: Option<String>,
    /// `--max-in-flight`.
    pub max_in_flight: Option<usize>,
    /// `--shards`.
    pub shards: Option<u32>,
}

/// The config: the file's when given (else the defaults), then the flags.
pub fn load_config(file: Option<&Path>, flags: &Overrides) -> Result<Config, Failure> {
    let mut config = match file {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(url) = &flags.endpoint {
        config.endpoint =
            Some(normalize_endpoint(url).map_err(|why| usage(format!("--endpoint {why}")))?);
    }
    if let Some(region) = &flags.region {
        config.region = Some(region.clone());
    }
    if let Some(n) = flags.max_in_flight {
        if !(1..=64).contains(&n) {
            return Err(usage(format!(
                "--max-in-flight must be between 1 and 64, got {n}"
            )));
        }
        config.max_in_flight = n;
    }
    if let Some(n) = flags.shards {
        if !(1..=100_000).contains(&n) {
            return Err(usage(format!(
                "--shards must be between 1 and 100000, got {n}"
            )));
        }
        config.shard_count = n;
    }
    Ok(config)
}

/// Checks a `--stream` value against Kinesis's naming rule.
pub fn check_stream(name: &str) -> Result<(), Failure> {
    check_stream_name(name).map_err(|why| usage(format!("--stream: {why}")))
}

/// A usage or configuration error (exit code 2).
pub fn usage(message: impl Into<String>) -> Failure {
    Failure::new(FailureType::Config, message)
}

/// A Kinesis client for `config`; notices (clock correction) go to stderr.
pub fn open(config: &Config) -> Result<Kinesis, Failure> {
    let timeouts = Timeouts {
        connect: CONNECT_TIMEOUT.min(config.request_timeout),
        request: config.request_timeout,
    };
    let notice = Box::new(|m: &str| eprintln!("destination-kinesis: {m}"));
    Ok(Session::open_with(config, timeouts, notice)?.kinesis)
}

/// Whole megabytes with one decimal, for messages.
pub fn megabytes(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
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
        let c = load_config(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!((c.max_in_flight, c.shard_count), (3, 7));
        let flags = Overrides {
            endpoint: Some("http://localhost:4566/".into()),
            region: Some("us-west-2".into()),
            max_in_flight: Some(4),
            shards: Some(1),
        };
        let c = load_config(Some(&file), &flags).unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("http://localhost:4566"));
        assert_eq!(c.region.as_deref(), Some("us-west-2"));
        assert_eq!((c.max_in_flight, c.shard_count), (4, 1));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        let bad = |flags: Overrides, expected: &str| {
            let f = load_config(None, &flags).unwrap_err();
            assert_eq!(f.exit_code, crate::failure::EXIT_CONFIG);
            assert!(f.message.contains(expected), "{}", f.message);
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
                max_in_flight: Some(0),
                ..Overrides::default()
            },
            "--max-in-flight",
        );
        bad(
            Overrides {
                shards: Some(0),
                ..Overrides::default()
            },
            "--shards",
        );
        let f = load_config(
            Some(Path::new("/nonexistent/c.json")),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(f.message.contains("cannot read config file"));
        assert!(check_stream("ok-name_1.x").is_ok());
        assert!(check_stream("bad name").is_err());
    }
}
