//! Stick tables (HAProxy's `stick-table`, `track-sc*`, `sc_*`/`src_*`/
//! `table_cnt` fetches, `table_*` converters): per-key counters and
//! rates, exact across cores.
//!
//! - [`def`]: what a `stick-table` line defines (key type, size, expiry,
//!   stored data types, HAProxy's data type table);
//! - [`key`]: table keys from samples, and each key's owner core;
//! - [`table`]: one core's part of a table (LRU-bounded, expiring
//!   entries; HAProxy's freq_ctr rates);
//! - [`core`]: the per-core store and the channel mesh through which a
//!   core updates keys other cores own;
//! - [`track`]: a connection's tracking slots, and the fetches and actions
//!   the rule language gets (rows of `rules::Fetch`, `TcpAction`,
//!   `RequestAction`).
//!
//! Layers: `config` parses into [`def`] and [`track`] types; `rules`
//! evaluates [`track`] fetches synchronously; `proxy` sessions resolve
//! what they need asynchronously through [`core`], which depends on
//! nothing above it.

pub mod core;
pub mod def;
pub mod filter;
pub mod key;
pub mod persist;
pub mod table;
pub mod track;

pub use self::core::{mesh, StickCore, StickMesh};
pub use def::{DataType, KeyType, Stored, TableDef};
pub use filter::{Filter, Op};
pub use key::Key;
pub use persist::{StickKind, StickRule};
pub use table::{Snapshot, Update};
pub use track::{Read, Scope, StickAction, StickFetch, Tracked};
