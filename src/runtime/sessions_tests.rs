//! The session registry and error snapshots driven through a real core's
//! session path (`core::serve_connection`, what the accept loop runs) over
//! loopback sockets, with the runtime API's per-core calls made from the
//! core's own thread as the API will make them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::core::serve_connection;
use crate::config::Mode;
use crate::net::Conn;
use crate::shard::error_snapshot::{snapshot_errors, Direction};
use crate::shard::sessions::{
    shutdown_server_sessions, shutdown_session, snapshot_sessions, SessionInfo,
};
use crate::shard::CoreContext;

/// Fails a hung test; never a speed requirement.
const HANG: Duration = Duration::from_secs(20);

fn core(backend: SocketAddr) -> Rc<CoreContext> {
    let config = crate::config::load_str(
        &format!(
            r#"
[[frontend]]
name = "fe_tcp"
mode = "tcp"
bind = ["127.0.0.1:1"]
default_backend = "be_tcp"
[[frontend]]
name = "fe_http"
mode = "http"
bind = ["127.0.0.1:2"]
default_backend = "be_http"
[[backend]]
name = "be_tcp"
mode = "tcp"
servers = [{{ name = "s1", addr = "{backend}" }}]
[[backend]]
name = "be_http"
mode = "http"
servers = [{{ name = "web1", addr = "{backend}" }}]
[[frontend]]
name = "fe_queue"
mode = "tcp"
bind = ["127.0.0.1:3"]
default_backend = "be_queue"
[[backend]]
name = "be_queue"
mode = "tcp"
timeout = {{ queue = "30s" }}
servers = [{{ name = "q1", addr = "{backend}", maxconn = 1 }}]
"#
        ),
        Path::new("t.toml"),
    )
    .unwrap();
    Rc::new(CoreContext::new(Arc::new(config), 0, 1))
}

/// A backend on its own thread: `serve` gets each accepted connection.
fn backend(serve: fn(TcpStream)) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || serve(conn));
        }
    });
    addr
}

/// Echoes until the proxy closes, then says so on the channel in `EOF`.
fn echo_until_closed(mut conn: TcpStream) {
    let mut buf = [0u8; 1024];
    while let Ok(n @ 1..) = conn.read(&mut buf) {
        if conn.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// Reads a request head and never answers.
fn silent(mut conn: TcpStream) {
    let mut buf = [0u8; 1024];
    while let Ok(1..) = conn.read(&mut buf) {}
}

/// Answers every request head with a small response.
fn answers(mut conn: TcpStream) {
    let mut buf = [0u8; 1024];
    while let Ok(1..) = conn.read(&mut buf) {
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
}

/// Answers with an invalid response head.
fn invalid(mut conn: TcpStream) {
    let mut buf = [0u8; 1024];
    if let Ok(1..) = conn.read(&mut buf) {
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Header\r\n\r\nok");
    }
}

/// A client connected to the core: the accepted side as the core's `Conn`
/// and its address, and the client's socket (on which a test's blocking
/// reads must happen off the executor thread).
fn connect_client() -> (Conn, SocketAddr, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, peer) = listener.accept().unwrap();
    accepted.set_nonblocking(true).unwrap();
    let conn = Conn::from_socket(socket2::Socket::from(accepted)).unwrap();
    client.set_read_timeout(Some(HANG)).unwrap();
    (conn, peer, client)
}

/// Reads what `client` receives until the proxy closes, on a thread.
fn read_to_close(mut client: TcpStream) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut got = Vec::new();
        let _ = client.read_to_end(&mut got);
        let _ = tx.send(got);
    });
    rx
}

// The HTTP tests send their request before the session starts: a
// connection with nothing to read yet is handed back to wait without a task
// (`Ending::Idle`, which the accept loop parks), and these tests run
// `serve_connection` without the core's parking lot.

async fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ok() {
        assert!(start.elapsed() < HANG, "never: {what}");
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
}

async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    futures_lite::future::or(fut, async {
        glommio::timer::sleep(HANG).await;
        panic!("never ended: {what}");
    })
    .await
}

fn run(test: impl std::future::Future<Output = ()> + 'static) {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(512 << 10)
        .make()
        .unwrap()
        .run(test);
}

fn with_server(ctx: &CoreContext) -> Vec<SessionInfo> {
    snapshot_sessions(ctx)
        .into_iter()
        .filter(|s| s.server.is_some())
        .collect()
}

