//! A bidirectional L4 tunnel between an accepted client and a connected
//! server, in one task: both directions and the idle timer are polled by a
//! single future (no task per direction).

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use glommio::timer::Timer;

use super::blame::{Blame, Cause, Side, Stage};
use super::copy::{copy_one_way, write_chunk};
use super::forward::{ChunkBuf, ForwardError, Meter};
use super::pipe::PipePool;
use super::shared::Shared;
use super::splice::splice_one_way;
use super::stream::Stream;

#[derive(Debug, Clone)]
pub struct TunnelSettings {
    /// End the tunnel when no byte moved in either direction for this long
    /// (HAProxy `timeout tunnel`). `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Forward bulk data with splice(2) (HAProxy: unless `nosplice`).
    pub splice: bool,
    /// Chunk buffer size (HAProxy `tune.bufsize`).
    pub bufsize: usize,
}

#[derive(Debug)]
pub struct TunnelReport {
    /// Bytes delivered to the server, `client_prefix` included.
    pub client_to_server: u64,
    /// Bytes delivered to the client, `server_prefix` included.
    pub server_to_client: u64,
    /// Of both counts, the bytes that went through a pipe.
    pub spliced: u64,
    /// When the first byte reached the client (server prefix included).
    pub first_to_client: Option<Instant>,
    pub end: TunnelEnd,
}

/// How a tunnel ended. When one side failed, the other side's socket was
/// closed with SO_LINGER 0 so that it sees a reset too.
#[derive(Debug)]
pub enum TunnelEnd {
    /// Both sides ended their stream and every byte was delivered.
    Closed,
    /// The client reset the connection (ECONNRESET/EPIPE).
    ClientReset,
    /// The server reset the connection.
    ServerReset,
    /// Another I/O error on the client socket.
    ClientError(io::Error),
    /// Another I/O error on the server socket.
    ServerError(io::Error),
    /// Our own resources failed (a pipe); both sides were reset.
    LocalError(io::Error),
    /// No byte moved for `idle_timeout`; both sides were closed.
    IdleTimeout,
}

impl TunnelEnd {
    /// Who ended the tunnel early (`None`: both sides closed normally).
    /// An idle tunnel is blamed on the client, as before the split of
    /// `timeout client` and `timeout server` for tunnels.
    pub fn blame(&self) -> Option<Blame> {
        match self {
            TunnelEnd::Closed => None,
            TunnelEnd::ClientReset | TunnelEnd::ClientError(_) => {
                Some(Blame::client(Stage::Data, Cause::Closed))
            }
            TunnelEnd::ServerReset | TunnelEnd::ServerError(_) => {
                Some(Blame::server(Stage::Data, Cause::Closed))
            }
            TunnelEnd::LocalError(_) => {
                Some(Blame::new(Side::Resource, Stage::Data, Cause::Closed))
            }
            TunnelEnd::IdleTimeout => Some(Blame::client(Stage::Data, Cause::Timeout)),
        }
    }

    fn client(e: io::Error) -> Self {
        if is_reset(&e) {
            TunnelEnd::ClientReset
        } else {
            TunnelEnd::ClientError(e)
        }
    }

