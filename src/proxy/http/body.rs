//! Message bodies, streamed: a body moves through the receiving side's
//! buffer one read at a time (never more than `tune.bufsize` per
//! connection side), forwarded as framed — Content-Length counted,
//! chunked checked by `ChunkedScanner` and passed through unchanged
//! (trailers included), close-delimited until end of stream.

use std::time::Duration;

use std::pin::pin;

use futures_lite::future::poll_once;
use futures_lite::io::{AsyncRead, AsyncWrite};

use super::io::{Clock, IoFail, Lane, RecvBuf};
use crate::http::{BodyFraming, ChunkedError, ChunkedScanner, Segment};
use crate::net::blame::{Blame, Cause, Side, Stage};
use crate::net::shared::SendMore;

/// Where a body stands.
#[derive(Debug)]
pub(super) enum BodyProgress {
    Done,
    Length(u64),
    Chunked(ChunkedScanner),
    UntilClose,
}

#[derive(Debug)]
pub(super) enum BodyError {
    /// Reading the sender failed or timed out.
    Read(IoFail),
    /// Writing the receiver failed or timed out.
    Write,
    /// The sender closed before the end of a framed body.
    Truncated,
    /// Invalid chunked framing: nothing after it may be forwarded.
    Framing,
}

impl BodyError {
    /// Who is blamed when a body sent by `sender` stopped early: the
    /// sender for a read that failed or timed out, the receiver for a
    /// write that failed. Invalid chunked framing from a client is refused
    /// by the proxy (`PD`, 400); from a server it is the server's fault
    /// (`SD`, HAProxy's failed response).
    pub(super) fn blame(&self, sender: Side) -> Blame {
        let receiver = match sender {
            Side::Client => Side::Server,
            _ => Side::Client,
        };
        match self {
            BodyError::Read(IoFail::Timeout) => Blame::new(sender, Stage::Data, Cause::Timeout),
            BodyError::Read(IoFail::Io) | BodyError::Truncated => {
                Blame::new(sender, Stage::Data, Cause::Closed)
            }
            BodyError::Framing if sender == Side::Client => {
                Blame::proxy(Stage::Data, Cause::Invalid)
            }
            BodyError::Framing => Blame::new(sender, Stage::Data, Cause::Invalid),
            BodyError::Write => Blame::new(receiver, Stage::Data, Cause::Closed),
        }
    }
}

impl BodyProgress {
    pub(super) fn new(framing: BodyFraming) -> Self {
        match framing {
            BodyFraming::None | BodyFraming::ContentLength(0) => BodyProgress::Done,
            BodyFraming::ContentLength(n) => BodyProgress::Length(n),
            BodyFraming::Chunked => BodyProgress::Chunked(ChunkedScanner::default()),
            BodyFraming::UntilClose => BodyProgress::UntilClose,
        }
    }

    pub(super) fn is_done(&self) -> bool {
        matches!(self, BodyProgress::Done)
    }

    /// How many bytes at the start of `avail` belong to this body; the
    /// state moves past them.
    pub(super) fn claim(&mut self, avail: &[u8]) -> Result<usize, ChunkedError> {
        let (n, done) = match self {
            BodyProgress::Done => (0, true),
            BodyProgress::Length(left) => {
                let n = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(avail.len());
                *left -= n as u64;
                (n, *left == 0)
            }
            BodyProgress::Chunked(scanner) => {
                let scan = scanner.scan(avail)?;
                (scan.consumed, scan.done)
            }
            BodyProgress::UntilClose => (avail.len(), false),
        };
        if done {
            *self = BodyProgress::Done;
        }
        Ok(n)
    }

    /// The sender closed: fine for a close-delimited body only.
    fn end_of_stream(&mut self) -> Result<(), BodyError> {
        match self {
            BodyProgress::UntilClose | BodyProgress::Done => {
                *self = BodyProgress::Done;
                Ok(())
            }
            _ => Err(BodyError::Truncated),
        }
    }
}

/// Timeouts of one direction: `read` waits on the sender, `write` on the
/// receiver (HAProxy's `timeout client` / `timeout server`, by side).
#[derive(Clone, Copy)]
pub(super) struct Waits<'c> {
    pub read: Option<Duration>,
    pub write: Option<Duration>,
    /// The session's clock and this direction's lane in it.
    pub clock: &'c Clock,
    pub lane: Lane,
    /// The receiver's connection is shut down right after the body, with
    /// nothing awaited in between: its last bytes are held (MSG_MORE) to
    /// leave with the FIN in one segment.
    pub then_close: bool,
}

