//! Socket plumbing: listeners, connects, splice and copy tunnels.

pub mod copy;
pub mod forward;
pub mod pipe;
pub mod splice;
pub mod stream;
pub mod tunnel;

pub use forward::{ChunkBuf, ForwardError, Meter};
pub use pipe::{Pipe, PipeError, PipePool, PipeStats};
pub use stream::Stream;
pub use tunnel::{TunnelEnd, TunnelReport, TunnelSettings};
