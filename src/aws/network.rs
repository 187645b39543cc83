//! How connections are made, as the AWS tools do it: extra trusted CAs from
//! `AWS_CA_BUNDLE`, and proxies from `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY`
//! chosen by the target's scheme, with `NO_PROXY` exceptions; and URLs as
//! messages show them.

use crate::aws::dns::CachingResolver;
use crate::aws::environment::Env;
use crate::aws::tls::Trust;
use rustls::pki_types::CertificateDer;
use std::fmt;
use std::time::Duration;
use ureq::tls::PemItem;

/// The connections an agent keeps open to one host between calls: as many as
/// calls may be in flight at once (the engine's ceiling is this number).
pub const MAX_CONNECTIONS: usize = 64;

/// The environment cannot be used to make connections (bad CA bundle or proxy URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkError(pub String);

impl fmt::Display for NetworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NetworkError {}

/// A proxy as messages name it: its URL (as [`shown_url`] shows it) and the
/// variable it was set in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyName {
    /// The proxy's URL, without user name or password.
    pub url: String,
    /// The variable it came from, e.g. `HTTPS_PROXY` or `all_proxy`.
    pub variable: String,
}

impl fmt::Display for ProxyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the proxy {} (from {})", self.url, self.variable)
    }
}

/// A proxy from the environment and its name.
#[derive(Clone)]
struct ProxySetting {
    proxy: ureq::Proxy,
    name: ProxyName,
}

