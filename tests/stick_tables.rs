//! Stick tables against the real binary on two cores: rate limits by
//! client address and by API key that stay exact however the kernel
//! spreads connections over the cores (each key is counted by one owner
//! core), connection-level tracking from `tcp-request`, gpc0/gpt0, the
//! size bound and expiry, and the runtime API's `show table`, `clear
//! table`, `set table`.

mod common;

use std::collections::HashSet;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use common::http_backend::{read_response, HttpBackend};
use common::{socat, Proxy};

/// percore on two cores with an admin socket, `fe` holding `fe_extra`.
fn start(fe_extra: &str, extra_sections: &str) -> (Proxy, PathBuf, HttpBackend, tempfile::TempDir) {
    let backend = HttpBackend::ok();
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("admin.sock");
    let config = format!(
        r#"
[global]
threads = 2
maxconn = 5000
stats-socket = [{{ path = "{admin}", level = "admin" }}]

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "30s", server = "30s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "be"
{fe_extra}

[[backend]]
name = "be"
servers = [{{ name = "s1", addr = "{addr}" }}]
{extra_sections}
"#,
        admin = admin.display(),
        addr = backend.addr,
    );
    let proxy = Proxy::start(&config);
    (proxy, admin, backend, dir)
}

/// One request by curl (a new connection each time); the status.
fn curl_status(proxy: &Proxy, headers: &[&str]) -> u16 {
    let mut cmd = std::process::Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "30",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd
        .arg(format!("http://{}/", proxy.addr()))
        .output()
        .expect("curl is installed (.ci/run installs it)");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// One request on a new connection; the status.
fn get(proxy: &Proxy, headers: &str) -> u16 {
    let mut c = TcpStream::connect(proxy.addr()).unwrap();
    write!(
        c,
        "GET / HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut rd = BufReader::new(c);
    read_response(&mut rd, false).map_or(0, |(status, _, _)| status)
}

/// Cores whose sessions `show sess` lists (a session id is core << 48 | n).
fn cores_with_sessions(admin: &Path) -> HashSet<u64> {
    socat(admin, "show sess")
        .lines()
        .filter_map(|l| l.split(':').next())
        .filter_map(|id| u64::from_str_radix(id.trim_start_matches("0x"), 16).ok())
        .map(|id| id >> 48)
        .collect()
}

/// Opens connections until both cores hold some (the kernel spreads
/// them by hash of the addresses), and returns them still open.
fn connections_on_both_cores(proxy: &Proxy, admin: &Path) -> Vec<TcpStream> {
    let mut open = Vec::new();
    for _ in 0..20 {
        for _ in 0..8 {
            open.push(TcpStream::connect(proxy.addr()).unwrap());
        }
        if cores_with_sessions(admin).len() == 2 {
            return open;
        }
    }
    panic!("160 connections all landed on one core");
}

const RATE_LIMIT: &str = r#"stick-table = "type ip size 100k expire 60s store http_req_rate(60s)"
http-request = [
  "track-sc0 src",
  "deny deny_status 429 if { sc_http_req_rate(0) gt 10 }",
]"#;

#[test]
fn rate_limit_by_source_is_exact_across_cores() {
    let (proxy, admin, backend, _dir) = start(RATE_LIMIT, "");
    // Both cores accept this client's connections.
    let held = connections_on_both_cores(&proxy, &admin);
    drop(held);
    let statuses: Vec<u16> = (0..40).map(|_| get(&proxy, "")).collect();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    // Rate over 60 s, the first 10 admitted, not 10 per core.
    assert_eq!((ok, limited), (10, 30), "{statuses:?}");
    assert_eq!(backend.received().len(), 10);
    let table = socat(&admin, "show table fe");
    assert!(
        table.starts_with("# table: fe, type: ip, size:102400, used:1\n"),
        "{table}"
    );
    assert!(table.contains("key=127.0.0.1 use=0 exp="), "{table}");
    assert!(table.contains("http_req_rate(60000)=40"), "{table}");
}

#[test]
fn rate_limit_per_api_key_is_exact_across_cores() {
    let (proxy, admin, _backend, _dir) = start(
        r#"http-request = [
  "track-sc1 req.hdr(x-api-key) table keys",
  "deny deny_status 429 if { sc_http_req_rate(1) gt 5 }",
]"#,
        r#"[[backend]]
name = "keys"
stick-table = "type string len 32 size 1k expire 60s store http_req_rate(60s),http_req_cnt""#,
    );
    drop(connections_on_both_cores(&proxy, &admin));
    // Two keys interleaved, each on many connections: each gets its 5.
    let mut ok = [0, 0];
    for i in 0..30 {
        let k = i % 2;
        if get(&proxy, &format!("X-Api-Key: key-{k}\r\n")) == 200 {
            ok[k] += 1;
        }
    }
    assert_eq!(ok, [5, 5]);
    // No key: no track, no limit.
    assert!((0..8).all(|_| get(&proxy, "") == 200));
    let table = socat(&admin, "show table keys");
    assert!(table.contains("used:2\n"), "{table}");
    assert!(
        table.contains("key=key-0 use=0 exp=")
            && table.contains("http_req_cnt=15 http_req_rate(60000)=15"),
        "{table}"
    );
    // Only the entries over a rate, then one key cleared.
    let entries = |filter: &str| {
        socat(&admin, &format!("show table keys {filter}"))
            .matches(" key=")
            .count()
    };
    assert_eq!(
        entries("data.http_req_cnt gt 14 data.http_req_rate ge 15"),
        2
    );
    assert_eq!(entries("data.http_req_cnt gt 15"), 0);
    assert_eq!(socat(&admin, "clear table keys key key-0"), "\n");
    let table = socat(&admin, "show table keys");
    assert!(
        table.contains("used:1\n") && !table.contains("key-0"),
        "{table}"
    );
    assert_eq!(get(&proxy, "X-Api-Key: key-0\r\n"), 200);
}

/// `show table` answers as HAProxy 2.6's does, errors included.
#[test]
fn runtime_api_set_and_errors() {
    let (proxy, admin, _backend, _dir) = start(
        r#"stick-table = "type ip size 100 store gpc0,gpt0,http_req_rate(10s)"
http-request = [
  "track-sc0 src",
  "deny deny_status 403 if { sc_get_gpt0(0) eq 7 }",
]"#,
        "",
    );
    assert_eq!(socat(&admin, "show table nope"), "No such table\n\n");
    assert_eq!(
        socat(&admin, "show table fe data.foo gt 1"),
        "Filter entry #1: Unknown data type\n\n"
    );
    assert_eq!(
        socat(&admin, "show table fe data.gpc0 zz 1"),
        "Filter entry #1: Require and operator among \"eq\", \"ne\", \"le\", \"ge\", \"lt\", \"gt\"\n\n"
    );
    assert_eq!(
        socat(&admin, "set table fe key 1.2.3.4 data.conn_cnt 1"),
        "Data type not stored in this table\n\n"
    );
    assert_eq!(
        socat(&admin, "set table fe key 1.2.3.4 data.gpc0 x"),
        "Require a valid integer value to store\n\n"
    );
    assert_eq!(
        socat(&admin, "clear table fe key"),
        "Key value expected\n\n"
    );
    assert_eq!(
        socat(
            &admin,
            "set table fe key 1.2.3.4 data.http_req_rate 7 data.gpc0 3"
        ),
        "\n"
    );
    assert_eq!(get(&proxy, ""), 200);
    // The client's own entry, set from the CLI, read by the next request.
    assert_eq!(
        socat(&admin, "set table fe key 127.0.0.1 data.gpt0 7"),
        "\n"
    );
    assert_eq!(get(&proxy, ""), 403);
    let table = socat(&admin, "show table fe");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "# table: fe, type: ip, size:100, used:2");
    // Key order, as HAProxy's tree.
    assert!(
        lines[1].contains(": key=1.2.3.4 use=0 exp=0 gpt0=0 gpc0=3 http_req_rate(10000)=7"),
        "{table}"
    );
    assert!(
        lines[2].contains(": key=127.0.0.1 use=0 exp=0 gpt0=7 gpc0=0 http_req_rate(10000)=2"),
        "{table}"
    );
    assert_eq!(
        socat(&admin, "show table"),
        "# table: fe, type: ip, size:100, used:2\n\n"
    );
    assert_eq!(socat(&admin, "clear table fe data.gpc0 gt 2"), "\n");
    assert!(socat(&admin, "show table fe").contains("used:1\n"));
}

