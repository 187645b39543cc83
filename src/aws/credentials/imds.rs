//! EC2 instance metadata, IMDSv2: PUT a session token, GET the role name, GET
//! the role's credentials. `AWS_EC2_METADATA_DISABLED=true` turns it off;
//! `AWS_EC2_METADATA_SERVICE_ENDPOINT` moves it.

use super::remote::{get, parse_document, Call};
use super::{CredentialsError, Found, Setup, Source};
use crate::aws::environment::Env;
use crate::aws::network::{refuse_user_info, shown_url, Network};
use std::time::Duration;

/// The instance metadata service on EC2.
pub const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
/// Its IPv6 address (`AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6`).
pub const DEFAULT_ENDPOINT_V6: &str = "http://[fd00:ec2::254]";

/// Off EC2 nothing answers: give up quickly.
const TIMEOUT: Duration = Duration::from_secs(1);
const ROLE_PATH: &str = "/latest/meta-data/iam/security-credentials/";

/// Credentials of the instance's IAM role.
pub struct InstanceMetadata(Setup<Service>);

/// The metadata service to ask.
pub struct Service {
    endpoint: String,
    agent: ureq::Agent,
}

impl InstanceMetadata {
    /// Set up from `AWS_EC2_METADATA_*`.
    pub fn from_env(env: Env, network: &Network) -> InstanceMetadata {
        if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return InstanceMetadata(Setup::Off("disabled by AWS_EC2_METADATA_DISABLED".into()));
        }
        let endpoint = env("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .unwrap_or_else(|| {
                match env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") {
                    Some(mode) if mode.eq_ignore_ascii_case("ipv6") => DEFAULT_ENDPOINT_V6,
                    _ => DEFAULT_ENDPOINT,
                }
                .to_string()
            })
            .trim()
            .trim_end_matches('/')
            .to_string();
        if let Err(problem) = refuse_user_info(&endpoint) {
            return InstanceMetadata(Setup::Broken(format!(
                "AWS_EC2_METADATA_SERVICE_ENDPOINT {problem}"
            )));
        }
        InstanceMetadata(Setup::Ready(Service {
            agent: network.agent(&endpoint, TIMEOUT, TIMEOUT),
            endpoint,
        }))
    }
}

impl Source for InstanceMetadata {
    fn name(&self) -> &'static str {
        "EC2 instance metadata"
    }

    fn fetch(&self) -> Result<Found, CredentialsError> {
        let Service { endpoint, agent } = match self.0.ready() {
            Ok(service) => service,
            Err(answer) => return answer,
        };
        let token_url = format!("{endpoint}/latest/api/token");
        let token = match (Call {
            method: "PUT",
            url: &token_url,
            headers: &[("x-aws-ec2-metadata-token-ttl-seconds", "21600")],
            body: b"",
        })
        .send(agent)
        {
            // Nothing there: not on EC2, so the chain simply ends.
            Err(e) => {
                return Ok(Found::No(format!(
                    "no answer from {}: {e}",
                    shown_url(endpoint)
                )))
            }
            Ok(a) if a.status == 200 => Some(a.body.trim().to_string()),
            // IMDSv1-only endpoints refuse the token call; go on without a token, as the SDKs do.
            Ok(a) if (403..=405).contains(&a.status) => None,
            Ok(a) => {
                return Err(CredentialsError::for_status(
                    a.status,
                    format!(
                        "{} answered HTTP {} to the token request",
                        shown_url(&token_url),
                        a.status
                    ),
                ))
            }
        };
        let headers: Vec<(&str, &str)> = token
            .as_deref()
            .map(|t| ("x-aws-ec2-metadata-token", t))
            .into_iter()
            .collect();
        let read = |url: &str| -> Result<String, CredentialsError> {
            let answer = get(agent, url, &headers)?;
            match answer.status {
                200 => Ok(answer.body),
                404 => Err(CredentialsError::new(format!(
                    "{} answered 404: the instance has no IAM role attached",
                    shown_url(url)
                ))),
                s => Err(CredentialsError::for_status(
                    s,
                    format!("{} answered HTTP {s}", shown_url(url)),
                )),
            }
        };
        let roles_url = format!("{endpoint}{ROLE_PATH}");
        let roles = read(&roles_url)?;
        let role = roles
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .ok_or_else(|| CredentialsError::new("the instance has no IAM role attached"))?;
        let body = read(&format!("{roles_url}{role}"))?;
        parse_document(&body, "EC2 instance metadata").map(Found::Yes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::credentials::tests::env_of;

    fn endpoint(pairs: &[(&str, &str)]) -> Option<String> {
        match InstanceMetadata::from_env(&env_of(pairs), &Network::default()).0 {
            Setup::Ready(service) => Some(service.endpoint),
            _ => None,
        }
    }

    #[test]
    fn endpoint_settings() {
        assert_eq!(endpoint(&[("AWS_EC2_METADATA_DISABLED", "TRUE")]), None);
        assert_eq!(
            endpoint(&[(
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                "http://127.0.0.1:1234/"
            )])
            .as_deref(),
            Some("http://127.0.0.1:1234")
        );
        assert_eq!(endpoint(&[]).as_deref(), Some(DEFAULT_ENDPOINT));
        assert_eq!(
            endpoint(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6")]).as_deref(),
            Some(DEFAULT_ENDPOINT_V6)
        );
    }
}
