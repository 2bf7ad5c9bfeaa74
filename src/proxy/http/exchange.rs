//! One request/response exchange with a server, once the request head has
//! been parsed and rewritten: the request body goes up while the response
//! comes down, in the same task (a server may answer before it has read
//! the whole body, or stream its answer while reading).

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::Duration;

use crate::net::shared::SendMore;

use super::body::{hold_back, pump, BodyError, BodyProgress, Waits};
use super::client::ClientIo;
use super::io::{Clock, IoFail, Lane, RecvBuf, Shared};
use super::report::ResponseSeen;
use super::route::ResponseHook;
use super::server::ServerIo;
use crate::http::{
    write_response_head, BodyFraming, ConnectionMode, Method, ParseStatus, ResponseHead,
    ResponseParser, Version,
};
use crate::net::blame::{Blame, Cause, Side, Stage};
use crate::rules::ResponseEnd;

/// What the session knows about the request being served.
#[derive(Debug, Clone, Copy)]
pub(super) struct RequestInfo {
    pub method: Method,
    pub version: Version,
    pub framing: BodyFraming,
    /// The client may send another request afterwards.
    pub keep_alive: bool,
    /// The request asks for a protocol switch (forwarded with its Upgrade).
    pub upgrade: bool,
}

impl RequestInfo {
    /// Can be sent again on another connection if the first one turns out
    /// to be dead before answering: nothing of the client's body was
    /// consumed.
    pub fn replayable(&self) -> bool {
        matches!(
            self.framing,
            BodyFraming::None | BodyFraming::ContentLength(0)
        )
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct ExchangeTimeouts {
    pub client: Option<Duration>,
    pub server: Option<Duration>,
}

/// How an exchange ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// A complete response was delivered.
    Done {
        /// The client connection may carry another request.
        client_keep: bool,
        /// The server connection may carry another request.
        server_keep: bool,
    },
    /// The server switched protocols (101, or 2xx to CONNECT): the
    /// connection becomes a tunnel; leftover bytes stay in the buffers.
    Tunnel,
    /// The exchange failed; `status` is the error page to send if nothing
    /// of the response reached the client yet (`None`: just close), as a
    /// rule or [`Blame::error_status`] chose it; `end` says who failed and
    /// where, for the log, the counters and the passive checks.
    Failed {
        status: Option<u16>,
        retryable: bool,
        end: Blame,
    },
}

/// Everything an exchange borrows from its session.
pub(super) struct Exchange<'a, 'c> {
    pub client: &'a RefCell<ClientIo>,
    pub server: &'a RefCell<ServerIo>,
    pub client_buf: &'a mut RecvBuf,
    pub server_buf: &'a mut RecvBuf,
    pub parser: &'a mut ResponseParser,
    pub out: &'a mut Vec<u8>,
    pub req: RequestInfo,
    /// The request body's state, with `claimed` bytes at the start of
    /// `client_buf` already checked and to be sent with the head.
    pub progress: BodyProgress,
    pub claimed: usize,
    pub timeouts: ExchangeTimeouts,
    pub server_close: bool,
    /// Bytes sent to the server and to the client, for the counters.
    pub bytes_up: &'a Cell<u64>,
    pub bytes_down: &'a Cell<u64>,
    /// Where the final response head's status and time are noted.
    pub seen: &'a ResponseSeen,
    /// `http-response` rules and cookie persistence.
    pub hook: ResponseHook<'a, 'c>,
    /// The session's wait deadlines.
    pub clock: &'a Clock,
}

/// Why the response side stopped early.
enum Down {
    /// Nothing came back: end of stream or reset before any byte.
    Empty,
    /// An invalid or truncated response head → 502.
    Bad,
    /// No response head within `timeout server` → 504.
    Timeout,
    /// Broke after the response head went out: close, no page. The
    /// client could not be written to.
    ClientGone,
    /// Same, the response body stopped early (see [`BodyError::blame`]).
    Body(Blame),
    /// An `http-response deny` rule refused the response.
    Denied(u16),
}

impl Down {
    /// Who is blamed, and whether the request could go again on a new
    /// connection (only if the server closed without a byte).
    fn blame(&self) -> Blame {
        match self {
            Down::Empty => Blame::server(Stage::Headers, Cause::Closed),
            Down::Bad => Blame::proxy(Stage::Headers, Cause::Invalid),
            Down::Timeout => Blame::server(Stage::Headers, Cause::Timeout),
            Down::ClientGone => Blame::client(Stage::Data, Cause::Closed),
            Down::Body(blame) => *blame,
            // HAProxy logs a response blocked by a rule as PH.
            Down::Denied(_) => Blame::proxy(Stage::Headers, Cause::Denied),
        }
    }
}

/// Why the request body stopped early.
enum Up {
    /// The client went away or broke the framing, or was too slow.
    Client(Blame),
    /// The server stopped reading; its answer may still come.
    Server,
}

impl From<BodyError> for Up {
    fn from(e: BodyError) -> Up {
        match e.blame(Side::Client) {
            blame if blame.side == Side::Server => Up::Server,
            blame => Up::Client(blame),
        }
    }
}

/// Sends the request (`head` + body) and relays the response.
pub(super) async fn run(x: Exchange<'_, '_>, head: &[u8]) -> Outcome {
    let Exchange {
        client,
        server,
        client_buf,
        server_buf,
        parser,
        out,
        req,
        mut progress,
        claimed,
        timeouts,
        server_close,
        bytes_up,
        bytes_down,
        seen,
        mut hook,
        clock,
    } = x;

    // The head and whatever body bytes already arrived go in one write.
    out.clear();
    out.extend_from_slice(head);
    out.extend_from_slice(&client_buf.filled()[..claimed]);
    client_buf.consume(claimed);
    if clock
        .send(Lane::Down, &mut Shared(server), out, timeouts.server)
        .await
        .is_err()
    {
        let end = Down::Empty.blame();
        return Outcome::Failed {
            status: end.error_status(),
            retryable: req.replayable(),
            end,
        };
    }
    // The head was counted as received; the body bytes sent with it are
    // counted here.
    bytes_up.set(bytes_up.get() + claimed as u64);

    let upload_done = Cell::new(progress.is_done());
    let responded = Cell::new(false);
    let waits_up = Waits {
        read: timeouts.client,
        write: timeouts.server,
        clock,
        lane: Lane::Up,
        then_close: false,
    };
    let up = async {
        let r = pump(
            &mut progress,
            &mut Shared(client),
            client_buf,
            &mut Shared(server),
            waits_up,
        )
        .await;
        upload_done.set(true);
        match r {
            Ok(n) => {
                bytes_up.set(bytes_up.get() + n);
                Ok(())
            }
            Err(e) => Err(Up::from(e)),
        }
    };
    let down = response(
        client,
        server,
        server_buf,
        parser,
        out,
        req,
        timeouts,
        server_close,
        &upload_done,
        &responded,
        bytes_down,
        seen,
        &mut hook,
        clock,
    );
    let (down, up) = race(pin!(up), pin!(down)).await;

    let up_ok = matches!(up, Some(Ok(())));
    match (down, up) {
        (_, Some(Err(Up::Client(end)))) => Outcome::Failed {
            status: if responded.get() {
                None
            } else {
                end.error_status()
            },
            retryable: false,
            end,
        },
        (
            Some(Ok(Outcome::Done {
                client_keep,
                server_keep,
            })),
            _,
        ) => Outcome::Done {
            client_keep: client_keep && up_ok,
            server_keep: server_keep && up_ok,
        },
        (Some(Ok(outcome)), _) => outcome,
        (Some(Err(down)), _) => {
            let sent = responded.get();
            let end = down.blame();
            Outcome::Failed {
                status: match down {
                    Down::Denied(status) => (!sent).then_some(status),
                    _ if sent => None,
                    _ => end.error_status(),
                },
                retryable: matches!(down, Down::Empty) && req.replayable() && !sent,
                end,
            }
        }
        (None, _) => Outcome::Failed {
            status: None,
            retryable: false,
            end: Blame::client(Stage::Data, Cause::Closed),
        },
    }
}

/// An `http-response` rule replaced the server's response: `deny` gives
/// an error page (by the session), `return` and `redirect` write their
/// answer to `out`, to be sent by [`answered`]; its status. `keep`: the
/// client connection may carry another request.
fn answer_instead<'c>(
    end: ResponseEnd<'c>,
    head: &ResponseHead<'_>,
    keep: bool,
    hook: &mut ResponseHook<'_, 'c>,
    out: &mut Vec<u8>,
) -> Result<u16, Down> {
    match end {
        ResponseEnd::Deny(status) => Err(Down::Denied(status)),
        _ => Ok(hook.write_answer(end, head, out, !keep)),
    }
}

