//! Credentials for each request: cached, and fetched again from their source
//! shortly before they expire, so a long sync outlives temporary credentials.

use super::{Credentials, CredentialsError, Found, Issued, Source};
use aws_smithy_runtime_api::client::identity::Identity;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// Temporary credentials are renewed once they expire within this window.
pub const REFRESH_WINDOW: Duration = Duration::from_secs(5 * 60);

/// After a failed refresh of still-valid credentials, wait this long before asking again.
const RETRY_REFRESH_AFTER: Duration = Duration::from_secs(10);

/// Gives the signing identity for a request made now.
pub trait ProvideCredentials: Send + Sync {
    /// The identity to sign with; fetched anew when the cached one is about to expire.
    fn identity(&self) -> Result<Identity, CredentialsError>;
}

/// The same credentials forever.
pub struct Fixed(Identity);

impl Fixed {
    /// Wraps long-term credentials.
    pub fn new(credentials: &Credentials) -> Fixed {
        Fixed(identity_of(credentials, None))
    }
}

impl ProvideCredentials for Fixed {
    fn identity(&self) -> Result<Identity, CredentialsError> {
        Ok(self.0.clone())
    }
}

struct Cached {
    issued: Issued,
    identity: Identity,
}

/// Credentials from one source, refreshed from it within [`REFRESH_WINDOW`] of expiry.
pub struct Refreshing {
    source: Box<dyn Source>,
    window: Duration,
    /// None until the source first answers (see [`Refreshing::pending`]).
    cached: RwLock<Option<Cached>>,
    /// Held while fetching, so concurrent requests wait for one refresh; holds
    /// when the next attempt is allowed after a failure.
    refresh: Mutex<Option<Instant>>,
}

impl Refreshing {
    /// Starts from credentials `source` just issued.
    pub fn new(source: Box<dyn Source>, issued: Issued) -> Refreshing {
        Refreshing {
            source,
            window: REFRESH_WINDOW,
            cached: RwLock::new(Some(cache(issued))),
            refresh: Mutex::new(None),
        }
    }

    /// Asks `source` only when credentials are first needed: the base of an
    /// assumed role, which nothing needs until the role is assumed.
    pub fn pending(source: Box<dyn Source>) -> Refreshing {
        Refreshing {
            source,
            window: REFRESH_WINDOW,
            cached: RwLock::new(None),
            refresh: Mutex::new(None),
        }
    }

    /// The credentials now cached (for messages and tests); None before the first fetch.
    pub fn current(&self) -> Option<Credentials> {
        let cached = self.cached.read().unwrap_or_else(PoisonError::into_inner);
        cached.as_ref().map(|c| c.issued.credentials.clone())
    }

    /// Where the credentials come from, for `check` ("credentials from the environment").
    pub fn describe(&self) -> String {
        self.source.describe()
    }

    /// The cached identity if it is good for longer than the window; else
    /// when the cached one expires (None: nothing cached, or it never expires).
    fn fresh(&self, now: SystemTime) -> Result<Identity, Option<SystemTime>> {
        let cached = self.cached.read().unwrap_or_else(PoisonError::into_inner);
        match cached.as_ref() {
            None => Err(None),
            Some(c) => match c.issued.expires {
                Some(at) if now + self.window >= at => Err(Some(at)),
                _ => Ok(c.identity.clone()),
            },
        }
    }

    /// The cached identity, whatever its age.
    fn cached_identity(&self) -> Option<Identity> {
        let cached = self.cached.read().unwrap_or_else(PoisonError::into_inner);
        cached.as_ref().map(|c| c.identity.clone())
    }
}

impl ProvideCredentials for Refreshing {
    fn identity(&self) -> Result<Identity, CredentialsError> {
        let expires = match self.fresh(SystemTime::now()) {
            Ok(identity) => return Ok(identity),
            Err(at) => at,
        };
        let mut next_attempt = self.refresh.lock().unwrap_or_else(PoisonError::into_inner);
        // Another request may have refreshed while this one waited.
        let expires = match self.fresh(SystemTime::now()) {
            Ok(identity) => return Ok(identity),
            Err(at) => at.or(expires),
        };
        let still_valid = expires.is_some_and(|at| SystemTime::now() < at);
        if still_valid && next_attempt.is_some_and(|t| Instant::now() < t) {
            if let Some(identity) = self.cached_identity() {
                return Ok(identity);
            }
        }
        let failure = match self.source.fetch() {
            Ok(Found::Yes(issued)) => {
                *next_attempt = None;
                let fresh = cache(issued);
                let identity = fresh.identity.clone();
                *self.cached.write().unwrap_or_else(PoisonError::into_inner) = Some(fresh);
                return Ok(identity);
            }
            Ok(Found::No(why)) => CredentialsError::new(why),
            Err(e) => e,
        };
        let Some(old) = self.cached_identity() else {
            // Never fetched: the source's own message says what is wrong.
            return Err(failure);
        };
        if still_valid {
            *next_attempt = Some(Instant::now() + RETRY_REFRESH_AFTER);
            return Ok(old);
        }
        Err(CredentialsError {
            message: format!(
                "the credentials from the {} have expired and cannot be renewed: {}",
                self.source.name(),
                failure.message
            ),
            transient: failure.transient,
        })
    }
}

