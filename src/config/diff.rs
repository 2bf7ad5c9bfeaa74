//! Two configurations side by side, for a reload: which frontend, backend
//! and server of the old one is which of the new one (by name, as HAProxy's
//! server-state file matches them), and what changed, in words for the log.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::health::ServerCheck;
use super::{Backend, BackendId, Config, Frontend, SendProxy, Server, ServerProto};

/// Old index -> new index, by name; `None`: gone in the new configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexMap {
    pub frontends: Vec<Option<usize>>,
    pub backends: Vec<Option<usize>>,
    /// `[old backend][old server]`.
    pub servers: Vec<Vec<Option<usize>>>,
}

impl IndexMap {
    pub fn between(old: &Config, new: &Config) -> Self {
        let frontends: HashMap<&str, usize> = new
            .frontends
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.as_str(), i))
            .collect();
        let backends: HashMap<&str, usize> = new
            .backends
            .iter()
            .enumerate()
            .map(|(i, b)| (b.name.as_str(), i))
            .collect();
        let backend_map: Vec<Option<usize>> = old
            .backends
            .iter()
            .map(|b| backends.get(b.name.as_str()).copied())
            .collect();
        let servers = old
            .backends
            .iter()
            .zip(&backend_map)
            .map(|(b, to)| match to {
                Some(to) => server_map(b, &new.backends[*to]),
                None => vec![None; b.servers.len()],
            })
            .collect();
        IndexMap {
            frontends: old
                .frontends
                .iter()
                .map(|f| frontends.get(f.name.as_str()).copied())
                .collect(),
            backends: backend_map,
            servers,
        }
    }

    pub fn server(&self, backend: usize, server: usize) -> Option<(usize, usize)> {
        let b = (*self.backends.get(backend)?)?;
        let s = (*self.servers.get(backend)?.get(server)?)?;
        Some((b, s))
    }
}

fn server_map(old: &Backend, new: &Backend) -> Vec<Option<usize>> {
    let by_name: HashMap<&str, usize> = new
        .servers
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    old.servers
        .iter()
        .map(|s| by_name.get(s.name.as_str()).copied())
        .collect()
}

/// What a reload changes, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub frontends: Change,
    pub backends: Change,
    /// `backend/server`.
    pub servers: Change,
    /// `[global]` settings that only a restart applies.
    pub global_ignored: Vec<&'static str>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub modified: Vec<String>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.modified.is_empty()
    }

    fn describe(&self, what: &str, out: &mut Vec<String>) {
        for (verb, names) in [
            ("added", &self.added),
            ("removed", &self.removed),
            ("modified", &self.modified),
        ] {
            if !names.is_empty() {
                out.push(format!("{what} {verb}: {}", names.join(", ")));
            }
        }
    }
}

/// Compares by name; an entry is "modified" when its fingerprint differs.
fn compare<F: PartialEq>(old: Vec<(String, F)>, new: Vec<(String, F)>) -> Change {
    let old_by: HashMap<&str, &F> = old.iter().map(|(n, v)| (n.as_str(), v)).collect();
    let new_names: HashMap<&str, ()> = new.iter().map(|(n, _)| (n.as_str(), ())).collect();
    let mut change = Change::default();
    for (name, value) in &new {
        match old_by.get(name.as_str()) {
            None => change.added.push(name.clone()),
            Some(before) if *before != value => change.modified.push(name.clone()),
            Some(_) => {}
        }
    }
    for (name, _) in &old {
        if !new_names.contains_key(name.as_str()) {
            change.removed.push(name.clone());
        }
    }
    change
}

/// What a frontend was configured with, with the backends it routes to by
/// name. Left out: `http_routes`, which is derived from the backends' own
/// settings (a change there is the backend's) and indexed by backend
/// position, which adding a backend elsewhere shifts. The destructuring
/// lists every field so that a new one cannot be forgotten here.
fn frontend_fingerprint(c: &Config, f: &Frontend) -> String {
    let Frontend {
        name,
        mode,
        binds,
        bind_tls,
        bind_proxy,
        bind_h2,
        default_backend,
        maxconn,
        backlog,
        timeouts,
        http,
        http_routes: _,
        log,
        rules,
        tcp_rules,
        stick_table,
    } = f;
    let backend_name = |id: &BackendId| c.backends.get(*id).map(|b| b.name.as_str());
    let use_backend: Vec<_> = rules
        .use_backend
        .iter()
        .map(|r| {
            let target = match &r.action {
                crate::rules::UseBackend::Id(id) => format!("{:?}", backend_name(id)),
                crate::rules::UseBackend::Dynamic(d) => format!("{:?}", d.name),
            };
            (target, &r.cond)
        })
        .collect();
    format!(
        "{name:?} {mode:?} {binds:?} {bind_tls:?} {bind_proxy:?} {bind_h2:?} {:?} {maxconn:?} \
         {backlog:?} {timeouts:?} {http:?} {log:?} {:?} {:?} {:?} {use_backend:?} {tcp_rules:?} {stick_table:?}",
        default_backend.as_ref().map(backend_name),
        rules.acls,
        rules.request,
        rules.response,
    )
}

