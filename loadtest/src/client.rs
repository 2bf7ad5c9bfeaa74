//! The load side: N parallel TCP streams that together move a fixed number
//! of bytes through a target (the proxy, or the backend directly), one
//! direction per run. A run ends when every byte has crossed, or fails when
//! the wall-clock limit passes first.

use crate::backend::{encode_request, pattern_chunk, CHUNK, OP_DOWNLOAD, OP_UPLOAD};
use anyhow::{anyhow, bail, Context, Result};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Socket timeouts are only how often a blocked stream looks at the deadline.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// client -> proxy -> backend
    Upload,
    /// backend -> proxy -> client
    Download,
}

impl Direction {
    pub fn label(self) -> &'static str {
        match self {
            Direction::Upload => "upload (client→server)",
            Direction::Download => "download (server→client)",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    pub bytes: u64,
    pub elapsed: Duration,
}

impl Transfer {
    pub fn gib_per_second(&self) -> f64 {
        self.bytes as f64 / crate::units::GIB as f64 / self.elapsed.as_secs_f64()
    }
}

/// Moves `total_bytes` split over `streams` connections to `target`.
pub fn transfer(
    target: SocketAddr,
    direction: Direction,
    total_bytes: u64,
    streams: usize,
    time_limit: Duration,
) -> Result<Transfer> {
    if streams == 0 || total_bytes < streams as u64 {
        bail!("need at least one byte per stream");
    }
    let per_stream = total_bytes / streams as u64;
    let started = Instant::now();
    let deadline = started + time_limit;
    let workers: Vec<_> = (0..streams)
        .map(|i| {
            // The first stream also carries the remainder.
            let bytes = if i == 0 {
                total_bytes - per_stream * (streams as u64 - 1)
            } else {
                per_stream
            };
            std::thread::Builder::new()
                .name(format!("stream-{i}"))
                .spawn(move || run_stream(target, direction, bytes, deadline))
        })
        .collect::<std::io::Result<_>>()
        .context("starting stream threads")?;
    let mut errors = Vec::new();
    let mut moved = 0u64;
    for worker in workers {
        match worker.join() {
            Ok(Ok(bytes)) => moved += bytes,
            Ok(Err(e)) => errors.push(format!("{e:#}")),
            Err(_) => errors.push("stream thread panicked".into()),
        }
    }
    let elapsed = started.elapsed();
    if let Some(first) = errors.first() {
        bail!(
            "{} of {streams} streams failed; first: {first}",
            errors.len()
        );
    }
    Ok(Transfer {
        bytes: moved,
        elapsed,
    })
}

fn run_stream(
    target: SocketAddr,
    direction: Direction,
    length: u64,
    deadline: Instant,
) -> Result<u64> {
    let mut stream = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT)
        .with_context(|| format!("connecting to {target}"))?;
    stream.set_read_timeout(Some(POLL_INTERVAL))?;
    stream.set_write_timeout(Some(POLL_INTERVAL))?;
    match direction {
        Direction::Upload => {
            write_all_by(&mut stream, &encode_request(OP_UPLOAD, length), deadline)?;
            let chunk = pattern_chunk();
            let mut sent = 0u64;
            while sent < length {
                let want = (length - sent).min(CHUNK as u64) as usize;
                sent += write_some_by(&mut stream, &chunk[..want], deadline)
                    .with_context(|| format!("after {sent} of {length} bytes sent"))?
                    as u64;
            }
            let mut ack = [0u8; 8];
            read_exact_by(&mut stream, &mut ack, deadline)
                .context("waiting for the backend's byte count")?;
            let received = u64::from_le_bytes(ack);
            if received != length {
                bail!("backend received {received} of {length} bytes");
            }
        }
        Direction::Download => {
            write_all_by(&mut stream, &encode_request(OP_DOWNLOAD, length), deadline)?;
            let mut buffer = vec![0u8; CHUNK];
            let mut received = 0u64;
            loop {
                let n = read_some_by(&mut stream, &mut buffer, deadline)
                    .with_context(|| format!("after {received} of {length} bytes received"))?;
                if n == 0 {
                    break;
                }
                received += n as u64;
            }
            if received != length {
                bail!("received {received} of {length} bytes before EOF");
            }
        }
    }
    Ok(length)
}

fn limit_reached() -> anyhow::Error {
    anyhow!("wall-clock limit reached")
}

fn retryable(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

fn write_some_by(stream: &mut TcpStream, data: &[u8], deadline: Instant) -> Result<usize> {
    loop {
        if Instant::now() >= deadline {
            return Err(limit_reached());
        }
        match stream.write(data) {
            Ok(0) => bail!("connection closed by peer"),
            Ok(n) => return Ok(n),
            Err(e) if retryable(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

fn write_all_by(stream: &mut TcpStream, mut data: &[u8], deadline: Instant) -> Result<()> {
    while !data.is_empty() {
        let n = write_some_by(stream, data, deadline)?;
        data = &data[n..];
    }
    Ok(())
}

fn read_some_by(stream: &mut TcpStream, buffer: &mut [u8], deadline: Instant) -> Result<usize> {
    loop {
        if Instant::now() >= deadline {
            return Err(limit_reached());
        }
        match stream.read(buffer) {
            Ok(n) => return Ok(n),
            Err(e) if retryable(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

fn read_exact_by(stream: &mut TcpStream, mut buffer: &mut [u8], deadline: Instant) -> Result<()> {
    while !buffer.is_empty() {
        let n = read_some_by(stream, buffer, deadline)?;
        if n == 0 {
            bail!("connection closed early");
        }
        buffer = &mut buffer[n..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::MIB;
    use std::net::TcpListener;

    fn start_backend() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || crate::backend::serve(listener));
        addr
    }

    #[test]
    fn moves_every_byte_both_ways_over_real_sockets() {
        let backend = start_backend();
        let limit = Duration::from_secs(30);
        // An odd total exercises the remainder on the first stream.
        let total = 8 * MIB + 3;
        for direction in [Direction::Upload, Direction::Download] {
            let done = transfer(backend, direction, total, 3, limit).unwrap();
            assert_eq!(done.bytes, total);
            assert!(done.gib_per_second() > 0.0);
        }
    }

    #[test]
    fn a_peer_that_drops_data_is_an_error_not_a_result() {
        // Accepts, reads the request, then closes without sending anything.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut request = [0u8; crate::backend::REQUEST_LEN];
                let _ = stream.read_exact(&mut request);
            }
        });
        let limit = Duration::from_secs(30);
        let err = transfer(addr, Direction::Download, MIB, 2, limit).unwrap_err();
        assert!(format!("{err:#}").contains("before EOF"), "{err:#}");
        let err = transfer(addr, Direction::Upload, MIB, 2, limit).unwrap_err();
        assert!(format!("{err:#}").contains("failed"), "{err:#}");
    }

    #[test]
    fn the_wall_clock_limit_stops_a_stalled_run() {
        // Accepts and never reads: the upload stalls once buffers fill.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        let err = transfer(
            addr,
            Direction::Upload,
            1024 * MIB,
            1,
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("wall-clock limit"), "{err:#}");
    }
}
