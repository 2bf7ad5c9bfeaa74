//! `show map`, `add map`, `set map`, `del map`, `clear map`: HAProxy's map
//! commands, worded as HAProxy 2.6 answers them. A map is named by its
//! file (as the rules wrote it, relative to the configuration file, or as
//! `show map` prints it) or by `#<id>`. A change is checked here, then
//! sent to every core, each of which applies it to its own copy
//! (`crate::maps::core`) before the command is answered.

use std::sync::Arc;

use super::command::Kind;
use crate::admin::apply::CoreRequest;
use crate::config::Config;
use crate::maps::{core, EntryRef, MapChange, MapData};

pub(super) const UNKNOWN_MAP: &str = "Unknown map identifier. Please use #<id> or <file>.\n";

/// The maps (one per match kind) loaded from the file `name` names;
/// ACL pattern files when `acl`.
pub(super) fn resolve(config: &Config, name: &str, acl: bool) -> Vec<usize> {
    let base = config.source.parent().unwrap_or(std::path::Path::new("."));
    let path = match name.strip_prefix('#') {
        Some(id) => match id.parse::<usize>() {
            Ok(uid) => match config.maps.iter().find(|m| m.uid == uid) {
                Some(m) if m.acl == acl => m.path.clone(),
                _ => return Vec::new(),
            },
            Err(_) => return Vec::new(),
        },
        None => base.join(name),
    };
    config
        .maps
        .iter()
        .enumerate()
        .filter(|(_, m)| m.acl == acl && m.path == path)
        .map(|(i, _)| i)
        .collect()
}

/// `show map [<map>]`: the list of maps, or one map's entries on this
/// core (every core holds the same).
pub fn show(config: &Config, args: &[String]) -> String {
    if args.is_empty() {
        let mut out = String::from("# id (file) description\n");
        let mut seen: Vec<&std::path::Path> = Vec::new();
        for m in config.maps.iter().filter(|m| !m.acl) {
            if seen.contains(&m.path.as_path()) {
                continue;
            }
            seen.push(&m.path);
            let (curr, next, count) = core::with_current(m, |d| (d.curr_ver, d.next_ver, d.len()));
            out.push_str(&format!(
                "{} ({}) pattern loaded from file '{}' used by map at file '{}'. curr_ver={curr} next_ver={next} entry_cnt={count}\n",
                m.uid,
                m.path.display(),
                m.path.display(),
                config.source.display(),
            ));
        }
        return out;
    };
    show_entries(config, args, false)
}

/// The `@<ver>` word the versioned forms take before the map or ACL
/// name, and the words after it.
pub(super) fn split_version(args: &[String]) -> (Option<&str>, &[String]) {
    match args.first().and_then(|a| a.strip_prefix('@')) {
        Some(ver) => (Some(ver), &args[1..]),
        None => (None, args),
    }
}

const OUT_OF_RANGE: &str = "Version number out of range.\n";

/// The version `add|clear map|acl @<ver>` names, checked against the
/// last one prepared.
pub(super) fn version_for_change(map: &Arc<MapData>, ver: &str, acl: bool) -> Result<u32, String> {
    let next = core::with_current(map, |m| m.next_ver);
    match ver.parse::<u32>() {
        Ok(v) if v <= next => Ok(v),
        Ok(_) => Err(format!(
            "Version number in the future, please use 'prepare {}' before.\n",
            if acl { "acl" } else { "map" }
        )),
        Err(_) => Err(OUT_OF_RANGE.into()),
    }
}

fn unknown(acl: bool) -> &'static str {
    if acl {
        super::acls::UNKNOWN_ACL
    } else {
        UNKNOWN_MAP
    }
}

/// `prepare map|acl <name>`: the request that makes the next version on
/// every core, and that version.
pub fn prepare(config: &Config, args: &[String], acl: bool) -> Result<(CoreRequest, u32), String> {
    let maps = args
        .first()
        .map(|name| resolve(config, name, acl))
        .unwrap_or_default();
    let Some(&first) = maps.first() else {
        return Err(unknown(acl).into());
    };
    let ver = core::with_current(&config.maps[first], |m| m.next_ver).wrapping_add(1);
    Ok((
        CoreRequest::Map {
            maps,
            change: MapChange::Prepare(ver),
        },
        ver,
    ))
}

