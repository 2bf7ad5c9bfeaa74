//! The stick-table parts of the rule language: `stick-table` lines,
//! `track-sc*` / `sc-inc-gpc0` / `sc-set-gpt0` actions and the `sc_*`,
//! `scN_*`, `src_*` fetches, with HAProxy's grammar.

use std::sync::Arc;

use super::{err, parse_fetch, Env, Parsed, Words};
use crate::config::error::did_you_mean;
use crate::rules::Fetch;
use crate::stick::def::DataKind;
use crate::stick::{DataType, KeyType, Read, StickAction, StickFetch, Stored, TableDef};

const TABLE_HINT: &str = "write type ip|ipv6|integer|string [len <n>] size <n>[k|m|g] \
     [expire <time>] [store <data>,...], e.g. \"type ip size 100k expire 30s store http_req_rate(10s)\"";

/// HAProxy's default `len` of a string key.
const DEFAULT_STRING_LEN: usize = 32;

/// A `stick-table` line of the section `name`.
pub(crate) fn parse_table(name: &str, line: &str) -> Parsed<TableDef> {
    let mut words = Words::new(line)?;
    let mut key = None;
    let mut len = None;
    let mut size = None;
    let mut expire = None;
    let mut store: Vec<Stored> = Vec::new();
    while let Some((at, word)) = words.next() {
        let (vat, value) = match word.as_str() {
            "nopurge" => continue,
            "type" | "len" | "size" | "expire" | "store" => {
                words.expect(&format!("value of `{word}`"), TABLE_HINT)?
            }
            "peers" | "srvkey" | "write-to" | "recv-only" => {
                return err(
                    at,
                    format!("`{word}` is not supported by percore"),
                    "percore's tables are exact across cores without peers; remove it",
                )
            }
            other => {
                let known = ["type", "len", "size", "expire", "store", "nopurge"];
                let hint = match did_you_mean(other, &known) {
                    Some(near) => format!("did you mean `{near}`? {TABLE_HINT}"),
                    None => TABLE_HINT.to_string(),
                };
                return err(at, format!("unknown stick-table keyword `{other}`"), hint);
            }
        };
        match word.as_str() {
            "type" => {
                key = Some(match value.as_str() {
                    "ip" => KeyType::Ip,
                    "ipv6" => KeyType::Ipv6,
                    "integer" => KeyType::Integer,
                    "string" => KeyType::String {
                        len: DEFAULT_STRING_LEN,
                    },
                    other => {
                        return err(
                            vat,
                            format!("unknown stick-table type `{other}`"),
                            "types: ip, ipv6, integer, string",
                        )
                    }
                })
            }
            "len" => match value.parse::<usize>() {
                Ok(n) if (1..=65536).contains(&n) => len = Some((vat, n)),
                _ => return err(vat, format!("bad len `{value}`"), "len is 1 to 65536 bytes"),
            },
            "size" => size = Some(parse_size(vat, &value)?),
            "expire" => {
                expire = Some(crate::config::values::parse_duration(&value).map_err(|i| (vat, i))?)
            }
            _ => {
                // `store a,b` (several `store` words add up).
                let mut offset = vat;
                for item in value.split(',') {
                    store.push(parse_stored(offset, item.trim())?);
                    offset += item.len() + 1;
                }
            }
        }
    }
    let Some(mut key) = key else {
        return err(line.len(), "missing `type`", TABLE_HINT);
    };
    if let Some((at, n)) = len {
        match &mut key {
            KeyType::String { len } => *len = n,
            _ => return err(at, "`len` applies to string tables only", TABLE_HINT),
        }
    }
    let Some(size) = size else {
        return err(line.len(), "missing `size`", TABLE_HINT);
    };
    Ok(TableDef::new(name.into(), key, size, expire, store))
}

