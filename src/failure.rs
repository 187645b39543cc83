//! The error that ends a command: what to tell the user, how Airbyte should
//! classify it, and the exit code.

use crate::airbyte::catalog::CatalogError;
use crate::airbyte::config::ConfigError;
use crate::airbyte::protocol::{error_message, Emitter, FailureType, OutputError};
use crate::aws::credentials::CredentialsError;
use crate::aws::http::TransportError;
use crate::kinesis::put_records::EntryFailure;
use crate::kinesis::stream::StreamRef;
use crate::kinesis::{Cause, KinesisError};
use std::fmt;

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
    /// Airbyte's classification.
    pub failure_type: FailureType,
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
    pub fn new(failure_type: FailureType, message: impl Into<String>) -> Failure {
        let message = message.into();
        Failure {
            internal: message.clone(),
            message,
            failure_type,
            stream: None,
            exit_code: if failure_type == FailureType::Config {
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
        Failure::new(FailureType::Config, message)
    }

    /// A failure from a Kinesis call, with the user message leading.
    pub fn from_kinesis(context: &str, e: &KinesisError) -> Failure {
        let failure_type = classify(e);
        Failure {
            message: format!("{context}: {e}"),
            internal: internal_of(e),
            failure_type,
            stream: None,
            // A runtime AWS refusal is a failed run; only bad config files are usage errors.
            exit_code: EXIT_FAILURE,
            done: None,
        }
    }

    /// Writes this failure as a TRACE error.
    pub fn emit(&self, out: &Emitter) {
        let stream = self.stream.as_ref().map(|(ns, name)| (ns, name.as_str()));
        // stdout may be what failed; the message also goes to stderr.
        let _ = out.emit(&error_message(
            &self.message,
            &self.internal,
            self.failure_type,
            stream,
        ));
    }
}

/// A failed Kinesis call in words for the developer: the call and what came
/// back, what kind of failure that is, and how this program judged it.
fn internal_of(e: &KinesisError) -> String {
    let kind = match &e.cause {
        Cause::Transport(_) => "no HTTP answer came",
        Cause::Aws(_) => "AWS answered with an error",
        Cause::BadAnswer(_) => "the answer could not be read",
    };
    let judged = if e.is_retryable() {
        "a later attempt may succeed"
    } else {
        "no retry can mend it"
    };
    let outcome = if e.outcome_unknown() {
        "; the call may have taken effect all the same"
    } else {
        ""
    };
    format!("{e} ({kind}; {judged}{outcome})")
}

/// How Airbyte should classify a failed Kinesis call that ends a sync: what
/// the user must fix (endpoint, credentials, a missing stream) is a config
/// error, what may pass is transient, anything else a system error.
pub fn classify(e: &KinesisError) -> FailureType {
    match &e.cause {
        Cause::Transport(TransportError::Dns { .. } | TransportError::Tls { .. }) => {
            FailureType::Config
        }
        _ if e.is_credential_error() || e.is_not_found() => FailureType::Config,
        _ if e.is_retryable() => FailureType::Transient,
        _ => FailureType::System,
    }
}

/// How Airbyte should classify a PutRecords entry that Kinesis refused and
/// no resend cured: a KMS key the user must fix is a config error.
pub fn classify_entry(f: &EntryFailure) -> FailureType {
    if f.is_retryable() {
        FailureType::Transient
    } else if f.code.starts_with("KMS") || f.code == "AccessDeniedException" {
        FailureType::Config
    } else {
        FailureType::System
    }
}

/// A failed call about one stream: a missing stream said plainly, anything
/// else after `cannot <action> Kinesis stream `<stream>``. Both exit 1: the
/// command was right, the stream or the service was not.
pub fn stream_call_failed(action: &str, stream: &StreamRef, e: &KinesisError) -> Failure {
    if e.is_not_found() {
        return missing_stream(stream, &format!(" ({e})"));
    }
    Failure::from_kinesis(&format!("cannot {action} Kinesis stream {stream}"), e)
}

/// The stream a pipeline command names does not exist (exit 1); `detail` follows the message.
pub fn missing_stream(stream: &StreamRef, detail: &str) -> Failure {
    Failure::new(
        FailureType::Config,
        format!("Kinesis stream {stream} does not exist{detail}"),
    )
    .with_exit_code(EXIT_FAILURE)
}

/// Standard input could not be read.
pub fn stdin_failed(detail: &str) -> Failure {
    Failure::new(
        FailureType::System,
        format!("cannot read standard input: {detail}"),
    )
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<OutputError> for Failure {
    fn from(e: OutputError) -> Failure {
        Failure::new(
            FailureType::System,
            format!("{e}: the platform can get no more states from this run, so it stops here"),
        )
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Failure {
        Failure::new(FailureType::Config, e.to_string())
    }
}

impl From<CatalogError> for Failure {
    fn from(e: CatalogError) -> Failure {
        Failure::new(FailureType::Config, e.to_string())
    }
}

impl From<CredentialsError> for Failure {
    fn from(e: CredentialsError) -> Failure {
        let kind = if e.transient {
            FailureType::Transient
        } else {
            FailureType::Config
        };
        Failure::new(kind, e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinesis::AwsError;

    fn aws(code: &str, status: u16) -> KinesisError {
        KinesisError {
            op: "PutRecords",
            stream: Some("s".into()),
            cause: Cause::Aws(AwsError {
                status,
                code: code.into(),
                message: String::new(),
            }),
        }
    }

    #[test]
    fn internal_messages_are_sentences() {
        let f = Failure::from_kinesis("cannot write", &aws("AccessDeniedException", 400));
        assert_eq!(
            f.internal,
            "PutRecords on stream `s` failed: AccessDeniedException (HTTP 400):  \
             (AWS answered with an error; no retry can mend it)"
        );
        let f = Failure::from_kinesis("cannot write", &aws("InternalFailure", 500));
        assert!(
            f.internal.ends_with(
                "(AWS answered with an error; a later attempt may succeed; the call may have taken effect all the same)"
            ),
            "{}",
            f.internal
        );
    }

    #[test]
    fn classifies_kinesis_errors() {
        assert_eq!(
            classify(&aws("AccessDeniedException", 400)),
            FailureType::Config
        );
        assert_eq!(
            classify(&aws("ResourceNotFoundException", 400)),
            FailureType::Config
        );
        assert_eq!(
            classify(&aws("ValidationException", 400)),
            FailureType::System
        );
        assert_eq!(
            classify(&aws("ThrottlingException", 400)),
            FailureType::Transient
        );
        assert_eq!(classify(&aws("HTTP503", 503)), FailureType::Transient);
    }
}