/// Whether a write of body bytes goes with MSG_MORE: the read that filled
/// the buffer filled it whole and the body continues (more follows at
/// once), or the body ends with this write and the connection is shut down
/// right after (the bytes leave with the FIN).
pub(super) fn hold_back(filled_whole: bool, body_done: bool, then_close: bool) -> bool {
    if body_done {
        then_close
    } else {
        filled_whole
    }
}

/// Forwards the rest of a body from `src` (bytes already in `buf` first)
/// to `dst`. Bytes after the body stay in `buf`. Returns the bytes
/// forwarded.
///
/// A buffer that the sender filled, of a body that continues, is sent
/// with MSG_MORE: the next read is expected to return at once, and the
/// receiver gets whole segments instead of one per buffer. Should the next
/// read have to wait after all, what the kernel held back is pushed first.
pub(super) async fn pump<R, W>(
    progress: &mut BodyProgress,
    src: &mut R,
    buf: &mut RecvBuf,
    dst: &mut W,
    waits: Waits<'_>,
) -> Result<u64, BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + SendMore,
{
    let mut moved = 0u64;
    let mut since_turn = 0usize;
    loop {
        if progress.is_done() {
            return Ok(moved);
        }
        if since_turn >= FAIR_SHARE {
            since_turn = 0;
            let_others_run().await;
        }
        if buf.is_empty() {
            let n = {
                let mut read = pin!(buf.read_from(src));
                match poll_once(read.as_mut()).await {
                    Some(r) => r.map_err(|_| BodyError::Read(IoFail::Io)),
                    None => {
                        dst.uncork();
                        waits
                            .clock
                            .timed(waits.lane, waits.read, read)
                            .await
                            .map_err(BodyError::Read)
                    }
                }
            };
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    dst.uncork();
                    return Err(e);
                }
            };
            if n == 0 {
                dst.uncork();
                progress.end_of_stream()?;
                return Ok(moved);
            }
        }
        let more_ready = buf.is_full();
        let n = progress
            .claim(buf.filled())
            .map_err(|_| BodyError::Framing)?;
        dst.set_more(hold_back(more_ready, progress.is_done(), waits.then_close));
        let sent = waits
            .clock
            .send(waits.lane, dst, &buf.filled()[..n], waits.write)
            .await;
        dst.set_more(false);
        sent.map_err(|_| BodyError::Write)?;
        buf.consume(n);
        moved += n as u64;
        since_turn += n;
    }
}

/// `option http-buffer-request`: whether the wait for a request's body
/// goes on. It ends once the body is all in the buffer, or the buffer (of
/// `capacity` bytes, head included) is full: a larger body is not waited
/// for in full, as in HAProxy. `received`: the buffer, from the head on.
pub(super) fn awaits_body(
    framing: BodyFraming,
    head_len: usize,
    received: &[u8],
    capacity: usize,
) -> bool {
    if received.len() >= capacity {
        return false;
    }
    let body = received.get(head_len..).unwrap_or_default();
    match framing {
        BodyFraming::ContentLength(n) => (body.len() as u64) < n,
        BodyFraming::Chunked => {
            // A framing error ends the wait: the rules run on what came,
            // then the exchange refuses the body (400) as without the
            // option.
            let mut scanner = ChunkedScanner::default();
            scanner.scan(body).is_ok_and(|scan| !scan.done)
        }
        BodyFraming::None | BodyFraming::UntilClose => false,
    }
}

/// What `req.body` reads of a buffered body: the chunk data of `wire` for
/// a chunked one (written to `out`, reused), else the bytes themselves,
/// `Content-Length` at most. Bytes past a framing error are left out.
pub(super) fn buffered_body<'b>(
    framing: BodyFraming,
    wire: &'b [u8],
    out: &'b mut Vec<u8>,
) -> &'b [u8] {
    match framing {
        BodyFraming::ContentLength(n) => {
            &wire[..usize::try_from(n).unwrap_or(usize::MAX).min(wire.len())]
        }
        BodyFraming::Chunked => {
            out.clear();
            let mut scanner = ChunkedScanner::default();
            let mut at = 0;
            // Each step consumes at least one byte of non-empty input.
            while at < wire.len() {
                match scanner.step(&wire[at..]) {
                    Ok(Segment::Data(n)) => {
                        out.extend_from_slice(&wire[at..at + n]);
                        at += n;
                    }
                    Ok(Segment::Framing(n)) if n > 0 => at += n,
                    _ => break,
                }
            }
            out
        }
        BodyFraming::None | BodyFraming::UntilClose => &[],
    }
}

/// Bytes a body moves before the other connections of the core get a
/// turn (HAProxy moves at most one buffer per wake-up). Both sockets of a
/// large transfer on loopback are ready again at once, so without a bound
/// the transfer runs until a socket buffer fills, and small requests on
/// the same core wait behind it.
const FAIR_SHARE: usize = 64 << 10;

