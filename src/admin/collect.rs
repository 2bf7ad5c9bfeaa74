//! Cross-core requests: a full glommio channel mesh joined by every core.
//! The core that serves a stats request asks every other core for a
//! [`Snapshot`] and merges the answers with its own; the runtime API sends
//! its changes the same way ([`CoreRequest`]) and answers once every core
//! has applied them. Cores answer from a task of their own, so the data
//! path only ever pays for its plain counter increments; a snapshot is a
//! copy made between two polls.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::channels::channel_mesh::{Full, MeshBuilder, Senders};
use glommio::channels::local_channel::{self, LocalSender};
use glommio::sync::Semaphore;

use super::apply::{apply, CoreAnswer, CoreRequest};
use crate::config::diff::IndexMap;
use crate::shard::stop::Event;
use crate::shard::{CoreContext, Shard};
use crate::stats::{BackendState, ServerAdmin, ServerState, Snapshot};

/// Messages between cores.
#[derive(Debug)]
pub enum CoreMsg {
    /// Please apply this request and answer, tagged with this request id.
    Ask(u64, CoreRequest),
    Answer(u64, CoreAnswer),
}

/// The mesh builder made on the main thread and joined by every executor.
pub type StatsMesh = MeshBuilder<CoreMsg, Full>;

/// Every core's answer to one request, this core's first.
pub struct Answers {
    pub answers: Vec<CoreAnswer>,
    /// Cores that did not answer within the patience (stopped or stuck).
    pub missing: usize,
}

/// Requests in flight per pair of cores before a sender waits.
const MESH_CHANNEL_SIZE: usize = 64;
/// How long a stats request waits for the other cores; a core that does
/// not answer in time is left out (the page says how many answered).
const ANSWER_PATIENCE: Duration = Duration::from_secs(2);
/// How often a snapshot is asked again when cores answered for different
/// generations (a reload between two answers), and how long apart.
const SNAPSHOT_TRIES: u32 = 5;
const SNAPSHOT_RETRY: Duration = Duration::from_millis(20);

pub fn mesh(cores: usize) -> StatsMesh {
    MeshBuilder::full(cores.max(1), MESH_CHANNEL_SIZE)
}

/// One core's side of the mesh.
pub struct Collector {
    senders: RefCell<Option<Rc<Senders<CoreMsg>>>>,
    /// Fired once `run` has joined the mesh (or given up on it).
    joined: Event,
    pending: RefCell<HashMap<u64, LocalSender<CoreAnswer>>>,
    next_id: Cell<u64>,
    /// Taken by whatever changes state on every core (a runtime API
    /// command, a reload) for its whole run, so that two never interleave
    /// and every core sees them in the same order.
    changes: Semaphore,
}

impl Default for Collector {
    fn default() -> Self {
        Collector {
            senders: RefCell::new(None),
            joined: Event::new(),
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
            changes: Semaphore::new(1),
        }
    }
}

impl Collector {
    /// Joins the mesh, then answers other cores' requests until the
    /// executor ends. Spawn it detached: joining waits for every core.
    pub async fn run(self: Rc<Self>, mesh: StatsMesh, shard: Rc<Shard>) {
        let Ok((senders, mut receivers)) = mesh.join().await else {
            eprintln!(
                "[WARNING] core {}: cannot join the stats mesh; stats show this core only",
                shard.core_index()
            );
            self.joined.fire();
            return;
        };
        let senders = Rc::new(senders);
        *self.senders.borrow_mut() = Some(Rc::clone(&senders));
        self.joined.fire();
        for (peer, receiver) in receivers.streams() {
            let this = Rc::clone(&self);
            let shard = Rc::clone(&shard);
            let senders = Rc::clone(&senders);
            glommio::spawn_local(async move {
                while let Some(msg) = receiver.recv().await {
                    match msg {
                        CoreMsg::Ask(id, request) => {
                            let answer = apply(&shard, &request);
                            let senders = Rc::clone(&senders);
                            // Never block this loop on a full channel: the
                            // peer may be sending to us at the same time.
                            glommio::spawn_local(async move {
                                let _ = senders.send_to(peer, CoreMsg::Answer(id, answer)).await;
                            })
                            .detach();
                        }
                        CoreMsg::Answer(id, answer) => {
                            if let Some(tx) = this.pending.borrow().get(&id) {
                                let _ = tx.try_send(answer);
                            }
                        }
                    }
                }
            })
            .detach();
        }
    }

