//! One core's health hub: sends state changes to the other cores and waits
//! until they have applied them, applies the changes other cores send,
//! and routes passive reports to the core that checks the server.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};
use glommio::GlommioError;

use super::links::{Connected, Message};
use crate::shard::passive::PassiveSink;
use crate::shard::Shard;

/// How long a state change waits for the other cores to confirm before it
/// is logged anyway (a core that stopped never confirms).
const ACK_PATIENCE: Duration = Duration::from_secs(5);

pub use crate::shard::passive::PassiveReport;

/// What reaches a server's checker besides its own timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckerNote {
    Passive(PassiveReport),
    /// Checks were paused (maintenance, `disable health`) and may run
    /// again: start from "up, check now", as HAProxy does.
    Resume,
}

struct PendingAck {
    remaining: usize,
    done: LocalSender<()>,
}

pub struct Router {
    index: usize,
    count: usize,
    senders: Vec<Option<ConnectedSender<Message>>>,
    /// Checkers on this core, by (backend, server).
    inboxes: RefCell<HashMap<(usize, usize), LocalSender<CheckerNote>>>,
    pending: RefCell<HashMap<u64, PendingAck>>,
    next_token: Cell<u64>,
    /// Newest generation applied per (backend, server), so a late message
    /// can never undo a newer change.
    applied: RefCell<HashMap<(usize, usize), u64>>,
    /// The configuration generation this core's checkers run under.
    config: Cell<u64>,
}

impl Router {
    /// Builds the router and starts one task per incoming channel that
    /// applies what the other cores send to this core's backends.
    pub fn start(shard: &Rc<Shard>, links: Connected) -> Rc<Router> {
        let count = links.senders.len().max(1);
        let router = Rc::new(Router {
            index: links.index,
            count,
            senders: links.senders,
            inboxes: RefCell::new(HashMap::new()),
            pending: RefCell::new(HashMap::new()),
            next_token: Cell::new(1),
            applied: RefCell::new(HashMap::new()),
            config: Cell::new(shard.current().generation),
        });
        for (peer, receiver) in links.receivers {
            let router = Rc::clone(&router);
            let shard = Rc::clone(shard);
            glommio::spawn_local(async move { router.receive(&shard, peer, receiver).await })
                .detach();
        }
        router
    }

    pub fn core_index(&self) -> usize {
        self.index
    }

    pub fn core_count(&self) -> usize {
        self.count
    }

    /// A reload switched this core to a new generation: the old checkers'
    /// inboxes close (so they stop) and transition numbers start over.
    pub fn new_generation(&self, config: u64) {
        self.config.set(config);
        self.inboxes.borrow_mut().clear();
        self.applied.borrow_mut().clear();
    }

    /// The inbox of the checker of one server on this core.
    pub fn inbox(&self, backend: usize, server: usize) -> LocalReceiver<CheckerNote> {
        let (tx, rx) = local_channel::new_unbounded();
        self.inboxes.borrow_mut().insert((backend, server), tx);
        rx
    }

    async fn receive(
        self: Rc<Self>,
        shard: &Shard,
        peer: usize,
        receiver: ConnectedReceiver<Message>,
    ) {
        while let Some(message) = receiver.recv().await {
            match message {
                Message::State {
                    backend,
                    server,
                    up,
                    generation,
                    config,
                    token,
                } => {
                    let ctx = shard.current();
                    if config != ctx.generation {
                        // Sent under another configuration (a reload is
                        // under way): its indexes may name other servers.
                        self.post(peer, Message::Applied { token });
                        continue;
                    }
                    let (b, s) = (backend as usize, server as usize);
                    let newer = {
                        let mut applied = self.applied.borrow_mut();
                        let last = applied.entry((b, s)).or_insert(0);
                        let newer = generation > *last;
                        *last = (*last).max(generation);
                        newer
                    };
                    if newer {
                        if let Some(rt) = ctx.backends.get(b) {
                            if s < rt.borrow().server_count() {
                                rt.borrow_mut().set_server_up(s, up);
                            }
                        }
                    }
                    self.post(peer, Message::Applied { token });
                }
                Message::Applied { token } => self.acknowledged(token),
                Message::Passive {
                    config,
                    backend,
                    server,
                    error,
                    count,
                } => self.deliver(
                    config,
                    backend as usize,
                    server as usize,
                    PassiveReport { error, count },
                ),
            }
        }
    }

