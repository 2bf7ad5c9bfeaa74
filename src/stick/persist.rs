//! Persistence on stick tables (HAProxy's `stick on|match|store-request|
//! store-response`): the server a key was sent to is stored in its entry
//! (`server_id`, the server's position + 1, as HAProxy's default ids), and
//! later connections or requests with that key go to the same server if
//! it is usable. A server that is down is balanced around and the entry
//! then names the new server, so a client stays where it was moved when
//! the first one comes back, as in HAProxy. The entry lives on its owner
//! core, so every core sends a key to the same server.

use std::sync::Arc;

use super::core::StickCore;
use super::def::{DataType, TableDef};
use super::key::Key;
use super::table::Update;
use crate::rules::cond::holds;
use crate::rules::{Acl, Condition, Facts, Fetch};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickKind {
    /// `stick on`: match, then store-request.
    On,
    Match,
    StoreRequest,
    StoreResponse,
}

impl StickKind {
    fn matches(self) -> bool {
        matches!(self, StickKind::On | StickKind::Match)
    }

    fn stores_request(self) -> bool {
        matches!(self, StickKind::On | StickKind::StoreRequest)
    }
}

/// One `stick` line of a backend.
#[derive(Debug, Clone)]
pub struct StickRule {
    pub kind: StickKind,
    pub key: Fetch,
    pub table: Arc<TableDef>,
    pub cond: Option<Condition>,
}

fn key_of(rule: &StickRule, facts: &Facts<'_>) -> Option<Key> {
    let mut found = None;
    rule.key.any(facts, |s| {
        found = Key::from_sample(s, rule.table.key);
        true
    });
    found
}

/// The server the first `stick match`/`stick on` rule with an entry
/// names (a position in the backend's servers), if any.
pub async fn matched(
    rules: &[StickRule],
    acls: &[Acl],
    facts: &Facts<'_>,
    core: &StickCore,
    servers: usize,
) -> Option<usize> {
    for rule in rules.iter().filter(|r| r.kind.matches()) {
        if !holds(&rule.cond, acls, facts) {
            continue;
        }
        let Some(key) = key_of(rule, facts) else {
            continue;
        };
        let values = core.update(&rule.table, key, Update::default()).await;
        let id = values.and_then(|v| v.get(DataType::ServerId)).unwrap_or(0);
        if id >= 1 && (id as usize) <= servers {
            return Some(id as usize - 1);
        }
    }
    None
}

/// The entries request-side store rules will write once a server is
/// known (one per table: only the first rule of a table applies).
pub fn request_keys(
    rules: &[StickRule],
    acls: &[Acl],
    facts: &Facts<'_>,
) -> Vec<(Arc<TableDef>, Key)> {
    let mut keys: Vec<(Arc<TableDef>, Key)> = Vec::new();
    for rule in rules.iter().filter(|r| r.kind.stores_request()) {
        if keys.iter().any(|(t, _)| t.uid() == rule.table.uid()) || !holds(&rule.cond, acls, facts)
        {
            continue;
        }
        if let Some(key) = key_of(rule, facts) {
            keys.push((Arc::clone(&rule.table), key));
        }
    }
    keys
}

/// `stick store-response` keys, read from the response.
pub fn response_keys(
    rules: &[StickRule],
    acls: &[Acl],
    facts: &Facts<'_>,
) -> Vec<(Arc<TableDef>, Key)> {
    let mut keys: Vec<(Arc<TableDef>, Key)> = Vec::new();
    for rule in rules.iter().filter(|r| r.kind == StickKind::StoreResponse) {
        if keys.iter().any(|(t, _)| t.uid() == rule.table.uid()) || !holds(&rule.cond, acls, facts)
        {
            continue;
        }
        if let Some(key) = key_of(rule, facts) {
            keys.push((Arc::clone(&rule.table), key));
        }
    }
    keys
}

/// Writes `server` (a position) into the entries of `keys`.
pub fn store(core: &StickCore, keys: Vec<(Arc<TableDef>, Key)>, server: usize) {
    for (table, key) in keys {
        core.post(
            &table,
            key,
            Update {
                create: true,
                server_id: Some(server as i64 + 1),
                ..Update::default()
            },
        );
    }
}
