//! AWS credentials, region and endpoint, found where the AWS CLI looks for them,
//! in its order: the config's keys, the environment, the profile's role, web
//! identity (EKS), the shared files, the ECS container endpoint, EC2 instance
//! metadata; and the config's `roleArn` assumed with what was found.

mod assume_role;
mod container;
mod imds;
mod process;
pub(crate) mod profile;
mod profile_chain;
mod provider;
mod remote;
mod sts;
mod web_identity;

pub use provider::{Fixed as FixedCredentials, ProvideCredentials, Refreshing, REFRESH_WINDOW};

use crate::aws::access::Access;
use crate::aws::environment::Env;
use crate::aws::network::Network;
use crate::aws::secret::Secret;
use crate::failure::{Failure, Kind};
use profile::Profiles;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

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

impl Credentials {
    /// Refuses a key, secret or token holding anything but printable ASCII
    /// (`!` to `~`): such a value cannot go into a request header, so every
    /// request would fail. `names` say where the key, the secret and the token
    /// were given; the message names the character and its position, never the value.
    pub fn check_text(&self, names: [&str; 3]) -> Result<(), CredentialsError> {
        let values = [
            Some(self.access_key_id.as_str()),
            Some(self.secret_access_key.expose()),
            self.session_token.as_ref().map(Secret::expose),
        ];
        for (name, value) in names.iter().zip(values) {
            let stray =
                value.and_then(|v| v.chars().enumerate().find(|(_, c)| !matches!(c, '!'..='~')));
            if let Some((at, c)) = stray {
                return Err(CredentialsError::new(format!(
                    "{name} has {} at character {}: access keys, secret keys and session tokens \
                     hold only printable ASCII characters, no spaces (was it copied with an invisible character?)",
                    character_name(c),
                    at + 1
                )));
            }
        }
        Ok(())
    }
}

/// `U+200B ZERO WIDTH SPACE`: a character's code point, and its Unicode name
/// for those that come along when a key is copied from a web page or a document.
fn character_name(c: char) -> String {
    let name = match c {
        ' ' => "SPACE",
        '\t' => "CHARACTER TABULATION",
        '\n' => "LINE FEED",
        '\r' => "CARRIAGE RETURN",
        '\u{7F}' => "DELETE",
        '\u{A0}' => "NO-BREAK SPACE",
        '\u{AD}' => "SOFT HYPHEN",
        '\u{2007}' => "FIGURE SPACE",
        '\u{2009}' => "THIN SPACE",
        '\u{200B}' => "ZERO WIDTH SPACE",
        '\u{200C}' => "ZERO WIDTH NON-JOINER",
        '\u{200D}' => "ZERO WIDTH JOINER",
        '\u{2010}' => "HYPHEN",
        '\u{2011}' => "NON-BREAKING HYPHEN",
        '\u{2013}' => "EN DASH",
        '\u{2014}' => "EM DASH",
        '\u{2018}' => "LEFT SINGLE QUOTATION MARK",
        '\u{2019}' => "RIGHT SINGLE QUOTATION MARK",
        '\u{201C}' => "LEFT DOUBLE QUOTATION MARK",
        '\u{201D}' => "RIGHT DOUBLE QUOTATION MARK",
        '\u{2026}' => "HORIZONTAL ELLIPSIS",
        '\u{202F}' => "NARROW NO-BREAK SPACE",
        '\u{2060}' => "WORD JOINER",
        '\u{FEFF}' => "ZERO WIDTH NO-BREAK SPACE",
        _ => "",
    };
    let code = format!("U+{:04X}", u32::from(c));
    if name.is_empty() {
        code
    } else {
        format!("{code} {name}")
    }
}

/// Credentials as a source issued them, with when they stop working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The credentials.
    pub credentials: Credentials,
    /// When temporary credentials expire; None for long-term keys.
    pub expires: Option<SystemTime>,
}

impl Issued {
    /// Long-term credentials that never expire.
    pub fn lasting(credentials: Credentials) -> Issued {
        Issued {
            credentials,
            expires: None,
        }
    }
}

/// No usable credentials were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsError {
    /// What went wrong, for the person at the terminal.
    pub message: String,
    /// Whether the source may answer if asked again (no answer, a 5xx): the
    /// sync then fails as a transient error, not a configuration error.
    pub transient: bool,
}

impl CredentialsError {
    /// A problem with how the source is set up, or a refusal.
    pub fn new(message: impl Into<String>) -> CredentialsError {
        CredentialsError {
            message: message.into(),
            transient: false,
        }
    }

    /// A source that did not answer, or failed on its side.
    pub fn unreachable(message: impl Into<String>) -> CredentialsError {
        CredentialsError {
            message: message.into(),
            transient: true,
        }
    }

