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

use bytes::Bytes;
use futures_lite::io::{AsyncRead, AsyncWrite};
use h2::server::SendResponse;
use h2::{Reason, RecvStream};
use http::header::{HeaderName, HeaderValue};

use super::body::{BodyIn, BodyOut, Delimited, OutError, CONNECTION_FIELDS};
use super::conn::ConnState;
use super::request::BodyCoding;
use crate::http::{BodyFraming, ChunkedScanner, HeadLimits, Method, ParseStatus, ResponseParser};
use crate::proxy::http::client::{Carried, Carrier};

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
    body: BodyIn,
    // Response side.
    method: Method,
    respond: Option<SendResponse<Bytes>>,
    response: Response,
    response_head: Vec<u8>,
    parser: ResponseParser,
    conn: Rc<ConnState>,
    /// This stream was counted in `ConnState::cancelled`.
    cancel_counted: bool,
}

enum Response {
    /// Collecting the response head.
    Head,
    /// Sending DATA.
    Body(BodyOut),
    /// Complete (END_STREAM sent) or reset.
    Done,
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
        H2Stream {
            carrier,
            head,
            head_sent: 0,
            body: BodyIn::new(body, coding == BodyCoding::Chunked),
            method,
            respond: Some(respond),
            response: Response::Head,
            response_head: Vec::new(),
            parser: ResponseParser::new(HeadLimits::from_bufsize(
                bufsize,
                crate::http::DEFAULT_MAX_HEADERS,
            )),
            conn,
            cancel_counted: false,
        }
    }

    /// An h2 error on this stream as the session sees it; a reset by the
    /// client counts towards the connection's rapid-reset budget.
    fn failed(&mut self, e: h2::Error, kind: io::ErrorKind) -> io::Error {
        if e.is_reset() && e.is_remote() {
            self.count_cancel();
        }
        io::Error::new(kind, e)
    }

    /// A failed response write as the session sees it.
    fn out_failed(&mut self, e: OutError) -> io::Error {
        match e {
            OutError::H2(e) => self.failed(e, io::ErrorKind::BrokenPipe),
            OutError::Closed { reset } => {
                if reset {
                    self.count_cancel();
                }
                io::ErrorKind::BrokenPipe.into()
            }
            OutError::Framing(e) => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }

    fn count_cancel(&mut self) {
        if !self.cancel_counted {
            self.cancel_counted = true;
            self.conn.cancelled.set(self.conn.cancelled.get() + 1);
        }
    }

    fn reset(&mut self, reason: Reason) {
        if let Response::Body(out) = &mut self.response {
            out.reset(reason);
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
            self.response = match delimited {
                Some(d) => Response::Body(BodyOut::new(send, d)),
                None => Response::Done,
            };
            return Ok(Some(rest));
        }
    }
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
        if let Some(n) = this.body.give(buf) {
            return Poll::Ready(Ok(n));
        }
        // After its response the session reads no further request.
        if matches!(this.response, Response::Done) {
            return Poll::Ready(Ok(0));
        }
        match this.body.poll_read(cx, buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(n)) => Poll::Ready(Ok(n)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(this.failed(e, io::ErrorKind::ConnectionReset))),
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
            Response::Body(out) => match out.poll_write(cx, buf) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(n)) => {
                    if out.is_done() {
                        this.response = Response::Done;
                    }
                    Poll::Ready(Ok(n))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(this.out_failed(e))),
            },
            Response::Done => Poll::Ready(Ok(buf.len())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// The session is done with the stream: a body delimited by the close
    /// ends cleanly; anything else unfinished is cut with RST_STREAM.
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.response {
            Response::Done => {}
            Response::Body(out) if out.is_until_close() => {
                let _ = out.finish();
                this.response = Response::Done;
            }
            // No response at all (`http-request reject`, a client that
            // went away) or a truncated one.
            Response::Head => this.reset(Reason::CANCEL),
            Response::Body(_) => this.reset(Reason::INTERNAL_ERROR),
        }
        Poll::Ready(Ok(()))
    }
}
