//! `mode = "tcp"` end to end: the real binary, real sockets, real backends.

mod common;

use common::*;
use sha2::{Digest, Sha256};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn bytes_are_relayed_both_ways() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&tcp_config("", &servers(&[backend.addr])));
    let mut c = connect(proxy.addr());
    assert_eq!(roundtrip(&mut c, b"hello percore"), b"hello percore");
    assert_eq!(roundtrip(&mut c, &[7u8; 100_000]), vec![7u8; 100_000]);
    drop(c);
    let (status, err) = proxy.stop();
    assert!(status.success(), "{err}");
}

#[test]
fn copy_path_relays_too() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&tcp_config(
        "tune.splice = false",
        &servers(&[backend.addr]),
    ));
    let mut c = connect(proxy.addr());
    assert_eq!(roundtrip(&mut c, &[9u8; 300_000]), vec![9u8; 300_000]);
}

#[test]
fn refused_server_is_retried_on_the_next_then_the_client_is_closed() {
    let live = Backend::echo();
    let dead = closed_addr();
    // roundrobin starts with s1 (dead): one retry, which is the last one, so
    // HAProxy's default redispatch sends it to s2.
    let body = format!(
        "balance = \"roundrobin\"\nretries = 1\nredispatch = true\n{}",
        servers(&[dead, live.addr])
    );
    let proxy = Proxy::start(&tcp_config("", &body));
    for _ in 0..4 {
        let mut c = connect(proxy.addr());
        assert_eq!(roundtrip(&mut c, b"ping"), b"ping");
    }
    assert_eq!(live.accepted(), 4);

    // With every server refusing, the client connection is closed.
    let body = format!(
        "retries = 2\nredispatch = true\n{}",
        servers(&[closed_addr(), closed_addr()])
    );
    let proxy2 = Proxy::start(&tcp_config("", &body));
    let mut c = connect(proxy2.addr());
    let _ = c.write_all(b"anyone?");
    let (got, _) = read_to_end_or_error(&mut c);
    assert!(got.is_empty());
    let (status, _) = proxy2.stop();
    assert!(status.success());
}

#[test]
fn server_dying_mid_stream_closes_the_client() {
    // The server sends part of a reply, then dies (reset).
    let backend = Backend::start(|mut s| {
        let mut buf = [0u8; 5];
        let _ = s.read_exact(&mut buf);
        let _ = s.write_all(b"partial");
        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        drop(s);
    });
    let proxy = Proxy::start(&tcp_config("", &servers(&[backend.addr])));
    let mut c = connect(proxy.addr());
    c.write_all(b"hello").unwrap();
    let (got, err) = read_to_end_or_error(&mut c);
    assert!(
        got.is_empty() || got == b"partial",
        "unexpected bytes {got:?}"
    );
    if let Some(e) = err {
        assert_ne!(e.kind(), ErrorKind::WouldBlock, "client hung: {e}");
        assert_ne!(e.kind(), ErrorKind::TimedOut, "client hung: {e}");
    }
}

#[test]
fn server_reset_propagates_as_a_reset() {
    let backend = Backend::start(|mut s| {
        let mut buf = [0u8; 5];
        let _ = s.read_exact(&mut buf);
        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        drop(s);
    });
    let proxy = Proxy::start(&tcp_config("", &servers(&[backend.addr])));
    let mut c = connect(proxy.addr());
    c.write_all(b"hello").unwrap();
    let (_, err) = read_to_end_or_error(&mut c);
    let err = err.expect("a reset, not a clean close");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
}

#[test]
fn half_close_propagates_each_way() {
    // The server answers only after the client's FIN: the client must still
    // receive the whole answer after shutting down its write side.
    let backend = Backend::start(|mut s| {
        let mut req = Vec::new();
        s.read_to_end(&mut req).unwrap();
        let answer = format!("got {} bytes", req.len());
        s.write_all(answer.as_bytes()).unwrap();
    });
    let proxy = Proxy::start(&tcp_config("", &servers(&[backend.addr])));
    let mut c = connect(proxy.addr());
    c.write_all(&[1u8; 70_000]).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let (got, err) = read_to_end_or_error(&mut c);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got, b"got 70000 bytes");
}

#[test]
fn idle_client_is_closed_after_timeout_client() {
    let backend = Backend::echo();
    let config = tcp_config("", &servers(&[backend.addr]))
        .replace(r#"client = "5m""#, r#"client = "300ms""#);
    let proxy = Proxy::start(&config);
    let mut c = connect(proxy.addr());
    assert_eq!(roundtrip(&mut c, b"x"), b"x");
    // Now stay silent: the proxy must close us (bounded by PATIENCE).
    let (got, err) = read_to_end_or_error(&mut c);
    assert!(got.is_empty());
    if let Some(e) = err {
        assert!(
            !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "the proxy never closed the idle client: {e}"
        );
    }
}

/// Reads to EOF, returning the byte count and SHA-256 of what arrived.
fn drain_and_hash(mut rd: TcpStream) -> (usize, Vec<u8>) {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0usize;
    loop {
        match rd.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => {
                h.update(&buf[..k]);
                n += k;
            }
            Err(e) => panic!("read failed after {n} bytes: {e}"),
        }
    }
    (n, h.finalize().to_vec())
}

