//! One core's side of the stick tables: the entries it owns, and the
//! channels to the other cores.
//!
//! Every key has one owner core (`Key::owner`, a hash of the key modulo
//! the number of cores, the same on every core). The owner holds the
//! entry; a core that tracks a key it does not own sends the update to the
//! owner over a glommio channel mesh and awaits the values after it (one
//! answer per update, a few hundred bytes both ways); a key this core owns
//! is updated in place, with no message. Nothing is shared between cores
//! but the channels (single-producer single-consumer rings per pair of
//! cores): no lock, no shared counter. Updates of one key are applied one
//! at a time by its owner, in arrival order, so a limit of N admits N.
//! Every message sent pokes its receiver (`readiness::Nudge`): glommio
//! delivers cross-core messages only in its own loop, which a busy or
//! lingering core gives a turn only every few milliseconds otherwise.
//!
//! Each core answers from one task per peer, between its own sessions'
//! polls: a saturated owner delays the answers (the requests that track
//! its keys wait, in its queue, for their turn) rather than losing them;
//! when a peer's channel is full, senders wait (back-pressure).
//!
//! `table_cnt` / `table_avl` need every core's number of entries: a core
//! asks each peer in turn (`Count`, answered by `Counted`) and adds its
//! own.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use glommio::channels::channel_mesh::{Full, MeshBuilder, Senders};
use glommio::{GlommioError, ResourceType};

use super::def::{DataType, TableDef};
use super::filter::Filter;
use super::key::Key;
use super::table::{Listed, Snapshot, Table, Update};
use crate::config::Config;
use crate::net::readiness::{NudgeBoard, Readiness};

/// What cores send each other.
#[derive(Debug)]
pub enum StickMsg {
    /// Apply `update` to `key` of table `table` (a `TableDef::uid`);
    /// answer with the values after it unless `id` is 0.
    Ask {
        id: u32,
        table: u64,
        key: Key,
        update: Update,
    },
    Answer {
        id: u32,
        values: Option<Snapshot>,
    },
    /// How many entries of table `table` the receiver holds
    /// (`table_cnt`, `table_avl`).
    Count {
        id: u32,
        table: u64,
    },
    Counted {
        id: u32,
        used: u64,
    },
    /// The sender's connection counts (`fe_conn`, `be_conn`), published
    /// every [`CONNS_EVERY`]; no answer.
    Conns(ConnCounts),
}

/// One core's current connections per frontend and sessions per backend,
/// indexed as the configuration of `generation` lists them.
#[derive(Debug, Clone)]
pub struct ConnCounts {
    pub generation: u64,
    pub frontends: Arc<[u64]>,
    pub backends: Arc<[u64]>,
}

/// How often a core publishes its connection counts to the others: how
/// old the other cores' part of `fe_conn`/`be_conn` may be. A message per
/// peer per period whatever the traffic; the request path reads only
/// this core's copies.
pub const CONNS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// What an awaited message brings back.
#[derive(Debug, Clone, Copy)]
enum Reply {
    /// An entry's values (`None`: no such entry, or the peer is gone).
    Values(Option<Snapshot>),
    /// The peer's number of entries of a table.
    Used(u64),
}

/// The channels between the cores, and where each core's `Nudge` is found
/// (the receiver of a message is poked after the send, so that its glommio
/// loop delivers the message now: requests wait for the answers).
#[derive(Clone)]
pub struct StickMesh {
    channels: MeshBuilder<StickMsg, Full>,
    nudges: Arc<NudgeBoard>,
}

/// This core's ends of the mesh: every message sent pokes its receiver.
struct Peers {
    senders: Senders<StickMsg>,
    nudges: Arc<NudgeBoard>,
}

impl Peers {
    async fn send_to(&self, peer: usize, msg: StickMsg) -> Result<(), GlommioError<StickMsg>> {
        self.senders.send_to(peer, msg).await?;
        self.nudges.poke(peer);
        Ok(())
    }

