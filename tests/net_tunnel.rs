//! The L4 tunnel over real loopback sockets: integrity both ways at once,
//! half-close, reset propagation, idle timeout, backpressure, prefixes.

mod net_support;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use net_support::*;
use percore::net::{PipePool, TunnelEnd};

const MIB: u64 = 1 << 20;

fn integrity_both_ways(splice: bool) {
    const LEN: u64 = 64 * MIB;
    executor().run(async move {
        let pipes = PipePool::new(64 * 1024, 16);
        let (report, from_server, from_client) = tunnel(
            &settings(splice),
            &pipes,
            |s| exchange(s, 1, LEN, 2),
            |s| exchange(s, 2, LEN, 1),
        )
        .await;
        assert!(matches!(report.end, TunnelEnd::Closed), "{:?}", report.end);
        assert_eq!(from_server, LEN);
        assert_eq!(from_client, LEN);
        assert_eq!(report.client_to_server, LEN);
        assert_eq!(report.server_to_client, LEN);
        if splice {
            assert!(report.spliced > 0, "bulk data never went through a pipe");
            assert_eq!(pipes.stats().in_use, 0);
            assert!(pipes.stats().idle > 0, "pipes were not returned");
        } else {
            assert_eq!(report.spliced, 0);
            assert_eq!(pipes.stats().created, 0);
        }
    });
}

#[test]
fn splice_delivers_both_ways_intact() {
    integrity_both_ways(true);
}

#[test]
fn copy_delivers_both_ways_intact() {
    integrity_both_ways(false);
}

#[test]
fn splice_without_pipes_falls_back_to_copy() {
    executor().run(async {
        let pipes = PipePool::new(64 * 1024, 0);
        let (report, from_server, from_client) = tunnel(
            &settings(true),
            &pipes,
            |s| exchange(s, 3, 8 * MIB, 4),
            |s| exchange(s, 4, 8 * MIB, 3),
        )
        .await;
        assert!(matches!(report.end, TunnelEnd::Closed), "{:?}", report.end);
        assert_eq!((from_server, from_client), (8 * MIB, 8 * MIB));
        assert_eq!(report.spliced, 0);
    });
}

/// The client sends a request and shuts down writing; the server sees end
/// of stream, then answers, and the client still gets the whole answer.
fn client_half_close(splice: bool) {
    executor().run(async move {
        let pipes = PipePool::new(64 * 1024, 16);
        let (report, reply_len, request_len) = tunnel(
            &settings(splice),
            &pipes,
            |mut s| {
                send_pattern(&mut s, 5, 300_000).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
                recv_pattern(&mut s, 6).unwrap()
            },
            |mut s| {
                let got = recv_pattern(&mut s, 5).unwrap();
                send_pattern(&mut s, 6, 4 * MIB).unwrap();
                got
            },
        )
        .await;
        assert!(matches!(report.end, TunnelEnd::Closed), "{:?}", report.end);
        assert_eq!(request_len, 300_000);
        assert_eq!(reply_len, 4 * MIB);
    });
}

/// The server sends everything and shuts down writing first; the client
/// reads it all and only then sends, and the server still receives.
fn server_half_close(splice: bool) {
    executor().run(async move {
        let pipes = PipePool::new(64 * 1024, 16);
        let (report, from_server, from_client) = tunnel(
            &settings(splice),
            &pipes,
            |mut s| {
                let got = recv_pattern(&mut s, 7).unwrap();
                send_pattern(&mut s, 8, 3 * MIB).unwrap();
                got
            },
            |mut s| {
                send_pattern(&mut s, 7, 2 * MIB).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
                recv_pattern(&mut s, 8).unwrap()
            },
        )
        .await;
        assert!(matches!(report.end, TunnelEnd::Closed), "{:?}", report.end);
        assert_eq!(from_server, 2 * MIB);
        assert_eq!(from_client, 3 * MIB);
    });
}

#[test]
fn splice_client_half_close() {
    client_half_close(true);
}

#[test]
fn copy_client_half_close() {
    client_half_close(false);
}

#[test]
fn splice_server_half_close() {
    server_half_close(true);
}

#[test]
fn copy_server_half_close() {
    server_half_close(false);
}

fn abort(s: std::net::TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

/// Reads until an error; returns its kind (end of stream is a failure here).
fn read_until_error(mut s: std::net::TcpStream) -> io::ErrorKind {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => panic!("got end of stream, expected a reset"),
            Ok(_) => {}
            Err(e) => return e.kind(),
        }
    }
}

/// `resetting_side_is_client`: which peer aborts with SO_LINGER 0; the
/// other must then see ECONNRESET.
fn reset_propagates(splice: bool, resetting_side_is_client: bool) {
    executor().run(async move {
        let pipes = PipePool::new(64 * 1024, 16);
        let (got_tx, got_rx) = mpsc::channel::<()>();
        // The aborting peer sends a little, waits until the other peer has
        // it (so the tunnel is established), then aborts.
        let aborter = move |mut s: std::net::TcpStream| {
            s.write_all(b"before reset").unwrap();
            got_rx.recv().unwrap();
            abort(s);
            io::ErrorKind::Other
        };
        let victim = move |mut s: std::net::TcpStream| {
            let mut buf = [0u8; 12];
            s.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"before reset");
            got_tx.send(()).unwrap();
            read_until_error(s)
        };
        let (report, kind) = if resetting_side_is_client {
            let (r, _, k) = tunnel(&settings(splice), &pipes, aborter, victim).await;
            (r, k)
        } else {
            let (r, k, _) = tunnel(&settings(splice), &pipes, victim, aborter).await;
            (r, k)
        };
        assert_eq!(kind, io::ErrorKind::ConnectionReset);
        if resetting_side_is_client {
            assert!(
                matches!(report.end, TunnelEnd::ClientReset),
                "{:?}",
                report.end
            );
        } else {
            assert!(
                matches!(report.end, TunnelEnd::ServerReset),
                "{:?}",
                report.end
            );
        }
    });
}

