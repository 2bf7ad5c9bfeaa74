//! The runtime API: HAProxy's stats socket protocol on unix sockets.
//!
//! The main thread binds every `global.stats-socket` before the cores
//! start (so a bad path is a start-up error) and hands them to core 0,
//! which serves them: one task per client, each line read with `stats
//! timeout` as its idle limit. A command that changes something is applied
//! on core 0, then on every other core over the core mesh
//! ([`crate::admin::Collector::ask_all`]); the answer is written once all
//! cores have applied it, so a script that sets a server to `maint` and
//! then sends a request can never reach that server.
//!
//! Protocol, as HAProxy 2.6's CLI: a line holds one or more commands
//! separated by `;`; each answer ends with an empty line. Without
//! `prompt` the connection closes once the lines received so far are
//! answered; with it, a `> ` prompt follows every answered line and
//! `quit` ends the session.

mod acls;
pub(crate) mod command;
mod exec;
mod lookup;
mod maps;
mod servers_state;
mod stick_table;
pub(crate) mod words;

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};

use crate::config::{CliLevel, StatsSocket};
use crate::net::{Acceptor, Conn};
use crate::shard::Shard;

pub use exec::Cli;

/// A command line longer than this is refused and the client disconnected
/// (HAProxy's CLI buffer is `tune.bufsize`, 16 KiB by default).
pub const MAX_LINE: usize = 16 * 1024;
/// Backlog of a runtime API socket: deploy scripts may open many at once.
const BACKLOG: i32 = 1024;
/// Read size per receive.
const READ_CHUNK: usize = 4096;

/// A bound runtime API socket, made on the main thread.
pub struct BoundSocket {
    pub fd: OwnedFd,
    pub level: CliLevel,
    pub path: PathBuf,
}

/// Binds `socket`: a stale file left by a process that is gone is
/// replaced; a live listener, a missing directory or a file that is not a
/// socket is an error (one line saying which).
///
/// With `replace_live` (this process takes over from the one listening
/// there: `-x`, `-sf`, `-st`) a live listener's file is replaced as
/// HAProxy does, but only once this process has started ([`publish`]):
/// the socket is bound under a temporary name next to it, so until then,
/// and for good if the start fails, the path still reaches the running
/// process.
pub fn bind(socket: &StatsSocket, replace_live: bool) -> Result<BoundSocket, String> {
    let path = &socket.path;
    let describe = |what: String| format!("stats socket {}: {what}", path.display());
    let mut live = false;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(describe(
                "exists and is not a socket; remove it or choose another path".into(),
            ));
        }
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) if replace_live => live = true,
            Ok(_) => {
                return Err(describe(
                    "another process listens on it (is percore or HAProxy already running?)".into(),
                ))
            }
            // Nobody accepts there: a file left by a process that died.
            Err(_) => std::fs::remove_file(path)
                .map_err(|e| describe(format!("cannot remove the stale socket file: {e}")))?,
        }
    }
    let bind_at = if live {
        let temp = temporary_name(path);
        // Left by an earlier attempt of a process with our pid.
        let _ = std::fs::remove_file(&temp);
        temp
    } else {
        path.clone()
    };
    let sock = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM.cloexec(), None)
        .map_err(|e| describe(e.to_string()))?;
    let addr = socket2::SockAddr::unix(&bind_at).map_err(|e| describe(e.to_string()))?;
    sock.bind(&addr).map_err(|e| {
        describe(match e.raw_os_error() {
            Some(libc::ENOENT) => format!(
                "directory {} does not exist",
                path.parent().unwrap_or(Path::new(".")).display()
            ),
            Some(libc::EACCES) => "permission denied on its directory".into(),
            _ => e.to_string(),
        })
    })?;
    // From here on, a failure must not leave the file behind.
    let made = SocketFile::made(path, &bind_at, live);
    let file_failed = |what: String| {
        let _ = std::fs::remove_file(&bind_at);
        describe(what)
    };
    if let Some(mode) = socket.mode {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bind_at, std::fs::Permissions::from_mode(mode))
            .map_err(|e| file_failed(format!("cannot set mode {mode:o}: {e}")))?;
    }
    sock.listen(BACKLOG)
        .map_err(|e| file_failed(e.to_string()))?;
    let made = made.map_err(|e| file_failed(format!("cannot read back its file: {e}")))?;
    if let Ok(mut files) = SOCKET_FILES.lock() {
        files.push(made);
    }
    Ok(BoundSocket {
        fd: sock.into(),
        level: socket.level,
        path: path.clone(),
    })
}

