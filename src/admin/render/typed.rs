//! HAProxy's typed values: what a stats or info field holds ([`Val`]) and
//! how HAProxy tags it ([`Tag`]: origin, nature, scope and type, written
//! `MGP:u32`), with the two encodings HAProxy's runtime API uses for them
//! (`show stat typed` / `show info typed` lines and the `json` variants).
//! Letters and names are HAProxy 2.6's (doc/management.txt, section 9.2).

use std::borrow::Cow;
use std::fmt::Write;

use crate::log::format::json_str;

/// A field's value type, as printed after the tag letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    S32,
    S64,
    U32,
    U64,
    Flt,
    Str,
}

impl Type {
    pub fn as_str(self) -> &'static str {
        match self {
            Type::S32 => "s32",
            Type::S64 => "s64",
            Type::U32 => "u32",
            Type::U64 => "u64",
            Type::Flt => "flt",
            Type::Str => "str",
        }
    }
}

/// Origin, nature and scope letters plus the type: `MGP:u32` is a metric,
/// gauge, per process, unsigned 32 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    origin: u8,
    nature: u8,
    scope: u8,
    pub ty: Type,
}

const ORIGINS: &[u8] = b"MSKCP";
const NATURES: &[u8] = b"GLmMRCDATNOa";
const SCOPES: &[u8] = b"CPSs";

const fn one_of(c: u8, set: &[u8]) -> bool {
    let mut i = 0;
    while i < set.len() {
        if set[i] == c {
            return true;
        }
        i += 1;
    }
    false
}

impl Tag {
    /// Parses `MGP:u32`. Meant for the static tables: a malformed tag
    /// there is a compile error, since the tables are evaluated at compile
    /// time.
    pub const fn parse(s: &str) -> Tag {
        let b = s.as_bytes();
        assert!(b.len() == 7 && b[3] == b':', "a tag looks like MGP:u32");
        assert!(one_of(b[0], ORIGINS), "unknown origin letter");
        assert!(one_of(b[1], NATURES), "unknown nature letter");
        assert!(one_of(b[2], SCOPES), "unknown scope letter");
        let ty = match (b[4], b[5], b[6]) {
            (b's', b'3', b'2') => Type::S32,
            (b's', b'6', b'4') => Type::S64,
            (b'u', b'3', b'2') => Type::U32,
            (b'u', b'6', b'4') => Type::U64,
            (b'f', b'l', b't') => Type::Flt,
            (b's', b't', b'r') => Type::Str,
            _ => panic!("unknown type"),
        };
        Tag {
            origin: b[0],
            nature: b[1],
            scope: b[2],
            ty,
        }
    }

    /// The three letters, `MGP`.
    pub fn letters(self) -> [char; 3] {
        [
            char::from(self.origin),
            char::from(self.nature),
            char::from(self.scope),
        ]
    }

    pub fn origin_name(self) -> &'static str {
        match self.origin {
            b'M' => "Metric",
            b'S' => "Status",
            b'K' => "Key",
            b'C' => "Config",
            b'P' => "Product",
            _ => "Unknown",
        }
    }

    pub fn nature_name(self) -> &'static str {
        match self.nature {
            b'G' => "Gauge",
            b'L' => "Limit",
            b'm' => "Min",
            b'M' => "Max",
            b'R' => "Rate",
            b'C' => "Counter",
            b'D' => "Duration",
            b'A' => "Age",
            b'T' => "Time",
            b'N' => "Name",
            b'O' => "Output",
            b'a' => "Avg",
            _ => "Unknown",
        }
    }

    pub fn scope_name(self) -> &'static str {
        match self.scope {
            b'C' => "Cluster",
            b'P' => "Process",
            b'S' => "Service",
            b's' => "System",
            _ => "Unknown",
        }
    }

    /// `MGP:u32`, as in typed lines.
    pub fn write(self, out: &mut String) {
        out.extend(self.letters());
        out.push(':');
        out.push_str(self.ty.as_str());
    }

    /// `"tags":{...}` of HAProxy's JSON field objects, without the key.
    pub fn write_json(self, out: &mut String) {
        let _ = write!(
            out,
            "{{\"origin\":\"{}\",\"nature\":\"{}\",\"scope\":\"{}\"}}",
            self.origin_name(),
            self.nature_name(),
            self.scope_name()
        );
    }
}

