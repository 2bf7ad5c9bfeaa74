//! The backend behind the proxy: a TCP sink and source. Each connection
//! starts with a 9-byte request, then moves bulk bytes one way:
//!
//! - `U` + length (u64 LE): the client uploads `length` bytes; the backend
//!   reads them all, then answers with the count it received (u64 LE), so
//!   the client knows every byte crossed the proxy before it stops the clock.
//! - `D` + length: the backend writes `length` bytes and closes.
//!
//! A connection that closes before a full request (a readiness probe) is
//! ignored. One thread per connection: the benchmark uses a few streams.

use anyhow::{bail, Context, Result};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

pub const OP_UPLOAD: u8 = b'U';
pub const OP_DOWNLOAD: u8 = b'D';
pub const REQUEST_LEN: usize = 9;
/// Read/write chunk on both ends; big enough that syscalls are not the
/// client's or backend's bottleneck.
pub const CHUNK: usize = 256 * 1024;
/// A stuck peer fails its connection instead of holding a thread forever.
const IO_TIMEOUT: Duration = Duration::from_secs(120);

pub fn encode_request(op: u8, length: u64) -> [u8; REQUEST_LEN] {
    let mut request = [0u8; REQUEST_LEN];
    request[0] = op;
    request[1..].copy_from_slice(&length.to_le_bytes());
    request
}

/// Serves until the process is killed. Prints `listening <addr>` on stdout
/// once bound so a parent can wait for it.
pub fn serve(listener: TcpListener) -> Result<()> {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            // EMFILE and friends: back off rather than spin.
            Err(e) => {
                eprintln!("backend: accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        std::thread::spawn(move || {
            if let Err(e) = handle(stream) {
                eprintln!("backend: {e:#}");
            }
        });
    }
    Ok(())
}

fn handle(mut stream: TcpStream) -> Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut request = [0u8; REQUEST_LEN];
    if let Err(e) = stream.read_exact(&mut request) {
        if e.kind() == ErrorKind::UnexpectedEof {
            return Ok(()); // a probe, or a proxy's health check
        }
        return Err(e).context("reading request");
    }
    let mut length_bytes = [0u8; 8];
    length_bytes.copy_from_slice(&request[1..]);
    let length = u64::from_le_bytes(length_bytes);
    match request[0] {
        OP_UPLOAD => {
            let received = sink(&mut stream, length)?;
            stream.write_all(&received.to_le_bytes())?;
        }
        OP_DOWNLOAD => {
            source(&mut stream, length)?;
        }
        op => bail!("unknown request op {op:#x}"),
    }
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

/// Reads until `length` bytes or EOF; returns how many arrived.
fn sink(stream: &mut TcpStream, length: u64) -> Result<u64> {
    let mut buffer = vec![0u8; CHUNK];
    let mut received = 0u64;
    while received < length {
        let want = (length - received).min(CHUNK as u64) as usize;
        match stream.read(&mut buffer[..want]) {
            Ok(0) => break,
            Ok(n) => received += n as u64,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("receiving upload"),
        }
    }
    Ok(received)
}

fn source(stream: &mut TcpStream, length: u64) -> Result<()> {
    let buffer = pattern_chunk();
    let mut sent = 0u64;
    while sent < length {
        let want = (length - sent).min(CHUNK as u64) as usize;
        match stream.write(&buffer[..want]) {
            Ok(0) => bail!("peer closed after {sent} of {length} bytes"),
            Ok(n) => sent += n as u64,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("sending download"),
        }
    }
    Ok(())
}

/// Non-zero, non-repeating-per-page bytes, so nothing on the path can
/// shortcut zero pages.
pub fn pattern_chunk() -> Vec<u8> {
    (0..CHUNK).map(|i| (i % 251) as u8 ^ 0x5a).collect()
}