#[test]
fn shutting_down_a_servers_sessions_ends_a_tcp_tunnel() {
    let ctx = core(backend(echo_until_closed));
    run(async move {
        let (conn, peer, mut client) = connect_client();
        let task = glommio::spawn_local({
            let ctx = Rc::clone(&ctx);
            async move {
                serve_connection(ctx, (0, 0), Mode::Tcp, conn, peer).await;
            }
        });
        // Bytes go through the tunnel both ways before the kill.
        client.write_all(b"ping").unwrap();
        let (echoed_tx, echoed) = mpsc::channel();
        let (rest_tx, rest) = mpsc::channel();
        thread::spawn(move || {
            let mut ping = [0u8; 4];
            let _ = echoed_tx.send(client.read_exact(&mut ping).map(|_| ping).ok());
            let mut after = Vec::new();
            let _ = client.read_to_end(&mut after);
            let _ = rest_tx.send(after);
        });
        let ping = bounded("the echo", async {
            loop {
                match echoed.try_recv() {
                    Ok(got) => return got,
                    Err(_) => glommio::timer::sleep(Duration::from_millis(5)).await,
                }
            }
        })
        .await;
        assert_eq!(ping, Some(*b"ping"));
        let listed = with_server(&ctx);
        assert_eq!(listed[0].client, peer);
        assert_eq!((listed[0].backend, listed[0].server), (Some(0), Some(0)));

        // Another server's sessions are left alone.
        assert_eq!(shutdown_server_sessions(&ctx, &[(0, 1, 0)]), 0);
        assert_eq!(shutdown_server_sessions(&ctx, &[(0, 0, 0)]), 1);
        bounded("the killed tunnel", task).await;
        assert!(snapshot_sessions(&ctx).is_empty());
        // The client saw the close, and nothing more.
        assert!(rest.recv_timeout(HANG).unwrap().is_empty());
        // The session was settled as any other: no server session left.
        let stats = ctx.stats.borrow();
        assert_eq!(stats.servers[0][0].sessions_cur, 0);
        assert_eq!(stats.backends[0].sessions_cur, 0);
    });
}

#[test]
fn shutting_down_a_session_ends_an_http_exchange_waiting_for_its_response() {
    let ctx = core(backend(silent));
    run(async move {
        let (conn, peer, mut client) = connect_client();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        let task = glommio::spawn_local({
            let ctx = Rc::clone(&ctx);
            async move {
                serve_connection(ctx, (1, 0), Mode::Http, conn, peer).await;
            }
        });
        let received = read_to_close(client);
        until("the request has its server", || {
            !with_server(&ctx).is_empty()
        })
        .await;
        let uid = with_server(&ctx)[0].uid;
        assert!(!shutdown_session(&ctx, uid + 1));
        assert!(shutdown_session(&ctx, uid));
        bounded("the killed exchange", task).await;
        assert!(snapshot_sessions(&ctx).is_empty());
        // The connection closed without a response (the client side was
        // shut down with the rest).
        assert!(received.recv_timeout(HANG).unwrap().is_empty());
        assert_eq!(ctx.stats.borrow().servers[1][0].sessions_cur, 0);
    });
}

#[test]
fn an_http_connection_between_requests_uses_no_server() {
    let ctx = core(backend(answers));
    run(async move {
        let (conn, peer, mut client) = connect_client();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        let task = glommio::spawn_local({
            let ctx = Rc::clone(&ctx);
            async move {
                serve_connection(ctx, (1, 0), Mode::Http, conn, peer).await;
            }
        });
        // Read off the executor's thread, which must keep running the
        // session meanwhile.
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut response = [0u8; 64];
            let mut got = 0;
            while !response[..got].ends_with(b"ok") {
                match client.read(&mut response[got..]) {
                    Ok(n @ 1..) => got += n,
                    _ => break,
                }
            }
            let _ = tx.send((response[..got].ends_with(b"ok"), client));
        });
        let (answered, client) = bounded("the response", async {
            loop {
                match rx.try_recv() {
                    Ok(got) => return got,
                    Err(_) => glommio::timer::sleep(Duration::from_millis(5)).await,
                }
            }
        })
        .await;
        assert!(answered);
        // The response is delivered: the connection waits for another
        // request with no server in use, its last backend still named.
        until("the server is given back", || {
            let listed = snapshot_sessions(&ctx);
            listed.len() == 1 && listed[0].server.is_none()
        })
        .await;
        assert_eq!(snapshot_sessions(&ctx)[0].backend, Some(1));
        assert_eq!(shutdown_server_sessions(&ctx, &[(0, 1, 0)]), 0);
        // Idle, it still can be shut down by id.
        let uid = snapshot_sessions(&ctx)[0].uid;
        let received = read_to_close(client);
        assert!(shutdown_session(&ctx, uid));
        bounded("the killed idle connection", task).await;
        assert!(received.recv_timeout(HANG).unwrap().is_empty());
        assert!(snapshot_sessions(&ctx).is_empty());
    });
}