fn parse_size(at: usize, text: &str) -> Parsed<u64> {
    let (digits, mult) = match text.as_bytes().last() {
        Some(b'k' | b'K') => (&text[..text.len() - 1], 1024),
        Some(b'm' | b'M') => (&text[..text.len() - 1], 1024 * 1024),
        Some(b'g' | b'G') => (&text[..text.len() - 1], 1024 * 1024 * 1024),
        _ => (text, 1),
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 && n.checked_mul(mult).is_some_and(|v| v <= u64::from(u32::MAX)) => {
            Ok(n * mult)
        }
        _ => err(
            at,
            format!("bad size `{text}`"),
            "size is a number of entries, with an optional k, m or g suffix (e.g. 100k), at most 4g",
        ),
    }
}

fn parse_stored(at: usize, item: &str) -> Parsed<Stored> {
    let (name, period) = match item.split_once('(') {
        Some((name, rest)) => match rest.strip_suffix(')') {
            Some(p) => (name, Some(p)),
            None => {
                return err(
                    at,
                    format!("`{item}`: missing `)`"),
                    "write http_req_rate(10s)",
                )
            }
        },
        None => (item, None),
    };
    let Some(data) = DataType::by_name(name) else {
        let names: Vec<&str> = DataType::ALL.iter().map(|t| t.name()).collect();
        let hint = match did_you_mean(name, &names) {
            Some(near) => format!("did you mean `{near}`? data types: {}", DataType::names()),
            None => format!("data types: {}", DataType::names()),
        };
        return err(at, format!("unknown stick-table data type `{name}`"), hint);
    };
    let period = match (data.kind(), period) {
        (DataKind::Rate, Some(p)) => {
            let d = crate::config::values::parse_duration(p).map_err(|i| (at, i))?;
            if d.is_zero() {
                return err(
                    at,
                    format!("`{item}`: the period is zero"),
                    "write e.g. 10s",
                );
            }
            Some(d)
        }
        (DataKind::Rate, None) => {
            return err(
                at,
                format!("`{name}` needs its period"),
                format!("write {name}(<period>), e.g. {name}(10s)"),
            )
        }
        (_, Some(_)) => {
            return err(
                at,
                format!("`{name}` takes no period"),
                format!("write {name}"),
            )
        }
        (_, None) => None,
    };
    Ok(Stored { data, period })
}

/// The counters a stick-table fetch reads (the `<x>` of `sc_<x>`,
/// `src_<x>`); `trackers` and `tracked` are about a tracked entry, `sc`
/// only.
pub(super) fn reads(src: bool) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = DataType::ALL
        .into_iter()
        .filter(|d| !matches!(d, DataType::Gpc0 | DataType::Gpt0 | DataType::ServerId))
        .map(DataType::name)
        .collect();
    names.extend([
        "kbytes_in",
        "kbytes_out",
        "get_gpc0",
        "inc_gpc0",
        "get_gpt0",
        "clr_gpc0",
    ]);
    if !src {
        names.extend(["tracked", "trackers"]);
    }
    names
}

/// `(slot, what)`: `sc_x` has its slot in the arguments (`None`),
/// `sc1_x` in its name; `src_x` has no slot (`Some(None)` for the
/// outer option means "src").
fn split_fetch(name: &str) -> Option<(Option<Option<u8>>, &str)> {
    if let Some(rest) = name.strip_prefix("sc_") {
        return Some((Some(None), rest));
    }
    if let Some(rest) = name.strip_prefix("src_") {
        // `src_port` is a plain fetch.
        return (rest != "port").then_some((None, rest));
    }
    for (prefix, slot) in [("sc0_", 0), ("sc1_", 1), ("sc2_", 2)] {
        if let Some(rest) = name.strip_prefix(prefix) {
            return Some((Some(Some(slot)), rest));
        }
    }
    None
}

