//! Running one check against one server: a TCP connect, a `tcp-check`
//! script, or an HTTP request, each step bounded by the check timeouts.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::outcome::{describe_io_error, CheckOutcome, Status};
use crate::config::SendProxy;
use crate::config::{
    CheckKind, HttpCheck, HttpTest, Pattern, ServerCheck, TcpCheckAction, TcpCheckRule, Timeouts,
};
use crate::http::{BodyFraming, ChunkedScanner, HeadLimits, Method, ParseStatus, ResponseParser};
use crate::net::proxy_protocol::{write_header, SendVersion};

/// What one check needs to know, borrowed from the configuration.
pub struct Probe<'a> {
    pub kind: &'a CheckKind,
    pub check: &'a ServerCheck,
    /// Where the check connects: `check.addr`, or the runtime API's new
    /// server address (`set server ... addr`).
    pub target: SocketAddr,
    pub timeouts: &'a Timeouts,
    /// How much of a response is kept for matching (`tune.bufsize`).
    pub bufsize: usize,
}

impl Probe<'_> {
    /// HAProxy: with `timeout check` the connect gets min(`timeout
    /// connect`, `inter`); without it, `inter` bounds the check.
    fn connect_timeout(&self) -> Duration {
        match self.timeouts.check {
            Some(_) => self
                .timeouts
                .connect
                .map_or(self.check.inter, |c| c.min(self.check.inter)),
            None => self.check.inter,
        }
    }

    /// Each step after the connect: `timeout check`, else `inter`.
    fn step_timeout(&self) -> Duration {
        self.timeouts.check.unwrap_or(self.check.inter)
    }

    /// Runs the check once; the outcome carries its duration.
    pub async fn run(&self) -> CheckOutcome {
        let started = Instant::now();
        let mut outcome = match self.kind {
            CheckKind::Connect => match self.open(self.target).await {
                Ok(_) => CheckOutcome::new(Status::L4Ok),
                Err(failed) => failed,
            },
            CheckKind::TcpScript(rules) => self.script(rules).await,
            CheckKind::Http(http) => self.http(http).await,
        };
        outcome.duration = Some(started.elapsed());
        outcome
    }

    async fn open(&self, addr: SocketAddr) -> Result<TcpStream, CheckOutcome> {
        let limit = self.connect_timeout();
        let connected = futures_lite::future::or(
            async { Some(TcpStream::connect_timeout(addr, limit).await) },
            async {
                glommio::timer::sleep(limit).await;
                None
            },
        )
        .await;
        match connected {
            None => Err(CheckOutcome::new(Status::L4Timeout)),
            Some(Err(e)) => {
                let e = io::Error::from(e);
                Err(if e.kind() == io::ErrorKind::TimedOut {
                    CheckOutcome::new(Status::L4Timeout)
                } else {
                    CheckOutcome::new(Status::L4Con).with_info(describe_io_error(&e))
                })
            }
            Some(Ok(stream)) => {
                // Checks close with a reset, as HAProxy's do, so that a
                // check every few hundred milliseconds leaves no TIME_WAIT.
                // SAFETY: the descriptor belongs to `stream`, which
                // outlives this borrow.
                let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
                let _ = socket2::SockRef::from(&fd).set_linger(Some(Duration::ZERO));
                let _ = stream.set_nodelay(true);
                let mut stream = stream;
                if let Some(version) = self.check.send_proxy {
                    self.send_proxy_header(&mut stream, version).await?;
                }
                Ok(stream)
            }
        }
    }

    /// A check has no client: `PROXY UNKNOWN` (v1) or a `LOCAL` command
    /// (v2), as HAProxy's checks send (`check-send-proxy`).
    async fn send_proxy_header(
        &self,
        stream: &mut TcpStream,
        version: SendProxy,
    ) -> Result<(), CheckOutcome> {
        let version = match version {
            SendProxy::V1 => SendVersion::V1,
            SendProxy::V2 => SendVersion::V2,
        };
        let mut header = Vec::with_capacity(16);
        write_header(version, None, &mut header);
        let sent =
            futures_lite::future::or(async { Some(stream.write_all(&header).await) }, async {
                glommio::timer::sleep(self.step_timeout()).await;
                None
            })
            .await;
        match sent {
            Some(Ok(())) => Ok(()),
            None => Err(CheckOutcome::new(Status::L4Timeout)),
            Some(Err(e)) => Err(CheckOutcome::new(Status::L4Con).with_info(format!(
                "sending the PROXY header: {}",
                describe_io_error(&e)
            ))),
        }
    }

    async fn script(&self, rules: &[TcpCheckRule]) -> CheckOutcome {
        let mut stream: Option<TcpStream> = None;
        let mut received = Vec::new();
        let mut expected_something = false;
        for rule in rules {
            let at_step = |what: &str| {
                if rule.step == 0 {
                    what.to_string()
                } else {
                    format!("{what} at step {} of tcp-check", rule.step)
                }
            };
            match &rule.action {
                TcpCheckAction::Connect { port, addr } => {
                    let mut target = self.target;
                    if let Some(ip) = addr {
                        target.set_ip(*ip);
                    }
                    if let Some(p) = port {
                        target.set_port(*p);
                    }
                    received.clear();
                    // The previous connection closes before the next opens.
                    drop(stream.take());
                    match self.open(target).await {
                        Ok(s) => stream = Some(s),
                        Err(failed) if rule.step == 0 => return failed,
                        Err(failed) => {
                            let info = match &failed.info {
                                Some(i) => format!("{i} {}", at_step("(connect)")),
                                None => at_step("connect"),
                            };
                            return failed.with_info(info);
                        }
                    }
                }
                TcpCheckAction::Send(data) => {
                    let Some(s) = stream.as_mut() else {
                        return CheckOutcome::new(Status::L4Con)
                            .with_info(at_step("no connection to send on"));
                    };
                    received.clear();
                    if let Err(failed) = self.send(s, data).await {
                        return failed.with_info(at_step("sending data"));
                    }
                }
                TcpCheckAction::Expect(expect) => {
                    expected_something = true;
                    let Some(s) = stream.as_mut() else {
                        return CheckOutcome::new(Status::L4Con)
                            .with_info(at_step("no connection to read from"));
                    };
                    let deadline = Instant::now() + self.step_timeout();
                    loop {
                        if expect.pattern.matches(&received) {
                            break;
                        }
                        let what = match &expect.pattern {
                            Pattern::RString(_) | Pattern::RBinary(_) => {
                                format!("{} '{}'", expect.pattern.keyword(), expect.text)
                            }
                            _ => format!("content '{}'", expect.text),
                        };
                        if received.len() >= self.bufsize {
                            return CheckOutcome::new(Status::L7Rsp).with_info(format!(
                                "TCPCHK did not match {what} at step {}",
                                rule.step
                            ));
                        }
                        match read_some(s, &mut received, self.bufsize, deadline).await {
                            Ok(0) if received.is_empty() => {
                                return CheckOutcome::new(Status::L7Rsp).with_info(format!(
                                    "TCPCHK got an empty response at step {}",
                                    rule.step
                                ))
                            }
                            Ok(0) => {
                                return CheckOutcome::new(Status::L7Rsp).with_info(format!(
                                    "TCPCHK did not match {what} at step {}",
                                    rule.step
                                ))
                            }
                            Ok(_) => {}
                            Err(ReadFailure::Timeout) => {
                                return CheckOutcome::new(Status::L7Timeout).with_info(at_step(
                                    &format!(
                                        "(expect {} '{}')",
                                        expect.pattern.keyword(),
                                        expect.text
                                    ),
                                ))
                            }
                            Err(ReadFailure::Io(e)) => {
                                return CheckOutcome::new(Status::L7Rsp)
                                    .with_info(at_step(&describe_io_error(&e)))
                            }
                        }
                    }
                }
            }
        }
        if expected_something {
            CheckOutcome::new(Status::L7Ok).with_info("(tcp-check)")
        } else {
            CheckOutcome::new(Status::L4Ok)
        }
    }

    async fn send(&self, stream: &mut TcpStream, data: &[u8]) -> Result<(), CheckOutcome> {
        let limit = self.step_timeout();
        let sent = futures_lite::future::or(async { Some(stream.write_all(data).await) }, async {
            glommio::timer::sleep(limit).await;
            None
        })
        .await;
        match sent {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(CheckOutcome::new(Status::L4Con).with_info(describe_io_error(&e))),
            None => Err(CheckOutcome::new(Status::L7Timeout)),
        }
    }

    async fn http(&self, http: &HttpCheck) -> CheckOutcome {
        let mut stream = match self.open(self.target).await {
            Ok(s) => s,
            Err(failed) => return failed,
        };
        if let Err(failed) = self.send(&mut stream, &http_request(http)).await {
            return failed;
        }
        let deadline = Instant::now() + self.step_timeout();
        let method = Method::from_token(&http.method);
        let mut parser = ResponseParser::new(HeadLimits::from_bufsize(self.bufsize, 101));
        let mut buf = Vec::new();
        let head = loop {
            match parser.parse(&buf, method) {
                ParseStatus::Complete(head) => {
                    break Head {
                        status: head.status,
                        reason: String::from_utf8_lossy(head.reason).into_owned(),
                        len: head.head_len,
                        framing: head.framing,
                    }
                }
                ParseStatus::Error(e) => {
                    return CheckOutcome::new(Status::L7Rsp).with_info(e.reason());
                }
                ParseStatus::Partial => {}
            }
            match read_some(&mut stream, &mut buf, self.bufsize, deadline).await {
                Ok(0) if buf.is_empty() => {
                    return CheckOutcome::new(Status::L7Rsp).with_info("empty response")
                }
                Ok(0) => {
                    return CheckOutcome::new(Status::L7Rsp)
                        .with_info("connection closed in the response head")
                }
                Ok(_) => {}
                Err(ReadFailure::Timeout) => return CheckOutcome::new(Status::L7Timeout),
                Err(ReadFailure::Io(e)) => {
                    return CheckOutcome::new(Status::L7Rsp).with_info(describe_io_error(&e))
                }
            }
        };
        let wrong_status = || {
            CheckOutcome::new(Status::L7Sts)
                .with_code(head.status)
                .with_info(head.reason.clone())
        };
        if http.expects.is_empty() && !(200..400).contains(&head.status) {
            return wrong_status();
        }
        for expect in &http.expects {
            let ok = match &expect.test {
                HttpTest::Status(set) => set.contains(head.status),
                HttpTest::RStatus(re) => re.is_match(head.status.to_string().as_bytes()),
                HttpTest::String(_) | HttpTest::RString(_) => true,
            };
            if !ok {
                return wrong_status();
            }
        }
        if http.needs_body() {
            buf.drain(..head.len.min(buf.len()));
            let body = match self.body(&mut stream, buf, head.framing, deadline).await {
                Ok(body) => body,
                Err(failed) => return failed.with_code(head.status),
            };
            for expect in &http.expects {
                let ok = match &expect.test {
                    HttpTest::String(needle) => Pattern::String(needle.clone()).matches(&body),
                    HttpTest::RString(re) => re.is_match(&body),
                    HttpTest::Status(_) | HttpTest::RStatus(_) => true,
                };
                if !ok {
                    return CheckOutcome::new(Status::L7Rsp)
                        .with_code(head.status)
                        .with_info(format!(
                            "HTTP content check did not match ({})",
                            expect.text
                        ));
                }
            }
        }
        CheckOutcome::new(Status::L7Ok)
            .with_code(head.status)
            .with_info(head.reason)
    }

    /// The body (de-chunked), at most `bufsize` bytes of it: HAProxy also
    /// matches only what fits in the check buffer.
    async fn body(
        &self,
        stream: &mut TcpStream,
        mut raw: Vec<u8>,
        framing: BodyFraming,
        deadline: Instant,
    ) -> Result<Vec<u8>, CheckOutcome> {
        let cap = self.bufsize;
        let mut scanner = ChunkedScanner::default();
        let mut body = Vec::new();
        loop {
            let complete = match framing {
                BodyFraming::None => return Ok(body),
                BodyFraming::ContentLength(n) => {
                    let want = usize::try_from(n).unwrap_or(usize::MAX).min(cap);
                    if raw.len() >= want {
                        raw.truncate(want);
                        return Ok(raw);
                    }
                    false
                }
                BodyFraming::Chunked => {
                    let mut at = 0;
                    while at < raw.len() {
                        match scanner.step(&raw[at..]) {
                            Ok(crate::http::Segment::Data(n)) => {
                                body.extend_from_slice(&raw[at..at + n]);
                                at += n;
                            }
                            Ok(crate::http::Segment::Framing(n)) => at += n,
                            Ok(crate::http::Segment::Done) => break,
                            Err(e) => {
                                return Err(
                                    CheckOutcome::new(Status::L7Rsp).with_info(e.to_string())
                                )
                            }
                        }
                    }
                    raw.clear();
                    scanner.is_done() || body.len() >= cap
                }
                BodyFraming::UntilClose => raw.len() >= cap,
            };
            if complete {
                let mut kept = if framing == BodyFraming::Chunked {
                    body
                } else {
                    raw
                };
                kept.truncate(cap);
                return Ok(kept);
            }
            let limit = cap.max(raw.len() + 1);
            match read_some(stream, &mut raw, limit, deadline).await {
                Ok(0) => {
                    return match framing {
                        BodyFraming::UntilClose => Ok(raw),
                        _ => Err(CheckOutcome::new(Status::L7Rsp)
                            .with_info("connection closed in the response body")),
                    }
                }
                Ok(_) => {}
                Err(ReadFailure::Timeout) => return Err(CheckOutcome::new(Status::L7Timeout)),
                Err(ReadFailure::Io(e)) => {
                    return Err(CheckOutcome::new(Status::L7Rsp).with_info(describe_io_error(&e)))
                }
            }
        }
    }
}

