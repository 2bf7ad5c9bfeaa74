//! Binary upgrade: the listening sockets pass from the running process to
//! the next one, HAProxy's `-x` / `-sf` / `-st`.
//!
//! The new process connects to the old one's runtime API socket, sends
//! `_getsocks`, and receives every listening socket as SCM_RIGHTS
//! ancillary data: descriptors for the same kernel sockets, with the same
//! accept queues. It listens on them, reports itself started, and only
//! then signals the old process (`-sf`: SIGUSR1, a soft stop). The old
//! process stops accepting and closes its descriptors, which closes no
//! socket: the new process holds them too, so connections queued and
//! arriving meanwhile are accepted by the new process and none is refused
//! or reset.
//!
//! # Framing of the `_getsocks` answer
//!
//! Text lines, so that `echo _getsocks | socat stdio UNIX-CONNECT:...`
//! shows what would be handed over (socat drops the descriptors):
//!
//! ```text
//! percore-listeners/1 <count>\n          a header, no descriptors
//! <address>\n ... (up to 200 lines)       1st batch: one sendmsg, its
//!                                          descriptors attached, in order
//! <address>\n ...                          next batches, until <count>
//! ```
//!
//! The n-th address line describes the n-th descriptor received, as the
//! old process knows it (`127.0.0.1:8080`, `[::]:443`); the receiver checks
//! it against getsockname(2). Then the old process closes the connection.
//! Any other first line (`Permission denied`, the unknown-command text of
//! an older percore) is a refusal, reported with its text.
//!
//! The framing does not rely on message boundaries (a unix stream socket
//! keeps none for the data): the receiver reads the lines as a stream and
//! the descriptors in the order they come, and a batch's descriptors
//! always arrive with its first byte.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use super::listener::Inherited;

/// The runtime API command (HAProxy's name).
pub const COMMAND: &str = "_getsocks";
/// Start of the answer's header line; the version is there so that a
/// later framing is refused by an older receiver instead of misread.
const HEADER: &str = "percore-listeners/1 ";
/// Descriptors per sendmsg. Linux refuses a message carrying more than
/// SCM_MAX_FD (253) with EINVAL; 200 stays clear of that limit whatever
/// the kernel, and a process with thousands of listeners simply sends
/// more messages.
const BATCH: usize = 200;
/// The most descriptors one received message can carry (SCM_MAX_FD): the
/// receiver's control buffer has room for that many, so a sender using
/// a larger batch than ours is still received whole.
const SCM_MAX_FD: usize = 253;
/// How long the sender waits for room in the socket buffer. It runs on
/// core 0 between two polls, so it must be short; the whole answer is a
/// few kilobytes and fits an empty unix socket buffer, so it waits only
/// if the receiver stopped reading (HAProxy's `_getsocks` gives 1 s too).
const SEND_PATIENCE: Duration = Duration::from_secs(1);
/// How long the new process waits for each read from the old one.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// A header announcing more sockets than this is malformed (a garbled
/// count must not make the receiver wait for millions).
const MAX_SOCKETS: usize = 1 << 20;
/// A refusal is quoted up to this many characters.
const QUOTED: usize = 200;

/// Why the listening sockets could not be taken over. Each says which
/// side failed: this process (connect, receive), or the old one (refused,
/// malformed or short answer, a descriptor that is not a listener).
#[derive(Debug, Error)]
pub enum HandoverError {
    #[error("cannot connect to the old process's runtime API socket {}: {source}", .path.display())]
    Connect { path: PathBuf, source: io::Error },
    #[error("runtime API socket {}: cannot {step}: {source}", .path.display())]
    Io {
        path: PathBuf,
        step: &'static str,
        source: io::Error,
    },
    #[error("the old process did not answer on {} within {} s", .path.display(), .secs)]
    Timeout { path: PathBuf, secs: u64 },
    #[error("the old process refused {COMMAND} on {}: \"{answer}\"{hint}", .path.display())]
    Refused {
        path: PathBuf,
        answer: String,
        hint: &'static str,
    },
    #[error("the old process sent a malformed answer on {}: {what}", .path.display())]
    Malformed { path: PathBuf, what: String },
    #[error(
        "the old process closed {} after {received} of {expected} listening sockets",
        .path.display()
    )]
    Truncated {
        path: PathBuf,
        expected: usize,
        received: usize,
    },
    #[error("socket {index} from {} (announced as {announced}) {what}", .path.display())]
    NotAListener {
        path: PathBuf,
        index: usize,
        announced: SocketAddr,
        what: String,
    },
}

