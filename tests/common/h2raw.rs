//! A raw HTTP/2 client for tests that send what a well-behaved client
//! never would: frames are built byte by byte (RFC 9113 §4.1), header
//! blocks use HPACK literals without Huffman coding (RFC 7541 §6.2), and
//! frames read back are returned with their payload undecoded. Real
//! clients (curl, nghttp, h2load) cover the well-formed cases.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::PATIENCE;

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;
pub const COMPRESSION_ERROR: u32 = 0x9;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The error code of a RST_STREAM or GOAWAY.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            RST_STREAM => 0,
            GOAWAY => 4,
            _ => return None,
        };
        let b = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The `:status` of a response HEADERS frame, for the statuses HPACK's
    /// static table holds (h2 sends those as one indexed byte).
    pub fn indexed_status(&self) -> Option<u16> {
        let statuses = [200, 204, 206, 304, 400, 404, 500];
        match self.payload.first()? {
            b @ 0x88..=0x8e => Some(statuses[usize::from(b - 0x88)]),
            _ => None,
        }
    }
}

pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK integer with an `n`-bit prefix; `high`: the bits above it.
fn int(out: &mut Vec<u8>, n: u8, high: u8, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(high | value as u8);
        return;
    }
    out.push(high | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128 + 128) as u8);
        value /= 128;
    }
    out.push(value as u8);
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    int(out, 7, 0, s.len());
    out.extend_from_slice(s);
}

/// A field as a literal without indexing, new name (§6.2.2).
pub fn literal(name: &str, value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x00];
    string(&mut out, name.as_bytes());
    string(&mut out, value);
    out
}

/// A field as a literal that the decoder adds to its dynamic table
/// (§6.2.1).
pub fn literal_indexed(name: &str, value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x40];
    string(&mut out, name.as_bytes());
    string(&mut out, value);
    out
}

/// A reference to table entry `index` (§6.1; the dynamic table starts at
/// 62).
pub fn indexed(index: usize) -> Vec<u8> {
    let mut out = Vec::new();
    int(&mut out, 7, 0x80, index);
    out
}

/// A request header block: the four pseudo-headers, then `fields`.
pub fn request_block(method: &str, path: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in [
        (":method", method),
        (":scheme", "http"),
        (":authority", "h2.test"),
        (":path", path),
    ]
    .into_iter()
    .chain(fields.iter().copied())
    {
        out.extend(literal(name, value.as_bytes()));
    }
    out
}

/// HEADERS with END_HEADERS (and END_STREAM if `end`).
pub fn headers(stream: u32, block: &[u8], end: bool) -> Vec<u8> {
    let flags = END_HEADERS | if end { END_STREAM } else { 0 };
    frame(HEADERS, flags, stream, block)
}

pub fn rst_stream(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

pub fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

pub fn settings(values: &[(u16, u32)]) -> Vec<u8> {
    let mut payload = Vec::new();
    for (id, value) in values {
        payload.extend_from_slice(&id.to_be_bytes());
        payload.extend_from_slice(&value.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &payload)
}

pub struct H2Conn {
    pub sock: TcpStream,
}

impl H2Conn {
    /// Connects and sends the preface with `settings`.
    pub fn open(addr: SocketAddr, settings_values: &[(u16, u32)]) -> H2Conn {
        H2Conn::open_after(addr, b"", settings_values)
    }

    /// Connects, sends `first` (a PROXY header), then the preface.
    pub fn open_after(addr: SocketAddr, first: &[u8], settings_values: &[(u16, u32)]) -> H2Conn {
        let mut sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(PATIENCE)).unwrap();
        sock.set_nodelay(true).unwrap();
        let mut hello = first.to_vec();
        hello.extend_from_slice(PREFACE);
        hello.extend(settings(settings_values));
        sock.write_all(&hello).unwrap();
        H2Conn { sock }
    }

    /// Sends bytes; false if the server closed the connection meanwhile.
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        self.sock.write_all(bytes).is_ok()
    }

    /// The next frame; `None` at end of stream or on a reset. The
    /// server's SETTINGS are acknowledged as they come.
    pub fn read_frame(&mut self) -> Option<Frame> {
        let mut head = [0u8; 9];
        self.sock.read_exact(&mut head).ok()?;
        let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        self.sock.read_exact(&mut payload).ok()?;
        let f = Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
            payload,
        };
        if f.kind == SETTINGS && f.flags & ACK == 0 {
            let _ = self.sock.write_all(&frame(SETTINGS, ACK, 0, &[]));
        }
        Some(f)
    }

    /// Reads frames until one satisfies `wanted`; `None` if the connection
    /// ended first.
    pub fn until(&mut self, wanted: impl Fn(&Frame) -> bool) -> Option<Frame> {
        while let Some(f) = self.read_frame() {
            if wanted(&f) {
                return Some(f);
            }
        }
        None
    }

    /// The error code of the GOAWAY that ends the connection (`None`: it
    /// ended without one).
    pub fn goaway(&mut self) -> Option<u32> {
        self.until(|f| f.kind == GOAWAY)?.error_code()
    }

    /// Reads until the server closes the connection; returns every frame.
    pub fn drain(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(f) = self.read_frame() {
            frames.push(f);
        }
        frames
    }
}
