//! A role assumed with STS AssumeRole, signed like every other call (the same
//! client, service `sts`) with base credentials that refresh themselves; each
//! fetch assumes the role again, so `Refreshing` renews it before it expires.
//! Refusals say what to change: the trust policy, the external id.

use super::{sts, Context, CredentialsError, Found, Refreshing, Source};
use crate::aws::environment::Env;
use crate::aws::http::{Client, Reply, Timeouts, TransportError};
use crate::aws::role::Role;
use std::sync::Arc;

/// Where the role was asked for, so messages name the setting to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The config's `roleArn`.
    Config,
    /// A profile's `role_arn`.
    Profile(String),
}

impl Origin {
    /// How the user knows a setting: `externalId` or `external_id of profile `p``.
    fn setting(&self, config_field: &str, profile_key: &str) -> String {
        match self {
            Origin::Config => format!("`{config_field}`"),
            Origin::Profile(p) => format!("`{profile_key}` of profile `{p}`"),
        }
    }
}

/// Credentials of a role, assumed with base credentials.
pub struct AssumeRole {
    role: Role,
    origin: Origin,
    base: Arc<Refreshing>,
    region: String,
    sts: Client,
}

impl AssumeRole {
    /// Set up to assume `role` with `base`, at the STS endpoint the config and
    /// environment name.
    pub fn new(
        role: Role,
        origin: Origin,
        base: Arc<Refreshing>,
        env: Env,
        cx: &Context,
    ) -> Result<AssumeRole, CredentialsError> {
        let endpoint = sts::endpoint(env, cx)?;
        let timeouts = Timeouts {
            connect: sts::CONNECT_TIMEOUT,
            request: sts::REQUEST_TIMEOUT,
        };
        let sts = Client::with_provider(
            &endpoint,
            cx.region,
            "sts",
            base.clone(),
            cx.network,
            timeouts,
        )
        .set_by("`stsEndpoint` (or AWS_ENDPOINT_URL_STS) and the region");
        Ok(AssumeRole {
            role,
            origin,
            base,
            region: cx.region.to_string(),
            sts,
        })
    }

    /// One AssumeRole call, sent once more after no answer or a 5xx.
    fn call(&self) -> Result<Reply, TransportError> {
        let duration = self.role.duration_seconds.to_string();
        let mut pairs = vec![
            ("Action", "AssumeRole"),
            ("Version", sts::VERSION),
            ("RoleArn", self.role.arn.as_str()),
            ("RoleSessionName", self.role.session_name.as_str()),
            ("DurationSeconds", duration.as_str()),
        ];
        if let Some(id) = &self.role.external_id {
            pairs.push(("ExternalId", id));
        }
        let form = sts::form(&pairs);
        let first = self.sts.post_form(&form);
        match &first {
            Ok(reply) if reply.status < 500 => first,
            Err(TransportError::Credentials { .. } | TransportError::Signing { .. }) => first,
            _ => self.sts.post_form(&form),
        }
    }

    /// A refusal as a message saying what to change.
    fn refused(&self, status: u16, code: &str, message: &str) -> CredentialsError {
        let key = self
            .base
            .current()
            .map(|c| c.access_key_id)
            .unwrap_or_else(|| "?".into());
        let arn = &self.role.arn;
        let external_id = self.origin.setting("externalId", "external_id");
        let advice = match code {
            "AccessDenied" => {
                let id_advice = if self.role.external_id.is_some() {
                    format!(
                        "; an external id is sent, so the trust policy's `sts:ExternalId` condition \
                         must equal {external_id}"
                    )
                } else {
                    format!(
                        "; if the trust policy has an `sts:ExternalId` condition, set {external_id} to match it"
                    )
                };
                format!(
                    "the role's trust policy must allow this principal (access key {key}) to call \
                     sts:AssumeRole, and the principal's own policy must allow sts:AssumeRole on {arn}{id_advice}"
                )
            }
            "InvalidClientTokenId" | "UnrecognizedClientException" => format!(
                "AWS does not know access key {key}: check the base credentials ({})",
                self.base.describe()
            ),
            "SignatureDoesNotMatch" => format!(
                "the secret key does not match access key {key}, or this machine's clock is more than 5 minutes off"
            ),
            "ExpiredToken" | "ExpiredTokenException" => format!(
                "the session token of access key {key} has expired: renew the base credentials ({})",
                self.base.describe()
            ),
            "RegionDisabledException" => format!(
                "STS is not activated in {}: activate it in the account's IAM settings, or point \
                 `stsEndpoint` (or AWS_ENDPOINT_URL_STS) at a region where it is",
                self.region
            ),
            "ValidationError" => match &self.origin {
                Origin::Config => "check `roleArn` and `roleSessionName`".to_string(),
                Origin::Profile(p) => format!(
                    "check role_arn, role_session_name and duration_seconds of profile `{p}` \
                     (duration_seconds may not exceed the role's maximum session duration)"
                ),
            },
            _ => String::new(),
        };
        let refusal = format!(
            "STS refused to let access key {key} assume role {arn}: HTTP {status} {code}: {}",
            message.trim_end_matches('.')
        );
        let text = if advice.is_empty() {
            refusal
        } else {
            format!("{refusal}. To fix: {advice}")
        };
        sts::refusal(status, code, text)
    }
}

impl Source for AssumeRole {
    fn name(&self) -> &'static str {
        "assumed role"
    }

    fn describe(&self) -> String {
        let of = match &self.origin {
            Origin::Config => String::new(),
            Origin::Profile(p) => format!(" of profile `{p}`"),
        };
        format!(
            "assumed role {}{of} (assumed with {})",
            self.role.arn,
            self.base.describe()
        )
    }

    fn fetch(&self) -> Result<Found, CredentialsError> {
        let reply = self.call().map_err(|e| match e {
            TransportError::Credentials { detail, transient } => CredentialsError {
                message: format!(
                    "no credentials to assume role {} with: {detail}",
                    self.role.arn
                ),
                transient,
            },
            other => CredentialsError::unreachable(format!(
                "STS did not answer the AssumeRole call for {}: {other}",
                self.role.arn
            )),
        })?;
        let body = String::from_utf8_lossy(&reply.body);
        if reply.status != 200 {
            let (code, message) = sts::error_of(&body);
            return Err(self.refused(reply.status, &code, &message));
        }
        sts::parse_credentials(&body, "assumed role").map(Found::Yes)
    }
}
