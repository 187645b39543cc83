//! Signing and HTTP: one signed AWS JSON-protocol POST at a time, over ureq
//! with rustls and bundled root certificates.

use crate::aws::credentials::{Credentials, FixedCredentials, ProvideCredentials};
use crate::aws::network::{shown_url, Network, ProxyName};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use std::fmt;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Content type of the AWS JSON 1.1 protocol.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Content type of the AWS Query protocol (STS): a form.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// Offsets this close count as one correction.
const SAME_OFFSET_SECS: i64 = 5;

/// Largest response body we read; Kinesis answers are far smaller.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// An HTTP answer, whatever its status.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Response body.
    pub body: Vec<u8>,
    /// The server's `Date` header, when present and readable.
    pub server_date: Option<SystemTime>,
}

/// A request that got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// The host name does not resolve: the endpoint's, or the proxy's when
    /// one is set for it (the proxy resolves the endpoint).
    Dns {
        endpoint: String,
        proxy: Option<Arc<ProxyName>>,
        /// The settings that give the endpoint, as the user set them (see [`Client::set_by`]).
        set_by: &'static str,
    },
    /// Nothing accepts connections there: at the endpoint, or at the proxy when one is set for it.
    Connect {
        endpoint: String,
        detail: String,
        proxy: Option<Arc<ProxyName>>,
    },
    /// No complete answer within the time allowed.
    Timeout { endpoint: String, detail: String },
    /// The TLS handshake failed.
    Tls { endpoint: String, detail: String },
    /// The connection broke or the answer was not HTTP.
    Broken { endpoint: String, detail: String },
    /// The request could not be signed.
    Signing { detail: String },
    /// No valid credentials to sign with (temporary ones expired and could not be renewed).
    Credentials {
        /// What the credentials' source said.
        detail: String,
        /// Whether the source may answer if asked again.
        transient: bool,
    },
}

impl TransportError {
    /// No credentials to sign with, as their source said.
    pub fn from_credentials(e: crate::aws::credentials::CredentialsError) -> TransportError {
        TransportError::Credentials {
            detail: e.message,
            transient: e.transient,
        }
    }

    /// Whether the server may have received and acted on the request.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            TransportError::Timeout { .. } | TransportError::Broken { .. }
        )
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Dns {
                endpoint,
                proxy: None,
                set_by,
            } => write!(f, "cannot resolve the host of {endpoint}: check {set_by}"),
            TransportError::Dns {
                endpoint,
                proxy: Some(proxy),
                ..
            } => write!(
                f,
                "cannot resolve the host of {proxy} on the way to {endpoint}: check {}, \
                 or exempt the endpoint's host with NO_PROXY",
                proxy.variable
            ),
            TransportError::Connect {
                endpoint,
                detail,
                proxy: None,
            } => write!(
                f,
                "cannot connect to {endpoint} ({detail}): is the endpoint right and reachable?"
            ),
            TransportError::Connect {
                endpoint,
                detail,
                proxy: Some(proxy),
            } => write!(
                f,
                "cannot connect to {proxy} ({detail}) on the way to {endpoint}: is the proxy \
                 running and reachable, or should NO_PROXY exempt the endpoint's host?"
            ),
            TransportError::Timeout { endpoint, detail } => {
                write!(f, "no answer from {endpoint} in time ({detail})")
            }
            TransportError::Tls { endpoint, detail } => write!(
                f,
                "TLS handshake with {endpoint} failed ({detail}): check the URL scheme, or trust the server's CA with AWS_CA_BUNDLE"
            ),
            TransportError::Broken { endpoint, detail } => {
                write!(f, "connection to {endpoint} broke before an answer came ({detail})")
            }
            TransportError::Signing { detail } => write!(f, "cannot sign the request: {detail}"),
            TransportError::Credentials { detail, .. } => {
                write!(f, "no valid AWS credentials to sign with: {detail}")
            }
        }
    }
}

impl std::error::Error for TransportError {}

