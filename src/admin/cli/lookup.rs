//! `get map` and `get acl`: how each way a file is matched answers a
//! value on this core (every core holds the same), one line per way as
//! HAProxy 2.6 prints them. Both take a map file or an ACL pattern file,
//! as HAProxy's do; each file is looked up as the request path looks it
//! up (a map as a converter does, a pattern file as an ACL does).

use std::borrow::Cow;
use std::net::Ipv4Addr;

use super::acls::UNKNOWN_ACL;
use super::maps::{resolve, UNKNOWN_MAP};
use crate::config::Config;
use crate::maps::{core, Entry, MapData, MatchKind};
use crate::rules::convert_ops::{ValType, Value};
use crate::rules::sample::Sample;

/// One way a file is matched: the loaded map (its place in
/// `Config::maps`) and, for a map file, the type a converter gives its
/// values as.
struct Way {
    file: usize,
    output: Option<ValType>,
}

/// The ways the file `name` names is matched, in the order the rules
/// first used them; a map file when `acl` is false, an ACL pattern file
/// when it is true, the other kind when no file of that kind has the
/// name (as HAProxy).
fn ways(config: &Config, name: &str, acl: bool) -> Vec<Way> {
    let mut files = resolve(config, name, acl);
    if files.is_empty() {
        files = resolve(config, name, !acl);
    }
    match files.first() {
        Some(&first) if !config.maps[first].acl => config
            .map_uses
            .iter()
            .filter(|u| files.contains(&u.map))
            .map(|u| Way {
                file: u.map,
                output: Some(u.output),
            })
            .collect(),
        _ => files
            .into_iter()
            .map(|file| Way { file, output: None })
            .collect(),
    }
}

/// `get map <map> <value>` (`acl` false) or `get acl <acl> <value>`.
/// HAProxy keeps one pattern list for the match kinds that parse and
/// index patterns alike (`sub`, `end`, `dir`, `dom`; `int`, `len`) and
/// prints it with the kind of the first rule that read the file: so does
/// this.
pub fn get(config: &Config, args: &[String], acl: bool) -> String {
    let (Some(name), Some(value)) = (args.first(), args.get(1)) else {
        return if acl {
            "Missing ACL identifier and/or key.\n"
        } else {
            "Missing map identifier and/or key.\n"
        }
        .into();
    };
    let ways = ways(config, name, acl);
    if ways.is_empty() {
        return if acl { UNKNOWN_ACL } else { UNKNOWN_MAP }.into();
    }
    let mut shown: Vec<(u8, bool, Option<ValType>)> = Vec::new();
    let mut out = String::new();
    for way in ways {
        let file = &config.maps[way.file];
        let family = (index_family(file.kind), file.icase, way.output);
        if shown.contains(&family) {
            continue;
        }
        shown.push(family);
        core::with_current(file, |m| line(&mut out, m, way.output, value, acl));
    }
    out
}

/// One way's line.
fn line(out: &mut String, m: &MapData, output: Option<ValType>, value: &str, acl: bool) {
    let case = if m.icase { "insensitive" } else { "sensitive" };
    let verb = if acl { "match" } else { "found" };
    out.push_str(&format!("type={}, case={case}, {verb}=", m.kind.name()));
    let found: Option<&Entry> = match output {
        Some(_) => m.matching_entry_for(&Value::Str(Cow::Borrowed(value.as_bytes()))),
        None => m.matching_entry(Sample::Str(value.as_bytes())),
    };
    let Some(e) = found else {
        out.push_str("no\n");
        return;
    };
    let key = String::from_utf8_lossy(&e.key);
    let idx = m.kind.index_name(m.icase);
    if acl {
        out.push_str(&format!("yes, idx={idx}, pattern=\"{key}\"\n"));
        return;
    }
    out.push_str(&format!("yes, idx={idx}, key=\"{key}\", value="));
    match output {
        Some(output) => out.push_str(&format!(
            "\"{}\", type=\"{}\"\n",
            String::from_utf8_lossy(&e.value),
            value_type(output, &e.value)
        )),
        // A pattern file has keys only.
        None => out.push_str("none\n"),
    }
}

/// HAProxy's name for the type of a map's values: an address is IPv4 if
/// it reads as one, IPv6 otherwise, as HAProxy parses it.
fn value_type(output: ValType, value: &[u8]) -> &'static str {
    match output {
        ValType::Int => "sint",
        ValType::Ip => {
            let v4 = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<Ipv4Addr>().ok());
            if v4.is_some() {
                "ipv4"
            } else {
                "ipv6"
            }
        }
        _ => "str",
    }
}

/// Which of HAProxy's pattern lists a match kind's patterns go in: kinds
/// with the same one share it.
fn index_family(kind: MatchKind) -> u8 {
    match kind {
        MatchKind::Str => 0,
        MatchKind::Beg => 1,
        MatchKind::Sub | MatchKind::End | MatchKind::Dir | MatchKind::Dom => 2,
        MatchKind::Reg => 3,
        MatchKind::Int | MatchKind::Len => 4,
        MatchKind::Ip => 5,
    }
}
