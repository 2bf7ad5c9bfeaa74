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
