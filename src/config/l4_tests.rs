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
