//! The log writer: one plain thread (not an executor) that receives
//! batches of lines from the cores and writes them to every target. A slow
//! or failing target only slows this thread; cores never wait for it (they
//! drop and count lines when the channel is full, see [`super::CoreLog`]).

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::date::Clock;
use super::syslog::{hostname, Framer};
use crate::config::{LogDest, LogFraming, LogTarget};

/// Lines from one core, newline-terminated, written together.
#[derive(Debug)]
pub struct Batch {
    pub text: String,
    pub lines: u64,
}

/// Batches in flight per core before cores start dropping.
const BATCHES_PER_CORE: usize = 16;
/// HAProxy's default maximum syslog message length (`len 1024`); longer
/// UDP messages are cut there.
const UDP_MAX_LEN: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum LogStartError {
    #[error("cannot open log file {path}: {source}")]
    File { path: PathBuf, source: io::Error },
    #[error("cannot create a UDP socket for syslog {addr}: {source}")]
    Udp {
        addr: std::net::SocketAddr,
        source: io::Error,
    },
    #[error("cannot start the log writer thread: {0}")]
    Thread(io::Error),
}

enum Sink {
    Stdout,
    Stderr,
    File(File),
    Udp(UdpSocket),
    /// A local syslog socket; `None` until it can be connected to. The
    /// path is kept to connect later: the daemon may start after percore
    /// (as at boot), and a restarted daemon has a new socket there.
    Unix(Option<UnixDatagram>, PathBuf),
    /// Syslog over TCP; `None` until connected (at the first batch, and
    /// again after the connection broke).
    Tcp(Option<TcpStream>, SocketAddr),
}

/// How long the writer thread waits for a TCP syslog server to accept or
/// to take a batch before it counts the batch as lost.
const TCP_WAIT: Duration = Duration::from_secs(2);

struct Target {
    sink: Sink,
    framer: Framer,
    /// Write errors are reported once per target, not per line.
    failed: bool,
    name: String,
}

pub struct LogWriter {
    sender: SyncSender<Batch>,
    handle: JoinHandle<()>,
}

impl LogWriter {
    /// Opens every target (so a bad path fails the start, not the first
    /// line) and starts the writer thread.
    pub fn start(targets: &[LogTarget], cores: usize, clock: Clock) -> Result<Self, LogStartError> {
        let host = hostname();
        let pid = std::process::id();
        let mut opened = Vec::with_capacity(targets.len());
        for t in targets {
            let (sink, name) = match &t.dest {
                LogDest::Stdout => (Sink::Stdout, "stdout".to_string()),
                LogDest::Stderr => (Sink::Stderr, "stderr".to_string()),
                LogDest::File(path) => {
                    let file = OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .map_err(|source| LogStartError::File {
                            path: path.clone(),
                            source,
                        })?;
                    (Sink::File(file), path.display().to_string())
                }
                LogDest::Udp(addr) => {
                    let local: std::net::SocketAddr = if addr.is_ipv4() {
                        ([0, 0, 0, 0], 0).into()
                    } else {
                        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                    };
                    let sock = UdpSocket::bind(local)
                        .and_then(|s| s.connect(addr).map(|()| s))
                        .map_err(|source| LogStartError::Udp {
                            addr: *addr,
                            source,
                        })?;
                    (Sink::Udp(sock), format!("udp://{addr}"))
                }
                // Not an error at start if absent, as in HAProxy: the first
                // lost line is reported (once) by the write loop.
                LogDest::Unix(path) => (
                    Sink::Unix(unix_connect(path).ok(), path.clone()),
                    format!("unix:{}", path.display()),
                ),
                // Connected by the writer thread (a server down at start
                // is not an error, as for unix sockets).
                LogDest::Tcp(addr) => (Sink::Tcp(None, *addr), format!("tcp://{addr}")),
            };
            opened.push(Target {
                sink,
                framer: Framer {
                    framing: t.framing,
                    facility: t.facility,
                    tag: t.tag.clone(),
                    hostname: host.clone(),
                    pid,
                },
                failed: false,
                name,
            });
        }
        let (sender, receiver) = sync_channel(BATCHES_PER_CORE * cores.max(1));
        let handle = std::thread::Builder::new()
            .name("percore-log".into())
            .spawn(move || write_loop(receiver, opened, clock))
            .map_err(LogStartError::Thread)?;
        Ok(LogWriter { sender, handle })
    }

    /// A sender for one core.
    pub fn sender(&self) -> SyncSender<Batch> {
        self.sender.clone()
    }

    /// Waits until every core has dropped its sender and everything
    /// received is written.
    pub fn finish(self) {
        drop(self.sender);
        let _ = self.handle.join();
    }
}