/// The socket files this process made, so that at exit it removes only
/// those: after a binary upgrade the file at the same path is the next
/// process's. Process-wide because the files are, and touched only at
/// start and exit.
static SOCKET_FILES: std::sync::Mutex<Vec<SocketFile>> = std::sync::Mutex::new(Vec::new());

struct SocketFile {
    path: PathBuf,
    /// Where the socket is bound until [`publish`] renames it to `path`.
    temp: Option<PathBuf>,
    /// The file's identity (st_dev, st_ino), kept by a rename.
    id: (u64, u64),
}

impl SocketFile {
    fn made(path: &Path, bound_at: &Path, temporary: bool) -> io::Result<SocketFile> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(bound_at)?;
        Ok(SocketFile {
            path: path.to_owned(),
            temp: temporary.then(|| bound_at.to_owned()),
            id: (meta.dev(), meta.ino()),
        })
    }

    fn is_at_path(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id)
    }
}

/// `<path>.<pid>.tmp`, HAProxy's name for a socket about to replace one.
fn temporary_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.tmp", std::process::id()));
    PathBuf::from(name)
}

/// Once this process has started: moves the sockets bound under a
/// temporary name over the files of the process being replaced (rename(2)
/// is atomic: a client always finds one of the two listening).
pub fn publish(paths: &[PathBuf]) {
    let Ok(mut files) = SOCKET_FILES.lock() else {
        return;
    };
    for file in files.iter_mut().filter(|f| paths.contains(&f.path)) {
        let Some(temp) = file.temp.take() else {
            continue;
        };
        if let Err(e) = std::fs::rename(&temp, &file.path) {
            eprintln!(
                "[WARNING] stats socket {}: cannot replace the previous process's socket: {e}; \
                 this process's runtime API stays at {}",
                file.path.display(),
                temp.display()
            );
            file.temp = Some(temp);
        }
    }
}

/// Removes the socket files at exit (HAProxy does too), but not one a
/// newer process has put in their place.
pub fn unlink(paths: &[PathBuf]) {
    let Ok(mut files) = SOCKET_FILES.lock() else {
        return;
    };
    for path in paths {
        let Some(at) = files.iter().position(|f| f.path == *path) else {
            continue;
        };
        let file = files.swap_remove(at);
        if let Some(temp) = &file.temp {
            let _ = std::fs::remove_file(temp);
        } else if file.is_at_path() {
            let _ = std::fs::remove_file(&file.path);
        }
    }
}

