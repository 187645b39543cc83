//! Loopback stand-ins for the services around Kinesis: a scripted HTTP server
//! (credential endpoints, STS, a fake Kinesis), a relay that notes which access
//! key signed each request on its way to the emulator, and a CONNECT proxy.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

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
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        let seen = Seen {
            method,
            path,
            headers,
            body: String::from_utf8_lossy(&body).to_string(),
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