/// Connection settings read once from the environment.
#[derive(Clone, Default)]
pub struct Network {
    /// The bundled roots, plus `AWS_CA_BUNDLE`'s certificates when it is set.
    trust: Trust,
    /// Whether `AWS_CA_BUNDLE` was set.
    bundle: bool,
    https_proxy: Option<ProxySetting>,
    http_proxy: Option<ProxySetting>,
    no_proxy: Vec<String>,
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Proxy URLs may carry passwords: show only whether they are set.
        f.debug_struct("Network")
            .field("extra_roots", &self.bundle)
            .field("https_proxy", &self.https_proxy.is_some())
            .field("http_proxy", &self.http_proxy.is_some())
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl Network {
    /// Reads `AWS_CA_BUNDLE`, the proxy variables (upper or lower case) and `NO_PROXY`.
    pub fn from_env(env: Env) -> Result<Network, NetworkError> {
        let (trust, bundle) = match env("AWS_CA_BUNDLE") {
            Some(path) => (
                Trust::with_bundle(read_bundle(&path)?).map_err(|e| {
                    NetworkError(format!("AWS_CA_BUNDLE file {path} cannot be used: {e}"))
                })?,
                true,
            ),
            None => (Trust::default(), false),
        };
        // The value and the name it was found under, upper case first.
        let var = |upper: &str| {
            let lower = upper.to_ascii_lowercase();
            env(upper)
                .map(|v| (upper.to_string(), v))
                .or_else(|| env(&lower).map(|v| (lower, v)))
        };
        let proxy = |name: &str| -> Result<Option<ProxySetting>, NetworkError> {
            let Some((source, url)) = var(name).or_else(|| var("ALL_PROXY")) else {
                return Ok(None);
            };
            let proxy = ureq::Proxy::new(url.trim()).map_err(|e| {
                NetworkError(format!(
                    "{source} is not a usable proxy URL ({e}); expected e.g. http://proxy.example:3128"
                ))
            })?;
            // ureq is built without SOCKS support, and would bypass (or panic on) such a proxy.
            match proxy.protocol() {
                ureq::ProxyProtocol::Http | ureq::ProxyProtocol::Https => Ok(Some(ProxySetting {
                    proxy,
                    name: ProxyName {
                        url: shown_url(url.trim()),
                        variable: source,
                    },
                })),
                _ => Err(NetworkError(format!(
                    "{source} names a SOCKS proxy ({}), which this program does not support; \
                     use an HTTP proxy (CONNECT), e.g. http://proxy.example:3128",
                    shown_url(url.trim())
                ))),
            }
        };
        let no_proxy = var("NO_PROXY")
            .map(|(_, list)| {
                list.split(',')
                    .map(|e| e.trim().to_ascii_lowercase())
                    .filter(|e| !e.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Network {
            trust,
            bundle,
            https_proxy: proxy("HTTPS_PROXY")?,
            http_proxy: proxy("HTTP_PROXY")?,
            no_proxy,
        })
    }

    /// The proxy to reach `url` through, if any.
    pub fn proxy_for(&self, url: &str) -> Option<&ureq::Proxy> {
        self.setting_for(url).map(|s| &s.proxy)
    }

    /// The name of the proxy to reach `url` through, if any, for messages.
    pub fn proxy_name_for(&self, url: &str) -> Option<ProxyName> {
        self.setting_for(url).map(|s| s.name.clone())
    }

    fn setting_for(&self, url: &str) -> Option<&ProxySetting> {
        let uri: ureq::http::Uri = url.parse().ok()?;
        let setting = match uri.scheme_str() {
            Some("https") => self.https_proxy.as_ref(),
            _ => self.http_proxy.as_ref(),
        }?;
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
        if self.bypasses(&host.to_ascii_lowercase()) {
            return None;
        }
        Some(setting)
    }

    /// Whether `NO_PROXY` exempts `host`: `*`, the host itself, or a domain it is in
    /// (`example.com` and `.example.com` both cover `api.example.com`), as curl reads it.
    fn bypasses(&self, host: &str) -> bool {
        self.no_proxy.iter().any(|entry| {
            let entry = entry.trim_start_matches("*.").trim_start_matches('.');
            // An entry may name a port; hosts are compared without it.
            let entry = match entry.rsplit_once(':') {
                Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => {
                    h
                }
                _ => entry,
            };
            entry == "*"
                || host == entry
                || host
                    .strip_suffix(entry)
                    .is_some_and(|rest| rest.ends_with('.'))
        })
    }

    /// An HTTP agent for requests to `url`: this trust, the proxy for its scheme,
    /// no redirects, and any status returned as an answer rather than an error.
    pub fn agent(&self, url: &str, connect: Duration, request: Duration) -> ureq::Agent {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(connect))
            .timeout_global(Some(request))
            .user_agent(concat!("destination-kinesis/", env!("CARGO_PKG_VERSION")))
            .max_redirects(0)
            // ureq keeps 3 idle connections a host by default: with more calls
            // in flight, every answer past the third would close its connection
            // and the next call open (and on HTTPS, handshake) a new one.
            .max_idle_connections(MAX_CONNECTIONS)
            .max_idle_connections_per_host(MAX_CONNECTIONS)
            .proxy(self.proxy_for(url).cloned())
            .build();
        ureq::Agent::with_parts(config, self.trust.connector(), CachingResolver::default())
    }
}

/// A URL as it may be printed: whatever stands before an `@` (a user name and
/// password) replaced by `***`, and the query and fragment (which may carry a
/// token) dropped. Every message that shows an endpoint, proxy or credential
/// service URL shows it through this.
pub fn shown_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let (scheme, rest) = url.split_at(start);
    // A password may itself hold `/`, `?`, `#` or `@`: all before the last `@` goes.
    let (user_info, rest) = match rest.rfind('@') {
        Some(at) => ("***@", &rest[at + 1..]),
        None => ("", rest),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    format!("{scheme}{user_info}{rest}")
}

/// Refuses a URL with a user name or password (`http://user:pass@host`) where
/// none is used: requests to AWS are signed with the AWS keys instead, and the
/// password would end up in messages. The problem, for "`<what>` <problem>".
pub fn refuse_user_info(url: &str) -> Result<(), String> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority = url[start..]
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    if authority.contains('@') {
        return Err(format!(
            "must not hold a user name or password (`{}`): requests are signed with the AWS keys; \
             remove the part before `@`",
            shown_url(url)
        ));
    }
    Ok(())
}

/// Every certificate in the PEM file at `path`.
fn read_bundle(path: &str) -> Result<Vec<CertificateDer<'static>>, NetworkError> {
    let pem = std::fs::read(path)
        .map_err(|e| NetworkError(format!("cannot read AWS_CA_BUNDLE file {path}: {e}")))?;
    let mut extra = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => extra.push(CertificateDer::from(cert.der().to_vec())),
            Ok(_) => {}
            Err(e) => {
                return Err(NetworkError(format!(
                    "AWS_CA_BUNDLE file {path} is not valid PEM: {e}"
                )))
            }
        }
    }
    if extra.is_empty() {
        return Err(NetworkError(format!(
            "AWS_CA_BUNDLE file {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(extra)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn network(pairs: &[(&str, &str)]) -> Result<Network, NetworkError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Network::from_env(&move |k: &str| map.get(k).cloned())
    }

    #[test]
    fn proxy_chosen_by_scheme() {
        let n = network(&[
            ("HTTPS_PROXY", "http://secure-proxy:3128"),
            ("http_proxy", "http://plain-proxy:8080"),
        ])
        .unwrap();
        assert_eq!(
            n.proxy_for("https://kinesis.us-east-1.amazonaws.com")
                .map(|p| p.host().to_string()),
            Some("secure-proxy".into())
        );
        assert_eq!(
            n.proxy_for("http://127.0.0.1:4567").map(|p| p.port()),
            Some(8080)
        );
        let only_all = network(&[("ALL_PROXY", "http://all:1")]).unwrap();
        assert!(only_all.proxy_for("https://x.example").is_some());
        let named = |n: &Network, url: &str| n.proxy_name_for(url).map(|p| p.to_string());
        assert_eq!(
            named(&n, "http://127.0.0.1:4567").as_deref(),
            Some("the proxy http://plain-proxy:8080 (from http_proxy)")
        );
        assert_eq!(
            named(&only_all, "http://x").as_deref(),
            Some("the proxy http://all:1 (from ALL_PROXY)")
        );
        let secret = network(&[("HTTPS_PROXY", "http://u:hunter2@p:3128")]).unwrap();
        assert_eq!(
            named(&secret, "https://x").as_deref(),
            Some("the proxy http://***@p:3128 (from HTTPS_PROXY)")
        );
        assert!(network(&[])
            .unwrap()
            .proxy_for("https://x.example")
            .is_none());
    }

    #[test]
    fn no_proxy_exempts_hosts_and_domains() {
        let n = network(&[
            ("HTTPS_PROXY", "http://p:3128"),
            ("HTTP_PROXY", "http://p:3128"),
            (
                "NO_PROXY",
                "localhost, 127.0.0.1,.internal.example,amazonaws.com:443",
            ),
        ])
        .unwrap();
        for exempt in [
            "http://127.0.0.1:4567",
            "http://LOCALHOST:1",
            "https://a.internal.example",
            "https://internal.example",
            "https://kinesis.us-east-1.amazonaws.com",
        ] {
            assert!(n.proxy_for(exempt).is_none(), "{exempt}");
        }
        for proxied in [
            "https://notamazonaws.com",
            "http://127.0.0.2",
            "https://example",
        ] {
            assert!(n.proxy_for(proxied).is_some(), "{proxied}");
        }
        let all = network(&[("HTTP_PROXY", "http://p:1"), ("no_proxy", "*")]).unwrap();
        assert!(all.proxy_for("http://anything").is_none());
    }

    #[test]
    fn bad_settings_are_named() {
        let e = network(&[("HTTPS_PROXY", "ftp://p")]).unwrap_err();
        assert!(e.0.contains("HTTPS_PROXY"), "{e}");
        let e = network(&[("AWS_CA_BUNDLE", "/nonexistent/ca.pem")]).unwrap_err();
        assert!(e.0.contains("AWS_CA_BUNDLE") && e.0.contains("/nonexistent/ca.pem"));
        let dir = std::env::temp_dir().join(format!("dk-net-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_pem = dir.join("empty.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let e = network(&[("AWS_CA_BUNDLE", not_pem.to_str().unwrap())]).unwrap_err();
        assert!(e.0.contains("no PEM certificate"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn secrets_in_proxy_urls_hidden() {
        let n = network(&[("HTTPS_PROXY", "http://user:hunter2@p:3128")]).unwrap();
        assert!(!format!("{n:?}").contains("hunter2"));
        let e = network(&[("HTTPS_PROXY", "socks5://user:hunter2@p:1080")]).unwrap_err();
        assert!(
            e.0.contains("HTTPS_PROXY names a SOCKS proxy (socks5://***@p:1080)"),
            "{e}"
        );
    }

    #[test]
    fn urls_are_shown_without_user_info_or_query() {
        for (url, shown) in [
            ("http://127.0.0.1:4566", "http://127.0.0.1:4566"),
            ("http://user:pass@host:1", "http://***@host:1"),
            ("http://user@host", "http://***@host"),
            ("https://u:p/a?s#s@host:2/x", "https://***@host:2/x"),
            (
                "http://h:1/v2/credentials?token=abc#f",
                "http://h:1/v2/credentials",
            ),
            ("http://u:p@h/path?x=@y", "http://***@y"),
            ("user:pass@host", "***@host"),
            (
                "kinesis.us-east-1.amazonaws.com",
                "kinesis.us-east-1.amazonaws.com",
            ),
        ] {
            assert_eq!(shown_url(url), shown, "{url}");
        }
        assert!(refuse_user_info("http://127.0.0.1:1/a@b").is_ok());
        assert!(refuse_user_info("https://kinesis.eu-west-1.amazonaws.com").is_ok());
        for bad in ["http://u:secret@h", "http://u@h:1/", "u:secret@h"] {
            let problem = refuse_user_info(bad).unwrap_err();
            assert!(
                problem.starts_with("must not hold a user name or password")
                    && !problem.contains("secret"),
                "{problem}"
            );
        }
    }
}
