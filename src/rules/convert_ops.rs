//! Converters: what `<fetch>,conv1,conv2(args)` does to a sample, in ACLs
//! and in `%[...]` values. One table ([`CONVERTERS`]) holds every
//! converter (name, arguments, input and output type, description,
//! function); parsing, hints and the reference in docs/configuration.md
//! all read it, so adding a converter is one row and one function.
//!
//! Samples are typed as in HAProxy (str, bin, int, ip, bool). Before a
//! converter runs, its input is cast to the type it takes with HAProxy's
//! casts ([`cast`]); a sample that cannot be cast, or a converter that
//! fails, leaves no sample (an ACL does not match, a value renders
//! nothing).
//!
//! Strings stay borrowed from the request while nothing changes them:
//! `req.hdr(host),lower` on a host that is already lowercase, `field` and
//! `bytes` allocate nothing; a converter that builds a new string does.

use std::borrow::Cow;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use regex::bytes::Regex;
use sha2::Digest;

use super::sample::{Facts, Sample, SampleType};
use crate::maps::MapRef;

/// A sample as converters see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Str(Cow<'a, [u8]>),
    /// Bytes that are not text (`sha1`, `b64dec`): cast to a string as is.
    Bin(Cow<'a, [u8]>),
    /// A string shared with a map (a map's value): no copy per lookup.
    Shared(Arc<[u8]>),
    Int(i64),
    Ip(IpAddr),
    Bool(bool),
}

/// The type a converter takes or gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValType {
    /// Takes any sample as it is (no cast).
    Any,
    Str,
    Bin,
    Int,
    Ip,
    Bool,
}

impl ValType {
    pub fn name(self) -> &'static str {
        match self {
            ValType::Any => "any",
            ValType::Str => "str",
            ValType::Bin => "bin",
            ValType::Int => "int",
            ValType::Ip => "ip",
            ValType::Bool => "bool",
        }
    }

    /// How ACLs match samples of this type (bin is matched as a string).
    pub fn sample_type(self) -> SampleType {
        match self {
            ValType::Any | ValType::Str | ValType::Bin => SampleType::Str,
            ValType::Int => SampleType::Int,
            ValType::Ip => SampleType::Ip,
            ValType::Bool => SampleType::Bool,
        }
    }

    pub fn of(ty: SampleType) -> Self {
        match ty {
            SampleType::Str => ValType::Str,
            SampleType::Int => ValType::Int,
            SampleType::Ip => ValType::Ip,
            SampleType::Bool => ValType::Bool,
        }
    }
}

impl<'a> From<Sample<'a>> for Value<'a> {
    fn from(s: Sample<'a>) -> Self {
        match s {
            Sample::Str(b) => Value::Str(Cow::Borrowed(b)),
            Sample::Int(i) => Value::Int(i),
            Sample::Ip(ip) => Value::Ip(ip),
            Sample::Bool(b) => Value::Bool(b),
        }
    }
}

impl Value<'_> {
    /// The value as an ACL matches it.
    pub fn as_sample(&self) -> Sample<'_> {
        match self {
            Value::Str(s) | Value::Bin(s) => Sample::Str(s),
            Value::Shared(s) => Sample::Str(s),
            Value::Int(i) => Sample::Int(*i),
            Value::Ip(ip) => Sample::Ip(*ip),
            Value::Bool(b) => Sample::Bool(*b),
        }
    }

    /// Appends the value as text (a `%[...]` value, a map key).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Value::Str(s) | Value::Bin(s) => out.extend_from_slice(s),
            Value::Shared(s) => out.extend_from_slice(s),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Ip(ip) => {
                let _ = write!(out, "{ip}");
            }
            Value::Bool(b) => out.push(if *b { b'1' } else { b'0' }),
        }
    }
}

/// HAProxy's `c_str2int`: an optional sign and decimal digits, stopping at
/// the first other byte; nothing if it does not start with a digit.
pub fn str2int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 {
        return None;
    }
    let mut v: i64 = 0;
    for &b in &digits[..len] {
        v = v.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    Some(if neg { -v } else { v })
}

fn text(bytes: Vec<u8>) -> Value<'static> {
    Value::Str(Cow::Owned(bytes))
}

