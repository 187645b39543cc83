//! The HTTP side of the benchmark's loopback Kinesis stand-ins: a thread per
//! keep-alive connection, each request handed to a handler with its operation
//! (the `X-Amz-Target` after the dot, lower-cased) and body, the handler's
//! answer sent back as JSON. Once a connection's buffers have grown it
//! allocates nothing per request but the header text, so that the fast sink is
//! never the bottleneck. Signatures are not checked.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

/// Answers one request: gets the operation (e.g. `putrecords`) and body,
/// writes the answer's body into the buffer, gives the HTTP status.
pub type Handler = dyn Fn(&str, &[u8], &mut Vec<u8>) -> u16 + Send + Sync;

/// Serves `handler` on a free loopback port for as long as the process lives;
/// gives the port.
pub fn serve(handler: Arc<Handler>) -> io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handler = Arc::clone(&handler);
            std::thread::spawn(move || {
                let _ = connection(stream, &*handler);
            });
        }
    });
    Ok(port)
}

/// Serves one keep-alive connection until the client closes it.
fn connection(mut stream: TcpStream, handler: &Handler) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut filled = 0usize;
    let mut answer: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut body_out: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        let head_end = loop {
            if let Some(i) = memchr::memmem::find(&buf[..filled], b"\r\n\r\n") {
                break i + 4;
            }
            if !read_more(&mut stream, &mut buf, &mut filled)? {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let target = header("x-amz-target").unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or_default();
        if header("expect") == Some("100-continue") && filled < head_end + length {
            stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        while filled < head_end + length {
            if !read_more(&mut stream, &mut buf, &mut filled)? {
                return Ok(());
            }
        }
        body_out.clear();
        let status = handler(operation, &buf[head_end..head_end + length], &mut body_out);
        answer.clear();
        answer.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason(status)).as_bytes());
        answer.extend_from_slice(b"Content-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\nContent-Length: ");
        answer.extend_from_slice(body_out.len().to_string().as_bytes());
        answer.extend_from_slice(b"\r\n\r\n");
        answer.extend_from_slice(&body_out);
        stream.write_all(&answer)?;
        // Keep whatever of the next request already arrived.
        let used = head_end + length;
        buf.copy_within(used..filled, 0);
        filled -= used;
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        _ => "Error",
    }
}

/// Reads more bytes into `buf` after `filled`; false at end of stream.
fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>, filled: &mut usize) -> io::Result<bool> {
    if buf.len() - *filled < 64 * 1024 {
        buf.resize((*filled + 64 * 1024).max(buf.len() * 2), 0);
    }
    let n = stream.read(&mut buf[*filled..])?;
    *filled += n;
    Ok(n > 0)
}