// --- old process ---

/// Sends `sockets` on `stream_fd` in the framing above (the `_getsocks`
/// answer). The descriptors are copied into the receiver by the kernel;
/// the caller may close its own afterwards.
pub fn send_listeners(
    stream_fd: BorrowedFd<'_>,
    sockets: &[(SocketAddr, RawFd)],
) -> io::Result<()> {
    send_all(
        stream_fd,
        format!("{HEADER}{}\n", sockets.len()).as_bytes(),
        &[],
    )?;
    for batch in sockets.chunks(BATCH) {
        let mut lines = String::new();
        for (addr, _) in batch {
            let _ = writeln!(lines, "{addr}");
        }
        let fds: Vec<RawFd> = batch.iter().map(|&(_, fd)| fd).collect();
        send_all(stream_fd, lines.as_bytes(), &fds)?;
    }
    Ok(())
}

/// Sends all of `data`, `fds` attached to its first byte (a short send
/// sends the rest without them: they went with the part that was sent).
fn send_all(fd: BorrowedFd<'_>, mut data: &[u8], mut fds: &[RawFd]) -> io::Result<()> {
    while !data.is_empty() {
        match sendmsg_fds(fd, data, fds) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                data = &data[n..];
                fds = &[];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The runtime API's connections are non-blocking.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_writable(fd)?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn sendmsg_fds(fd: BorrowedFd<'_>, data: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is a valid, empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // u64 elements: the buffer must be aligned for `cmsghdr`.
    let mut control: Vec<u64>;
    if !fds.is_empty() {
        let payload = std::mem::size_of_val(fds);
        // SAFETY: CMSG_SPACE is arithmetic on its argument.
        let space = unsafe { libc::CMSG_SPACE(payload as libc::c_uint) } as usize;
        control = vec![0u64; space.div_ceil(8)];
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points at `space` zeroed bytes aligned for
        // cmsghdr, which CMSG_SPACE sized for one header and `payload`
        // bytes: CMSG_FIRSTHDR is that header (not null, as
        // msg_controllen >= sizeof(cmsghdr)) and CMSG_DATA has room for
        // `payload` bytes.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(payload as libc::c_uint) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(cmsg),
                payload,
            );
        }
    }
    // SAFETY: `msg` points at `iov` and `control`, both alive for the call;
    // MSG_NOSIGNAL: a receiver gone away is an EPIPE, not a SIGPIPE.
    let n = unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

fn wait_writable(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd, for the duration of the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, SEND_PATIENCE.as_millis() as libc::c_int) };
        match rc {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the receiving process stopped reading",
                ))
            }
            n if n > 0 => return Ok(()),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

// --- new process ---

/// Asks the process behind the runtime API socket `path` for its
/// listening sockets (`-x`), and returns each with the address it is
/// bound to. Every socket is checked to be a listening TCP socket; on any
/// failure the descriptors received so far are closed.
pub fn fetch_listeners(path: &Path) -> Result<Vec<(SocketAddr, OwnedFd)>, HandoverError> {
    let mut stream = UnixStream::connect(path).map_err(|source| HandoverError::Connect {
        path: path.to_owned(),
        source,
    })?;
    let io_error = |step, source| HandoverError::Io {
        path: path.to_owned(),
        step,
        source,
    };
    // The old process answers from its core 0 between two polls; a
    // process that does not answer in this time is not going to.
    stream
        .set_read_timeout(Some(FETCH_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(FETCH_TIMEOUT)))
        .map_err(|e| io_error("set a timeout", e))?;
    stream
        .write_all(format!("{COMMAND}\n").as_bytes())
        .map_err(|e| io_error("send the command", e))?;
    receive_listeners(stream.as_fd(), path)
}