/// HAProxy's sample casts (`sample_casts`): `None` where HAProxy has no
/// cast (an IPv6 address to an integer, an address to a boolean).
pub fn cast(v: Value<'_>, to: ValType) -> Option<Value<'_>> {
    use ValType as T;
    use Value as V;
    Some(match (v, to) {
        (v, T::Any) => v,
        (V::Shared(s), T::Str) => V::Shared(s),
        (V::Shared(s), to) => return cast(V::Str(Cow::Owned(s.to_vec())), to),
        (V::Str(s) | V::Bin(s), T::Str) => V::Str(s),
        (V::Str(s) | V::Bin(s), T::Bin) => V::Bin(s),
        (V::Str(s) | V::Bin(s), T::Int) => V::Int(str2int(&s)?),
        (V::Str(s) | V::Bin(s), T::Bool) => V::Bool(str2int(&s)? != 0),
        (V::Str(s) | V::Bin(s), T::Ip) => V::Ip(
            std::str::from_utf8(&s)
                .ok()?
                .trim()
                .parse::<IpAddr>()
                .ok()?
                .to_canonical(),
        ),
        (V::Int(i), T::Int) => V::Int(i),
        (V::Int(i), T::Bool) => V::Bool(i != 0),
        (V::Int(i), T::Str) => text(i.to_string().into_bytes()),
        (V::Int(i), T::Bin) => V::Bin(Cow::Owned(i.to_be_bytes().to_vec())),
        (V::Int(i), T::Ip) => V::Ip(IpAddr::V4(Ipv4Addr::from(i as u32))),
        (V::Bool(b), T::Bool) => V::Bool(b),
        (V::Bool(b), T::Int) => V::Int(i64::from(b)),
        (V::Bool(b), T::Str) => V::Str(Cow::Borrowed(if b { b"1" } else { b"0" })),
        (V::Bool(b), T::Bin) => V::Bin(Cow::Owned(i64::from(b).to_be_bytes().to_vec())),
        (V::Bool(b), T::Ip) => V::Ip(IpAddr::V4(Ipv4Addr::from(u32::from(b)))),
        (V::Ip(ip), T::Ip) => V::Ip(ip),
        (V::Ip(ip), T::Str) => text(ip.to_string().into_bytes()),
        (V::Ip(IpAddr::V4(a)), T::Bin) => V::Bin(Cow::Owned(a.octets().to_vec())),
        (V::Ip(IpAddr::V6(a)), T::Bin) => V::Bin(Cow::Owned(a.octets().to_vec())),
        (V::Ip(IpAddr::V4(a)), T::Int) => V::Int(i64::from(u32::from(a))),
        (V::Ip(_), T::Int | T::Bool) => return None,
    })
}

/// A converter argument, checked and compiled at load.
#[derive(Debug, Clone)]
pub enum Arg {
    Str(Box<[u8]>),
    Int(i64),
    Regex(Regex),
    Map(MapRef),
    /// A stick table, and what the converter reads from its entries.
    Table(table::TableArg),
}

impl Arg {
    fn int(&self) -> Option<i64> {
        match self {
            Arg::Int(i) => Some(*i),
            _ => None,
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Arg::Str(s) => s,
            _ => b"",
        }
    }
}

/// What an argument must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    Str,
    Int,
    /// Compiled once at load (case-insensitively when the converter's
    /// `flags` argument holds `i`).
    Regex,
    /// A map file, read at load (path relative to the configuration).
    Map,
    /// A stick table's name, resolved at load (`table_*` converters).
    Table,
}

#[derive(Debug, Clone, Copy)]
pub struct ArgSpec {
    pub name: &'static str,
    pub kind: ArgKind,
    pub optional: bool,
}

const fn req(name: &'static str, kind: ArgKind) -> ArgSpec {
    ArgSpec {
        name,
        kind,
        optional: false,
    }
}

const fn opt(name: &'static str, kind: ArgKind) -> ArgSpec {
    ArgSpec {
        name,
        kind,
        optional: true,
    }
}

/// A converter's function: its arguments, its (cast) input, the facts of
/// the message; `None` when it fails.
pub type ConvFn = for<'a> fn(&'a [Arg], Value<'a>, &Facts<'_>) -> Option<Value<'a>>;

/// One row of the converter table.
pub struct ConvDef {
    pub name: &'static str,
    pub args: &'static [ArgSpec],
    pub input: ValType,
    pub output: ValType,
    pub description: &'static str,
    pub apply: ConvFn,
}

impl std::fmt::Debug for ConvDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl ConvDef {
    /// `name(<a>[,<b>])`, for hints and the docs.
    pub fn usage(&self) -> String {
        if self.args.is_empty() {
            return self.name.to_string();
        }
        let mut s = format!("{}(", self.name);
        let mut optional = 0;
        for (i, a) in self.args.iter().enumerate() {
            if a.optional {
                s.push('[');
                optional += 1;
            }
            if i > 0 {
                s.push(',');
            }
            s.push('<');
            s.push_str(a.name);
            s.push('>');
        }
        s.push_str(&"]".repeat(optional));
        s.push(')');
        s
    }
}

/// A converter as compiled from a rule.
#[derive(Debug, Clone)]
pub struct Conv {
    pub def: &'static ConvDef,
    pub args: Vec<Arg>,
    /// The def's output, or for a map converter the type its name asks
    /// (`map_str_int` gives integers).
    pub output: ValType,
}