/// Timeouts for one client.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For establishing a connection (DNS, TCP, TLS).
    pub connect: Duration,
    /// For a whole request and its answer.
    pub request: Duration,
}

/// A client for one AWS service endpoint, signing every request.
pub struct Client {
    agent: ureq::Agent,
    /// The endpoint URL requests go to.
    url: String,
    /// The endpoint as messages show it.
    shown: String,
    /// The proxy requests go through, for messages.
    proxy: Option<Arc<ProxyName>>,
    region: String,
    service: &'static str,
    credentials: Arc<dyn ProvideCredentials>,
    /// Seconds to add to the local clock when signing, learnt from a skew error.
    clock_offset: AtomicI64,
    /// The settings that give the endpoint, for the message when its host does
    /// not resolve.
    set_by: &'static str,
    /// How long one request may take, unless a deadline leaves less.
    request_timeout: Duration,
}

/// What gives an endpoint unless a client is told otherwise.
pub const ENDPOINT_AND_REGION: &str = "the endpoint and the region";

impl Client {
    /// A client for `endpoint` (no trailing slash) in `region`, signing as `service`
    /// with fixed credentials, connecting directly with the bundled roots.
    pub fn new(
        endpoint: &str,
        region: &str,
        service: &'static str,
        credentials: &Credentials,
        timeouts: Timeouts,
    ) -> Client {
        Client::with_provider(
            endpoint,
            region,
            service,
            Arc::new(FixedCredentials::new(credentials)),
            &Network::default(),
            timeouts,
        )
    }

    /// A client that asks `credentials` before each request (so temporary ones are
    /// renewed) and connects as `network` says (CA bundle, proxy).
    pub fn with_provider(
        endpoint: &str,
        region: &str,
        service: &'static str,
        credentials: Arc<dyn ProvideCredentials>,
        network: &Network,
        timeouts: Timeouts,
    ) -> Client {
        Client {
            agent: network.agent(endpoint, timeouts.connect, timeouts.request),
            url: endpoint.to_string(),
            shown: shown_url(endpoint),
            proxy: network.proxy_name_for(endpoint).map(Arc::new),
            region: region.to_string(),
            service,
            credentials,
            clock_offset: AtomicI64::new(0),
            set_by: ENDPOINT_AND_REGION,
            request_timeout: timeouts.request,
        }
    }

    /// The same client, naming `set_by` (e.g. "--endpoint and --region") as the
    /// settings to check when the endpoint's host does not resolve.
    pub fn set_by(mut self, set_by: &'static str) -> Client {
        self.set_by = set_by;
        self
    }

