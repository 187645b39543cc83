//! Name resolution for the HTTP agents: each host's addresses are looked up
//! once and kept for a while.
//!
//! ureq looks the host up before every request, even one that goes out on a
//! pooled connection and never uses the addresses, and with a request timeout
//! set it does each lookup on a thread of its own. A sync with many streams or
//! a long pipeline makes hundreds of thousands of calls: that was one thread
//! start (and one getaddrinfo) per call, most of the set-up's system time.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long addresses are kept: the JVM's (and so the Java SDK's) default, short
/// enough that a moved endpoint is followed by the next new connection soon after.
const KEEP_FOR: Duration = Duration::from_secs(30);

/// A resolver that keeps what `inner` found for each host and port for
/// `keep_for`; failed lookups are not kept.
#[derive(Debug)]
pub struct CachingResolver<R = DefaultResolver> {
    inner: R,
    keep_for: Duration,
    found: Mutex<HashMap<String, (Instant, ResolvedSocketAddrs)>>,
}

impl Default for CachingResolver {
    fn default() -> Self {
        CachingResolver::new(DefaultResolver::default(), KEEP_FOR)
    }
}

impl<R: Resolver> CachingResolver<R> {
    /// A resolver keeping `inner`'s answers for `keep_for`.
    pub fn new(inner: R, keep_for: Duration) -> Self {
        CachingResolver {
            inner,
            keep_for,
            found: Mutex::new(HashMap::new()),
        }
    }
}

impl<R: Resolver> Resolver for CachingResolver<R> {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        // A URI without scheme or authority is the inner resolver's to refuse.
        let key = match (uri.scheme(), uri.authority()) {
            (Some(scheme), Some(authority)) => DefaultResolver::host_and_port(scheme, authority),
            _ => None,
        };
        let Some(key) = key else {
            return self.inner.resolve(uri, config, timeout);
        };
        let now = Instant::now();
        let found = |f: &HashMap<String, (Instant, ResolvedSocketAddrs)>| {
            f.get(&key)
                .filter(|(at, _)| now.duration_since(*at) < self.keep_for)
                .map(|(_, addrs)| addrs.clone())
        };
        if let Some(addrs) = found(&self.found.lock().unwrap_or_else(PoisonError::into_inner)) {
            return Ok(addrs);
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        self.found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, (now, addrs.clone()));
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers every host with 127.0.0.1 and the port, counting lookups; fails
    /// for the host `nowhere`.
    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);

    impl Resolver for Counting {
        fn resolve(
            &self,
            uri: &Uri,
            _: &Config,
            _: NextTimeout,
        ) -> Result<ResolvedSocketAddrs, ureq::Error> {
            self.0.fetch_add(1, Ordering::SeqCst);
            if uri.host() == Some("nowhere") {
                return Err(ureq::Error::HostNotFound);
            }
            let mut addrs = self.empty();
            addrs.push(SocketAddr::from((
                [127, 0, 0, 1],
                uri.port_u16().unwrap_or(443),
            )));
            Ok(addrs)
        }
    }

    fn lookup(r: &CachingResolver<Counting>, url: &str) -> Result<Vec<u16>, ureq::Error> {
        let uri: Uri = url.parse().expect("a valid test URL");
        let config = ureq::Agent::config_builder().build();
        let addrs = r.resolve(&uri, &config, NextTimeout::default())?;
        Ok(addrs.iter().map(|a| a.port()).collect())
    }

    #[test]
    fn a_host_is_looked_up_once_while_kept() {
        let r = CachingResolver::new(Counting::default(), KEEP_FOR);
        assert_eq!(lookup(&r, "http://a.test:4567/x").ok(), Some(vec![4567]));
        assert_eq!(lookup(&r, "http://a.test:4567/y?z").ok(), Some(vec![4567]));
        assert_eq!(
            r.inner.0.load(Ordering::SeqCst),
            1,
            "the second one was kept"
        );
        // The key is host and port: another port, or a scheme's default
        // port, is another key.
        assert_eq!(lookup(&r, "http://a.test:4568/").ok(), Some(vec![4568]));
        assert_eq!(lookup(&r, "https://a.test/").ok(), Some(vec![443]));
        assert_eq!(r.inner.0.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_host_is_looked_up_again_once_old() {
        let r = CachingResolver::new(Counting::default(), Duration::from_millis(1));
        assert!(lookup(&r, "http://a.test:4567/").is_ok());
        std::thread::sleep(Duration::from_millis(5));
        assert!(lookup(&r, "http://a.test:4567/").is_ok());
        assert_eq!(r.inner.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_failed_lookup_is_not_kept() {
        let r = CachingResolver::new(Counting::default(), KEEP_FOR);
        assert!(lookup(&r, "http://nowhere:1/").is_err());
        assert!(lookup(&r, "http://nowhere:1/").is_err());
        assert_eq!(r.inner.0.load(Ordering::SeqCst), 2);
    }
}