    /// `unreachable` for HTTP 5xx (and 429), else `new`.
    pub fn for_status(status: u16, message: impl Into<String>) -> CredentialsError {
        if crate::aws::retry::is_retryable_status(status) {
            CredentialsError::unreachable(message)
        } else {
            CredentialsError::new(message)
        }
    }
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CredentialsError {}

/// What one source of the chain had to offer.
#[derive(Debug)]
pub enum Found {
    /// Credentials.
    Yes(Issued),
    /// This source is not set up here; says why, for the message when nothing is found.
    No(String),
}

/// One place credentials may come from; asked again whenever they need refreshing.
pub trait Source: Send + Sync {
    /// Its name in messages, e.g. "ECS container endpoint".
    fn name(&self) -> &'static str;
    /// Fresh credentials; `Found::No` when not set up here, Err when set up but failing.
    fn fetch(&self) -> Result<Found, CredentialsError>;
    /// Where its credentials come from, for `check`: "credentials from the environment".
    fn describe(&self) -> String {
        format!("credentials from the {}", self.name())
    }
}

/// Whether a source is set up here, read once from the environment.
pub enum Setup<T> {
    /// Not set up; says why, for the message when nothing is found.
    Off(String),
    /// Set up wrongly, and how.
    Broken(String),
    /// Set up.
    Ready(T),
}

impl<T> Setup<T> {
    /// The set-up, or what the source's `fetch` answers instead.
    pub fn ready(&self) -> Result<&T, Result<Found, CredentialsError>> {
        match self {
            Setup::Off(why) => Err(Ok(Found::No(why.clone()))),
            Setup::Broken(why) => Err(Err(CredentialsError::new(why.clone()))),
            Setup::Ready(t) => Ok(t),
        }
    }
}

/// What the sources need besides the environment.
pub struct Context<'a> {
    /// The session's region (for the STS endpoint).
    pub region: &'a str,
    /// Trusted CAs and proxies.
    pub network: &'a Network,
    /// The shared config and credentials files.
    pub profiles: &'a Profiles,
    /// The config's `stsEndpoint`, when set.
    pub sts_endpoint: Option<&'a str>,
}

/// Walks the chain and returns a provider that keeps the first source that
/// answered, refreshing its credentials before they expire; with `roleArn`,
/// one that assumes that role with them.
pub fn resolve(
    access: &Access,
    env: Env,
    cx: &Context,
) -> Result<Arc<Refreshing>, CredentialsError> {
    let found = walk(chain(access, env, cx)?)?;
    let Some(role) = &access.assume_role else {
        return Ok(found);
    };
    let source =
        assume_role::AssumeRole::new(role.clone(), assume_role::Origin::Config, found, env, cx)?;
    match source.fetch()? {
        Found::Yes(issued) => Ok(Arc::new(Refreshing::new(Box::new(source), issued))),
        Found::No(why) => Err(CredentialsError::new(why)),
    }
}

/// The first source that answers, kept; an error naming the sources tried.
fn walk(sources: Vec<Box<dyn Source>>) -> Result<Arc<Refreshing>, CredentialsError> {
    let mut tried = Vec::new();
    for source in sources {
        match source.fetch() {
            Ok(Found::Yes(issued)) => return Ok(Arc::new(Refreshing::new(source, issued))),
            Ok(Found::No(why)) => tried.push(format!("{} ({why})", source.name())),
            Err(e) => {
                let before = if tried.is_empty() {
                    String::new()
                } else {
                    format!(" (tried before it: {})", tried.join("; "))
                };
                return Err(CredentialsError {
                    message: format!(
                        "AWS credentials from the {} failed: {e}{before}",
                        source.name()
                    ),
                    transient: e.transient,
                });
            }
        }
    }
    Err(CredentialsError::new(format!(
        "no AWS credentials found; tried: {}. Set `accessKey` and `privateKey` in the config, \
         or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an AWS profile",
        tried.join("; ")
    )))
}

/// The sources in the AWS CLI's order.
fn chain(
    access: &Access,
    env: Env,
    cx: &Context,
) -> Result<Vec<Box<dyn Source>>, CredentialsError> {
    let environment: Box<dyn Source> = Box::new(GivenKeys::from_env(env)?);
    let role = profile_chain::selected_role(env, cx);
    // A profile role based on the environment's keys comes first, or they
    // would be used as they are (as `aws --profile NAME` does it).
    let (first, second) = if profile_chain::role_uses_environment(cx) {
        (role, environment)
    } else {
        (environment, role)
    };
    Ok(vec![
        Box::new(GivenKeys::from_access(access)?),
        first,
        second,
        Box::new(web_identity::WebIdentity::from_env(env, cx)),
        profile_chain::selected_keys(env, cx),
        Box::new(container::Container::from_env(env, cx.network)),
        Box::new(imds::InstanceMetadata::from_env(env, cx.network)),
    ])
}