/// Sends the answer a rule gave instead of the server's response. The
/// server's body is never read: its connection is not reused.
async fn answered(
    status: u16,
    keep: bool,
    (client, timeout): (&RefCell<ClientIo>, Option<Duration>),
    out: &[u8],
    responded: &Cell<bool>,
    seen: &ResponseSeen,
    clock: &Clock,
) -> Result<Outcome, Down> {
    seen.final_head(status);
    responded.set(true);
    clock
        .send(Lane::Down, &mut Shared(client), out, timeout)
        .await
        .map_err(|_| Down::ClientGone)?;
    Ok(Outcome::Done {
        client_keep: keep,
        server_keep: false,
    })
}

/// Polls both halves; the exchange ends when the response side ends, or
/// when the client side fails (nothing more can be delivered then).
/// Returns the response result (if it ended) and the upload result (if it
/// ended).
///
/// Takes both pinned where the caller made them: passed by value they would
/// be moved into this future and, as rustc lays out futures, kept twice
/// (rust-lang/rust #62958) — a few KiB copied for every request.
async fn race<U, D>(
    mut up: Pin<&mut U>,
    mut down: Pin<&mut D>,
) -> (Option<Result<Outcome, Down>>, Option<Result<(), Up>>)
where
    U: Future<Output = Result<(), Up>>,
    D: Future<Output = Result<Outcome, Down>>,
{
    let mut up_result: Option<Result<(), Up>> = None;
    let down_result = poll_fn(|cx| {
        if up_result.is_none() {
            if let Poll::Ready(r) = up.as_mut().poll(cx) {
                let client_failed = matches!(r, Err(Up::Client(_)));
                up_result = Some(r);
                if client_failed {
                    return Poll::Ready(None);
                }
            }
        }
        down.as_mut().poll(cx).map(Some)
    })
    .await;
    (down_result, up_result)
}

