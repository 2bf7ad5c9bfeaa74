//! One core's part of a stick table: the entries whose owner is this core
//! (see `super::owner`), bounded by the core's share of `size` with the
//! least recently used entry pushed out first, and expired `expire` after
//! their last update.
//!
//! Entries sit in a slab with an intrusive LRU list: an update moves its
//! entry to the front, so the back holds both the least recently used and
//! (every entry of a table having the same `expire`) the first to expire.
//! Expired entries are purged from the back before each access: the cost
//! is proportional to what expired, never a scan.

use std::collections::HashMap;
use std::sync::Arc;

use super::def::{DataKind, DataType, TableDef, DATA_TYPES};
use super::key::Key;

/// HAProxy's freq_ctr: events in the current period and the previous one;
/// the rate is the current count plus the previous one weighted by what
/// is left of a period sliding over both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FreqCtr {
    /// Start of the current period (ms of the table's clock).
    tick: u64,
    curr: u64,
    prev: u64,
}

impl FreqCtr {
    fn new(now: u64) -> Self {
        FreqCtr {
            tick: now,
            curr: 0,
            prev: 0,
        }
    }

    pub fn add(&mut self, now: u64, period: u64, n: u64) {
        let elapsed = now.saturating_sub(self.tick);
        if elapsed >= period {
            if elapsed >= 2 * period {
                // Idle for two periods or more: start over from now, as
                // HAProxy does.
                self.prev = 0;
                self.tick = now;
            } else {
                self.prev = self.curr;
                self.tick += period;
            }
            self.curr = 0;
        }
        self.curr += n;
    }

    /// Events over the last `period` (HAProxy's read_freq_ctr_period).
    pub fn read(&self, now: u64, period: u64) -> u64 {
        let period = period.max(1);
        let (mut curr, mut past) = (self.curr, self.prev);
        let mut elapsed = now.saturating_sub(self.tick);
        if elapsed >= period {
            if elapsed >= 2 * period {
                return 0;
            }
            past = curr;
            curr = 0;
            elapsed -= period;
        }
        if past <= 1 && curr == 0 {
            // HAProxy: a very low rate does not decay (no flapping 1/0).
            return past;
        }
        curr + past * (period - elapsed) / period
    }
}

#[derive(Debug, Clone, Copy)]
enum Value {
    Num(i64),
    Rate(FreqCtr),
}

/// What one message does to an entry, all at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Update {
    /// Create the entry if it is not there (tracking does; a lookup by a
    /// `src_*` fetch does not).
    pub create: bool,
    /// Tracking began: `conn_cnt`, `conn_rate`, `conn_cur`.
    pub conn: bool,
    /// A session began: `sess_cnt`, `sess_rate`.
    pub sess: bool,
    pub http_req: bool,
    pub http_err: bool,
    /// `gpc0` and `gpc0_rate` +1.
    pub gpc0: bool,
    /// `gpc0` back to 0; the answer carries the values from before
    /// (`sc_clr_gpc0` returns the old count, as HAProxy's).
    pub clr_gpc0: bool,
    /// Tracking ended: `conn_cur` -1.
    pub release: bool,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub gpt0: Option<i64>,
    pub server_id: Option<i64>,
}

impl Update {
    fn touches(&self) -> bool {
        *self
            != Update {
                create: self.create,
                ..Update::default()
            }
    }
}

/// The values of an entry at one moment, rates computed: what the rules
/// of a session read after tracking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    values: [i64; DATA_TYPES],
    /// Bit `DataType::index()`: stored in the table.
    stored: u32,
    /// Sessions tracking the entry (`sc_trackers`).
    pub trackers: u32,
    /// ms before the entry expires and ms since its last update
    /// (`table_expire`, `table_idle`); `None` in a table without
    /// `expire`, where the last update is not kept.
    pub expires_in: Option<u64>,
    pub idle: Option<u64>,
}

impl Snapshot {
    pub fn get(&self, data: DataType) -> Option<i64> {
        (self.stored & (1 << data.index()) != 0).then(|| self.values[data.index()])
    }
}

