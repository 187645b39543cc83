//! Loopback stand-ins for the services around Kinesis: a scripted HTTP server
//! (credential endpoints, STS, a fake Kinesis), an STS that checks AssumeRole's
//! signature and trust and issues short-lived keys, a relay that notes which
//! access key signed each request on its way to the emulator, and a CONNECT proxy.

use super::http_server::{lock, Answer, Forwarder, Reply, Request, Server};
use super::standin::{self, signer, Key};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A scripted HTTP/1.1 server on loopback that records what it is asked.
pub struct StandIn {
    /// Its port.
    pub port: u16,
    seen: Arc<Mutex<Vec<Request>>>,
    server: Server,
}

impl StandIn {
    /// Starts a server answering each request with `handler`: (status, body).
    pub fn start(handler: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static) -> StandIn {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let server = Server::start(move |request| {
            let (status, body) = handler(request);
            lock(&log).push(request.clone());
            Reply::Answer(Answer::new(status, body))
        });
        StandIn {
            port: server.port,
            seen,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Everything received so far.
    pub fn seen(&self) -> Vec<Request> {
        lock(&self.seen).clone()
    }
}

/// A credentials document as the ECS container endpoint and EC2 instance
/// metadata serve it: `key`, `secret` and `token`, expiring in `expires_in` s.
pub fn credentials_document(key: &str, secret: &str, token: &str, expires_in: u64) -> String {
    serde_json::json!({
        "Code": "Success",
        "Type": "AWS-HMAC",
        "AccessKeyId": key,
        "SecretAccessKey": secret,
        "Token": token,
        "Expiration": in_secs(expires_in),
    })
    .to_string()
}

/// An EC2 instance metadata (IMDSv2) stand-in: a session token from `PUT
/// /latest/api/token`, then, with that token only, the role `instance-role`
/// and its `document`.
pub fn imds(document: String) -> StandIn {
    StandIn::start(move |seen: &Request| {
        let token_ok = seen.header("x-aws-ec2-metadata-token") == Some("imds-session");
        match (seen.method.as_str(), seen.target.as_str()) {
            ("PUT", "/latest/api/token")
                if seen
                    .header("x-aws-ec2-metadata-token-ttl-seconds")
                    .is_some() =>
            {
                (200, "imds-session".into())
            }
            ("GET", "/latest/meta-data/iam/security-credentials/") if token_ok => {
                (200, "instance-role\n".into())
            }
            ("GET", "/latest/meta-data/iam/security-credentials/instance-role") if token_ok => {
                (200, document.clone())
            }
            _ => (401, String::new()),
        }
    })
}

/// A proxy to a loopback endpoint that notes the access key of every signed request.
pub struct Relay {
    keys: Arc<Mutex<Vec<String>>>,
    server: Server,
}

impl Relay {
    /// Relays to `127.0.0.1:<target>`.
    pub fn start(target: u16) -> Relay {
        let keys = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&keys);
        let upstream = Forwarder::new(&format!("http://127.0.0.1:{target}"));
        let server = Server::start(move |request| {
            lock(&log).extend(signer(request));
            Reply::Answer(upstream.send(request))
        });
        Relay { keys, server }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The access key of each signed request relayed, in order.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.keys).clone()
    }
}

/// An HTTP CONNECT proxy on loopback that counts the tunnels it opens.
pub struct ConnectProxy {
    /// Its port.
    pub port: u16,
    tunnels: Arc<AtomicUsize>,
    targets: Arc<Mutex<Vec<String>>>,
    authorizations: Arc<Mutex<Vec<String>>>,
    server: Server,
}

