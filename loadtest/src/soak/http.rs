//! The soak's HTTP/1.1 client: one request, its answer read and every
//! byte checked, and how each way of ending is classified.

use super::*;

/// How reading an answer ended badly.
pub(super) enum ReadEnd {
    /// Closed (FIN or reset); `any` is whether a byte came first.
    Closed {
        any: bool,
    },
    Timeout,
    Bad(String),
}

pub(super) fn read_end(e: &std::io::Error, any: bool) -> ReadEnd {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => ReadEnd::Timeout,
        _ => ReadEnd::Closed { any },
    }
}

pub(super) struct Head {
    pub(super) status: u16,
    pub(super) content_length: Option<u64>,
    pub(super) close: bool,
}

pub(super) fn read_head<S: Read>(
    s: &mut S,
    buf: &mut Vec<u8>,
) -> std::result::Result<Head, ReadEnd> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut fields);
        match resp.parse(buf) {
            Ok(httparse::Status::Complete(len)) => {
                let header = |name: &str| {
                    resp.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
                };
                let head = Head {
                    status: resp.code.unwrap_or(0),
                    content_length: header("content-length").and_then(|v| v.trim().parse().ok()),
                    close: header("connection").is_some_and(|v| v.contains("close")),
                };
                buf.drain(..len);
                return Ok(head);
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err(ReadEnd::Bad(format!("unparsable response head: {e}"))),
        }
        match s.read(&mut chunk) {
            Ok(0) => {
                return Err(ReadEnd::Closed {
                    any: !buf.is_empty(),
                })
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(read_end(&e, !buf.is_empty())),
        }
    }
}

/// Reads `len` body bytes, each handed to `check` with its offset; stops
/// at the first wrong one.
pub(super) fn read_body<S: Read>(
    s: &mut S,
    buf: &mut Vec<u8>,
    len: u64,
    mut check: impl FnMut(u64, &[u8]) -> Option<String>,
) -> std::result::Result<u64, (u64, std::result::Result<ReadEnd, String>)> {
    let mut got = 0u64;
    let take = (buf.len() as u64).min(len) as usize;
    if let Some(bad) = check(0, &buf[..take]) {
        return Err((0, Err(bad)));
    }
    got += take as u64;
    buf.drain(..take);
    let mut chunk = vec![0u8; 64 * 1024];
    while got < len {
        let want = (len - got).min(chunk.len() as u64) as usize;
        match s.read(&mut chunk[..want]) {
            Ok(0) => return Err((got, Ok(ReadEnd::Closed { any: true }))),
            Ok(n) => {
                if let Some(bad) = check(got, &chunk[..n]) {
                    return Err((got, Err(bad)));
                }
                got += n as u64;
            }
            Err(e) => return Err((got, Ok(read_end(&e, true)))),
        }
    }
    Ok(got)
}

pub(super) fn pattern_check(seed: u64) -> impl FnMut(u64, &[u8]) -> Option<String> {
    let mut expected = Vec::new();
    move |offset, got| {
        expected.resize(got.len(), 0);
        pattern(seed, offset, &mut expected);
        got.iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .map(|i| format!("byte {} of seed {seed}", offset + i as u64))
    }
}

pub(super) fn documented(status: u16) -> bool {
    matches!(status, 502..=504)
}

/// A response that is not the one asked for: a documented refusal (its
/// error page is read and dropped) or a failure.
pub(super) fn refusal<S: Read>(s: &mut S, buf: &mut Vec<u8>, head: &Head, what: &str) -> OpResult {
    if !documented(head.status) {
        return Err(Failure::Unexpected(format!(
            "{what}: status {}",
            head.status
        )));
    }
    if let Some(len) = head.content_length {
        let _ = read_body(s, buf, len, |_, _| None);
    }
    Ok(Outcome::Refused(head.status))
}

pub(super) fn no_answer(end: ReadEnd, reused: bool, what: &str) -> Failure {
    match end {
        ReadEnd::Timeout => Failure::Hang(format!("{what}: no answer within {HANG:?}")),
        ReadEnd::Bad(why) => Failure::Unexpected(format!("{what}: {why}")),
        ReadEnd::Closed { any } => Failure::Unexpected(format!(
            "{what}: connection closed {} an answer{}",
            if any { "in the middle of" } else { "without" },
            if reused { " (reused connection)" } else { "" }
        )),
    }
}

