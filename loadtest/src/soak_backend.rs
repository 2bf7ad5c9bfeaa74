//! The soak's backend process (`loadtest soak-backend`): started by
//! `loadtest soak`, killed with SIGKILL and started again on the same
//! ports while the soak runs. One thread per connection; every answer is
//! checkable by the client:
//!
//! - HTTP `GET /dl/<len>/<seed>`: `len` bytes of [`pattern`]`(seed)`;
//! - HTTP `POST /up` with a Content-Length body: the body's SHA-256 as 64
//!   hex digits;
//! - HTTP `GET /stall/<ms>`: nothing for `ms` milliseconds, then a reset
//!   (SO_LINGER 0): the server that hangs and then fails;
//! - WebSocket (its own port): every message echoed;
//! - TCP (its own port): every byte echoed, FIN answered with FIN.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

/// A connection silent this long is dropped (threads never pile up).
const IDLE: Duration = Duration::from_secs(60);

/// Byte `offset` of the body with `seed`: a function of both, so a
/// client checks any prefix of a transfer without storing it.
pub fn pattern(seed: u64, offset: u64, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        let at = offset + i as u64;
        let mut x = seed ^ (at / 8).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // splitmix64 finaliser: neighbouring blocks look unrelated, so a
        // shifted or repeated block is caught.
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        *b = (x >> ((at % 8) * 8)) as u8;
    }
}

pub fn serve(http: TcpListener, ws: TcpListener, tcp: TcpListener) -> Result<()> {
    let accept = |listener: TcpListener, handle: fn(TcpStream)| {
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(IDLE));
                let _ = stream.set_write_timeout(Some(IDLE));
                std::thread::spawn(move || handle(stream));
            }
        })
    };
    let threads = [
        accept(http, http_connection),
        accept(ws, ws_connection),
        accept(tcp, tcp_connection),
    ];
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("accept thread panicked"))?;
    }
    Ok(())
}

fn tcp_connection(mut stream: TcpStream) {
    let Ok(mut reader) = stream.try_clone() else {
        return;
    };
    if std::io::copy(&mut reader, &mut stream).is_ok() {
        let _ = stream.shutdown(Shutdown::Write);
    }
}

fn ws_connection(stream: TcpStream) {
    let Ok(mut ws) = tungstenite::accept(stream) else {
        return;
    };
    while let Ok(message) = ws.read() {
        if message.is_close() {
            break;
        }
        if (message.is_binary() || message.is_text()) && ws.send(message).is_err() {
            break;
        }
    }
}

struct Request {
    path: String,
    content_length: u64,
    close: bool,
}

/// Reads one request head into `buf`; `None` at a clean end or an error.
fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    let mut chunk = [0u8; 4096];
    loop {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut fields);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(len)) => {
                let header = |name: &str| {
                    req.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
                };
                let request = Request {
                    path: req.path.unwrap_or("/").to_string(),
                    content_length: header("content-length")
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0),
                    close: header("connection").is_some_and(|v| v.contains("close"))
                        || req.version == Some(0),
                };
                buf.drain(..len);
                return Some(request);
            }
            Ok(httparse::Status::Partial) => {}
            Err(_) => return None,
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn http_connection(mut stream: TcpStream) {
    let mut buf = Vec::new();
    while let Some(req) = read_head(&mut stream, &mut buf) {
        let done = match answer(&mut stream, &mut buf, &req) {
            Ok(keep) => !keep || req.close,
            Err(_) => true,
        };
        if done {
            return;
        }
    }
}

/// Answers one request; `Ok(false)` when the connection must end.
fn answer(stream: &mut TcpStream, buf: &mut Vec<u8>, req: &Request) -> Result<bool> {
    let connection = if req.close {
        "Connection: close\r\n"
    } else {
        ""
    };
    let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["dl", len, seed] => {
            let len: u64 = len.parse().context("length")?;
            let seed: u64 = seed.parse().context("seed")?;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n{connection}\r\n"
            )?;
            let mut block = vec![0u8; 64 * 1024];
            let mut sent = 0;
            while sent < len {
                let n = (len - sent).min(block.len() as u64) as usize;
                pattern(seed, sent, &mut block[..n]);
                stream.write_all(&block[..n])?;
                sent += n as u64;
            }
            Ok(true)
        }
        ["up"] => {
            let mut hasher = Sha256::new();
            let mut left = req.content_length;
            let take = (buf.len() as u64).min(left) as usize;
            hasher.update(&buf[..take]);
            buf.drain(..take);
            left -= take as u64;
            let mut chunk = vec![0u8; 64 * 1024];
            while left > 0 {
                let want = left.min(chunk.len() as u64) as usize;
                let n = stream.read(&mut chunk[..want])?;
                if n == 0 {
                    return Ok(false);
                }
                hasher.update(&chunk[..n]);
                left -= n as u64;
            }
            let digest = hex(&hasher.finalize());
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{connection}\r\n{digest}",
                digest.len()
            )?;
            Ok(true)
        }
        ["stall", ms] => {
            let ms: u64 = ms.parse().context("milliseconds")?;
            std::thread::sleep(Duration::from_millis(ms));
            // Reset instead of FIN: the server that fails after hanging.
            socket2::SockRef::from(&*stream).set_linger(Some(Duration::ZERO))?;
            Ok(false)
        }
        _ => {
            write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n{connection}\r\n"
            )?;
            Ok(true)
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_of_a_range_is_the_same_piece_of_the_whole() {
        let mut whole = vec![0u8; 1000];
        pattern(7, 0, &mut whole);
        let mut piece = vec![0u8; 37];
        pattern(7, 501, &mut piece);
        assert_eq!(piece, whole[501..538]);
        let mut other = vec![0u8; 1000];
        pattern(8, 0, &mut other);
        assert_ne!(other, whole);
    }
}
