//! Tracking in rules: the `track-sc0/1/2` slots of a connection, the
//! `sc_*` / `scN_*` / `src_*` fetches that read them, and the
//! `sc-inc-gpc0` / `sc-set-gpt0` actions.
//!
//! Rules are evaluated synchronously (`crate::rules`), but a key's entry
//! may live on another core. So a fetch never waits: it reads the values
//! its slot got back when the key was tracked, or, when it needs an entry
//! it has not got (a `src_*` lookup, an `sc_inc_gpc0` that must update
//! it), it records a *demand* and yields no sample. The rule step then
//! stops with `Lookup`, the session resolves the demands (one update per
//! demand, at the owner core) and evaluates the same rule again, which
//! now finds the values. A condition reaches a fetch only if the terms
//! before it held, so `sc_inc_gpc0` increments exactly when HAProxy's
//! short-circuit evaluation would.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use super::core::StickCore;
use super::def::{DataType, TableDef};
use super::key::Key;
use super::table::{Snapshot, Update};
use crate::rules::{Facts, Fetch, Sample};

/// Tracking slots per connection (HAProxy's default `tune.stick-counters`).
pub const SLOTS: usize = 3;

/// Where a track was made: connection-level tracks last as long as the
/// connection and count each of its requests; request-level ones
/// (`http-request track-sc*`) end with their request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Connection,
    Request,
}

struct Slot {
    table: Arc<TableDef>,
    key: Key,
    scope: Scope,
    values: Snapshot,
}

/// An entry a fetch needs before its rule can be decided.
#[derive(Clone)]
struct Demand {
    /// The fetch that asked, for those that change the entry
    /// (`sc_inc_gpc0`: once per evaluation); 0 for a plain lookup, which
    /// any fetch of the same table and key may share.
    by: usize,
    table: Arc<TableDef>,
    key: Key,
    update: Update,
    /// The slot whose values the answer refreshes.
    slot: Option<usize>,
}

impl Demand {
    fn same(&self, other: &Demand) -> bool {
        self.by == other.by && self.table.uid() == other.table.uid() && self.key == other.key
    }
}

struct Inner {
    core: Rc<StickCore>,
    slots: RefCell<[Option<Slot>; SLOTS]>,
    demands: RefCell<Vec<Demand>>,
    answered: RefCell<Vec<(Demand, Option<Snapshot>)>>,
    /// Entry counts over every core (`table_cnt`, `table_avl`) the rule
    /// needs (`None`) or got, by table.
    counts: RefCell<Vec<(Arc<TableDef>, Option<u64>)>>,
}

impl Drop for Inner {
    /// The connection ended: its tracks end (`conn_cur` -1).
    fn drop(&mut self) {
        for slot in self.slots.get_mut().iter_mut().filter_map(Option::take) {
            release(&self.core, slot);
        }
    }
}

fn release(core: &StickCore, slot: Slot) {
    core.post(
        &slot.table,
        slot.key,
        Update {
            release: true,
            ..Update::default()
        },
    );
}

/// The tracking state of one connection, shared by its rules (cloning
/// shares it). The default tracks nothing and costs nothing: connections
/// of a configuration without stick tables get that one.
#[derive(Clone, Default)]
pub struct Tracked(Option<Rc<Inner>>);

impl fmt::Debug for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Tracked"
        } else {
            "Untracked"
        })
    }
}

impl Tracked {
    /// Tracking state for a new connection of a core whose configuration
    /// has stick tables.
    pub fn new(core: &Rc<StickCore>) -> Self {
        if !core.has_tables() {
            return Tracked(None);
        }
        Tracked(Some(Rc::new(Inner {
            core: Rc::clone(core),
            slots: RefCell::new([None, None, None]),
            demands: RefCell::new(Vec::new()),
            answered: RefCell::new(Vec::new()),
            counts: RefCell::new(Vec::new()),
        })))
    }

    /// The core's tables, when this connection may use them.
    pub fn core(&self) -> Option<&Rc<StickCore>> {
        self.0.as_ref().map(|i| &i.core)
    }

    /// Whether the rule just evaluated needs entries first.
    pub fn wants(&self) -> bool {
        self.0.as_ref().is_some_and(|i| {
            !i.demands.borrow().is_empty() || i.counts.borrow().iter().any(|(_, n)| n.is_none())
        })
    }

