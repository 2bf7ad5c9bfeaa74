//! Per-core stop signalling: a soft stop (stop accepting, drain) and a hard
//! stop (cut everything). Signals reach each executor through its own socket
//! pair, written by signal-hook's async-signal-safe handler.

use glommio::sync::Semaphore;
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;

/// A one-shot broadcast: every waiter wakes when it fires. Built on a closed
/// glommio semaphore because a closed semaphore fails every pending and
/// future acquire, which is exactly "wake everyone, forever".
pub struct Event {
    sem: Semaphore,
}

impl Event {
    pub fn new() -> Self {
        Event {
            sem: Semaphore::new(0),
        }
    }

    pub fn fire(&self) {
        self.sem.close();
    }

    pub fn is_fired(&self) -> bool {
        self.sem.try_acquire(1).is_err()
    }

    pub async fn wait(&self) {
        // Never succeeds while open (no permits are ever signalled), so it
        // returns only once closed.
        let _ = self.sem.acquire(1).await;
    }
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

pub struct Stop {
    pub soft: Event,
    pub hard: Event,
}

impl Stop {
    pub fn new() -> Self {
        Stop {
            soft: Event::new(),
            hard: Event::new(),
        }
    }
}

impl Default for Stop {
    fn default() -> Self {
        Self::new()
    }
}

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
