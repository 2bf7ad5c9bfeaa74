//! The operations the soak's clients run, and the clients that misbehave
//! (slowloris, silent connections).

use super::http::*;
use super::*;

#[derive(Debug, Clone, Copy)]
pub(super) enum Op {
    KeepAlive,
    Close,
    Upload,
    WebSocket,
    Tls,
    Tunnel,
    HalfClose,
    Stall,
}

pub(super) const MIX: [Op; 12] = [
    Op::KeepAlive,
    Op::KeepAlive,
    Op::Close,
    Op::Upload,
    Op::WebSocket,
    Op::Tls,
    Op::Tunnel,
    Op::KeepAlive,
    Op::HalfClose,
    Op::Upload,
    Op::Tunnel,
    Op::Stall,
];

impl Op {
    pub(super) fn name(self) -> &'static str {
        match self {
            Op::KeepAlive => "http keep-alive download",
            Op::Close => "http close download",
            Op::Upload => "http upload (SHA-256)",
            Op::WebSocket => "websocket echo",
            Op::Tls => "https keep-alive download",
            Op::Tunnel => "tcp tunnel echo",
            Op::HalfClose => "http half-closed client",
            Op::Stall => "server stalls then resets",
        }
    }
}

/// A body size: mostly small, sometimes large.
pub(super) fn size(rng: &mut Rng) -> u64 {
    match rng.below(10) {
        0 => 1 + rng.below(4 << 20),
        1..=3 => 1 + rng.below(256 << 10),
        _ => rng.below(8 << 10),
    }
}

/// Several requests on one connection (plain or TLS); a connection the
/// proxy closed between two requests is replaced once.
pub(super) fn keep_alive_session<S: Read + Write>(
    mut open: impl FnMut() -> std::result::Result<S, Failure>,
    rng: &mut Rng,
    tally: &Shared,
    op: Op,
) {
    let mut conn = match open() {
        Ok(c) => c,
        Err(f) => return lock(tally).record(op.name(), &Err(f)),
    };
    let mut reused = false;
    for _ in 0..3 {
        let (len, seed) = (size(rng), rng.next());
        let (mut result, mut keep) = download(&mut conn, len, seed, false, reused);
        if matches!(result, Ok(Outcome::Retry)) {
            lock(tally).record(op.name(), &result);
            conn = match open() {
                Ok(c) => c,
                Err(f) => return lock(tally).record(op.name(), &Err(f)),
            };
            (result, keep) = download(&mut conn, len, seed, false, false);
        }
        lock(tally).record(op.name(), &result);
        if !keep {
            return;
        }
        reused = true;
    }
}

pub(super) fn websocket(o: &Options, rng: &mut Rng) -> OpResult {
    let tcp = connect(o.http())?;
    let (mut ws, _) = match tungstenite::client("ws://soak/ws", tcp) {
        Ok(pair) => pair,
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            let status = resp.status().as_u16();
            return if documented(status) {
                Ok(Outcome::Refused(status))
            } else {
                Err(Failure::Unexpected(format!(
                    "websocket handshake: status {status}"
                )))
            };
        }
        Err(e) => return Err(Failure::Unexpected(format!("websocket handshake: {e}"))),
    };
    let mut verified = 0u64;
    let lost = |e: tungstenite::Error, verified: u64| match e {
        tungstenite::Error::Io(io)
            if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
        {
            Err(Failure::Hang(format!("websocket: no echo within {HANG:?}")))
        }
        _ => Ok(Outcome::Aborted { verified }),
    };
    for _ in 0..4 {
        let seed = rng.next();
        let mut data = vec![0u8; 1 + rng.below(32 << 10) as usize];
        pattern(seed, 0, &mut data);
        if let Err(e) = ws.send(tungstenite::Message::binary(data.clone())) {
            return lost(e, verified);
        }
        match ws.read() {
            Ok(tungstenite::Message::Binary(echo)) if echo[..] == data[..] => {
                verified += data.len() as u64
            }
            Ok(other) => {
                return Err(Failure::Corrupt(format!(
                    "websocket: echo of {} bytes came back as {} bytes",
                    data.len(),
                    other.len()
                )))
            }
            Err(e) => return lost(e, verified),
        }
    }
    let _ = ws.close(None);
    while ws.read().is_ok() {}
    Ok(Outcome::Done { bytes: verified })
}

