//! The STS Query API as the role sources speak it: where STS is, form-encoded
//! requests, and the XML answers (credentials, or an error code and message).

use super::{parse_expiry, Context, Credentials, CredentialsError, Issued};
use crate::aws::environment::Env;
use crate::aws::region::{default_endpoint, env_endpoint};
use crate::aws::secret::Secret;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::time::Duration;

/// Connection set-up allowed for an STS call.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole STS call.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The API version every call names.
pub const VERSION: &str = "2011-06-15";

/// Form encoding keeps only the unreserved characters.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The STS endpoint: the config's `stsEndpoint`, then `AWS_ENDPOINT_URL_STS`,
/// `AWS_ENDPOINT_URL`, then the region's.
pub fn endpoint(env: Env, cx: &Context) -> Result<String, CredentialsError> {
    if let Some(url) = cx.sts_endpoint {
        return Ok(url.to_string());
    }
    Ok(env_endpoint(env, "AWS_ENDPOINT_URL_STS")?
        .unwrap_or_else(|| default_endpoint("sts", cx.region)))
}

/// A form body (`application/x-www-form-urlencoded`) of `pairs`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, FORM)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `Code` and `Message` of an STS error answer (empty when absent).
pub fn error_of(xml: &str) -> (String, String) {
    (
        xml_text(xml, "Code").unwrap_or_default(),
        xml_text(xml, "Message").unwrap_or_default(),
    )
}

/// Whether an STS refusal may pass if asked again: 5xx, 429 and throttling,
/// by the same rule as every other AWS answer.
pub fn is_transient(status: u16, code: &str) -> bool {
    crate::aws::retry::is_retryable_status(status) || crate::aws::retry::is_retryable_code(code)
}

/// The error for an STS refusal: one that may pass if asked again, or one
/// that needs a change of set-up.
pub fn refusal(status: u16, code: &str, text: String) -> CredentialsError {
    if is_transient(status, code) {
        CredentialsError::unreachable(text)
    } else {
        CredentialsError::new(text)
    }
}

/// Reads the `<Credentials>` of an AssumeRole* answer, naming `source` in them.
pub fn parse_credentials(xml: &str, source: &'static str) -> Result<Issued, CredentialsError> {
    let creds = xml_text(xml, "Credentials")
        .ok_or_else(|| CredentialsError::new("the STS answer has no <Credentials>"))?;
    let field = |tag: &str| {
        xml_text(&creds, tag)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| CredentialsError::new(format!("the STS answer lacks <{tag}>")))
    };
    let expiration = field("Expiration")?;
    Ok(Issued {
        credentials: Credentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: Secret::new(field("SecretAccessKey")?),
            session_token: Some(Secret::new(field("SessionToken")?)),
            source,
        },
        expires: Some(parse_expiry(&expiration).ok_or_else(|| {
            CredentialsError::new(format!(
                "the STS answer's Expiration `{expiration}` is not an ISO 8601 time"
            ))
        })?),
    })
}

/// The text inside the first `<tag>` element (attributes allowed), entities decoded.
/// Enough for STS answers, which are flat and never use CDATA.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}");
    let mut from = 0;
    let start = loop {
        let at = from + xml[from..].find(&open)?;
        let after = &xml[at + open.len()..];
        match after.chars().next() {
            Some('>') => break at + open.len() + 1,
            Some(c) if c.is_whitespace() => break at + open.len() + after.find('>')? + 1,
            _ => from = at + open.len(),
        }
    };
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(decode_entities(xml[start..end].trim()))
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';') else { break };
        let decoded = match &rest[1..semi] {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            n if n.starts_with("#x") => u32::from_str_radix(&n[2..], 16)
                .ok()
                .and_then(char::from_u32),
            n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::credentials::profile::Profiles;
    use crate::aws::credentials::tests::env_of;
    use crate::aws::network::Network;

    const ANSWER: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken>
    <Credentials>
      <SessionToken>tok&amp;en</SessionToken>
      <SecretAccessKey>se/cr+et</SecretAccessKey>
      <Expiration>2030-01-01T00:00:00Z</Expiration>
      <AccessKeyId>ASIAWEB</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;

    #[test]
    fn reads_sts_answers() {
        let issued = parse_credentials(ANSWER, "web identity").unwrap();
        assert_eq!(issued.credentials.access_key_id, "ASIAWEB");
        assert_eq!(issued.credentials.secret_access_key.expose(), "se/cr+et");
        assert_eq!(
            issued
                .credentials
                .session_token
                .as_ref()
                .map(Secret::expose),
            Some("tok&en")
        );
        assert!(issued.expires.is_some());
        assert!(parse_credentials("<Other/>", "t").is_err());
        let missing = ANSWER.replace("<AccessKeyId>ASIAWEB</AccessKeyId>", "");
        assert!(parse_credentials(&missing, "t")
            .unwrap_err()
            .message
            .contains("AccessKeyId"));
        let error = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not &lt;allowed&gt;</Message></Error></ErrorResponse>";
        assert_eq!(
            error_of(error),
            ("AccessDenied".to_string(), "not <allowed>".to_string())
        );
        assert_eq!(error_of("<html/>"), (String::new(), String::new()));
        assert!(is_transient(503, "") && is_transient(400, "Throttling"));
        assert!(!is_transient(403, "AccessDenied"));
    }

    #[test]
    fn xml_and_form_helpers() {
        assert_eq!(xml_text("<a x=\"1\">v</a>", "a").as_deref(), Some("v"));
        assert_eq!(
            xml_text("<ab>no</ab><a>yes</a>", "a").as_deref(),
            Some("yes")
        );
        assert_eq!(xml_text("<a>unclosed", "a"), None);
        assert_eq!(
            decode_entities("&lt;&#65;&#x42;&unknown;&"),
            "<AB&unknown;&"
        );
        assert_eq!(
            form(&[("RoleArn", "arn:aws:iam::1:role/x y"), ("A", "b~c")]),
            "RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx%20y&A=b~c"
        );
    }

    #[test]
    fn endpoint_order() {
        let network = Network::default();
        let profiles = Profiles::default();
        let cx = |sts_endpoint| Context {
            region: "eu-west-1",
            network: &network,
            profiles: &profiles,
            sts_endpoint,
        };
        let env = env_of(&[
            ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1/"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:2"),
        ]);
        assert_eq!(
            endpoint(&env, &cx(Some("http://127.0.0.1:3"))).unwrap(),
            "http://127.0.0.1:3"
        );
        assert_eq!(endpoint(&env, &cx(None)).unwrap(), "http://127.0.0.1:1");
        let general = env_of(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:2")]);
        assert_eq!(endpoint(&general, &cx(None)).unwrap(), "http://127.0.0.1:2");
        assert_eq!(
            endpoint(&env_of(&[]), &cx(None)).unwrap(),
            "https://sts.eu-west-1.amazonaws.com"
        );
        let bad = env_of(&[("AWS_ENDPOINT_URL_STS", "ftp://x")]);
        assert!(endpoint(&bad, &cx(None))
            .unwrap_err()
            .message
            .contains("AWS_ENDPOINT_URL_STS"));
    }
}
