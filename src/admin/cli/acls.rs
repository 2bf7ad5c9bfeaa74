//! `show acl`, `add acl`, `del acl`, `clear acl`: HAProxy's commands for
//! the pattern files of ACLs (`-f <file>`), worded as HAProxy 2.6 answers
//! them. A pattern file is kept as a map with keys only
//! (`crate::maps::MapData` with `acl` set), so a change takes the maps'
//! path: checked here, then applied by every core to its own copy before
//! the command is answered.

use std::sync::Arc;

use super::command::Kind;
use super::maps::{entry, resolve, show_entries, split_version, version_for_change};
use crate::admin::apply::CoreRequest;
use crate::config::Config;
use crate::maps::{core, MapChange, MapData};

/// A file only ACLs with `-m found` or `-m bool` use (they take no
/// pattern, so the file is read once at load and must be empty).
const FROZEN: &str = "This pattern file is read only at load by percore: an ACL uses it with -m found or -m bool, which take no pattern. Reload to change it.\n";

pub(super) const UNKNOWN_ACL: &str = "Unknown ACL identifier. Please use #<id> or <file>.\n";

/// `show acl [[@<ver>] <acl>]`: the pattern files, or one file's
/// patterns on this core (every core holds the same).
pub fn show(config: &Config, args: &[String]) -> String {
    if !args.is_empty() {
        return show_entries(config, args, true);
    }
    let mut out = String::from("# id (file) description\n");
    let mut seen: Vec<&std::path::Path> = Vec::new();
    for m in config.maps.iter().filter(|m| m.acl) {
        if seen.contains(&m.path.as_path()) {
            continue;
        }
        seen.push(&m.path);
        let (curr, next, count) = core::with_current(m, |d| (d.curr_ver, d.next_ver, d.len()));
        out.push_str(&format!(
            "{} ({}) pattern loaded from file '{}' used by acl at file '{}'. curr_ver={curr} next_ver={next} entry_cnt={count}\n",
            m.uid,
            m.path.display(),
            m.path.display(),
            config.source.display(),
        ));
    }
    out
}

/// Checks a change and makes the request every core applies; the error
/// is the answer.
pub fn change(config: &Config, kind: Kind, args: &[String]) -> Result<CoreRequest, String> {
    let usage = match kind {
        Kind::AddAcl => "'add acl' expects two parameters: ACL identifier and pattern.\n",
        Kind::DelAcl => "This command expects two parameters: ACL identifier and key.\n",
        _ => "Missing ACL identifier.\n",
    };
    let (ver, args) = match kind {
        Kind::AddAcl | Kind::ClearAcl => split_version(args),
        _ => (None, args),
    };
    let arg = |i: usize| args.get(i).map(String::as_str);
    let Some(name) = arg(0) else {
        return Err(usage.into());
    };
    let files = resolve(config, name, true);
    let Some(&first) = files.first() else {
        let base = config.source.parent().unwrap_or(std::path::Path::new("."));
        if config.frozen_acl_files.contains(&base.join(name)) {
            return Err(FROZEN.into());
        }
        return Err(UNKNOWN_ACL.into());
    };
    let ver = match ver {
        Some(v) => Some(version_for_change(&config.maps[first], v, true)?),
        None => None,
    };
    let change = match kind {
        Kind::AddAcl => {
            if arg(1).is_none() {
                return Err(usage.into());
            }
            // The pattern is the rest of the line, as in a pattern file.
            let pattern = args[1..].join(" ");
            let loaded: Vec<&Arc<MapData>> = files.iter().map(|&i| &config.maps[i]).collect();
            for m in &loaded {
                if let Err(e) = m.check_key(pattern.as_bytes()) {
                    return Err(format!("Failed to add an ACL entry: {e}.\n"));
                }
            }
            let key = pattern.into_bytes().into();
            match ver {
                Some(ver) => MapChange::AddAt {
                    ver,
                    key,
                    value: Box::default(),
                },
                None => MapChange::Add {
                    key,
                    value: Box::default(),
                },
            }
        }
        Kind::DelAcl => {
            if arg(1).is_none() {
                return Err(usage.into());
            }
            let at = match arg(1) {
                Some(r) if r.starts_with('#') => entry(r),
                _ => crate::maps::EntryRef::Key(args[1..].join(" ").into_bytes().into()),
            };
            if core::with_current(&config.maps[first], |m| m.count(&at)) == 0 {
                return Err("Key not found.\n".into());
            }
            MapChange::Del(at)
        }
        _ => ver.map_or(MapChange::Clear, MapChange::ClearAt),
    };
    Ok(CoreRequest::Map {
        maps: files,
        change,
    })
}