pub(super) fn tunnel(o: &Options, rng: &mut Rng) -> OpResult {
    let mut reader = connect(o.tunnel())?;
    let mut writer = reader
        .try_clone()
        .map_err(|e| Failure::Unexpected(format!("tunnel: {e}")))?;
    let (len, seed) = (size(rng), rng.next());
    let feeder = std::thread::spawn(move || {
        let mut block = vec![0u8; 64 * 1024];
        let mut sent = 0u64;
        while sent < len {
            let n = (len - sent).min(block.len() as u64) as usize;
            pattern(seed, sent, &mut block[..n]);
            if writer.write_all(&block[..n]).is_err() {
                return;
            }
            sent += n as u64;
        }
        let _ = writer.shutdown(Shutdown::Write);
    });
    let mut buf = Vec::new();
    let result = match read_body(&mut reader, &mut buf, len, pattern_check(seed)) {
        Ok(bytes) => {
            // Then the echo server's FIN, passed on by the proxy.
            let mut rest = [0u8; 1];
            match reader.read(&mut rest) {
                Ok(0) => Ok(Outcome::Done { bytes }),
                Ok(_) => Err(Failure::Corrupt("tunnel: bytes after the echo".into())),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    Err(Failure::Hang("tunnel: no FIN after the echo".into()))
                }
                Err(_) => Ok(Outcome::Done { bytes }),
            }
        }
        Err((_, Err(bad))) => Err(Failure::Corrupt(format!("tunnel: {bad}"))),
        Err((verified, Ok(ReadEnd::Closed { .. }))) => Ok(Outcome::Aborted { verified }),
        Err((_, Ok(end))) => Err(no_answer(end, false, "tunnel")),
    };
    let _ = reader.shutdown(Shutdown::Both);
    let _ = feeder.join();
    result
}

pub(super) fn half_close(o: &Options, rng: &mut Rng) -> OpResult {
    let mut s = connect(o.http())?;
    let (len, seed) = (rng.below(64 << 10), rng.next());
    let request =
        format!("GET /dl/{len}/{seed} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return Err(Failure::Unexpected("half-close: request not sent".into()));
    }
    let _ = s.shutdown(Shutdown::Write);
    let mut buf = Vec::new();
    let head = read_head(&mut s, &mut buf).map_err(|e| no_answer(e, false, "half-close"))?;
    if head.status != 200 {
        return refusal(&mut s, &mut buf, &head, "half-close");
    }
    match read_body(&mut s, &mut buf, len, pattern_check(seed)) {
        Ok(bytes) => Ok(Outcome::Done { bytes }),
        Err((_, Err(bad))) => Err(Failure::Corrupt(format!("half-close: {bad}"))),
        Err((verified, Ok(ReadEnd::Closed { .. }))) => Ok(Outcome::Aborted { verified }),
        Err((_, Ok(end))) => Err(no_answer(end, false, "half-close body")),
    }
}

pub(super) fn stall(o: &Options, rng: &mut Rng) -> OpResult {
    let mut s = connect(o.http())?;
    let ms = STALLS_MS[rng.below(STALLS_MS.len() as u64) as usize];
    let request = format!("GET /stall/{ms} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return Err(Failure::Unexpected("stall: request not sent".into()));
    }
    let mut buf = Vec::new();
    let head = read_head(&mut s, &mut buf).map_err(|e| no_answer(e, false, "stall"))?;
    refusal(&mut s, &mut buf, &head, "stall")
}