impl Conv {
    pub fn apply<'a>(&'a self, v: Value<'a>, facts: &Facts<'_>) -> Option<Value<'a>> {
        let v = cast(v, self.def.input)?;
        (self.def.apply)(&self.args, v, facts)
    }
}

/// Runs a converter chain on one sample.
pub fn run_chain<'a>(convs: &'a [Conv], v: Value<'a>, facts: &Facts<'_>) -> Option<Value<'a>> {
    let mut v = v;
    for c in convs {
        v = c.apply(v, facts)?;
    }
    Some(v)
}

/// The type a chain gives for a fetch of type `fetch`.
pub fn chain_type(fetch: ValType, convs: &[Conv]) -> ValType {
    convs.last().map_or(fetch, |c| c.output)
}

use table::c_table;
use ArgKind::{Int as AInt, Map as AMap, Regex as ARegex, Str as AStr, Table as ATable};
use ValType::{Any, Bin, Bool, Int, Ip, Str};

/// The argument of the `table_*` converters.
const TABLE: &[ArgSpec] = &[req("table", ATable)];
/// `table_expire`, `table_idle`: what to give when the key has no entry.
const TABLE_DEFAULT: &[ArgSpec] = &[req("table", ATable), opt("default_value", AInt)];

/// Every converter percore has. The map family (`map`, `map_<match>`,
/// `map_<match>_<output>`) is one row: its name is parsed by
/// [`map_variant`].
pub static CONVERTERS: &[ConvDef] = &[
    ConvDef { name: "lower", args: &[], input: Str, output: Str, description: "ASCII letters to lowercase", apply: c_lower },
    ConvDef { name: "upper", args: &[], input: Str, output: Str, description: "ASCII letters to uppercase", apply: c_upper },
    ConvDef { name: "base64", args: &[], input: Bin, output: Str, description: "base64 encoding (RFC 4648, padded)", apply: c_base64 },
    ConvDef { name: "b64dec", args: &[], input: Str, output: Bin, description: "base64 decoding; fails on invalid input", apply: c_b64dec },
    ConvDef { name: "url_dec", args: &[opt("in_form", AInt)], input: Str, output: Str, description: "percent-decoding; `+` is a space after `?` (everywhere if in_form is not 0); fails on a bad escape", apply: c_url_dec },
    ConvDef { name: "hex", args: &[], input: Bin, output: Str, description: "each byte as two uppercase hex digits", apply: c_hex },
    ConvDef { name: "crc32", args: &[opt("avalanche", AInt)], input: Bin, output: Int, description: "CRC-32 (IEEE); avalanche 1 mixes the bits further", apply: c_crc32 },
    ConvDef { name: "djb2", args: &[opt("avalanche", AInt)], input: Bin, output: Int, description: "DJB2 hash (32 bits)", apply: c_djb2 },
    ConvDef { name: "sdbm", args: &[opt("avalanche", AInt)], input: Bin, output: Int, description: "SDBM hash (32 bits)", apply: c_sdbm },
    ConvDef { name: "wt6", args: &[opt("avalanche", AInt)], input: Bin, output: Int, description: "WT6 hash (32 bits)", apply: c_wt6 },
    ConvDef { name: "xxh3", args: &[opt("seed", AInt)], input: Bin, output: Int, description: "XXH3 64-bit hash, signed", apply: c_xxh3 },
    ConvDef { name: "sha1", args: &[], input: Bin, output: Bin, description: "SHA-1 digest (20 bytes)", apply: c_sha1 },
    ConvDef { name: "sha2", args: &[opt("bits", AInt)], input: Bin, output: Bin, description: "SHA-2 digest, bits 224, 256 (default), 384 or 512", apply: c_sha2 },
    ConvDef { name: "regsub", args: &[req("regex", ARegex), req("subst", AStr), opt("flags", AStr)], input: Str, output: Str, description: "replaces the first match (every match with flag g; i: ignore case) by subst, where \\1..\\9 are the groups", apply: c_regsub },
    ConvDef { name: "field", args: &[req("index", AInt), req("delimiters", AStr), opt("count", AInt)], input: Str, output: Str, description: "the index-th field (1 is the first, -1 the last) between any of the delimiter bytes; count fields (0: all the rest)", apply: c_field },
    ConvDef { name: "word", args: &[req("index", AInt), req("delimiters", AStr), opt("count", AInt)], input: Str, output: Str, description: "as field, runs of delimiters count as one", apply: c_word },
    ConvDef { name: "bytes", args: &[req("offset", AInt), opt("length", AInt)], input: Bin, output: Bin, description: "length bytes from offset (all the rest without length)", apply: c_bytes },
    ConvDef { name: "length", args: &[], input: Str, output: Int, description: "length in bytes", apply: c_length },
    ConvDef { name: "concat", args: &[opt("start", AStr), opt("var", AStr), opt("end", AStr)], input: Str, output: Str, description: "start, the sample, then end (the variable argument must be empty: variables are not in percore yet)", apply: c_concat },
    ConvDef { name: "json", args: &[opt("input-code", AStr)], input: Str, output: Str, description: "escaped for a JSON string; input-code ascii (default), utf8 (fails on invalid UTF-8) or utf8s (skips it)", apply: c_json },
    ConvDef { name: "ipmask", args: &[req("mask4", AStr), opt("mask6", AInt)], input: Ip, output: Ip, description: "the address masked (mask4: prefix length or dotted mask; mask6: prefix length, IPv6 fails without it)", apply: c_ipmask },
    ConvDef { name: "add", args: &[req("value", AInt)], input: Int, output: Int, description: "plus value", apply: c_add },
    ConvDef { name: "sub", args: &[req("value", AInt)], input: Int, output: Int, description: "minus value", apply: c_sub },
    ConvDef { name: "mul", args: &[req("value", AInt)], input: Int, output: Int, description: "times value", apply: c_mul },
    ConvDef { name: "div", args: &[req("value", AInt)], input: Int, output: Int, description: "divided by value (the largest integer when value is 0)", apply: c_div },
    ConvDef { name: "mod", args: &[req("value", AInt)], input: Int, output: Int, description: "remainder of the division by value (0 when value is 0)", apply: c_mod },
    ConvDef { name: "and", args: &[req("value", AInt)], input: Int, output: Int, description: "bitwise AND", apply: c_and },
    ConvDef { name: "or", args: &[req("value", AInt)], input: Int, output: Int, description: "bitwise OR", apply: c_or },
    ConvDef { name: "xor", args: &[req("value", AInt)], input: Int, output: Int, description: "bitwise XOR", apply: c_xor },
    ConvDef { name: "neg", args: &[], input: Int, output: Int, description: "the opposite", apply: c_neg },
    ConvDef { name: "cpl", args: &[], input: Int, output: Int, description: "bitwise complement", apply: c_cpl },
    ConvDef { name: "bool", args: &[], input: Int, output: Bool, description: "true if not 0", apply: c_bool },
    ConvDef { name: "not", args: &[], input: Int, output: Bool, description: "true if 0", apply: c_not },
    ConvDef { name: "odd", args: &[], input: Int, output: Bool, description: "true if odd", apply: c_odd },
    ConvDef { name: "even", args: &[], input: Int, output: Bool, description: "true if even", apply: c_even },
    ConvDef { name: "iif", args: &[req("true", AStr), req("false", AStr)], input: Bool, output: Str, description: "one of two strings by the boolean", apply: c_iif },
    ConvDef { name: "ltime", args: &[req("format", AStr), opt("offset", AInt)], input: Int, output: Str, description: "a UNIX time (plus offset seconds) in local time, strftime format", apply: c_ltime },
    ConvDef { name: "utime", args: &[req("format", AStr), opt("offset", AInt)], input: Int, output: Str, description: "a UNIX time (plus offset seconds) in UTC, strftime format", apply: c_utime },
    ConvDef { name: "http_date", args: &[opt("offset", AInt), opt("unit", AStr)], input: Int, output: Str, description: "a UNIX time (unit s, ms or us; plus offset) as an HTTP date (IMF-fixdate)", apply: c_http_date },
    ConvDef { name: "table_conn_cnt", args: TABLE, input: Any, output: Int, description: "conn_cnt of the sample's entry in table (0 without entry)", apply: c_table },
    ConvDef { name: "table_conn_cur", args: TABLE, input: Any, output: Int, description: "conn_cur of the sample's entry in table (0 without entry)", apply: c_table },
    ConvDef { name: "table_conn_rate", args: TABLE, input: Any, output: Int, description: "conn_rate of the sample's entry in table (0 without entry)", apply: c_table },
    ConvDef { name: "table_sess_cnt", args: TABLE, input: Any, output: Int, description: "sess_cnt of the sample's entry in table (0 without entry)", apply: c_table },
    ConvDef { name: "table_sess_rate", args: TABLE, input: Any, output: Int, description: "sess_rate of the sample's entry in table (0 without entry)", apply: c_table },
    ConvDef { name: "table_http_req_cnt", args: TABLE, input: Any, output: Int, description: "http_req_cnt of the sample's entry in table (0 without entry)", apply: c_table },
    ConvDef { name: "table_http_req_rate", args: TABLE, input: Any, output: Int, description: "http_req_rate of the sample's entry in table (0 without entry)", apply: c_table },
    ConvDef { name: "table_http_err_cnt", args: TABLE, input: Any, output: Int, description: "http_err_cnt of the sample's entry in table (0 without entry)", apply: c_table },
    ConvDef { name: "table_http_err_rate", args: TABLE, input: Any, output: Int, description: "http_err_rate of the sample's entry in table (0 without entry)", apply: c_table },
    ConvDef { name: "table_bytes_in_rate", args: TABLE, input: Any, output: Int, description: "bytes_in_rate of the sample's entry in table (0 without entry)", apply: c_table },
    ConvDef { name: "table_bytes_out_rate", args: TABLE, input: Any, output: Int, description: "bytes_out_rate of the sample's entry in table (0 without entry)", apply: c_table },
    ConvDef { name: "table_kbytes_in", args: TABLE, input: Any, output: Int, description: "bytes_in_cnt in KiB of the sample's entry in table (0 without entry)", apply: c_table },
    ConvDef { name: "table_kbytes_out", args: TABLE, input: Any, output: Int, description: "bytes_out_cnt in KiB of the sample's entry in table (0 without entry)", apply: c_table },
    ConvDef { name: "table_gpc0", args: TABLE, input: Any, output: Int, description: "gpc0 of the sample's entry in table (0 without entry)", apply: c_table },
    ConvDef { name: "table_gpc0_rate", args: TABLE, input: Any, output: Int, description: "gpc0_rate of the sample's entry in table (0 without entry)", apply: c_table },
    ConvDef { name: "table_gpt0", args: TABLE, input: Any, output: Int, description: "gpt0 of the sample's entry in table (0 without entry)", apply: c_table },
    ConvDef { name: "table_server_id", args: TABLE, input: Any, output: Int, description: "server_id of the sample's entry in table (0 without entry)", apply: c_table },
    ConvDef { name: "table_trackers", args: TABLE, input: Any, output: Int, description: "sessions tracking the sample's entry in table, on every core (0 without entry)", apply: c_table },
    ConvDef { name: "table_expire", args: TABLE_DEFAULT, input: Any, output: Int, description: "ms before the sample's entry in table expires (the default, or no sample, without entry; the table needs expire)", apply: c_table },
    ConvDef { name: "table_idle", args: TABLE_DEFAULT, input: Any, output: Int, description: "ms since the last update of the sample's entry in table (the default, or no sample, without entry; the table needs expire)", apply: c_table },
    ConvDef { name: "map", args: &[req("file", AMap), opt("default", AStr)], input: Any, output: Str, description: "the value of the first key of the map file matching the sample; map_<match>[_<output>]: match str (default), beg, end, sub, dir, dom, reg, ip, int; output str (default), int, ip", apply: c_map },
];