    /// Fetches the entries the last evaluation asked for.
    pub async fn resolve(&self) {
        let Some(inner) = &self.0 else { return };
        let demands = std::mem::take(&mut *inner.demands.borrow_mut());
        for demand in demands {
            let values = inner
                .core
                .update(&demand.table, demand.key.clone(), demand.update)
                .await;
            if let (Some(slot), Some(values)) = (demand.slot, values) {
                if let Some(s) = inner.slots.borrow_mut()[slot].as_mut() {
                    s.values = values;
                }
            }
            inner.answered.borrow_mut().push((demand, values));
        }
        let wanted: Vec<Arc<TableDef>> = inner
            .counts
            .borrow()
            .iter()
            .filter(|(_, n)| n.is_none())
            .map(|(t, _)| Arc::clone(t))
            .collect();
        for table in wanted {
            let used = inner.core.used(&table).await;
            for (t, n) in inner.counts.borrow_mut().iter_mut() {
                if t.uid() == table.uid() {
                    *n = Some(used);
                }
            }
        }
    }

    /// Forgets the answers of the previous rule (the next one reads
    /// fresh values).
    pub fn next_rule(&self) {
        if let Some(inner) = &self.0 {
            inner.answered.borrow_mut().clear();
            inner.demands.borrow_mut().clear();
            inner.counts.borrow_mut().clear();
        }
    }

    /// A new request on the connection: the previous request's tracks end;
    /// the connection's count one more HTTP request.
    pub async fn new_request(&self) {
        let Some(inner) = &self.0 else { return };
        // What the previous request's response rules or log asked for
        // (a `table_*` converter where no rule can wait) is not wanted.
        self.next_rule();
        let mut todo = Vec::new();
        {
            let mut slots = inner.slots.borrow_mut();
            for (i, slot) in slots.iter_mut().enumerate() {
                match slot {
                    Some(s) if s.scope == Scope::Request => {
                        if let Some(s) = slot.take() {
                            release(&inner.core, s);
                        }
                    }
                    Some(s) => todo.push((i, Arc::clone(&s.table), s.key.clone())),
                    None => {}
                }
            }
        }
        for (i, table, key) in todo {
            let update = Update {
                http_req: true,
                ..Update::default()
            };
            if let Some(values) = inner.core.update(&table, key, update).await {
                if let Some(s) = inner.slots.borrow_mut()[i].as_mut() {
                    s.values = values;
                }
            }
        }
    }

    /// The response to the current request had `status`: a 4xx counts
    /// as an HTTP error for every tracked entry.
    pub fn response_status(&self, status: u16) {
        let Some(inner) = &self.0 else { return };
        if !(400..500).contains(&status) {
            return;
        }
        for s in inner.slots.borrow().iter().flatten() {
            inner.core.post(
                &s.table,
                s.key.clone(),
                Update {
                    http_err: true,
                    ..Update::default()
                },
            );
        }
    }

    /// Bytes the connection moved, counted for its connection-level
    /// tracks at its end.
    pub fn bytes(&self, bytes_in: u64, bytes_out: u64) {
        let Some(inner) = &self.0 else { return };
        if bytes_in == 0 && bytes_out == 0 {
            return;
        }
        for s in inner.slots.borrow().iter().flatten() {
            inner.core.post(
                &s.table,
                s.key.clone(),
                Update {
                    bytes_in,
                    bytes_out,
                    ..Update::default()
                },
            );
        }
    }

    /// Runs a stick action of a rule whose condition held; `facts`: what
    /// the key is read from.
    pub async fn perform(&self, action: &StickAction, facts_key: Option<Key>, scope: Scope) {
        let Some(inner) = &self.0 else { return };
        self.next_rule();
        match action {
            StickAction::Track { slot, table, .. } => {
                let slot = usize::from(*slot);
                // Only the first track of a slot applies (HAProxy).
                if inner.slots.borrow()[slot].is_some() {
                    return;
                }
                let Some(key) = facts_key else { return };
                let update = Update {
                    create: true,
                    conn: true,
                    sess: scope == Scope::Connection,
                    http_req: scope == Scope::Request,
                    ..Update::default()
                };
                let Some(values) = inner.core.update(table, key.clone(), update).await else {
                    return;
                };
                inner.slots.borrow_mut()[slot] = Some(Slot {
                    table: Arc::clone(table),
                    key,
                    scope,
                    values,
                });
            }
            StickAction::IncGpc0 { slot } | StickAction::SetGpt0 { slot, .. } => {
                let slot = usize::from(*slot);
                let target = inner.slots.borrow()[slot]
                    .as_ref()
                    .map(|s| (Arc::clone(&s.table), s.key.clone()));
                let Some((table, key)) = target else { return };
                let update = match action {
                    StickAction::SetGpt0 { value, .. } => Update {
                        gpt0: Some(*value),
                        ..Update::default()
                    },
                    _ => Update {
                        gpc0: true,
                        ..Update::default()
                    },
                };
                if let Some(values) = inner.core.update(&table, key, update).await {
                    if let Some(s) = inner.slots.borrow_mut()[slot].as_mut() {
                        s.values = values;
                    }
                }
            }
        }
    }

