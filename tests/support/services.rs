//! Loopback stand-ins for the services around Kinesis: a scripted HTTP server
//! (credential endpoints, STS, a fake Kinesis), an STS that checks AssumeRole's
//! signature and trust and issues short-lived keys, a relay that notes which
//! access key signed each request on its way to the emulator, and a CONNECT proxy.
#![allow(dead_code)]

use super::support::standin::{self, Authorization, Key, Request};
use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime};

/// One request a stand-in received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body as text.
    pub body: String,
    /// The request as received, for checking its signature.
    pub request: Request,
}

impl Seen {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The access key of a SigV4 `authorization` header.
    pub fn access_key(&self) -> Option<String> {
        signing_key(self.header("authorization")?.as_bytes())
    }
}

/// The access key ID after `Credential=` in a SigV4 authorization value.
fn signing_key(text: &[u8]) -> Option<String> {
    let at = find(text, b"Credential=")? + b"Credential=".len();
    let end = text[at..].iter().position(|&b| b == b'/')?;
    Some(String::from_utf8_lossy(&text[at..at + end]).to_string())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The answer a handler gives: status and body.
pub type Answer = (u16, String);

type Handler = dyn Fn(&Seen) -> Answer + Send + Sync;

/// Stops a listener thread when dropped.
struct Stopper {
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Drop for Stopper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(listener: TcpListener, each: impl Fn(TcpStream) + Send + Sync + 'static) -> Stopper {
    let stop = Arc::new(AtomicBool::new(false));
    let port = listener.local_addr().expect("local addr").port();
    let flag = stop.clone();
    let each = Arc::new(each);
    thread::spawn(move || {
        for conn in listener.incoming() {
            if flag.load(Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let each = each.clone();
            thread::spawn(move || each(conn));
        }
    });
    Stopper { stop, port }
}

/// A scripted HTTP/1.1 server on loopback that records what it is asked.
pub struct StandIn {
    /// Its port.
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    _stop: Stopper,
}

impl StandIn {
    /// Starts a server answering each request with `handler`.
    pub fn start(handler: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind stand-in");
        let port = listener.local_addr().expect("local addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let handler: Arc<Handler> = Arc::new(handler);
        let stop = serve(listener, move |conn| {
            let _ = answer_requests(conn, &*handler, &log);
        });
        StandIn {
            port,
            seen,
            _stop: stop,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn answer_requests(
    conn: TcpStream,
    handler: &Handler,
    log: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    while let Some(request) = standin::read_request(&mut reader) {
        let seen = Seen {
            method: request.method.clone(),
            path: request.target.clone(),
            headers: request
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
            body: String::from_utf8_lossy(&request.body).to_string(),
            request,
        };
        let (status, text) = handler(&seen);
        log.lock().unwrap().push(seen);
        write!(
            out,
            "HTTP/1.1 {status} Stand-in\r\ncontent-length: {}\r\ncontent-type: application/x-amz-json-1.1\r\n\r\n{text}",
            text.len()
        )?;
        out.flush()?;
    }
    Ok(())
}

/// Copies `from` to `to` until either side closes, calling `watch` on each chunk.
fn pipe(mut from: TcpStream, mut to: TcpStream, mut watch: impl FnMut(&[u8])) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                watch(&buf[..n]);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Joins two connections both ways; `watch` sees the client's bytes.
fn splice(client: TcpStream, server: TcpStream, watch: impl FnMut(&[u8])) {
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let back = thread::spawn(move || pipe(s2, c2, |_| {}));
    pipe(client, server, watch);
    let _ = back.join();
}

/// A TCP relay to a loopback port that notes the access key of every signed request.
pub struct Relay {
    /// Its port.
    pub port: u16,
    keys: Arc<Mutex<Vec<String>>>,
    _stop: Stopper,
}

impl Relay {
    /// Relays to `127.0.0.1:<target>`.
    pub fn start(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let port = listener.local_addr().expect("local addr").port();
        let keys = Arc::new(Mutex::new(Vec::new()));
        let log = keys.clone();
        let stop = serve(listener, move |client| {
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                return;
            };
            let log = log.clone();
            let mut seen: Vec<u8> = Vec::new();
            let mut scanned = 0;
            splice(client, server, move |chunk| {
                seen.extend_from_slice(chunk);
                while let Some(at) = find(&seen[scanned..], b"Credential=") {
                    let start = scanned + at;
                    match signing_key(&seen[start..]) {
                        Some(key) => {
                            scanned = start + b"Credential=".len() + key.len();
                            log.lock().unwrap().push(key);
                        }
                        None => break,
                    }
                }
            });
        });
        Relay {
            port,
            keys,
            _stop: stop,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The access key of each signed request relayed, in order.
    pub fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }
}

/// An HTTP CONNECT proxy on loopback that counts the tunnels it opens.
pub struct ConnectProxy {
    /// Its port.
    pub port: u16,
    tunnels: Arc<AtomicUsize>,
    targets: Arc<Mutex<Vec<String>>>,
    authorizations: Arc<Mutex<Vec<String>>>,
    _stop: Stopper,
}

impl ConnectProxy {
    /// Starts the proxy; it tunnels only to 127.0.0.1.
    pub fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("local addr").port();
        let tunnels = Arc::new(AtomicUsize::new(0));
        let targets = Arc::new(Mutex::new(Vec::new()));
        let authorizations = Arc::new(Mutex::new(Vec::new()));
        let (count, log, auth) = (tunnels.clone(), targets.clone(), authorizations.clone());
        let stop = serve(listener, move |client| {
            let _ = tunnel(client, &count, &log, &auth);
        });
        ConnectProxy {
            port,
            tunnels,
            targets,
            authorizations,
            _stop: stop,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Tunnels opened so far.
    pub fn tunnels(&self) -> usize {
        self.tunnels.load(Ordering::SeqCst)
    }

    /// The `host:port` of each CONNECT.
    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }

    /// The `Proxy-Authorization` value of each CONNECT that had one.
    pub fn authorizations(&self) -> Vec<String> {
        self.authorizations.lock().unwrap().clone()
    }
}

fn tunnel(
    mut client: TcpStream,
    count: &AtomicUsize,
    log: &Mutex<Vec<String>>,
    authorizations: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    // Read the request head byte by byte so no tunnelled byte is consumed.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let port = target
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok());
    let (true, Some(port)) = (method == "CONNECT", port) else {
        client.write_all(b"HTTP/1.1 405 Only CONNECT\r\ncontent-length: 0\r\n\r\n")?;
        return Ok(());
    };
    count.fetch_add(1, Ordering::SeqCst);
    log.lock().unwrap().push(target.to_string());
    let authorization = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_string())
    });
    authorizations.lock().unwrap().extend(authorization);
    let server = TcpStream::connect(("127.0.0.1", port))?;
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    splice(client, server, |_| {});
    Ok(())
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
        let server = StandIn::start(move |seen: &Seen| {
            let keys = &known;
            let mut keys = keys.lock().unwrap();
            let mut log = log.lock().unwrap();
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
        self.keys
            .lock()
            .unwrap()
            .insert(access_key.to_string(), Key::new(secret, token));
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Every request received, answered or refused.
    pub fn calls(&self) -> Vec<Seen> {
        self.server.seen()
    }

    /// The credentials issued so far, in order.
    pub fn issued(&self) -> Vec<Issued> {
        self.issued.lock().unwrap().clone()
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
    seen: &Seen,
    keys: &HashMap<String, Key>,
    roles: &[TrustedRole],
    issued: &[Issued],
) -> Result<(String, String, HashMap<String, String>), Refusal> {
    standin::authenticate(&seen.request, keys, 0, "sts").map_err(|e| {
        let code = match e.code {
            "UnrecognizedClientException" => "InvalidClientTokenId",
            "InvalidSignatureException" => "SignatureDoesNotMatch",
            "ExpiredTokenException" => "ExpiredToken",
            "IncompleteSignatureException" => "IncompleteSignature",
            _ => "MissingAuthenticationToken",
        };
        (403, code, e.message)
    })?;
    let caller = Authorization::parse(&seen.request)
        .map(|a| a.access_key)
        .unwrap_or_default();
    let form = parse_form(&seen.body);
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
