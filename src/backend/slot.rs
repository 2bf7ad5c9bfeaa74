//! Connection slots: [`acquire`] picks a server and takes one of its slots,
//! waiting in the backend's FIFO queue when every eligible server is full;
//! [`ServerSlot`] gives the slot back when dropped.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::runtime::{BackendRuntime, Pick, PickHint};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    /// No server is usable (all down, disabled or weight 0, backups
    /// included): HTTP 503, or close the TCP connection.
    #[error("no server is available to handle this request")]
    NoServer,
    /// Waited `timeout queue` without getting a slot: HTTP 503 as well.
    #[error("timed out waiting in the queue for a server connection slot")]
    QueueTimeout,
}

/// One connection slot on one server. Dropping it gives the slot back and, if
/// connections are queued, hands it straight to the oldest one that can use
/// it.
///
/// Do not drop a slot while holding a borrow of its backend's `RefCell`.
#[derive(Debug)]
pub struct ServerSlot {
    backend: Rc<RefCell<BackendRuntime>>,
    server: usize,
    addr: SocketAddr,
}

impl ServerSlot {
    fn new(backend: &Rc<RefCell<BackendRuntime>>, rt: &BackendRuntime, server: usize) -> Self {
        ServerSlot {
            backend: Rc::clone(backend),
            server,
            addr: rt.server_addr(server),
        }
    }

    /// Index of the server in the backend's configured list.
    pub fn server(&self) -> usize {
        self.server
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ServerSlot {
    fn drop(&mut self) {
        self.backend.borrow_mut().release_slot(self.server);
    }
}

/// Takes a connection slot on a server chosen by the backend's balance
/// algorithm for a connection from `client`.
///
/// `avoid` lists servers that already failed for this connection (retries
/// with `option redispatch`); they are skipped unless every usable server is
/// in it. When every server the connection may use is at its `maxconn`
/// share, waits in the backend's FIFO queue for at most `queue_timeout`
/// (`None`: forever; [`BackendRuntime::queue_timeout`] gives HAProxy's
/// value).
///
/// Cancel-safe: dropping the future leaves the queue, and a slot handed to
/// it in the meantime goes to the next waiter.
pub async fn acquire(
    backend: &Rc<RefCell<BackendRuntime>>,
    client: SocketAddr,
    avoid: &[usize],
    queue_timeout: Option<Duration>,
) -> Result<ServerSlot, AcquireError> {
    acquire_hinted(backend, client, PickHint::default(), avoid, queue_timeout).await
}

/// [`acquire`] for a request that brings a hash or a persistence server
/// (HTTP balancing and cookies); see [`PickHint`].
pub async fn acquire_hinted(
    backend: &Rc<RefCell<BackendRuntime>>,
    client: SocketAddr,
    hint: PickHint,
    avoid: &[usize],
    queue_timeout: Option<Duration>,
) -> Result<ServerSlot, AcquireError> {
    let waiter = {
        let mut rt = backend.borrow_mut();
        match rt.pick(client.ip(), hint, avoid) {
            Pick::Server(idx) => {
                rt.take_slot(idx);
                return Ok(ServerSlot::new(backend, &rt, idx));
            }
            Pick::NoServer => return Err(AcquireError::NoServer),
            Pick::Full => rt.enqueue(client.ip(), hint, avoid),
        }
    };
    let mut place = QueuePlace {
        backend,
        waiter: Some(Rc::clone(&waiter)),
    };
    let outcome = match queue_timeout {
        None => Some(Settled(&waiter).await),
        Some(limit) => {
            futures_lite::future::or(async { Some(Settled(&waiter).await) }, async {
                glommio::timer::sleep(limit).await;
                None
            })
            .await
        }
    };
    // A slot granted right at the deadline is still taken.
    match outcome.or_else(|| waiter.outcome.get()) {
        Some(Outcome::Granted(idx)) => {
            place.waiter = None;
            let rt = backend.borrow();
            Ok(ServerSlot::new(backend, &rt, idx))
        }
        Some(Outcome::NoServer) => Err(AcquireError::NoServer),
        None => Err(AcquireError::QueueTimeout),
    }
}

/// Takes a slot on one given server: a retry that stays on the server that
/// just failed (no redispatch for this retry). If that server is no longer
/// usable or is full, the connection is balanced normally instead — HAProxy
/// also redispatches when the assigned server went down.
pub async fn acquire_server(
    backend: &Rc<RefCell<BackendRuntime>>,
    server: usize,
    client: SocketAddr,
    queue_timeout: Option<Duration>,
) -> Result<ServerSlot, AcquireError> {
    {
        let mut rt = backend.borrow_mut();
        if server < rt.server_count() && rt.is_usable(server) && rt.has_free_slot(server) {
            rt.take_slot(server);
            return Ok(ServerSlot::new(backend, &rt, server));
        }
    }
    acquire(backend, client, &[], queue_timeout).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A slot on this server was taken on the waiter's behalf.
    Granted(usize),
    NoServer,
}

/// A queued connection, shared between its `acquire` future and the queue.
pub(crate) struct Waiter {
    pub(crate) client: IpAddr,
    pub(crate) hint: PickHint,
    pub(crate) avoid: Vec<usize>,
    outcome: Cell<Option<Outcome>>,
    waker: Cell<Option<Waker>>,
}

impl Waiter {
    pub(crate) fn new(client: IpAddr, hint: PickHint, avoid: Vec<usize>) -> Self {
        Waiter {
            client,
            hint,
            avoid,
            outcome: Cell::new(None),
            waker: Cell::new(None),
        }
    }

    /// Called once, after the waiter has left the queue.
    pub(crate) fn settle(&self, outcome: Outcome) {
        self.outcome.set(Some(outcome));
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("client", &self.client)
            .field("avoid", &self.avoid)
            .field("outcome", &self.outcome.get())
            .finish_non_exhaustive()
    }
}

/// The `acquire` future's place in the queue; dropping it (the client went
/// away, or the queue timeout fired) gives back whatever the place holds.
struct QueuePlace<'a> {
    backend: &'a Rc<RefCell<BackendRuntime>>,
    /// `None` once the outcome has been handed to the caller.
    waiter: Option<Rc<Waiter>>,
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        let Some(waiter) = self.waiter.take() else {
            return;
        };
        let mut rt = self.backend.borrow_mut();
        match waiter.outcome.get() {
            None => rt.dequeue(&waiter),
            Some(Outcome::Granted(idx)) => rt.release_slot(idx),
            Some(Outcome::NoServer) => {}
        }
    }
}

/// Resolves when the waiter has been settled.
struct Settled<'a>(&'a Waiter);

impl Future for Settled<'_> {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let waiter = self.0;
        match waiter.outcome.get() {
            Some(outcome) => Poll::Ready(outcome),
            None => {
                waiter.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        }
    }
}