    /// Sends without waiting. Gives the message back when the peer's
    /// channel is full (to be sent later); a closed channel (the peer is
    /// stopping) drops it.
    fn try_send_to(&self, peer: usize, msg: StickMsg) -> Option<StickMsg> {
        match self.senders.try_send_to(peer, msg) {
            Ok(()) => {
                self.nudges.poke(peer);
                None
            }
            Err(GlommioError::WouldBlock(ResourceType::Channel(msg))) => Some(msg),
            Err(_) => None,
        }
    }
}

/// How often idle tables are purged of expired entries.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Updates in flight per pair of cores before a sender waits.
const CHANNEL_SIZE: usize = 1024;

pub fn mesh(cores: usize) -> StickMesh {
    let cores = cores.max(1);
    StickMesh {
        channels: MeshBuilder::full(cores, CHANNEL_SIZE),
        nudges: Arc::new(NudgeBoard::new(cores)),
    }
}

/// An answer being waited for.
#[derive(Default)]
struct Waiting {
    /// `Some(reply)` once it came.
    answer: Cell<Option<Reply>>,
    waker: Cell<Option<Waker>>,
}

struct Answer(Rc<Waiting>);

impl Future for Answer {
    type Output = Reply;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reply> {
        match self.0.answer.take() {
            Some(answer) => Poll::Ready(answer),
            None => {
                self.0.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        }
    }
}

pub struct StickCore {
    /// The tables' parts this core owns, by `TableDef::uid`.
    tables: RefCell<HashMap<u64, Table>>,
    senders: RefCell<Option<Rc<Peers>>>,
    waiting: RefCell<HashMap<u32, Rc<Waiting>>>,
    next_id: Cell<u32>,
    /// Cores sharing the tables (1 until the mesh is joined).
    peers: Cell<usize>,
    /// This core's place in the mesh.
    me: Cell<usize>,
    /// Fired once the mesh is joined (or joining failed): until then an
    /// update waits, so that no key is counted on the wrong core.
    joined: crate::shard::stop::Event,
    cores: usize,
    epoch: Instant,
    /// Updates sent to other cores and answers received (for tests and
    /// `show info`-like diagnostics).
    pub sent: Cell<u64>,
    /// Updates applied here for another core.
    pub served: Cell<u64>,
    /// Each peer's connection counts as it last published them, by peer.
    peer_conns: RefCell<Vec<Option<ConnCounts>>>,
}

impl StickCore {
    pub fn new(cores: usize) -> Self {
        StickCore {
            tables: RefCell::new(HashMap::new()),
            senders: RefCell::new(None),
            waiting: RefCell::new(HashMap::new()),
            next_id: Cell::new(1),
            peers: Cell::new(1),
            me: Cell::new(0),
            joined: crate::shard::stop::Event::new(),
            cores: cores.max(1),
            epoch: Instant::now(),
            sent: Cell::new(0),
            served: Cell::new(0),
            peer_conns: RefCell::new(Vec::new()),
        }
    }

