//! A session: credentials, region and endpoint resolved from the config and
//! the environment, and a Kinesis client built from them.

use crate::config::Config;
use crate::credentials::profile::Profiles;
use crate::credentials::{process_env, resolve, resolve_endpoint, resolve_region, Context};
use crate::failure::Failure;
use crate::http::{Client, Timeouts};
use crate::kinesis::{FailureType, Kinesis};
use crate::network::Network;
use crate::protocol::Emitter;
use std::time::Duration;

/// Connection set-up time allowed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A ready Kinesis client and what it was built from.
pub struct Session {
    /// The client.
    pub kinesis: Kinesis,
    /// Where the credentials came from ("config", "web identity", ...).
    pub credentials_source: &'static str,
}

impl Session {
    /// Builds a client for `config`; notices (clock correction) go to `out` as LOG lines.
    pub fn open(config: &Config, out: &Emitter) -> Result<Session, Failure> {
        let timeouts = Timeouts {
            connect: CONNECT_TIMEOUT.min(config.request_timeout),
            request: config.request_timeout,
        };
        let log = out.clone();
        Session::open_with(
            config,
            timeouts,
            Box::new(move |m: &str| log.log("WARN", m)),
        )
    }

    /// Builds a client with the given timeouts and notice sink.
    pub fn open_with(
        config: &Config,
        timeouts: Timeouts,
        notice: Box<dyn Fn(&str) + Send + Sync>,
    ) -> Result<Session, Failure> {
        let env = process_env;
        let profiles = Profiles::load(&env);
        let region = resolve_region(config, &env, &profiles)?;
        let endpoint = resolve_endpoint(config, &env, &region)?;
        let network = Network::from_env(&env)
            .map_err(|e| Failure::new(FailureType::Config, e.to_string()))?;
        let cx = Context {
            region: &region,
            network: &network,
            profiles: &profiles,
        };
        let credentials = resolve(config, &env, &cx)?;
        let credentials_source = credentials.source_name();
        let http = Client::with_provider(
            &endpoint,
            &region,
            "kinesis",
            credentials,
            &network,
            timeouts,
        );
        Ok(Session {
            kinesis: Kinesis::new(http, notice),
            credentials_source,
        })
    }
}
