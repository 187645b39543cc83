//! Running the pipeline commands (`put`, `read`), whose stdout is data, not
//! Airbyte messages.

use super::{command, output_with_stdin, run_as, Run, Stdout};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// The binary with a clean AWS environment plus the emulator's credentials.
pub fn cli(args: &[&str]) -> Command {
    let mut c = command(args);
    c.env("AWS_ACCESS_KEY_ID", "000000000000")
        .env("AWS_SECRET_ACCESS_KEY", "local-secret-key");
    c
}

/// Runs a shell command line under `script`, so the binary it starts has a
/// terminal as its stdout and stderr; returns whether it succeeded and what
/// the terminal showed (both streams, terminal codes included).
pub fn run_on_terminal(shell: &str) -> (bool, String) {
    let mut c = Command::new("script");
    c.args(["-qec", shell, "/dev/null"]);
    for (k, v) in cli(&[]).get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let out = output_with_stdin(c, b"");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

/// Runs a pipeline command with `stdin` and collects what it did.
pub fn run_cli(args: &[&str], stdin: &[u8]) -> Run {
    run_as(Stdout::Data, cli(args), stdin)
}

/// Runs `command --stream <stream> --endpoint <endpoint> <extra>` with `stdin`.
pub fn run_on_stream(
    command: &str,
    stream: &str,
    endpoint: &str,
    extra: &[&str],
    stdin: &[u8],
) -> Run {
    let mut args = vec![command, "--stream", stream, "--endpoint", endpoint];
    args.extend_from_slice(extra);
    run_cli(&args, stdin)
}

/// A command left running, its stdout lines arriving on a channel; killed when dropped.
pub struct Running {
    /// The process.
    pub child: Child,
    /// Its stdout, line by line.
    pub lines: Receiver<String>,
}

impl Running {
    /// Starts `args` with stdin and stdout piped.
    pub fn start(args: &[&str]) -> Running {
        let mut child = cli(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the binary");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running { child, lines }
    }

    /// Waits until `n` more lines came, or `timeout` passed; returns those that came.
    pub fn take(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => got.push(line),
                Err(_) => break,
            }
        }
        got
    }

    /// Waits up to `timeout` for the process to end; its exit code if it did.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Its stderr so far (after it ended).
    pub fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut text);
        }
        text
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
