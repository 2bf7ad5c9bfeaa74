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

const UNKNOWN_MAP: &str = "Unknown map identifier. Please use #<id> or <file>.\n";

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
pub fn show(config: &Config, name: Option<&str>) -> String {
    let Some(name) = name else {
        let mut out = String::from("# id (file) description\n");
        let mut seen: Vec<&std::path::Path> = Vec::new();
        for m in config.maps.iter().filter(|m| !m.acl) {
            if seen.contains(&m.path.as_path()) {
                continue;
            }
            seen.push(&m.path);
            let count = core::with_current(m, MapData::len);
            out.push_str(&format!(
                "{} ({}) pattern loaded from file '{}' used by map at file '{}'. curr_ver=0 next_ver=0 entry_cnt={count}\n",
                m.uid,
                m.path.display(),
                m.path.display(),
                config.source.display(),
            ));
        }
        return out;
    };
    let Some(&first) = resolve(config, name, false).first() else {
        return UNKNOWN_MAP.into();
    };
    core::with_current(&config.maps[first], |m| {
        let mut out = String::new();
        for e in m.entries() {
            out.push_str(&format!(
                "0x{:016x} {} {}\n",
                e.id,
                String::from_utf8_lossy(&e.key),
                String::from_utf8_lossy(&e.value)
            ));
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
    let arg = |i: usize| args.get(i).map(String::as_str);
    let usage = match kind {
        Kind::AddMap => "'add map' expects three parameters: map identifier, key and value.\n",
        Kind::SetMap => "'set map' expects three parameters: map identifier, key and value.\n",
        Kind::DelMap => "This command expects two parameters: map identifier and key.\n",
        _ => "'clear map' expects a map identifier.\n",
    };
    let Some(name) = arg(0) else {
        return Err(usage.into());
    };
    let maps = resolve(config, name, false);
    let Some(&first) = maps.first() else {
        return Err(UNKNOWN_MAP.into());
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
            MapChange::Add {
                key: key.as_bytes().into(),
                value: value.into_bytes().into(),
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
        _ => MapChange::Clear,
    };
    Ok(CoreRequest::Map { maps, change })
}
