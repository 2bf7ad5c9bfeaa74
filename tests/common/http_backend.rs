//! A small threaded HTTP/1.1 server for tests: parses requests with
//! httparse, reads Content-Length and chunked bodies, records everything
//! it received, and answers with what the test's handler returns.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// One request as the backend received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub target: String,
    /// 0 or 1.
    pub minor: u8,
    /// Header fields in received order and case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Trailer lines of a chunked body, raw.
    pub trailers: Vec<String>,
    /// Index of the connection it came on (0-based accept order).
    pub conn: usize,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// What the handler answers.
pub enum Reply {
    /// Status, extra header lines ("Name: value"), body (Content-Length
    /// added unless a header sets framing).
    Full(u16, Vec<String>, Vec<u8>),
    /// These bytes exactly, then keep reading requests.
    Raw(Vec<u8>),
    /// These bytes exactly, then close the connection.
    RawClose(Vec<u8>),
    /// Close without answering.
    Close,
}

pub fn ok(body: &str) -> Reply {
    Reply::Full(200, vec![], body.as_bytes().to_vec())
}

type Handler = dyn Fn(&Received) -> Reply + Send + Sync;

pub struct HttpBackend {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    bytes: Arc<AtomicU64>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl HttpBackend {
    pub fn start<F>(handler: F) -> HttpBackend
    where
        F: Fn(&Received) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let (accepted, bytes, received) = (
                Arc::clone(&accepted),
                Arc::clone(&bytes),
                Arc::clone(&received),
            );
            thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let conn = accepted.fetch_add(1, Ordering::SeqCst);
                    let (h, b, r) = (
                        Arc::clone(&handler),
                        Arc::clone(&bytes),
                        Arc::clone(&received),
                    );
                    thread::spawn(move || serve_conn(stream, conn, &*h, &b, &r));
                }
            });
        }
        HttpBackend {
            addr,
            accepted,
            bytes,
            received,
        }
    }

    /// Answers every request 200 with body "ok".
    pub fn ok() -> HttpBackend {
        HttpBackend::start(|_| ok("ok"))
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Bytes read from all connections.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// Counts bytes read from the connection.
struct Counting<'a> {
    inner: TcpStream,
    bytes: &'a AtomicU64,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

fn serve_conn(
    stream: TcpStream,
    conn: usize,
    handler: &Handler,
    bytes: &AtomicU64,
    received: &Mutex<Vec<Received>>,
) {
    let mut out = stream.try_clone().unwrap();
    let mut rd = BufReader::new(Counting {
        inner: stream,
        bytes,
    });
    loop {
        let Some(mut req) = read_head(&mut rd, conn) else {
            return;
        };
        // As most servers do, a request that expects 100-continue gets it.
        if req
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
            && out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
        {
            return;
        }
        if read_body(&mut rd, &mut req).is_none() {
            return;
        }
        let reply = handler(&req);
        let close_requested = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
            || req.minor == 0;
        received.lock().unwrap().push(req.clone());
        let (bytes_out, close) = match reply {
            Reply::Full(status, headers, body) => {
                let mut head = format!("HTTP/1.1 {status} X\r\n");
                let framed = headers.iter().any(|h| {
                    let l = h.to_ascii_lowercase();
                    l.starts_with("content-length:") || l.starts_with("transfer-encoding:")
                });
                for h in &headers {
                    head.push_str(h);
                    head.push_str("\r\n");
                }
                let bodiless = req.method == "HEAD" || status == 204 || status == 304;
                if !(framed || status == 204 || status == 304) {
                    head.push_str(&format!("Content-Length: {}\r\n", body.len()));
                }
                head.push_str("\r\n");
                let mut all = head.into_bytes();
                if !bodiless {
                    all.extend_from_slice(&body);
                }
                (all, close_requested)
            }
            Reply::Raw(b) => (b, false),
            Reply::RawClose(b) => (b, true),
            Reply::Close => return,
        };
        if out.write_all(&bytes_out).is_err() || close {
            return;
        }
    }
}

fn read_head<R: BufRead>(rd: &mut R, conn: usize) -> Option<Received> {
    let mut raw = Vec::new();
    loop {
        let mut line = Vec::new();
        if rd.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        if raw.is_empty() && (line == b"\r\n" || line == b"\n") {
            continue;
        }
        raw.extend_from_slice(&line);
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(&raw).ok()?;
    Some(Received {
        method: req.method?.to_string(),
        target: req.path?.to_string(),
        minor: req.version?,
        headers: req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: Vec::new(),
        trailers: Vec::new(),
        conn,
    })
}

fn read_body<R: BufRead>(rd: &mut R, req: &mut Received) -> Option<()> {
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let mut line = String::new();
            rd.read_line(&mut line).ok()?;
            let size = usize::from_str_radix(line.trim().split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                loop {
                    let mut t = String::new();
                    rd.read_line(&mut t).ok()?;
                    if t == "\r\n" || t.is_empty() {
                        return Some(());
                    }
                    req.trailers.push(t.trim_end().to_string());
                }
            }
            let start = req.body.len();
            req.body.resize(start + size, 0);
            rd.read_exact(&mut req.body[start..]).ok()?;
            let mut crlf = [0u8; 2];
            rd.read_exact(&mut crlf).ok()?;
        }
    }
    if let Some(len) = req.header("content-length") {
        let len: usize = len.trim().parse().ok()?;
        req.body.resize(len, 0);
        rd.read_exact(&mut req.body).ok()?;
    }
    Some(())
}

/// Reads one HTTP/1.x response from `s` (head, then a Content-Length,
/// chunked or close-delimited body; `head_request` for HEAD).
/// Returns (status, head text, body).
pub fn read_response<R: BufRead>(rd: &mut R, head_request: bool) -> Option<(u16, String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if rd.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
        return Some((status, head, body));
    }
    if lower.contains("transfer-encoding: chunked") {
        loop {
            let mut line = String::new();
            rd.read_line(&mut line).ok()?;
            let size = usize::from_str_radix(line.trim().split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                loop {
                    let mut t = String::new();
                    rd.read_line(&mut t).ok()?;
                    if t == "\r\n" || t.is_empty() {
                        break;
                    }
                    head.push_str(&format!("trailer> {t}"));
                }
                return Some((status, head, body));
            }
            let start = body.len();
            body.resize(start + size, 0);
            rd.read_exact(&mut body[start..]).ok()?;
            let mut crlf = [0u8; 2];
            rd.read_exact(&mut crlf).ok()?;
        }
    }
    if let Some(pos) = lower.find("content-length:") {
        let rest = &lower[pos + 15..];
        let len: usize = rest[..rest.find('\r')?].trim().parse().ok()?;
        body.resize(len, 0);
        rd.read_exact(&mut body).ok()?;
        return Some((status, head, body));
    }
    rd.read_to_end(&mut body).ok()?;
    Some((status, head, body))
}

/// An HTTP-mode configuration with one frontend on `{port}` and one
/// backend; `frontend_extra` / `backend_extra` are added to the sections.
pub fn http_config(frontend_extra: &str, backend_extra: &str) -> String {
    format!(
        r#"
[global]
threads = 1
maxconn = 1000

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "5m", server = "5m" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "be"
{frontend_extra}

[[backend]]
name = "be"
{backend_extra}
"#
    )
}
