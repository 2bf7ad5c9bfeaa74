//! One HTTP/2 stream presented to the HTTP session as an HTTP/1.1
//! connection carrying one request (`proxy::http::client::Carried`).
//!
//! Reads give the request head written by `request::write_head`, then the
//! DATA payloads (as chunks when the client sent no `content-length`);
//! each payload's flow-control window is given back to the client only as
//! the session takes the bytes, so a request body is buffered no further
//! than the stream's window and the session's receive buffer.
//!
//! Writes take the response the session would send an HTTP/1.1 client:
//! its head (after `http-response` rules, cookie persistence or an error
//! page) is parsed back with percore's response parser and sent as
//! HEADERS without the connection-specific fields; its body, de-chunked,
//! goes out as DATA as fast as the client's windows allow (a write waits
//! for window, so `timeout client` bounds a client that never opens it).

use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_lite::io::{AsyncRead, AsyncWrite};
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::header::{HeaderName, HeaderValue};

use super::conn::ConnState;
use super::request::BodyCoding;
use crate::http::{
    BodyFraming, ChunkedScanner, HeadLimits, Method, ParseStatus, ResponseParser, Segment,
};
use crate::proxy::http::client::{Carried, Carrier};

/// Fields that only mean something on one HTTP/1.1 connection (RFC 9113
/// §8.2.2): never sent in an HTTP/2 response.
const CONNECTION_FIELDS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// A stream's request as it was accepted.
pub(super) struct Incoming {
    /// The HTTP/1.1 head (`request::write_head`).
    pub head: Vec<u8>,
    pub coding: BodyCoding,
    pub method: Method,
    pub body: RecvStream,
}

pub(super) struct H2Stream {
    carrier: Carrier,
    // Request side.
    head: Vec<u8>,
    head_sent: usize,
    /// `None` once the request body ended (or had none).
    body: Option<RecvStream>,
    coding: BodyCoding,
    /// Part of a DATA payload not handed to the session yet.
    data: Bytes,
    /// Chunk framing to give before (size line) or after (CRLF, last
    /// chunk) the payload.
    framing: Vec<u8>,
    framing_sent: usize,
    /// The CRLF that closes the current chunk is due once `data` is out.
    crlf_due: bool,
    // Response side.
    method: Method,
    respond: Option<SendResponse<Bytes>>,
    send: Option<SendStream<Bytes>>,
    response: Response,
    response_head: Vec<u8>,
    parser: ResponseParser,
    /// A chunked response's framing bytes since its last payload byte.
    framing_seen: Vec<u8>,
    conn: Rc<ConnState>,
    /// This stream was counted in `ConnState::cancelled`.
    cancel_counted: bool,
}

enum Response {
    /// Collecting the response head.
    Head,
    /// Sending DATA; what delimits the body in the HTTP/1.1 bytes.
    Body(Delimited),
    /// Complete (END_STREAM sent) or reset.
    Done,
}

enum Delimited {
    Length(u64),
    Chunked(ChunkedScanner),
    UntilClose,
}

impl H2Stream {
    pub(super) fn new(
        carrier: Carrier,
        request: Incoming,
        respond: SendResponse<Bytes>,
        bufsize: usize,
        conn: Rc<ConnState>,
    ) -> Self {
        let Incoming {
            head,
            coding,
            method,
            body,
        } = request;
        let body = (!body.is_end_stream()).then_some(body);
        H2Stream {
            carrier,
            head,
            head_sent: 0,
            body,
            coding,
            data: Bytes::new(),
            framing: Vec::new(),
            framing_sent: 0,
            crlf_due: false,
            method,
            respond: Some(respond),
            send: None,
            response: Response::Head,
            response_head: Vec::new(),
            parser: ResponseParser::new(HeadLimits::from_bufsize(
                bufsize,
                crate::http::DEFAULT_MAX_HEADERS,
            )),
            framing_seen: Vec::new(),
            conn,
            cancel_counted: false,
        }
    }

    /// Gives out pending framing bytes, then payload bytes.
    fn give(&mut self, buf: &mut [u8]) -> Option<usize> {
        if self.framing_sent < self.framing.len() {
            let src = &self.framing[self.framing_sent..];
            let n = src.len().min(buf.len());
            buf[..n].copy_from_slice(&src[..n]);
            self.framing_sent += n;
            if self.framing_sent == self.framing.len() {
                self.framing.clear();
                self.framing_sent = 0;
            }
            return Some(n);
        }
        if !self.data.is_empty() {
            let n = self.data.len().min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data.advance(n);
            if let Some(body) = &mut self.body {
                // The client may send this much more: the session took it.
                let _ = body.flow_control().release_capacity(n);
            }
            return Some(n);
        }
        if self.crlf_due {
            self.crlf_due = false;
            self.framing.extend_from_slice(b"\r\n");
            return self.give(buf);
        }
        None
    }

