//! One request to a `proto = "h2"` server as one HTTP/2 stream, presented
//! to the session as an HTTP/1.1 connection carrying that request (the
//! mirror of `stream::H2Stream`, which does the same for a client's
//! stream).
//!
//! Writes take the request head the session would send an HTTP/1.1
//! server (after rules and rewrites); it is parsed back with percore's
//! request parser and sent as HEADERS: `:method`, `:scheme` (`https`
//! over TLS), `:authority` from Host (else the server's address),
//! `:path`, the fields without the connection-specific ones, and
//! `te: trailers` (percore relays trailers; gRPC servers require it). The
//! body, de-chunked, goes out as DATA, a chunked body's trailers as a
//! trailing HEADERS frame.
//!
//! Reads give the response as HTTP/1.1 bytes: interim (1xx) heads, then
//! the final head with its fields, `content-length` if the server gave
//! one, else chunked framing (trailers in the last chunk), and
//! `connection: close` so the session neither keeps nor pools what is
//! only a stream. CONNECT is refused (no tunnel through an HTTP/2
//! server); an `Upgrade` field is connection-specific and not sent.

use std::future::Future;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_lite::io::{AsyncRead, AsyncWrite};
use h2::client::{ResponseFuture, SendRequest};
use h2::RecvStream;
use http::header::{HeaderName, HeaderValue};

use super::body::{BodyIn, BodyOut, Delimited, OutError, CONNECTION_FIELDS};
use crate::http::{
    BodyFraming, ChunkedScanner, HeadLimits, ParseStatus, RequestHead, RequestParser,
    DEFAULT_MAX_HEADERS,
};
use crate::shard::h2pool::H2Conn;
use crate::shard::CoreContext;

pub(crate) struct ServerStream {
    conn: Rc<H2Conn>,
    /// The stream's own handle, once the connection is open.
    send: Option<SendRequest<Bytes>>,
    /// `:scheme`.
    scheme: &'static str,
    /// `:authority` for a request without Host.
    addr: SocketAddr,
    parser: RequestParser,
    // Request side.
    head: Vec<u8>,
    up: Up,
    // Response side.
    response: Option<ResponseFuture>,
    /// The HEAD method: a response without length has no body either.
    head_request: bool,
    /// A response head written as HTTP/1.1, and how much was read of it.
    head_out: Vec<u8>,
    head_out_read: usize,
    body: Option<BodyIn>,
    /// A read that came before the request was sent.
    reader: Option<Waker>,
}

enum Up {
    /// Collecting the request head.
    Head,
    Body(BodyOut),
    /// Sent (END_STREAM) or failed.
    Done,
}

impl ServerStream {
    /// A stream on `conn`, or `None` if the connection takes no more.
    pub(super) fn open(
        ctx: &CoreContext,
        backend: usize,
        server: usize,
        conn: Rc<H2Conn>,
    ) -> Option<Self> {
        if !conn.open_stream() {
            return None;
        }
        Some(Self::counted(ctx, backend, server, conn))
    }

    /// The stream `conn` already counts (`H2Conn::open_stream`): the one
    /// of the request that made the connection, counted when it was
    /// announced.
    pub(super) fn counted(
        ctx: &CoreContext,
        backend: usize,
        server: usize,
        conn: Rc<H2Conn>,
    ) -> Self {
        let srv = &ctx.config.backends[backend].servers[server];
        let bufsize = ctx.config.global.tune.bufsize;
        ServerStream {
            conn,
            send: None,
            scheme: if srv.ssl.is_some() { "https" } else { "http" },
            addr: ctx.backends[backend].borrow().server_addr(server),
            parser: RequestParser::new(HeadLimits::from_bufsize(bufsize, DEFAULT_MAX_HEADERS)),
            head: Vec::new(),
            up: Up::Head,
            response: None,
            head_request: false,
            head_out: Vec::new(),
            head_out_read: 0,
            body: None,
            reader: None,
        }
    }

    /// An h2 error as the session sees it; one that concerns the whole
    /// connection stops it from taking new streams.
    fn failed(&self, e: h2::Error, kind: io::ErrorKind) -> io::Error {
        if e.is_go_away() || e.is_io() || e.reason().is_none() {
            self.conn.set_closing();
        }
        io::Error::new(kind, e)
    }