/// Reads a `_getsocks` answer from `fd` (`path` names it in errors).
fn receive_listeners(
    fd: BorrowedFd<'_>,
    path: &Path,
) -> Result<Vec<(SocketAddr, OwnedFd)>, HandoverError> {
    let malformed = |what: String| HandoverError::Malformed {
        path: path.to_owned(),
        what,
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut announced: Vec<SocketAddr> = Vec::new();
    let mut expected: Option<usize> = None;
    let mut buf = [0u8; 8192];
    loop {
        if let Some(n) = expected {
            if announced.len() == n && fds.len() >= n {
                break;
            }
        }
        let got = match recv_fds(fd, &mut buf, &mut fds) {
            Ok(got) => got,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(HandoverError::Timeout {
                    path: path.to_owned(),
                    secs: FETCH_TIMEOUT.as_secs(),
                })
            }
            Err(e) => {
                return Err(HandoverError::Io {
                    path: path.to_owned(),
                    step: "receive the listening sockets",
                    source: e,
                })
            }
        };
        if got == 0 {
            return Err(match expected {
                None => refused(path, &pending),
                Some(n) => HandoverError::Truncated {
                    path: path.to_owned(),
                    expected: n,
                    received: fds.len().min(announced.len()),
                },
            });
        }
        pending.extend_from_slice(&buf[..got]);
        if expected.is_none() {
            let seen = pending.len().min(HEADER.len());
            if pending[..seen] != HEADER.as_bytes()[..seen] {
                // Not the transfer: an error text. It ends at a blank
                // line or when the old process closes.
                return Err(refused(path, &read_rest(fd, pending)));
            }
            let Some(line) = take_line(&mut pending) else {
                continue;
            };
            let count = line
                .strip_prefix(HEADER)
                .and_then(|c| c.parse::<usize>().ok())
                .filter(|&c| c <= MAX_SOCKETS)
                .ok_or_else(|| malformed(format!("header \"{}\"", quote(&line))))?;
            expected = Some(count);
        }
        let count = expected.unwrap_or_default();
        while let Some(line) = take_line(&mut pending) {
            let addr = line
                .parse::<SocketAddr>()
                .map_err(|_| malformed(format!("address line \"{}\"", quote(&line))))?;
            announced.push(addr);
        }
        if announced.len() > count || fds.len() > count {
            return Err(malformed(format!(
                "{} addresses and {} descriptors for {count} announced sockets",
                announced.len(),
                fds.len()
            )));
        }
    }
    announced
        .into_iter()
        .zip(fds)
        .enumerate()
        .map(|(index, (addr, fd))| check_listener(path, index, addr, fd))
        .collect()
}

/// The socket's own address, once it is known to be a listening TCP
/// socket bound where the old process said.
fn check_listener(
    path: &Path,
    index: usize,
    announced: SocketAddr,
    fd: OwnedFd,
) -> Result<(SocketAddr, OwnedFd), HandoverError> {
    let refuse = |what: String| HandoverError::NotAListener {
        path: path.to_owned(),
        index,
        announced,
        what,
    };
    let sock = socket2::SockRef::from(&fd);
    let local = sock
        .local_addr()
        .map_err(|e| refuse(format!("has no address: {e}")))?
        .as_socket()
        .ok_or_else(|| refuse("is not an IP socket".into()))?;
    let tcp = sock.r#type().ok() == Some(socket2::Type::STREAM)
        && sock.protocol().ok().flatten() == Some(socket2::Protocol::TCP);
    if !tcp {
        return Err(refuse("is not a TCP socket".into()));
    }
    // SO_ACCEPTCONN.
    if !sock.is_listener().unwrap_or(false) {
        return Err(refuse("is not listening".into()));
    }
    if local.ip() != announced.ip() || local.port() != announced.port() {
        return Err(refuse(format!("is bound to {local}")));
    }
    Ok((local, fd))
}

