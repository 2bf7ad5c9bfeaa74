//! Two configurations side by side, for a reload: which frontend, backend
//! and server of the old one is which of the new one (by name, as HAProxy's
//! server-state file matches them), and what changed, in words for the log.

use std::collections::HashMap;

use super::{Backend, Config};

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

/// Compares by name; an entry is "modified" when its fingerprint (the
/// debug form of its settings, which lists them all) differs.
fn compare(old: Vec<(String, String)>, new: Vec<(String, String)>) -> Change {
    let old_by: HashMap<&str, &String> = old.iter().map(|(n, v)| (n.as_str(), v)).collect();
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

impl Changes {
    pub fn between(old: &Config, new: &Config) -> Self {
        let servers = |c: &Config| -> Vec<(String, String)> {
            c.backends
                .iter()
                .flat_map(|b| {
                    b.servers
                        .iter()
                        .map(move |s| (format!("{}/{}", b.name, s.name), format!("{s:?}")))
                })
                .collect()
        };
        let frontends = |c: &Config| -> Vec<(String, String)> {
            c.frontends
                .iter()
                .map(|f| (f.name.clone(), format!("{f:?}")))
                .collect()
        };
        // A backend's servers are compared on their own.
        let backends = |c: &Config| -> Vec<(String, String)> {
            c.backends
                .iter()
                .map(|b| {
                    let mut settings = b.clone();
                    settings.servers.clear();
                    (b.name.clone(), format!("{settings:?}"))
                })
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
            servers: compare(servers(old), servers(new)),
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
