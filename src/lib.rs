//! percore: a thread-per-core, io_uring L4/L7 load-balancing proxy.
//!
//! Module ownership and dependency direction are described in
//! `docs/architecture.md`. In short: `config` knows nothing of the runtime;
//! `net` knows nothing of config; `backend` owns per-core server state and
//! balancing; `proxy` ties a accepted connection to a backend through `net`;
//! `runtime` starts the executors and owns process lifecycle.

pub mod admin;
pub mod backend;
pub mod config;
pub mod convert;
/// Property checks for `fuzz/` and `tests/fuzz_corpus.rs`; not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod http;
pub mod log;
pub mod maps;
pub mod net;
pub mod notify;
pub mod proxy;
pub mod rules;
pub mod runtime;
pub mod shard;
pub mod stats;
pub mod stick;
pub mod tls;