/// One `GET /dl/<len>/<seed>`; the bool says whether the connection may
/// carry another request.
pub(super) fn download<S: Read + Write>(
    s: &mut S,
    len: u64,
    seed: u64,
    close: bool,
    reused: bool,
) -> (OpResult, bool) {
    let connection = if close { "Connection: close\r\n" } else { "" };
    let request = format!("GET /dl/{len}/{seed} HTTP/1.1\r\nHost: soak\r\n{connection}\r\n");
    if s.write_all(request.as_bytes())
        .and_then(|()| s.flush())
        .is_err()
    {
        return if reused {
            (Ok(Outcome::Retry), false)
        } else {
            (
                Err(Failure::Unexpected("download: request not sent".into())),
                false,
            )
        };
    }
    let mut buf = Vec::new();
    let head = match read_head(s, &mut buf) {
        Ok(h) => h,
        Err(ReadEnd::Closed { any: false }) if reused => return (Ok(Outcome::Retry), false),
        Err(end) => return (Err(no_answer(end, reused, "download")), false),
    };
    if head.status != 200 {
        return (refusal(s, &mut buf, &head, "download"), false);
    }
    if head.content_length != Some(len) {
        let why = format!(
            "download: Content-Length {:?} for {len}",
            head.content_length
        );
        return (Err(Failure::Unexpected(why)), false);
    }
    match read_body(s, &mut buf, len, pattern_check(seed)) {
        Ok(bytes) => (Ok(Outcome::Done { bytes }), !close && !head.close),
        Err((_, Err(bad))) => (Err(Failure::Corrupt(format!("download: {bad}"))), false),
        Err((verified, Ok(ReadEnd::Closed { .. }))) => (Ok(Outcome::Aborted { verified }), false),
        Err((_, Ok(end))) => (Err(no_answer(end, reused, "download body")), false),
    }
}

/// `POST /up`: the backend answers the body's SHA-256.
pub(super) fn upload<S: Read + Write>(s: &mut S, len: u64, seed: u64) -> OpResult {
    let head = format!(
        "POST /up HTTP/1.1\r\nHost: soak\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 64 * 1024];
    let mut sent_all = s.write_all(head.as_bytes()).is_ok();
    let mut sent = 0u64;
    while sent_all && sent < len {
        let n = (len - sent).min(block.len() as u64) as usize;
        pattern(seed, sent, &mut block[..n]);
        hasher.update(&block[..n]);
        match s.write_all(&block[..n]) {
            Ok(()) => sent += n as u64,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(Failure::Hang(format!(
                    "upload: body not taken within {HANG:?}"
                )))
            }
            Err(_) => sent_all = false,
        }
    }
    let _ = s.flush();
    let mut buf = Vec::new();
    let head = match read_head(s, &mut buf) {
        Ok(h) => h,
        // The proxy stopped reading the body and closed: the server died
        // under the upload (its 502 may be lost to the reset).
        Err(ReadEnd::Closed { .. }) if !sent_all => return Ok(Outcome::Aborted { verified: 0 }),
        Err(end) => return Err(no_answer(end, false, "upload")),
    };
    if head.status != 200 {
        return refusal(s, &mut buf, &head, "upload");
    }
    if !sent_all {
        return Err(Failure::Unexpected(
            "upload: 200 for a body not all sent".into(),
        ));
    }
    let want = hex(&hasher.finalize());
    let mut got = Vec::new();
    match read_body(s, &mut buf, 64, |_, b| {
        got.extend_from_slice(b);
        None
    }) {
        Ok(_) if got == want.as_bytes() => Ok(Outcome::Done { bytes: len }),
        Ok(_) => Err(Failure::Corrupt(format!(
            "upload of {len} bytes: server hashed {} not {want}",
            String::from_utf8_lossy(&got)
        ))),
        Err((_, Ok(ReadEnd::Closed { .. }))) => Ok(Outcome::Aborted { verified: 0 }),
        Err((_, Ok(end))) => Err(no_answer(end, false, "upload answer")),
        Err((_, Err(bad))) => Err(Failure::Corrupt(bad)),
    }
}

pub(super) fn connect(addr: SocketAddr) -> std::result::Result<TcpStream, Failure> {
    let s = TcpStream::connect_timeout(&addr, HANG)
        .map_err(|e| Failure::Unexpected(format!("connect to the proxy {addr}: {e}")))?;
    let _ = s.set_read_timeout(Some(HANG));
    let _ = s.set_write_timeout(Some(HANG));
    let _ = s.set_nodelay(true);
    Ok(s)
}
