//! Per-core backend state: servers, balancing, connection slots, queue.
//!
//! Every core builds its own [`BackendRuntime`] for each configured backend
//! and shares it among its connection tasks as `Rc<RefCell<_>>`; no state
//! crosses cores, so there are no locks or atomics. A connection calls
//! [`acquire`] to get a [`ServerSlot`] (server index and address) and keeps
//! the slot for as long as it uses the server. Semantics follow HAProxy's
//! `balance`, `weight`, `maxconn`, `backup`, `option allbackups`,
//! `timeout queue` and `option redispatch`; `maxconn` is split across cores
//! (see [`maxconn_share`]) and the queue is per core.

mod carry;
mod ring;
mod runtime;
mod select;
mod server;
mod slot;

pub use runtime::{BackendRuntime, PickHint};
pub use server::{maxconn_share, CheckState, ServerCounters};
pub use slot::{acquire, acquire_hinted, acquire_server, AcquireError, ServerSlot};

#[cfg(test)]
mod tests;
