//! An IAM role to assume: its ARN, session name, external id and duration,
//! checked against what STS accepts before any call is made, so a typo is a
//! message naming the field rather than an STS refusal.

use std::fmt;
use std::time::SystemTime;

/// AssumeRole's DurationSeconds when none is asked for (the STS default).
pub const DEFAULT_DURATION_SECONDS: u32 = 3600;

/// A role to assume and how.
#[derive(Clone, PartialEq, Eq)]
pub struct Role {
    /// The role's ARN, `arn:aws:iam::<account>:role/<name>`.
    pub arn: String,
    /// The external id the role's trust policy asks for; never shown in messages.
    pub external_id: Option<String>,
    /// RoleSessionName, which CloudTrail shows.
    pub session_name: String,
    /// How long the issued credentials last, in seconds.
    pub duration_seconds: u32,
}

impl fmt::Debug for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Role")
            .field("arn", &self.arn)
            .field("external_id", &self.external_id.as_ref().map(|_| "***"))
            .field("session_name", &self.session_name)
            .field("duration_seconds", &self.duration_seconds)
            .finish()
    }
}

/// `destination-kinesis-<unix time>`, like the AWS CLI's `botocore-session-<time>`.
pub fn default_session_name() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!("destination-kinesis-{secs}")
}

/// A role ARN: `arn:<partition>:iam::<12 digits>:role/<path and name>`.
pub fn check_arn(arn: &str) -> Result<(), String> {
    let shape = || {
        let rest = arn.strip_prefix("arn:aws")?;
        let (partition_tail, rest) = rest.split_once(':')?;
        let partition_ok = partition_tail.is_empty()
            || (partition_tail.starts_with('-')
                && partition_tail
                    .bytes()
                    .all(|b| b == b'-' || b.is_ascii_lowercase()));
        let rest = rest.strip_prefix("iam::")?;
        let (account, resource) = rest.split_once(':')?;
        let name = resource.strip_prefix("role/")?;
        let ok = partition_ok
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && !name.is_empty()
            && !name.ends_with('/')
            && name.bytes().all(|b| is_word(b) || b"+=,.@-/".contains(&b));
        ok.then_some(())
    };
    shape().ok_or_else(|| {
        format!(
            "`{arn}` is not a role ARN; it looks like arn:aws:iam::123456789012:role/kinesis-writer"
        )
    })
}

/// A RoleSessionName: 2 to 64 of `[A-Za-z0-9_+=,.@-]`.
pub fn check_session_name(name: &str) -> Result<(), String> {
    if made_of(name, 2..=64, b"+=,.@-") {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a session name: 2 to 64 letters, digits or any of _+=,.@-"
        ))
    }
}

/// An ExternalId: 2 to 1224 of `[A-Za-z0-9_+=,.@:/-]`. The value is not repeated
/// in the message: the field is treated as a secret.
pub fn check_external_id(id: &str) -> Result<(), String> {
    if made_of(id, 2..=1224, b"+=,.@:/-") {
        Ok(())
    } else {
        Err(
            "must be 2 to 1224 letters, digits or any of _+=,.@:/- (the value is not shown)"
                .to_string(),
        )
    }
}

/// DurationSeconds: 900 (15 minutes) to 43200 (12 hours); the role's own
/// maximum session duration may be lower, which STS then says.
pub fn check_duration(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if (900..=43_200).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{text}` is not a duration: a whole number of seconds from 900 to 43200"
        )),
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `text` has a length in `len` and only letters, digits, `_` and `extra`.
fn made_of(text: &str, len: std::ops::RangeInclusive<usize>, extra: &[u8]) -> bool {
    len.contains(&text.len()) && text.bytes().all(|b| is_word(b) || extra.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns() {
        for good in [
            "arn:aws:iam::123456789012:role/writer",
            "arn:aws-cn:iam::123456789012:role/path/to/writer",
            "arn:aws-us-gov:iam::123456789012:role/a+b=c,d.e@f-g_h",
        ] {
            assert!(check_arn(good).is_ok(), "{good}");
        }
        for bad in [
            "writer",
            "arn:aws:iam::12345678901:role/writer",
            "arn:aws:iam::123456789012:user/writer",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:sts::123456789012:role/writer",
            "arn:AWS:iam::123456789012:role/writer",
            "arn:aws:iam::123456789012:role/has space",
            "arn:awsx:iam::123456789012:role/writer",
        ] {
            let e = check_arn(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn session_names_external_ids_durations() {
        assert!(check_session_name("ci-run.1@x").is_ok());
        assert!(check_session_name(&default_session_name()).is_ok());
        assert!(check_session_name("a").is_err());
        assert!(check_session_name(&"a".repeat(65)).is_err());
        assert!(check_session_name("has space").is_err());
        assert!(check_external_id("ext-123:a/b").is_ok());
        let e = check_external_id("bad id!").unwrap_err();
        assert!(!e.contains("bad id!"), "{e}");
        assert_eq!(check_duration("900"), Ok(900));
        assert_eq!(check_duration(" 43200 "), Ok(43200));
        assert!(check_duration("899").is_err());
        assert!(check_duration("1h").is_err());
    }

    #[test]
    fn debug_hides_the_external_id() {
        let role = Role {
            arn: "arn:aws:iam::123456789012:role/w".into(),
            external_id: Some("hidden-ext".into()),
            session_name: "s1".into(),
            duration_seconds: DEFAULT_DURATION_SECONDS,
        };
        assert!(!format!("{role:?}").contains("hidden-ext"));
    }
}
