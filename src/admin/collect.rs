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

use super::apply::{apply, CoreAnswer, CoreRequest};
use crate::proxy::CoreContext;
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

pub fn mesh(cores: usize) -> StatsMesh {
    MeshBuilder::full(cores.max(1), MESH_CHANNEL_SIZE)
}

/// One core's side of the mesh.
#[derive(Default)]
pub struct Collector {
    senders: RefCell<Option<Rc<Senders<CoreMsg>>>>,
    pending: RefCell<HashMap<u64, LocalSender<CoreAnswer>>>,
    next_id: Cell<u64>,
}

impl Collector {
    /// Joins the mesh, then answers other cores' requests until the
    /// executor ends. Spawn it detached: joining waits for every core.
    pub async fn run(self: Rc<Self>, mesh: StatsMesh, ctx: Rc<CoreContext>) {
        let Ok((senders, mut receivers)) = mesh.join().await else {
            eprintln!(
                "[WARNING] core {}: cannot join the stats mesh; stats show this core only",
                ctx.core_index
            );
            return;
        };
        let senders = Rc::new(senders);
        *self.senders.borrow_mut() = Some(Rc::clone(&senders));
        for (peer, receiver) in receivers.streams() {
            let this = Rc::clone(&self);
            let ctx = Rc::clone(&ctx);
            let senders = Rc::clone(&senders);
            glommio::spawn_local(async move {
                while let Some(msg) = receiver.recv().await {
                    match msg {
                        CoreMsg::Ask(id, request) => {
                            let answer = apply(&ctx, &request);
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

    /// This core's snapshot merged with every other core's.
    pub async fn collect(&self, ctx: &CoreContext) -> Snapshot {
        let got = self.ask_all(ctx, CoreRequest::Snapshot).await;
        let mut snapshots = got.answers.into_iter().filter_map(|a| match a {
            CoreAnswer::Snapshot(s) => Some(s),
            _ => None,
        });
        let mut merged = snapshots.next().map_or_else(|| capture(ctx), |s| *s);
        for snapshot in snapshots {
            merged.merge(&snapshot);
        }
        merged
    }

    /// Applies `request` on this core, then on every other core, and
    /// returns once all have answered or `ANSWER_PATIENCE` ran out.
    pub async fn ask_all(&self, ctx: &CoreContext, request: CoreRequest) -> Answers {
        let mut answers = vec![apply(ctx, &request)];
        let senders = self.senders.borrow().clone();
        let Some(senders) = senders else {
            // Mesh not joined yet (start-up) or a single core.
            return Answers {
                answers,
                missing: 0,
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

/// A copy of this core's counters and backend state.
pub fn capture(ctx: &CoreContext) -> Snapshot {
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