const NIL: u32 = u32::MAX;

struct Node {
    key: Key,
    /// ms of the table's clock; `u64::MAX`: never.
    expire_at: u64,
    values: Box<[Value]>,
    /// Sessions tracking the entry: it neither expires nor is pushed out
    /// while they do (HAProxy's ref_cnt).
    refs: u32,
    prev: u32,
    next: u32,
}

/// One listed entry (`show table`).
#[derive(Debug)]
pub struct Listed {
    /// Where the entry sits on its core (for the `0x...:` column).
    pub slot: u32,
    pub key: Key,
    /// Sessions tracking it (`use=`).
    pub refs: u32,
    /// ms left before it expires, if it does.
    pub expires_in: Option<u64>,
    pub snapshot: Snapshot,
}

pub struct Table {
    pub def: Arc<TableDef>,
    /// Most entries this core keeps.
    cap: usize,
    map: HashMap<Key, u32>,
    nodes: Vec<Option<Node>>,
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
}

impl Table {
    /// This core's part of `def` when `cores` cores share it: `size`
    /// split evenly (rounded down, at least 1), so that the cores
    /// together never hold more than `size` entries.
    pub fn new(def: Arc<TableDef>, cores: usize) -> Self {
        let cap = (def.size / cores.max(1) as u64).max(1) as usize;
        Table {
            def,
            cap,
            map: HashMap::new(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    fn node(&self, i: u32) -> &Node {
        match self.nodes.get(i as usize) {
            Some(Some(n)) => n,
            // The list only links live nodes.
            _ => unreachable!("stick table: dangling index {i}"),
        }
    }

    fn node_mut(&mut self, i: u32) -> &mut Node {
        match self.nodes.get_mut(i as usize) {
            Some(Some(n)) => n,
            _ => unreachable!("stick table: dangling index {i}"),
        }
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let n = self.node(i);
            (n.prev, n.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.node_mut(prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.node_mut(next).prev = prev;
        }
    }

    fn push_front(&mut self, i: u32) {
        let head = self.head;
        {
            let n = self.node_mut(i);
            n.prev = NIL;
            n.next = head;
        }
        if head == NIL {
            self.tail = i;
        } else {
            self.node_mut(head).prev = i;
        }
        self.head = i;
    }

    fn remove_at(&mut self, i: u32) {
        self.unlink(i);
        if let Some(node) = self.nodes.get_mut(i as usize).and_then(Option::take) {
            self.map.remove(&node.key);
        }
        self.free.push(i);
    }

    fn expire_at(&self, now: u64) -> u64 {
        self.def
            .expire
            .map_or(u64::MAX, |e| now.saturating_add(e.as_millis() as u64))
    }

    /// Drops the expired entries (from the back of the list). One still
    /// tracked by a session lives on (to the front, for another period).
    pub fn purge(&mut self, now: u64) {
        let mut kept = 0;
        while self.tail != NIL && self.node(self.tail).expire_at <= now && kept < self.map.len() {
            let tail = self.tail;
            if self.node(tail).refs > 0 {
                let expire_at = self.expire_at(now);
                self.node_mut(tail).expire_at = expire_at;
                self.unlink(tail);
                self.push_front(tail);
                kept += 1;
            } else {
                self.remove_at(tail);
            }
        }
    }

    fn fresh_values(&self, now: u64) -> Box<[Value]> {
        self.def
            .store
            .iter()
            .map(|s| match s.data.kind() {
                DataKind::Rate => Value::Rate(FreqCtr::new(now)),
                _ => Value::Num(0),
            })
            .collect()
    }

    /// Applies `update` to the entry of `key` (created if asked and
    /// missing) and returns its values after it; `None` if there is no
    /// such entry.
    pub fn update(&mut self, key: &Key, update: &Update, now: u64) -> Option<Snapshot> {
        self.purge(now);
        let index = match self.map.get(key) {
            Some(&i) => i,
            None if update.create => self.insert(key.clone(), now)?,
            None => return None,
        };
        let before = update.clr_gpc0.then(|| self.snapshot_at(index, now));
        if update.touches() {
            self.apply(index, update, now);
            let expire_at = self.expire_at(now);
            self.node_mut(index).expire_at = expire_at;
            self.unlink(index);
            self.push_front(index);
        }
        Some(before.unwrap_or_else(|| self.snapshot_at(index, now)))
    }

    /// A new entry, after pushing out the least recently used one not
    /// tracked by a session if the table is full; `None` if every entry
    /// is in use (HAProxy then tracks nothing either).
    fn insert(&mut self, key: Key, now: u64) -> Option<u32> {
        let mut tried = 0;
        while self.map.len() >= self.cap && self.tail != NIL {
            let tail = self.tail;
            if self.node(tail).refs == 0 {
                self.remove_at(tail);
                continue;
            }
            tried += 1;
            if tried > self.map.len() {
                return None;
            }
            self.unlink(tail);
            self.push_front(tail);
        }
        let node = Node {
            key: key.clone(),
            expire_at: self.expire_at(now),
            values: self.fresh_values(now),
            refs: 0,
            prev: NIL,
            next: NIL,
        };
        let index = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = Some(node);
                i
            }
            None => {
                self.nodes.push(Some(node));
                (self.nodes.len() - 1) as u32
            }
        };
        self.map.insert(key, index);
        self.push_front(index);
        Some(index)
    }

    fn apply(&mut self, index: u32, u: &Update, now: u64) {
        let def = Arc::clone(&self.def);
        let node = self.node_mut(index);
        node.refs = (node.refs + u32::from(u.conn)).saturating_sub(u32::from(u.release));
        for (stored, value) in def.store.iter().zip(node.values.iter_mut()) {
            let n: u64 = match stored.data {
                DataType::ConnCnt | DataType::ConnRate => u64::from(u.conn),
                DataType::SessCnt | DataType::SessRate => u64::from(u.sess),
                DataType::HttpReqCnt | DataType::HttpReqRate => u64::from(u.http_req),
                DataType::HttpErrCnt | DataType::HttpErrRate => u64::from(u.http_err),
                DataType::Gpc0 if u.clr_gpc0 => {
                    *value = Value::Num(0);
                    continue;
                }
                DataType::Gpc0 | DataType::Gpc0Rate => u64::from(u.gpc0),
                DataType::BytesInCnt | DataType::BytesInRate => u.bytes_in,
                DataType::BytesOutCnt | DataType::BytesOutRate => u.bytes_out,
                DataType::ConnCur => {
                    if let Value::Num(v) = value {
                        *v = (*v + i64::from(u.conn) - i64::from(u.release)).max(0);
                    }
                    continue;
                }
                DataType::Gpt0 | DataType::ServerId => {
                    let set = if stored.data == DataType::Gpt0 {
                        u.gpt0
                    } else {
                        u.server_id
                    };
                    if let (Some(set), Value::Num(v)) = (set, &mut *value) {
                        *v = set;
                    }
                    continue;
                }
            };
            if n == 0 {
                continue;
            }
            match value {
                Value::Num(v) => *v = v.saturating_add(n as i64),
                Value::Rate(ctr) => ctr.add(now, period_ms(stored.period), n),
            }
        }
    }

    fn snapshot_at(&self, index: u32, now: u64) -> Snapshot {
        let node = self.node(index);
        // The expiry is set to `expire` after each update: what is left
        // of it tells the time since.
        let expire = self.def.expire.map(|e| e.as_millis() as u64);
        let expires_in = expire.map(|_| node.expire_at.saturating_sub(now));
        let mut snapshot = Snapshot {
            values: [0; DATA_TYPES],
            stored: 0,
            trackers: node.refs,
            expires_in,
            idle: expire
                .zip(expires_in)
                .map(|(e, left)| e.saturating_sub(left)),
        };
        for (stored, value) in self.def.store.iter().zip(node.values.iter()) {
            let i = stored.data.index();
            snapshot.stored |= 1 << i;
            snapshot.values[i] = match value {
                Value::Num(v) => *v,
                Value::Rate(ctr) => ctr.read(now, period_ms(stored.period)) as i64,
            };
        }
        snapshot
    }

    /// Sets one stored value (`set table`); a rate counts `value` events
    /// now. Creates the entry. False if `data` is not stored.
    pub fn set(&mut self, key: &Key, data: DataType, value: i64, now: u64) -> bool {
        let Some(slot) = self.def.slot_of(data) else {
            return false;
        };
        let period = self.def.store[slot].period;
        self.purge(now);
        let index = match self.map.get(key) {
            Some(&i) => i,
            None => match self.insert(key.clone(), now) {
                Some(i) => i,
                None => return false,
            },
        };
        let expire_at = self.expire_at(now);
        let node = self.node_mut(index);
        node.expire_at = expire_at;
        node.values[slot] = match node.values[slot] {
            Value::Num(_) => Value::Num(value),
            Value::Rate(_) => {
                let mut ctr = FreqCtr::new(now);
                ctr.add(now, period_ms(period), value.max(0) as u64);
                Value::Rate(ctr)
            }
        };
        self.unlink(index);
        self.push_front(index);
        true
    }

    /// Removes `key`'s entry, or every entry.
    pub fn clear(&mut self, key: Option<&Key>) -> usize {
        match key {
            Some(key) => match self.map.get(key) {
                Some(&i) => {
                    self.remove_at(i);
                    1
                }
                None => 0,
            },
            None => {
                let n = self.map.len();
                self.map.clear();
                self.nodes.clear();
                self.free.clear();
                self.head = NIL;
                self.tail = NIL;
                n
            }
        }
    }

    /// Every entry, most recently used first.
    pub fn list(&mut self, now: u64) -> Vec<Listed> {
        self.purge(now);
        let mut out = Vec::with_capacity(self.map.len());
        let mut i = self.head;
        while i != NIL {
            let node = self.node(i);
            out.push(Listed {
                slot: i,
                key: node.key.clone(),
                refs: node.refs,
                expires_in: (node.expire_at != u64::MAX)
                    .then(|| node.expire_at.saturating_sub(now)),
                snapshot: self.snapshot_at(i, now),
            });
            i = node.next;
        }
        out
    }
}

fn period_ms(period: Option<std::time::Duration>) -> u64 {
    period.map_or(1, |p| (p.as_millis() as u64).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stick::def::{KeyType, Stored};
    use std::time::Duration;

    fn def(size: u64, expire: Option<u64>) -> Arc<TableDef> {
        Arc::new(TableDef::new(
            "t".into(),
            KeyType::Integer,
            size,
            expire.map(Duration::from_millis),
            vec![
                Stored {
                    data: DataType::HttpReqRate,
                    period: Some(Duration::from_millis(1000)),
                },
                Stored {
                    data: DataType::HttpReqCnt,
                    period: None,
                },
                Stored {
                    data: DataType::ConnCur,
                    period: None,
                },
            ],
        ))
    }

    const REQ: Update = Update {
        create: true,
        conn: false,
        sess: false,
        http_req: true,
        http_err: false,
        gpc0: false,
        clr_gpc0: false,
        release: false,
        bytes_in: 0,
        bytes_out: 0,
        gpt0: None,
        server_id: None,
    };

    #[test]
    fn rate_slides_over_two_periods_as_haproxy() {
        let mut c = FreqCtr::new(0);
        for _ in 0..10 {
            c.add(100, 1000, 1);
        }
        assert_eq!(c.read(500, 1000), 10);
        // Half into the next period: half the previous one still counts.
        assert_eq!(c.read(1500, 1000), 5);
        c.add(1500, 1000, 2);
        assert_eq!(c.read(1500, 1000), 2 + 5);
        assert_eq!(c.read(3100, 1000), 0);
    }

    #[test]
    fn size_bounds_and_lru_goes_first() {
        let mut t = Table::new(def(3, None), 1);
        for k in 0..3 {
            t.update(&Key::Int(k), &REQ, 0);
        }
        // Key 0 used again: key 1 is now the least recently used.
        t.update(&Key::Int(0), &REQ, 1);
        t.update(&Key::Int(9), &REQ, 2);
        assert_eq!(t.len(), 3);
        assert!(t.update(&Key::Int(1), &Update::default(), 3).is_none());
        let got = t.update(&Key::Int(0), &Update::default(), 3).unwrap();
        assert_eq!(got.get(DataType::HttpReqCnt), Some(2));
        assert_eq!(got.get(DataType::Gpc0), None);
        for k in 100..10_000 {
            t.update(&Key::Int(k), &REQ, 4);
        }
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn entries_expire_after_their_last_update() {
        let mut t = Table::new(def(10, Some(1000)), 1);
        t.update(&Key::Int(1), &REQ, 0);
        t.update(&Key::Int(2), &REQ, 500);
        t.update(&Key::Int(1), &REQ, 900);
        let s = t.update(&Key::Int(1), &Update::default(), 1200).unwrap();
        assert_eq!((s.expires_in, s.idle), (Some(700), Some(300)));
        t.purge(1600);
        assert_eq!(t.len(), 1, "2 expired at 1500, 1 lives to 1900");
        assert_eq!(t.list(1600)[0].expires_in, Some(300));
        t.purge(1900);
        assert!(t.is_empty());
    }

    #[test]
    fn conn_cur_goes_up_and_down_and_set_works() {
        let mut t = Table::new(def(10, None), 2);
        assert_eq!(t.capacity(), 5);
        let conn = Update {
            create: true,
            conn: true,
            ..Update::default()
        };
        t.update(&Key::Int(1), &conn, 0);
        let s = t.update(&Key::Int(1), &conn, 0).unwrap();
        assert_eq!(s.get(DataType::ConnCur), Some(2));
        let release = Update {
            release: true,
            ..Update::default()
        };
        let s = t.update(&Key::Int(1), &release, 0).unwrap();
        assert_eq!(s.get(DataType::ConnCur), Some(1));
        assert!(t.set(&Key::Int(1), DataType::HttpReqRate, 42, 10));
        assert!(!t.set(&Key::Int(1), DataType::Gpt0, 1, 10));
        let s = t.update(&Key::Int(1), &Update::default(), 10).unwrap();
        assert_eq!(s.get(DataType::HttpReqRate), Some(42));
        let clr = Update {
            clr_gpc0: true,
            ..Update::default()
        };
        assert_eq!(t.update(&Key::Int(1), &clr, 10).unwrap().trackers, 1);
        assert_eq!(t.clear(Some(&Key::Int(1))), 1);
        assert!(t.is_empty());
    }
}

#[cfg(test)]
mod memory {
    use super::*;
    use crate::stick::def::{KeyType, Stored};
    use std::time::Duration;

    fn rss_kib() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        let pages: u64 = statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        pages * 4
    }

    /// Memory per million `type ip ... store http_req_rate(10s)` entries
    /// (docs/architecture.md): `cargo test --lib stick::table::memory --
    /// --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn per_million_ip_entries() {
        let def = Arc::new(TableDef::new(
            "m".into(),
            KeyType::Ip,
            2_000_000,
            Some(Duration::from_secs(60)),
            vec![Stored {
                data: DataType::HttpReqRate,
                period: Some(Duration::from_secs(10)),
            }],
        ));
        let before = rss_kib();
        let mut t = Table::new(def, 1);
        let req = Update {
            create: true,
            http_req: true,
            ..Update::default()
        };
        for i in 0..1_000_000u32 {
            let key = Key::Ip(std::net::IpAddr::V4(std::net::Ipv4Addr::from(i)));
            t.update(&key, &req, 0);
        }
        let after = rss_kib();
        println!(
            "{} entries: {} MiB, {} bytes per entry",
            t.len(),
            (after - before) / 1024,
            (after - before) * 1024 / t.len() as u64
        );
    }
}