/// Lets the core's other ready connections run before this one goes on:
/// their events are collected now and their tasks queued ahead of this
/// one's.
async fn let_others_run() {
    if let Ok(readiness) = crate::net::readiness::Readiness::current() {
        readiness.collect_now();
    }
    futures_lite::future::yield_now().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_held_while_more_follows_or_until_the_fin() {
        // A filled read of a body that continues: more follows at once.
        assert!(hold_back(true, false, false));
        assert!(!hold_back(false, false, true));
        // The body's last write: held only if the shutdown follows.
        assert!(hold_back(false, true, true));
        assert!(!hold_back(true, true, false));
    }

    #[test]
    fn length_claims_only_its_bytes() {
        let mut p = BodyProgress::new(BodyFraming::ContentLength(5));
        assert_eq!(p.claim(b"abc").unwrap(), 3);
        assert!(!p.is_done());
        assert_eq!(p.claim(b"deGET /").unwrap(), 2);
        assert!(p.is_done());
        assert_eq!(p.claim(b"more").unwrap(), 0);
    }

    #[test]
    fn chunked_stops_at_the_end_of_the_message() {
        let mut p = BodyProgress::new(BodyFraming::Chunked);
        let wire = b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1\r\n";
        let n = p.claim(wire).unwrap();
        assert_eq!(&wire[..n], b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n");
        assert!(p.is_done());
    }

    #[test]
    fn a_buffered_body_is_waited_for_until_complete_or_the_buffer_is_full() {
        let head = b"POST / HTTP/1.1\r\n\r\n";
        let mut wire = head.to_vec();
        wire.extend_from_slice(b"abc");
        assert!(awaits_body(
            BodyFraming::ContentLength(5),
            head.len(),
            &wire,
            1024
        ));
        assert!(!awaits_body(
            BodyFraming::ContentLength(3),
            head.len(),
            &wire,
            1024
        ));
        assert!(!awaits_body(
            BodyFraming::ContentLength(5),
            head.len(),
            &wire,
            wire.len()
        ));
        let mut chunked = head.to_vec();
        chunked.extend_from_slice(b"3\r\nabc\r\n");
        assert!(awaits_body(
            BodyFraming::Chunked,
            head.len(),
            &chunked,
            1024
        ));
        chunked.extend_from_slice(b"0\r\n\r\n");
        assert!(!awaits_body(
            BodyFraming::Chunked,
            head.len(),
            &chunked,
            1024
        ));
        // Bad framing: no more waiting, the exchange refuses it.
        assert!(!awaits_body(
            BodyFraming::Chunked,
            head.len(),
            b"POST / HTTP/1.1\r\n\r\nzz\r\n",
            1024
        ));
        assert!(!awaits_body(BodyFraming::None, head.len(), head, 1024));
    }

    #[test]
    fn a_buffered_body_reads_without_its_chunk_framing() {
        let mut out = Vec::new();
        let wire = b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\nGET";
        assert_eq!(
            buffered_body(BodyFraming::Chunked, wire, &mut out),
            b"abcde"
        );
        // Cut inside a chunk: what came of it.
        assert_eq!(
            buffered_body(BodyFraming::Chunked, &wire[..16], &mut out),
            b"abcd"
        );
        assert_eq!(
            buffered_body(BodyFraming::Chunked, b"3\r\nabc\r\nzz", &mut out),
            b"abc"
        );
        assert_eq!(
            buffered_body(BodyFraming::ContentLength(2), b"abcd", &mut out),
            b"ab"
        );
        assert_eq!(
            buffered_body(BodyFraming::ContentLength(9), b"abcd", &mut out),
            b"abcd"
        );
    }

    #[test]
    fn bad_chunk_size_is_an_error() {
        let mut p = BodyProgress::new(BodyFraming::Chunked);
        assert!(p.claim(b"zz\r\n").is_err());
    }

    #[test]
    fn bodiless_framings_are_done_at_once() {
        assert!(BodyProgress::new(BodyFraming::None).is_done());
        assert!(BodyProgress::new(BodyFraming::ContentLength(0)).is_done());
        assert!(!BodyProgress::new(BodyFraming::UntilClose).is_done());
    }

    #[test]
    fn close_delimited_ends_at_end_of_stream_only() {
        let mut p = BodyProgress::new(BodyFraming::UntilClose);
        assert_eq!(p.claim(b"anything").unwrap(), 8);
        assert!(p.end_of_stream().is_ok());
        let mut l = BodyProgress::new(BodyFraming::ContentLength(3));
        assert!(matches!(l.end_of_stream(), Err(BodyError::Truncated)));
    }
}
