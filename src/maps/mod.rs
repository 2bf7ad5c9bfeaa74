//! Map files (`map(<file>[,<default>])` and its `map_<match>_<output>`
//! variants): read once at load, indexed for their match kind so that a
//! lookup costs the same with 10 or 100,000 lines:
//!
//! - `str`: a hash table;
//! - `int`: a hash table (ranges `N:M` in a list beside it);
//! - `beg`: a hash table per key length, longest prefix first (HAProxy's
//!   prefix tree gives the longest match too);
//! - `end`, `dir`, `dom`: a hash table, looked up with each suffix /
//!   delimited part of the sample; the first key of the file wins, as
//!   HAProxy's lists;
//! - `ip`: a hash table per prefix length, longest prefix first;
//! - `sub`, `reg`: a list in file order (as HAProxy: no index fits them).
//!
//! Runtime changes (`add map`, `set map`, `del map`, `clear map` over the
//! runtime API) are applied by every core to its own copy ([`core`]): the
//! request path reads it without a lock. A copy is made on a core's first
//! change (copy-on-write from the loaded map) and lives until the next
//! reload, which reads the files again (as HAProxy).

pub mod core;
pub mod load;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use regex::bytes::Regex;

use crate::rules::convert_ops::{cast, str2int, ValType, Value};

/// How a sample is matched against the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchKind {
    Str,
    Beg,
    End,
    Sub,
    Dir,
    Dom,
    Reg,
    Ip,
    Int,
    /// The length of a string sample against integer patterns (ACL
    /// pattern files only: no `map_len` converter).
    Len,
}

impl MatchKind {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "str" => MatchKind::Str,
            "beg" => MatchKind::Beg,
            "end" => MatchKind::End,
            "sub" => MatchKind::Sub,
            "dir" => MatchKind::Dir,
            "dom" => MatchKind::Dom,
            "reg" => MatchKind::Reg,
            "ip" => MatchKind::Ip,
            "int" => MatchKind::Int,
            "len" => MatchKind::Len,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            MatchKind::Str => "str",
            MatchKind::Beg => "beg",
            MatchKind::End => "end",
            MatchKind::Sub => "sub",
            MatchKind::Dir => "dir",
            MatchKind::Dom => "dom",
            MatchKind::Reg => "reg",
            MatchKind::Ip => "ip",
            MatchKind::Int => "int",
            MatchKind::Len => "len",
        }
    }

    /// How HAProxy indexes a pattern file for this kind, as `get acl`
    /// prints it: prefix and exact strings and addresses in trees (exact
    /// and prefix strings only when case counts), the rest in lists.
    pub fn index_name(self, icase: bool) -> &'static str {
        match self {
            MatchKind::Str | MatchKind::Beg if !icase => "tree",
            MatchKind::Ip => "tree",
            _ => "list",
        }
    }
}

/// One way the converters read a map file: its match kind (the map,
/// by its place in `Config::maps`) and the type its values are given
/// as. HAProxy keeps one pattern expression per way, and `get map`
/// answers one line for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapUse {
    pub map: usize,
    pub output: ValType,
}

/// The delimiters of `-m dir` (HAProxy: slashes and question marks).
pub fn dir_delim(b: u8) -> bool {
    b == b'/' || b == b'?'
}

/// The delimiters of `-m dom` (HAProxy: dots, colons, slashes and
/// question marks).
pub fn dom_delim(b: u8) -> bool {
    matches!(b, b'.' | b':' | b'/' | b'?')
}

/// Why a key cannot be in a map of some match kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("`{0}` is not an address or network")]
    Ip(String),
    #[error("`{0}` is not an integer or a range N:M")]
    Int(String),
    #[error("invalid regular expression `{0}`: {1}")]
    Regex(String, String),
}

/// One line of a map.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Stable while the entry lives (`show map` prints it, `#<ref>`
    /// names it).
    pub id: u64,
    pub key: Box<[u8]>,
    pub value: Arc<[u8]>,
}

/// A compiled key for the kinds that need one.
#[derive(Debug, Clone)]
enum Compiled {
    None,
    Regex(Regex),
    Net { ip: IpAddr, prefix: u8 },
    Range(i64, i64),
}