    /// The values of `key`'s entry in `table`, looked up (not created)
    /// at its owner core: `Some(Some(values))` once answered,
    /// `Some(None)` when there is no such entry, `None` while the answer
    /// is pending (the demand is recorded; see the module doc). The
    /// `table_*` converters read entries so.
    pub fn lookup(&self, table: &Arc<TableDef>, key: Key) -> Option<Option<Snapshot>> {
        self.answer_or_ask(Demand {
            by: 0,
            table: Arc::clone(table),
            key,
            update: Update::default(),
            slot: None,
        })
    }

    /// Entries of `table` over every core once counted (`None`: the
    /// count is recorded as needed, as [`Tracked::lookup`] does).
    fn used(&self, table: &Arc<TableDef>) -> Option<u64> {
        let inner = self.0.as_ref()?;
        let mut counts = inner.counts.borrow_mut();
        match counts.iter().find(|(t, _)| t.uid() == table.uid()) {
            Some((_, n)) => *n,
            None => {
                counts.push((Arc::clone(table), None));
                None
            }
        }
    }

    /// An answer already there for `demand`, or the demand recorded.
    fn answer_or_ask(&self, demand: Demand) -> Option<Option<Snapshot>> {
        let inner = self.0.as_ref()?;
        if let Some((_, values)) = inner
            .answered
            .borrow()
            .iter()
            .find(|(d, _)| d.same(&demand))
        {
            return Some(*values);
        }
        let mut demands = inner.demands.borrow_mut();
        if !demands.iter().any(|d| d.same(&demand)) {
            demands.push(demand);
        }
        None
    }
}

/// What an `sc*_` or `src_` fetch reads from an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// A stored value (`sc_http_req_rate`, `sc_get_gpc0`, ...).
    Data(DataType),
    /// `kbytes_in` / `kbytes_out`: a byte count in KiB.
    Kbytes(DataType),
    /// `inc_gpc0`: increments, then reads `gpc0`.
    IncGpc0,
    /// `clr_gpc0`: reads `gpc0`, then sets it to 0.
    ClrGpc0,
    /// `trackers`: sessions tracking the entry.
    Trackers,
    /// `tracked`: whether the slot is tracked (`sc_tracked`).
    Tracked,
    /// `table_expire`: ms before the entry expires.
    Expire,
    /// `table_idle`: ms since the entry's last update.
    Idle,
}

/// A stick-table fetch, a row of `crate::rules::Fetch`.
#[derive(Debug, Clone)]
pub enum StickFetch {
    /// `sc_<x>(<slot>[,<table>])`, `sc<slot>_<x>([<table>])`.
    Sc {
        slot: u8,
        read: Read,
        table: Option<Arc<TableDef>>,
    },
    /// `src_<x>([<table>])`: the entry of the client's address.
    Src { read: Read, table: Arc<TableDef> },
    /// `table_cnt([<table>])` (entries in use over every core) or, with
    /// `free`, `table_avl([<table>])` (`size` minus those).
    Entries { table: Arc<TableDef>, free: bool },
}

impl StickFetch {
    pub fn sample_type(&self) -> crate::rules::SampleType {
        match self {
            StickFetch::Sc {
                read: Read::Tracked,
                ..
            } => crate::rules::SampleType::Bool,
            _ => crate::rules::SampleType::Int,
        }
    }

    pub fn any(&self, facts: &Facts<'_>, f: &mut dyn FnMut(Sample<'_>) -> bool) -> bool {
        let tracked = &facts.conn.stick;
        let by = self as *const StickFetch as usize;
        match self {
            StickFetch::Sc { slot, read, table } => {
                let slot = usize::from(*slot);
                let found = tracked.0.as_ref().and_then(|inner| {
                    inner.slots.borrow()[slot]
                        .as_ref()
                        .map(|s| (Arc::clone(&s.table), s.key.clone(), s.values))
                });
                let Some((own, key, values)) = found else {
                    // Not tracked: HAProxy answers 0 (false for tracked).
                    return match read {
                        Read::Tracked => f(Sample::Bool(false)),
                        _ => f(Sample::Int(0)),
                    };
                };
                if *read == Read::Tracked {
                    return f(Sample::Bool(true));
                }
                let other = table.as_ref().filter(|t| t.uid() != own.uid());
                let values = match (read.changes(), other) {
                    (true, _) | (_, Some(_)) => {
                        let demand = Demand {
                            by: if read.changes() { by } else { 0 },
                            table: Arc::clone(other.unwrap_or(&own)),
                            key,
                            update: read.update(),
                            // The answer to a clear holds the values
                            // before it: not the slot's new ones.
                            slot: (other.is_none() && *read != Read::ClrGpc0).then_some(slot),
                        };
                        match tracked.answer_or_ask(demand) {
                            Some(Some(v)) => v,
                            Some(None) => return f(Sample::Int(0)),
                            None => return false,
                        }
                    }
                    _ => values,
                };
                read_value(*read, &values).is_some_and(|v| f(Sample::Int(v)))
            }
            StickFetch::Src { read, table } => {
                let src = Sample::Ip(facts.conn.src.ip().to_canonical());
                let Some(key) = Key::from_sample(src, table.key) else {
                    return f(Sample::Int(0));
                };
                let demand = Demand {
                    by: if read.changes() { by } else { 0 },
                    table: Arc::clone(table),
                    key,
                    update: read.update(),
                    slot: None,
                };
                match tracked.answer_or_ask(demand) {
                    Some(Some(values)) => {
                        read_value(*read, &values).is_some_and(|v| f(Sample::Int(v)))
                    }
                    // No entry: every counter is 0, as in HAProxy.
                    Some(None) => f(Sample::Int(0)),
                    None => false,
                }
            }
            StickFetch::Entries { table, free } => match tracked.used(table) {
                Some(used) => {
                    let used = i64::try_from(used).unwrap_or(i64::MAX);
                    let size = i64::try_from(table.size).unwrap_or(i64::MAX);
                    f(Sample::Int(if *free {
                        size.saturating_sub(used).max(0)
                    } else {
                        used
                    }))
                }
                None => false,
            },
        }
    }
}

