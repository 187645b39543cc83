//! A session: credentials, region and endpoint resolved from the config and
//! the environment, and a Kinesis client built from them.

use crate::config::Config;
use crate::credentials::{process_env, resolve, resolve_endpoint, resolve_region};
use crate::failure::Failure;
use crate::http::{Client, Timeouts};
use crate::kinesis::Kinesis;
use crate::protocol::Emitter;
use std::time::Duration;

/// Connection set-up time allowed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A ready Kinesis client and what it was built from.
pub struct Session {
    /// The client.
    pub kinesis: Kinesis,
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
        let credentials = resolve(config, &env)?;
        let region = resolve_region(config, &env);
        let endpoint = resolve_endpoint(config, &region);
        let http = Client::new(&endpoint, &region, "kinesis", &credentials, timeouts);
        Ok(Session {
            kinesis: Kinesis::new(http, notice),
        })
    }
}
