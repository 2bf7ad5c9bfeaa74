//! Harness for tunnel tests: a glommio executor runs `net::tunnel::run`
//! between two std-thread peers over real 127.0.0.1 sockets.
#![allow(dead_code)]

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::thread;
use std::time::Duration;

use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};
use percore::net::tunnel::{self, TunnelReport, TunnelSettings};
use percore::net::PipePool;

/// Upper bound that fails a hung test; never a speed requirement.
pub const HANG: Duration = Duration::from_secs(30);

pub fn executor() -> LocalExecutor {
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(512 << 10)
        .make()
        .unwrap()
}

/// Fails the test if `fut` does not finish within `HANG`.
pub async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    futures_lite::future::or(fut, async {
        glommio::timer::sleep(HANG).await;
        panic!("tunnel did not finish within {HANG:?}");
    })
    .await
}

pub fn settings(splice: bool) -> TunnelSettings {
    TunnelSettings {
        idle_timeout: None,
        splice,
        bufsize: 16 * 1024,
    }
}

/// Socket options applied to both proxy-side sockets before the tunnel.
pub type Tweak = fn(&TcpStream);

/// Runs one tunnel inside the current executor. `client` gets a socket
/// connected to the proxy, `server` the socket the proxy connected to.
pub async fn tunnel_with<C, S, CR, SR>(
    settings: &TunnelSettings,
    pipes: &PipePool,
    tweak: Option<Tweak>,
    prefixes: (&[u8], &[u8]),
    client: C,
    server: S,
) -> (TunnelReport, CR, SR)
where
    C: FnOnce(StdStream) -> CR + Send + 'static,
    S: FnOnce(StdStream) -> SR + Send + 'static,
    CR: Send + 'static,
    SR: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = listener.local_addr().unwrap();
    let backend = StdListener::bind("127.0.0.1:0").unwrap();
    let backend_addr: SocketAddr = backend.local_addr().unwrap();
    let server_thread = thread::spawn(move || {
        let (s, _) = backend.accept().unwrap();
        peer_timeouts(&s);
        server(s)
    });
    let client_thread = thread::spawn(move || {
        let s = StdStream::connect(proxy_addr).unwrap();
        peer_timeouts(&s);
        client(s)
    });
    let accepted = listener.accept().await.unwrap();
    let connected = TcpStream::connect(backend_addr).await.unwrap();
    if let Some(tweak) = tweak {
        tweak(&accepted);
        tweak(&connected);
    }
    let report = bounded(tunnel::run(
        accepted, connected, prefixes.0, prefixes.1, settings, pipes,
    ))
    .await;
    // The peers' sockets have timeouts, so these joins are bounded too.
    let cr = join_peer(client_thread).await;
    let sr = join_peer(server_thread).await;
    (report, cr, sr)
}

pub async fn tunnel<C, S, CR, SR>(
    settings: &TunnelSettings,
    pipes: &PipePool,
    client: C,
    server: S,
) -> (TunnelReport, CR, SR)
where
    C: FnOnce(StdStream) -> CR + Send + 'static,
    S: FnOnce(StdStream) -> SR + Send + 'static,
    CR: Send + 'static,
    SR: Send + 'static,
{
    tunnel_with(settings, pipes, None, (&[], &[]), client, server).await
}

/// Joins a peer thread without blocking the executor thread's reactor for
/// the other peer (they are already independent threads; this just yields).
async fn join_peer<T>(h: thread::JoinHandle<T>) -> T {
    while !h.is_finished() {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    match h.join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

fn peer_timeouts(s: &StdStream) {
    s.set_read_timeout(Some(HANG)).unwrap();
    s.set_write_timeout(Some(HANG)).unwrap();
}

pub fn set_buffers(stream: &impl AsRawFd, bytes: usize) {
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    let s = socket2::SockRef::from(&fd);
    s.set_send_buffer_size(bytes).unwrap();
    s.set_recv_buffer_size(bytes).unwrap();
}

/// A deterministic, non-repeating byte stream: the receiver regenerates it
/// and compares every byte, which catches loss, duplication and reordering.
pub struct Pattern {
    state: u64,
    block: Vec<u8>,
    pos: usize,
}

impl Pattern {
    pub fn new(seed: u64) -> Self {
        Pattern {
            state: seed | 1,
            block: vec![0; 64 * 1024],
            pos: 64 * 1024,
        }
    }

    /// The next up-to-`max` bytes of the stream.
    pub fn take(&mut self, max: usize) -> &[u8] {
        if self.pos == self.block.len() {
            for word in self.block.chunks_exact_mut(8) {
                self.state ^= self.state << 13;
                self.state ^= self.state >> 7;
                self.state ^= self.state << 17;
                word.copy_from_slice(&self.state.to_le_bytes());
            }
            self.pos = 0;
        }
        let n = max.min(self.block.len() - self.pos);
        let out = &self.block[self.pos..self.pos + n];
        self.pos += n;
        out
    }
}

/// Writes `len` bytes of `Pattern::new(seed)`.
pub fn send_pattern(w: &mut impl Write, seed: u64, len: u64) -> io::Result<()> {
    let mut p = Pattern::new(seed);
    let mut left = len;
    while left > 0 {
        let chunk = p.take(left.min(1 << 20) as usize);
        w.write_all(chunk)?;
        left -= chunk.len() as u64;
    }
    Ok(())
}

/// Reads to end of stream, checking every byte against `Pattern::new(seed)`;
/// returns the byte count.
pub fn recv_pattern(r: &mut impl Read, seed: u64) -> io::Result<u64> {
    let mut p = Pattern::new(seed);
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        let mut off = 0;
        while off < n {
            let want = p.take(n - off);
            let got = &buf[off..off + want.len()];
            if got != want {
                let i = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
                panic!("stream differs at byte {}", total + (off + i) as u64);
            }
            off += want.len();
        }
        total += n as u64;
    }
}

/// Sends `len` pattern bytes and receives the other direction at the same
/// time; shuts down writing after sending. Returns bytes received.
pub fn exchange(s: StdStream, send_seed: u64, len: u64, recv_seed: u64) -> u64 {
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || {
        send_pattern(&mut w, send_seed, len).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let got = recv_pattern(&mut &s, recv_seed).unwrap();
    writer.join().unwrap();
    got
}
