//! `credential_process`: a command line of a profile, run with `sh -c`, that
//! prints `{"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken"?,
//! "Expiration"?}` on stdout. It runs again when what it gave expires.
//! Messages show its stderr and the program's name, never its stdout (which
//! holds secrets) nor its arguments (which may). It runs in a process group of
//! its own, ended as a whole should a signal end this program meanwhile; one
//! that takes more than a few seconds is named on stderr while it runs.

use super::{parse_expiry, Credentials, CredentialsError, Found, Issued, Source};
use crate::aws::secret::Secret;
use crate::signals;
use serde_json::Value;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The end of the process's stderr shown in a message.
const STDERR_SHOWN: usize = 1000;

/// How long the process may take before stderr names it.
const NOTICE_AFTER: Duration = Duration::from_secs(3);
/// How often stderr names it again while it goes on.
const NOTICE_EVERY: Duration = Duration::from_secs(10);

/// How often the wait looks at the process and for a signal.
const LOOK_EVERY: Duration = Duration::from_millis(50);

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
        if let Some(signal) = signals::caught() {
            return Err(CredentialsError::unreachable(format!(
                "{} was not run: {signal} arrived, so the run is stopping",
                self.shown()
            )));
        }
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(&self.command)
            // stdin is the sync's input: the process must not read it.
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // A group of its own, so that it can be ended with its children,
        // never leaving them running after this program; but not under a
        // terminal, where it may prompt (only the terminal's foreground group
        // may read it) and where Ctrl-C reaches it with this program.
        let own_group = !has_terminal();
        if own_group {
            command.process_group(0);
        }
        let mut child = command.spawn().map_err(|e| {
            CredentialsError::new(format!("cannot run {} with sh: {e}", self.shown()))
        })?;
        let helper = signals::Helper::started(child.id(), own_group);
        let output = self.wait(&mut child, &helper);
        drop(helper);
        let output = output?;
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

impl Process {
    /// Waits for the process to exit and close its stdout and stderr, naming
    /// it on stderr while it takes long; on a signal, ends its group.
    fn wait(
        &self,
        child: &mut Child,
        helper: &signals::Running,
    ) -> Result<Output, CredentialsError> {
        let (done, finished) = mpsc::channel();
        let out = read_to_end(child.stdout.take(), done.clone(), Pipe::Stdout);
        let err = read_to_end(child.stderr.take(), done, Pipe::Stderr);
        let started = Instant::now();
        let mut notice_at = started + NOTICE_AFTER;
        let (mut stdout, mut stderr, mut status) = (None, None, None);
        loop {
            match finished.recv_timeout(LOOK_EVERY) {
                Ok((Pipe::Stdout, bytes)) => stdout = Some(bytes),
                Ok((Pipe::Stderr, bytes)) => stderr = Some(bytes),
                Err(_) => {}
            }
            if status.is_none() {
                status = child.try_wait().map_err(|e| {
                    CredentialsError::new(format!("cannot wait for {}: {e}", self.shown()))
                })?;
            }
            if let (Some(status), Some(_), Some(_)) = (status, &stdout, &stderr) {
                let _ = (out.join(), err.join());
                return Ok(Output {
                    status,
                    stdout: stdout.unwrap_or_default(),
                    stderr: stderr.unwrap_or_default(),
                });
            }
            if let Some(signal) = signals::caught() {
                helper.end(|| matches!(child.try_wait(), Ok(Some(_))));
                let _ = child.wait();
                return Err(CredentialsError::unreachable(format!(
                    "{} was ended, with its children, after {} s: {signal} arrived while it ran",
                    self.shown(),
                    started.elapsed().as_secs()
                )));
            }
            if Instant::now() >= notice_at {
                eprintln!(
                    "destination-kinesis: still waiting for {} (`sh -c` with its command line) to print \
                     credentials, {} s so far",
                    self.shown(),
                    started.elapsed().as_secs()
                );
                notice_at += NOTICE_EVERY;
            }
        }
    }
}

/// Whether this program has a controlling terminal.
fn has_terminal() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_ok()
}

/// Which of the process's outputs.
enum Pipe {
    Stdout,
    Stderr,
}

/// Reads `pipe` to its end on a thread of its own and sends what it held.
fn read_to_end(
    pipe: Option<impl Read + Send + 'static>,
    done: mpsc::Sender<(Pipe, Vec<u8>)>,
    which: Pipe,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        let _ = done.send((which, bytes));
    })
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