    /// Sends HEADERS once the request head in `self.head` is complete;
    /// returns how many of its bytes follow the head (`None`: incomplete).
    fn poll_send_head(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<usize>>> {
        let (request, delimited, head_len) = match self.parser.parse(&self.head) {
            ParseStatus::Partial => return Poll::Ready(Ok(None)),
            ParseStatus::Error(e) => {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    e.to_string(),
                )))
            }
            ParseStatus::Complete(h) => match to_h2(&h, self.scheme, self.addr) {
                Ok(r) => (r, delimited(h.framing), h.head_len),
                Err(e) => return Poll::Ready(Err(e)),
            },
        };
        self.head_request = *request.method() == http::Method::HEAD;
        // A connection still being made is waited for.
        let handle = match &mut self.send {
            Some(handle) => handle,
            None => match self.conn.poll_handle(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
                }
                Poll::Ready(Some(handle)) => self.send.insert(handle),
            },
        };
        let sent = match handle.poll_ready(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => Err(e),
            Poll::Ready(Ok(())) => handle.send_request(request, delimited.is_none()),
        };
        let (response, send) = match sent {
            Ok(sent) => sent,
            Err(e) => return Poll::Ready(Err(self.failed(e, io::ErrorKind::ConnectionReset))),
        };
        self.response = Some(response);
        self.up = match delimited {
            Some(d) => Up::Body(BodyOut::new(send, d)),
            None => Up::Done,
        };
        if let Some(reader) = self.reader.take() {
            reader.wake();
        }
        let rest = self.head.len() - head_len;
        self.head = Vec::new();
        Poll::Ready(Ok(Some(rest)))
    }

    /// Writes a response head (interim or final) as HTTP/1.1 into
    /// `head_out`; returns whether the body that follows is chunked.
    fn write_head(&mut self, response: &http::response::Parts, end_of_stream: bool) -> bool {
        let out = &mut self.head_out;
        out.clear();
        self.head_out_read = 0;
        let status = response.status;
        // Writing to a Vec cannot fail.
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        let headers = &response.headers;
        let no_body =
            self.head_request || status == http::StatusCode::NO_CONTENT || status.as_u16() == 304;
        // A body that announces trailers (`trailer`, RFC 9110 §6.6.2) is
        // chunked even with a length: HTTP/1.1 carries trailers only
        // there.
        let announced = headers.contains_key(http::header::TRAILER);
        let mut has_length = headers.contains_key(http::header::CONTENT_LENGTH);
        let chunked = !no_body && !end_of_stream && (!has_length || announced);
        if chunked {
            has_length = false;
        }
        for (name, value) in headers {
            if name == http::header::CONTENT_LENGTH && chunked {
                continue;
            }
            field(out, name.as_str().as_bytes(), value.as_bytes());
        }
        if status.is_informational() {
            out.extend_from_slice(b"\r\n");
            return false;
        }
        if chunked {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        } else if !has_length && !no_body {
            out.extend_from_slice(b"content-length: 0\r\n");
        }
        out.extend_from_slice(b"connection: close\r\n\r\n");
        chunked
    }

    /// Gives out what is left of `head_out`.
    fn give_head(&mut self, buf: &mut [u8]) -> Option<usize> {
        let src = &self.head_out[self.head_out_read..];
        if src.is_empty() {
            return None;
        }
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        self.head_out_read += n;
        Some(n)
    }
}

/// The request body's delimitation, `None` when there is none.
fn delimited(framing: BodyFraming) -> Option<Delimited> {
    match framing {
        BodyFraming::None | BodyFraming::ContentLength(0) | BodyFraming::UntilClose => None,
        BodyFraming::ContentLength(n) => Some(Delimited::Length(n)),
        BodyFraming::Chunked => Some(Delimited::Chunked(ChunkedScanner::default())),
    }
}

/// The HTTP/2 request for an HTTP/1.1 head (RFC 9113 §8.3.1).
fn to_h2(h: &RequestHead<'_>, scheme: &str, addr: SocketAddr) -> io::Result<http::Request<()>> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
    if h.method_kind == crate::http::Method::Connect {
        return Err(invalid("CONNECT is not forwarded to an HTTP/2 server"));
    }
    let method =
        http::Method::from_bytes(h.method.as_bytes()).map_err(|_| invalid("request method"))?;
    let authority = match h.host {
        Some(host) => String::from_utf8_lossy(host).into_owned(),
        None => addr.to_string(),
    };
    let path = if h.path.is_empty() { "/" } else { h.path };
    let uri = match h.query {
        Some(q) => format!("{scheme}://{authority}{path}?{q}"),
        None => format!("{scheme}://{authority}{path}"),
    };
    let mut request = http::Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri.parse().map_err(|_| invalid("request target"))?;
    let headers = request.headers_mut();
    // Fields the Connection field names are connection-specific too.
    let nominated: Vec<&[u8]> = h
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .collect();
    for (name, value) in h.headers.iter() {
        let Ok(name) = HeaderName::from_bytes(name) else {
            continue;
        };
        let skip = CONNECTION_FIELDS.contains(&name.as_str())
            || matches!(name.as_str(), "host" | "te")
            || nominated
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name.as_str().as_bytes()));
        if skip {
            continue;
        }
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
    Ok(request)
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

