//! `net::Conn` over real 127.0.0.1 sockets. An accepted socket joins the
//! core's epoll only on its first wait, and without write interest: a
//! write that fills the socket buffer must add it and still be woken when
//! the peer drains, and bytes that arrived while the socket was not in the
//! set must wake the read that waits for them.

mod net_support;

use std::io::{Read, Write};
use std::net::TcpListener as StdListener;
use std::pin::pin;
use std::thread;

use futures_lite::future::poll_once;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use net_support::{executor, HANG};
use percore::net::Conn;

#[test]
fn a_write_that_fills_the_socket_completes_once_the_peer_reads() {
    executor().run(async {
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        let (mut conn, peer) = accept_pair(&listener);

        // Fill the socket buffers until a write would block.
        let chunk = vec![7u8; 256 << 10];
        let mut sent = 0usize;
        loop {
            let mut write = pin!(conn.write(&chunk));
            match poll_once(&mut write).await {
                Some(Ok(n)) => sent += n,
                Some(Err(e)) => panic!("write failed: {e}"),
                None => break,
            }
            assert!(sent < 1 << 30, "the socket never filled");
        }

        // The peer drains everything only now; the waiting write must
        // be woken by the room it makes.
        let reader = thread::spawn(move || {
            let mut peer = peer;
            let mut total = 0usize;
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match peer.read(&mut buf).unwrap() {
                    0 => return total,
                    n => total += n,
                }
            }
        });
        // The write runs in its own task, so that nothing but its socket's
        // readiness wakes it (the hang guard's timer would re-poll it).
        let writer = glommio::spawn_local(async move {
            conn.write_all(&chunk).await.unwrap();
            chunk.len()
        });
        let hang = async {
            glommio::timer::sleep(HANG).await;
            panic!("the blocked write was never woken");
        };
        sent += futures_lite::future::or(hang, writer).await;
        assert_eq!(reader.join().unwrap(), sent);
    });
}

#[test]
fn bytes_that_arrive_before_the_first_wait_wake_the_read() {
    executor().run(async {
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        let (mut conn, mut peer) = accept_pair(&listener);

        // The first read finds its bytes without waiting (a request that
        // came with the connection): the socket stays out of the epoll set.
        peer.write_all(b"first").unwrap();
        let mut buf = [0u8; 64];
        let mut got = 0;
        while got < 5 {
            got += conn.read(&mut buf[got..]).await.unwrap();
        }
        assert_eq!(&buf[..5], b"first");

        // These arrive while nothing watches the socket; the short read
        // above said "drained", so the next read goes straight to waiting,
        // and joining the set then must report them.
        peer.write_all(b"second").unwrap();
        let reader = glommio::spawn_local(async move {
            let mut buf = [0u8; 64];
            let n = conn.read(&mut buf).await.unwrap();
            buf[..n].to_vec()
        });
        let hang = async {
            glommio::timer::sleep(HANG).await;
            panic!("bytes that came before the first wait never woke the read");
        };
        let second = futures_lite::future::or(hang, reader).await;
        assert_eq!(second, b"second");

        // And a wait that starts before the bytes come is woken by them.
        let (mut conn2, mut peer2) = accept_pair(&listener);
        thread::spawn(move || {
            // Sent from another thread once the read below is waiting or
            // about to: either way it must complete.
            peer2.write_all(b"later").unwrap();
        });
        let reader = glommio::spawn_local(async move {
            let mut buf = [0u8; 64];
            let mut got = 0;
            while got < 5 {
                got += conn2.read(&mut buf[got..]).await.unwrap();
            }
            buf[..5].to_vec()
        });
        let hang = async {
            glommio::timer::sleep(HANG).await;
            panic!("a waiting read on a socket outside the epoll set was never woken");
        };
        assert_eq!(futures_lite::future::or(hang, reader).await, b"later");
    });
}

/// A connection accepted on `listener` as a `Conn` (not yet in the core's
/// epoll) and its peer.
fn accept_pair(listener: &StdListener) -> (Conn, std::net::TcpStream) {
    let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    accepted.set_nonblocking(true).unwrap();
    let conn = Conn::from_socket(socket2::Socket::from(accepted)).unwrap();
    (conn, peer)
}