#[derive(Debug, Clone, Default)]
struct Index {
    /// Key bytes -> position of the first entry with this key (str, end,
    /// dir, dom), or per length (beg).
    by_key: HashMap<Box<[u8]>, usize>,
    /// beg: the key lengths present, longest first; end: the key
    /// lengths present.
    lens: Vec<usize>,
    /// ip: (prefix length, masked address) -> position.
    nets: HashMap<(u8, u128, bool), usize>,
    /// ip: prefix lengths present per family, longest first.
    v4_lens: Vec<u8>,
    v6_lens: Vec<u8>,
    /// int: exact keys.
    ints: HashMap<i64, usize>,
    /// int ranges, reg, sub: positions in file order.
    list: Vec<usize>,
}

/// The content of one map file for one match kind.
#[derive(Debug, Clone)]
pub struct MapData {
    /// As written in the rule, resolved against the configuration's
    /// directory: what the runtime API names it by.
    pub path: PathBuf,
    pub kind: MatchKind,
    /// Where it was first used, for `show map`: "file:line".
    pub used_at: String,
    /// The id `show map` lists (`#<id>` names it).
    pub uid: usize,
    /// A pattern file of an ACL (`-f <file>`: keys only, `show acl`,
    /// `add acl`), not a map.
    pub acl: bool,
    /// An ACL read with `-i`: string keys are indexed lowercased (shown
    /// as written) and regexes compiled case-insensitive.
    pub icase: bool,
    /// The version matching reads (`curr_ver` of `show map`/`show acl`).
    pub curr_ver: u32,
    /// The last version `prepare map|acl` made (`next_ver`).
    pub next_ver: u32,
    /// Entries of other versions (`add map|acl @<ver>`): not matched
    /// until `commit` makes their version the current one.
    pending: Vec<(u32, Entry)>,
    entries: Vec<Entry>,
    compiled: Vec<Compiled>,
    index: Index,
    next_id: u64,
}

fn mask(ip: IpAddr, prefix: u8) -> (u128, bool) {
    match ip {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            (u128::from(u32::from(a) & m), true)
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            (u128::from(a) & m, false)
        }
    }
}

impl MapData {
    pub fn new(path: PathBuf, kind: MatchKind, used_at: String, uid: usize) -> Self {
        MapData {
            path,
            kind,
            used_at,
            uid,
            acl: false,
            icase: false,
            curr_ver: 0,
            next_ver: 0,
            pending: Vec::new(),
            entries: Vec::new(),
            compiled: Vec::new(),
            index: Index::default(),
            next_id: 1,
        }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entries of version `ver` (`show map|acl @<ver>`).
    pub fn entries_at(&self, ver: u32) -> Vec<&Entry> {
        if ver == self.curr_ver {
            return self.entries.iter().collect();
        }
        self.pending
            .iter()
            .filter(|(v, _)| *v == ver)
            .map(|(_, e)| e)
            .collect()
    }

    /// `commit map|acl @<ver>`: the entries of `ver` become the ones
    /// matched; those of the versions before it are dropped, those of
    /// later prepared versions kept (as HAProxy).
    fn commit(&mut self, ver: u32) {
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .filter(|(v, _)| *v >= ver)
            .partition(|(v, _)| *v == ver);
        self.pending = later;
        self.clear();
        for (_, entry) in now {
            // Checked when it was added.
            if let Ok(compiled) = self.compile(&entry.key) {
                self.entries.push(entry);
                self.compiled.push(compiled);
                self.index_one(self.entries.len() - 1);
            }
        }
        self.curr_ver = ver;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks and compiles a key for this map's match kind.
    fn compile(&self, key: &[u8]) -> Result<Compiled, KeyError> {
        let text = || String::from_utf8_lossy(key).into_owned();
        Ok(match self.kind {
            MatchKind::Reg => {
                let pattern = std::str::from_utf8(key)
                    .map_err(|_| KeyError::Regex(text(), "not UTF-8".into()))?;
                Compiled::Regex(
                    crate::rules::pattern::compile_regex(pattern, self.icase)
                        .map_err(|e| KeyError::Regex(text(), e))?,
                )
            }
            MatchKind::Ip => {
                let net: crate::http::Network = std::str::from_utf8(key)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| KeyError::Ip(text()))?;
                Compiled::Net {
                    ip: net.addr(),
                    prefix: net.prefix(),
                }
            }
            MatchKind::Int | MatchKind::Len => {
                let int = |s: &[u8]| -> Result<i64, KeyError> {
                    std::str::from_utf8(s)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| KeyError::Int(text()))
                };
                match key.iter().position(|&b| b == b':') {
                    Some(colon) => {
                        let (lo, hi) = (&key[..colon], &key[colon + 1..]);
                        Compiled::Range(
                            if lo.is_empty() { i64::MIN } else { int(lo)? },
                            if hi.is_empty() { i64::MAX } else { int(hi)? },
                        )
                    }
                    None => {
                        let v = int(key)?;
                        Compiled::Range(v, v)
                    }
                }
            }
            _ => Compiled::None,
        })
    }