fn cache(issued: Issued) -> Cached {
    let identity = identity_of(&issued.credentials, issued.expires);
    Cached { issued, identity }
}

fn identity_of(credentials: &Credentials, expires: Option<SystemTime>) -> Identity {
    aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose().to_string(),
        credentials
            .session_token
            .as_ref()
            .map(|t| t.expose().to_string()),
        expires,
        "destination-kinesis",
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::secret::Secret;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Issues keys AK1, AK2, ... expiring `lifetime` after issue; fails when `failing`.
    struct Counter {
        calls: Arc<AtomicUsize>,
        lifetime: Duration,
        failing: bool,
    }

    impl Source for Counter {
        fn name(&self) -> &'static str {
            "counter"
        }
        fn fetch(&self) -> Result<Found, CredentialsError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if self.failing {
                return Err(CredentialsError::new("down"));
            }
            Ok(Found::Yes(issued(&format!("AK{n}"), self.lifetime)))
        }
    }

    fn issued(key: &str, lifetime: Duration) -> Issued {
        Issued {
            credentials: Credentials {
                access_key_id: key.into(),
                secret_access_key: Secret::new("s"),
                session_token: Some(Secret::new("t")),
                source: "counter",
            },
            expires: Some(SystemTime::now() + lifetime),
        }
    }

    fn key(p: &Refreshing) -> String {
        let id = p.identity().unwrap();
        id.data::<aws_credential_types::Credentials>()
            .unwrap()
            .access_key_id()
            .to_string()
    }

    #[test]
    fn long_lived_credentials_are_cached() {
        let calls = Arc::new(AtomicUsize::new(0));
        let source = Counter {
            calls: calls.clone(),
            lifetime: Duration::from_secs(3600),
            failing: false,
        };
        let p = Refreshing::new(Box::new(source), issued("AK0", Duration::from_secs(3600)));
        for _ in 0..5 {
            assert_eq!(key(&p), "AK0");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn expiring_credentials_are_refreshed() {
        let calls = Arc::new(AtomicUsize::new(0));
        let source = Counter {
            calls: calls.clone(),
            lifetime: Duration::from_secs(3600),
            failing: false,
        };
        let p = Refreshing::new(Box::new(source), issued("AK0", Duration::from_secs(60)));
        assert_eq!(key(&p), "AK1");
        assert_eq!(key(&p), "AK1");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn pending_credentials_are_fetched_on_first_use() {
        let calls = Arc::new(AtomicUsize::new(0));
        let source = Counter {
            calls: calls.clone(),
            lifetime: Duration::from_secs(3600),
            failing: false,
        };
        let p = Refreshing::pending(Box::new(source));
        assert!(p.current().is_none());
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(key(&p), "AK1");
        assert_eq!(key(&p), "AK1");
        assert_eq!(p.current().map(|c| c.access_key_id).as_deref(), Some("AK1"));
        // A first fetch that fails says so in the source's own words, every time asked.
        let failing = Refreshing::pending(Box::new(Counter {
            calls: calls.clone(),
            lifetime: Duration::ZERO,
            failing: true,
        }));
        assert_eq!(failing.identity().unwrap_err().message, "down");
        assert_eq!(failing.identity().unwrap_err().message, "down");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn failed_refresh_keeps_valid_credentials_then_fails_once_expired() {
        let calls = Arc::new(AtomicUsize::new(0));
        let source = Counter {
            calls: calls.clone(),
            lifetime: Duration::from_secs(3600),
            failing: true,
        };
        let p = Refreshing::new(Box::new(source), issued("AK0", Duration::from_secs(60)));
        assert_eq!(key(&p), "AK0");
        // The next attempt waits a while instead of asking on every request.
        assert_eq!(key(&p), "AK0");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let expired = Refreshing::new(
            Box::new(Counter {
                calls: calls.clone(),
                lifetime: Duration::ZERO,
                failing: true,
            }),
            Issued {
                expires: Some(SystemTime::now() - Duration::from_secs(1)),
                ..issued("AK0", Duration::ZERO)
            },
        );
        let e = expired.identity().unwrap_err();
        assert!(
            e.message.contains("counter")
                && e.message.contains("expired")
                && e.message.contains("down"),
            "{e}"
        );
    }
}