/// The converter named `name`; map variants resolve to the `map` row.
pub fn find(name: &str) -> Option<&'static ConvDef> {
    let name = if map_variant(name).is_some() {
        "map"
    } else {
        name
    };
    CONVERTERS.iter().find(|c| c.name == name)
}

/// Names for "did you mean" hints.
pub fn names() -> Vec<&'static str> {
    CONVERTERS.iter().map(|c| c.name).collect()
}

/// `map`, `map_beg`, `map_str_int`...: the match kind and output type.
pub fn map_variant(name: &str) -> Option<(crate::maps::MatchKind, ValType)> {
    use crate::maps::MatchKind;
    let rest = name.strip_prefix("map")?;
    if rest.is_empty() {
        return Some((MatchKind::Str, ValType::Str));
    }
    let rest = rest.strip_prefix('_')?;
    let (kind, out) = match rest.split_once('_') {
        Some((k, o)) => (k, Some(o)),
        None => (rest, None),
    };
    let kind = MatchKind::from_name(kind).filter(|k| *k != MatchKind::Len)?;
    let out = match out {
        None | Some("str") => ValType::Str,
        Some("int") => ValType::Int,
        Some("ip") => ValType::Ip,
        Some(_) => return None,
    };
    Some((kind, out))
}

// ------------------------------------------------------------ functions

