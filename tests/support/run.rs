//! Running the built binary and what a finished run did: one `Run` for every
//! command, with helpers for what each kind of test reads (Airbyte messages,
//! the TRACE error, states, the final figures, stdout as data, stderr lines).

use super::TempDir;
use serde_json::Value;
use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The built binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_destination-kinesis")
}

/// A command for the binary with a clean AWS environment (no ambient credentials,
/// no instance metadata).
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(binary());
    c.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.ends_with("_PROXY") || k.ends_with("_proxy") {
            c.env_remove(k);
        }
    }
    c.env("AWS_EC2_METADATA_DISABLED", "true");
    c.env("AWS_CONFIG_FILE", "/nonexistent/aws-config");
    c.env(
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/aws-credentials",
    );
    c
}

/// The binary with `args` and a clean AWS environment, started through
/// `sh -c SCRIPT` (where the binary is `$0`), for redirections such as `>&-`.
pub fn through_sh(script: &str, args: &[&str]) -> Command {
    under("sh", &["-c", script], &command(args))
}

/// `inner` started by `program` with `args` before its own program and
/// arguments (`setsid`, `sh -c SCRIPT`), with `inner`'s environment.
pub fn under(program: &str, args: &[&str], inner: &Command) -> Command {
    let mut c = Command::new(program);
    c.args(args).arg(inner.get_program()).args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

/// A child killed when dropped, so that a failed assertion leaves no
/// process behind.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits up to `timeout` for a child to end; its exit code (-1 when a signal
/// ended it).
pub fn exit_within(child: &mut Child, timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "still running after {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `write` command (clean AWS environment, stdin, stdout and stderr piped)
/// with the config and catalog written to files in the returned directory.
pub fn write_command(config: &Value, catalog: &Value) -> (Command, TempDir) {
    let dir = TempDir::new("write");
    let cfg = dir.file("config.json", config.to_string().as_bytes());
    let cat = dir.file("catalog.json", catalog.to_string().as_bytes());
    let mut c = command(&[
        "write",
        "--config",
        cfg.to_str().unwrap_or_default(),
        "--catalog",
        cat.to_str().unwrap_or_default(),
    ]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    (c, dir)
}

/// Runs a prepared command with `stdin`, fails the test if it panicked, and
/// returns its output.
pub fn output_with_stdin(mut c: Command, stdin: &[u8]) -> Output {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn the binary");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The program may stop reading early (on an error): a broken pipe is fine.
        let _ = input.write_all(&data);
    });
    let output = child.wait_with_output().expect("wait for the binary");
    let _ = writer.join();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked"),
        "the program panicked: {stderr}"
    );
    output
}

/// What a command's stdout holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    /// Airbyte messages (`spec`, `check`, `write`): a test fails on any other line.
    Airbyte,
    /// Data (`put`, `read`, `list`, `describe`).
    Data,
}

/// What a run of the binary printed and how it ended.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// stdout as text.
    pub stdout: String,
    /// stderr as text.
    pub stderr: String,
    /// stdout's Airbyte messages (none when stdout is data).
    pub messages: Vec<Value>,
    /// For a run watched against the stand-in (`live::Started::watch`): for
    /// each stdout line, the stand-in's accept counter when it was read.
    pub stored_at: Vec<usize>,
    /// From start to exit.
    pub elapsed: Duration,
}

/// Runs a prepared command with `stdin` and collects what it did.
pub fn run_as(kind: Stdout, c: Command, stdin: &[u8]) -> Run {
    let started = Instant::now();
    let output = output_with_stdin(c, stdin);
    Run::new(
        kind,
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        started.elapsed(),
    )
}

/// Runs a prepared Airbyte command with `stdin` and collects what it did.
pub fn run_command(c: Command, stdin: &[u8]) -> Run {
    run_as(Stdout::Airbyte, c, stdin)
}

/// Runs `write` with a config and catalog given as JSON, feeding `stdin`.
pub fn run_write(config: &Value, catalog: &Value, stdin: &[u8]) -> Run {
    let (c, _dir) = write_command(config, catalog);
    run_command(c, stdin)
}

/// Runs `check` with a config given as JSON.
pub fn run_check(config: &Value) -> Run {
    let dir = TempDir::new("check");
    let cfg = dir.file("config.json", config.to_string().as_bytes());
    run_command(
        command(&["check", "--config", cfg.to_str().unwrap_or_default()]),
        b"",
    )
}

/// Checks that every stdout line is a JSON AirbyteMessage with a known type.
pub fn parse_messages(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            let kind = v["type"]
                .as_str()
                .unwrap_or_else(|| panic!("stdout line without type: {line}"));
            assert!(
                ["SPEC", "CONNECTION_STATUS", "LOG", "TRACE", "STATE"].contains(&kind),
                "unexpected message type on stdout: {line}"
            );
            v
        })
        .collect()
}

