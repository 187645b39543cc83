//! HTTP calls of the credential sources that ask a service (STS, the container
//! endpoint, instance metadata): a short call retried once, and the JSON
//! credentials document the container endpoint and instance metadata share.

use super::{parse_expiry, Credentials, CredentialsError, Issued};
use crate::aws::network::shown_url;
use crate::aws::secret::Secret;
use serde::Deserialize;

/// Largest answer read from a credential service.
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;

/// An answer from a credential service.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

/// A request to a credential service.
pub struct Call<'a> {
    /// `GET`, `PUT` or `POST`.
    pub method: &'static str,
    /// Full URL.
    pub url: &'a str,
    /// Extra headers.
    pub headers: &'a [(&'a str, &'a str)],
    /// Body for PUT/POST.
    pub body: &'a [u8],
}

impl Call<'_> {
    /// Sends the call, once more after a transport error or a 5xx answer.
    pub fn send(&self, agent: &ureq::Agent) -> Result<Answer, String> {
        let first = self.send_once(agent);
        match &first {
            Ok(a) if a.status < 500 => first,
            _ => self.send_once(agent),
        }
    }

    fn send_once(&self, agent: &ureq::Agent) -> Result<Answer, String> {
        let mut response = match self.method {
            "GET" => {
                let mut r = agent.get(self.url);
                for (k, v) in self.headers {
                    r = r.header(*k, *v);
                }
                r.call()
            }
            method => {
                let mut r = if method == "PUT" {
                    agent.put(self.url)
                } else {
                    agent.post(self.url)
                };
                for (k, v) in self.headers {
                    r = r.header(*k, *v);
                }
                r.send(self.body)
            }
        }
        .map_err(|e| format!("{} {}: {e}", self.method, shown_url(self.url)))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(|e| {
                format!(
                    "{} {}: reading the answer: {e}",
                    self.method,
                    shown_url(self.url)
                )
            })?;
        Ok(Answer { status, body })
    }
}

/// GETs `url` (retried once), a failure to get any answer said plainly.
pub fn get(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Answer, CredentialsError> {
    Call {
        method: "GET",
        url,
        headers,
        body: b"",
    }
    .send(agent)
    .map_err(|e| CredentialsError::unreachable(format!("no answer: {e}")))
}

/// The credentials document of the container endpoint and instance metadata.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Document {
    code: Option<String>,
    message: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    token: Option<String>,
    expiration: Option<String>,
}

/// Reads a JSON credentials document (`AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration`).
pub fn parse_document(body: &str, source: &'static str) -> Result<Issued, CredentialsError> {
    let doc: Document = serde_json::from_str(body).map_err(|e| {
        CredentialsError::new(format!("the answer is not a credentials document: {e}"))
    })?;
    if let Some(code) = doc.code.as_deref().filter(|c| *c != "Success") {
        return Err(CredentialsError::new(format!(
            "the service answered {code}: {}",
            doc.message.unwrap_or_default()
        )));
    }
    let (Some(id), Some(secret)) = (doc.access_key_id, doc.secret_access_key) else {
        return Err(CredentialsError::new(
            "the answer lacks AccessKeyId or SecretAccessKey",
        ));
    };
    let expires = match doc.expiration {
        Some(text) => Some(parse_expiry(&text).ok_or_else(|| {
            CredentialsError::new(format!(
                "the answer's Expiration `{text}` is not an ISO 8601 time"
            ))
        })?),
        None => None,
    };
    Ok(Issued {
        credentials: Credentials {
            access_key_id: id,
            secret_access_key: Secret::new(secret),
            session_token: doc.token.map(Secret::new),
            source,
        },
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_documents() {
        let ok = r#"{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIA1","SecretAccessKey":"S","Token":"T","Expiration":"2030-01-01T00:00:00Z"}"#;
        let issued = parse_document(ok, "test").unwrap();
        assert_eq!(issued.credentials.access_key_id, "ASIA1");
        assert!(issued.expires.is_some());
        let e = parse_document(r#"{"Code":"Failure","Message":"no role"}"#, "t").unwrap_err();
        assert!(e.message.contains("no role"));
        assert!(parse_document(r#"{"AccessKeyId":"A"}"#, "t").is_err());
        assert!(parse_document("<html>", "t").is_err());
        let e = parse_document(
            r#"{"AccessKeyId":"A","SecretAccessKey":"S","Expiration":"tomorrow"}"#,
            "t",
        )
        .unwrap_err();
        assert!(e.message.contains("tomorrow"));
    }
}