fn read_of(at: usize, name: &str, what: &str, src: bool) -> Parsed<Read> {
    Ok(match what {
        "get_gpc0" => Read::Data(DataType::Gpc0),
        "get_gpt0" => Read::Data(DataType::Gpt0),
        "inc_gpc0" => Read::IncGpc0,
        "clr_gpc0" => Read::ClrGpc0,
        "trackers" if !src => Read::Trackers,
        "kbytes_in" => Read::Kbytes(DataType::BytesInCnt),
        "kbytes_out" => Read::Kbytes(DataType::BytesOutCnt),
        "tracked" if !src => Read::Tracked,
        other => match DataType::by_name(other) {
            Some(d) if !matches!(d, DataType::Gpc0 | DataType::Gpt0 | DataType::ServerId) => {
                Read::Data(d)
            }
            _ => {
                return err(
                    at,
                    format!("unknown fetch `{name}`"),
                    "stick-table fetches: sc_<x>(<n>[,<table>]), sc0_<x>, sc1_<x>, sc2_<x>, src_<x>([<table>]) \
                     with <x> one of conn_cnt, conn_cur, conn_rate, sess_cnt, sess_rate, http_req_cnt, \
                     http_req_rate, http_err_cnt, http_err_rate, bytes_in_cnt, bytes_in_rate, \
                     bytes_out_cnt, bytes_out_rate, kbytes_in, kbytes_out, get_gpc0, inc_gpc0, \
                     gpc0_rate, get_gpt0, clr_gpc0 (and tracked, trackers for sc)",
                )
            }
        },
    })
}

/// A table named in a rule, or the section's own one.
pub(crate) fn table_named(at: usize, name: Option<&str>, env: &Env<'_>) -> Parsed<Arc<TableDef>> {
    let found = match name {
        Some(n) => env.tables.iter().find(|t| &*t.name == n),
        None => env.own_table,
    };
    match (found, name) {
        (Some(t), _) => Ok(Arc::clone(t)),
        (None, Some(n)) => {
            let names: Vec<&str> = env.tables.iter().map(|t| &*t.name).collect();
            err(
                at,
                format!("no stick table named \"{n}\""),
                format!(
                    "a table is named after the frontend or backend that declares stick-table; tables: {}",
                    crate::config::sections::names_or_none(&names)
                ),
            )
        }
        (None, None) => err(
            at,
            "this section has no stick-table",
            "add stick-table = \"type ip size 100k expire 30s store ...\" here, or name a table",
        ),
    }
}

/// A stick-table fetch `name(args)`.
pub(super) fn parse_stick_fetch(
    at: usize,
    name: &str,
    args: &[&str],
    env: &Env<'_>,
) -> Parsed<Fetch> {
    let args: Vec<&str> = args.iter().map(|a| a.trim()).collect();
    if let "table_cnt" | "table_avl" = name {
        let table = match args.as_slice() {
            [] => table_named(at, None, env)?,
            [t] => table_named(at, Some(t), env)?,
            _ => {
                return err(
                    at,
                    format!("`{name}` takes at most a table name"),
                    format!("write {name}([<table>])"),
                )
            }
        };
        return Ok(Fetch::Stick(StickFetch::Entries {
            table,
            free: name == "table_avl",
        }));
    }
    let Some((slot, what)) = split_fetch(name) else {
        return err(at, format!("unknown fetch `{name}`"), "");
    };
    let fetch = match slot {
        None => {
            let read = read_of(at, name, what, true)?;
            let table = match args.as_slice() {
                [] => table_named(at, None, env)?,
                [t] => table_named(at, Some(t), env)?,
                _ => {
                    return err(
                        at,
                        format!("`{name}` takes at most a table name"),
                        format!("write {name}([<table>])"),
                    )
                }
            };
            StickFetch::Src { read, table }
        }
        Some(fixed) => {
            let read = read_of(at, name, what, false)?;
            let (slot, rest) = match fixed {
                Some(s) => (s, &args[..]),
                None => match args.split_first() {
                    Some((n, rest)) => match n.parse::<u8>() {
                        Ok(s) if usize::from(s) < crate::stick::track::SLOTS => (s, rest),
                        _ => {
                            return err(
                                at,
                                format!("`{name}`: bad counter number `{n}`"),
                                "counters are 0, 1 and 2",
                            )
                        }
                    },
                    None => {
                        return err(
                            at,
                            format!("`{name}` needs the counter number"),
                            format!("write {name}(0) for track-sc0"),
                        )
                    }
                },
            };
            let table = match rest {
                [] => None,
                [t] => Some(table_named(at, Some(t), env)?),
                _ => {
                    return err(
                        at,
                        format!("`{name}`: too many arguments"),
                        "write sc_<x>(<n>[,<table>]) or sc<n>_<x>([<table>])",
                    )
                }
            };
            StickFetch::Sc { slot, read, table }
        }
    };
    Ok(Fetch::Stick(fetch))
}

