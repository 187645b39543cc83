//! Web identity (EKS IAM roles for service accounts): the token in
//! `AWS_WEB_IDENTITY_TOKEN_FILE` is exchanged for role credentials with STS
//! AssumeRoleWithWebIdentity, an unsigned form POST.

use super::remote::Call;
use super::{
    default_endpoint, env_endpoint, parse_expiry, Context, Credentials, CredentialsError, Found,
    Issued, Setup, Source,
};
use crate::config::Secret;
use crate::environment::Env;
use crate::network::shown_url;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::time::{Duration, SystemTime};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Form encoding keeps only the unreserved characters.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Role credentials for a web identity token.
pub struct WebIdentity(Setup<StsCall>);

/// What the STS call needs.
pub struct StsCall {
    token_file: String,
    role_arn: String,
    session_name: String,
    sts: String,
    agent: ureq::Agent,
}

impl WebIdentity {
    /// Set up from `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`, `AWS_ROLE_SESSION_NAME`
    /// (or the profile's `web_identity_token_file`, `role_arn`, `role_session_name`).
    pub fn from_env(env: Env, cx: &Context) -> WebIdentity {
        let from_profile = |key: &str| cx.profiles.get(key).map(str::to_string);
        let (token_file, role_arn, session_name) = match env("AWS_WEB_IDENTITY_TOKEN_FILE") {
            Some(file) => (
                Some(file),
                env("AWS_ROLE_ARN"),
                env("AWS_ROLE_SESSION_NAME"),
            ),
            None => (
                from_profile("web_identity_token_file"),
                from_profile("role_arn"),
                from_profile("role_session_name"),
            ),
        };
        WebIdentity(match (token_file, role_arn) {
            (None, _) => Setup::Off("AWS_WEB_IDENTITY_TOKEN_FILE not set".into()),
            (Some(_), None) => {
                Setup::Broken("a web identity token file is set but AWS_ROLE_ARN is not".into())
            }
            (Some(token_file), Some(role_arn)) => match sts_endpoint(env, cx.region) {
                Ok(sts) => Setup::Ready(StsCall {
                    agent: cx.network.agent(&sts, CONNECT_TIMEOUT, REQUEST_TIMEOUT),
                    token_file,
                    role_arn,
                    session_name: session_name.unwrap_or_else(default_session_name),
                    sts,
                }),
                Err(why) => Setup::Broken(why),
            },
        })
    }
}

/// `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`, or the region's STS endpoint.
fn sts_endpoint(env: Env, region: &str) -> Result<String, String> {
    Ok(env_endpoint(env, "AWS_ENDPOINT_URL_STS")
        .map_err(|e| e.message)?
        .unwrap_or_else(|| default_endpoint("sts", region)))
}

fn default_session_name() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!("destination-kinesis-{secs}")
}

impl Source for WebIdentity {
    fn name(&self) -> &'static str {
        "web identity"
    }

    fn fetch(&self) -> Result<Found, CredentialsError> {
        let setup = match self.0.ready() {
            Ok(setup) => setup,
            Err(answer) => return answer,
        };
        // Read on every fetch: EKS rotates the token file.
        let token = std::fs::read_to_string(&setup.token_file).map_err(|e| {
            CredentialsError::new(format!(
                "cannot read the web identity token file {}: {e}",
                setup.token_file
            ))
        })?;
        let form = [
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", setup.role_arn.as_str()),
            ("RoleSessionName", setup.session_name.as_str()),
            ("WebIdentityToken", token.trim()),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, FORM)))
        .collect::<Vec<_>>()
        .join("&");
        let url = format!("{}/", setup.sts);
        let answer = Call {
            method: "POST",
            url: &url,
            headers: &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            body: form.as_bytes(),
        }
        .send(&setup.agent)
        .map_err(|e| {
            CredentialsError::unreachable(format!(
                "STS at {} did not answer: {e}",
                shown_url(&setup.sts)
            ))
        })?;
        if answer.status != 200 {
            let code = xml_text(&answer.body, "Code").unwrap_or_default();
            let message = xml_text(&answer.body, "Message").unwrap_or_default();
            return Err(CredentialsError::for_status(
                answer.status,
                format!(
                    "STS AssumeRoleWithWebIdentity for {} was refused: HTTP {} {code}: {message}",
                    setup.role_arn, answer.status
                ),
            ));
        }
        parse_sts_credentials(&answer.body).map(Found::Yes)
    }
}

/// Reads the `<Credentials>` of an AssumeRole* answer.
fn parse_sts_credentials(xml: &str) -> Result<Issued, CredentialsError> {
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
            source: "web identity",
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
fn form_value(v: &str) -> String {
    utf8_percent_encode(v, FORM).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let issued = parse_sts_credentials(ANSWER).unwrap();
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
        assert!(parse_sts_credentials("<Other/>").is_err());
        let missing = ANSWER.replace("<AccessKeyId>ASIAWEB</AccessKeyId>", "");
        assert!(parse_sts_credentials(&missing)
            .unwrap_err()
            .message
            .contains("AccessKeyId"));
    }

    #[test]
    fn xml_helpers() {
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
            form_value("arn:aws:iam::1:role/x y"),
            "arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx%20y"
        );
    }
}
