//! ECS (and EKS Pod Identity) container credentials: a GET to
//! `http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, or to
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI` with an optional authorization token.

use super::remote::{get, parse_document};
use super::{CredentialsError, Found, Setup, Source};
use crate::aws::environment::Env;
use crate::aws::network::{refuse_user_info, shown_url, Network};
use std::time::Duration;

/// The ECS agent's credentials host.
pub const ECS_HOST: &str = "http://169.254.170.2";

const TIMEOUT: Duration = Duration::from_secs(2);

/// Credentials from the container credentials endpoint.
pub struct Container(Setup<Endpoint>);

/// Where to ask and with which token.
pub struct Endpoint {
    url: String,
    token: Token,
    agent: ureq::Agent,
}

/// Where the `Authorization` header's value comes from.
pub enum Token {
    /// No header.
    None,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, read on each fetch (it is rotated).
    File(String),
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
    Value(String),
}

impl Container {
    /// Set up from the `AWS_CONTAINER_*` variables.
    pub fn from_env(env: Env, network: &Network) -> Container {
        let url = match (
            env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
            env("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        ) {
            (Some(relative), _) => format!("{ECS_HOST}{}", relative.trim()),
            (None, Some(full)) => match check_full_uri(full.trim()) {
                Ok(()) => full.trim().to_string(),
                Err(why) => return Container(Setup::Broken(why)),
            },
            (None, None) => {
                return Container(Setup::Off(
                    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI not set".into(),
                ))
            }
        };
        let token = match (
            env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
            env("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        ) {
            (Some(file), _) => Token::File(file),
            (None, Some(value)) => Token::Value(value),
            (None, None) => Token::None,
        };
        Container(Setup::Ready(Endpoint {
            agent: network.agent(&url, TIMEOUT, TIMEOUT),
            url,
            token,
        }))
    }
}

/// The AWS SDKs accept a full URI over plain HTTP only on the loopback or the
/// ECS/EKS link-local hosts: anything else could leak the token.
/// A user name or password in it is refused.
fn check_full_uri(url: &str) -> Result<(), String> {
    refuse_user_info(url)
        .map_err(|problem| format!("AWS_CONTAINER_CREDENTIALS_FULL_URI {problem}"))?;
    let shown = shown_url(url);
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|e| format!("AWS_CONTAINER_CREDENTIALS_FULL_URI `{shown}` is not a URL: {e}"))?;
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let allowed = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => {
            host == "localhost"
                || host.parse::<std::net::IpAddr>().is_ok_and(|ip| {
                    ip.is_loopback()
                        || ip.to_string() == "169.254.170.2"
                        || ip.to_string() == "169.254.170.23"
                        || ip.to_string() == "fd00:ec2::23"
                })
        }
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI `{shown}` must be https, or http to a loopback or ECS/EKS address"
        ))
    }
}

impl Source for Container {
    fn name(&self) -> &'static str {
        "ECS container endpoint"
    }

    fn fetch(&self) -> Result<Found, CredentialsError> {
        let Endpoint { url, token, agent } = match self.0.ready() {
            Ok(endpoint) => endpoint,
            Err(answer) => return answer,
        };
        let value = match token {
            Token::None => None,
            Token::Value(v) => Some(v.trim().to_string()),
            Token::File(file) => Some(
                std::fs::read_to_string(file)
                    .map_err(|e| {
                        CredentialsError::new(format!(
                            "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {file}: {e}"
                        ))
                    })?
                    .trim()
                    .to_string(),
            ),
        };
        if value.as_deref().is_some_and(|v| v.contains(['\r', '\n'])) {
            return Err(CredentialsError::new(
                "the container authorization token holds a line break",
            ));
        }
        let headers: Vec<(&str, &str)> = value
            .as_deref()
            .map(|v| ("authorization", v))
            .into_iter()
            .collect();
        let answer = get(agent, url, &headers)?;
        if answer.status != 200 {
            // Not the answer's body: it may echo the token.
            return Err(CredentialsError::for_status(
                answer.status,
                format!(
                    "{} answered HTTP {} ({})",
                    shown_url(url),
                    answer.status,
                    refusal_reason(answer.status)
                ),
            ));
        }
        parse_document(&answer.body, "ECS container endpoint").map(Found::Yes)
    }
}

/// What a refusal from the container endpoint most likely means.
fn refusal_reason(status: u16) -> &'static str {
    match status {
        401 | 403 => "the authorization token is missing or refused",
        404 => "no credentials at this URI",
        429 => "too many requests",
        500.. => "the endpoint failed",
        _ => "the request was refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::credentials::tests::env_of;

    #[test]
    fn full_uri_rules() {
        assert!(check_full_uri("http://127.0.0.1:51679/creds").is_ok());
        assert!(check_full_uri("http://localhost/creds").is_ok());
        assert!(check_full_uri("http://169.254.170.23/v1/credentials").is_ok());
        assert!(check_full_uri("https://creds.example/x").is_ok());
        assert!(check_full_uri("http://creds.example/x").is_err());
        assert!(check_full_uri("ftp://127.0.0.1/x").is_err());
        let e = check_full_uri("https://user:s3cret@creds.example/x").unwrap_err();
        assert!(
            e.contains("must not hold a user name or password") && !e.contains("s3cret"),
            "{e}"
        );
        let e = check_full_uri("http://creds.example/x?token=s3cret").unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn relative_uri_goes_to_the_ecs_host() {
        let env = env_of(&[(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/abc",
        )]);
        match Container::from_env(&env, &Network::default()).0 {
            Setup::Ready(Endpoint { url, .. }) => {
                assert_eq!(url, "http://169.254.170.2/v2/credentials/abc")
            }
            _ => panic!("not ready"),
        }
        assert!(matches!(
            Container::from_env(&env_of(&[]), &Network::default()).0,
            Setup::Off(_)
        ));
        let bad = env_of(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://evil.example/")]);
        assert!(Container::from_env(&bad, &Network::default())
            .fetch()
            .is_err());
    }
}
