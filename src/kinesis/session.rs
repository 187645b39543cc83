//! A session: credentials, region and endpoint resolved from what the user
//! set and the environment, and a Kinesis client built from them.

use crate::aws::access::Access;
use crate::aws::credentials::profile::Profiles;
use crate::aws::credentials::{resolve, Context};
use crate::aws::environment::process_env;
use crate::aws::http::{Client, Timeouts};
use crate::aws::network::Network;
use crate::aws::region::{resolve_endpoint, resolve_region, ArnRegion};
use crate::failure::Failure;
use crate::failure::Kind;
use crate::kinesis::stream::StreamArn;
use crate::kinesis::Kinesis;
use std::time::Duration;

/// Connection set-up time allowed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The settings that give the endpoint, for Airbyte's users: the config's fields.
pub const SET_BY_CONFIG: &str = "`endpoint` and `region`";

/// The settings that give the endpoint, for the pipeline commands' users: their flags.
pub const SET_BY_FLAGS: &str = "--endpoint and --region";

/// A ready Kinesis client and what it was built from.
pub struct Session {
    /// The client.
    pub kinesis: Kinesis,
    /// Where the credentials came from: "credentials from the environment",
    /// "assumed role arn:... (assumed with credentials from the config)".
    pub credentials: String,
}

/// The timeouts `access` asks for: its request timeout, and connection
/// set-up within that.
pub fn timeouts(access: &Access) -> Timeouts {
    Timeouts {
        connect: CONNECT_TIMEOUT.min(access.request_timeout),
        request: access.request_timeout,
    }
}

impl Session {
    /// Builds a client as `access` says, with `timeouts`, for the stream
    /// `stream` when it is named by ARN (its region, unless one is set);
    /// `set_by` names the settings that give the endpoint, for messages;
    /// `notice` gets what is worth telling (a clock corrected).
    pub fn open_with(
        access: &Access,
        stream: Option<&StreamArn>,
        timeouts: Timeouts,
        set_by: &'static str,
        notice: Box<dyn Fn(&str) + Send + Sync>,
    ) -> Result<Session, Failure> {
        let env = process_env;
        let profiles = Profiles::load_selecting(&env, access.profile.as_deref());
        let arn = stream.map(|arn| ArnRegion {
            arn: arn.as_str(),
            region: arn.region(),
        });
        let region = resolve_region(access.region.as_deref(), &env, &profiles, arn)?;
        let endpoint = resolve_endpoint(access.endpoint.as_deref(), &env, &region)?;
        let network =
            Network::from_env(&env).map_err(|e| Failure::new(Kind::Config, e.to_string()))?;
        let cx = Context {
            region: &region,
            network: &network,
            profiles: &profiles,
            sts_endpoint: access.sts_endpoint.as_deref(),
        };
        let credentials = resolve(access, &env, &cx)?;
        let described = credentials.describe();
        let http = Client::with_provider(
            &endpoint,
            &region,
            "kinesis",
            credentials,
            &network,
            timeouts,
        )
        .set_by(set_by);
        Ok(Session {
            kinesis: Kinesis::new(http, notice),
            credentials: described,
        })
    }
}
