//! A failed Kinesis call as the failure that ends a command: the user's
//! message leading, the call and what came back for the developer, and who
//! can mend it.

use crate::aws::http::TransportError;
use crate::failure::{Failure, Kind, EXIT_FAILURE};
use crate::kinesis::put_records::EntryFailure;
use crate::kinesis::stream::StreamRef;
use crate::kinesis::{Cause, KinesisError};

impl Failure {
    /// A failure from a Kinesis call, with the user message leading.
    pub fn from_kinesis(context: &str, e: &KinesisError) -> Failure {
        Failure {
            message: format!("{context}: {e}"),
            internal: internal_of(e),
            kind: classify(e),
            stream: None,
            // A runtime AWS refusal is a failed run; only bad config files are usage errors.
            exit_code: EXIT_FAILURE,
            done: None,
        }
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
pub fn classify(e: &KinesisError) -> Kind {
    match &e.cause {
        Cause::Transport(TransportError::Dns { .. } | TransportError::Tls { .. }) => Kind::Config,
        _ if e.is_credential_error() || e.is_not_found() => Kind::Config,
        _ if e.is_retryable() => Kind::Transient,
        _ => Kind::System,
    }
}

/// How Airbyte should classify a PutRecords entry that Kinesis refused and
/// no resend cured: a KMS key the user must fix is a config error.
pub fn classify_entry(f: &EntryFailure) -> Kind {
    if f.is_retryable() {
        Kind::Transient
    } else if f.code.starts_with("KMS") || f.code == "AccessDeniedException" {
        Kind::Config
    } else {
        Kind::System
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
        Kind::Config,
        format!("Kinesis stream {stream} does not exist{detail}"),
    )
    .with_exit_code(EXIT_FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinesis::api::tests::err;

    fn aws(code: &str, status: u16) -> KinesisError {
        err(status, code, "")
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
        assert_eq!(classify(&aws("AccessDeniedException", 400)), Kind::Config);
        assert_eq!(
            classify(&aws("ResourceNotFoundException", 400)),
            Kind::Config
        );
        assert_eq!(classify(&aws("ValidationException", 400)), Kind::System);
        assert_eq!(classify(&aws("ThrottlingException", 400)), Kind::Transient);
        assert_eq!(classify(&aws("HTTP503", 503)), Kind::Transient);
    }
}
