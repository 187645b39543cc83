//! A session: credentials, region and endpoint resolved from the config and
//! the environment, and a Kinesis client built from them.

use crate::airbyte::config::Config;
use crate::airbyte::protocol::Emitter;
use crate::aws::credentials::profile::Profiles;
use crate::aws::credentials::{resolve, resolve_endpoint, resolve_region, Context};
use crate::aws::environment::process_env;
use crate::aws::http::{Client, Timeouts};
use crate::aws::network::Network;
use crate::failure::Failure;
use crate::failure::Kind;
use crate::kinesis::stream::{StreamArn, StreamRef};
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

/// The timeouts `config` asks for: its request timeout, and connection
/// set-up within that.
pub fn timeouts(config: &Config) -> Timeouts {
    Timeouts {
        connect: CONNECT_TIMEOUT.min(config.request_timeout),
        request: config.request_timeout,
    }
}

impl Session {
    /// Builds a client for `config`, for the Airbyte commands: notices (clock
    /// correction) go to `out` as LOG lines. A `streamName` ARN gives the
    /// region when none is set.
    pub fn open(config: &Config, out: &Emitter) -> Result<Session, Failure> {
        let log = out.clone();
        Session::open_with(
            config,
            config.stream_arn(),
            timeouts(config),
            SET_BY_CONFIG,
            // A failed write is remembered by the emitter and stops the run there.
            Box::new(move |m: &str| {
                let _ = log.log("WARN", m);
            }),
        )
    }

    /// Builds a client for `config`, for the pipeline commands (`put`,
    /// `read`), whose stdout carries data: notices go to stderr. A `stream`
    /// named by ARN gives the region when none is set.
    pub fn open_for_pipeline(
        config: &Config,
        stream: Option<&StreamRef>,
    ) -> Result<Session, Failure> {
        let notice = Box::new(|m: &str| eprintln!("destination-kinesis: {m}"));
        let arn = stream.and_then(StreamRef::arn);
        Session::open_with(config, arn, timeouts(config), SET_BY_FLAGS, notice)
    }

    /// Builds a client with the given timeouts and notice sink, for the
    /// stream `stream` when it is named by ARN (its region, unless one is set);
    /// `set_by` names the settings that give the endpoint, for messages.
    pub fn open_with(
        config: &Config,
        stream: Option<&StreamArn>,
        timeouts: Timeouts,
        set_by: &'static str,
        notice: Box<dyn Fn(&str) + Send + Sync>,
    ) -> Result<Session, Failure> {
        let env = process_env;
        let profiles = Profiles::load_selecting(&env, config.profile.as_deref());
        let region = resolve_region(config, &env, &profiles, stream)?;
        let endpoint = resolve_endpoint(config, &env, &region)?;
        let network =
            Network::from_env(&env).map_err(|e| Failure::new(Kind::Config, e.to_string()))?;
        let cx = Context {
            region: &region,
            network: &network,
            profiles: &profiles,
            sts_endpoint: config.sts_endpoint.as_deref(),
        };
        let credentials = resolve(config, &env, &cx)?;
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
