//! A message body between HTTP/2 frames and the HTTP/1.1 bytes the
//! session moves, in both directions, for both sides of percore: what
//! arrives as DATA and trailers is read as HTTP/1.1 body bytes
//! ([`BodyIn`]: a client's request body, a server's response body), and
//! HTTP/1.1 body bytes written are sent as DATA and trailers
//! ([`BodyOut`]: a response to a client, a request to a server).

use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use h2::{Reason, RecvStream, SendStream};
use http::header::{HeaderName, HeaderValue};

use crate::http::{ChunkedError, ChunkedScanner, Segment};

/// Fields that only mean something on one HTTP/1.1 connection (RFC 9113
/// §8.2.2): never sent in an HTTP/2 message.
pub(super) const CONNECTION_FIELDS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// Fields that may travel as trailers between HTTP/2 and HTTP/1.1: not
/// the connection-specific ones, nor those that frame or route a message
/// (RFC 9110 §6.5.1).
pub(super) fn trailer_allowed(name: &str) -> bool {
    !CONNECTION_FIELDS.contains(&name)
        && !matches!(name, "content-length" | "host" | "te" | "trailer")
        && !name.starts_with(':')
}

/// DATA payloads (and trailers) read as HTTP/1.1 body bytes: as they are
/// when the head gave a `content-length`, else as chunks, the trailers
/// in the last chunk. Each payload's flow-control window is given back
/// to the peer only as the reader takes the bytes, so a body is buffered
/// no further than the stream's window and the reader's buffer.
pub(super) struct BodyIn {
    /// `None` once the body ended (or had none).
    body: Option<RecvStream>,
    chunked: bool,
    /// Part of a DATA payload not read yet.
    data: Bytes,
    /// Chunk framing to give before (size line) or after (CRLF, last
    /// chunk) the payload.
    framing: Vec<u8>,
    framing_sent: usize,
    /// The CRLF that closes the current chunk is due once `data` is out.
    crlf_due: bool,
}

impl BodyIn {
    /// `chunked`: the head written for the message said
    /// `transfer-encoding: chunked`.
    pub(super) fn new(body: RecvStream, chunked: bool) -> Self {
        BodyIn {
            body: (!body.is_end_stream()).then_some(body),
            chunked,
            data: Bytes::new(),
            framing: Vec::new(),
            framing_sent: 0,
            crlf_due: false,
        }
    }

    /// Gives out pending framing bytes, then payload bytes; `None` when
    /// nothing is pending.
    pub(super) fn give(&mut self, buf: &mut [u8]) -> Option<usize> {
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
                // The peer may send this much more: the reader took it.
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

    /// Reads body bytes into `buf`; `Ok(0)` at the end of the body.
    pub(super) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<Result<usize, h2::Error>> {
        loop {
            if let Some(n) = self.give(buf) {
                return Poll::Ready(Ok(n));
            }
            let Some(body) = &mut self.body else {
                return Poll::Ready(Ok(0));
            };
            match body.poll_data(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(data))) => {
                    if data.is_empty() {
                        continue;
                    }
                    if self.chunked {
                        self.framing = format!("{:x}\r\n", data.len()).into_bytes();
                        self.crlf_due = true;
                    }
                    self.data = data;
                }
                Poll::Ready(Some(Err(e))) => {
                    self.body = None;
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(None) => {
                    if self.chunked {
                        // The trailers, if any, go in the last chunk. h2's
                        // `poll_trailers` is doc(hidden) but public (hyper
                        // uses it); `trailers()` is the same as a future.
                        let trailers = match body.poll_trailers(cx) {
                            Poll::Pending => return Poll::Pending,
                            Poll::Ready(Ok(t)) => t,
                            Poll::Ready(Err(e)) => {
                                self.body = None;
                                return Poll::Ready(Err(e));
                            }
                        };
                        self.framing.extend_from_slice(b"0\r\n");
                        for (name, value) in trailers.iter().flatten() {
                            // Values are checked by h2 (no CR, LF or NUL).
                            if trailer_allowed(name.as_str()) {
                                self.framing.extend_from_slice(name.as_str().as_bytes());
                                self.framing.extend_from_slice(b": ");
                                self.framing.extend_from_slice(value.as_bytes());
                                self.framing.extend_from_slice(b"\r\n");
                            }
                        }
                        self.framing.extend_from_slice(b"\r\n");
                    }
                    // With a content-length there is no place for trailers
                    // in HTTP/1.1: they are dropped.
                    self.body = None;
                }
            }
        }
    }
}

/// What delimits a body in the HTTP/1.1 bytes written.
pub(super) enum Delimited {
    Length(u64),
    Chunked(ChunkedScanner),
    UntilClose,
}

/// Why a body could not be sent on.
#[derive(Debug)]
pub(super) enum OutError {
    /// h2 refused (the stream or the connection failed).
    H2(h2::Error),
    /// The stream is closed; `reset`: the peer reset it.
    Closed { reset: bool },
    /// The chunked framing written was invalid.
    Framing(ChunkedError),
}

/// HTTP/1.1 body bytes written and sent on as DATA (de-chunked), as fast
/// as the peer's windows allow (a write waits for window), the trailers
/// of a chunked body's end as a trailing HEADERS frame.
pub(super) struct BodyOut {
    send: SendStream<Bytes>,
    delimited: Delimited,
    /// A chunked body's framing bytes since its last payload byte.
    framing_seen: Vec<u8>,
    done: bool,
}

