//! Cross-core channels for health state: one bounded glommio shared channel
//! per ordered pair of cores, made on the main thread before the executors
//! start, each end connected inside its executor.
//!
//! glommio's `MeshBuilder` would do the same, but it numbers peers by
//! executor id and its builder holds an `Rc` that every executor clone
//! drops on its own thread; plain pairwise channels index peers by core
//! index and share nothing but the channels.

use glommio::channels::shared_channel::{
    self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};

/// Room in each core-to-core channel; health messages are rare (one per
/// state change and peer), so this only absorbs bursts.
const CHANNEL_CAPACITY: usize = 1024;

/// What one core tells another about health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The checking core changed a server's state; `generation` orders
    /// changes of one server, `token` is echoed in `Applied`.
    State {
        backend: u32,
        server: u32,
        up: bool,
        generation: u64,
        /// The configuration generation the sender's indexes belong to; a
        /// core running another one ignores the message.
        config: u64,
        token: u64,
    },
    /// A peer has applied the `State` with this token.
    Applied { token: u64 },
    /// Live traffic on some core saw `error-limit` consecutive errors on a
    /// server; sent to the core that checks it.
    Passive {
        /// The sender's configuration generation (see `State::config`).
        config: u64,
        backend: u32,
        server: u32,
        error: PassiveError,
        count: u32,
    },
}

pub use crate::shard::passive::PassiveError;

/// One core's unconnected ends: `Send`, handed over in `CoreStart`.
pub struct CoreLinks {
    index: usize,
    to: Vec<Option<SharedSender<Message>>>,
    from: Vec<Option<SharedReceiver<Message>>>,
}

impl std::fmt::Debug for CoreLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreLinks")
            .field("index", &self.index)
            .field("peers", &self.to.len())
            .finish()
    }
}

/// The channels between `count` cores; element `i` goes to core `i`.
pub fn mesh(count: usize) -> Vec<CoreLinks> {
    let mut links: Vec<CoreLinks> = (0..count)
        .map(|index| CoreLinks {
            index,
            to: (0..count).map(|_| None).collect(),
            from: (0..count).map(|_| None).collect(),
        })
        .collect();
    for a in 0..count {
        for b in 0..count {
            if a != b {
                let (tx, rx) = shared_channel::new_bounded(CHANNEL_CAPACITY);
                links[a].to[b] = Some(tx);
                links[b].from[a] = Some(rx);
            }
        }
    }
    links
}

/// Connected ends, usable on this core only.
pub struct Connected {
    pub index: usize,
    /// `senders[i]`: to core `i`; `None` for this core.
    pub senders: Vec<Option<ConnectedSender<Message>>>,
    /// `(i, from core i)`.
    pub receivers: Vec<(usize, ConnectedReceiver<Message>)>,
}

impl CoreLinks {
    pub fn index(&self) -> usize {
        self.index
    }

    /// Connects every end. Each connect waits for the peer's matching end,
    /// so all are connected concurrently (one after the other would
    /// deadlock two cores waiting on each other). A peer that gave up
    /// (dropped its ends) leaves a closed channel, not a hang.
    pub async fn connect(self) -> Connected {
        let senders: Vec<_> = self
            .to
            .into_iter()
            .map(|end| end.map(|tx| glommio::spawn_local(tx.connect())))
            .collect();
        let receivers: Vec<_> = self
            .from
            .into_iter()
            .enumerate()
            .filter_map(|(i, end)| end.map(|rx| (i, glommio::spawn_local(rx.connect()))))
            .collect();
        let mut connected_senders = Vec::with_capacity(senders.len());
        for task in senders {
            connected_senders.push(match task {
                Some(t) => Some(t.await),
                None => None,
            });
        }
        let mut connected_receivers = Vec::with_capacity(receivers.len());
        for (i, task) in receivers {
            connected_receivers.push((i, task.await));
        }
        Connected {
            index: self.index,
            senders: connected_senders,
            receivers: connected_receivers,
        }
    }
}