pub(super) fn client(
    o: &Options,
    index: usize,
    deadline: Instant,
    tally: &Shared,
    tls: &Arc<rustls::ClientConfig>,
) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (((index as u64 + 1) << 32) | (index as u64 + 7)));
    let mut turn = index;
    while going_on(deadline) {
        let op = MIX[turn % MIX.len()];
        turn += 1;
        match op {
            Op::KeepAlive => keep_alive_session(|| connect(o.http()), &mut rng, tally, op),
            Op::Tls => {
                let open = || {
                    let tcp = connect(o.https())?;
                    let name = rustls::pki_types::ServerName::try_from("soak.test")
                        .map_err(|e| Failure::Unexpected(e.to_string()))?;
                    let conn = rustls::ClientConnection::new(Arc::clone(tls), name)
                        .map_err(|e| Failure::Unexpected(format!("tls: {e}")))?;
                    Ok(rustls::StreamOwned::new(conn, tcp))
                };
                keep_alive_session(open, &mut rng, tally, op);
            }
            Op::Close => {
                let result = connect(o.http()).and_then(|mut s| {
                    let (len, seed) = (size(&mut rng), rng.next());
                    download(&mut s, len, seed, true, false).0
                });
                lock(tally).record(op.name(), &result);
            }
            Op::Upload => {
                let result = connect(o.http()).and_then(|mut s| {
                    let (len, seed) = (size(&mut rng), rng.next());
                    upload(&mut s, len, seed)
                });
                lock(tally).record(op.name(), &result);
            }
            Op::WebSocket => {
                let result = websocket(o, &mut rng);
                lock(tally).record(op.name(), &result);
            }
            Op::Tunnel => {
                let result = tunnel(o, &mut rng);
                lock(tally).record(op.name(), &result);
            }
            Op::HalfClose => {
                let result = half_close(o, &mut rng);
                lock(tally).record(op.name(), &result);
            }
            Op::Stall => {
                let result = stall(o, &mut rng);
                lock(tally).record(op.name(), &result);
            }
        }
    }
}

// ------------------------------------------------------------ bad clients

/// Connections the proxy must close by itself: slowloris (a header byte
/// every 300 ms, never the end of the head: `timeout http-request`) and
/// silent ones (nothing sent). Returns how long the proxy took, and
/// whether a slowloris got its 408.
pub(super) fn misbehave(
    addr: SocketAddr,
    slow: bool,
) -> std::result::Result<(Duration, bool), String> {
    let started = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, HANG).map_err(|e| format!("connect: {e}"))?;
    let limit = TIMEOUT_HTTP_REQUEST.max(TIMEOUT_CLIENT) + HANG;
    if slow {
        let _ = s.write_all(b"GET /dl/10/1 HTTP/1.1\r\nHost: soak\r\nX-Slow: ");
        let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
    } else {
        let _ = s.set_read_timeout(Some(limit));
    }
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if started.elapsed() > limit {
                    return Err(format!("still open after {:?}", started.elapsed()));
                }
                if slow {
                    // A write may fail once the proxy closed; the read
                    // then sees it.
                    let _ = s.write_all(b"a");
                }
            }
            Err(_) => break,
        }
    }
    Ok((started.elapsed(), answer.starts_with(b"HTTP/1.1 408")))
}

pub(super) fn bad_clients(o: &Options, deadline: Instant, tally: &Shared) {
    while going_on(deadline) {
        let addr = o.http();
        let batch: Vec<_> = (0..12)
            .map(|i| std::thread::spawn(move || (i % 3 != 0, misbehave(addr, i % 3 != 0))))
            .collect();
        for t in batch {
            let Ok((slow, result)) = t.join() else {
                continue;
            };
            let mut t = lock(tally);
            match (slow, result) {
                (true, Ok((took, got_408))) => {
                    t.slowloris += 1;
                    t.slowloris_408 += u64::from(got_408);
                    t.slowloris_cut_max = t.slowloris_cut_max.max(took);
                }
                (false, Ok((took, _))) => {
                    t.silent += 1;
                    t.silent_cut_max = t.silent_cut_max.max(took);
                }
                (slow, Err(why)) => {
                    let kind = if slow {
                        "slowloris"
                    } else {
                        "silent connection"
                    };
                    t.fail(format!("{kind}: {why}"));
                }
            }
        }
    }
}
