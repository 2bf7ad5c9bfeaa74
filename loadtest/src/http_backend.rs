//! The HTTP backend: one epoll loop (mio) on one thread, so it costs the
//! load side as little as possible. `GET /bytes/N` answers N bytes of a
//! fixed pattern with a Content-Length; keep-alive unless the request says
//! `Connection: close`. Large bodies are streamed from one shared 256 KiB
//! pattern, never buffered per connection. Also the WebSocket echo server
//! (a thread per connection, tungstenite): the WebSocket scenario uses a
//! few connections at a fixed rate.

use crate::backend::{pattern_chunk, CHUNK};
use anyhow::{Context, Result};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};

const LISTENER: Token = Token(usize::MAX);
/// A request head larger than this is refused (and the connection closed).
const MAX_HEAD: usize = 16 * 1024;
/// Bodies up to this size are copied next to the head, so a small response
/// leaves in one write.
const INLINE_BODY: u64 = 16 * 1024;

/// What one request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub body_len: u64,
    pub close: bool,
    pub status: u16,
}

/// Parses one request head from `buffer`: Some((bytes consumed, wanted))
/// once a whole head is there, None while it is incomplete.
pub fn parse_request(buffer: &[u8]) -> Result<Option<(usize, Wanted)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let consumed = match request.parse(buffer).context("bad request head")? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let mut close = request.version == Some(0);
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("connection") {
            let value = String::from_utf8_lossy(header.value).to_ascii_lowercase();
            if value.split(',').any(|t| t.trim() == "close") {
                close = true;
            } else if value.split(',').any(|t| t.trim() == "keep-alive") {
                close = false;
            }
        }
        if header.name.eq_ignore_ascii_case("content-length") && header.value != b"0" {
            anyhow::bail!("request bodies are not supported");
        }
    }
    let path = request.path.unwrap_or("/");
    let wanted = match path
        .strip_prefix("/bytes/")
        .and_then(|n| n.parse::<u64>().ok())
    {
        Some(body_len) => Wanted {
            body_len,
            close,
            status: 200,
        },
        None => Wanted {
            body_len: 0,
            close,
            status: 404,
        },
    };
    Ok(Some((consumed, wanted)))
}

pub fn response_head(wanted: &Wanted) -> String {
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n{}\r\n",
        wanted.status,
        if wanted.status == 200 {
            "OK"
        } else {
            "Not Found"
        },
        wanted.body_len,
        if wanted.close {
            "Connection: close\r\n"
        } else {
            ""
        }
    )
}

struct Connection {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    /// Body bytes still to stream from the pattern after `output`.
    body_left: u64,
    body_offset: usize,
    close_after: bool,
}

enum Progress {
    /// Everything owed was written; more requests may be served.
    Idle,
    /// The socket is full; wait for writability.
    Blocked,
    Close,
}

pub fn serve(listener: std::net::TcpListener) -> Result<()> {
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let mut poll = Poll::new().context("creating epoll")?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let pattern = pattern_chunk();
    let mut scratch = vec![0u8; 64 * 1024];
    let mut connections: HashMap<usize, Connection> = HashMap::new();
    let mut next_token = 0usize;
    let mut events = Events::with_capacity(1024);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e).context("epoll_wait");
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            next_token = (next_token + 1) % (usize::MAX - 1);
                            let token = next_token;
                            poll.registry().register(
                                &mut stream,
                                Token(token),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            connections.insert(
                                token,
                                Connection {
                                    stream,
                                    input: Vec::new(),
                                    output: Vec::new(),
                                    written: 0,
                                    body_left: 0,
                                    body_offset: 0,
                                    close_after: false,
                                },
                            );
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => {
                            // EMFILE and friends: let the next event retry.
                            eprintln!("backend: accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let token = event.token().0;
            let Some(connection) = connections.get_mut(&token) else {
                continue;
            };
            if !drive(connection, &pattern, &mut scratch) {
                if let Some(mut gone) = connections.remove(&token) {
                    let _ = poll.registry().deregister(&mut gone.stream);
                }
            }
        }
    }
}