#[test]
fn splice_client_reset_reaches_server() {
    reset_propagates(true, true);
}

#[test]
fn splice_server_reset_reaches_client() {
    reset_propagates(true, false);
}

#[test]
fn copy_client_reset_reaches_server() {
    reset_propagates(false, true);
}

#[test]
fn copy_server_reset_reaches_client() {
    reset_propagates(false, false);
}

#[test]
fn idle_tunnel_times_out() {
    executor().run(async {
        let pipes = PipePool::new(64 * 1024, 16);
        let mut s = settings(true);
        s.idle_timeout = Some(Duration::from_millis(200));
        // Some traffic first, then silence: each peer reads until the proxy
        // closes its side.
        let peer = |mut s: std::net::TcpStream| {
            s.write_all(b"x").unwrap();
            let mut buf = [0u8; 16];
            let mut total = 0;
            loop {
                match s.read(&mut buf) {
                    Ok(0) => return total,
                    Ok(n) => total += n,
                    Err(e) => panic!("expected end of stream, got {e}"),
                }
            }
        };
        let (report, from_server, from_client) = tunnel(&s, &pipes, peer, peer).await;
        assert!(
            matches!(report.end, TunnelEnd::IdleTimeout),
            "{:?}",
            report.end
        );
        assert_eq!((from_server, from_client), (1, 1));
        assert_eq!((report.client_to_server, report.server_to_client), (1, 1));
    });
}

/// The server reads nothing for a while: the client must end up blocked
/// after a bounded number of bytes (socket buffers + one pipe + one buffer),
/// then everything arrives once the server reads.
fn backpressure(splice: bool) {
    const SOCKBUF: usize = 64 * 1024;
    // Socket buffers (the kernel doubles SO_*BUF) on four sockets, one pipe,
    // one chunk buffer, and slack: still far below "unbounded".
    const BOUND: u64 = 2 * MIB;
    executor().run(async move {
        let pipes = PipePool::new(64 * 1024, 16);
        let (start_tx, start_rx) = mpsc::channel::<()>();
        let client = move |s: std::net::TcpStream| {
            set_buffers(&s, SOCKBUF);
            s.set_nonblocking(true).unwrap();
            let mut p = Pattern::new(9);
            let mut pending: Vec<u8> = Vec::new();
            let mut accepted = 0u64;
            let mut idle_rounds = 0;
            // Stalled = nothing accepted for 20 consecutive 50 ms rounds.
            while idle_rounds < 20 {
                if pending.is_empty() {
                    pending.extend_from_slice(p.take(64 * 1024));
                }
                match (&s).write(&pending) {
                    Ok(n) => {
                        accepted += n as u64;
                        pending.drain(..n);
                        idle_rounds = 0;
                        assert!(accepted < 64 * MIB, "sender never blocked");
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        idle_rounds += 1;
                        thread::sleep(Duration::from_millis(50));
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            start_tx.send(()).unwrap();
            s.set_nonblocking(false).unwrap();
            let mut s = s;
            s.write_all(&pending).unwrap();
            accepted += pending.len() as u64;
            s.shutdown(Shutdown::Write).unwrap();
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).unwrap();
            accepted
        };
        let server = move |mut s: std::net::TcpStream| {
            start_rx.recv().unwrap();
            recv_pattern(&mut s, 9).unwrap()
        };
        let tweak: Tweak = |s| set_buffers(s, SOCKBUF);
        let backend_buffers = |s: &std::net::TcpStream| set_buffers(s, SOCKBUF);
        let (report, sent, received) = tunnel_with(
            &settings(splice),
            &pipes,
            Some(tweak),
            (&[], &[]),
            client,
            move |s| {
                backend_buffers(&s);
                server(s)
            },
        )
        .await;
        assert!(matches!(report.end, TunnelEnd::Closed), "{:?}", report.end);
        assert_eq!(sent, received);
        assert_eq!(report.client_to_server, received);
        let blocked_at = sent; // includes the unsent remainder (< 64 KiB)
        assert!(
            blocked_at < BOUND + 64 * 1024,
            "sender could push {blocked_at} bytes into a non-reading receiver"
        );
    });
}

#[test]
fn splice_backpressure_bounds_buffering() {
    backpressure(true);
}

#[test]
fn copy_backpressure_bounds_buffering() {
    backpressure(false);
}

#[test]
fn prefixes_go_first() {
    for splice in [true, false] {
        executor().run(async move {
            let pipes = PipePool::new(64 * 1024, 16);
            let read_all = |mut s: std::net::TcpStream, send: &'static [u8]| {
                s.write_all(send).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
                let mut v = Vec::new();
                s.read_to_end(&mut v).unwrap();
                v
            };
            let (report, at_client, at_server) = tunnel_with(
                &settings(splice),
                &pipes,
                None,
                (
                    b"GET /ws HTTP/1.1\r\n\r\nearly",
                    b"HTTP/1.1 101 x\r\n\r\nhello",
                ),
                move |s| read_all(s, b" client"),
                move |s| read_all(s, b" server"),
            )
            .await;
            assert!(matches!(report.end, TunnelEnd::Closed), "{:?}", report.end);
            assert_eq!(at_server, b"GET /ws HTTP/1.1\r\n\r\nearly client");
            assert_eq!(at_client, b"HTTP/1.1 101 x\r\n\r\nhello server");
            assert_eq!(report.client_to_server, at_server.len() as u64);
            assert_eq!(report.server_to_client, at_client.len() as u64);
        });
    }
}
