//! WebSocket through `mode = "http"`: a real client and server
//! (tungstenite), the upgrade forwarded, then the connection tunnelled.

mod common;

use common::http_backend::*;
use common::*;
use std::net::{TcpListener, TcpStream};
use std::thread;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

fn config() -> WebSocketConfig {
    WebSocketConfig {
        max_frame_size: None,
        max_message_size: Some(64 << 20),
        ..Default::default()
    }
}

/// Accepts WebSocket connections; greets, pings, then echoes every data
/// message. Reports (pongs seen, close received) when a client closes.
fn ws_server() -> (
    std::net::SocketAddr,
    std::sync::mpsc::Receiver<(usize, bool)>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let stream = stream.unwrap();
            let tx = tx.clone();
            thread::spawn(move || {
                let mut ws = tungstenite::accept_with_config(stream, Some(config())).unwrap();
                ws.send(Message::text("hello from server")).unwrap();
                ws.send(Message::Ping(b"srv".to_vec())).unwrap();
                let mut pongs = 0;
                loop {
                    match ws.read() {
                        Ok(Message::Pong(p)) => {
                            assert_eq!(p, b"srv");
                            pongs += 1;
                        }
                        Ok(m @ (Message::Text(_) | Message::Binary(_))) => ws.send(m).unwrap(),
                        Ok(Message::Close(_)) => {
                            // tungstenite answers the close on the next flush.
                            let _ = ws.flush();
                            let _ = tx.send((pongs, true));
                            return;
                        }
                        Ok(_) => {}
                        Err(_) => {
                            let _ = tx.send((pongs, false));
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, rx)
}

fn next_data(ws: &mut WebSocket<TcpStream>) -> Message {
    loop {
        match ws.read().unwrap() {
            m @ (Message::Text(_) | Message::Binary(_)) => return m,
            Message::Pong(p) => assert_eq!(p, b"cli"),
            _ => {}
        }
    }
}

#[test]
fn websocket_messages_pings_and_close_go_through() {
    let (server, closed) = ws_server();
    let proxy = Proxy::start(&http_config(
        "timeout = { tunnel = \"30s\" }",
        &servers(&[server]),
    ));
    let stream = connect(proxy.addr());
    let url = format!("ws://{}/chat", proxy.addr());
    let (mut ws, resp) =
        tungstenite::client::client_with_config(url.as_str(), stream, Some(config())).unwrap();
    assert_eq!(resp.status(), 101);

    assert_eq!(next_data(&mut ws), Message::text("hello from server"));
    ws.send(Message::Ping(b"cli".to_vec())).unwrap();
    ws.send(Message::text("text up")).unwrap();
    assert_eq!(next_data(&mut ws), Message::text("text up"));
    ws.send(Message::binary(vec![0u8, 1, 2, 255])).unwrap();
    assert_eq!(next_data(&mut ws), Message::binary(vec![0u8, 1, 2, 255]));

    let mut big = vec![0u8; 16 << 20];
    Pattern::new(16).fill(&mut big);
    ws.send(Message::binary(big.clone())).unwrap();
    match next_data(&mut ws) {
        Message::Binary(back) => assert!(back == big, "16 MiB message corrupted"),
        other => panic!("unexpected {other:?}"),
    }

    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("close handshake failed: {e}"),
        }
    }
    let (pongs, clean) = closed.recv_timeout(PATIENCE).unwrap();
    assert!(clean, "server saw the close frame");
    assert_eq!(pongs, 1, "server's ping answered through the tunnel");
}

#[test]
fn refused_upgrade_stays_http() {
    let be = HttpBackend::start(|r| {
        if r.target == "/again" {
            assert_eq!(r.header("upgrade"), None);
            return ok("plain");
        }
        assert_eq!(r.header("upgrade"), Some("websocket"), "{:?}", r.headers);
        ok("no upgrade here")
    });
    let proxy = Proxy::start(&http_config("", &servers(&[be.addr])));
    let stream = connect(proxy.addr());
    let url = format!("ws://{}/", proxy.addr());
    let err = tungstenite::client::client(url.as_str(), stream).unwrap_err();
    match err {
        tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 200)
        }
        other => panic!("unexpected {other:?}"),
    }
    // The same connection keeps working as HTTP.
    let mut c = std::io::BufReader::new(connect(proxy.addr()));
    use std::io::Write;
    c.get_mut()
        .write_all(
            b"GET / HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .unwrap();
    let (s, _, body) = read_response(&mut c, false).unwrap();
    assert_eq!((s, body.as_slice()), (200, &b"no upgrade here"[..]));
    c.get_mut()
        .write_all(b"GET /again HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c, false).unwrap().0, 200);
}

/// Found by fuzzing (fuzz/corpus/request_head/regression-*): a Connection
/// field naming another token besides `Upgrade` made the proxy drop the
/// Upgrade field while still forwarding the upgrade, so the server saw
/// no WebSocket request.
#[test]
fn upgrade_whose_connection_names_other_tokens_reaches_the_server() {
    let (server, closed) = ws_server();
    let proxy = Proxy::start(&http_config(
        "timeout = { tunnel = \"30s\" }",
        &servers(&[server]),
    ));
    let stream = connect(proxy.addr());
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{}/chat",
        proxy.addr()
    ))
    .unwrap();
    request.headers_mut().insert(
        "Connection",
        "keep-alive, Upgrade, X-Trace".parse().unwrap(),
    );
    request
        .headers_mut()
        .insert("X-Trace", "hop-by-hop".parse().unwrap());
    let (mut ws, resp) =
        tungstenite::client::client_with_config(request, stream, Some(config())).unwrap();
    assert_eq!(resp.status(), 101);
    assert_eq!(next_data(&mut ws), Message::text("hello from server"));
    ws.send(Message::text("up")).unwrap();
    assert_eq!(next_data(&mut ws), Message::text("up"));
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    let (_, clean) = closed.recv_timeout(PATIENCE).unwrap();
    assert!(clean, "server saw the close frame");
}