    fn server(e: io::Error) -> Self {
        if is_reset(&e) {
            TunnelEnd::ServerReset
        } else {
            TunnelEnd::ServerError(e)
        }
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// Forwards bytes both ways until both sides have ended their stream, one
/// side fails, or the tunnel is idle for `settings.idle_timeout`. Both
/// sockets are closed on return.
///
/// `client_prefix` (bytes already read from the client) is delivered to the
/// server before anything else, `server_prefix` likewise to the client.
/// End of stream from one side becomes shutdown(SHUT_WR) on the other while
/// the opposite direction keeps flowing. Splicing needs the sockets in
/// O_NONBLOCK mode; they are switched here (glommio does not rely on the
/// flag). If that fails the tunnel copies.
pub async fn run<S>(
    client: S,
    server: S,
    client_prefix: &[u8],
    server_prefix: &[u8],
    settings: &TunnelSettings,
    pipes: &PipePool,
) -> TunnelReport
where
    S: AsyncRead + AsyncWrite + AsRawFd + Unpin,
{
    let splice = settings.splice
        && set_nonblocking(client.as_raw_fd()).is_ok()
        && set_nonblocking(server.as_raw_fd()).is_ok();
    let client = RefCell::new(client);
    let server = RefCell::new(server);
    let last_activity = Cell::new(Instant::now());
    let activity = settings.idle_timeout.map(|_| &last_activity);
    let up = Meter::new(activity);
    let down = Meter::new(activity);

    let flows = join_until_error(
        async {
            one_way(
                Shared(&client),
                Shared(&server),
                client_prefix,
                splice,
                settings,
                pipes,
                &up,
            )
            .await
            .map_err(upstream_end)
        },
        async {
            one_way(
                Shared(&server),
                Shared(&client),
                server_prefix,
                splice,
                settings,
                pipes,
                &down,
            )
            .await
            .map_err(downstream_end)
        },
    );
    let end = until_done_or_idle(flows, settings.idle_timeout, &last_activity).await;

    let (client, server) = (client.into_inner(), server.into_inner());
    match end {
        TunnelEnd::ClientReset | TunnelEnd::ClientError(_) => reset_on_close(&server),
        TunnelEnd::ServerReset | TunnelEnd::ServerError(_) => reset_on_close(&client),
        TunnelEnd::LocalError(_) => {
            reset_on_close(&client);
            reset_on_close(&server);
        }
        TunnelEnd::Closed | TunnelEnd::IdleTimeout => {}
    }
    TunnelReport {
        client_to_server: up.delivered(),
        server_to_client: down.delivered(),
        spliced: up.spliced() + down.spliced(),
        first_to_client: down.first_delivery(),
        end,
    }
}

/// [`run`] for streams that may be TLS: plain pairs splice through `run`;
/// a pair with a TLS side copies through user space (TLS cannot splice).
pub async fn run_streams(
    client: Stream,
    server: Stream,
    client_prefix: &[u8],
    server_prefix: &[u8],
    settings: &TunnelSettings,
    pipes: &PipePool,
) -> TunnelReport {
    match (client, server) {
        (Stream::Plain(client), Stream::Plain(server)) => {
            run(
                client,
                server,
                client_prefix,
                server_prefix,
                settings,
                pipes,
            )
            .await
        }
        // TLS cannot splice: the same tunnel, copying through user space.
        (client, server) => {
            let copy = TunnelSettings {
                splice: false,
                ..settings.clone()
            };
            run(client, server, client_prefix, server_prefix, &copy, pipes).await
        }
    }
}

/// One direction, prefix first, ended by a half-close of the destination.
async fn one_way<S>(
    mut src: Shared<'_, S>,
    mut dst: Shared<'_, S>,
    prefix: &[u8],
    splice: bool,
    settings: &TunnelSettings,
    pipes: &PipePool,
    meter: &Meter<'_>,
) -> Result<(), ForwardError>
where
    S: AsyncRead + AsyncWrite + AsRawFd + Unpin,
{
    if !prefix.is_empty() {
        write_chunk(&mut dst, prefix).await?;
        meter.on_delivered(prefix.len(), false);
    }
    let mut buf = ChunkBuf::new(settings.bufsize);
    if splice {
        splice_one_way(&mut src, &mut dst, pipes, &mut buf, meter).await?;
    } else {
        copy_one_way(&mut src, &mut dst, &mut buf, meter).await?;
    }
    drop(buf);
    // glommio's close is shutdown(SHUT_WR): the peer sees end of stream
    // while the other direction keeps flowing.
    dst.close().await.map_err(ForwardError::Write)
}

/// How a client-to-server flow failed, as the tunnel's end.
fn upstream_end(e: ForwardError) -> TunnelEnd {
    match e {
        ForwardError::Read(e) => TunnelEnd::client(e),
        ForwardError::Write(e) => TunnelEnd::server(e),
        ForwardError::Pipe(e) => TunnelEnd::LocalError(e),
    }
}

/// How a server-to-client flow failed, as the tunnel's end.
fn downstream_end(e: ForwardError) -> TunnelEnd {
    match e {
        ForwardError::Read(e) => TunnelEnd::server(e),
        ForwardError::Write(e) => TunnelEnd::client(e),
        ForwardError::Pipe(e) => TunnelEnd::LocalError(e),
    }
}

/// Runs both flows until they end, or until nothing moved either way for
/// `idle` (HAProxy `timeout tunnel`).
async fn until_done_or_idle<F>(
    flows: F,
    idle: Option<Duration>,
    last_activity: &Cell<Instant>,
) -> TunnelEnd
where
    F: std::future::Future<Output = Result<(), TunnelEnd>>,
{
    let end = match idle {
        None => flows.await,
        Some(timeout) => {
            futures_lite::future::or(flows, async {
                IdleWatch::new(last_activity, timeout).await;
                Err(TunnelEnd::IdleTimeout)
            })
            .await
        }
    };
    end.err().unwrap_or(TunnelEnd::Closed)
}

/// Polls both directions until both succeed or one fails; a failure drops
/// the other direction at once.
async fn join_until_error<A, B>(a: A, b: B) -> Result<(), TunnelEnd>
where
    A: Future<Output = Result<(), TunnelEnd>>,
    B: Future<Output = Result<(), TunnelEnd>>,
{
    let mut a = pin!(a);
    let mut b = pin!(b);
    let (mut a_done, mut b_done) = (false, false);
    poll_fn(|cx| {
        if !a_done {
            if let Poll::Ready(r) = a.as_mut().poll(cx) {
                r?;
                a_done = true;
            }
        }
        if !b_done {
            if let Poll::Ready(r) = b.as_mut().poll(cx) {
                r?;
                b_done = true;
            }
        }
        if a_done && b_done {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Completes once `last_activity` is `timeout` in the past. One glommio
/// timer is armed per idle period, not per chunk: when the timer fires, the
/// deadline is recomputed from the latest activity and a new timer armed
/// only if there was some. Being polled because the flows woke the task
/// costs a clock read, not a timer re-registration.
struct IdleWatch<'a> {
    last_activity: &'a Cell<Instant>,
    timeout: Duration,
    armed: Option<(Timer, Instant, Waker)>,
}

impl<'a> IdleWatch<'a> {
    fn new(last_activity: &'a Cell<Instant>, timeout: Duration) -> Self {
        IdleWatch {
            last_activity,
            timeout,
            armed: None,
        }
    }
}

impl Future for IdleWatch<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let now = Instant::now();
        if let Some((_, when, waker)) = &this.armed {
            if now < *when && waker.will_wake(cx.waker()) {
                return Poll::Pending;
            }
        }
        let deadline = this.last_activity.get() + this.timeout;
        if now >= deadline {
            this.armed = None;
            return Poll::Ready(());
        }
        let mut timer = Timer::new(deadline - now);
        // Registers the timer with the reactor; it cannot be due yet.
        if Pin::new(&mut timer).poll(cx).is_ready() {
            cx.waker().wake_by_ref();
        }
        this.armed = Some((timer, deadline, cx.waker().clone()));
        Poll::Pending
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: FIONBIO reads one int; fd is a socket owned by the caller.
    // One ioctl instead of fcntl F_GETFL + F_SETFL.
    if unsafe { libc::ioctl(fd, libc::FIONBIO, &on) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// SO_LINGER 0: the close that follows sends RST instead of FIN.
fn reset_on_close(stream: &impl AsRawFd) {
    // SAFETY: the fd belongs to `stream`, which outlives the borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    // Failing only means the peer gets a FIN instead of a RST.
    let _ = socket2::SockRef::from(&fd).set_linger(Some(Duration::ZERO));
}