/// Whether `action` is a stick-table action (`sc-inc-gpc0(0)` carries
/// its counter in its name).
pub(super) fn is_stick_action(action: &str) -> bool {
    ["track-sc", "sc-inc-gpc0", "sc-set-gpt0"]
        .iter()
        .any(|p| action.starts_with(p))
}

/// A stick-table action (`track-sc0 src`, `sc-inc-gpc0(0)`, ...).
pub(super) fn parse_stick_action(
    at: usize,
    action: &str,
    words: &mut Words,
    env: &Env<'_>,
) -> Parsed<StickAction> {
    if let Some(n) = action.strip_prefix("track-sc") {
        return parse_track(at, n, words, env);
    }
    let set = action.starts_with("sc-set-gpt0");
    let rest = &action["sc-inc-gpc0".len().min(action.len())..];
    parse_counter_action(at, action, rest, set, words)
}

fn slot_number(at: usize, text: &str, action: &str) -> Parsed<u8> {
    match text.parse::<u8>() {
        Ok(n) if usize::from(n) < crate::stick::track::SLOTS => Ok(n),
        _ => err(
            at,
            format!("`{action}`: bad counter number `{text}`"),
            "counters are 0, 1 and 2 (track-sc0..track-sc2)",
        ),
    }
}

fn parse_track(at: usize, n: &str, words: &mut Words, env: &Env<'_>) -> Parsed<StickAction> {
    let action = format!("track-sc{n}");
    let slot = slot_number(at, n, &action)?;
    let Some((kat, key_text)) = words.argument() else {
        return err(
            words.here(),
            format!("`{action}` needs a key"),
            format!("write {action} <fetch> [table <table>], e.g. {action} src"),
        );
    };
    let (key, _) = parse_fetch(kat, &key_text, env)?;
    if matches!(key, Fetch::Stick(_)) {
        return err(
            kat,
            "a track key cannot be a stick-table counter",
            "track a fetch such as src or req.hdr(x-api-key)",
        );
    }
    let table = match words.peek() {
        Some("table") => {
            words.next();
            let Some((tat, name)) = words.argument() else {
                return err(
                    words.here(),
                    "`table` needs a name",
                    format!("write {action} <fetch> table <table>"),
                );
            };
            table_named(tat, Some(&name), env)?
        }
        _ => table_named(at, None, env)?,
    };
    Ok(StickAction::Track { slot, key, table })
}

fn parse_counter_action(
    at: usize,
    action: &str,
    rest: &str,
    set: bool,
    words: &mut Words,
) -> Parsed<StickAction> {
    let name = if set { "sc-set-gpt0" } else { "sc-inc-gpc0" };
    let Some(n) = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')) else {
        return err(
            at,
            format!("`{action}` needs the counter number"),
            format!("write {name}(0)"),
        );
    };
    let slot = slot_number(at, n, name)?;
    if !set {
        return Ok(StickAction::IncGpc0 { slot });
    }
    let Some((vat, value)) = words.argument() else {
        return err(
            words.here(),
            "sc-set-gpt0 needs a value",
            "write sc-set-gpt0(0) <integer>",
        );
    };
    match value.parse::<i64>() {
        Ok(value) if value >= 0 && value <= i64::from(u32::MAX) => {
            Ok(StickAction::SetGpt0 { slot, value })
        }
        _ => err(
            vat,
            format!("bad value `{value}`"),
            "gpt0 is an integer from 0 to 4294967295",
        ),
    }
}