    /// Appends an entry (a file line, `add map`).
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> Result<u64, KeyError> {
        let compiled = self.compile(key)?;
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push(Entry {
            id,
            key: key.into(),
            value: value.into(),
        });
        self.compiled.push(compiled);
        self.index_one(self.entries.len() - 1);
        Ok(id)
    }

    fn index_one(&mut self, pos: usize) {
        let lowered;
        let key: &[u8] = if self.icase {
            lowered = self.entries[pos].key.to_ascii_lowercase();
            &lowered
        } else {
            &self.entries[pos].key
        };
        let ix = &mut self.index;
        match (&self.compiled[pos], self.kind) {
            (_, MatchKind::Str) => {
                ix.by_key.entry(key.into()).or_insert(pos);
            }
            (_, MatchKind::End) => {
                ix.by_key.entry(key.into()).or_insert(pos);
                if !ix.lens.contains(&key.len()) {
                    ix.lens.push(key.len());
                }
            }
            (_, MatchKind::Dir) => {
                ix.by_key
                    .entry(trim_delims(key, dir_delim).into())
                    .or_insert(pos);
            }
            (_, MatchKind::Dom) => {
                ix.by_key
                    .entry(trim_delims(key, dom_delim).into())
                    .or_insert(pos);
            }
            (_, MatchKind::Beg) => {
                ix.by_key.entry(key.into()).or_insert(pos);
                if !ix.lens.contains(&key.len()) {
                    ix.lens.push(key.len());
                    ix.lens.sort_unstable_by(|a, b| b.cmp(a));
                }
            }
            (Compiled::Net { ip, prefix }, _) => {
                let (bits, v4) = mask(*ip, *prefix);
                ix.nets.entry((*prefix, bits, v4)).or_insert(pos);
                let lens = if v4 { &mut ix.v4_lens } else { &mut ix.v6_lens };
                if !lens.contains(prefix) {
                    lens.push(*prefix);
                    lens.sort_unstable_by(|a, b| b.cmp(a));
                }
            }
            (Compiled::Range(lo, hi), _) if lo == hi => {
                ix.ints.entry(*lo).or_insert(pos);
            }
            _ => ix.list.push(pos),
        }
    }

    fn reindex(&mut self) {
        self.index = Index::default();
        for pos in 0..self.entries.len() {
            self.index_one(pos);
        }
    }

    /// Sets the value of every entry with this key (`set map <key>`);
    /// how many there were.
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> usize {
        let value: Arc<[u8]> = value.into();
        let mut n = 0;
        for e in self.entries.iter_mut().filter(|e| *e.key == *key) {
            e.value = Arc::clone(&value);
            n += 1;
        }
        n
    }

    /// `set map #<ref>`.
    pub fn set_id(&mut self, id: u64, value: &[u8]) -> bool {
        match self.entries.iter_mut().find(|e| e.id == id) {
            Some(e) => {
                e.value = value.into();
                true
            }
            None => false,
        }
    }