#[test]
fn connection_tracking_limits_concurrent_connections() {
    let backend = common::Backend::echo();
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("admin.sock");
    let config = format!(
        r#"
[global]
threads = 2
stats-socket = [{{ path = "{admin}", level = "admin" }}]

[defaults]
mode = "tcp"
timeout = {{ connect = "2s", client = "30s", server = "30s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "be"
stick-table = "type ip size 1k store conn_cur,conn_cnt,conn_rate(60s),sess_cnt"
tcp-request = [
  "connection track-sc0 src",
  "connection reject if {{ sc_trackers(0) gt 3 }}",
]

[[backend]]
name = "be"
servers = [{{ name = "s1", addr = "{addr}" }}]
"#,
        admin = admin.display(),
        addr = backend.addr,
    );
    let proxy = Proxy::start(&config);
    // Served: the echo answers; refused: closed without a byte.
    let echo = |c: &mut TcpStream| {
        use std::io::Read;
        c.set_read_timeout(Some(common::PATIENCE)).unwrap();
        let mut buf = [0u8; 2];
        c.write_all(b"hi").is_ok() && c.read_exact(&mut buf).is_ok() && &buf == b"hi"
    };
    let mut held: Vec<TcpStream> = (0..3).map(|_| common::connect(proxy.addr())).collect();
    assert!(held.iter_mut().all(echo));
    // The fourth concurrent connection is one too many, whichever core
    // takes it.
    for _ in 0..6 {
        let mut c = common::connect(proxy.addr());
        assert!(!echo(&mut c), "a fourth connection was served");
    }
    let table = socat(&admin, "show table fe");
    assert!(
        table.contains("use=3 exp=0 conn_cnt=9 conn_rate(60000)=9 conn_cur=3 sess_cnt=9"),
        "{table}"
    );
    // One closes: its count goes back (asynchronously, from the core that
    // served it), then another may come in.
    drop(held.pop());
    let deadline = std::time::Instant::now() + common::PATIENCE;
    loop {
        let mut c = common::connect(proxy.addr());
        if echo(&mut c) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no room after a close"
        );
    }
}

#[test]
fn gpc0_src_fetches_and_short_circuit() {
    let (proxy, admin, _backend, _dir) = start(
        r#"stick-table = "type ip size 100 expire 60s store gpc0,http_req_rate(60s)"
http-request = [
  "track-sc0 src",
  "allow if { path /unban } { sc_clr_gpc0(0) gt 0 }",
  "deny deny_status 403 if { src_get_gpc0 gt 0 }",
  "sc-inc-gpc0(0) if { path /ban }",
  "deny deny_status 429 if { sc_http_req_rate(0) gt 100 } { sc_inc_gpc0(0) gt 0 }",
]"#,
        "",
    );
    drop(connections_on_both_cores(&proxy, &admin));
    assert!((0..3).all(|_| get(&proxy, "") == 200));
    // The rate is under 100: `sc_inc_gpc0` after it was never evaluated.
    assert!(socat(&admin, "show table fe").contains(" gpc0=0 "));
    let ban = {
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        write!(
            c,
            "GET /ban HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        read_response(&mut BufReader::new(c), false).map_or(0, |r| r.0)
    };
    assert_eq!(ban, 200);
    assert!(socat(&admin, "show table fe").contains(" gpc0=1 "));
    // Now `src_get_gpc0` (a lookup at the owner core) denies, whichever
    // core takes the connection.
    assert!((0..6).all(|_| get(&proxy, "") == 403));
    // `sc_clr_gpc0` answers the count before clearing it.
    let path = |p: &str| {
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        write!(
            c,
            "GET {p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        read_response(&mut BufReader::new(c), false).map_or(0, |r| r.0)
    };
    assert_eq!(path("/unban"), 200);
    assert!(socat(&admin, "show table fe").contains(" gpc0=0 "));
    assert_eq!(get(&proxy, ""), 200);
    // Cleared already: 0, the rule does not allow, the deny does not hit.
    assert_eq!(path("/unban"), 200);
}

#[test]
fn size_bounds_the_table_and_entries_expire() {
    let (proxy, admin, _backend, _dir) = start(
        r#"http-request = ["track-sc2 req.hdr(x-k) table flood"]"#,
        r#"[[backend]]
name = "flood"
stick-table = "type string size 50 expire 2s store http_req_cnt""#,
    );
    // 1,000 distinct keys on one keep-alive connection.
    let c = TcpStream::connect(proxy.addr()).unwrap();
    let mut rd = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    for i in 0..1000 {
        write!(w, "GET / HTTP/1.1\r\nHost: x\r\nX-K: k{i}\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut rd, false).map(|r| r.0), Some(200));
    }
    let used = |admin: &Path| -> usize {
        let t = socat(admin, "show table flood");
        let first = t.lines().next().unwrap_or_default().to_string();
        first
            .rsplit("used:")
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{t}"))
    };
    let now = used(&admin);
    assert!((40..=50).contains(&now), "{now} entries for size 50");
    // The most recent keys are there, the oldest pushed out.
    let t = socat(&admin, "show table flood");
    assert!(t.contains("key=k999 ") && !t.contains("key=k0 "), "{t}");
    // Nothing updated for 2 s and no connection tracking any: all go.
    drop((w, rd));
    let deadline = std::time::Instant::now() + common::PATIENCE;
    while used(&admin) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "entries never expired"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn tables_survive_a_reload_when_unchanged() {
    let (proxy, admin, _backend, dir) = start(RATE_LIMIT, "");
    assert!((0..4).all(|_| get(&proxy, "") == 200));
    let path = proxy.dir.path().join("percore.toml");
    let first = std::fs::read_to_string(&path).unwrap();
    // Another rule changes; the table's definition does not.
    let second = first.replace(
        "\"track-sc0 src\",",
        "\"track-sc0 src\",\n  \"set-header X-Seen 1\",",
    );
    std::fs::write(&path, &second).unwrap();
    assert!(socat(&admin, "reload").starts_with("Success=1"));
    assert!(socat(&admin, "show table fe").contains("http_req_rate(60000)=4"));
    assert!((0..6).all(|_| get(&proxy, "") == 200));
    assert_eq!(
        get(&proxy, ""),
        429,
        "the 11th request over both generations"
    );
    // A changed definition starts empty.
    std::fs::write(&path, second.replace("size 100k", "size 200k")).unwrap();
    assert!(socat(&admin, "reload").starts_with("Success=1"));
    let t = socat(&admin, "show table fe");
    assert!(
        t.starts_with("# table: fe, type: ip, size:204800, used:0\n"),
        "{t}"
    );
    assert_eq!(get(&proxy, ""), 200);
    drop(dir);
}

#[test]
fn configuration_errors_point_at_the_word() {
    use percore::config::load_str;
    let base = |fe: &str| {
        format!(
            "[global]\nthreads = 1\n[defaults]\nmode = \"http\"\ntimeout = {{ connect = \"1s\", client = \"1s\", server = \"1s\" }}\n\
             [[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:1\"]\ndefault_backend = \"be\"\n{fe}\n\
             [[backend]]\nname = \"be\"\nservers = [{{ name = \"s\", addr = \"127.0.0.1:2\" }}]\n"
        )
    };
    let cases = [
        (
            "stick-table = \"type ip size 1m store http_req_rat(10s)\"",
            "unknown stick-table data type `http_req_rat`",
            "did you mean `http_req_rate`?",
            "http_req_rat(",
        ),
        (
            "stick-table = \"type ip size 1m store http_req_rate\"",
            "`http_req_rate` needs its period",
            "http_req_rate(10s)",
            "http_req_rate\"",
        ),
        (
            "http-request = [\"track-sc0 src\"]",
            "this section has no stick-table",
            "add stick-table",
            "track-sc0",
        ),
        (
            "stick-table = \"type ip size 10 store gpc0\"\nhttp-request = [\"track-sc3 src\"]",
            "bad counter number `3`",
            "counters are 0, 1 and 2",
            "track-sc3",
        ),
        (
            "stick-table = \"type ip size 10 store gpc0\"\nhttp-request = [\"track-sc0 src table nope\"]",
            "no stick table named \"nope\"",
            "tables: \"fe\"",
            "nope",
        ),
        (
            "stick-table = \"type ip size 10 store gpc0\"\nhttp-request = [\"deny if { sc_get_gpc0(5) gt 0 }\"]",
            "bad counter number `5`",
            "counters are 0, 1 and 2",
            "sc_get_gpc0",
        ),
        (
            "stick-table = \"type ip size 10 store gpc0\"\nhttp-request = [\"deny if { src,table_gpc0(nope) gt 0 }\"]",
            "no stick table named \"nope\"",
            "tables: \"fe\"",
            "nope",
        ),
        (
            "stick-table = \"type ip size 10 store gpc0\"\nhttp-request = [\"set-header X-R %[src,table_http_req_rate(fe)]\"]",
            "`table_http_req_rate`: table \"fe\" does not store http_req_rate",
            "add http_req_rate to its stick-table store list (it stores: \"gpc0\")",
            "fe)",
        ),
        (
            "stick-table = \"type ip size 10 store gpc0\"\nhttp-request = [\"deny if { src,table_http_req_rat(fe) gt 0 }\"]",
            "unknown converter `table_http_req_rat`",
            "did you mean `table_http_req_rate`?",
            "table_http_req_rat",
        ),
    ];
    for (fe, message, hint, needle) in cases {
        let text = base(fe);
        let errors = load_str(&text, std::path::Path::new("t.toml"))
            .unwrap_err()
            .0;
        let e = &errors[0];
        assert!(e.message.contains(message), "{fe}: {}", e.message);
        assert!(
            e.hint.as_deref().unwrap_or("").contains(hint),
            "{fe}: {:?}",
            e.hint
        );
        let last = fe.lines().last().unwrap();
        let line = text.lines().position(|l| l.contains(last)).unwrap() + 1;
        let column = last.find(needle).unwrap() + 1;
        assert_eq!((e.line, e.column), (Some(line), Some(column)), "{fe}");
    }
}

/// A TCP server that says its name and closes.
fn named_server(name: &'static str) -> common::Backend {
    common::Backend::start(move |mut s| {
        let _ = s.write_all(name.as_bytes());
    })
}

/// The server name read on a connection from `127.0.0.<client>`.
fn server_for(proxy: &Proxy, client: u8) -> String {
    use std::io::Read;
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: std::net::SocketAddr = format!("127.0.0.{client}:0").parse().unwrap();
    sock.bind(&from.into()).unwrap();
    sock.connect(&proxy.addr().into()).unwrap();
    let mut c: TcpStream = sock.into();
    let mut name = String::new();
    c.read_to_string(&mut name).unwrap();
    name
}

#[test]
fn stick_on_src_keeps_clients_on_their_server_through_a_flap() {
    let (s1, s2) = (named_server("s1"), named_server("s2"));
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("admin.sock");
    let config = format!(
        r#"
[global]
threads = 2
stats-socket = [{{ path = "{admin}", level = "admin" }}]

[defaults]
mode = "tcp"
timeout = {{ connect = "2s", client = "30s", server = "30s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "be"

[[backend]]
name = "be"
stick-table = "type ip size 1k expire 10m"
stick = ["on src"]
servers = [{{ name = "s1", addr = "{a1}" }}, {{ name = "s2", addr = "{a2}" }}]
"#,
        admin = admin.display(),
        a1 = s1.addr,
        a2 = s2.addr,
    );
    let proxy = Proxy::start(&config);
    let clients: Vec<u8> = (2..52).collect();
    let first: Vec<String> = clients.iter().map(|c| server_for(&proxy, *c)).collect();
    // Round robin spread them; each then stays, on whichever core.
    assert!(first.contains(&"s1".into()) && first.contains(&"s2".into()));
    for _ in 0..3 {
        let again: Vec<String> = clients.iter().map(|c| server_for(&proxy, *c)).collect();
        assert_eq!(again, first);
    }
    let table = socat(&admin, "show table be");
    assert!(
        table.starts_with("# table: be, type: ip, size:1024, used:50\n"),
        "{table}"
    );
    assert!(table.contains("key=127.0.0.2 use=0 exp="), "{table}");
    assert!(
        table.contains(" server_id=1\n") && table.contains(" server_id=2\n"),
        "{table}"
    );
    // s1 goes down: its clients move to s2, and stay there once it is
    // back (their entries now name s2), as in HAProxy.
    assert_eq!(socat(&admin, "set server be/s1 state maint"), "\n");
    let during: Vec<String> = clients.iter().map(|c| server_for(&proxy, *c)).collect();
    assert!(during.iter().all(|s| s == "s2"));
    assert_eq!(socat(&admin, "set server be/s1 state ready"), "\n");
    let after: Vec<String> = clients.iter().map(|c| server_for(&proxy, *c)).collect();
    assert_eq!(after, during);
    assert!(!socat(&admin, "show table be").contains("server_id=1\n"));
}

#[test]
fn stick_on_a_header_in_http_mode() {
    use common::http_backend::Reply;
    let named = |name: &'static str| {
        HttpBackend::start(move |_| Reply::Full(200, vec![], name.as_bytes().to_vec()))
    };
    let (s1, s2) = (named("s1"), named("s2"));
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("admin.sock");
    let config = format!(
        r#"
[global]
threads = 2
stats-socket = [{{ path = "{admin}", level = "admin" }}]

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "30s", server = "30s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "be"

[[backend]]
name = "be"
stick-table = "type string len 16 size 1k store server_id,http_req_cnt"
stick = ["on req.hdr(x-user)"]
servers = [{{ name = "s1", addr = "{a1}" }}, {{ name = "s2", addr = "{a2}" }}]
"#,
        admin = admin.display(),
        a1 = s1.addr,
        a2 = s2.addr,
    );
    let proxy = Proxy::start(&config);
    let body_for = |user: usize| {
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        write!(
            c,
            "GET / HTTP/1.1\r\nHost: x\r\nX-User: u{user}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let (_, _, body) = read_response(&mut BufReader::new(c), false).unwrap();
        String::from_utf8(body).unwrap()
    };
    let first: Vec<String> = (0..20).map(body_for).collect();
    assert!(first.contains(&"s1".into()) && first.contains(&"s2".into()));
    for _ in 0..3 {
        assert_eq!((0..20).map(body_for).collect::<Vec<_>>(), first);
    }
    assert!(socat(&admin, "show table be").contains("used:20\n"));
}

/// A port that accepts (and closes) connections until `close`: what a
/// server's health check connects to.
struct CheckPort {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CheckPort {
    fn open(port: u16) -> CheckPort {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((c, _)) => drop(c),
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        CheckPort {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops listening: checks are refused.
    fn close(mut self) -> u16 {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.port
    }
}

/// `srv_op_state` of `server` in `show servers state be` (2 running, 0
/// stopped), polled until it is `want`.
fn wait_op_state(admin: &Path, server: &str, want: &str) {
    let deadline = std::time::Instant::now() + common::PATIENCE;
    loop {
        let state = socat(admin, "show servers state be");
        let now = state
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|w| w.get(3) == Some(&server))
            .and_then(|w| w.get(5).map(|s| s.to_string()));
        if now.as_deref() == Some(want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{server} never reached {want}: {state}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn stick_on_src_through_a_health_check_flap() {
    let (s1, s2) = (named_server("s1"), named_server("s2"));
    let (c1, c2) = (CheckPort::open(0), CheckPort::open(0));
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("admin.sock");
    let config = format!(
        r#"
[global]
threads = 2
stats-socket = [{{ path = "{admin}", level = "admin" }}]

[defaults]
mode = "tcp"
timeout = {{ connect = "2s", client = "30s", server = "30s", check = "1s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "be"

[[backend]]
name = "be"
stick-table = "type ip size 1k expire 10m"
stick = ["on src"]
default-server = {{ check = true, inter = "100ms", rise = 1, fall = 1 }}
servers = [
  {{ name = "s1", addr = "{a1}", port = {p1} }},
  {{ name = "s2", addr = "{a2}", port = {p2} }},
]
"#,
        admin = admin.display(),
        a1 = s1.addr,
        a2 = s2.addr,
        p1 = c1.port,
        p2 = c2.port,
    );
    let proxy = Proxy::start(&config);
    wait_op_state(&admin, "s1", "2");
    wait_op_state(&admin, "s2", "2");
    let clients: Vec<u8> = (2..52).collect();
    let first: Vec<String> = clients.iter().map(|c| server_for(&proxy, *c)).collect();
    assert!(first.contains(&"s1".into()) && first.contains(&"s2".into()));
    let on_s2: Vec<u8> = clients
        .iter()
        .zip(&first)
        .filter(|(_, s)| *s == "s2")
        .map(|(c, _)| *c)
        .collect();
    // s1's checks fail: its clients move to s2; s2's never move.
    let port = c1.close();
    wait_op_state(&admin, "s1", "0");
    let during: Vec<String> = clients.iter().map(|c| server_for(&proxy, *c)).collect();
    assert!(during.iter().all(|s| s == "s2"), "{during:?}");
    // s1 passes again: every client stays where its entry says (s2), as
    // in HAProxy; none of s2's original clients ever moved.
    let _c1 = CheckPort::open(port);
    wait_op_state(&admin, "s1", "2");
    let after: Vec<String> = clients.iter().map(|c| server_for(&proxy, *c)).collect();
    assert_eq!(after, during);
    assert!(on_s2.iter().all(|c| server_for(&proxy, *c) == "s2"));
    drop(c2);
}

#[test]
fn connection_tracks_count_every_request_and_errors() {
    use common::http_backend::Reply;
    let backend = HttpBackend::start(|r| {
        if r.target.starts_with("/missing") {
            Reply::Full(404, vec![], b"no".to_vec())
        } else {
            Reply::Full(200, vec![], b"ok".to_vec())
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("admin.sock");
    let config = format!(
        r#"
[global]
threads = 2
stats-socket = [{{ path = "{admin}", level = "admin" }}]

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "30s", server = "30s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "be"
stick-table = "type ip size 10 store http_req_cnt,http_err_cnt,conn_cnt,bytes_out_cnt"
tcp-request = ["connection track-sc0 src"]
http-request = ["deny deny_status 429 if {{ sc0_http_req_cnt gt 3 }}"]

[[backend]]
name = "be"
servers = [{{ name = "s1", addr = "{addr}" }}]
"#,
        admin = admin.display(),
        addr = backend.addr,
    );
    let proxy = Proxy::start(&config);
    // One keep-alive connection: the connection's track counts each of
    // its requests.
    let c = TcpStream::connect(proxy.addr()).unwrap();
    let mut rd = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    let mut statuses = Vec::new();
    for path in ["/", "/missing", "/missing", "/"] {
        write!(w, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        statuses.push(read_response(&mut rd, false).map_or(0, |r| r.0));
    }
    // The fourth is denied (and the connection closed, as HAProxy does).
    assert_eq!(statuses, [200, 404, 404, 429]);
    drop((w, rd));
    // The bytes are counted once the connection ended.
    let deadline = std::time::Instant::now() + common::PATIENCE;
    loop {
        let t = socat(&admin, "show table fe");
        if t.contains("conn_cnt=1 http_req_cnt=4 http_err_cnt=2 bytes_out_cnt=")
            && !t.contains("bytes_out_cnt=0")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{t}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn rate_limit_applies_to_http2_streams() {
    let backend = HttpBackend::ok();
    let config = format!(
        r#"
[global]
threads = 2

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "30s", server = "30s" }}

[[frontend]]
name = "fe"
bind = [{{ addr = "127.0.0.1:{{port}}", proto = "h2" }}]
default_backend = "be"
{RATE_LIMIT}

[[backend]]
name = "be"
servers = [{{ name = "s1", addr = "{addr}" }}]
"#,
        addr = backend.addr,
    );
    let proxy = Proxy::start(&config);
    // 30 requests as streams of one HTTP/2 connection (h2load, from
    // nghttp2-client, which .ci/run installs).
    let url = format!("http://127.0.0.1:{}/", proxy.port);
    let out = std::process::Command::new("h2load")
        .args(["-n", "30", "-c", "1", "-m", "1", &url])
        .output()
        .expect("h2load runs (Debian package nghttp2-client)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("status codes: 10 2xx, 0 3xx, 20 4xx, 0 5xx"),
        "{text}"
    );
}

#[test]
fn table_converters_limit_per_api_key_and_fill_headers_across_cores() {
    let (proxy, admin, backend, _dir) = start(
        r#"stick-table = "type ip size 1k expire 60s store http_req_rate(60s),gpc0"
tcp-request = ["connection reject if { src,table_http_req_rate(fe) gt 12 }"]
http-request = [
  "track-sc0 src",
  "track-sc1 req.hdr(x-api-key) table per_key",
  "deny deny_status 429 if { req.hdr(x-api-key),table_http_req_rate(per_key) gt 5 }",
  "set-header X-Rate %[src,table_http_req_rate(fe)]",
  "set-header X-Key-Cnt %[req.hdr(x-api-key),table_http_req_cnt(per_key)]",
  "set-header X-Absent %[src,table_http_req_rate(per_key)]",
  "set-var(txn.gpc) src,table_gpc0(fe)",
  "set-header X-Gpc %[var(txn.gpc)]",
  "set-header X-Keys %[table_cnt(per_key)]/%[table_avl(per_key)]",
  "set-header X-Sources %[table_cnt]",
  "set-header X-Times %[src,table_expire(fe)]+%[src,table_idle(fe)]",
  "set-header X-Default %[src,table_expire(per_key,-1)]",
]"#,
        r#"[[backend]]
name = "per_key"
stick-table = "type string len 32 size 1k expire 60s store http_req_rate(60s),http_req_cnt""#,
    );
    // Requests land on both cores, whichever owns the keys.
    drop(connections_on_both_cores(&proxy, &admin));
    let statuses: Vec<u16> = (0..12)
        .map(|_| curl_status(&proxy, &["X-Api-Key: alpha"]))
        .collect();
    // The limit (gt 5 over 60 s) admits exactly 5, not 5 per core.
    assert_eq!(statuses, [vec![200; 5], vec![429; 7]].concat());
    // Another key has its own count.
    assert_eq!(curl_status(&proxy, &["X-Api-Key: gamma"]), 200);
    let got = backend.received();
    assert_eq!(got.len(), 6);
    let header = |i: usize, name: &str| got[i].header(name).unwrap_or("-").to_string();
    // The source's rate counts every request, the key's only its own.
    let rates: Vec<String> = (0..6).map(|i| header(i, "x-rate")).collect();
    assert_eq!(rates, ["1", "2", "3", "4", "5", "13"]);
    let counts: Vec<String> = (0..6).map(|i| header(i, "x-key-cnt")).collect();
    assert_eq!(counts, ["1", "2", "3", "4", "5", "1"]);
    // A key with no entry reads 0; so does gpc0 nobody increments.
    assert!((0..6).all(|i| header(i, "x-absent") == "0" && header(i, "x-gpc") == "0"));
    // Entries over both cores: the two keys have different owners.
    let owner = |k: &str| percore::stick::Key::Str(k.as_bytes().into()).owner(2);
    assert_ne!(owner("alpha"), owner("gamma"));
    let keys: Vec<String> = (0..6).map(|i| header(i, "x-keys")).collect();
    assert_eq!(keys, [["1/1023"; 5].as_slice(), &["2/1022"]].concat());
    assert!((0..6).all(|i| header(i, "x-sources") == "1"));
    // What is left of `expire` and the time since the last update add
    // up to it; a key with no entry gives the default.
    for i in 0..6 {
        let times = header(i, "x-times");
        let (left, idle) = times.split_once('+').expect("expire+idle");
        let (left, idle): (u64, u64) = (left.parse().unwrap(), idle.parse().unwrap());
        assert_eq!(left + idle, 60_000, "{times}");
        assert_eq!(header(i, "x-default"), "-1");
    }
    // 13 requests from this address: its next connections are refused
    // by a `tcp-request connection` rule, on either core.
    assert!((0..4).all(|_| curl_status(&proxy, &["X-Api-Key: gamma"]) == 0));
    assert_eq!(backend.received().len(), 6);
}