/// A backend's own settings; its servers are compared one by one.
fn backend_fingerprint(b: &Backend) -> String {
    let Backend {
        name,
        mode,
        balance,
        balance_params,
        servers: _,
        retries,
        redispatch,
        allbackups,
        timeouts,
        check,
        http,
        rules,
        cookie,
        stick_table,
        stick_rules,
    } = b;
    format!(
        "{name:?} {mode:?} {balance:?} {balance_params:?} {retries:?} {redispatch:?} \
         {allbackups:?} {timeouts:?} {check:?} {http:?} {rules:?} {cookie:?} {stick_table:?} {stick_rules:?}"
    )
}

/// A server's settings, compared field by field: a large configuration has
/// thousands of servers, and formatting each would make the diff the
/// slowest part of a reload.
#[derive(PartialEq)]
struct ServerFingerprint<'a> {
    name: &'a str,
    addr: SocketAddr,
    weight: u32,
    maxconn: Option<u32>,
    backup: bool,
    disabled: bool,
    check: Option<&'a ServerCheck>,
    /// Rare and small: compared in its debug form.
    ssl: Option<String>,
    cookie: Option<&'a str>,
    send_proxy: Option<SendProxy>,
    proto: ServerProto,
}

impl<'a> ServerFingerprint<'a> {
    fn of(s: &'a Server) -> Self {
        let Server {
            name,
            addr,
            weight,
            maxconn,
            backup,
            disabled,
            check,
            ssl,
            cookie,
            send_proxy,
            proto,
        } = s;
        ServerFingerprint {
            name,
            addr: *addr,
            weight: *weight,
            maxconn: *maxconn,
            backup: *backup,
            disabled: *disabled,
            check: check.as_ref(),
            ssl: ssl.as_ref().map(|t| format!("{t:?}")),
            cookie: cookie.as_deref(),
            send_proxy: *send_proxy,
            proto: *proto,
        }
    }
}

/// Whether a connection opened to `old` may serve `new` (same name and
/// address are checked by the caller): it starts the same way (PROXY
/// header, TLS settings) and speaks the same protocol. A reload that
/// changes any of these drops the server's pooled connections.
pub fn same_connections(old: &Server, new: &Server) -> bool {
    let (a, b) = (ServerFingerprint::of(old), ServerFingerprint::of(new));
    a.send_proxy == b.send_proxy && a.proto == b.proto && a.ssl == b.ssl
}

fn server_fingerprints(c: &Config) -> Vec<(String, ServerFingerprint<'_>)> {
    c.backends
        .iter()
        .flat_map(|b| {
            b.servers
                .iter()
                .map(move |s| (format!("{}/{}", b.name, s.name), ServerFingerprint::of(s)))
        })
        .collect()
}

impl Changes {
    pub fn between(old: &Config, new: &Config) -> Self {
        let frontends = |c: &Config| -> Vec<(String, String)> {
            c.frontends
                .iter()
                .map(|f| (f.name.clone(), frontend_fingerprint(c, f)))
                .collect()
        };
        let backends = |c: &Config| -> Vec<(String, String)> {
            c.backends
                .iter()
                .map(|b| (b.name.clone(), backend_fingerprint(b)))
                .collect()
        };
        let mut global_ignored = Vec::new();
        let (a, b) = (&old.global, &new.global);
        if a.threads != b.threads {
            global_ignored.push("threads");
        }
        if a.maxconn != b.maxconn {
            global_ignored.push("maxconn");
        }
        if format!("{:?}", a.stats_sockets) != format!("{:?}", b.stats_sockets) {
            global_ignored.push("stats-socket");
        }
        if format!("{:?}", a.log) != format!("{:?}", b.log) {
            global_ignored.push("log");
        }
        global_ignored.extend(a.process.changed_keys(&b.process));
        if format!("{:?}", old.stats.as_ref().map(|s| s.bind))
            != format!("{:?}", new.stats.as_ref().map(|s| s.bind))
        {
            global_ignored.push("stats.bind");
        }
        Changes {
            frontends: compare(frontends(old), frontends(new)),
            backends: compare(backends(old), backends(new)),
            servers: compare(server_fingerprints(old), server_fingerprints(new)),
            global_ignored,
        }
    }