impl Drop for ServerStream {
    /// The stream's handles go with it: h2 resets a stream that was not
    /// complete (RST_STREAM CANCEL).
    fn drop(&mut self) {
        self.conn.stream_ended();
    }
}

impl AsyncRead for ServerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            if let Some(n) = this.give_head(buf) {
                return Poll::Ready(Ok(n));
            }
            if let Some(body) = &mut this.body {
                return match body.poll_read(cx, buf) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Ok(n)) => Poll::Ready(Ok(n)),
                    Poll::Ready(Err(e)) => {
                        Poll::Ready(Err(this.failed(e, io::ErrorKind::ConnectionReset)))
                    }
                };
            }
            let Some(response) = &mut this.response else {
                if matches!(this.up, Up::Head) {
                    // The exchange reads once the head went out; a read
                    // before waits for it.
                    this.reader = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                return Poll::Ready(Ok(0));
            };
            // Interim responses (100 Continue, 103 Early Hints) come first.
            if let Poll::Ready(Some(Ok(interim))) = response.poll_informational(cx) {
                let (parts, ()) = interim.into_parts();
                this.write_head(&parts, false);
                continue;
            }
            let polled = Pin::new(response).poll(cx);
            match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    this.response = None;
                    return Poll::Ready(Err(this.failed(e, io::ErrorKind::ConnectionReset)));
                }
                Poll::Ready(Ok(response)) => {
                    this.response = None;
                    let (parts, body): (_, RecvStream) = response.into_parts();
                    let chunked = this.write_head(&parts, body.is_end_stream());
                    this.body = Some(BodyIn::new(body, chunked));
                }
            }
        }
    }
}

impl AsyncWrite for ServerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match &mut this.up {
            Up::Head => {
                let before = this.head.len();
                this.head.extend_from_slice(buf);
                match this.poll_send_head(cx) {
                    Poll::Ready(Ok(None)) => Poll::Ready(Ok(buf.len())),
                    // The body bytes after the head are taken by the next
                    // write.
                    Poll::Ready(Ok(Some(rest))) => Poll::Ready(Ok(buf.len().saturating_sub(rest))),
                    Poll::Pending => {
                        this.head.truncate(before);
                        Poll::Pending
                    }
                    Poll::Ready(Err(e)) => {
                        this.head.truncate(before);
                        this.up = Up::Done;
                        Poll::Ready(Err(e))
                    }
                }
            }
            Up::Body(out) => match out.poll_write(cx, buf) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(n)) => {
                    if out.is_done() {
                        this.up = Up::Done;
                    }
                    Poll::Ready(Ok(n))
                }
                Poll::Ready(Err(OutError::H2(e))) => {
                    Poll::Ready(Err(this.failed(e, io::ErrorKind::BrokenPipe)))
                }
                Poll::Ready(Err(OutError::Closed { .. })) => {
                    Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
                }
                Poll::Ready(Err(OutError::Framing(e))) => {
                    Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)))
                }
            },
            // The server answered before the whole body: the rest is not
            // wanted (the stream is closed on our side).
            Up::Done => Poll::Ready(Ok(buf.len())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(head: &str) -> http::Request<()> {
        let mut parser = RequestParser::default();
        let addr: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        match parser.parse(head.as_bytes()) {
            ParseStatus::Complete(h) => to_h2(&h, "http", addr).unwrap(),
            _ => panic!("incomplete head"),
        }
    }

    #[test]
    fn connection_specific_fields_stay_behind() {
        let r = request(
            "POST /svc/Call?x=1 HTTP/1.1\r\nHost: api.example\r\nConnection: keep-alive, x-hop\r\n\
             X-Hop: 1\r\nKeep-Alive: 5\r\nContent-Type: application/grpc\r\nTE: trailers\r\n\
             Transfer-Encoding: chunked\r\n\r\n",
        );
        assert_eq!(r.method(), http::Method::POST);
        assert_eq!(r.uri().to_string(), "http://api.example/svc/Call?x=1");
        let names: Vec<&str> = r.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["content-type", "te"]);
        assert_eq!(r.headers()["te"], "trailers");
    }

    #[test]
    fn no_host_names_the_server() {
        let r = request("GET / HTTP/1.0\r\n\r\n");
        assert_eq!(r.uri().to_string(), "http://127.0.0.1:9000/");
    }

    #[test]
    fn connect_is_refused() {
        let mut parser = RequestParser::default();
        let addr: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let ParseStatus::Complete(h) =
            parser.parse(b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n")
        else {
            panic!("incomplete head");
        };
        assert!(to_h2(&h, "http", addr).is_err());
    }
}