    /// Removes every entry with this key, or the one with this id; how
    /// many. O(n): the index is rebuilt.
    pub fn remove(&mut self, key: Option<&[u8]>, id: Option<u64>) -> usize {
        let before = self.entries.len();
        let keep: Vec<bool> = self
            .entries
            .iter()
            .map(|e| !(key.is_some_and(|k| *e.key == *k) || id == Some(e.id)))
            .collect();
        let mut it = keep.iter();
        self.entries.retain(|_| *it.next().unwrap_or(&true));
        let mut it = keep.iter();
        self.compiled.retain(|_| *it.next().unwrap_or(&true));
        let removed = before - self.entries.len();
        if removed > 0 {
            self.reindex();
        }
        removed
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.compiled.clear();
        self.index = Index::default();
    }

    /// The position of the entry matching `key`.
    fn find(&self, key: &Value<'_>) -> Option<usize> {
        match self.kind {
            MatchKind::Ip => {
                let Value::Ip(ip) = cast(key.clone(), ValType::Ip)? else {
                    return None;
                };
                self.find_ip(ip)
            }
            MatchKind::Int => {
                let Value::Int(v) = cast(key.clone(), ValType::Int)? else {
                    return None;
                };
                self.find_int(v)
            }
            _ => {
                let mut buf = Vec::new();
                let s: &[u8] = match key {
                    Value::Str(s) | Value::Bin(s) => s,
                    Value::Shared(s) => s,
                    other => {
                        other.write_to(&mut buf);
                        &buf
                    }
                };
                self.find_bytes(s)
            }
        }
    }