fn str_of(v: Value<'_>) -> Option<Cow<'_, [u8]>> {
    match v {
        Value::Str(s) | Value::Bin(s) => Some(s),
        Value::Shared(s) => Some(Cow::Owned(s.to_vec())),
        _ => None,
    }
}

fn int_of(v: &Value<'_>) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

/// Applies `f` to every byte, copying only if some byte changes.
fn map_bytes(s: Cow<'_, [u8]>, f: fn(&u8) -> u8) -> Cow<'_, [u8]> {
    if s.iter().all(|b| f(b) == *b) {
        return s;
    }
    Cow::Owned(s.iter().map(f).collect())
}

/// `s[range]`, borrowed when `s` is.
fn slice(s: Cow<'_, [u8]>, range: std::ops::Range<usize>) -> Cow<'_, [u8]> {
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(&b[range]),
        Cow::Owned(mut v) => {
            v.truncate(range.end);
            v.drain(..range.start);
            Cow::Owned(v)
        }
    }
}

fn c_lower<'a>(_: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    Some(Value::Str(map_bytes(str_of(v)?, u8::to_ascii_lowercase)))
}

fn c_upper<'a>(_: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    Some(Value::Str(map_bytes(str_of(v)?, u8::to_ascii_uppercase)))
}

fn c_base64<'a>(_: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    let s = str_of(v)?;
    Some(text(
        base64::engine::general_purpose::STANDARD
            .encode(&s)
            .into_bytes(),
    ))
}