/// Keys given outright: the config's, the environment's or a profile's.
struct GivenKeys {
    name: &'static str,
    found: Option<Credentials>,
    why_not: &'static str,
    /// What `check` says of them, when not "credentials from the <name>".
    described: Option<String>,
}

impl GivenKeys {
    fn from_access(access: &Access) -> Result<GivenKeys, CredentialsError> {
        GivenKeys::pair(
            "config",
            [
                "config field `accessKey`",
                "config field `privateKey`",
                "config field `sessionToken`",
            ],
            (access.access_key.clone(), access.secret_key.clone()),
            access.session_token.clone(),
            "`accessKey`/`privateKey` not set",
        )
    }

    fn from_env(env: Env) -> Result<GivenKeys, CredentialsError> {
        // Surrounding whitespace is dropped, as from the config's fields.
        let var = |name: &str| env(name).map(|v| v.trim().to_string());
        GivenKeys::pair(
            "environment",
            [
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
            ],
            (
                var("AWS_ACCESS_KEY_ID"),
                var("AWS_SECRET_ACCESS_KEY").map(Secret::new),
            ),
            var("AWS_SESSION_TOKEN").map(Secret::new),
            "AWS_ACCESS_KEY_ID not set",
        )
    }

    /// Whether both halves were given.
    fn is_set(&self) -> bool {
        self.found.is_some()
    }

    /// The same keys, described for `check` as `text`.
    fn described(self, text: String) -> GivenKeys {
        GivenKeys {
            described: Some(text),
            ..self
        }
    }

    /// Keys found when both halves are given, an error naming the missing
    /// half when only one is, or a stray character (`names`: how the user
    /// knows the key, the secret and the token).
    fn pair(
        source: &'static str,
        names: [&str; 3],
        (id, secret): (Option<String>, Option<Secret>),
        session_token: Option<Secret>,
        why_not: &'static str,
    ) -> Result<GivenKeys, CredentialsError> {
        let missing = |set: &str, unset: &str| {
            Err(CredentialsError::new(format!(
                "{set} is set but {unset} is not"
            )))
        };
        let found = match (id, secret) {
            (Some(access_key_id), Some(secret_access_key)) => {
                let found = Credentials {
                    access_key_id,
                    secret_access_key,
                    session_token,
                    source,
                };
                found.check_text(names)?;
                Some(found)
            }
            (Some(_), None) => return missing(names[0], names[1]),
            (None, Some(_)) => return missing(names[1], names[0]),
            (None, None) => None,
        };
        Ok(GivenKeys {
            name: source,
            found,
            why_not,
            described: None,
        })
    }
}

impl Source for GivenKeys {
    fn name(&self) -> &'static str {
        self.name
    }

    fn describe(&self) -> String {
        self.described
            .clone()
            .unwrap_or_else(|| format!("credentials from the {}", self.name))
    }

    fn fetch(&self) -> Result<Found, CredentialsError> {
        Ok(match &self.found {
            Some(c) => Found::Yes(Issued::lasting(c.clone())),
            None => Found::No(self.why_not.into()),
        })
    }
}

/// The region: the config's, then `AWS_REGION`, `AWS_DEFAULT_REGION`, the
/// profile's `region`; when none is set, the region of the stream ARN the
/// session is for (`stream`), else `us-east-1`. A region set that is not the
/// ARN's is refused, naming both: requests would go to the wrong region.
/// A name that is not a region's (`us east-1`, `eu-west-1/x`) is refused here:
/// Reads an ISO 8601 expiry such as `2026-11-25T23:00:00Z`.
pub fn parse_expiry(text: &str) -> Option<SystemTime> {
    use aws_smithy_types::date_time::{DateTime, Format};
    let parsed = DateTime::from_str(text.trim(), Format::DateTimeWithOffset).ok()?;
    SystemTime::try_from(parsed).ok()
}

