//! Signals to cores: each executor has its own socket pair, written by
//! signal-hook's async-signal-safe handler, read by a task of the core.

use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;

use crate::shard::stop::Stop;

/// One control channel per executor. The write end is kept by the main
/// thread (to stop cores when start-up fails elsewhere) and registered with
/// signal-hook for SIGTERM, SIGINT and SIGUSR1.
pub struct ControlPipe {
    pub read: OwnedFd,
    pub write: StdUnixStream,
}

pub fn control_pipe() -> io::Result<ControlPipe> {
    let (read, write) = StdUnixStream::pair()?;
    write.set_nonblocking(true)?;
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGUSR1,
    ] {
        signal_hook::low_level::pipe::register(sig, write.try_clone()?)?;
    }
    Ok(ControlPipe {
        read: read.into(),
        write,
    })
}

/// The reload channel: SIGHUP and SIGUSR2 (what `systemctl reload` and
/// HAProxy's master send) write a byte for core 0, which re-reads the
/// configuration. Without these handlers the signals' default action
/// would end the process.
pub fn reload_pipe() -> io::Result<ControlPipe> {
    let (read, write) = StdUnixStream::pair()?;
    write.set_nonblocking(true)?;
    for sig in [signal_hook::consts::SIGHUP, signal_hook::consts::SIGUSR2] {
        signal_hook::low_level::pipe::register(sig, write.try_clone()?)?;
    }
    Ok(ControlPipe {
        read: read.into(),
        write,
    })
}

/// Calls `reload` once per byte that arrives (one per signal), in order,
/// until the channel closes.
pub async fn watch_reloads<F, Fut>(read: OwnedFd, mut reload: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures_lite::AsyncReadExt;
    // SAFETY: we own the fd and give it to glommio whole.
    let mut stream = unsafe { glommio::net::UnixStream::from_raw_fd(read.into_raw_fd()) };
    let mut byte = [0u8; 1];
    while let Ok(1) = stream.read(&mut byte).await {
        reload().await;
    }
}

/// Waits on the control channel: the first byte is a soft stop, the second a
/// hard stop (a second Ctrl-C cuts the drain short).
pub async fn watch_control(read: OwnedFd, stop: &Stop) {
    use futures_lite::AsyncReadExt;
    // SAFETY: we own the fd and give it to glommio whole.
    let mut stream = unsafe { glommio::net::UnixStream::from_raw_fd(read.into_raw_fd()) };
    let mut byte = [0u8; 1];
    let mut seen = 0;
    while seen < 2 {
        match stream.read(&mut byte).await {
            Ok(0) | Err(_) => {
                // The main thread holds the write end for the whole run; if
                // it is gone the process is going away: stop hard.
                stop.soft.fire();
                stop.hard.fire();
                return;
            }
            Ok(_) => {
                seen += 1;
                if seen == 1 {
                    stop.soft.fire();
                } else {
                    stop.hard.fire();
                }
            }
        }
    }
}