fn c_b64dec<'a>(_: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    let s = str_of(v)?;
    base64::engine::general_purpose::STANDARD
        .decode(&s)
        .ok()
        .map(|b| Value::Bin(Cow::Owned(b)))
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn c_url_dec<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    let s = str_of(v)?;
    let in_form = args.first().and_then(Arg::int).is_some_and(|i| i != 0);
    if !s.iter().any(|&b| b == b'%' || b == b'+') {
        return Some(Value::Str(s));
    }
    let mut out = Vec::with_capacity(s.len());
    let mut query = in_form;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let hi = hex_digit(*s.get(i + 1)?)?;
                let lo = hex_digit(*s.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
            b'+' if query => out.push(b' '),
            b'?' => {
                query = true;
                out.push(b'?');
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(text(out))
}

fn c_hex<'a>(_: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    let s = str_of(v)?;
    let mut out = Vec::with_capacity(s.len() * 2);
    for b in s.iter() {
        let _ = write!(out, "{b:02X}");
    }
    Some(text(out))
}

/// HAProxy's `full_hash` (Bob Jenkins' 32-bit integer mix).
pub fn avalanche(a: u32) -> u32 {
    let a = a.wrapping_add(0x7ed5_5d16).wrapping_add(a << 12);
    let a = (a ^ 0xc761_c23c) ^ (a >> 19);
    let a = a.wrapping_add(0x1656_67b1).wrapping_add(a << 5);
    let a = a.wrapping_add(0xd3a2_646c) ^ (a << 9);
    let a = a.wrapping_add(0xfd70_46c5).wrapping_add(a << 3);
    (a ^ 0xb55a_4f09) ^ (a >> 16)
}

pub fn djb2(s: &[u8]) -> u32 {
    s.iter().fold(5381u32, |h, &b| {
        (h << 5).wrapping_add(h).wrapping_add(u32::from(b))
    })
}

pub fn sdbm(s: &[u8]) -> u32 {
    s.iter().fold(0u32, |h, &b| {
        u32::from(b)
            .wrapping_add(h << 6)
            .wrapping_add(h << 16)
            .wrapping_sub(h)
    })
}

/// Willy Tarreau's WT6 hash, as HAProxy's `hash_wt6`.
pub fn wt6(s: &[u8]) -> u32 {
    let (mut h0, mut h1) = (0xa53c_965au32, 0x5ca6_953au32);
    let (mut step0, mut step1) = (6u32, 18u32);
    for &b in s {
        let t = u32::from(b);
        h0 = !(h0 ^ t);
        h1 = !(h1.wrapping_add(t));
        let t = h1.rotate_left(step0);
        h1 = h0.rotate_left(step1);
        h0 = t;
        let t = ((h0 >> 16) ^ h1) & 0xffff;
        step0 = t & 0x1f;
        step1 = t >> 11;
    }
    h0 ^ h1
}

fn hash_with(args: &[Arg], v: Value<'_>, f: fn(&[u8]) -> u32) -> Option<Value<'static>> {
    let s = str_of(v)?;
    let h = f(&s);
    let h = if args.first().and_then(Arg::int).is_some_and(|a| a != 0) {
        avalanche(h)
    } else {
        h
    };
    Some(Value::Int(i64::from(h)))
}

fn c_crc32<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    hash_with(args, v, crc32fast::hash)
}

fn c_djb2<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    hash_with(args, v, djb2)
}

fn c_sdbm<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    hash_with(args, v, sdbm)
}

fn c_wt6<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    hash_with(args, v, wt6)
}

fn c_xxh3<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    let s = str_of(v)?;
    let seed = args.first().and_then(Arg::int).unwrap_or(0) as u64;
    Some(Value::Int(
        xxhash_rust::xxh3::xxh3_64_with_seed(&s, seed) as i64
    ))
}

fn c_sha1<'a>(_: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    let s = str_of(v)?;
    Some(Value::Bin(Cow::Owned(sha1::Sha1::digest(&s).to_vec())))
}

fn c_sha2<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    let s = str_of(v)?;
    let digest = match args.first().and_then(Arg::int).unwrap_or(256) {
        224 => sha2::Sha224::digest(&s).to_vec(),
        384 => sha2::Sha384::digest(&s).to_vec(),
        512 => sha2::Sha512::digest(&s).to_vec(),
        _ => sha2::Sha256::digest(&s).to_vec(),
    };
    Some(Value::Bin(Cow::Owned(digest)))
}