/// Serves one socket until the core soft-stops. Runs on core 0.
pub async fn serve(socket: BoundSocket, cli: Rc<Cli>, timeout: Duration, shard: Rc<Shard>) {
    let stop = &shard.stop;
    let listener = match Acceptor::new(socket2::Socket::from(socket.fd)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "[ALERT] stats socket {}: cannot serve it: {e}",
                socket.path.display()
            );
            return;
        }
    };
    loop {
        let accepted =
            futures_lite::future::or(async { Some(listener.accept_local().await) }, async {
                stop.soft.wait().await;
                None
            })
            .await;
        match accepted {
            None => return,
            Some(Ok(conn)) => {
                let cli = Rc::clone(&cli);
                glommio::spawn_local(async move {
                    let _ = session(conn, &cli, socket.level, timeout).await;
                })
                .detach();
            }
            Some(Err(e)) => {
                eprintln!(
                    "[WARNING] stats socket {}: accept failed: {e}",
                    socket.path.display()
                );
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One client: read lines, answer them, until it quits, goes quiet for
/// `timeout`, or (without `prompt`) its lines are answered.
async fn session(mut conn: Conn, cli: &Cli, level: CliLevel, timeout: Duration) -> io::Result<()> {
    let mut state = exec::Session {
        level,
        interactive: false,
        quit: false,
        hand_over: false,
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; READ_CHUNK];
    let mut eof = false;
    loop {
        let mut answered = false;
        while let Some(line) = next_line(&mut buf, eof) {
            let mut out = String::new();
            for words in words::split_line(&line) {
                out.push_str(&answer(cli, &mut state, &words).await);
                if state.hand_over {
                    // The answers before it, then the sockets, then the
                    // end of the session: nothing may follow them.
                    with_timeout(timeout, conn.write_all(out.as_bytes())).await?;
                    use std::os::fd::AsFd;
                    return exec::hand_over(cli, conn.as_fd()).inspect_err(|e| {
                        eprintln!("[WARNING] runtime API: _getsocks failed: {e}");
                    });
                }
                out.push('\n');
                if state.quit {
                    break;
                }
            }
            if state.quit {
                return Ok(());
            }
            if state.interactive {
                out.push_str("> ");
            }
            with_timeout(timeout, conn.write_all(out.as_bytes())).await?;
            answered = true;
        }
        if eof || (answered && !state.interactive) {
            return Ok(());
        }
        if buf.len() > MAX_LINE {
            cli.refused_lines.set(cli.refused_lines.get() + 1);
            eprintln!(
                "[WARNING] stats socket: command line over {MAX_LINE} bytes refused, client \
                 disconnected ({} refused since start)",
                cli.refused_lines.get()
            );
            let refusal = format!("Command line too long (more than {MAX_LINE} bytes).\n\n");
            with_timeout(timeout, conn.write_all(refusal.as_bytes())).await?;
            return Ok(());
        }
        let n = with_timeout(timeout, conn.read(&mut chunk)).await?;
        if n == 0 {
            eof = true;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The next complete line (without its `\r\n`), or at end of stream what
/// is left.
fn next_line(buf: &mut Vec<u8>, eof: bool) -> Option<String> {
    let end = match buf.iter().position(|&b| b == b'\n') {
        Some(pos) => pos,
        None if eof && !buf.is_empty() => buf.len(),
        None => return None,
    };
    let mut line: Vec<u8> = buf.drain(..end.min(buf.len())).collect();
    if !buf.is_empty() {
        buf.remove(0);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Some(String::from_utf8_lossy(&line).into_owned())
}

async fn answer(cli: &Cli, state: &mut exec::Session, words: &[String]) -> String {
    match command::find(words) {
        Some((spec, args)) => exec::run(cli, state, spec, args).await,
        None => command::unknown(words),
    }
}

async fn with_timeout<T>(
    limit: Duration,
    io: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    futures_lite::future::or(io, async {
        glommio::timer::sleep(limit).await;
        Err(io::Error::new(io::ErrorKind::TimedOut, "stats timeout"))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::next_line;

    #[test]
    fn lines_end_at_newlines_or_at_the_end_of_the_stream() {
        let mut buf = b"show info\r\nshow stat\nshow".to_vec();
        assert_eq!(next_line(&mut buf, false).as_deref(), Some("show info"));
        assert_eq!(next_line(&mut buf, false).as_deref(), Some("show stat"));
        assert_eq!(next_line(&mut buf, false), None);
        assert_eq!(next_line(&mut buf, true).as_deref(), Some("show"));
        assert_eq!(next_line(&mut buf, true), None);
    }
}