impl BodyOut {
    pub(super) fn new(send: SendStream<Bytes>, delimited: Delimited) -> Self {
        BodyOut {
            send,
            delimited,
            framing_seen: Vec::new(),
            done: false,
        }
    }

    /// END_STREAM was sent: the body is complete.
    pub(super) fn is_done(&self) -> bool {
        self.done
    }

    pub(super) fn is_until_close(&self) -> bool {
        matches!(self.delimited, Delimited::UntilClose)
    }

    pub(super) fn reset(&mut self, reason: Reason) {
        self.send.send_reset(reason);
        self.done = true;
    }

    /// Ends a body delimited by the close.
    pub(super) fn finish(&mut self) -> Result<(), h2::Error> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        self.send.send_data(Bytes::new(), true)
    }

    /// Takes bytes of the body as written (its framing included); returns
    /// how many were taken. Bytes after the end of the body are taken and
    /// dropped (they are not part of it).
    pub(super) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<Result<usize, OutError>> {
        if self.done {
            return Poll::Ready(Ok(buf.len()));
        }
        match &mut self.delimited {
            Delimited::Length(left) => {
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                let last = n as u64 == *left;
                let sent = match self.send_data(cx, &buf[..n], last) {
                    Poll::Ready(Ok(sent)) => sent,
                    other => return other,
                };
                if let Delimited::Length(left) = &mut self.delimited {
                    *left -= sent as u64;
                    if *left == 0 {
                        self.done = true;
                        return Poll::Ready(Ok(buf.len()));
                    }
                }
                Poll::Ready(Ok(sent))
            }
            Delimited::Chunked(scanner) => {
                let in_data = usize::try_from(scanner.data_remaining()).unwrap_or(usize::MAX);
                if in_data > 0 {
                    // Payload: the scanner moves past what was sent only.
                    let n = in_data.min(buf.len());
                    let sent = match self.send_data(cx, &buf[..n], false) {
                        Poll::Ready(Ok(sent)) => sent,
                        other => return other,
                    };
                    if let Delimited::Chunked(scanner) = &mut self.delimited {
                        let _ = scanner.step(&buf[..sent]);
                    }
                    self.framing_seen.clear();
                    return Poll::Ready(Ok(sent));
                }
                let step = scanner.step(buf).map_err(OutError::Framing)?;
                let ended = scanner.is_done();
                let n = match step {
                    Segment::Framing(n) => n,
                    // Never returned outside data; taken as framing.
                    Segment::Data(n) => n,
                    Segment::Done => buf.len(),
                };
                // Framing since the last payload byte: at the end, the last
                // chunk and its trailers (bounded by the scanner's limits).
                self.framing_seen.extend_from_slice(&buf[..n]);
                if ended {
                    let trailers = trailers_of_last_chunk(&self.framing_seen);
                    self.done = true;
                    let sent = if trailers.is_empty() {
                        self.send.send_data(Bytes::new(), true)
                    } else {
                        self.send.send_trailers(trailers)
                    };
                    sent.map_err(OutError::H2)?;
                }
                Poll::Ready(Ok(n))
            }
            Delimited::UntilClose => self.send_data(cx, buf, false),
        }
    }

    /// Sends up to `payload.len()` bytes as DATA as far as the windows
    /// allow; `last`: they end the body.
    fn send_data(
        &mut self,
        cx: &mut Context<'_>,
        payload: &[u8],
        last: bool,
    ) -> Poll<Result<usize, OutError>> {
        let send = &mut self.send;
        let sent = if payload.is_empty() {
            send.send_data(Bytes::new(), last).map(|()| 0)
        } else {
            let mut capacity = send.capacity();
            if capacity == 0 {
                send.reserve_capacity(payload.len());
                capacity = match send.poll_capacity(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Ok(n))) => n,
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(OutError::H2(e))),
                    // The stream is closed: reset by the peer?
                    Poll::Ready(None) => {
                        let reset = matches!(send.poll_reset(cx), Poll::Ready(Ok(_)));
                        return Poll::Ready(Err(OutError::Closed { reset }));
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
        if last && matches!(sent, Ok(n) if n == payload.len()) {
            self.done = true;
        }
        Poll::Ready(sent.map_err(OutError::H2))
    }
}

/// The trailer fields of a chunked body's end, from the framing bytes
/// after its last payload byte (`\r\n0\r\nname: value\r\n\r\n`; the
/// scanner already checked their syntax).
pub(super) fn trailers_of_last_chunk(framing: &[u8]) -> http::HeaderMap {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_come_from_the_last_chunk() {
        let t =
            trailers_of_last_chunk(b"\r\n0;ext=1\r\ngrpc-status: 0\r\nGrpc-Message:  ok \r\n\r\n");
        assert_eq!(t.len(), 2);
        assert_eq!(t["grpc-status"], "0");
        assert_eq!(t["grpc-message"], "ok");
        assert!(trailers_of_last_chunk(b"0\r\n\r\n").is_empty());
        // Framing and routing fields never become trailers.
        let t = trailers_of_last_chunk(b"0\r\ncontent-length: 5\r\nhost: x\r\nx-ok: 1\r\n\r\n");
        assert_eq!(t.len(), 1);
        assert_eq!(t["x-ok"], "1");
    }
}