impl ConnectProxy {
    /// Starts the proxy; it tunnels only to 127.0.0.1.
    pub fn start() -> ConnectProxy {
        let tunnels = Arc::new(AtomicUsize::new(0));
        let targets = Arc::new(Mutex::new(Vec::new()));
        let authorizations = Arc::new(Mutex::new(Vec::new()));
        let (count, log, auth) = (tunnels.clone(), targets.clone(), authorizations.clone());
        let server = Server::start(move |request| {
            let port = request
                .target
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok());
            let (true, Some(port)) = (request.method == "CONNECT", port) else {
                return Reply::Answer(Answer::new(405, "Only CONNECT"));
            };
            count.fetch_add(1, Ordering::SeqCst);
            lock(&log).push(request.target.clone());
            lock(&auth).extend(request.header("proxy-authorization").map(str::to_string));
            Reply::Tunnel(port)
        });
        ConnectProxy {
            port: server.port,
            tunnels,
            targets,
            authorizations,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Tunnels opened so far.
    pub fn tunnels(&self) -> usize {
        self.tunnels.load(Ordering::SeqCst)
    }

    /// The `host:port` of each CONNECT.
    pub fn targets(&self) -> Vec<String> {
        lock(&self.targets).clone()
    }

    /// The `Proxy-Authorization` value of each CONNECT that had one.
    pub fn authorizations(&self) -> Vec<String> {
        lock(&self.authorizations).clone()
    }
}

/// An ISO 8601 time `secs` from now.
pub fn in_secs(secs: u64) -> String {
    let t = SystemTime::now() + Duration::from_secs(secs);
    let dt = aws_smithy_types::DateTime::from(t);
    dt.fmt(aws_smithy_types::date_time::Format::DateTime)
        .expect("a time formats")
}

/// The account of the roles the STS stand-in knows.
pub const STS_ACCOUNT: &str = "123456789012";

/// A role the STS stand-in lets principals assume.
#[derive(Debug, Clone)]
pub struct TrustedRole {
    /// The role's ARN.
    pub arn: String,
    /// Who may assume it, as its trust policy says: long-term access keys, or
    /// role ARNs (then any key issued for that role).
    pub principals: Vec<String>,
    /// The `sts:ExternalId` the trust policy requires.
    pub external_id: Option<String>,
}

impl TrustedRole {
    /// `arn:aws:iam::<STS_ACCOUNT>:role/<name>`, assumable by `principals`.
    pub fn new(name: &str, principals: &[&str], external_id: Option<&str>) -> TrustedRole {
        TrustedRole {
            arn: role_arn(name),
            principals: principals.iter().map(|p| p.to_string()).collect(),
            external_id: external_id.map(str::to_string),
        }
    }
}

/// The ARN of role `name` in the stand-in's account.
pub fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{STS_ACCOUNT}:role/{name}")
}

/// Credentials the STS stand-in issued, and the call that asked for them.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The role they are for.
    pub role: String,
    /// The access key that signed the AssumeRole call.
    pub signed_by: String,
    /// The call's form fields.
    pub form: HashMap<String, String>,
    /// The issued access key.
    pub access_key: String,
    /// Its secret: must never appear in anything the program prints.
    pub secret: String,
    /// Its session token: must never appear in anything the program prints.
    pub token: String,
}

/// STS on loopback: checks each AssumeRole's SigV4 signature (service `sts`,
/// with the same verifier as the Kinesis stand-in), the caller's key and token,
/// the role's trust and external id, then issues temporary credentials that
/// last `lifetime` and hands them to `on_issue` (to make the Kinesis stand-in
/// accept them). Issued keys can themselves assume roles that trust their role.
pub struct Sts {
    server: StandIn,
    keys: Arc<Mutex<HashMap<String, Key>>>,
    issued: Arc<Mutex<Vec<Issued>>>,
}