    /// The endpoint URL this client talks to, as messages show it (no user
    /// name, password or query, see [`shown_url`]).
    pub fn endpoint(&self) -> &str {
        &self.shown
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Corrects the signing clock from a server's `Date`; returns the new
    /// offset in seconds, or None when it was already about that (another
    /// call in flight met the same skew and corrected it first).
    pub fn correct_clock(&self, server_date: SystemTime) -> Option<i64> {
        let offset = match server_date.duration_since(SystemTime::now()) {
            Ok(ahead) => ahead.as_secs() as i64,
            Err(behind) => -(behind.duration().as_secs() as i64),
        };
        let before = self.clock_offset.swap(offset, Ordering::Relaxed);
        // The server's Date has whole seconds; a call's round trip adds a few.
        ((before - offset).abs() > SAME_OFFSET_SECS).then_some(offset)
    }

    fn signing_time(&self) -> SystemTime {
        let offset = self.clock_offset.load(Ordering::Relaxed);
        let now = SystemTime::now();
        if offset >= 0 {
            now + Duration::from_secs(offset as u64)
        } else {
            now - Duration::from_secs(offset.unsigned_abs())
        }
    }

    /// POSTs a JSON-protocol call (`X-Amz-Target: <target>`) and returns the answer, any status.
    pub fn post(&self, target: &str, body: &[u8]) -> Result<Reply, TransportError> {
        self.post_by(target, body, None)
    }

    /// `post`, given up (as a timeout) at `deadline` when that comes before
    /// the request timeout: a wait that ends at a deadline must not outlast
    /// it in a call.
    pub fn post_by(
        &self,
        target: &str,
        body: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Reply, TransportError> {
        self.send(
            &[("content-type", CONTENT_TYPE), ("x-amz-target", target)],
            body,
            deadline,
        )
    }

    /// POSTs a Query-protocol form (STS) and returns the answer, any status.
    pub fn post_form(&self, form: &str) -> Result<Reply, TransportError> {
        self.send(
            &[("content-type", FORM_CONTENT_TYPE)],
            form.as_bytes(),
            None,
        )
    }

    /// POSTs `body` to the endpoint's root with `headers`, signed, within
    /// the request timeout and `deadline`.
    fn send(
        &self,
        headers: &[(&str, &str)],
        body: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Reply, TransportError> {
        let url = format!("{}/", self.url);
        let signed = self.sign(&url, headers, body)?;
        let mut request = self.agent.post(&url);
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(TransportError::Timeout {
                    endpoint: self.shown.clone(),
                    detail: "no time was left before the deadline".into(),
                });
            }
            let timeout = left.min(self.request_timeout);
            request = request.config().timeout_global(Some(timeout)).build();
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        for (name, value) in &signed {
            request = request.header(name.as_str(), value.as_str());
        }
        let mut response = request.send(body).map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let server_date = response
            .headers()
            .get("date")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date);
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| self.transport_error(e))?;
        Ok(Reply {
            status,
            body,
            server_date,
        })
    }

    /// The headers that sign this request (x-amz-date, authorization, token).
    fn sign(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>, TransportError> {
        let identity = self
            .credentials
            .identity()
            .map_err(TransportError::from_credentials)?;
        let request = Unsigned {
            method: "POST",
            url,
            headers,
            body,
        };
        let scope = Scope {
            region: &self.region,
            service: self.service,
            time: self.signing_time(),
        };
        sign_with(&identity, &scope, &request)
    }

    fn transport_error(&self, e: ureq::Error) -> TransportError {
        let endpoint = self.shown.clone();
        let proxy = self.proxy.clone();
        match e {
            ureq::Error::HostNotFound => TransportError::Dns {
                endpoint,
                proxy,
                set_by: self.set_by,
            },
            ureq::Error::ConnectionFailed => TransportError::Connect {
                endpoint,
                detail: "connection failed".into(),
                proxy,
            },
            ureq::Error::Timeout(t) => TransportError::Timeout {
                endpoint,
                detail: format!("{t} timeout"),
            },
            ureq::Error::Io(io) if is_tls(&io) => TransportError::Tls {
                endpoint,
                detail: io.to_string(),
            },
            // std's resolver reports a failed lookup as an uncategorised I/O error.
            ureq::Error::Io(io) if io.to_string().contains("failed to lookup address") => {
                TransportError::Dns {
                    endpoint,
                    proxy,
                    set_by: self.set_by,
                }
            }
            ureq::Error::Io(io) => match io.kind() {
                ErrorKind::ConnectionRefused => TransportError::Connect {
                    endpoint,
                    detail: "connection refused".into(),
                    proxy,
                },
                ErrorKind::TimedOut | ErrorKind::WouldBlock => TransportError::Timeout {
                    endpoint,
                    detail: io.to_string(),
                },
                _ => TransportError::Broken {
                    endpoint,
                    detail: io.to_string(),
                },
            },
            ureq::Error::Tls(detail) => TransportError::Tls {
                endpoint,
                detail: detail.to_string(),
            },
            ureq::Error::Rustls(e) => TransportError::Tls {
                endpoint,
                detail: e.to_string(),
            },
            other => TransportError::Broken {
                endpoint,
                detail: other.to_string(),
            },
        }
    }
}

/// Whether an I/O error is rustls refusing the connection (certificate, protocol).
fn is_tls(io: &std::io::Error) -> bool {
    io.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

/// A request to sign: what SigV4 covers besides the host (taken from the URL).
#[derive(Debug, Clone, Copy)]
pub struct Unsigned<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Full URL, with any query.
    pub url: &'a str,
    /// Headers to sign, besides host.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub body: &'a [u8],
}

/// Where and when a signature is valid.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// Region, e.g. `us-east-1`.
    pub region: &'a str,
    /// Service signing name, e.g. `kinesis`.
    pub service: &'a str,
    /// Signing time.
    pub time: SystemTime,
}

