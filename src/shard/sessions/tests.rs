use super::*;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

fn config() -> Config {
    crate::config::load_str(
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
servers = [{ name = "s1", addr = "127.0.0.1:3" }]
[[backend]]
name = "be_http"
mode = "http"
servers = [{ name = "web1", addr = "127.0.0.1:4" }, { name = "web2", addr = "127.0.0.1:5" }]
"#,
        Path::new("t.toml"),
    )
    .unwrap()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn slots_are_reused_and_stale_ids_do_nothing() {
    let sessions = std::rc::Rc::new(Sessions::new(1));
    let a = sessions.register(0, 0, addr("127.0.0.1:1000"), -1);
    let b = sessions.register(0, 0, addr("127.0.0.1:1001"), -1);
    let c = sessions.register(0, 1, addr("127.0.0.1:1002"), -1);
    let (a_id, b_id, c_id) = (a.id(), b.id(), c.id());
    assert_eq!(sessions.len(), 3);
    drop(b);
    assert_eq!(sessions.len(), 2);
    // The freed slot is taken again, under a new unique id.
    let d = sessions.register(0, 1, addr("127.0.0.1:1003"), -1);
    assert_eq!(d.id().index, b_id.index);
    assert_ne!(d.id().uid(), b_id.uid());
    // The old id no longer reaches the slot.
    sessions.set_server(b_id, 1, 0, None);
    assert!(sessions.snapshot().iter().all(|s| s.server.is_none()));
    let uids: Vec<u64> = sessions.snapshot().iter().map(|s| s.uid).collect();
    assert_eq!(uids, [a_id.uid(), c_id.uid(), d.id().uid()]);
    // Unique ids carry the core and count from 1.
    assert_eq!(a_id.uid(), 1 << 48 | 1);
    assert_eq!(d.id().uid(), 1 << 48 | 4);
    assert!(sessions.snapshot().iter().all(|s| core_of(s.uid) == 1));
    drop((a, c, d));
    assert!(sessions.is_empty());
    // Every slot is on the free list: no growth.
    let e = sessions.register(0, 0, addr("127.0.0.1:1004"), -1);
    assert!(e.id().index < 3);
    assert_eq!(sessions.slab.borrow().slots.len(), 3);
}

#[test]
fn server_is_per_request_and_backend_stays() {
    let sessions = std::rc::Rc::new(Sessions::new(0));
    let s = sessions.register(0, 1, addr("127.0.0.1:1000"), -1);
    sessions.set_server(s.id(), 1, 1, None);
    let info = &sessions.snapshot()[0];
    assert_eq!((info.backend, info.server), (Some(1), Some(1)));
    sessions.clear_server(s.id());
    let info = &sessions.snapshot()[0];
    assert_eq!((info.backend, info.server), (Some(1), None));
}

#[test]
fn human_time_matches_haproxy() {
    let cases = [
        (0, "0s"),
        (3, "3s"),
        (59, "59s"),
        (60, "1m"),
        (68, "1m8s"),
        (3600, "1h"),
        (3661, "1h1m"),
        (7322, "2h2m"),
        (86_400, "1d"),
        (86_405, "1d5s"),
        (97_200, "1d3h"),
        (90_061, "1d1h"),
        (86_400 * 400 + 59, "400d59s"),
    ];
    for (secs, text) in cases {
        assert_eq!(human_time(secs), text, "{secs}s");
    }
}

#[test]
fn show_sess_lines_have_haproxy_fields_in_order() {
    let config = [(0, std::sync::Arc::new(config()))];
    let now = Instant::now();
    let at = |secs| now - Duration::from_secs(secs);
    let sessions = [
        SessionInfo {
            uid: 1 << 48 | 7,
            generation: 0,
            frontend: 1,
            client: addr("127.0.0.1:57734"),
            accepted: at(68),
            backend: Some(1),
            server: Some(0),
            killed: false,
        },
        SessionInfo {
            uid: 2,
            generation: 0,
            frontend: 0,
            client: addr("[::1]:56484"),
            accepted: at(1),
            backend: Some(0),
            server: Some(0),
            killed: false,
        },
        SessionInfo {
            uid: 0x1f,
            generation: 0,
            frontend: 1,
            client: addr("10.0.0.1:80"),
            accepted: at(0),
            backend: None,
            server: None,
            killed: false,
        },
    ];
    // HAProxy 2.6 (observed), internal fields cut:
    // 0x55ed070dcb60: proto=tcpv4 src=127.0.0.1:57734 fe=fe_http be=be_http srv=web1 ts=00 epoch=0x1 age=1m8s calls=3 ...
    // 0x560a9b86d500: proto=tcpv6 src=::1:56484 fe=fe6 be=be6 srv=s1 ts=00 epoch=0 age=1s calls=2 ...
    let expected = "\
0x2: proto=tcpv6 src=::1:56484 fe=fe_tcp be=be_tcp srv=s1 age=1s
0x1f: proto=tcpv4 src=10.0.0.1:80 fe=fe_http be=<NONE> srv=<none> age=0s
0x1000000000007: proto=tcpv4 src=127.0.0.1:57734 fe=fe_http be=be_http srv=web1 age=1m8s
";
    assert_eq!(render_show_sess(now, &sessions, &config), expected);
    assert_eq!(render_show_sess(now, &[], &config), "");
}

#[test]
fn show_sess_survives_indexes_the_config_does_not_have() {
    let config = [(0, std::sync::Arc::new(config()))];
    let now = Instant::now();
    let info = SessionInfo {
        uid: 1,
        generation: 0,
        frontend: 9,
        client: addr("127.0.0.1:1"),
        accepted: now,
        backend: Some(9),
        server: Some(9),
        killed: false,
    };
    assert_eq!(
        render_show_sess(now, &[info], &config),
        "0x1: proto=tcpv4 src=127.0.0.1:1 fe=? be=<NONE> srv=<none> age=0s\n"
    );
}

fn info_is_send<T: Send>(_: &T) {}

#[test]
fn killing_shuts_the_sockets_of_the_chosen_sessions_down() {
    let sessions = std::rc::Rc::new(Sessions::new(0));
    let (client_a, mut client_a_peer) = UnixStream::pair().unwrap();
    let (server_a, mut server_a_peer) = UnixStream::pair().unwrap();
    let (client_b, _client_b_peer) = UnixStream::pair().unwrap();
    let a = sessions.register(0, 1, addr("127.0.0.1:1000"), client_a.as_raw_fd());
    let b = sessions.register(0, 1, addr("127.0.0.1:1001"), client_b.as_raw_fd());
    sessions.set_server(a.id(), 1, 0, Some(server_a.as_raw_fd()));
    sessions.set_server(b.id(), 1, 1, None);

    assert_eq!(sessions.kill_where(|e| e.server == Some(0)), 1);
    assert!(sessions.is_killed(a.id()));
    assert!(!sessions.is_killed(b.id()));
    // Both of its sockets report end of stream to their peers at once.
    client_a_peer
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    server_a_peer
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(client_a_peer.read(&mut byte).unwrap(), 0);
    assert_eq!(server_a_peer.read(&mut byte).unwrap(), 0);
    // A killed session is not killed twice.
    assert_eq!(sessions.kill_where(|e| e.server == Some(0)), 0);
    let snap = sessions.snapshot();
    assert!(snap[0].killed && !snap[1].killed);
    info_is_send(&snap);
    drop((a, b));
}

#[test]
fn a_wait_that_is_not_on_a_socket_ends_when_killed() {
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(512 << 10)
        .make()
        .unwrap();
    ex.run(async {
        let sessions = std::rc::Rc::new(Sessions::new(0));
        let registered = sessions.register(0, 0, addr("127.0.0.1:1000"), -1);
        let id = registered.id();
        // A ready future passes through.
        assert_eq!(
            sessions
                .unless_killed(id, std::pin::pin!(async { 5 }))
                .await,
            Some(5)
        );
        let waiter = {
            let sessions = std::rc::Rc::clone(&sessions);
            glommio::spawn_local(async move {
                sessions
                    .unless_killed(id, std::future::pending::<()>())
                    .await
            })
        };
        // Let the waiter park, then kill the session from "outside".
        glommio::executor().yield_now().await;
        assert_eq!(sessions.kill_where(|e| e.uid == id.uid()), 1);
        let ended = futures_lite::future::or(async { Some(waiter.await) }, async {
            glommio::timer::sleep(Duration::from_secs(10)).await;
            None
        })
        .await;
        assert_eq!(ended, Some(None));
        drop(registered);
    });
}

#[test]
fn a_killed_session_logs_k_with_its_phase() {
    use crate::net::{Blame, Cause, Stage};
    let killed = |end| Blame::killed(end).termination_state().to_string();
    assert_eq!(killed(None), "K-");
    assert_eq!(
        killed(Some(Blame::server(Stage::Headers, Cause::Closed))),
        "KH"
    );
    assert_eq!(
        killed(Some(Blame::client(Stage::Data, Cause::Closed))),
        "KD"
    );
    assert_eq!(
        killed(Some(Blame::client(Stage::Request, Cause::Closed))),
        "KR"
    );
}