    /// An h2 error on this stream as the session sees it; a reset by the
    /// client counts towards the connection's rapid-reset budget.
    fn failed(&mut self, e: h2::Error, kind: io::ErrorKind) -> io::Error {
        if e.is_reset() && e.is_remote() {
            self.count_cancel();
        }
        io::Error::new(kind, e)
    }

    fn count_cancel(&mut self) {
        if !self.cancel_counted {
            self.cancel_counted = true;
            self.conn.cancelled.set(self.conn.cancelled.get() + 1);
        }
    }

    fn reset(&mut self, reason: Reason) {
        if let Some(send) = &mut self.send {
            send.send_reset(reason);
        } else if let Some(respond) = &mut self.respond {
            respond.send_reset(reason);
        }
        self.response = Response::Done;
    }

    /// Parses the response head collected so far; sends HEADERS once it
    /// is complete. Returns the bytes of `response_head` that follow the
    /// head (the body's first bytes), or `None` while incomplete.
    fn head_complete(&mut self) -> io::Result<Option<usize>> {
        loop {
            let (status, framing, head_len, fields) =
                match self.parser.parse(&self.response_head, self.method) {
                    ParseStatus::Partial => return Ok(None),
                    ParseStatus::Error(e) => {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
                    }
                    ParseStatus::Complete(h) => {
                        let mut fields = Vec::with_capacity(h.headers.len());
                        for (name, value) in h.headers.iter() {
                            let Ok(name) = HeaderName::from_bytes(name) else {
                                continue;
                            };
                            if CONNECTION_FIELDS.contains(&name.as_str()) {
                                continue;
                            }
                            if let Ok(value) = HeaderValue::from_bytes(value) {
                                fields.push((name, value));
                            }
                        }
                        (h.status, h.framing, h.head_len, fields)
                    }
                };
            if (100..200).contains(&status) {
                // Interim answers (100 Continue, 103 Early Hints) are
                // relayed as informational HEADERS. A client gone by now
                // is found by the final response.
                self.response_head.drain(..head_len);
                let mut interim = http::Response::new(());
                if let (Ok(code), Some(respond)) =
                    (http::StatusCode::from_u16(status), self.respond.as_mut())
                {
                    *interim.status_mut() = code;
                    interim.headers_mut().extend(fields);
                    let _ = respond.send_informational(interim);
                }
                continue;
            }
            let rest = self.response_head.len() - head_len;
            let delimited = match framing {
                BodyFraming::None | BodyFraming::ContentLength(0) => None,
                BodyFraming::ContentLength(n) => Some(Delimited::Length(n)),
                BodyFraming::Chunked => Some(Delimited::Chunked(ChunkedScanner::default())),
                BodyFraming::UntilClose => Some(Delimited::UntilClose),
            };
            let mut response = http::Response::new(());
            *response.status_mut() = http::StatusCode::from_u16(status)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            response.headers_mut().extend(fields);
            let respond = self
                .respond
                .as_mut()
                .ok_or_else(|| io::Error::from(io::ErrorKind::BrokenPipe))?;
            let send = match respond.send_response(response, delimited.is_none()) {
                Ok(send) => send,
                Err(e) => return Err(self.failed(e, io::ErrorKind::BrokenPipe)),
            };
            self.respond = None;
            self.response_head = Vec::new();
            match delimited {
                Some(d) => {
                    self.send = Some(send);
                    self.response = Response::Body(d);
                }
                None => self.response = Response::Done,
            }
            return Ok(Some(rest));
        }
    }