/// Signs a request with SigV4 as this program's client does; returns the
/// headers to add (x-amz-date, authorization, x-amz-security-token).
pub fn sign_request(
    credentials: &Credentials,
    scope: &Scope<'_>,
    request: &Unsigned<'_>,
) -> Result<Vec<(String, String)>, TransportError> {
    let identity = FixedCredentials::new(credentials)
        .identity()
        .map_err(TransportError::from_credentials)?;
    sign_with(&identity, scope, request)
}

fn sign_with(
    identity: &Identity,
    scope: &Scope<'_>,
    request: &Unsigned<'_>,
) -> Result<Vec<(String, String)>, TransportError> {
    let signing_error = |e: &dyn fmt::Display| TransportError::Signing {
        detail: e.to_string(),
    };
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(scope.region)
        .name(scope.service)
        .time(scope.time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| signing_error(&e))?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        request.headers.iter().copied(),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| signing_error(&e))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| signing_error(&e))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect())
}

/// Parses an HTTP `Date` header (IMF-fixdate).
pub fn parse_http_date(value: &str) -> Option<SystemTime> {
    use aws_smithy_types::date_time::{DateTime, Format};
    let parsed = DateTime::from_str(value.trim(), Format::HttpDate).ok()?;
    SystemTime::try_from(parsed).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Kinesis client signing with `creds` for an address nothing answers on.
    fn client(creds: &Credentials) -> Client {
        let timeouts = Timeouts {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(1),
        };
        Client::new(
            "http://127.0.0.1:9",
            "us-east-1",
            "kinesis",
            creds,
            timeouts,
        )
    }

    #[test]
    fn parses_http_dates() {
        let t = parse_http_date("Wed, 25 Nov 2026 21:54:12 GMT").unwrap();
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 1_795_643_652);
        assert!(parse_http_date("yesterday").is_none());
    }

    #[test]
    fn clock_correction_shifts_signing_time() {
        let creds = Credentials {
            access_key_id: "AK".into(),
            secret_access_key: crate::aws::secret::Secret::new("SK"),
            session_token: None,
            source: "test",
        };
        let c = client(&creds);
        let offset = c
            .correct_clock(SystemTime::now() + Duration::from_secs(3600))
            .expect("a new offset");
        assert!((3598..=3600).contains(&offset), "{offset}");
        assert_eq!(
            c.correct_clock(SystemTime::now() + Duration::from_secs(3601)),
            None,
            "the same skew met by another call is one correction"
        );
        let skew = c
            .signing_time()
            .duration_since(SystemTime::now())
            .unwrap()
            .as_secs();
        assert!((3598..=3600).contains(&skew));
    }

    #[test]
    fn signs_with_date_and_authorization() {
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: crate::aws::secret::Secret::new(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            ),
            session_token: Some(crate::aws::secret::Secret::new("TOKEN")),
            source: "test",
        };
        let c = client(&creds);
        let headers = c
            .sign(
                "http://127.0.0.1:9/",
                &[
                    ("content-type", CONTENT_TYPE),
                    ("x-amz-target", "Kinesis_20131202.ListStreams"),
                ],
                b"{}",
            )
            .unwrap();
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let auth = get("authorization").unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
        assert!(auth.contains("/us-east-1/kinesis/aws4_request"));
        assert!(auth.contains(
            "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        ));
        assert_eq!(get("x-amz-security-token").as_deref(), Some("TOKEN"));
        assert!(get("x-amz-date").is_some());
    }
}