impl Read {
    /// Whether reading changes the entry (then it is done at the owner
    /// once per evaluation, see the module doc).
    fn changes(self) -> bool {
        matches!(self, Read::IncGpc0 | Read::ClrGpc0)
    }

    fn update(self) -> Update {
        Update {
            create: self.changes(),
            gpc0: self == Read::IncGpc0,
            clr_gpc0: self == Read::ClrGpc0,
            ..Update::default()
        }
    }
}

impl Read {
    /// What the `table_<what>(<table>)` converter reads (HAProxy's names,
    /// which differ from the fetches': `table_gpc0`, not `get_gpc0`);
    /// `None` for a name that is no such converter.
    pub fn of_table_converter(what: &str) -> Option<Read> {
        Some(match what {
            "gpc0" => Read::Data(DataType::Gpc0),
            "gpt0" => Read::Data(DataType::Gpt0),
            "server_id" => Read::Data(DataType::ServerId),
            "kbytes_in" => Read::Kbytes(DataType::BytesInCnt),
            "kbytes_out" => Read::Kbytes(DataType::BytesOutCnt),
            "trackers" => Read::Trackers,
            "expire" => Read::Expire,
            "idle" => Read::Idle,
            // HAProxy has no table_bytes_in_cnt/out_cnt (kbytes_* instead).
            "bytes_in_cnt" | "bytes_out_cnt" => return None,
            other => Read::Data(DataType::by_name(other)?),
        })
    }

    /// The data type the table must store for this read, if any.
    pub fn needs(self) -> Option<DataType> {
        match self {
            Read::Data(d) | Read::Kbytes(d) => Some(d),
            Read::IncGpc0 | Read::ClrGpc0 => Some(DataType::Gpc0),
            Read::Trackers | Read::Tracked | Read::Expire | Read::Idle => None,
        }
    }

    /// Whether the table must have an `expire` for this read.
    pub fn needs_expire(self) -> bool {
        matches!(self, Read::Expire | Read::Idle)
    }
}

/// What `read` gives from an entry's `values` (`None`: the table does
/// not store it).
pub fn read_value(read: Read, values: &Snapshot) -> Option<i64> {
    match read {
        Read::Data(d) => values.get(d),
        Read::Kbytes(d) => values.get(d).map(|v| v >> 10),
        Read::IncGpc0 | Read::ClrGpc0 => values.get(DataType::Gpc0),
        Read::Trackers => Some(i64::from(values.trackers)),
        Read::Tracked => Some(1),
        Read::Expire => values.expires_in.map(|v| v as i64),
        Read::Idle => values.idle.map(|v| v as i64),
    }
}

/// The stick-table actions of `tcp-request` and `http-request` rules.
#[derive(Debug, Clone)]
pub enum StickAction {
    /// `track-sc<slot> <key> [table <t>]`.
    Track {
        slot: u8,
        key: Fetch,
        table: Arc<TableDef>,
    },
    /// `sc-inc-gpc0(<slot>)`.
    IncGpc0 { slot: u8 },
    /// `sc-set-gpt0(<slot>) <value>`.
    SetGpt0 { slot: u8, value: i64 },
}

impl StickAction {
    /// The key a track reads from `facts` (its fetch's first sample, as
    /// the table's type); `None` for other actions or without a sample.
    pub fn key(&self, facts: &Facts<'_>) -> Option<Key> {
        let StickAction::Track { key, table, .. } = self else {
            return None;
        };
        let mut found = None;
        key.any(facts, |s| {
            found = Key::from_sample(s, table.key);
            true
        });
        found
    }
}
