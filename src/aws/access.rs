//! What the user set for reaching AWS: where, as whom, how patiently. The
//! connector's config fields and the pipeline commands' flags fill it; the
//! region, endpoint and credential lookups take it, and fall back to the
//! environment and the shared files for what it leaves unset.

use crate::aws::role::Role;
use crate::aws::secret::Secret;
use std::time::Duration;

/// How long one HTTP request may take by default.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where to reach AWS and with which credentials, as the user set them.
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    /// The service endpoint URL, when not the AWS default.
    pub endpoint: Option<String>,
    /// The region, when given.
    pub region: Option<String>,
    /// An access key ID given outright.
    pub access_key: Option<String>,
    /// Its secret access key.
    pub secret_key: Option<Secret>,
    /// A session token of temporary credentials.
    pub session_token: Option<Secret>,
    /// A role to assume with the credentials found.
    pub assume_role: Option<Role>,
    /// The STS endpoint URL, when not the AWS default.
    pub sts_endpoint: Option<String>,
    /// The shared files' profile, in place of `AWS_PROFILE`.
    pub profile: Option<String>,
    /// How long one HTTP request may take before it counts as failed.
    pub request_timeout: Duration,
}

impl Default for Access {
    fn default() -> Access {
        Access {
            endpoint: None,
            region: None,
            access_key: None,
            secret_key: None,
            session_token: None,
            assume_role: None,
            sts_endpoint: None,
            profile: None,
            request_timeout: REQUEST_TIMEOUT,
        }
    }
}