/// `commit map|acl @<ver> <name>`: a version after the current one, up
/// to the last prepared.
pub fn commit(config: &Config, args: &[String], acl: bool) -> Result<CoreRequest, String> {
    let (ver, rest) = split_version(args);
    let Some(ver) = ver else {
        return Err("Missing version number.\n".into());
    };
    let Some(name) = rest.first() else {
        return Err(if acl {
            "Missing ACL identifier.\n"
        } else {
            "Missing map identifier.\n"
        }
        .into());
    };
    let maps = resolve(config, name, acl);
    let Some(&first) = maps.first() else {
        return Err(unknown(acl).into());
    };
    let (curr, next) = core::with_current(&config.maps[first], |m| (m.curr_ver, m.next_ver));
    match ver.parse::<u32>() {
        Ok(v) if v > curr && v <= next => Ok(CoreRequest::Map {
            maps,
            change: MapChange::Commit(v),
        }),
        _ => Err(OUT_OF_RANGE.into()),
    }
}

/// `show map|acl [@<ver>] <name>`'s lines: one per entry of the version
/// (the current one without `@<ver>`), `0x<ref> <key>` and the value
/// for a map.
pub(super) fn show_entries(config: &Config, args: &[String], acl: bool) -> String {
    let (ver, rest) = split_version(args);
    let Some(&first) = rest
        .first()
        .map(|name| resolve(config, name, acl))
        .unwrap_or_default()
        .first()
    else {
        return unknown(acl).into();
    };
    core::with_current(&config.maps[first], |m| {
        let ver = match ver.map(str::parse::<u32>) {
            None => m.curr_ver,
            Some(Ok(v)) => v,
            Some(Err(_)) => return OUT_OF_RANGE.into(),
        };
        let mut out = String::new();
        for e in m.entries_at(ver) {
            out.push_str(&format!(
                "0x{:016x} {}",
                e.id,
                String::from_utf8_lossy(&e.key)
            ));
            if !acl {
                out.push(' ');
                out.push_str(&String::from_utf8_lossy(&e.value));
            }
            out.push('\n');
        }
        out
    })
}

/// `#<ref>` or a key.
pub(super) fn entry(word: &str) -> EntryRef {
    match word
        .strip_prefix('#')
        .and_then(|r| u64::from_str_radix(r.trim_start_matches("0x"), 16).ok())
    {
        Some(id) => EntryRef::Id(id),
        None => EntryRef::Key(word.as_bytes().into()),
    }
}

/// Checks a change and makes the request every core applies; the error
/// is the answer.
pub fn change(config: &Config, kind: Kind, args: &[String]) -> Result<CoreRequest, String> {
    let usage = match kind {
        Kind::AddMap => "'add map' expects three parameters: map identifier, key and value.\n",
        Kind::SetMap => "'set map' expects three parameters: map identifier, key and value.\n",
        Kind::DelMap => "This command expects two parameters: map identifier and key.\n",
        _ => "'clear map' expects a map identifier.\n",
    };
    let (ver, args) = match kind {
        Kind::AddMap | Kind::ClearMap => split_version(args),
        _ => (None, args),
    };
    let arg = |i: usize| args.get(i).map(String::as_str);
    let Some(name) = arg(0) else {
        return Err(usage.into());
    };
    let maps = resolve(config, name, false);
    let Some(&first) = maps.first() else {
        return Err(UNKNOWN_MAP.into());
    };
    let ver = match ver {
        Some(v) => Some(version_for_change(&config.maps[first], v, false)?),
        None => None,
    };
    let loaded: Vec<&Arc<MapData>> = maps.iter().map(|&i| &config.maps[i]).collect();
    let change = match kind {
        Kind::AddMap => {
            let (Some(key), Some(_)) = (arg(1), arg(2)) else {
                return Err(usage.into());
            };
            // The value is the rest of the line, as in a map file.
            let value = args[2..].join(" ");
            for m in &loaded {
                if let Err(e) = m.check_key(key.as_bytes()) {
                    return Err(format!("Failed to add a map entry: {e}.\n"));
                }
            }
            match ver {
                Some(ver) => MapChange::AddAt {
                    ver,
                    key: key.as_bytes().into(),
                    value: value.into_bytes().into(),
                },
                None => MapChange::Add {
                    key: key.as_bytes().into(),
                    value: value.into_bytes().into(),
                },
            }
        }
        Kind::SetMap => {
            let (Some(at), Some(_)) = (arg(1), arg(2)) else {
                return Err(usage.into());
            };
            let at = entry(at);
            if core::with_current(&config.maps[first], |m| m.count(&at)) == 0 {
                return Err("entry not found.\n".into());
            }
            MapChange::Set {
                at,
                value: args[2..].join(" ").into_bytes().into(),
            }
        }
        Kind::DelMap => {
            let Some(at) = arg(1) else {
                return Err(usage.into());
            };
            let at = entry(at);
            if core::with_current(&config.maps[first], |m| m.count(&at)) == 0 {
                return Err("Key not found.\n".into());
            }
            MapChange::Del(at)
        }
        _ => ver.map_or(MapChange::Clear, MapChange::ClearAt),
    };
    Ok(CoreRequest::Map { maps, change })
}
