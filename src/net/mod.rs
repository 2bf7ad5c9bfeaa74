//! Socket plumbing: listeners, connects, splice and copy tunnels.

pub mod accept;
pub mod blame;
pub mod conn;
pub mod copy;
pub mod forward;
pub mod listener;
pub mod pipe;
pub mod proxy_protocol;
pub mod readiness;
pub mod shared;
pub mod splice;
pub mod stream;
pub mod tunnel;

pub use accept::Acceptor;
pub use blame::{Blame, Cause, Side, Stage};
pub use conn::Conn;
pub use forward::{ChunkBuf, ForwardError, Meter};
pub use pipe::{Pipe, PipeError, PipePool, PipeStats};
pub use stream::Stream;
pub use tunnel::{TunnelEnd, TunnelReport, TunnelSettings};