impl Sts {
    /// Starts it knowing the long-term `base` keys (access key, secret).
    pub fn start(
        base: &[(&str, &str)],
        roles: Vec<TrustedRole>,
        lifetime: Duration,
        on_issue: impl Fn(&Issued) + Send + Sync + 'static,
    ) -> Sts {
        let keys: HashMap<String, Key> = base
            .iter()
            .map(|(id, secret)| (id.to_string(), Key::new(secret, None)))
            .collect();
        let keys = Arc::new(Mutex::new(keys));
        let issued = Arc::new(Mutex::new(Vec::<Issued>::new()));
        let (known, log) = (keys.clone(), issued.clone());
        let server = StandIn::start(move |seen: &Request| {
            let mut keys = lock(&known);
            let mut log = lock(&log);
            match assume_role(seen, &keys, &roles, &log) {
                Err((status, code, message)) => (status, sts_error(code, &message)),
                Ok((role, signed_by, form)) => {
                    let n = log.len() + 1;
                    let nonce = std::process::id();
                    let new = Issued {
                        role,
                        signed_by,
                        form,
                        access_key: format!("ASIASTSISSUED{n:07}"),
                        secret: format!("sts/issued+secret-{n}-{nonce}-q8Zr3"),
                        token: format!("sts-issued-session-token-{n}-{nonce}-Wk2v9Lp"),
                    };
                    keys.insert(
                        new.access_key.clone(),
                        Key::new(&new.secret, Some(&new.token)),
                    );
                    on_issue(&new);
                    let answer = format!(
                        "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>\
                         <AssumedRoleUser><Arn>{}</Arn><AssumedRoleId>AROA:{}</AssumedRoleId></AssumedRoleUser>\
                         <Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
                         <SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>\
                         </AssumeRoleResult></AssumeRoleResponse>",
                        new.role,
                        new.form.get("RoleSessionName").cloned().unwrap_or_default(),
                        new.access_key,
                        new.secret,
                        new.token,
                        in_secs(lifetime.as_secs())
                    );
                    log.push(new);
                    (200, answer)
                }
            }
        });
        Sts {
            server,
            keys,
            issued,
        }
    }

    /// Knows one more key, e.g. temporary credentials from another source.
    pub fn trust_key(&self, access_key: &str, secret: &str, token: Option<&str>) {
        lock(&self.keys).insert(access_key.to_string(), Key::new(secret, token));
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Every request received, answered or refused.
    pub fn calls(&self) -> Vec<Request> {
        self.server.seen()
    }

    /// The credentials issued so far, in order.
    pub fn issued(&self) -> Vec<Issued> {
        lock(&self.issued).clone()
    }
}

/// An STS error answer (Query API XML).
pub fn sts_error(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>{}</Message></Error><RequestId>standin</RequestId></ErrorResponse>",
        message.replace('&', "&amp;").replace('<', "&lt;")
    )
}

type Refusal = (u16, &'static str, String);

/// Checks one AssumeRole call as STS would: signature, key and token, action,
/// trust, external id, duration. Ok: the role, the caller's key, the form.
fn assume_role(
    seen: &Request,
    keys: &HashMap<String, Key>,
    roles: &[TrustedRole],
    issued: &[Issued],
) -> Result<(String, String, HashMap<String, String>), Refusal> {
    standin::authenticate(seen, keys, 0, "sts").map_err(|e| {
        let code = match e.code {
            "UnrecognizedClientException" => "InvalidClientTokenId",
            "InvalidSignatureException" => "SignatureDoesNotMatch",
            "ExpiredTokenException" => "ExpiredToken",
            "IncompleteSignatureException" => "IncompleteSignature",
            _ => "MissingAuthenticationToken",
        };
        (403, code, e.message)
    })?;
    let caller = signer(seen).unwrap_or_default();
    let form = parse_form(&seen.text());
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if field("Action") != "AssumeRole" || field("Version") != "2011-06-15" {
        return Err((
            400,
            "InvalidAction",
            format!(
                "Could not find operation {} for version {}",
                field("Action"),
                field("Version")
            ),
        ));
    }
    let arn = field("RoleArn");
    let denied = || {
        (
            403,
            "AccessDenied",
            format!("User: arn:aws:iam::{STS_ACCOUNT}:user/loader is not authorized to perform: sts:AssumeRole on resource: {arn}"),
        )
    };
    let role = roles.iter().find(|r| r.arn == arn).ok_or_else(denied)?;
    let caller_role = issued
        .iter()
        .find(|i| i.access_key == caller)
        .map(|i| i.role.as_str());
    let trusted = role
        .principals
        .iter()
        .any(|p| *p == caller || Some(p.as_str()) == caller_role);
    if !trusted || role.external_id.as_deref() != form.get("ExternalId").map(String::as_str) {
        return Err(denied());
    }
    let session = field("RoleSessionName");
    let duration = field("DurationSeconds").parse::<u32>().unwrap_or(0);
    if !(2..=64).contains(&session.len()) || !(900..=43_200).contains(&duration) {
        return Err((400, "ValidationError", "1 validation error detected".into()));
    }
    Ok((role.arn.clone(), caller, form))
}

/// The fields of a form body, decoded.
pub fn parse_form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (standin::percent_decode(k), standin::percent_decode(v))
        })
        .collect()
}