impl From<CredentialsError> for Failure {
    fn from(e: CredentialsError) -> Failure {
        let kind = if e.transient {
            Kind::Transient
        } else {
            Kind::Config
        };
        Failure::new(kind, e.message)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Runs `f` with a context for `profiles` in us-east-1, STS at `sts_endpoint`.
    pub(crate) fn with_context<T>(
        profiles: &Profiles,
        sts_endpoint: Option<&str>,
        f: impl FnOnce(&Context) -> T,
    ) -> T {
        let network = Network::default();
        f(&Context {
            region: "us-east-1",
            network: &network,
            profiles,
            sts_endpoint,
        })
    }

    pub(crate) fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn resolve_with(
        access: &Access,
        pairs: &[(&str, &str)],
    ) -> Result<Credentials, CredentialsError> {
        let mut all = vec![
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/nonexistent/config"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
        ];
        all.extend_from_slice(pairs);
        let env = env_of(&all);
        let profiles = Profiles::load(&env);
        with_context(&profiles, None, |cx| {
            resolve(access, &env, cx).map(|p| p.current().expect("resolved credentials"))
        })
    }

    #[test]
    fn config_wins_over_environment() {
        let config = Access {
            access_key: Some("CFG".into()),
            secret_key: Some(Secret::new("cfgsecret")),
            ..Access::default()
        };
        let c = resolve_with(
            &config,
            &[
                ("AWS_ACCESS_KEY_ID", "ENV"),
                ("AWS_SECRET_ACCESS_KEY", "envsecret"),
                // A stale AWS_PROFILE does not matter when an earlier source answers.
                ("AWS_PROFILE", "missing"),
            ],
        )
        .unwrap();
        assert_eq!(c.access_key_id, "CFG");
        assert_eq!(c.source, "config");
    }

    #[test]
    fn environment_when_config_empty() {
        let c = resolve_with(
            &Access::default(),
            &[
                ("AWS_ACCESS_KEY_ID", "ENV"),
                ("AWS_SECRET_ACCESS_KEY", "envsecret"),
                ("AWS_SESSION_TOKEN", "tok"),
            ],
        )
        .unwrap();
        assert_eq!(c.access_key_id, "ENV");
        assert_eq!(c.session_token.as_ref().map(Secret::expose), Some("tok"));
        assert!(!format!("{c:?}").contains("envsecret"));
    }

    #[test]
    fn missing_credentials_say_what_was_tried() {
        let e = resolve_with(&Access::default(), &[]).unwrap_err();
        for source in [
            "config",
            "environment",
            "web identity",
            "shared files",
            "ECS container",
            "EC2 instance metadata",
        ] {
            assert!(e.message.contains(source), "{source} missing from: {e}");
        }
        let half = Access {
            access_key: Some("A".into()),
            ..Access::default()
        };
        assert!(resolve_with(&half, &[])
            .unwrap_err()
            .message
            .contains("privateKey"));
        let e = resolve_with(&Access::default(), &[("AWS_ACCESS_KEY_ID", "A")]).unwrap_err();
        assert!(e.message.contains("AWS_SECRET_ACCESS_KEY"), "{e}");
    }

    #[test]
    fn keys_hold_printable_ascii_only() {
        let keys = |id: &str, secret: &str, token: Option<&str>| Credentials {
            access_key_id: id.into(),
            secret_access_key: Secret::new(secret),
            session_token: token.map(Secret::new),
            source: "test",
        };
        let names = ["the key", "the secret", "the token"];
        let printable: String = ('!'..='~').collect();
        assert!(keys(&printable, &printable, Some(&printable))
            .check_text(names)
            .is_ok());
        for (c, known) in [
            ('\u{200B}', "U+200B ZERO WIDTH SPACE"),
            ('\u{A0}', "U+00A0 NO-BREAK SPACE"),
            (' ', "U+0020 SPACE"),
            ('\t', "U+0009 CHARACTER TABULATION"),
            ('é', "U+00E9"),
            ('\u{1F511}', "U+1F511"),
        ] {
            let secret = format!("wJalr{c}XUtn");
            let e = keys("AKIA", &secret, None).check_text(names).unwrap_err();
            assert!(
                e.message
                    .starts_with(&format!("the secret has {known} at character 6:")),
                "{e}"
            );
            assert!(!e.message.contains("wJalr"), "{e}");
        }
        let e = keys("AKIA", "s", Some("tok\u{FEFF}"))
            .check_text(names)
            .unwrap_err();
        assert!(e
            .message
            .starts_with("the token has U+FEFF ZERO WIDTH NO-BREAK SPACE at character 4"));
        let e = resolve_with(
            &Access::default(),
            &[
                ("AWS_ACCESS_KEY_ID", " AKIA\u{200B}X \n"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
            ],
        )
        .unwrap_err();
        assert!(
            e.message
                .starts_with("AWS_ACCESS_KEY_ID has U+200B ZERO WIDTH SPACE at character 5"),
            "{e}"
        );
    }

    #[test]
    fn expiry_times() {
        let t = parse_expiry("2026-11-25T21:54:12Z").unwrap();
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 1_795_643_652);
        assert!(parse_expiry("2026-11-25T21:54:12+00:00").is_some());
        assert!(parse_expiry("soon").is_none());
    }
}
