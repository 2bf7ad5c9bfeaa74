//! systemd's service notification protocol (sd_notify(3)), so that a
//! unit can be `Type=notify` or `Type=notify-reload`.
//!
//! Messages, one datagram each, to the socket named by `NOTIFY_SOCKET`
//! (a path, or `@name` for an abstract socket):
//! - `READY=1` and a `STATUS=` line once every core listens (and has
//!   dropped its privileges), from the main thread;
//! - `RELOADING=1` with `MONOTONIC_USEC=` (CLOCK_MONOTONIC, which
//!   `Type=notify-reload` compares with the time it sent SIGHUP) when a
//!   reload begins, then `READY=1` and a `STATUS=` with its result when it
//!   ended, applied or refused — from core 0, which runs reloads;
//! - `STOPPING=1` when a soft stop begins (core 0);
//! - every `STATUS_EVERY`, or every half `WATCHDOG_USEC` when systemd's
//!   watchdog is on, a `STATUS=` with the open connections and the last
//!   reload's result — and `WATCHDOG=1` if every core answered the
//!   request for counters, so that a stuck core stops the pings and lets
//!   systemd restart the service.
//!
//! The socket is connected once, at start-up, before a `chroot` hides its
//! path and before the switch of user; sending on a connected datagram
//! socket checks neither again. Without `NOTIFY_SOCKET` nothing is sent.
//! A failed send is ignored (the protocol is best effort: a manager that
//! does not listen must not stop a proxy).
//!
//! A plain unix datagram socket is all the protocol needs; no crate. A
//! leaf module, so that `runtime` (start, stop, the periodic status) and
//! `admin` (reloads) can both call it.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How often `STATUS=` is refreshed without a watchdog.
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// The connected notification socket and what the messages need.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    /// Half of `WATCHDOG_USEC` when the watchdog is on for this process.
    watchdog: Option<Duration>,
    /// The last reload's result, for `STATUS=`.
    last_reload: Mutex<String>,
}

static NOTIFIER: OnceLock<Option<Notifier>> = OnceLock::new();

/// Connects to `NOTIFY_SOCKET` if it is set. Call once, early in `main`,
/// before privileges are dropped. `Err` says why the variable could not
/// be used; percore then runs without notifications.
pub fn init() -> Result<(), String> {
    let mut outcome = Ok(());
    NOTIFIER.get_or_init(|| match from_env() {
        Ok(n) => n,
        Err(e) => {
            outcome = Err(e);
            None
        }
    });
    outcome
}

fn from_env() -> Result<Option<Notifier>, String> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(None);
    };
    let target = target.to_string_lossy().into_owned();
    let addr = parse_address(&target)
        .map_err(|e| format!("NOTIFY_SOCKET={target:?} cannot be used: {e}"))?;
    let socket = UnixDatagram::unbound()
        .and_then(|s| s.connect_addr(&addr).map(|()| s))
        .map_err(|e| format!("cannot connect to NOTIFY_SOCKET={target:?}: {e}"))?;
    // A full socket buffer must never block a core.
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("NOTIFY_SOCKET: {e}"))?;
    Ok(Some(Notifier {
        socket,
        watchdog: watchdog_from_env(),
        last_reload: Mutex::new("none yet".into()),
    }))
}

/// `/path` or `@abstract` (sd_notify(3)); other kinds (vsock) are not
/// supported.
fn parse_address(target: &str) -> io::Result<SocketAddr> {
    if let Some(name) = target.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(name.as_bytes())
    } else if target.starts_with('/') {
        SocketAddr::from_pathname(target)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "expected an absolute path or @name",
        ))
    }
}

/// Half of `WATCHDOG_USEC` if it is set and meant for this process
/// (`WATCHDOG_PID` absent or ours), as sd_watchdog_enabled(3).
fn watchdog_from_env() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2))
}

fn notifier() -> Option<&'static Notifier> {
    NOTIFIER.get().and_then(Option::as_ref)
}

fn send(message: &str) {
    if let Some(n) = notifier() {
        let _ = n.socket.send(message.as_bytes());
    }
}

/// Status text must stay on its line: one message, one `STATUS=`.
fn one_line(text: &str) -> String {
    text.replace('\n', "; ")
}

/// Every core listens: the service is up.
pub fn ready(status: &str) {
    send(&format!("READY=1\nSTATUS={}", one_line(status)));
}

/// Start-up failed; the process is about to exit non-zero.
pub fn failed(status: &str) {
    send(&format!("STATUS=cannot start: {}", one_line(status)));
}

/// A reload begins.
pub fn reloading() {
    send(&format!(
        "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading the configuration",
        monotonic_usec()
    ));
}

/// A reload ended; `summary` is its last line (applied or refused).
pub fn reloaded(applied: bool, summary: &str) {
    let result = format!(
        "{}: {}",
        if applied { "applied" } else { "refused" },
        one_line(summary)
    );
    if let Some(n) = notifier() {
        if let Ok(mut last) = n.last_reload.lock() {
            last.clone_from(&result);
        }
    }
    send(&format!("READY=1\nSTATUS=serving; last reload {result}"));
}

/// A soft stop begins: listeners close, connections drain.
pub fn stopping() {
    send("STOPPING=1\nSTATUS=stopping: draining connections");
}

fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    secs * 1_000_000 + nanos / 1_000
}

/// How often core 0 refreshes `STATUS=` (and pings the watchdog):
/// half of `WATCHDOG_USEC` when the watchdog is on, else `STATUS_EVERY`.
/// `None` when nothing is sent at all.
pub fn status_every() -> Option<Duration> {
    notifier().map(|n| n.watchdog.unwrap_or(STATUS_EVERY))
}

/// The periodic status: open connections across the cores, the last
/// reload's result; `WATCHDOG=1` too when the watchdog is on and every
/// core answered (`missing` = 0), so that a stuck core stops the pings.
pub fn status(connections: u64, cores: usize, missing: usize) {
    let Some(n) = notifier() else { return };
    let last = n.last_reload.lock().map(|l| l.clone()).unwrap_or_default();
    let mut message = format!(
        "STATUS=serving {connections} connection(s) on {cores} core(s); last reload {last}"
    );
    if missing > 0 {
        message.push_str(&format!("; {missing} core(s) not answering"));
    } else if n.watchdog.is_some() {
        message.push_str("\nWATCHDOG=1");
    }
    send(&message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_paths_or_abstract_names() {
        use std::os::linux::net::SocketAddrExt;
        let abstract_name = parse_address("@percore/notify").expect("abstract");
        assert_eq!(
            abstract_name.as_abstract_name(),
            Some(&b"percore/notify"[..])
        );
        let path = parse_address("/run/systemd/notify").expect("path");
        assert_eq!(
            path.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        assert!(parse_address("vsock:2:1234").is_err());
        assert!(parse_address("relative").is_err());
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let a = monotonic_usec();
        let b = monotonic_usec();
        assert!(a > 0 && b >= a);
    }
}