    /// One line per kind of change, for the log; empty when nothing did.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.frontends.describe("frontends", &mut out);
        self.backends.describe("backends", &mut out);
        self.servers.describe("servers", &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn load(backends: &str, web_extra: &str) -> Config {
        let text = format!(
            r#"
[defaults]
mode = "http"
timeout = {{ connect = "5s", client = "30s", server = "30s" }}

[[frontend]]
name = "web"
bind = ["127.0.0.1:18000"]
default_backend = "app"
use_backend = ["api if {{ path_beg /api }}"]
{web_extra}

{backends}
"#
        );
        let no_dns = |_: &str, _: u16| -> std::io::Result<Vec<SocketAddr>> {
            Err(std::io::ErrorKind::NotFound.into())
        };
        match crate::config::load_with(&text, Path::new("diff.toml"), &[0], &no_dns) {
            Ok(config) => config,
            Err(e) => panic!("{e}\n{text}"),
        }
    }

    const APP_API: &str = r#"
[[backend]]
name = "app"
servers = [{ name = "a1", addr = "127.0.0.1:9001" }, { name = "a2", addr = "127.0.0.1:9002" }]

[[backend]]
name = "api"
servers = [{ name = "p1", addr = "127.0.0.1:9101" }]
"#;

    #[test]
    fn the_same_file_changes_nothing() {
        let changes = Changes::between(&load(APP_API, ""), &load(APP_API, ""));
        assert!(changes.lines().is_empty(), "{changes:?}");
    }

    /// Adding a backend before the others shifts every backend's position:
    /// the frontend, which routes to the same backends by name, is not
    /// modified.
    #[test]
    fn a_new_backend_does_not_modify_the_frontends_routing_to_others() {
        let shifted = format!("[[backend]]\nname = \"new\"\nservers = []\n{APP_API}");
        let changes = Changes::between(&load(APP_API, ""), &load(&shifted, ""));
        assert_eq!(changes.lines(), ["backends added: new"]);
        let map = IndexMap::between(&load(APP_API, ""), &load(&shifted, ""));
        assert_eq!(map.backends, [Some(1), Some(2)]);
        assert_eq!(map.server(0, 1), Some((1, 1)));
    }

    #[test]
    fn each_kind_of_edit_is_named() {
        let edited = APP_API
            .replace("9002", "9003")
            .replace(", { name = \"a1\", addr = \"127.0.0.1:9001\" }", "")
            .replace("name = \"a1\"", "name = \"a0\"");
        let old = load(APP_API, "");
        let new = load(&format!("{edited}\n"), "maxconn = 10");
        let changes = Changes::between(&old, &new);
        assert_eq!(
            changes.lines(),
            [
                "frontends modified: web",
                "servers added: app/a0",
                "servers removed: app/a1",
                "servers modified: app/a2",
            ],
            "{changes:?}"
        );
    }

    #[test]
    fn routing_to_another_backend_modifies_the_frontend() {
        let old = load(APP_API, "");
        let mut new = load(APP_API, "");
        new.frontends[0].default_backend = Some(1);
        let changes = Changes::between(&old, &new);
        assert_eq!(changes.lines(), ["frontends modified: web"]);
    }

    /// Backends swapping names: the frontend still routes by the same
    /// names, so it is the servers that moved.
    #[test]
    fn backends_are_matched_by_name_not_position() {
        let swapped = APP_API
            .replace("\"api\"", "\"tmp\"")
            .replace("\"app\"", "\"api\"")
            .replace("\"tmp\"", "\"app\"");
        let changes = Changes::between(&load(APP_API, ""), &load(&swapped, ""));
        assert!(changes.frontends.is_empty(), "{changes:?}");
        assert_eq!(
            changes.servers.added,
            ["api/a1", "api/a2", "app/p1"],
            "{changes:?}"
        );
    }

    /// A server that starts speaking HTTP/2 is modified, and the
    /// connections pooled for it are not carried to the new generation.
    #[test]
    fn a_new_protocol_modifies_the_server_and_its_connections() {
        let h2 = APP_API.replace(
            "addr = \"127.0.0.1:9002\" }",
            "addr = \"127.0.0.1:9002\", proto = \"h2\" }",
        );
        let (old, new) = (load(APP_API, ""), load(&h2, ""));
        let changes = Changes::between(&old, &new);
        assert_eq!(changes.lines(), ["servers modified: app/a2"]);
        let (a, b) = (&old.backends[0].servers, &new.backends[0].servers);
        assert!(same_connections(&a[0], &b[0]));
        assert!(!same_connections(&a[1], &b[1]));
    }
}
