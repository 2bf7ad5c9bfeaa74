//! `net::Conn` over real 127.0.0.1 sockets: an accepted socket joins the
//! core's epoll without write interest, so a write that fills the socket
//! buffer must add it and still be woken when the peer drains.

mod net_support;

use std::io::Read;
use std::net::TcpListener as StdListener;
use std::pin::pin;
use std::thread;

use futures_lite::future::poll_once;
use futures_lite::io::AsyncWriteExt;
use net_support::{executor, HANG};
use percore::net::Conn;

#[test]
fn a_write_that_fills_the_socket_completes_once_the_peer_reads() {
    executor().run(async {
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        accepted.set_nonblocking(true).unwrap();
        let mut conn = Conn::from_socket(socket2::Socket::from(accepted)).unwrap();

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