    /// The first entry (exact value or range) holding `v`.
    fn find_int(&self, v: i64) -> Option<usize> {
        let ix = &self.index;
        let exact = ix.ints.get(&v).copied();
        let ranged = ix.list.iter().copied().find(
            |&pos| matches!(self.compiled[pos], Compiled::Range(lo, hi) if lo <= v && v <= hi),
        );
        match (exact, ranged) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn find_ip(&self, ip: IpAddr) -> Option<usize> {
        let ix = &self.index;
        let ip = ip.to_canonical();
        let lens = if ip.is_ipv4() {
            &ix.v4_lens
        } else {
            &ix.v6_lens
        };
        lens.iter().find_map(|&p| {
            let (bits, v4) = mask(ip, p);
            ix.nets.get(&(p, bits, v4)).copied()
        })
    }

    /// Whether an ACL sample matches one of the patterns (an ACL's
    /// `-f <file>` read live). Never allocates.
    pub fn matches_sample(&self, sample: crate::rules::sample::Sample<'_>) -> bool {
        self.find_sample(sample).is_some()
    }

    /// The pattern an ACL sample matches (`get acl`): a string against
    /// the string kinds (lowercased first with `-i`), its length against
    /// `len`, an integer (or a boolean, or a string holding one, as the
    /// inlined matcher) against `int`, an address (or a string holding
    /// one) against `ip`.
    pub fn matching_entry(&self, sample: crate::rules::sample::Sample<'_>) -> Option<&Entry> {
        self.find_sample(sample).map(|pos| &self.entries[pos])
    }

    fn find_sample(&self, sample: crate::rules::sample::Sample<'_>) -> Option<usize> {
        use crate::rules::sample::Sample;
        match (self.kind, sample) {
            (MatchKind::Ip, Sample::Ip(ip)) => self.find_ip(ip),
            (MatchKind::Ip, Sample::Str(s)) => std::str::from_utf8(s)
                .ok()
                .and_then(|t| t.trim().parse::<IpAddr>().ok())
                .and_then(|ip| self.find_ip(ip)),
            (MatchKind::Int, Sample::Int(v)) => self.find_int(v),
            (MatchKind::Int, Sample::Bool(b)) => self.find_int(b.into()),
            (MatchKind::Int, Sample::Str(s)) => str2int(s).and_then(|v| self.find_int(v)),
            (MatchKind::Len, Sample::Str(s)) => self.find_int(s.len() as i64),
            (MatchKind::Ip | MatchKind::Int | MatchKind::Len, _) => None,
            (_, Sample::Str(s)) => self.find_str(s),
            _ => None,
        }
    }

    /// [`Self::find_bytes`], with the sample lowercased first when the
    /// keys were indexed lowercased (`-i`): on the stack up to
    /// [`LOWER_ON_STACK`] bytes, else in this thread's reused buffer, so
    /// that a request costs no allocation.
    fn find_str(&self, s: &[u8]) -> Option<usize> {
        let lowered_index = matches!(
            self.kind,
            MatchKind::Str | MatchKind::Beg | MatchKind::End | MatchKind::Dir | MatchKind::Dom
        );
        if !self.icase || !lowered_index || !s.iter().any(u8::is_ascii_uppercase) {
            return self.find_bytes(s);
        }
        if s.len() <= LOWER_ON_STACK {
            let mut buf = [0u8; LOWER_ON_STACK];
            let lower = &mut buf[..s.len()];
            lower.copy_from_slice(s);
            lower.make_ascii_lowercase();
            return self.find_bytes(lower);
        }
        LOWER_SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                buf.extend(s.iter().map(u8::to_ascii_lowercase));
                self.find_bytes(&buf)
            }
            // Not reentered in practice; stay correct if it ever is.
            Err(_) => self.find_bytes(&s.to_ascii_lowercase()),
        })
    }

    fn find_bytes(&self, s: &[u8]) -> Option<usize> {
        let ix = &self.index;
        let min = |a: Option<usize>, b: Option<usize>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match self.kind {
            MatchKind::Str => ix.by_key.get(s).copied(),
            MatchKind::Beg => ix
                .lens
                .iter()
                .filter(|&&l| l <= s.len())
                .find_map(|&l| ix.by_key.get(&s[..l]).copied()),
            // Only the suffixes as long as some key: a handful of probes
            // for a typical file, not one per byte of the sample.
            MatchKind::End => ix
                .lens
                .iter()
                .filter(|&&l| l <= s.len())
                .fold(None, |best, &l| {
                    min(best, ix.by_key.get(&s[s.len() - l..]).copied())
                }),
            MatchKind::Dir | MatchKind::Dom => {
                let delim = if self.kind == MatchKind::Dom {
                    dom_delim
                } else {
                    dir_delim
                };
                // Every run of whole delimited parts of `s`.
                let starts =
                    std::iter::once(0).chain((0..s.len()).filter(|&i| delim(s[i])).map(|i| i + 1));
                let mut best = None;
                for start in starts {
                    let ends = (start..s.len())
                        .filter(|&i| delim(s[i]))
                        .chain(std::iter::once(s.len()));
                    for end in ends {
                        if end > start {
                            best = min(best, ix.by_key.get(&s[start..end]).copied());
                        }
                    }
                }
                best
            }
            MatchKind::Sub => self.entries.iter().position(|e| {
                e.key.is_empty()
                    || s.windows(e.key.len()).any(|w| {
                        if self.icase {
                            w.eq_ignore_ascii_case(&e.key)
                        } else {
                            w == &*e.key
                        }
                    })
            }),
            MatchKind::Reg => {
                ix.list.iter().copied().find(
                    |&pos| matches!(&self.compiled[pos], Compiled::Regex(re) if re.is_match(s)),
                )
            }
            MatchKind::Ip | MatchKind::Int | MatchKind::Len => None,
        }
    }

    /// The value of the entry matching `key`, as raw bytes.
    pub fn lookup_raw(&self, key: &Value<'_>) -> Option<&Arc<[u8]>> {
        self.find(key).map(|pos| &self.entries[pos].value)
    }

    /// The entry a converter's `key` matches (`get map`): the lookup of
    /// [`Self::lookup_raw`].
    pub fn matching_entry_for(&self, key: &Value<'_>) -> Option<&Entry> {
        self.find(key).map(|pos| &self.entries[pos])
    }
}

/// `p` without its leading and trailing delimiters (HAProxy ignores
/// them in `dir` and `dom` patterns).
pub fn trim_delims(mut p: &[u8], delim: fn(u8) -> bool) -> &[u8] {
    while let [d, rest @ ..] = p {
        if !delim(*d) {
            break;
        }
        p = rest;
    }
    while let [rest @ .., d] = p {
        if !delim(*d) {
            break;
        }
        p = rest;
    }
    p
}

/// Samples up to this long are lowercased on the stack for a `-i`
/// pattern file (a host, most paths); longer ones in [`LOWER_SCRATCH`].
const LOWER_ON_STACK: usize = 256;