/// A field's value. `Empty` is HAProxy's empty field: an empty CSV cell,
/// and no line at all in typed and JSON output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val<'a> {
    Empty,
    Str(Cow<'a, str>),
    U64(u64),
    /// percore's own JSON has booleans; HAProxy formats show them as 1/0.
    Bool(bool),
}

impl Val<'_> {
    pub fn is_empty(&self) -> bool {
        matches!(self, Val::Empty)
    }

    /// As a CSV cell or a typed/plain line's value. Names cannot hold
    /// commas or newlines (restricted at config load), so no quoting.
    pub fn write(&self, out: &mut String) {
        match self {
            Val::Empty => {}
            Val::Str(s) => out.push_str(s),
            Val::U64(n) => {
                let _ = write!(out, "{n}");
            }
            Val::Bool(b) => out.push(if *b { '1' } else { '0' }),
        }
    }

    pub fn to_plain(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }

    /// As a value in percore's own JSON: numbers, strings, booleans.
    pub fn write_json(&self, out: &mut String) {
        match self {
            Val::Empty => out.push_str("null"),
            Val::Str(s) => json_str(out, s),
            Val::U64(n) => {
                let _ = write!(out, "{n}");
            }
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        }
    }

    /// HAProxy's `"value":{"type":"u32","value":0}` object, without the
    /// key.
    pub fn write_json_typed(&self, ty: Type, out: &mut String) {
        let _ = write!(out, "{{\"type\":\"{}\",\"value\":", ty.as_str());
        match self {
            Val::Str(s) => json_str(out, s),
            other => other.write(out),
        }
        out.push('}');
    }
}

impl From<u64> for Val<'_> {
    fn from(n: u64) -> Self {
        Val::U64(n)
    }
}

impl From<u32> for Val<'_> {
    fn from(n: u32) -> Self {
        Val::U64(u64::from(n))
    }
}

impl From<bool> for Val<'_> {
    fn from(b: bool) -> Self {
        Val::Bool(b)
    }
}

impl<'a> From<&'a str> for Val<'a> {
    fn from(s: &'a str) -> Self {
        Val::Str(Cow::Borrowed(s))
    }
}

impl<'a> From<Cow<'a, str>> for Val<'a> {
    fn from(s: Cow<'a, str>) -> Self {
        Val::Str(s)
    }
}

impl From<String> for Val<'_> {
    fn from(s: String) -> Self {
        Val::Str(Cow::Owned(s))
    }
}

impl<'a, T: Into<Val<'a>>> From<Option<T>> for Val<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Val::Empty, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_and_print_as_haproxy_does() {
        let t = Tag::parse("MaP:u32");
        let mut s = String::new();
        t.write(&mut s);
        assert_eq!(s, "MaP:u32");
        let mut j = String::new();
        t.write_json(&mut j);
        assert_eq!(j, r#"{"origin":"Metric","nature":"Avg","scope":"Process"}"#);
        let k = Tag::parse("KNS:str");
        assert_eq!(
            (k.origin_name(), k.nature_name(), k.scope_name(), k.ty),
            ("Key", "Name", "Service", Type::Str)
        );
    }

    #[test]
    fn values_encode_for_each_format() {
        let mut out = String::new();
        Val::from("a\"b").write_json_typed(Type::Str, &mut out);
        assert_eq!(out, r#"{"type":"str","value":"a\"b"}"#);
        out.clear();
        Val::from(7u64).write_json_typed(Type::U32, &mut out);
        assert_eq!(out, r#"{"type":"u32","value":7}"#);
        assert_eq!(Val::from(true).to_plain(), "1");
        assert_eq!(Val::from(None::<u32>), Val::Empty);
        assert_eq!(Val::from(Some(3u32)).to_plain(), "3");
    }
}
