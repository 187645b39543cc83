//! The one loopback HTTP/1.1 server under the harness's stand-ins and proxies:
//! it binds a free loopback port, accepts on threads, reads each request
//! (head and body, several a connection), hands it to a handler and carries
//! out the handler's reply: an answer, now or later, closing without one, or a
//! CONNECT tunnel. Proxies forward with `Forwarder`. It stops when dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a connection may sit idle between requests.
const IDLE: Duration = Duration::from_secs(60);
/// Largest answer a proxy takes from its upstream (GetRecords pages reach 10 MiB).
const MAX_UPSTREAM_ANSWER: u64 = 64 * 1024 * 1024;

/// An HTTP request as received.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Request target: path and query as sent.
    pub target: String,
    /// Headers in arrival order, names as sent.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of this name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The operation of an AWS JSON call: `x-amz-target` after its dot.
    pub fn operation(&self) -> Option<&str> {
        self.header("x-amz-target")?
            .split_once('.')
            .map(|(_, op)| op)
    }
}

/// Reads one HTTP/1.1 request; None at the end of the connection or on garbage.
fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':')?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut request = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    request.body = vec![0; length];
    reader.read_exact(&mut request.body).ok()?;
    Some(request)
}

/// An answer to send: status, headers (Content-Length is added), body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Headers besides Content-Length.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Answer {
    /// An answer with an AWS JSON content type.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            headers: vec![("Content-Type".into(), "application/x-amz-json-1.1".into())],
            body: body.into(),
        }
    }

    /// The same with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        let reason = if (200..300).contains(&self.status) {
            "OK"
        } else {
            "Error"
        };
        let mut head = format!("HTTP/1.1 {} {reason}\r\n", self.status);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        out.write_all(head.as_bytes())?;
        out.write_all(&self.body)?;
        out.flush()
    }
}

/// What the server does with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answers now.
    Answer(Answer),
    /// Answers after this long (an answer the client may give up on).
    Later(Duration, Answer),
    /// Closes the connection without an answer.
    Close,
    /// Answers a CONNECT with 200 and joins the connection to this loopback port.
    Tunnel(u16),
}

impl From<Answer> for Reply {
    fn from(answer: Answer) -> Reply {
        Reply::Answer(answer)
    }
}

/// A running server; it stops accepting, and closes its connections, when dropped.
pub struct Server {
    /// Its loopback port.
    pub port: u16,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
}

impl Server {
    /// Starts a server on a free loopback port that replies to each request with `handler`.
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(handler);
        let (stopped, open) = (Arc::clone(&stop), Arc::clone(&connections));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                // Kept even when closed: their number is the connections accepted.
                if let Ok(clone) = conn.try_clone() {
                    lock(&open).push(clone);
                }
                let (handler, stopped) = (Arc::clone(&handler), Arc::clone(&stopped));
                std::thread::spawn(move || serve(conn, &*handler, &stopped));
            }
        });
        Server {
            port,
            stop,
            connections,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The connections it has accepted so far.
    pub fn connections(&self) -> usize {
        lock(&self.connections).len()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for c in lock(&self.connections).drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

/// Locks a mutex, taking it over from a test thread that panicked while holding it.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn serve(conn: TcpStream, handler: &(impl Fn(&Request) -> Reply + ?Sized), stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(IDLE));
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    while !stop.load(Ordering::SeqCst) {
        let Some(request) = read_request(&mut reader) else {
            return;
        };
        let answer = match handler(&request) {
            Reply::Answer(answer) => answer,
            Reply::Later(wait, answer) => {
                std::thread::sleep(wait);
                answer
            }
            Reply::Close => {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
            Reply::Tunnel(port) => return tunnel(reader, writer, port),
        };
        if answer.write_to(&mut writer).is_err() {
            return;
        }
        if request
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
        {
            return;
        }
    }
}

/// Joins a client that asked for a CONNECT to a loopback port, both ways.
fn tunnel(reader: BufReader<TcpStream>, mut client: TcpStream, port: u16) {
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", port)) else {
        let _ = Answer::new(502, "no such port").write_to(&mut client);
        return;
    };
    // Bytes the client sent after its CONNECT head belong to the tunnel.
    let early = reader.buffer().to_vec();
    let answered = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
    if answered.is_err() || server.write_all(&early).is_err() {
        return;
    }
    let (Ok(client_in), Ok(server_out)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let back = std::thread::spawn(move || pipe(server, client));
    pipe(client_in, server_out);
    let _ = back.join();
}

/// Copies `from` to `to` until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

/// Sends requests on to an upstream HTTP endpoint, as a proxy does.
#[derive(Clone)]
pub struct Forwarder {
    upstream: String,
    agent: ureq::Agent,
}

impl Forwarder {
    /// Forwards to `upstream`, e.g. `http://127.0.0.1:4567`.
    pub fn new(upstream: &str) -> Forwarder {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .build()
            .into();
        Forwarder {
            upstream: upstream.trim_end_matches('/').to_string(),
            agent,
        }
    }

    /// Sends an AWS JSON call (a POST) on with its body, content type,
    /// signature and other `x-amz-` headers; the upstream's status and body,
    /// or a 502 when it cannot be reached.
    pub fn send(&self, request: &Request) -> Answer {
        let mut call = self
            .agent
            .post(format!("{}{}", self.upstream, request.target));
        for (name, value) in &request.headers {
            let lower = name.to_ascii_lowercase();
            if lower == "content-type" || lower == "authorization" || lower.starts_with("x-amz-") {
                call = call.header(name.as_str(), value.as_str());
            }
        }
        let sent = call.send(&request.body[..]).and_then(|mut r| {
            let status = r.status().as_u16();
            let body = r
                .body_mut()
                .with_config()
                .limit(MAX_UPSTREAM_ANSWER)
                .read_to_vec()?;
            Ok(Answer::new(status, body))
        });
        sent.unwrap_or_else(|e| Answer::new(502, format!("{{\"message\":\"proxy: {e}\"}}")))
    }
}