    /// Sends up to `payload.len()` bytes as DATA as far as the windows
    /// allow; `last`: they end the body.
    fn send_data(
        &mut self,
        cx: &mut Context<'_>,
        payload: &[u8],
        last: bool,
    ) -> Poll<io::Result<usize>> {
        let Some(send) = &mut self.send else {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        };
        let sent = if payload.is_empty() {
            send.send_data(Bytes::new(), last).map(|()| 0)
        } else {
            let mut capacity = send.capacity();
            if capacity == 0 {
                send.reserve_capacity(payload.len());
                capacity = match send.poll_capacity(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Ok(n))) => n,
                    Poll::Ready(Some(Err(e))) => {
                        return Poll::Ready(Err(self.failed(e, io::ErrorKind::BrokenPipe)))
                    }
                    // The stream is closed: reset by the client?
                    Poll::Ready(None) => {
                        if let Poll::Ready(Ok(_)) = send.poll_reset(cx) {
                            self.count_cancel();
                        }
                        return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
                    }
                };
                if capacity == 0 {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
            let n = capacity.min(payload.len());
            let end = last && n == payload.len();
            send.send_data(Bytes::copy_from_slice(&payload[..n]), end)
                .map(|()| n)
        };
        Poll::Ready(sent.map_err(|e| self.failed(e, io::ErrorKind::BrokenPipe)))
    }
}

/// Fields that may travel as trailers between HTTP/2 and HTTP/1.1: not
/// the connection-specific ones, nor those that frame or route a message
/// (RFC 9110 §6.5.1).
fn trailer_allowed(name: &str) -> bool {
    !CONNECTION_FIELDS.contains(&name)
        && !matches!(name, "content-length" | "host" | "te" | "trailer")
        && !name.starts_with(':')
}

/// The trailer fields of a chunked body's end, from the framing bytes
/// after its last payload byte (`\r\n0\r\nname: value\r\n\r\n`; the
/// scanner already checked their syntax).
fn response_trailers(framing: &[u8]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    let mut lines = framing
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .skip_while(|l| l.is_empty());
    // The last-chunk line (`0`, maybe extensions).
    lines.next();
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            if trailer_allowed(name.as_str()) {
                map.append(name, value);
            }
        }
    }
    map
}

fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl Carried for H2Stream {
    fn carrier(&self) -> &Carrier {
        &self.carrier
    }
}

impl AsyncRead for H2Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.head_sent < this.head.len() {
            let src = &this.head[this.head_sent..];
            let n = src.len().min(buf.len());
            buf[..n].copy_from_slice(&src[..n]);
            this.head_sent += n;
            if this.head_sent == this.head.len() {
                this.head = Vec::new();
                this.head_sent = 0;
            }
            return Poll::Ready(Ok(n));
        }
        loop {
            if let Some(n) = this.give(buf) {
                return Poll::Ready(Ok(n));
            }
            // After its response the session reads no further request.
            if matches!(this.response, Response::Done) {
                return Poll::Ready(Ok(0));
            }
            let Some(body) = &mut this.body else {
                return Poll::Ready(Ok(0));
            };
            match body.poll_data(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(data))) => {
                    if data.is_empty() {
                        continue;
                    }
                    if this.coding == BodyCoding::Chunked {
                        this.framing = format!("{:x}\r\n", data.len()).into_bytes();
                        this.crlf_due = true;
                    }
                    this.data = data;
                }
                Poll::Ready(Some(Err(e))) => {
                    this.body = None;
                    return Poll::Ready(Err(this.failed(e, io::ErrorKind::ConnectionReset)));
                }
                Poll::Ready(None) => {
                    if this.coding == BodyCoding::Chunked {
                        // The trailers, if any, go in the last chunk. h2's
                        // `poll_trailers` is doc(hidden) but public (hyper
                        // uses it); `trailers()` is the same as a future.
                        let trailers = match body.poll_trailers(cx) {
                            Poll::Pending => return Poll::Pending,
                            Poll::Ready(Ok(t)) => t,
                            Poll::Ready(Err(e)) => {
                                this.body = None;
                                let kind = io::ErrorKind::ConnectionReset;
                                return Poll::Ready(Err(this.failed(e, kind)));
                            }
                        };
                        this.framing.extend_from_slice(b"0\r\n");
                        for (name, value) in trailers.iter().flatten() {
                            // Values are checked by h2 (no CR, LF or NUL).
                            if trailer_allowed(name.as_str()) {
                                this.framing.extend_from_slice(name.as_str().as_bytes());
                                this.framing.extend_from_slice(b": ");
                                this.framing.extend_from_slice(value.as_bytes());
                                this.framing.extend_from_slice(b"\r\n");
                            }
                        }
                        this.framing.extend_from_slice(b"\r\n");
                    }
                    // With a content-length there is no place for trailers
                    // in HTTP/1.1: they are dropped.
                    this.body = None;
                }
            }
        }
    }
}