fn c_regsub<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    let s = str_of(v)?;
    let [Arg::Regex(re), Arg::Str(with), rest @ ..] = args else {
        return None;
    };
    let global = rest.first().is_some_and(|f| f.bytes().contains(&b'g'));
    let mut out = Vec::with_capacity(s.len());
    let mut last = 0;
    for caps in re.captures_iter(&s) {
        let Some(m) = caps.get(0) else { continue };
        out.extend_from_slice(&s[last..m.start()]);
        super::edit::expand(with, &caps, &mut out);
        last = m.end();
        if !global {
            break;
        }
    }
    if last == 0 && out.is_empty() {
        // No match: the sample as it was.
        return Some(Value::Str(s));
    }
    out.extend_from_slice(&s[last..]);
    Some(text(out))
}

/// The byte range of fields `index`.. (`count` of them, 0: all) of `s`
/// split on any byte of `delims`; `skip_empty` makes runs of delimiters one
/// (`word`).
fn fields(
    s: &[u8],
    delims: &[u8],
    index: i64,
    count: i64,
    skip_empty: bool,
) -> Option<std::ops::Range<usize>> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for (i, b) in s.iter().enumerate() {
        if delims.contains(b) {
            spans.push((start, i));
            start = i + 1;
        }
    }
    spans.push((start, s.len()));
    if skip_empty {
        spans.retain(|(a, b)| a < b);
    }
    let n = spans.len() as i64;
    if index == 0 || index.unsigned_abs() > n as u64 {
        return None;
    }
    let count = if count <= 0 { n } else { count };
    let (first, last) = if index > 0 {
        let first = index - 1;
        (first, (first + count - 1).min(n - 1))
    } else {
        let last = n + index;
        ((last - count + 1).max(0), last)
    };
    Some(spans[first as usize].0..spans[last as usize].1)
}

fn field_like<'a>(args: &'a [Arg], v: Value<'a>, skip_empty: bool) -> Option<Value<'a>> {
    let s = str_of(v)?;
    let index = args.first().and_then(Arg::int)?;
    let delims = args.get(1).map(Arg::bytes)?;
    let count = args.get(2).and_then(Arg::int).unwrap_or(1);
    let range = fields(&s, delims, index, count, skip_empty)?;
    Some(Value::Str(slice(s, range)))
}

fn c_field<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    field_like(args, v, false)
}

fn c_word<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    field_like(args, v, true)
}

fn c_bytes<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    let s = str_of(v)?;
    let offset = usize::try_from(args.first().and_then(Arg::int)?).ok()?;
    if offset > s.len() {
        return None;
    }
    let end = match args.get(1).and_then(Arg::int) {
        Some(len) => offset
            .saturating_add(usize::try_from(len).ok()?)
            .min(s.len()),
        None => s.len(),
    };
    Some(Value::Bin(slice(s, offset..end)))
}

fn c_length<'a>(_: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    Some(Value::Int(str_of(v)?.len() as i64))
}

fn c_concat<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    let s = str_of(v)?;
    let start = args.first().map_or(&b""[..], Arg::bytes);
    let end = args.get(2).map_or(&b""[..], Arg::bytes);
    if start.is_empty() && end.is_empty() {
        return Some(Value::Str(s));
    }
    let mut out = Vec::with_capacity(start.len() + s.len() + end.len());
    out.extend_from_slice(start);
    out.extend_from_slice(&s);
    out.extend_from_slice(end);
    Some(text(out))
}

fn c_json<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    let s = str_of(v)?;
    let code = args.first().map_or(&b""[..], Arg::bytes);
    let mut out = Vec::with_capacity(s.len() + 8);
    let escape = |out: &mut Vec<u8>, c: u32| {
        match c {
            0x22 => out.extend_from_slice(b"\\\""),
            0x5c => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x0a => out.extend_from_slice(b"\\n"),
            0x0d => out.extend_from_slice(b"\\r"),
            0x09 => out.extend_from_slice(b"\\t"),
            c if !(0x20..=0x7e).contains(&c) => {
                let _ = write!(out, "\\u{c:04x}");
            }
            c => out.push(c as u8),
        };
    };
    match code {
        b"" | b"ascii" => {
            for &b in s.iter() {
                escape(&mut out, u32::from(b));
            }
        }
        _ => {
            let skip = code == b"utf8s";
            for chunk in s.utf8_chunks() {
                for ch in chunk.valid().chars() {
                    let c = u32::from(ch);
                    if c < 0x80 {
                        escape(&mut out, c);
                    } else {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                }
                if !chunk.invalid().is_empty() && !skip {
                    return None;
                }
            }
        }
    }
    Some(text(out))
}

fn c_ipmask<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    let Value::Ip(ip) = v else { return None };
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let mask = parse_mask4(args.first().map(Arg::bytes)?)?;
            Some(Value::Ip(IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))))
        }
        IpAddr::V6(a) => {
            let bits = u32::try_from(args.get(1).and_then(Arg::int)?).ok()?;
            let mask = u128::MAX
                .checked_shl(128u32.checked_sub(bits)?)
                .unwrap_or(0);
            Some(Value::Ip(IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))))
        }
    }
}