/// recvmsg into `buf`; the descriptors that came with the bytes are
/// appended to `fds` (close-on-exec), owned before anything else is
/// checked so that none leaks.
fn recv_fds(fd: BorrowedFd<'_>, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    let space =
        unsafe { libc::CMSG_SPACE((SCM_MAX_FD * std::mem::size_of::<RawFd>()) as libc::c_uint) }
            as usize;
    // u64 elements: aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: an all-zero msghdr is a valid, empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let n = loop {
        // SAFETY: `msg` points at `iov` (over `buf`) and `control`, both
        // alive and writable for the call.
        let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    // SAFETY: the kernel filled `control` up to msg_controllen with
    // well-formed headers; CMSG_FIRSTHDR/NXTHDR stay within it (they
    // return null past the end), and each SCM_RIGHTS header's data holds
    // (cmsg_len - CMSG_LEN(0)) / sizeof(int) descriptors now open in this
    // process and owned by nobody else. Read unaligned: CMSG_DATA is
    // aligned only for the header.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let bytes = ((*cmsg).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..bytes / std::mem::size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::other(
            "this process could not take every descriptor (control data truncated): \
             is its file descriptor limit too low?",
        ));
    }
    Ok(n)
}

/// The first line of `pending`, without its newline, if complete.
fn take_line(pending: &mut Vec<u8>) -> Option<String> {
    let end = pending.iter().position(|&b| b == b'\n')?;
    let line: Vec<u8> = pending.drain(..=end).take(end).collect();
    Some(String::from_utf8_lossy(&line).into_owned())
}

/// Reads the rest of a refusal: up to its blank line, the end of the
/// stream, or a few kilobytes. Descriptors, should any come, are closed.
fn read_rest(fd: BorrowedFd<'_>, mut text: Vec<u8>) -> Vec<u8> {
    let mut buf = [0u8; 1024];
    let mut stray = Vec::new();
    while !text.windows(2).any(|w| w == b"\n\n") && text.len() < 4096 {
        match recv_fds(fd, &mut buf, &mut stray) {
            Ok(n) if n > 0 => text.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    text
}

fn refused(path: &Path, answer: &[u8]) -> HandoverError {
    let text = String::from_utf8_lossy(answer);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    HandoverError::Refused {
        path: path.to_owned(),
        answer: quote(first),
        hint: if first.starts_with("Unknown command") {
            " (is it a percore without binary upgrade, or HAProxy?)"
        } else if first.is_empty() {
            " (it closed the connection without a word)"
        } else {
            ""
        },
    }
}

/// `text` cut to a readable length, control characters escaped.
fn quote(text: &str) -> String {
    let mut out: String = text.chars().take(QUOTED).collect();
    if text.chars().count() > QUOTED {
        out.push_str("...");
    }
    out.escape_debug().to_string()
}

// --- starting with inherited sockets ---

/// What a start that takes over from a running process hands to
/// `runtime::run`.
#[derive(Default)]
pub struct Takeover {
    /// The listening sockets received with `-x`.
    pub inherited: Inherited,
    /// A runtime API socket file a live process still listens on is
    /// replaced (atomically, once this process has started) instead of
    /// being a start-up error: that process is the one being replaced.
    pub replace_sockets: bool,
    /// Runs once every core is ready, right after the start-up notice
    /// (`-sf` / `-st`: [`stop_previous`]).
    pub after_start: Option<Box<dyn FnOnce()>>,
}

/// Splits the inherited sockets between `cores` executors: the n-th
/// socket for an address goes to core n, those beyond the last core to
/// core 0. Every socket of a SO_REUSEPORT group gets its share of new
/// connections, so each needs a core accepting on it. Sockets for an
/// address no frontend binds any more are closed; their addresses are
/// returned for the log.
pub fn share_out(
    inherited: Inherited,
    configured: &[SocketAddr],
    cores: usize,
) -> (Vec<Inherited>, Vec<SocketAddr>) {
    let mut shares: Vec<Vec<(SocketAddr, OwnedFd)>> =
        (0..cores.max(1)).map(|_| Vec::new()).collect();
    let mut closed = Vec::new();
    let mut seen: Vec<(SocketAddr, usize)> = Vec::new();
    for (addr, fd) in inherited.rest() {
        if !configured.contains(&addr) {
            closed.push(addr);
            continue;
        }
        let nth = match seen.iter_mut().find(|(a, _)| *a == addr) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                seen.push((addr, 0));
                0
            }
        };
        let core = if nth < shares.len() { nth } else { 0 };
        shares[core].push((addr, fd));
    }
    (shares.into_iter().map(Inherited::new).collect(), closed)
}