fn write_loop(receiver: Receiver<Batch>, mut targets: Vec<Target>, clock: Clock) {
    let mut framed = String::new();
    while let Ok(batch) = receiver.recv() {
        let date = clock.date(SystemTime::now());
        for target in &mut targets {
            let result = match (&mut target.sink, target.framer.framing) {
                (sink @ (Sink::Udp(_) | Sink::Unix(..)), _) => {
                    let mut result = Ok(());
                    for line in batch.text.lines() {
                        framed.clear();
                        target.framer.frame(&mut framed, line, &date);
                        let mut end = framed.len().min(UDP_MAX_LEN);
                        while !framed.is_char_boundary(end) {
                            end -= 1;
                        }
                        if let Err(e) = send_datagram(sink, &framed.as_bytes()[..end]) {
                            result = Err(e);
                        }
                    }
                    result
                }
                (sink @ Sink::Tcp(..), _) => {
                    // RFC 6587 octet counting: `LEN SP MSG` per line.
                    framed.clear();
                    let mut message = String::new();
                    for line in batch.text.lines() {
                        message.clear();
                        target.framer.frame(&mut message, line, &date);
                        let _ = write!(framed, "{} {message}", message.len());
                    }
                    send_stream(sink, framed.as_bytes())
                }
                (sink, LogFraming::Raw)
                    if !batch
                        .text
                        .contains([super::syslog::LEVEL_MARK, super::syslog::SD_MARK]) =>
                {
                    write_all(sink, batch.text.as_bytes())
                }
                (sink, LogFraming::Raw) => {
                    // Lines of another level than info: their mark goes.
                    framed.clear();
                    for line in batch.text.lines() {
                        framed.push_str(super::syslog::bare(line));
                        framed.push('\n');
                    }
                    write_all(sink, framed.as_bytes())
                }
                (sink, _) => {
                    framed.clear();
                    for line in batch.text.lines() {
                        target.framer.frame(&mut framed, line, &date);
                        framed.push('\n');
                    }
                    write_all(sink, framed.as_bytes())
                }
            };
            match result {
                Err(e) if !target.failed => {
                    target.failed = true;
                    eprintln!(
                        "[WARNING] log target {}: {e}; lines are being lost",
                        target.name
                    );
                }
                Ok(()) => target.failed = false,
                Err(_) => {}
            }
        }
    }
}

fn write_all(sink: &mut Sink, bytes: &[u8]) -> io::Result<()> {
    match sink {
        Sink::Stdout => {
            let mut out = io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()
        }
        Sink::Stderr => io::stderr().lock().write_all(bytes),
        Sink::File(f) => f.write_all(bytes),
        Sink::Udp(_) | Sink::Unix(..) => send_datagram(sink, bytes),
        Sink::Tcp(..) => send_stream(sink, bytes),
    }
}

/// One batch to a TCP syslog server: connects if needed; a broken
/// connection is connected again and the batch sent once more.
fn send_stream(sink: &mut Sink, bytes: &[u8]) -> io::Result<()> {
    let Sink::Tcp(stream, addr) = sink else {
        return Ok(());
    };
    let connect = |addr: &SocketAddr| -> io::Result<TcpStream> {
        let s = TcpStream::connect_timeout(addr, TCP_WAIT)?;
        s.set_write_timeout(Some(TCP_WAIT))?;
        Ok(s)
    };
    if let Some(s) = stream.as_mut() {
        if s.write_all(bytes).is_ok() {
            return Ok(());
        }
    }
    *stream = None;
    let s = stream.insert(connect(addr)?);
    let sent = s.write_all(bytes);
    if sent.is_err() {
        *stream = None;
    }
    sent
}

fn unix_connect(path: &std::path::Path) -> io::Result<UnixDatagram> {
    let sock = UnixDatagram::unbound()?;
    sock.connect(path)?;
    Ok(sock)
}

/// One message. A local syslog socket that is not there yet, or whose
/// daemon restarted (a new socket at the same path; the old one refuses):
/// connect again and resend once.
fn send_datagram(sink: &mut Sink, bytes: &[u8]) -> io::Result<()> {
    match sink {
        Sink::Udp(s) => s.send(bytes).map(|_| ()),
        Sink::Unix(sock, path) => {
            let sent = match sock {
                Some(s) => s.send(bytes),
                None => Err(io::ErrorKind::NotConnected.into()),
            };
            match sent {
                Ok(_) => Ok(()),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotConnected
                    ) =>
                {
                    *sock = None;
                    let s = sock.insert(unix_connect(path)?);
                    s.send(bytes).map(|_| ())
                }
                Err(e) => Err(e),
            }
        }
        _ => Ok(()),
    }
}