impl AsyncWrite for H2Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match &mut this.response {
            Response::Head => {
                let before = this.response_head.len();
                this.response_head.extend_from_slice(buf);
                match this.head_complete() {
                    Ok(None) => Poll::Ready(Ok(buf.len())),
                    // The body bytes after the head are taken by the next
                    // write.
                    Ok(Some(rest)) => Poll::Ready(Ok(buf.len().saturating_sub(rest))),
                    Err(e) => {
                        this.response_head.truncate(before);
                        this.reset(Reason::INTERNAL_ERROR);
                        Poll::Ready(Err(e))
                    }
                }
            }
            Response::Body(Delimited::Length(left)) => {
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                let last = n as u64 == *left;
                let sent = match this.send_data(cx, &buf[..n], last) {
                    Poll::Ready(Ok(sent)) => sent,
                    other => return other,
                };
                let mut done = false;
                if let Response::Body(Delimited::Length(left)) = &mut this.response {
                    *left -= sent as u64;
                    done = *left == 0;
                }
                if done {
                    this.response = Response::Done;
                    this.send = None;
                    // Bytes after the body are not part of it: taken and
                    // dropped.
                    return Poll::Ready(Ok(buf.len()));
                }
                Poll::Ready(Ok(sent))
            }
            Response::Body(Delimited::Chunked(scanner)) => {
                let in_data = usize::try_from(scanner.data_remaining()).unwrap_or(usize::MAX);
                if in_data > 0 {
                    // Payload: the scanner moves past what was sent only.
                    let n = in_data.min(buf.len());
                    let sent = match this.send_data(cx, &buf[..n], false) {
                        Poll::Ready(Ok(sent)) => sent,
                        other => return other,
                    };
                    if let Response::Body(Delimited::Chunked(scanner)) = &mut this.response {
                        let _ = scanner.step(&buf[..sent]);
                    }
                    this.framing_seen.clear();
                    return Poll::Ready(Ok(sent));
                }
                let step = scanner.step(buf).map_err(invalid)?;
                let done = scanner.is_done();
                let n = match step {
                    Segment::Framing(n) => n,
                    // Never returned outside data; taken as framing.
                    Segment::Data(n) => n,
                    Segment::Done => buf.len(),
                };
                // Framing since the last payload byte: at the end, the last
                // chunk and its trailers (bounded by the scanner's limits).
                this.framing_seen.extend_from_slice(&buf[..n]);
                if done {
                    let trailers = response_trailers(&this.framing_seen);
                    let ended = match &mut this.send {
                        Some(send) if !trailers.is_empty() => send.send_trailers(trailers),
                        Some(send) => send.send_data(Bytes::new(), true),
                        None => Ok(()),
                    };
                    this.response = Response::Done;
                    this.send = None;
                    if let Err(e) = ended {
                        return Poll::Ready(Err(this.failed(e, io::ErrorKind::BrokenPipe)));
                    }
                }
                Poll::Ready(Ok(n))
            }
            Response::Body(Delimited::UntilClose) => this.send_data(cx, buf, false),
            Response::Done => Poll::Ready(Ok(buf.len())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// The session is done with the stream: a body delimited by the close
    /// ends cleanly; anything else unfinished is cut with RST_STREAM.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.response {
            Response::Done => {}
            Response::Body(Delimited::UntilClose) => {
                let _ = this.send_data(cx, &[], true);
                this.response = Response::Done;
                this.send = None;
            }
            // No response at all (`http-request reject`, a client that
            // went away) or a truncated one.
            Response::Head => this.reset(Reason::CANCEL),
            Response::Body(_) => this.reset(Reason::INTERNAL_ERROR),
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_come_from_the_last_chunk() {
        let t = response_trailers(b"\r\n0;ext=1\r\ngrpc-status: 0\r\nGrpc-Message:  ok \r\n\r\n");
        assert_eq!(t.len(), 2);
        assert_eq!(t["grpc-status"], "0");
        assert_eq!(t["grpc-message"], "ok");
        assert!(response_trailers(b"0\r\n\r\n").is_empty());
        // Framing and routing fields never become trailers.
        let t = response_trailers(b"0\r\ncontent-length: 5\r\nhost: x\r\nx-ok: 1\r\n\r\n");
        assert_eq!(t.len(), 1);
        assert_eq!(t["x-ok"], "1");
    }
}