struct Head {
    status: u16,
    reason: String,
    len: usize,
    framing: BodyFraming,
}

/// The request an HTTP check sends. `Connection: close` unless the rules
/// set Connection, and a Content-Length for a body, as HAProxy adds them.
pub fn http_request(http: &HttpCheck) -> Vec<u8> {
    let mut out = format!("{} {} {}\r\n", http.method, http.uri, http.version).into_bytes();
    let has = |name: &str| {
        http.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    for (name, value) in &http.headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if !has("connection") {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    if !http.body.is_empty() && !has("content-length") {
        out.extend_from_slice(format!("Content-Length: {}\r\n", http.body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&http.body);
    out
}

enum ReadFailure {
    Timeout,
    Io(io::Error),
}

/// Appends what one read returns to `buf` (at most up to `cap` bytes in
/// total); `Ok(0)` at end of stream. glommio's own read timeouts misbehave
/// when a read is dropped, so the deadline is an explicit timer.
async fn read_some(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    cap: usize,
    deadline: Instant,
) -> Result<usize, ReadFailure> {
    let room = cap.saturating_sub(buf.len()).clamp(1, 16 * 1024);
    let mut chunk = vec![0u8; room];
    let left = deadline.saturating_duration_since(Instant::now());
    let read = futures_lite::future::or(async { Some(stream.read(&mut chunk).await) }, async {
        glommio::timer::sleep(left).await;
        None
    })
    .await;
    match read {
        None => Err(ReadFailure::Timeout),
        Some(Ok(n)) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
        Some(Err(e)) => Err(ReadFailure::Io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_request_adds_connection_close_and_length() {
        let check = HttpCheck {
            method: "POST".into(),
            uri: "/hc".into(),
            version: "HTTP/1.1".into(),
            headers: vec![("Host".into(), "x".into())],
            body: b"ping".to_vec(),
            expects: Vec::new(),
        };
        assert_eq!(
            http_request(&check),
            b"POST /hc HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4\r\n\r\nping"
        );
        let plain = HttpCheck::default();
        assert_eq!(
            http_request(&plain),
            b"OPTIONS / HTTP/1.0\r\nConnection: close\r\n\r\n"
        );
    }
}
