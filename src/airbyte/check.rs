//! `check`: validate the config, then make one signed call that changes
//! nothing, and say in plain words what is wrong if it fails.

use crate::airbyte::config::{Config, Overrides};
use crate::aws::http::{Timeouts, TransportError};
use crate::failure::Failure;
use crate::kinesis::session::{Session, SET_BY_CONFIG};
use crate::kinesis::{Cause, KinesisError};
use std::path::Path;
use std::time::Duration;

/// Time allowed for the check's connection and whole call: within 15 s in all.
const CHECK_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(5),
    request: Duration::from_secs(10),
};

/// Runs the check of the config file with `flags` (`--profile`): Ok(summary) when
/// Kinesis answered, Err(what to fix) otherwise.
pub fn run(config_path: &Path, flags: &Overrides) -> Result<String, String> {
    let config = Config::load(Some(config_path), flags).map_err(|e| e.to_string())?;
    let session = Session::open_with(
        &config.access,
        config.stream_arn(),
        CHECK_TIMEOUTS,
        SET_BY_CONFIG,
        Box::new(|_| {}),
    )
    .map_err(|f: Failure| f.message)?;
    let kinesis = &session.kinesis;
    match kinesis.list_streams(1) {
        Ok(_) => Ok(format!(
            "connected to Kinesis at {} in {} with {}; ListStreams allowed",
            kinesis.http().endpoint(),
            kinesis.http().region(),
            session.credentials
        )),
        Err(e) => Err(explain(&e, kinesis.http().endpoint())),
    }
}

/// A message a user can act on for a failed check call.
pub fn explain(e: &KinesisError, endpoint: &str) -> String {
    let aws = |code: &str, message: &str| format!("{code}: {message}");
    match &e.cause {
        Cause::Aws(a) => match a.code.as_str() {
            "UnrecognizedClientException" | "InvalidClientTokenId" => format!(
                "AWS does not know this access key: check `accessKey` (or AWS_ACCESS_KEY_ID) and that the key is active ({})",
                aws(&a.code, &a.message)
            ),
            "InvalidSignatureException" | "SignatureDoesNotMatch" | "IncompleteSignature" => format!(
                "the request signature was refused: `privateKey` (or AWS_SECRET_ACCESS_KEY) does not match the access key, \
                 or this machine's clock is more than 5 minutes off ({})",
                aws(&a.code, &a.message)
            ),
            "AccessDeniedException" => format!(
                "the credentials are valid but lack permission: allow kinesis:ListStreams, kinesis:DescribeStreamSummary, \
                 kinesis:CreateStream and kinesis:PutRecords ({})",
                aws(&a.code, &a.message)
            ),
            "ExpiredTokenException" => format!(
                "the session token has expired: get fresh temporary credentials ({})",
                aws(&a.code, &a.message)
            ),
            "MissingAuthenticationToken" | "MissingAuthenticationTokenException" => format!(
                "the endpoint wants credentials the request did not carry ({})",
                aws(&a.code, &a.message)
            ),
            _ => format!("Kinesis at {endpoint} refused the call: {} (HTTP {})", aws(&a.code, &a.message), a.status),
        },
        Cause::Transport(TransportError::Dns { proxy: None, .. }) => format!(
            "cannot resolve the host of {endpoint}: check `endpoint` and `region` and this machine's DNS"
        ),
        Cause::Transport(t @ TransportError::Connect { .. }) => format!("{t}"),
        Cause::Transport(t @ TransportError::Timeout { .. }) => {
            format!("{t}: the endpoint is unreachable from here (firewall, proxy or wrong address?)")
        }
        Cause::Transport(t) => t.to_string(),
        Cause::BadAnswer(why) => format!(
            "{endpoint} answered, but not like Kinesis ({why}): is `endpoint` a Kinesis endpoint?"
        ),
    }
}
