//! `credential_process`: a command line of a profile, run with `sh -c`, that
//! prints `{"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken"?,
//! "Expiration"?}` on stdout. It runs again when what it gave expires.
//! Messages show its stderr and the program's name, never its stdout (which
//! holds secrets) nor its arguments (which may).

use super::{parse_expiry, Credentials, CredentialsError, Found, Issued, Source};
use crate::config::Secret;
use serde_json::Value;
use std::process::{Command, Stdio};

/// The end of the process's stderr shown in a message.
const STDERR_SHOWN: usize = 1000;

/// Credentials printed by a profile's `credential_process`.
pub struct Process {
    command: String,
    profile: String,
}

impl Process {
    /// The command line `command` of profile `profile`.
    pub fn new(command: &str, profile: &str) -> Process {
        Process {
            command: command.to_string(),
            profile: profile.to_string(),
        }
    }

    /// How messages name it: the profile and the program, without arguments.
    fn shown(&self) -> String {
        let mut words = self.command.split_whitespace();
        let program = words.next().unwrap_or_default();
        let more = if words.next().is_some() { " ..." } else { "" };
        format!(
            "credential_process `{program}{more}` of profile `{}`",
            self.profile
        )
    }

    /// Runs the command; its stdout when it exits 0.
    fn run(&self) -> Result<Vec<u8>, CredentialsError> {
        let output = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            // stdin is the sync's input: the process must not read it.
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| {
                CredentialsError::new(format!("cannot run {} with sh: {e}", self.shown()))
            })?;
        if output.status.success() {
            return Ok(output.stdout);
        }
        let how = match output.status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_string(),
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr = stderr.trim();
        let start = stderr
            .char_indices()
            .rev()
            .nth(STDERR_SHOWN - 1)
            .map_or(0, |(i, _)| i);
        let said = if stderr.is_empty() {
            " (nothing on stderr)".to_string()
        } else {
            format!("; its stderr: {}", &stderr[start..])
        };
        Err(CredentialsError::new(format!(
            "{} {how}{said}",
            self.shown()
        )))
    }
}

impl Source for Process {
    fn name(&self) -> &'static str {
        "credential_process"
    }

    fn describe(&self) -> String {
        format!("credentials from {}", self.shown())
    }

    fn fetch(&self) -> Result<Found, CredentialsError> {
        let stdout = self.run()?;
        parse_output(&stdout)
            .map(Found::Yes)
            .map_err(|problem| CredentialsError::new(format!("{} {problem}", self.shown())))
    }
}

/// Reads what the process printed; the problem, in words that quote nothing of it.
fn parse_output(stdout: &[u8]) -> Result<Issued, String> {
    const EXPECTED: &str =
        r#"it must print {"Version": 1, "AccessKeyId": ..., "SecretAccessKey": ...}"#;
    let value: Value = serde_json::from_slice(stdout).map_err(|e| {
        format!(
            "printed something that is not JSON (line {}, column {}); {EXPECTED}",
            e.line(),
            e.column()
        )
    })?;
    let Some(doc) = value.as_object() else {
        return Err(format!("printed JSON that is not an object; {EXPECTED}"));
    };
    match doc.get("Version") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        Some(Value::Number(n)) => {
            return Err(format!("printed Version {n}; only Version 1 is known"))
        }
        _ => return Err(format!("printed no Version number; {EXPECTED}")),
    }
    let text = |key: &str| match doc.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(format!("printed a {key} that is not a non-empty string")),
    };
    let required = |key: &str| text(key)?.ok_or_else(|| format!("printed no {key}; {EXPECTED}"));
    let expires = match text("Expiration")? {
        Some(t) => Some(parse_expiry(&t).ok_or_else(|| {
            "printed an Expiration that is not an ISO 8601 time (e.g. 2030-01-01T00:00:00Z)"
                .to_string()
        })?),
        None => None,
    };
    Ok(Issued {
        credentials: Credentials {
            access_key_id: required("AccessKeyId")?,
            secret_access_key: Secret::new(required("SecretAccessKey")?),
            session_token: text("SessionToken")?.map(Secret::new),
            source: "credential_process",
        },
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "proc-secret-9f8e7d";

    fn fetch(command: &str) -> Result<Issued, CredentialsError> {
        match Process::new(command, "p").fetch()? {
            Found::Yes(issued) => Ok(issued),
            Found::No(why) => panic!("{why}"),
        }
    }

    #[test]
    fn reads_what_the_process_prints() {
        let issued = fetch(&format!(
            r#"printf '%s' '{{"Version":1,"AccessKeyId":"AKPROC","SecretAccessKey":"{SECRET}","SessionToken":"t","Expiration":"2030-01-01T00:00:00Z"}}'"#
        ))
        .unwrap();
        assert_eq!(issued.credentials.access_key_id, "AKPROC");
        assert_eq!(issued.credentials.secret_access_key.expose(), SECRET);
        assert!(issued.expires.is_some());
        let lasting = fetch(&format!(
            r#"echo '{{"Version":1,"AccessKeyId":"AK","SecretAccessKey":"{SECRET}"}}'"#
        ))
        .unwrap();
        assert!(lasting.expires.is_none() && lasting.credentials.session_token.is_none());
    }

    #[test]
    fn bad_output_is_described_without_quoting_it() {
        for (stdout, expected) in [
            (
                format!(r#"{{"Version":1,"AccessKeyId":"AK","SecretAccessKey":"{SECRET}""#),
                "not JSON",
            ),
            (format!(r#"["{SECRET}"]"#), "not an object"),
            (
                format!(r#"{{"Version":2,"AccessKeyId":"AK","SecretAccessKey":"{SECRET}"}}"#),
                "Version 2",
            ),
            (format!(r#"{{"Version":"{SECRET}"}}"#), "no Version"),
            (
                format!(r#"{{"Version":1,"AccessKeyId":"{SECRET}"}}"#),
                "no SecretAccessKey",
            ),
            (
                r#"{"Version":1,"AccessKeyId":"AK","SecretAccessKey":7}"#.to_string(),
                "SecretAccessKey that is not",
            ),
            (
                format!(
                    r#"{{"Version":1,"AccessKeyId":"AK","SecretAccessKey":"s","Expiration":"{SECRET}"}}"#
                ),
                "Expiration",
            ),
        ] {
            let e = parse_output(stdout.as_bytes()).unwrap_err();
            assert!(e.contains(expected), "{stdout}: {e}");
            assert!(!e.contains(SECRET) && !e.contains("proc-secret"), "{e}");
        }
    }

    #[test]
    fn a_failing_process_shows_its_stderr_not_its_stdout_nor_arguments() {
        let e = fetch(&format!(
            "echo {SECRET}; echo 'session expired: run login' >&2; exit 3 # --password {SECRET}"
        ))
        .unwrap_err();
        assert!(
            e.message.contains("status 3")
                && e.message.contains("session expired: run login")
                && e.message.contains("profile `p`")
                && e.message.contains("`echo ...`"),
            "{e}"
        );
        assert!(!e.message.contains(SECRET), "{e}");
        assert!(!e.transient);
        let e = fetch("exit 1").unwrap_err();
        assert!(e.message.contains("nothing on stderr"), "{e}");
        let e = fetch("true").unwrap_err();
        assert!(e.message.contains("not JSON"), "{e}");
    }
}