#[test]
fn invalid_heads_are_captured_where_they_are_refused() {
    let ctx = core(backend(invalid));
    run(async move {
        // An invalid request: 400, kept by the frontend.
        let (conn, peer, mut client) = connect_client();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n")
            .unwrap();
        let task = glommio::spawn_local({
            let ctx = Rc::clone(&ctx);
            async move {
                serve_connection(ctx, (1, 0), Mode::Http, conn, peer).await;
            }
        });
        let received = read_to_close(client);
        bounded("the refused request", task).await;
        assert!(received
            .recv_timeout(HANG)
            .unwrap()
            .starts_with(b"HTTP/1.1 400 "));

        // An invalid response: 502, kept by the backend.
        let (conn, peer2, mut client) = connect_client();
        client
            .write_all(b"GET /x HTTP/1.1\r\nHost: b\r\n\r\n")
            .unwrap();
        let task = glommio::spawn_local({
            let ctx = Rc::clone(&ctx);
            async move {
                serve_connection(ctx, (1, 0), Mode::Http, conn, peer2).await;
            }
        });
        let received = read_to_close(client);
        bounded("the refused response", task).await;
        assert!(received
            .recv_timeout(HANG)
            .unwrap()
            .starts_with(b"HTTP/1.1 502 "));

        let snap = snapshot_errors(&ctx);
        assert_eq!(snap.captured, 2);
        let req = &snap.errors[0];
        assert_eq!(req.direction, Direction::Request);
        assert_eq!((req.frontend, req.backend, req.client), (1, None, peer));
        assert_eq!(req.position, 28);
        assert_eq!(
            req.bytes,
            b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n"
        );
        let resp = &snap.errors[1];
        assert_eq!(resp.direction, Direction::Response);
        assert_eq!(
            (resp.backend, resp.server, resp.client),
            (Some(1), Some(0), peer2)
        );
        assert_eq!(resp.position, 39);
        assert!(resp.bytes.starts_with(b"HTTP/1.1 200 OK\r\n"));
        // Refused requests are still counted as before.
        assert_eq!(ctx.stats.borrow().frontends[1].request_errors, 1);
    });
}

#[test]
fn a_session_waiting_in_the_backend_queue_can_be_shut_down() {
    let ctx = core(backend(echo_until_closed));
    run(async move {
        // The first session takes the server's only slot.
        let (conn, peer, first_client) = connect_client();
        let first = glommio::spawn_local({
            let ctx = Rc::clone(&ctx);
            async move {
                serve_connection(ctx, (2, 0), Mode::Tcp, conn, peer).await;
            }
        });
        until("the first session has the server", || {
            !with_server(&ctx).is_empty()
        })
        .await;
        // The second waits in the queue: no socket of its own is involved.
        let (conn, queued_peer, queued_client) = connect_client();
        let queued = glommio::spawn_local({
            let ctx = Rc::clone(&ctx);
            async move {
                serve_connection(ctx, (2, 0), Mode::Tcp, conn, queued_peer).await;
            }
        });
        until("the second session is listed", || {
            snapshot_sessions(&ctx).len() == 2
        })
        .await;
        glommio::timer::sleep(Duration::from_millis(20)).await;
        let waiting = snapshot_sessions(&ctx)
            .into_iter()
            .find(|s| s.client == queued_peer)
            .unwrap();
        assert_eq!((waiting.backend, waiting.server), (Some(2), None));
        assert!(shutdown_session(&ctx, waiting.uid));
        bounded("the queued session", queued).await;
        assert!(read_to_close(queued_client)
            .recv_timeout(HANG)
            .unwrap()
            .is_empty());
        // The first one is untouched, until its server's sessions go.
        assert_eq!(with_server(&ctx).len(), 1);
        assert_eq!(shutdown_server_sessions(&ctx, &[(0, 2, 0)]), 1);
        bounded("the first session", first).await;
        drop(first_client);
        assert!(snapshot_sessions(&ctx).is_empty());
    });
}
