//! The error that ends a command, in every layer's terms: what to tell the
//! user, who can mend it, and the exit code. The layers build it from their
//! own errors (`From` conversions and constructors beside those errors); the
//! Airbyte connector turns it into a TRACE message, the pipeline commands
//! into an exit code.

use std::fmt;

/// Who can mend a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The user, by changing the configuration (or the stream, or the permissions).
    Config,
    /// Nobody: a defect, or input that cannot be taken.
    System,
    /// Time: a later run may succeed.
    Transient,
}

/// Exit code for a failed run.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code for a usage or configuration error.
pub const EXIT_CONFIG: i32 = 2;

/// A failure that ends a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// For the user: what happened and what to do.
    pub message: String,
    /// For the developer: the underlying error.
    pub internal: String,
    /// Who can mend it.
    pub kind: Kind,
    /// The stream it concerns (namespace, name).
    pub stream: Option<(Option<String>, String)>,
    /// The process exit code.
    pub exit_code: i32,
    /// What the command had done when it failed (put's summary), told after the
    /// message (boxed: a `Failure` is the error of most results, kept small).
    pub done: Option<Box<str>>,
}

impl Failure {
    /// A failure with the same text for user and developer.
    pub fn new(kind: Kind, message: impl Into<String>) -> Failure {
        let message = message.into();
        Failure {
            internal: message.clone(),
            message,
            kind,
            stream: None,
            exit_code: if kind == Kind::Config {
                EXIT_CONFIG
            } else {
                EXIT_FAILURE
            },
            done: None,
        }
    }

    /// The same failure, about one stream.
    pub fn for_stream(mut self, namespace: Option<&str>, name: &str) -> Failure {
        self.stream = Some((namespace.map(str::to_string), name.to_string()));
        self
    }

    /// The same failure, with what the command had done by then.
    pub fn with_done(mut self, done: String) -> Failure {
        self.done = Some(done.into_boxed_str());
        self
    }

    /// The same failure with another exit code.
    pub fn with_exit_code(mut self, code: i32) -> Failure {
        self.exit_code = code;
        self
    }

    /// A usage or configuration error (exit code 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(Kind::Config, message)
    }
}

/// Standard input could not be read.
pub fn stdin_failed(detail: &str) -> Failure {
    Failure::new(
        Kind::System,
        format!("cannot read standard input: {detail}"),
    )
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
