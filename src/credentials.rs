//! AWS credentials: where they come from, and a type that never prints the secret parts.

use crate::config::{Config, Secret};
use std::fmt;

/// Looks up an environment variable; tests pass their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, with empty values treated as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A set of AWS credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key ID (not secret).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// The session token of temporary credentials.
    pub session_token: Option<Secret>,
    /// Where these came from, for messages ("config", "environment", ...).
    pub source: &'static str,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// No usable credentials were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsError(pub String);

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CredentialsError {}

/// Credentials from the config's `accessKey`/`privateKey`/`sessionToken`, else
/// from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`.
pub fn resolve(config: &Config, env: Env) -> Result<Credentials, CredentialsError> {
    match (&config.access_key, &config.private_key) {
        (Some(id), Some(secret)) => {
            return Ok(Credentials {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: config.session_token.clone(),
                source: "config",
            })
        }
        (Some(_), None) => {
            return Err(CredentialsError(
                "config field `accessKey` is set but `privateKey` is missing".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(CredentialsError(
                "config field `privateKey` is set but `accessKey` is missing".into(),
            ))
        }
        (None, None) => {}
    }
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Ok(Credentials {
            access_key_id: id,
            secret_access_key: Secret::new(secret),
            session_token: env("AWS_SESSION_TOKEN").map(Secret::new),
            source: "environment",
        }),
        _ => Err(CredentialsError(
            "no AWS credentials: set `accessKey` and `privateKey` in the config, \
             or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
                .into(),
        )),
    }
}

/// The region: the config's, then `AWS_REGION`, `AWS_DEFAULT_REGION`, then `us-east-1`.
pub fn resolve_region(config: &Config, env: Env) -> String {
    config
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".to_string())
}

/// The endpoint: the config's, then `https://kinesis.<region>.amazonaws.com`.
pub fn resolve_endpoint(config: &Config, region: &str) -> String {
    let url = match &config.endpoint {
        Some(url) => url.clone(),
        None if region.starts_with("cn-") => format!("https://kinesis.{region}.amazonaws.com.cn"),
        None => format!("https://kinesis.{region}.amazonaws.com"),
    };
    url.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn config_wins_over_environment() {
        let config = Config {
            access_key: Some("CFG".into()),
            private_key: Some(Secret::new("cfgsecret")),
            ..Config::default()
        };
        let env = env_of(&[
            ("AWS_ACCESS_KEY_ID", "ENV"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
        ]);
        let c = resolve(&config, &env).unwrap();
        assert_eq!(c.access_key_id, "CFG");
        assert_eq!(c.source, "config");
    }

    #[test]
    fn environment_when_config_empty() {
        let env = env_of(&[
            ("AWS_ACCESS_KEY_ID", "ENV"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
            ("AWS_SESSION_TOKEN", "tok"),
        ]);
        let c = resolve(&Config::default(), &env).unwrap();
        assert_eq!(c.access_key_id, "ENV");
        assert_eq!(c.session_token.as_ref().map(Secret::expose), Some("tok"));
        assert!(!format!("{c:?}").contains("envsecret"));
    }

    #[test]
    fn missing_credentials_explained() {
        let e = resolve(&Config::default(), &env_of(&[])).unwrap_err();
        assert!(e.0.contains("AWS_ACCESS_KEY_ID"));
        let half = Config {
            access_key: Some("A".into()),
            ..Config::default()
        };
        assert!(resolve(&half, &env_of(&[]))
            .unwrap_err()
            .0
            .contains("privateKey"));
    }

    #[test]
    fn region_and_endpoint_fallbacks() {
        let env = env_of(&[("AWS_DEFAULT_REGION", "eu-west-1")]);
        assert_eq!(resolve_region(&Config::default(), &env), "eu-west-1");
        let env = env_of(&[
            ("AWS_REGION", "us-west-2"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ]);
        assert_eq!(resolve_region(&Config::default(), &env), "us-west-2");
        assert_eq!(
            resolve_region(&Config::default(), &env_of(&[])),
            "us-east-1"
        );
        assert_eq!(
            resolve_endpoint(&Config::default(), "eu-west-1"),
            "https://kinesis.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            resolve_endpoint(&Config::default(), "cn-north-1"),
            "https://kinesis.cn-north-1.amazonaws.com.cn"
        );
        let c = Config {
            endpoint: Some("http://localhost:4566/".into()),
            ..Config::default()
        };
        assert_eq!(resolve_endpoint(&c, "x"), "http://localhost:4566");
    }
}