impl Run {
    /// A finished run; an Airbyte command's stdout is checked line by line.
    pub fn new(kind: Stdout, code: i32, stdout: String, stderr: String, elapsed: Duration) -> Run {
        let messages = match kind {
            Stdout::Airbyte => parse_messages(&stdout),
            Stdout::Data => Vec::new(),
        };
        Run {
            code,
            stdout,
            stderr,
            messages,
            stored_at: Vec::new(),
            elapsed,
        }
    }

    /// An Airbyte command's output, e.g. one run through a shell.
    pub fn airbyte(output: &Output) -> Run {
        Run::new(
            Stdout::Airbyte,
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
            Duration::ZERO,
        )
    }

    /// Messages of a given `type`.
    pub fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.messages.iter().filter(|m| m["type"] == kind).collect()
    }

    /// The TRACE error, if any.
    pub fn error(&self) -> Option<&Value> {
        self.messages
            .iter()
            .find(|m| m["type"] == "TRACE" && m["trace"]["type"] == "ERROR")
    }

    /// The TRACE error's message, or "" when there is none.
    pub fn error_message(&self) -> &str {
        self.error()
            .and_then(|e| e["trace"]["error"]["message"].as_str())
            .unwrap_or("")
    }

    /// The TRACE error's failure type, or "" when there is none.
    pub fn failure_type(&self) -> &str {
        self.error()
            .and_then(|e| e["trace"]["error"]["failure_type"].as_str())
            .unwrap_or("")
    }

    /// The echoed states.
    pub fn states(&self) -> Vec<&Value> {
        self.of_type("STATE")
    }

    /// For a watched run, each echoed LEGACY state's `n` with the stand-in's
    /// accept counter when it was read.
    pub fn state_arrivals(&self) -> Vec<(usize, usize)> {
        assert_eq!(
            self.stored_at.len(),
            self.messages.len(),
            "a watched run notes every line"
        );
        self.messages
            .iter()
            .zip(&self.stored_at)
            .filter(|(m, _)| m["type"] == "STATE")
            .map(|(m, at)| {
                let n = m["state"]["data"]["n"].as_u64().expect("state n");
                (n as usize, *at)
            })
            .collect()
    }

    /// The LOG messages' texts.
    pub fn logs(&self) -> Vec<&str> {
        self.of_type("LOG")
            .into_iter()
            .filter_map(|m| m["log"]["message"].as_str())
            .collect()
    }

    /// The texts of the LOG messages at `level`, e.g. `WARN`.
    pub fn logs_at(&self, level: &str) -> Vec<&str> {
        self.of_type("LOG")
            .into_iter()
            .filter(|m| m["log"]["level"] == level)
            .filter_map(|m| m["log"]["message"].as_str())
            .collect()
    }

    /// The final LOG's figures (the machine-readable DEBUG line `write` ends with).
    pub fn figures(&self) -> Value {
        let prefix = destination_kinesis::airbyte::write::FIGURES_PREFIX;
        self.logs()
            .into_iter()
            .rev()
            .find_map(|m| m.strip_prefix(prefix))
            .map(|json| serde_json::from_str(json).expect("figures are JSON"))
            .unwrap_or_else(|| panic!("no `{prefix}` LOG line in {:?}", self.messages))
    }

    /// The CONNECTION_STATUS's status and message ("" when absent).
    pub fn connection_status(&self) -> (String, String) {
        let s = self
            .of_type("CONNECTION_STATUS")
            .first()
            .map(|m| m["connectionStatus"].clone())
            .unwrap_or(Value::Null);
        let field = |k: &str| s[k].as_str().unwrap_or("").to_string();
        (field("status"), field("message"))
    }

    /// stdout's lines (a pipeline command's data).
    pub fn lines(&self) -> Vec<String> {
        self.stdout.lines().map(str::to_string).collect()
    }

    /// stdout's lines parsed as JSON (for `--format json`).
    pub fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// stderr's lines.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }
}

/// The message of `check`'s CONNECTION_STATUS, which must be SUCCEEDED.
pub fn assert_succeeded(run: &Run) -> String {
    let (state, message) = run.connection_status();
    assert_eq!(state, "SUCCEEDED", "{message}\n{}", run.stderr);
    message
}

/// The message of `check`'s CONNECTION_STATUS, which must be FAILED.
pub fn assert_failed(run: &Run) -> String {
    let (state, message) = run.connection_status();
    assert_eq!(state, "FAILED", "{message}");
    message
}