    /// ms on this core's clock (rates and expiry of the entries it owns).
    pub fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Keeps the tables of `config` whose definition is unchanged (their
    /// entries survive a reload), makes the new ones, drops the others.
    pub fn configure(&self, config: &Config) {
        let mut tables = self.tables.borrow_mut();
        let mut next = HashMap::new();
        for def in config.stick_tables() {
            let uid = def.uid();
            let table = tables
                .remove(&uid)
                .unwrap_or_else(|| Table::new(Arc::clone(def), self.cores));
            next.insert(uid, table);
        }
        *tables = next;
    }

    pub fn has_tables(&self) -> bool {
        !self.tables.borrow().is_empty()
    }

    /// Drops expired entries of every table every second, so that a table
    /// nobody updates any more gives its memory back (HAProxy's expiry
    /// task). Spawn it detached.
    pub async fn purge_loop(self: Rc<Self>) {
        loop {
            glommio::timer::sleep(PURGE_EVERY).await;
            let now = self.now();
            for table in self.tables.borrow_mut().values_mut() {
                table.purge(now);
            }
        }
    }

    /// Joins the mesh and serves other cores' updates until the executor
    /// ends. Spawn it detached: joining waits for every core (a core that
    /// failed to start never joins, and the process stops).
    pub async fn join(self: Rc<Self>, mesh: StickMesh) {
        let Ok((senders, mut receivers)) = mesh.channels.join().await else {
            eprintln!(
                "[WARNING] stick tables: cannot join the cores' mesh; each core keeps its own entries"
            );
            self.joined.fire();
            return;
        };
        self.me.set(senders.peer_id());
        self.peers.set(senders.nr_consumers().max(1));
        if let Ok(readiness) = Readiness::current() {
            mesh.nudges.publish(senders.peer_id(), readiness.nudge());
        }
        let senders = Rc::new(Peers {
            senders,
            nudges: mesh.nudges,
        });
        *self.senders.borrow_mut() = Some(Rc::clone(&senders));
        self.joined.fire();
        for (peer, receiver) in receivers.streams() {
            let this = Rc::clone(&self);
            let senders = Rc::clone(&senders);
            glommio::spawn_local(async move {
                while let Some(msg) = receiver.recv().await {
                    this.receive(peer, msg, &senders);
                }
                // The peer is gone (stopping): nothing it owes will come.
                this.fail_waiting();
            })
            .detach();
        }
    }

    fn receive(&self, peer: usize, msg: StickMsg, senders: &Rc<Peers>) {
        match msg {
            StickMsg::Ask {
                id,
                table,
                key,
                update,
            } => {
                self.served.set(self.served.get() + 1);
                let values = self.apply_local(table, &key, &update);
                if id == 0 {
                    return;
                }
                reply(senders, peer, StickMsg::Answer { id, values });
            }
            StickMsg::Count { id, table } => {
                let used = self.used_here(table);
                reply(senders, peer, StickMsg::Counted { id, used });
            }
            StickMsg::Conns(counts) => {
                let mut all = self.peer_conns.borrow_mut();
                if all.len() <= peer {
                    all.resize(peer + 1, None);
                }
                all[peer] = Some(counts);
            }
            StickMsg::Answer { id, values } => self.answered(id, Reply::Values(values)),
            StickMsg::Counted { id, used } => self.answered(id, Reply::Used(used)),
        }
    }

    /// Sends this core's connection counts to every other core; a peer
    /// whose channel is full misses this one (the next comes a period
    /// later).
    pub fn publish_conns(&self, counts: &ConnCounts) {
        let senders = self.senders.borrow().clone();
        let Some(senders) = senders else { return };
        for peer in (0..self.peers.get()).filter(|p| *p != self.me.get()) {
            let _ = senders.try_send_to(peer, StickMsg::Conns(counts.clone()));
        }
    }

    /// The other cores' connections: the sum over peers of what `pick`
    /// reads in their last counts of `generation` (a peer still on
    /// another generation during a reload counts 0 until it publishes
    /// again).
    pub fn peers_conns(&self, generation: u64, pick: impl Fn(&ConnCounts) -> Option<u64>) -> u64 {
        self.peer_conns
            .borrow()
            .iter()
            .flatten()
            .filter(|c| c.generation == generation)
            .filter_map(&pick)
            .sum()
    }

    fn answered(&self, id: u32, reply: Reply) {
        if let Some(waiting) = self.waiting.borrow_mut().remove(&id) {
            waiting.answer.set(Some(reply));
            if let Some(w) = waiting.waker.take() {
                w.wake();
            }
        }
    }

    fn fail_waiting(&self) {
        for (_, waiting) in self.waiting.borrow_mut().drain() {
            waiting.answer.set(Some(Reply::Values(None)));
            if let Some(w) = waiting.waker.take() {
                w.wake();
            }
        }
    }

    fn apply_local(&self, table: u64, key: &Key, update: &Update) -> Option<Snapshot> {
        let now = self.now();
        self.tables
            .borrow_mut()
            .get_mut(&table)?
            .update(key, update, now)
    }

    /// Entries of table `uid` this core holds, expired ones dropped first.
    fn used_here(&self, uid: u64) -> u64 {
        let now = self.now();
        self.tables.borrow_mut().get_mut(&uid).map_or(0, |t| {
            t.purge(now);
            t.len() as u64
        })
    }

    /// Registers an answer to wait for; its message id (never 0, which
    /// means "no answer").
    fn expect(&self) -> (u32, Rc<Waiting>) {
        let id = self.next_id.get();
        self.next_id.set(id.checked_add(1).unwrap_or(1));
        let waiting = Rc::new(Waiting::default());
        self.waiting.borrow_mut().insert(id, Rc::clone(&waiting));
        (id, waiting)
    }

    /// Entries of `table` over every core (`table_cnt`): this core's, plus
    /// each peer's, asked in turn. The sum is a moment's view: entries
    /// come and go on the other cores while the answers travel.
    pub async fn used(&self, table: &TableDef) -> u64 {
        if self.cores > 1 && !self.joined.is_fired() {
            self.joined.wait().await;
        }
        let mut total = self.used_here(table.uid());
        let senders = self.senders.borrow().clone();
        let Some(senders) = senders else {
            return total;
        };
        for peer in (0..self.peers.get()).filter(|p| *p != self.me.get()) {
            let (id, waiting) = self.expect();
            self.sent.set(self.sent.get() + 1);
            let msg = StickMsg::Count {
                id,
                table: table.uid(),
            };
            if senders.send_to(peer, msg).await.is_err() {
                self.waiting.borrow_mut().remove(&id);
                continue;
            }
            if let Reply::Used(n) = Answer(waiting).await {
                total += n;
            }
        }
        total
    }

    /// The core that owns `key` and whether it is this one.
    fn owner(&self, key: &Key) -> (usize, bool) {
        let owner = key.owner(self.peers.get());
        (owner, owner == self.me.get())
    }

    /// Applies `update` to `key` of `table` where the key lives and
    /// returns the values after it (`None`: no such entry, or its owner
    /// is gone).
    pub async fn update(&self, table: &TableDef, key: Key, update: Update) -> Option<Snapshot> {
        if self.cores > 1 && !self.joined.is_fired() {
            self.joined.wait().await;
        }
        let (owner, local) = self.owner(&key);
        let senders = self.senders.borrow().clone();
        let Some(senders) = senders.filter(|_| !local) else {
            return self.apply_local(table.uid(), &key, &update);
        };
        let (id, waiting) = self.expect();
        self.sent.set(self.sent.get() + 1);
        let msg = StickMsg::Ask {
            id,
            table: table.uid(),
            key,
            update,
        };
        if senders.send_to(owner, msg).await.is_err() {
            self.waiting.borrow_mut().remove(&id);
            return None;
        }
        match Answer(waiting).await {
            Reply::Values(values) => values,
            Reply::Used(_) => None,
        }
    }

    /// Applies `update` without waiting for its result (counts at the end
    /// of a request or a connection).
    pub fn post(&self, table: &TableDef, key: Key, update: Update) {
        let (owner, local) = self.owner(&key);
        let senders = self.senders.borrow().clone();
        let Some(senders) = senders.filter(|_| !local) else {
            self.apply_local(table.uid(), &key, &update);
            return;
        };
        self.sent.set(self.sent.get() + 1);
        let msg = StickMsg::Ask {
            id: 0,
            table: table.uid(),
            key,
            update,
        };
        if let Some(msg) = senders.try_send_to(owner, msg) {
            glommio::spawn_local(async move {
                let _ = senders.send_to(owner, msg).await;
            })
            .detach();
        }
    }

    /// This core's entries of the table named `name` that pass
    /// `filters` (runtime API; the command asks every core; none unless
    /// `entries`), and the number of entries it holds.
    pub fn list(
        &self,
        name: &str,
        filters: &[Filter],
        key: Option<&Key>,
        entries: bool,
    ) -> Option<TableDump> {
        let now = self.now();
        let mut tables = self.tables.borrow_mut();
        let table = tables.values_mut().find(|t| &*t.def.name == name)?;
        table.purge(now);
        let listed = if entries { table.list(now) } else { Vec::new() };
        let used = table.len();
        let entries = listed
            .into_iter()
            .filter(|e| key.is_none_or(|k| *k == e.key))
            .filter(|e| filters.iter().all(|f| f.matches(&e.snapshot)))
            .collect();
        Some(TableDump {
            def: Arc::clone(&table.def),
            core: self.me.get(),
            used,
            entries,
        })
    }

    /// Removes the entries of `name` that pass `filters` (all when there
    /// is none), or the one of `key`. `None` if there is no such table.
    pub fn clear(&self, name: &str, filters: &[Filter], key: Option<&Key>) -> Option<usize> {
        let now = self.now();
        let mut tables = self.tables.borrow_mut();
        let table = tables.values_mut().find(|t| &*t.def.name == name)?;
        if let Some(key) = key {
            return Some(table.clear(Some(key)));
        }
        if filters.is_empty() {
            return Some(table.clear(None));
        }
        let doomed: Vec<Key> = table
            .list(now)
            .into_iter()
            .filter(|e| filters.iter().all(|f| f.matches(&e.snapshot)))
            .map(|e| e.key)
            .collect();
        Some(doomed.iter().map(|k| table.clear(Some(k))).sum())
    }

    /// `set table`: applied by the key's owner only (every core is
    /// asked). `Err` names a data type the table does not store.
    pub fn set(&self, name: &str, key: &Key, data: &[(DataType, i64)]) -> Result<(), DataType> {
        if key.owner(self.peers.get()) != self.me.get() {
            return Ok(());
        }
        let now = self.now();
        let mut tables = self.tables.borrow_mut();
        let Some(table) = tables.values_mut().find(|t| &*t.def.name == name) else {
            return Ok(());
        };
        for (d, v) in data {
            if !table.set(key, *d, *v, now) {
                return Err(*d);
            }
        }
        Ok(())
    }
}

/// Sends an answer to `peer` without blocking the receiving loop (the
/// peer may be sending to us at the same time): when its channel is
/// full, a task sends it later.
fn reply(senders: &Rc<Peers>, peer: usize, msg: StickMsg) {
    if let Some(msg) = senders.try_send_to(peer, msg) {
        let senders = Rc::clone(senders);
        glommio::spawn_local(async move {
            let _ = senders.send_to(peer, msg).await;
        })
        .detach();
    }
}

/// One core's part of a table, for `show table`.
#[derive(Debug)]
pub struct TableDump {
    pub def: Arc<TableDef>,
    /// The core's place in the mesh.
    pub core: usize,
    /// Entries the core holds (before filters).
    pub used: usize,
    pub entries: Vec<Listed>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(generation: u64, frontends: &[u64], backends: &[u64]) -> ConnCounts {
        ConnCounts {
            generation,
            frontends: frontends.into(),
            backends: backends.into(),
        }
    }

    /// The other cores' part of `fe_conn`/`be_conn`: their last counts of
    /// this generation, summed; a peer on another generation counts 0.
    #[test]
    fn peers_conns_sum_the_counts_of_this_generation() {
        let core = StickCore::new(3);
        *core.peer_conns.borrow_mut() = vec![
            None,
            Some(counts(4, &[2, 7], &[1])),
            Some(counts(4, &[3, 0], &[5])),
        ];
        assert_eq!(core.peers_conns(4, |c| c.frontends.first().copied()), 5);
        assert_eq!(core.peers_conns(4, |c| c.backends.first().copied()), 6);
        assert_eq!(core.peers_conns(4, |c| c.backends.get(1).copied()), 0);
        core.peer_conns.borrow_mut()[2] = Some(counts(5, &[9, 9], &[9]));
        assert_eq!(core.peers_conns(4, |c| c.frontends.first().copied()), 2);
    }
}