/// [`share_out`] for the frontends of `config`, logging the sockets it
/// closes.
pub fn inherit(
    inherited: Inherited,
    config: &crate::config::Config,
    cores: usize,
) -> Vec<Inherited> {
    let configured: Vec<SocketAddr> = config
        .frontends
        .iter()
        .flat_map(|f| f.binds.iter().copied())
        .collect();
    let (shares, closed) = share_out(inherited, &configured, cores);
    for addr in closed {
        eprintln!(
            "[NOTICE] inherited listening socket {addr} closed: no frontend binds it any more"
        );
    }
    shares
}

/// How the previous process is told to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviousStop {
    /// `-sf`: SIGUSR1, a soft stop (stop accepting, finish connections up
    /// to `hard-stop-after`).
    Soft,
    /// `-st`: SIGTERM. HAProxy stops at once on it; percore soft-stops on
    /// SIGTERM too (docs/architecture.md), so the difference is only the
    /// signal's name.
    Terminate,
}

/// Signals every process in `pids` (`-sf` / `-st`), once this process has
/// started. Logs one line per process; returns those that could not be
/// signalled. Never signals a process group (pid 0, negative) or this
/// process.
pub fn stop_previous(pids: &[u32], how: PreviousStop) -> Vec<(u32, io::Error)> {
    let (signal, name) = match how {
        PreviousStop::Soft => (libc::SIGUSR1, "SIGUSR1"),
        PreviousStop::Terminate => (libc::SIGTERM, "SIGTERM"),
    };
    let mut failed = Vec::new();
    for &pid in pids {
        let target = match libc::pid_t::try_from(pid) {
            Ok(p) if p > 0 && pid != std::process::id() => p,
            _ => {
                failed.push((pid, io::Error::other("not a previous process's pid")));
                continue;
            }
        };
        // SAFETY: kill(2) on a single positive pid, checked above.
        if unsafe { libc::kill(target, signal) } == 0 {
            eprintln!("[NOTICE] sent {name} to the previous process {pid}");
        } else {
            failed.push((pid, io::Error::last_os_error()));
        }
    }
    for (pid, e) in &failed {
        eprintln!("[WARNING] cannot send {name} to the previous process {pid}: {e}");
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn listeners(n: usize) -> Vec<TcpListener> {
        (0..n)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect()
    }

    fn listed(sockets: &[TcpListener]) -> Vec<(SocketAddr, RawFd)> {
        sockets
            .iter()
            .map(|l| (l.local_addr().unwrap(), l.as_raw_fd()))
            .collect()
    }

    /// Sends `sockets` from a thread, as the old process's core 0 does,
    /// and receives them here.
    fn hand_over(
        sockets: Vec<(SocketAddr, RawFd)>,
    ) -> Result<Vec<(SocketAddr, OwnedFd)>, HandoverError> {
        let (old, new) = UnixStream::pair().unwrap();
        let sender = std::thread::spawn(move || send_listeners(old.as_fd(), &sockets));
        let got = receive_listeners(new.as_fd(), Path::new("pair"));
        sender.join().unwrap().unwrap();
        got
    }

    #[test]
    fn sockets_pass_whole_with_their_addresses_in_batches() {
        // More than one batch.
        let old = listeners(BATCH + 7);
        let got = hand_over(listed(&old)).unwrap();
        assert_eq!(got.len(), old.len());
        for ((addr, fd), l) in got.iter().zip(&old) {
            assert_eq!(*addr, l.local_addr().unwrap());
            assert_ne!(fd.as_raw_fd(), l.as_raw_fd());
        }
    }

    #[test]
    fn a_connection_queued_before_the_hand_over_is_accepted_on_the_new_descriptor() {
        let old = listeners(1);
        let addr = old[0].local_addr().unwrap();
        // Queued in the kernel, never accepted by the old side.
        let mut client = TcpStream::connect(addr).unwrap();
        let got = hand_over(listed(&old)).unwrap();
        drop(old); // the old process closes its copies
        let (_, fd) = got.into_iter().next().unwrap();
        let new = TcpListener::from(fd);
        let (mut conn, peer) = new.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        client.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        // And the socket still listens: a new connection is accepted too.
        let _later = TcpStream::connect(addr).unwrap();
        new.accept().unwrap();
    }

    #[test]
    fn no_sockets_is_an_empty_transfer() {
        assert!(hand_over(Vec::new()).unwrap().is_empty());
    }

    #[test]
    fn a_refusal_is_reported_with_its_text() {
        let (mut old, new) = UnixStream::pair().unwrap();
        old.write_all(b"Permission denied\n\n").unwrap();
        drop(old);
        let err = receive_listeners(new.as_fd(), Path::new("/run/a.sock")).unwrap_err();
        assert!(matches!(err, HandoverError::Refused { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the old process refused _getsocks on /run/a.sock: \"Permission denied\""
        );
    }

    #[test]
    fn a_short_transfer_is_truncated() {
        let old = listeners(2);
        let (tx, new) = UnixStream::pair().unwrap();
        send_all(tx.as_fd(), format!("{HEADER}3\n").as_bytes(), &[]).unwrap();
        send_all(tx.as_fd(), b"127.0.0.1:1\n", &[old[0].as_raw_fd()]).unwrap();
        drop(tx);
        let err = receive_listeners(new.as_fd(), Path::new("x")).unwrap_err();
        assert!(
            matches!(
                err,
                HandoverError::Truncated {
                    expected: 3,
                    received: 1,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_socket_that_does_not_listen_is_refused() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let conn = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let err = hand_over(vec![(conn.local_addr().unwrap(), conn.as_raw_fd())]).unwrap_err();
        assert!(err.to_string().ends_with("is not listening"), "{err}");
        // An address that does not match what the socket is bound to.
        let other: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let err = hand_over(vec![(other, l.as_raw_fd())]).unwrap_err();
        assert!(err.to_string().contains("is bound to"), "{err}");
    }

    #[test]
    fn sockets_are_shared_out_one_per_core_with_the_rest_on_core_0() {
        let a = listeners(3);
        let b = listeners(1);
        let gone = listeners(1);
        let (aa, ba) = (a[0].local_addr().unwrap(), b[0].local_addr().unwrap());
        // Three old sockets "for" one address: relabel them as aa.
        let mut all: Vec<(SocketAddr, OwnedFd)> =
            a.into_iter().map(|l| (aa, OwnedFd::from(l))).collect();
        all.push((ba, OwnedFd::from(b.into_iter().next().unwrap())));
        let gone_addr = gone[0].local_addr().unwrap();
        all.push((gone_addr, OwnedFd::from(gone.into_iter().next().unwrap())));
        let (shares, closed) = share_out(Inherited::new(all), &[aa, ba], 2);
        assert_eq!(closed, vec![gone_addr]);
        let count = |core: &Inherited, addr| {
            let mut n = 0;
            while core.take(addr).is_some() {
                n += 1;
            }
            n
        };
        assert_eq!(count(&shares[0], aa), 2);
        assert_eq!(count(&shares[1], aa), 1);
        assert_eq!(count(&shares[0], ba), 1);
        assert_eq!(count(&shares[1], ba), 0);
    }

    #[test]
    fn stop_previous_never_signals_a_group_or_itself() {
        let failed = stop_previous(&[0, std::process::id(), u32::MAX], PreviousStop::Soft);
        assert_eq!(failed.len(), 3);
    }
}