/// Writes `total` pattern bytes then FIN; returns the SHA-256 of what was sent.
fn send_pattern_and_hash(mut wr: TcpStream, seed: u64, total: usize) -> Vec<u8> {
    let mut pat = Pattern::new(seed);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = total;
    while left > 0 {
        let k = left.min(buf.len());
        pat.fill(&mut buf[..k]);
        h.update(&buf[..k]);
        wr.write_all(&buf[..k]).unwrap();
        left -= k;
    }
    wr.shutdown(Shutdown::Write).unwrap();
    h.finalize().to_vec()
}

/// Pushes `total` bytes each way at once through the proxy and compares
/// SHA-256 digests computed at both ends.
fn bulk_both_ways(extra_global: &str, total: usize) {
    let (to_server_tx, to_server_rx) = std::sync::mpsc::channel();
    let backend = Backend::start(move |s| {
        let rd = s.try_clone().unwrap();
        let reader = thread::spawn(move || drain_and_hash(rd));
        let sent = send_pattern_and_hash(s, 2, total);
        let received = reader.join().unwrap();
        to_server_tx.send((received, sent)).unwrap();
    });
    let proxy = Proxy::start(&tcp_config(extra_global, &servers(&[backend.addr])));
    let c = connect(proxy.addr());
    let rd = c.try_clone().unwrap();
    let reader = thread::spawn(move || drain_and_hash(rd));
    let client_sent = send_pattern_and_hash(c, 1, total);
    let (client_got_len, client_got) = reader.join().unwrap();
    let ((server_got_len, server_got), server_sent) =
        to_server_rx.recv_timeout(Duration::from_secs(120)).unwrap();
    assert_eq!(server_got_len, total);
    assert_eq!(client_got_len, total);
    assert_eq!(server_got, client_sent, "client -> server bytes differ");
    assert_eq!(client_got, server_sent, "server -> client bytes differ");
}

#[test]
fn splice_moves_256_mib_each_way_intact() {
    bulk_both_ways("", 256 << 20);
}

#[test]
fn copy_path_moves_256_mib_each_way_intact() {
    bulk_both_ways("tune.splice = false", 256 << 20);
}

#[test]
fn two_thousand_connections_leave_no_descriptor_behind() {
    let backend = Backend::echo();
    // The pipe pool may keep up to `maxpipes` idle pipes (2 fds each): that
    // is bounded reuse, not a leak.
    let proxy = Proxy::start(&tcp_config("maxpipes = 4", &servers(&[backend.addr])));
    // Warm up once so lazily created per-core resources exist before counting.
    let mut c = connect(proxy.addr());
    assert_eq!(roundtrip(&mut c, b"warm"), b"warm");
    drop(c);
    let settle = |want: usize| {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let n = proxy.fd_count();
            if n <= want || Instant::now() > deadline {
                return n;
            }
            thread::sleep(Duration::from_millis(50));
        }
    };
    let before = proxy.fd_count();
    for i in 0..2000 {
        let mut c = connect(proxy.addr());
        if i % 2 == 0 {
            assert_eq!(roundtrip(&mut c, b"abc"), b"abc");
        }
        // odd ones close without sending anything
    }
    let after = settle(before + 8);
    assert!(
        after <= before + 8,
        "descriptors leaked: {before} before, {after} after"
    );
}

#[test]
fn every_core_accepts_connections() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let backend = Backend::echo();
    let config =
        tcp_config("", &servers(&[backend.addr])).replace("threads = 1", "threads = \"auto\"");
    let proxy = Proxy::start(&config);
    // SO_REUSEPORT hashes the 4-tuple: with enough distinct client ports
    // every core's listener gets some.
    for _ in 0..200 {
        let mut c = connect(proxy.addr());
        assert_eq!(roundtrip(&mut c, b"."), b".");
    }
    let (status, log) = proxy.stop();
    assert!(status.success(), "{log}");
    let per_core: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("] core ") && l.contains("accepted"))
        .map(|l| {
            let n = l.split("accepted ").nth(1).unwrap();
            n.split_whitespace().next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(per_core.len(), cpus, "one line per core expected:\n{log}");
    assert!(
        per_core.iter().all(|&n| n > 0),
        "a core accepted nothing: {per_core:?}\n{log}"
    );
    assert_eq!(per_core.iter().sum::<u64>(), 200, "{log}");
}
