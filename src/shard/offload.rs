//! Work too long for a core's event loop, done on a helper thread while
//! the core keeps serving: reading and checking a reloaded configuration
//! takes tens of milliseconds for a large file, which on the core itself
//! would hold up every connection it serves.
//!
//! The core awaits the helper through a socket pair: the helper sends its
//! result over a channel, then its end of the pair closes, which wakes the
//! core's read (glommio has no waker a foreign thread could call).

use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::mpsc;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum OffloadError {
    #[error("internal: cannot start a helper thread for {what}: {source}")]
    Spawn {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("internal: the helper thread for {what} ended without a result")]
    Lost { what: &'static str },
}

/// Runs `work` on a new thread allowed on every CPU the process may use
/// (not only this core's), and waits for its result without blocking the
/// core.
pub async fn run<T, W>(what: &'static str, cpus: Vec<usize>, work: W) -> Result<T, OffloadError>
where
    T: Send + 'static,
    W: FnOnce() -> T + Send + 'static,
{
    let spawn_error = |source| OffloadError::Spawn { what, source };
    let (done_read, done_write) = StdUnixStream::pair().map_err(spawn_error)?;
    let (send, receive) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name(format!("percore-{what}"))
        .spawn(move || {
            // A thread starts with its creator's mask: this core's one CPU.
            widen_affinity(&cpus);
            yield_to_cores();
            let _ = send.send(work());
            // Closing the pair (also on a panic, by unwinding) wakes the core.
            drop(done_write);
        })
        .map_err(spawn_error)?;
    let read: OwnedFd = done_read.into();
    // SAFETY: `read` is a socket we own; glommio takes it whole.
    let mut stream = unsafe { glommio::net::UnixStream::from_raw_fd(read.into_raw_fd()) };
    let mut byte = [0u8; 1];
    // Nothing is ever written: the read returns at end of stream.
    let _ = futures_lite::AsyncReadExt::read(&mut stream, &mut byte).await;
    receive.try_recv().map_err(|_| OffloadError::Lost { what })
}

/// Every CPU runs a core, so the helper always shares one with a core's
/// traffic: it runs at a lower priority (nice 10, about a tenth of a CPU
/// against a busy core), so a core woken by a request preempts it instead
/// of waiting for its time slice. Best effort, like the affinity.
fn yield_to_cores() {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    if let Ok(tid) = libc::id_t::try_from(tid) {
        // SAFETY: setpriority on this thread's own id; no memory is passed.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, tid, 10);
        }
    }
}

/// Lets the calling thread run on any of `cpus`. Best effort: on failure
/// the thread stays on its creator's CPU, which is slower but correct.
fn widen_affinity(cpus: &[usize]) {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let capacity = 8 * std::mem::size_of::<libc::cpu_set_t>();
    for &cpu in cpus.iter().filter(|&&c| c < capacity) {
        // SAFETY: `cpu` is below the set's capacity, checked above.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the
    // calling thread.
    unsafe {
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_comes_back_to_the_executor_and_a_panic_is_an_error() {
        let handle = glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let cpus = crate::config::cpus::available_cpus();
                let sum = run("test", cpus.clone(), || (1..=10u32).sum::<u32>()).await;
                let lost = run("test", cpus, || -> u32 { panic!("helper fails") }).await;
                (sum.ok(), matches!(lost, Err(OffloadError::Lost { .. })))
            })
            .expect("executor starts");
        assert_eq!(handle.join().ok(), Some((Some(55), true)));
    }
}