thread_local! {
    /// This core's buffer for lowercasing long samples: it keeps its
    /// capacity, so only the first long sample allocates.
    static LOWER_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A runtime API change to a map, as every core applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapChange {
    Add {
        key: Box<[u8]>,
        value: Box<[u8]>,
    },
    Set {
        at: EntryRef,
        value: Box<[u8]>,
    },
    Del(EntryRef),
    Clear,
    /// `prepare map|acl`: version `ver` is made (empty).
    Prepare(u32),
    /// `add map|acl @<ver>`.
    AddAt {
        ver: u32,
        key: Box<[u8]>,
        value: Box<[u8]>,
    },
    /// `clear map|acl @<ver>`.
    ClearAt(u32),
    /// `commit map|acl @<ver>`.
    Commit(u32),
}

/// Which entries a change names: every one with a key, or one by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryRef {
    Key(Box<[u8]>),
    Id(u64),
}

impl MapData {
    /// Checks a key before a change is sent to every core.
    pub fn check_key(&self, key: &[u8]) -> Result<(), KeyError> {
        self.compile(key).map(|_| ())
    }

    /// How many entries `at` names.
    pub fn count(&self, at: &EntryRef) -> usize {
        self.entries
            .iter()
            .filter(|e| match at {
                EntryRef::Key(k) => *e.key == **k,
                EntryRef::Id(id) => e.id == *id,
            })
            .count()
    }

    /// Applies a runtime change (checked beforehand).
    pub fn apply(&mut self, change: &MapChange) {
        match change {
            MapChange::Add { key, value } => {
                // Checked by the core that took the command.
                let _ = self.add(key, value);
            }
            MapChange::Set {
                at: EntryRef::Key(k),
                value,
            } => {
                self.set(k, value);
            }
            MapChange::Set {
                at: EntryRef::Id(id),
                value,
            } => {
                self.set_id(*id, value);
            }
            MapChange::Del(EntryRef::Key(k)) => {
                self.remove(Some(k), None);
            }
            MapChange::Del(EntryRef::Id(id)) => {
                self.remove(None, Some(*id));
            }
            MapChange::Clear => self.clear(),
            MapChange::Prepare(ver) => self.next_ver = *ver,
            MapChange::AddAt { ver, key, value } if *ver == self.curr_ver => {
                let _ = self.add(key, value);
            }
            MapChange::AddAt { ver, key, value } => {
                let id = self.next_id;
                self.next_id += 1;
                let entry = Entry {
                    id,
                    key: key.clone(),
                    value: (**value).into(),
                };
                self.pending.push((*ver, entry));
            }
            MapChange::ClearAt(ver) if *ver == self.curr_ver => self.clear(),
            MapChange::ClearAt(ver) => self.pending.retain(|(v, _)| v != ver),
            MapChange::Commit(ver) => self.commit(*ver),
        }
    }
}

/// A map as a converter holds it: the loaded data (what every core starts
/// from) and the type its values are given as.
#[derive(Debug, Clone)]
pub struct MapRef {
    pub map: Arc<MapData>,
    pub output: ValType,
}

impl MapRef {
    /// The value for `key` on this core (its runtime changes included).
    pub fn lookup<'a>(&self, key: &Value<'_>) -> Option<Value<'a>> {
        let raw = core::with_current(&self.map, |data| data.lookup_raw(key).cloned())?;
        self.typed(raw)
    }

    fn typed<'a>(&self, raw: Arc<[u8]>) -> Option<Value<'a>> {
        match self.output {
            ValType::Int => Some(Value::Int(str2int(&raw)?)),
            ValType::Ip => cast(Value::Shared(raw), ValType::Ip),
            _ => Some(Value::Shared(raw)),
        }
    }

    /// A default value (the converter's second argument), typed as the
    /// values are.
    pub fn cast_value<'a>(&self, raw: &'a [u8]) -> Option<Value<'a>> {
        match self.output {
            ValType::Int => Some(Value::Int(str2int(raw)?)),
            ValType::Ip => cast(Value::Str(raw.into()), ValType::Ip),
            _ => Some(Value::Str(raw.into())),
        }
    }
}

#[cfg(test)]
mod tests;
