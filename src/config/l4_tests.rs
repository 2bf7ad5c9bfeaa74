//! The L4 edge keys (issue 15): `accept-proxy` on binds, `send-proxy`,
//! `send-proxy-v2` and `check-send-proxy` on servers and
//! `default-server`, `tcp-request` rules; and that a reload sees a change
//! of any of them.

use super::diff::Changes;
use super::load_str;
use std::path::Path;

fn load(text: &str) -> super::Config {
    load_str(text, Path::new("l4.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(text: &str) -> String {
    match load_str(text, Path::new("l4.toml")) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn tcp(bind: &str, server: &str) -> String {
    format!(
        r#"
[defaults]
mode = "tcp"
timeout = {{ connect = "1s", client = "1s", server = "1s" }}

[[frontend]]
name = "fe"
bind = [{bind}]
default_backend = "be"

[[backend]]
name = "be"
servers = [{server}]
"#
    )
}

const PLAIN_SERVER: &str = r#"{ name = "s1", addr = "127.0.0.1:9" }"#;

#[test]
fn accept_proxy_is_per_bind() {
    let c = load(&tcp(
        r#"{ addr = "127.0.0.1:1", accept-proxy = true }, "127.0.0.1:2", { addr = "127.0.0.1:3" }"#,
        PLAIN_SERVER,
    ));
    assert_eq!(c.frontends[0].bind_proxy, vec![true, false, false]);
    let e = errors(&tcp(
        r#"{ addr = "127.0.0.1:1", accept-proxy = "yes" }"#,
        PLAIN_SERVER,
    ));
    assert!(e.contains("accept-proxy"), "{e}");
    let e = errors(&tcp(
        r#"{ addr = "127.0.0.1:1", accept-prxy = true }"#,
        PLAIN_SERVER,
    ));
    assert!(e.contains("accept-proxy"), "did-you-mean expected: {e}");
}

#[test]
fn reload_sees_accept_proxy_change() {
    let old = load(&tcp(r#""127.0.0.1:1""#, PLAIN_SERVER));
    let new = load(&tcp(
        r#"{ addr = "127.0.0.1:1", accept-proxy = true }"#,
        PLAIN_SERVER,
    ));
    let changes = Changes::between(&old, &new);
    assert_eq!(changes.frontends.modified, vec!["fe".to_string()]);
}

#[test]
fn send_proxy_keys_resolve_over_default_server() {
    use super::SendProxy;
    let c = load(
        &tcp(
            r#""127.0.0.1:1""#,
            r#"{ name = "a", addr = "127.0.0.1:9" },
           { name = "b", addr = "127.0.0.1:9", send-proxy = true },
           { name = "c", addr = "127.0.0.1:9", send-proxy-v2 = false },
           { name = "d", addr = "127.0.0.1:9", check = true, port = 10 },
           { name = "e", addr = "127.0.0.1:9", check = true, port = 10, check-send-proxy = true },
           { name = "f", addr = "127.0.0.1:9", check = true }"#,
        )
        .replace(
            "name = \"be\"",
            "name = \"be\"\ndefault-server = { send-proxy-v2 = true }",
        ),
    );
    let s = &c.backends[0].servers;
    let sends: Vec<_> = s.iter().map(|s| s.send_proxy).collect();
    use SendProxy::*;
    assert_eq!(
        sends,
        [Some(V2), Some(V1), None, Some(V2), Some(V2), Some(V2)]
    );
    // Checks to another port send no header unless forced.
    let checks: Vec<_> = s[3..]
        .iter()
        .map(|s| s.check.as_ref().unwrap().send_proxy)
        .collect();
    assert_eq!(checks, [None, Some(V2), Some(V2)]);

    let e = errors(&tcp(
        r#""127.0.0.1:1""#,
        r#"{ name = "a", addr = "127.0.0.1:9", send-proxy = true, send-proxy-v2 = true }"#,
    ));
    assert!(
        e.contains("send-proxy and send-proxy-v2 are both set"),
        "{e}"
    );
}

#[test]
fn reload_sees_send_proxy_change() {
    let old = load(&tcp(r#""127.0.0.1:1""#, PLAIN_SERVER));
    let new = load(&tcp(
        r#""127.0.0.1:1""#,
        r#"{ name = "s1", addr = "127.0.0.1:9", send-proxy = true }"#,
    ));
    let changes = Changes::between(&old, &new);
    assert_eq!(changes.servers.modified, vec!["be/s1".to_string()]);
}

const SNI_ROUTER: &str = r#"
[defaults]
mode = "tcp"
timeout = { connect = "1s", client = "1s", server = "1s" }

[[frontend]]
name = "tls-in"
bind = ["127.0.0.1:1"]
acl = { from_lan = "src 10.0.0.0/8" }
tcp-request = [
  "connection expect-proxy layer4 if from_lan",
  "connection reject if { src 192.0.2.0/24 }",
  "inspect-delay 5s",
  "content accept if { req.ssl_hello_type 1 }",
  "content reject",
]
use_backend = ["a if { req.ssl_sni -i a.example }", "b if { req.ssl_sni -i b.example }"]

[[backend]]
name = "a"
servers = [{ name = "s", addr = "127.0.0.1:9" }]

[[backend]]
name = "b"
servers = [{ name = "s", addr = "127.0.0.1:9" }]
"#;

#[test]
fn tcp_request_rules_and_sni_routing() {
    use crate::rules::tcp_request::{pick_backend, ContentStep};
    use crate::rules::tls_hello::tests::client_hello;
    use crate::rules::ConnFacts;
    let c = load(SNI_ROUTER);
    let fe = &c.frontends[0];
    let rules = &fe.tcp_rules;
    assert_eq!(rules.inspect_delay, Some(std::time::Duration::from_secs(5)));
    let conn = |src: &str| ConnFacts {
        src: src.parse().unwrap(),
        dst: "127.0.0.1:1".parse().unwrap(),
        tls: None,
        pp: None,
        stick: Default::default(),
        vars: Default::default(),
        live: Default::default(),
        unique_id: Default::default(),
        captures: Default::default(),
        log_level: Default::default(),
        timeouts: Default::default(),
        early_hints: Default::default(),
    };
    let acls = &fe.rules.acls;
    let lan = rules.connection(acls, &conn("10.1.1.1:5"));
    assert!(lan.expect_proxy && !lan.reject);
    let doc = rules.connection(acls, &conn("192.0.2.7:5"));
    assert!(doc.reject && !doc.expect_proxy);

    let c1 = conn("127.0.0.1:5");
    let hello = client_hello(Some("B.example"), &["h2"]);
    // Part of the hello: the first rule waits; all of it: accept.
    assert!(matches!(
        rules.content(0, acls, &c1, &hello[..10], false),
        ContentStep::NeedMore { at: 0 }
    ));
    assert!(matches!(
        rules.content(0, acls, &c1, &hello, false),
        ContentStep::Accept
    ));
    // Not TLS: decided at once, no waiting.
    assert!(matches!(
        rules.content(0, acls, &c1, b"GET / HTTP/1.1\r\n", false),
        ContentStep::Reject
    ));
    // The delay ran out with half a hello.
    assert!(matches!(
        rules.content(0, acls, &c1, &hello[..10], true),
        ContentStep::Reject
    ));
    let be = |bytes: &[u8]| pick_backend(&fe.rules.use_backend, acls, &c1, bytes);
    assert_eq!(be(&hello), Some(1));
    assert_eq!(be(&client_hello(Some("a.example"), &[])), Some(0));
    assert_eq!(be(&client_hello(Some("c.example"), &[])), None);
}

#[test]
fn tcp_request_errors() {
    let with =
        |lines: &str| SNI_ROUTER.replace("tcp-request = [", &format!("tcp-request = [{lines}, "));
    for (line, want) in [
        (
            r#""connection reject if { req.ssl_sni a }""#,
            "reads the client's first bytes",
        ),
        (
            r#""content expect-proxy layer4""#,
            "expect-proxy is a connection action",
        ),
        (
            r#""connection expect-proxy""#,
            "expect-proxy needs `layer4`",
        ),
        (r#""content rejct""#, "did you mean `reject`"),
        (r#""inspect-delay soon""#, "soon"),
        (r#""session accept""#, "unknown tcp-request kind `session`"),
        (
            r#""content reject if { req.payload(0) -m bin 00 }""#,
            "req.payload takes an offset and a length",
        ),
    ] {
        let e = errors(&with(line));
        assert!(e.contains(want), "{line}: {e}");
    }
    // Payload fetches have no bytes to read in http-request rules.
    let e = errors(
        &SNI_ROUTER
            .replace("mode = \"tcp\"", "mode = \"http\"")
            .replace(
                "use_backend = [",
                "http-request = [\"deny if { req.len gt 0 }\"]\nuse_backend = [",
            ),
    );
    assert!(e.contains("reads the client's first bytes"), "{e}");
    // use_backend between modes.
    let e = errors(&SNI_ROUTER.replace("name = \"b\"\n", "name = \"b\"\nmode = \"http\"\n"));
    assert!(
        e.contains("backend \"b\" is mode http but frontend \"tls-in\" is mode tcp"),
        "{e}"
    );
}

#[test]
fn reload_sees_tcp_request_change() {
    let old = load(SNI_ROUTER);
    let new = load(&SNI_ROUTER.replace("inspect-delay 5s", "inspect-delay 2s"));
    assert_eq!(
        Changes::between(&old, &new).frontends.modified,
        vec!["tls-in".to_string()]
    );
}

#[test]
fn content_rules_without_inspect_delay_warn() {
    let c = load(&SNI_ROUTER.replace("  \"inspect-delay 5s\",\n", ""));
    assert!(
        c.warnings.iter().any(|w| w.contains("no inspect-delay")),
        "{:?}",
        c.warnings
    );
    assert!(!load(SNI_ROUTER)
        .warnings
        .iter()
        .any(|w| w.contains("inspect-delay")));
}