    /// Waits for this core's turn to change state on every core (FIFO).
    pub async fn change_lock(&self) -> Option<glommio::sync::Permit<'_>> {
        self.changes.acquire_permit(1).await.ok()
    }

    /// This core's snapshot merged with every other core's, and the
    /// generation of configuration it describes. While a reload is being
    /// applied, cores may answer for different generations: the request is
    /// asked again (a switch takes milliseconds), and in the end only the
    /// answers of this core's generation are merged.
    pub async fn collect(&self, shard: &Shard) -> (Snapshot, Rc<CoreContext>) {
        let mut tries = 0;
        loop {
            let ctx = shard.current();
            let got = self.ask_all(shard, CoreRequest::Snapshot).await;
            let snapshots: Vec<Box<Snapshot>> = got
                .answers
                .into_iter()
                .filter_map(|a| match a {
                    CoreAnswer::Snapshot(generation, s) => Some((generation, s)),
                    _ => None,
                })
                .filter(|(generation, _)| *generation == ctx.generation)
                .map(|(_, s)| s)
                .collect();
            tries += 1;
            let all = snapshots.len() + got.missing == shard.core_count();
            if !all && tries < SNAPSHOT_TRIES {
                glommio::timer::sleep(SNAPSHOT_RETRY).await;
                continue;
            }
            let mut snapshots = snapshots.into_iter();
            let mut merged = snapshots.next().map_or_else(|| capture_one(&ctx), |s| *s);
            for snapshot in snapshots {
                merged.merge(&snapshot);
            }
            return (merged, ctx);
        }
    }

    /// Applies `request` on this core, then on every other core, and
    /// returns once all have answered or `ANSWER_PATIENCE` ran out.
    pub async fn ask_all(&self, shard: &Shard, request: CoreRequest) -> Answers {
        if shard.core_count() > 1 && !self.joined.is_fired() {
            // A command that arrives while the cores are still joining the
            // mesh (right after start) waits for it: applied on this core
            // alone, it would be acknowledged as applied everywhere.
            futures_lite::future::or(self.joined.wait(), async {
                glommio::timer::sleep(ANSWER_PATIENCE).await;
            })
            .await;
        }
        let mut answers = vec![apply(shard, &request)];
        let senders = self.senders.borrow().clone();
        let Some(senders) = senders else {
            // A single core, or a mesh that could not be joined.
            return Answers {
                answers,
                missing: shard.core_count().saturating_sub(1),
            };
        };
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        let peers = senders.nr_consumers();
        let (tx, rx) = local_channel::new_bounded(peers.max(1));
        self.pending.borrow_mut().insert(id, tx);
        let mut asked = 0;
        for peer in (0..peers).filter(|&p| p != senders.peer_id()) {
            if senders
                .send_to(peer, CoreMsg::Ask(id, request.clone()))
                .await
                .is_ok()
            {
                asked += 1;
            }
        }
        let others = RefCell::new(Vec::with_capacity(asked));
        futures_lite::future::or(
            async {
                while others.borrow().len() < asked {
                    match rx.recv().await {
                        Some(answer) => others.borrow_mut().push(answer),
                        None => break,
                    }
                }
            },
            glommio::timer::sleep(ANSWER_PATIENCE),
        )
        .await;
        self.pending.borrow_mut().remove(&id);
        let others = others.into_inner();
        let missing = peers.saturating_sub(1).saturating_sub(others.len());
        answers.extend(others);
        Answers { answers, missing }
    }
}

/// A copy of this core's counters and backend state, with the generation
/// it describes: the current one, with what the retired generations still
/// serving sessions counted since the switch added in.
pub fn capture(shard: &Shard) -> (u64, Snapshot) {
    let ctx = shard.current();
    let mut snapshot = capture_one(&ctx);
    for old in shard.retired() {
        let map = IndexMap::between(&old.config, &ctx.config);
        snapshot.stats.add_mapped(&old.stats.borrow(), &map);
        // Connections still open on a retired generation's servers.
        for (from, servers) in map.servers.iter().enumerate() {
            let Some(Some(to)) = map.backends.get(from) else {
                continue;
            };
            let was = old.backends[from].borrow();
            for (s, to_server) in servers.iter().enumerate() {
                let Some(state) = to_server.and_then(|i| snapshot.backends[*to].servers.get_mut(i))
                else {
                    continue;
                };
                let counters = was.server_counters(s);
                state.slots_used += u64::from(counters.current_conns);
                state.lbtot += counters.total_selected;
            }
        }
    }
    (ctx.generation, snapshot)
}

/// One generation's counters and backend state.
fn capture_one(ctx: &CoreContext) -> Snapshot {
    let now = Instant::now();
    let backends = ctx
        .backends
        .iter()
        .map(|b| {
            let b = b.borrow();
            BackendState {
                queue_cur: b.queue_current() as u64,
                queue_max: b.queue_max() as u64,
                servers: (0..b.server_count())
                    .map(|i| {
                        let counters = b.server_counters(i);
                        ServerState {
                            up_cores: u32::from(b.is_server_up(i)),
                            disabled_cores: u32::from(b.is_server_disabled(i)),
                            cores: 1,
                            weight: b.server_weight(i),
                            backup: b.is_server_backup(i),
                            since_change: now.saturating_duration_since(b.server_last_change(i)),
                            slots_used: u64::from(counters.current_conns),
                            lbtot: counters.total_selected,
                            admin: ServerAdmin {
                                drain_cores: u32::from(b.is_server_draining(i)),
                                config_maint: b.is_server_disabled_by_config(i),
                                checks_off: b.server_checks_off(i),
                                initial_weight: b.server_initial_weight(i),
                                maxconn: b.server_maxconn(i),
                                addr: Some(b.server_addr(i)),
                                check: b.server_check(i),
                                unchecked_health: b.server_unchecked_health(i),
                            },
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    let (log_lines, log_dropped) = ctx.log.counters();
    let pipes = ctx.pipes.stats();
    Snapshot {
        cores: 1,
        stats: ctx.stats.borrow().clone(),
        backends,
        log_lines,
        log_dropped,
        frontend_maxconn: ctx
            .frontend_limits
            .iter()
            .map(|l| l.process_limit())
            .collect(),
        pipes_used: pipes.in_use as u64,
        pipes_free: pipes.idle as u64,
    }
}
