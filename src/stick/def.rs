//! What a `stick-table` line defines: the key type, the size bound, the
//! expiry and the data stored per entry, with HAProxy's data type names
//! and order ([`DataType::ALL`] is the one table every output reads).

use std::hash::{Hash, Hasher};
use std::time::Duration;

/// `type ip|ipv6|integer|string [len <n>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    Ip,
    Ipv6,
    Integer,
    /// Keys longer than `len` bytes are cut there, as in HAProxy.
    String {
        len: usize,
    },
}

impl KeyType {
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Ip => "ip",
            KeyType::Ipv6 => "ipv6",
            KeyType::Integer => "integer",
            KeyType::String { .. } => "string",
        }
    }
}

/// How a stored value behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// A cumulative counter (`*_cnt`, `gpc0`).
    Counter,
    /// Events over a sliding period (`*_rate(<period>)`), HAProxy's
    /// freq_ctr.
    Rate,
    /// A gauge that goes up and down (`conn_cur`).
    Current,
    /// A value set as is (`gpt0`, `server_id`).
    Tag,
}

/// HAProxy's stick-table data types, in HAProxy's order (`show table`
/// prints them so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    ServerId,
    Gpt0,
    Gpc0,
    Gpc0Rate,
    ConnCnt,
    ConnRate,
    ConnCur,
    SessCnt,
    SessRate,
    HttpReqCnt,
    HttpReqRate,
    HttpErrCnt,
    HttpErrRate,
    BytesInCnt,
    BytesInRate,
    BytesOutCnt,
    BytesOutRate,
}

/// Number of data types (the length of a snapshot).
pub const DATA_TYPES: usize = 17;

impl DataType {
    /// Every type, in HAProxy's order; `index()` is the position here.
    pub const ALL: [DataType; DATA_TYPES] = [
        DataType::ServerId,
        DataType::Gpt0,
        DataType::Gpc0,
        DataType::Gpc0Rate,
        DataType::ConnCnt,
        DataType::ConnRate,
        DataType::ConnCur,
        DataType::SessCnt,
        DataType::SessRate,
        DataType::HttpReqCnt,
        DataType::HttpReqRate,
        DataType::HttpErrCnt,
        DataType::HttpErrRate,
        DataType::BytesInCnt,
        DataType::BytesInRate,
        DataType::BytesOutCnt,
        DataType::BytesOutRate,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The name in `store`, fetch names and `show table`.
    pub fn name(self) -> &'static str {
        match self {
            DataType::ServerId => "server_id",
            DataType::Gpt0 => "gpt0",
            DataType::Gpc0 => "gpc0",
            DataType::Gpc0Rate => "gpc0_rate",
            DataType::ConnCnt => "conn_cnt",
            DataType::ConnRate => "conn_rate",
            DataType::ConnCur => "conn_cur",
            DataType::SessCnt => "sess_cnt",
            DataType::SessRate => "sess_rate",
            DataType::HttpReqCnt => "http_req_cnt",
            DataType::HttpReqRate => "http_req_rate",
            DataType::HttpErrCnt => "http_err_cnt",
            DataType::HttpErrRate => "http_err_rate",
            DataType::BytesInCnt => "bytes_in_cnt",
            DataType::BytesInRate => "bytes_in_rate",
            DataType::BytesOutCnt => "bytes_out_cnt",
            DataType::BytesOutRate => "bytes_out_rate",
        }
    }

    pub fn kind(self) -> DataKind {
        match self {
            DataType::ServerId | DataType::Gpt0 => DataKind::Tag,
            DataType::ConnCur => DataKind::Current,
            DataType::Gpc0Rate
            | DataType::ConnRate
            | DataType::SessRate
            | DataType::HttpReqRate
            | DataType::HttpErrRate
            | DataType::BytesInRate
            | DataType::BytesOutRate => DataKind::Rate,
            _ => DataKind::Counter,
        }
    }

    pub fn by_name(name: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The names, for hints.
    pub fn names() -> String {
        DataType::ALL
            .iter()
            .map(|t| match t.kind() {
                DataKind::Rate => format!("{}(<period>)", t.name()),
                _ => t.name().to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One stored data type, with its period for a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stored {
    pub data: DataType,
    /// The rate's period (rates only).
    pub period: Option<Duration>,
}

/// A table as its `stick-table` line defines it, named after its section.
/// Built with [`TableDef::new`] (its uid is computed from the fields then).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableDef {
    pub name: Box<str>,
    pub key: KeyType,
    /// Most entries at once, over every core.
    pub size: u64,
    /// Entries not updated for this long go; `None`: they stay until
    /// pushed out by newer ones.
    pub expire: Option<Duration>,
    pub store: Vec<Stored>,
    /// [`TableDef::uid`], computed once by [`TableDef::new`]: rules compare
    /// it several times per request (tracking, lookups, messages between
    /// cores), where hashing the whole definition each time was a third
    /// of the tables' cost per request (docs/benchmarks.md, stick tables).
    uid: u64,
}

impl TableDef {
    pub fn new(
        name: Box<str>,
        key: KeyType,
        size: u64,
        expire: Option<Duration>,
        store: Vec<Stored>,
    ) -> TableDef {
        let mut def = TableDef {
            name,
            key,
            size,
            expire,
            store,
            uid: 0,
        };
        def.uid = def.identity();
        def
    }

    /// Identity of this definition, the same on every core and across
    /// reloads while name and definition are unchanged: messages between
    /// cores name tables by it, and a reload keeps a table's entries
    /// when it is unchanged.
    pub fn uid(&self) -> u64 {
        self.uid
    }

    /// FNV-1a over the fields in order (what the derived `Hash` of the
    /// definition gave before the uid was kept, so the values are the
    /// same as before).
    fn identity(&self) -> u64 {
        let mut h = Fnv::default();
        self.name.hash(&mut h);
        self.key.hash(&mut h);
        self.size.hash(&mut h);
        self.expire.hash(&mut h);
        self.store.hash(&mut h);
        h.finish()
    }

    /// Where `data` is stored in an entry's values, if it is.
    pub fn slot_of(&self, data: DataType) -> Option<usize> {
        self.store.iter().position(|s| s.data == data)
    }
}

/// FNV-1a: a hash with no per-process seed, so that every core (and the
/// next configuration generation) computes the same value.
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, size: u64, expire: Option<u64>) -> TableDef {
        let store = vec![Stored {
            data: DataType::HttpReqRate,
            period: Some(Duration::from_secs(10)),
        }];
        TableDef::new(
            name.into(),
            KeyType::Ip,
            size,
            expire.map(Duration::from_millis),
            store,
        )
    }

    /// The uid names a table between cores and across reloads: the same
    /// definition always has the same one, any change gives another.
    #[test]
    fn uid_follows_the_definition() {
        let base = def("t", 100, Some(1000));
        assert_eq!(base.uid(), def("t", 100, Some(1000)).uid());
        assert_eq!(base.uid(), base.identity());
        for other in [
            def("u", 100, Some(1000)),
            def("t", 101, Some(1000)),
            def("t", 100, None),
        ] {
            assert_ne!(base.uid(), other.uid(), "{other:?}");
        }
    }
}