    fn acknowledged(&self, token: u64) {
        let mut pending = self.pending.borrow_mut();
        if let Some(ack) = pending.get_mut(&token) {
            ack.remaining = ack.remaining.saturating_sub(1);
            if ack.remaining == 0 {
                let _ = ack.done.try_send(());
                pending.remove(&token);
            }
        }
    }

    /// Sends without waiting; a full channel hands the message to a task
    /// that waits for room. Returns false if the peer is gone.
    fn post(self: &Rc<Self>, peer: usize, message: Message) -> bool {
        let Some(Some(sender)) = self.senders.get(peer) else {
            return false;
        };
        match sender.try_send(message) {
            Ok(()) => true,
            Err(GlommioError::WouldBlock(glommio::ResourceType::Channel(message))) => {
                let router = Rc::clone(self);
                glommio::spawn_local(async move {
                    if let Some(Some(sender)) = router.senders.get(peer) {
                        let _ = sender.send(message).await;
                    }
                })
                .detach();
                true
            }
            Err(_) => false,
        }
    }

    /// Tells every other core that a server changed state and waits until
    /// all have applied it (or `ACK_PATIENCE` ran out), so that once the
    /// change is logged no core still sends new traffic by the old state.
    pub async fn broadcast_state(
        self: &Rc<Self>,
        backend: usize,
        server: usize,
        up: bool,
        generation: u64,
        config: u64,
    ) {
        if self.count <= 1 {
            return;
        }
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        let (done, confirmed) = local_channel::new_bounded(1);
        self.pending.borrow_mut().insert(
            token,
            PendingAck {
                remaining: self.count - 1,
                done,
            },
        );
        for peer in (0..self.count).filter(|&p| p != self.index) {
            let message = Message::State {
                backend: backend as u32,
                server: server as u32,
                up,
                generation,
                config,
                token,
            };
            if !self.post(peer, message) {
                self.acknowledged(token);
            }
        }
        let waiting = self.pending.borrow().contains_key(&token);
        if waiting {
            futures_lite::future::or(
                async {
                    confirmed.recv().await;
                },
                glommio::timer::sleep(ACK_PATIENCE),
            )
            .await;
        }
        self.pending.borrow_mut().remove(&token);
    }

    /// Hands a passive report to the server's checker, unless it was made
    /// under another configuration generation than this core's checkers
    /// run: around a reload the same indexes may name another server, and
    /// a report is only a hint the next errors will repeat.
    fn deliver(&self, config: u64, backend: usize, server: usize, report: PassiveReport) {
        if config == self.config.get() {
            self.note(backend, server, CheckerNote::Passive(report));
        }
    }

    fn note(&self, backend: usize, server: usize, note: CheckerNote) {
        if let Some(inbox) = self.inboxes.borrow().get(&(backend, server)) {
            let _ = inbox.try_send(note);
        }
    }
}

/// Passive reports of this core's sessions reach the checkers through the
/// router (an `Rc` of it: a report to another core may wait for room).
impl PassiveSink for Rc<Router> {
    fn report(
        &self,
        owner: usize,
        generation: u64,
        backend: usize,
        server: usize,
        report: PassiveReport,
    ) {
        if owner == self.index {
            self.deliver(generation, backend, server, report);
        } else {
            self.post(
                owner,
                Message::Passive {
                    config: generation,
                    backend: backend as u32,
                    server: server as u32,
                    error: report.error,
                    count: report.count,
                },
            );
        }
    }

    fn resume(&self, backend: usize, server: usize) {
        self.note(backend, server, CheckerNote::Resume);
    }
}