#[allow(clippy::too_many_arguments)]
async fn response(
    client: &RefCell<ClientIo>,
    server: &RefCell<ServerIo>,
    buf: &mut RecvBuf,
    parser: &mut ResponseParser,
    out: &mut Vec<u8>,
    req: RequestInfo,
    timeouts: ExchangeTimeouts,
    server_close: bool,
    upload_done: &Cell<bool>,
    responded: &Cell<bool>,
    bytes_down: &Cell<u64>,
    seen: &ResponseSeen,
    hook: &mut ResponseHook<'_, '_>,
    clock: &Clock,
) -> Result<Outcome, Down> {
    loop {
        // Read until a complete head is there.
        let head = loop {
            if !buf.is_empty() {
                match parser.parse(buf.filled(), req.method) {
                    ParseStatus::Complete(h) => break h,
                    ParseStatus::Error(err) => {
                        seen.invalid_head(err);
                        return Err(Down::Bad);
                    }
                    ParseStatus::Partial => {}
                }
            }
            let had_bytes = !buf.is_empty();
            let n = loop {
                match clock
                    .timed(
                        Lane::Down,
                        timeouts.server,
                        buf.read_from(&mut Shared(server)),
                    )
                    .await
                {
                    Ok(n) => break n,
                    // While the body is still going up the server is busy
                    // reading it: `timeout server` counts from the end.
                    Err(IoFail::Timeout) if !upload_done.get() => continue,
                    Err(IoFail::Timeout) => return Err(Down::Timeout),
                    Err(IoFail::Io) if had_bytes => return Err(Down::Bad),
                    Err(IoFail::Io) => return Err(Down::Empty),
                }
            };
            if n == 0 {
                return Err(if had_bytes { Down::Bad } else { Down::Empty });
            }
        };

        let head_len = head.head_len;
        if head.is_informational() && !head.is_switching_protocols() {
            // 100 Continue, 103 Early Hints: relayed to 1.1 clients only.
            if req.version == Version::Http11 {
                out.clear();
                write_response_head(out, &head, req.version, ConnectionMode::KeepAlive);
                buf.consume(head_len);
                clock
                    .send(Lane::Down, &mut Shared(client), out, timeouts.client)
                    .await
                    .map_err(|_| Down::ClientGone)?;
            } else {
                buf.consume(head_len);
            }
            continue;
        }
        seen.final_head(head.status);
        if head.starts_tunnel(req.method) {
            if head.is_switching_protocols() && !req.upgrade {
                return Err(Down::Bad);
            }
            let mode = if head.is_switching_protocols() {
                ConnectionMode::Upgrade
            } else {
                ConnectionMode::KeepAlive
            };
            out.clear();
            write_response_head(out, &head, req.version, mode);
            if let Err(end) = hook.apply(&head, out) {
                let status = answer_instead(end, &head, false, hook, out)?;
                buf.consume(buf.len());
                bytes_down.set(bytes_down.get() + out.len() as u64);
                let to = (client, timeouts.client);
                return answered(status, false, to, out, responded, seen, clock).await;
            }
            buf.consume(head_len);
            responded.set(true);
            clock
                .send(Lane::Down, &mut Shared(client), out, timeouts.client)
                .await
                .map_err(|_| Down::ClientGone)?;
            return Ok(Outcome::Tunnel);
        }

        let client_keep = req.keep_alive && head.framing != BodyFraming::UntilClose;
        let server_keep = head.keep_alive && !server_close;
        let mode = if client_keep {
            ConnectionMode::KeepAlive
        } else {
            ConnectionMode::Close
        };
        let mut progress = BodyProgress::new(head.framing);
        out.clear();
        write_response_head(out, &head, req.version, mode);
        if let Err(end) = hook.apply(&head, out) {
            let status = answer_instead(end, &head, req.keep_alive, hook, out)?;
            buf.consume(buf.len());
            bytes_down.set(bytes_down.get() + out.len() as u64);
            let to = (client, timeouts.client);
            return answered(status, req.keep_alive, to, out, responded, seen, clock).await;
        }
        let more_ready = buf.is_full();
        buf.consume(head_len);
        let claimed = progress.claim(buf.filled()).map_err(|_| Down::Bad)?;
        out.extend_from_slice(&buf.filled()[..claimed]);
        buf.consume(claimed);
        responded.set(true);
        // The head goes out with the body's first bytes, held back by the
        // kernel (`hold_back`) while a filled read says more is waiting,
        // or, when the response is whole and the connection closes after
        // it, until the session's shutdown (nothing is awaited in between,
        // `Session::run`) sends it with the FIN: one segment instead of
        // two, and one ACK from the client instead of two.
        let then_close = !client_keep;
        let mut to_client = Shared(client);
        to_client.set_more(hold_back(more_ready, progress.is_done(), then_close));
        let sent = clock
            .send(Lane::Down, &mut to_client, out, timeouts.client)
            .await;
        to_client.set_more(false);
        sent.map_err(|_| Down::ClientGone)?;
        let mut moved = out.len() as u64;
        let waits = Waits {
            read: timeouts.server,
            write: timeouts.client,
            clock,
            lane: Lane::Down,
            then_close,
        };
        moved += pump(
            &mut progress,
            &mut Shared(server),
            buf,
            &mut Shared(client),
            waits,
        )
        .await
        .map_err(|e| Down::Body(e.blame(Side::Server)))?;
        bytes_down.set(bytes_down.get() + moved);
        // Bytes after the response were never asked for: the connection
        // cannot be trusted with another request.
        let clean = buf.is_empty();
        buf.consume(buf.len());
        return Ok(Outcome::Done {
            client_keep,
            server_keep: server_keep && clean,
        });
    }
}