/// An IPv4 mask: a prefix length or a dotted mask.
pub fn parse_mask4(text: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(text).ok()?;
    if let Ok(bits) = text.parse::<u32>() {
        return (bits <= 32).then(|| u32::MAX.checked_shl(32 - bits).unwrap_or(0));
    }
    let mask = u32::from(text.parse::<Ipv4Addr>().ok()?);
    (mask.leading_ones() + mask.trailing_zeros() == 32).then_some(mask)
}

fn arith<'a>(args: &'a [Arg], v: Value<'a>, op: fn(i64, i64) -> i64) -> Option<Value<'a>> {
    Some(Value::Int(op(
        int_of(&v)?,
        args.first().and_then(Arg::int)?,
    )))
}

fn c_add<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    arith(args, v, i64::wrapping_add)
}

fn c_sub<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    arith(args, v, i64::wrapping_sub)
}

fn c_mul<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    arith(args, v, i64::wrapping_mul)
}

fn c_div<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    arith(
        args,
        v,
        |a, b| if b == 0 { i64::MAX } else { a.wrapping_div(b) },
    )
}

fn c_mod<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    arith(args, v, |a, b| if b == 0 { 0 } else { a.wrapping_rem(b) })
}

fn c_and<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    arith(args, v, |a, b| a & b)
}

fn c_or<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    arith(args, v, |a, b| a | b)
}

fn c_xor<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    arith(args, v, |a, b| a ^ b)
}

fn c_neg<'a>(_: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    Some(Value::Int(int_of(&v)?.wrapping_neg()))
}

fn c_cpl<'a>(_: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    Some(Value::Int(!int_of(&v)?))
}

fn c_bool<'a>(_: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    Some(Value::Bool(int_of(&v)? != 0))
}

fn c_not<'a>(_: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    Some(Value::Bool(int_of(&v)? == 0))
}

fn c_odd<'a>(_: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    Some(Value::Bool(int_of(&v)? & 1 == 1))
}

fn c_even<'a>(_: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    Some(Value::Bool(int_of(&v)? & 1 == 0))
}

fn c_iif<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    let Value::Bool(b) = v else { return None };
    let pick = args.get(if b { 0 } else { 1 })?;
    Some(Value::Str(Cow::Borrowed(pick.bytes())))
}

fn strftime(args: &[Arg], v: &Value<'_>, local: bool) -> Option<Value<'static>> {
    let t = int_of(v)?.checked_add(args.get(1).and_then(Arg::int).unwrap_or(0))?;
    let format = std::ffi::CString::new(args.first().map(Arg::bytes)?).ok()?;
    let t = libc::time_t::try_from(t).ok()?;
    // SAFETY: `tm` is plain data that gmtime_r/localtime_r fill; both take
    // valid pointers to a time_t and a tm that live across the call and
    // are thread-safe (the _r variants).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe {
        if local {
            !libc::localtime_r(&t, &mut tm).is_null()
        } else {
            !libc::gmtime_r(&t, &mut tm).is_null()
        }
    };
    if !ok {
        return None;
    }
    let mut buf = [0u8; 256];
    // SAFETY: strftime writes at most `buf.len()` bytes (terminator
    // included) into `buf`, reads the NUL-terminated `format` and `tm`,
    // all valid for the call; it returns how many bytes it wrote.
    let n = unsafe {
        libc::strftime(
            buf.as_mut_ptr().cast::<libc::c_char>(),
            buf.len(),
            format.as_ptr(),
            &tm,
        )
    };
    Some(text(buf[..n].to_vec()))
}

fn c_ltime<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    strftime(args, &v, true)
}

fn c_utime<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    strftime(args, &v, false)
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for a UNIX time in seconds.
pub fn http_date(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn c_http_date<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    let t = int_of(&v)?;
    let offset = args.first().and_then(Arg::int).unwrap_or(0);
    let t = t.checked_add(offset)?;
    let secs = match args.get(1).map(Arg::bytes) {
        Some(b"ms") => t.div_euclid(1000),
        Some(b"us") => t.div_euclid(1_000_000),
        _ => t,
    };
    Some(text(http_date(secs).into_bytes()))
}

fn c_map<'a>(args: &'a [Arg], v: Value<'a>, _: &Facts<'_>) -> Option<Value<'a>> {
    let Some(Arg::Map(map)) = args.first() else {
        return None;
    };
    map.lookup(&v)
        .or_else(|| args.get(1).and_then(|d| map.cast_value(d.bytes())))
}

/// Seconds since the epoch, for the `date` fetch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub mod table;

#[cfg(test)]
mod tests;