/// Reads what arrived and answers every complete request; false when the
/// connection is finished.
fn drive(c: &mut Connection, pattern: &[u8], scratch: &mut [u8]) -> bool {
    // Finish what is owed first; requests wait behind it (pipelining).
    match flush(c, pattern) {
        Progress::Blocked => return true,
        Progress::Close => return false,
        Progress::Idle => {}
    }
    loop {
        match c.stream.read(scratch) {
            Ok(0) => return false,
            Ok(n) => {
                c.input.extend_from_slice(&scratch[..n]);
                if c.input.len() > MAX_HEAD + 64 * 1024 {
                    return false;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    loop {
        let (consumed, wanted) = match parse_request(&c.input) {
            Ok(Some(found)) => found,
            Ok(None) if c.input.len() > MAX_HEAD => return false,
            Ok(None) => return true,
            Err(_) => return false,
        };
        c.input.drain(..consumed);
        c.output.clear();
        c.written = 0;
        c.output
            .extend_from_slice(response_head(&wanted).as_bytes());
        c.close_after = wanted.close;
        c.body_offset = 0;
        if wanted.body_len <= INLINE_BODY {
            let mut left = wanted.body_len as usize;
            while left > 0 {
                let take = left.min(pattern.len());
                c.output.extend_from_slice(&pattern[..take]);
                left -= take;
            }
            c.body_left = 0;
        } else {
            c.body_left = wanted.body_len;
        }
        match flush(c, pattern) {
            Progress::Blocked => return true,
            Progress::Close => return false,
            Progress::Idle => {}
        }
    }
}

fn flush(c: &mut Connection, pattern: &[u8]) -> Progress {
    while c.written < c.output.len() {
        match c.stream.write(&c.output[c.written..]) {
            Ok(0) => return Progress::Close,
            Ok(n) => c.written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Progress::Blocked,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Progress::Close,
        }
    }
    while c.body_left > 0 {
        let end = (c.body_offset as u64 + c.body_left).min(CHUNK as u64) as usize;
        match c.stream.write(&pattern[c.body_offset..end]) {
            Ok(0) => return Progress::Close,
            Ok(n) => {
                c.body_left -= n as u64;
                c.body_offset = (c.body_offset + n) % CHUNK;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Progress::Blocked,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Progress::Close,
        }
    }
    if c.close_after && !c.output.is_empty() {
        let _ = c.stream.flush();
        let _ = c.stream.shutdown(std::net::Shutdown::Write);
        return Progress::Close;
    }
    c.output.clear();
    c.written = 0;
    Progress::Idle
}

/// WebSocket echo: every text or binary message comes back unchanged.
pub fn serve_websocket(listener: std::net::TcpListener) -> Result<()> {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                eprintln!("ws backend: accept: {e}");
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
        };
        std::thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let mut socket = match tungstenite::accept(stream) {
                Ok(socket) => socket,
                Err(_) => return, // a probe that was not a WebSocket
            };
            loop {
                match socket.read() {
                    Ok(
                        message @ (tungstenite::Message::Binary(_) | tungstenite::Message::Text(_)),
                    ) => {
                        if socket.send(message).is_err() {
                            return;
                        }
                    }
                    Ok(tungstenite::Message::Close(_)) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpStream as StdStream;

    #[test]
    fn requests_are_parsed_for_size_and_connection_mode() {
        let (n, w) = parse_request(b"GET /bytes/100 HTTP/1.1\r\nHost: x\r\n\r\nGET")
            .unwrap()
            .unwrap();
        assert_eq!(n, 36);
        assert_eq!(
            w,
            Wanted {
                body_len: 100,
                close: false,
                status: 200
            }
        );
        let (_, w) = parse_request(b"GET /bytes/5 HTTP/1.1\r\nConnection: Close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(w.close);
        let (_, w) = parse_request(b"GET /bytes/5 HTTP/1.0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(w.close, "HTTP/1.0 closes by default");
        let (_, w) = parse_request(b"GET /nope HTTP/1.1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(w.status, 404);
        assert!(parse_request(b"GET /bytes/5 HTTP/1.1\r\nHo")
            .unwrap()
            .is_none());
        assert!(parse_request(b"\x00\x01 garbage\r\n\r\n").is_err());
    }

    fn read_response(reader: &mut BufReader<StdStream>) -> (String, Vec<u8>) {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).unwrap();
        (head, body)
    }

    #[test]
    fn serves_small_and_large_bodies_keep_alive_then_closes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || serve(listener));
        let stream = StdStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        let pattern = pattern_chunk();
        // Two pipelined requests, then a big one, then close.
        writer
            .write_all(b"GET /bytes/100 HTTP/1.1\r\n\r\nGET /bytes/0 HTTP/1.1\r\n\r\n")
            .unwrap();
        let (head, body) = read_response(&mut reader);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(body, pattern[..100]);
        let (_, body) = read_response(&mut reader);
        assert!(body.is_empty());
        let big = 3 * CHUNK + 17;
        writer
            .write_all(format!("GET /bytes/{big} HTTP/1.1\r\n\r\n").as_bytes())
            .unwrap();
        let (_, body) = read_response(&mut reader);
        assert_eq!(body.len(), big);
        assert!(body
            .chunks(CHUNK)
            .all(|chunk| chunk == &pattern[..chunk.len()]));
        writer
            .write_all(b"GET /bytes/10 HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (head, body) = read_response(&mut reader);
        assert!(head.contains("Connection: close"));
        assert_eq!(body.len(), 10);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "closed after the response");
    }

    #[test]
    fn websocket_messages_are_echoed() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || serve_websocket(listener));
        let stream = StdStream::connect(addr).unwrap();
        let (mut socket, _) = tungstenite::client(format!("ws://{addr}/echo"), stream).unwrap();
        for i in 0..3u8 {
            let payload = vec![i; 64];
            socket
                .send(tungstenite::Message::Binary(payload.clone()))
                .unwrap();
            match socket.read().unwrap() {
                tungstenite::Message::Binary(echo) => assert_eq!(echo, payload),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}