const STICK_HINT: &str = "write on|match|store-request|store-response <fetch> [table <table>] [if <cond>], e.g. \"on src\"";

/// One `stick` line of a backend (HAProxy's syntax after `stick`).
pub(crate) fn parse_stick_rule(line: &str, env: &Env<'_>) -> Parsed<crate::stick::StickRule> {
    use crate::stick::StickKind;
    let mut words = Words::new(line)?;
    let (at, kind) = words.expect("stick kind", STICK_HINT)?;
    let kind = match kind.as_str() {
        "on" => StickKind::On,
        "match" => StickKind::Match,
        "store-request" => StickKind::StoreRequest,
        "store-response" => StickKind::StoreResponse,
        other => {
            let known = ["on", "match", "store-request", "store-response"];
            let hint = match did_you_mean(other, &known) {
                Some(near) => format!("did you mean `{near}`? {STICK_HINT}"),
                None => STICK_HINT.to_string(),
            };
            return err(at, format!("unknown stick rule `{other}`"), hint);
        }
    };
    let env = Env {
        response: kind == StickKind::StoreResponse,
        ..*env
    };
    let Some((kat, key_text)) = words.argument() else {
        return err(words.here(), "missing the key to stick on", STICK_HINT);
    };
    let (key, _) = parse_fetch(kat, &key_text, &env)?;
    let table = match words.peek() {
        Some("table") => {
            words.next();
            let Some((tat, name)) = words.argument() else {
                return err(words.here(), "`table` needs a name", STICK_HINT);
            };
            table_named(tat, Some(&name), &env)?
        }
        _ => table_named(at, None, &env)?,
    };
    if table.slot_of(DataType::ServerId).is_none() {
        // `stick_tables::read_tables` adds server_id to every table a
        // stick rule names; this one escaped it.
        return err(
            at,
            "the table does not store server_id",
            "add server_id to its store list",
        );
    }
    let rule = super::finish(&mut words, (), &env)?;
    Ok(crate::stick::StickRule {
        kind,
        key,
        table,
        cond: rule.cond,
    })
}

/// The tables `stick` lines name (`table <name>`), or `None` for the
/// section's own: those store `server_id` whether `store` says so or not,
/// as in HAProxy.
pub(crate) fn stick_rule_table(line: &str) -> Option<Option<String>> {
    let words = Words::new(line).ok()?;
    let names: Vec<&str> = words.texts().collect();
    let at = names.iter().position(|w| *w == "table");
    Some(at.and_then(|i| names.get(i + 1)).map(|s| s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn table_lines_as_haproxy_writes_them() {
        let t = parse_table(
            "api",
            "type string len 64 size 100k expire 30s store http_req_rate(10s),gpc0 store conn_cur",
        )
        .unwrap();
        assert_eq!(t.key, KeyType::String { len: 64 });
        assert_eq!(t.size, 102_400);
        assert_eq!(t.expire, Some(Duration::from_secs(30)));
        assert_eq!(t.store.len(), 3);
        assert_eq!(t.store[0].period, Some(Duration::from_secs(10)));
        let e = parse_table("x", "type ip size 1m store http_req_rat(10s)").unwrap_err();
        assert!(e.1.hint.unwrap().contains("http_req_rate"));
        assert!(parse_table("x", "type ip store gpc0").is_err());
        assert!(parse_table("x", "type ip size 10 store http_req_rate").is_err());
        assert!(parse_table("x", "type ip len 4 size 10").is_err());
        assert!(parse_table("x", "type mac size 10").is_err());
    }
}
