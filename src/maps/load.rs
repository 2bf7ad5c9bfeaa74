//! Reading map files at load: one `<key> <value>` per line (the value is
//! the rest of the line, trimmed), `#` comments and blank lines skipped.
//! Each (file, match kind) is read once per configuration, however many
//! rules use it.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{MapData, MapUse, MatchKind};
use crate::rules::convert_ops::ValType;

/// The maps one configuration load read, in the order first used.
#[derive(Debug, Default)]
pub struct MapRegistry {
    maps: RefCell<Vec<Arc<MapData>>>,
    /// The ways converters read the maps, in the order first used.
    uses: RefCell<Vec<MapUse>>,
    /// ACL `-f` files inlined at load (not live).
    frozen: RefCell<Vec<PathBuf>>,
}

impl MapRegistry {
    /// The map of `file` (relative to `base_dir`) for `kind`, read now if
    /// no rule used it yet, noting that a converter gives its values as
    /// `output`. The error says what is wrong and where in the map file.
    pub fn get_or_load(
        &self,
        base_dir: &Path,
        file: &str,
        (kind, output): (MatchKind, ValType),
        used_at: &str,
    ) -> Result<Arc<MapData>, String> {
        let path = base_dir.join(file);
        let at = match self.position(&path, kind, false, false) {
            Some(at) => at,
            None => {
                self.keep(read(&path, kind, used_at.to_string(), self.next_uid())?);
                self.maps.borrow().len() - 1
            }
        };
        let map = Arc::clone(&self.maps.borrow()[at]);
        let used = MapUse { map: at, output };
        let mut uses = self.uses.borrow_mut();
        if !uses.contains(&used) {
            uses.push(used);
        }
        Ok(map)
    }

    /// The pattern file of an ACL (`-f <file>`, one pattern per line)
    /// for `kind` (and `-i` when `icase`), read now if no ACL used it
    /// that way yet.
    pub fn get_or_load_patterns(
        &self,
        base_dir: &Path,
        file: &str,
        (kind, icase): (MatchKind, bool),
        used_at: &str,
    ) -> Result<Arc<MapData>, String> {
        let path = base_dir.join(file);
        if let Some(m) = self.loaded(&path, kind, true, icase) {
            return Ok(m);
        }
        let uid = self.next_uid();
        let text = std::fs::read(&path)
            .map_err(|e| format!("cannot read pattern file {}: {e}", path.display()))?;
        let mut map = MapData::new(path, kind, used_at.to_string(), uid);
        map.acl = true;
        map.icase = icase;
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = crate::rules::sample::trim(line.strip_suffix(b"\r").unwrap_or(line));
            if line.is_empty() || line[0] == b'#' {
                continue;
            }
            map.add(line, b"")
                .map_err(|e| format!("{}:{}: {e}", map.path.display(), n + 1))?;
        }
        Ok(self.keep(map))
    }

    /// The map (or with `acl` the ACL pattern file) already read from
    /// `path` for `kind`: each is read once however many rules use it.
    fn loaded(&self, path: &Path, kind: MatchKind, acl: bool, icase: bool) -> Option<Arc<MapData>> {
        let at = self.position(path, kind, acl, icase)?;
        Some(Arc::clone(&self.maps.borrow()[at]))
    }

    /// [`Self::loaded`]'s place in the list.
    fn position(&self, path: &Path, kind: MatchKind, acl: bool, icase: bool) -> Option<usize> {
        self.maps
            .borrow()
            .iter()
            .position(|m| m.acl == acl && m.path == path && m.kind == kind && m.icase == icase)
    }

    /// The id the next map read gets: its place in the list.
    fn next_uid(&self) -> usize {
        self.maps.borrow().len()
    }

    fn keep(&self, map: MapData) -> Arc<MapData> {
        let map = Arc::new(map);
        self.maps.borrow_mut().push(Arc::clone(&map));
        map
    }

    /// Notes an ACL `-f` file whose patterns were inlined at load.
    pub fn note_frozen_patterns(&self, base_dir: &Path, file: &str) {
        let path = base_dir.join(file);
        let mut frozen = self.frozen.borrow_mut();
        if !frozen.contains(&path) {
            frozen.push(path);
        }
    }

    pub fn frozen_acl_files(&self) -> Vec<PathBuf> {
        self.frozen.borrow().clone()
    }

    pub fn map_uses(&self) -> Vec<MapUse> {
        self.uses.borrow().clone()
    }

    pub fn into_maps(self) -> Vec<Arc<MapData>> {
        self.maps.into_inner()
    }
}

/// Reads one map file.
pub fn read(path: &Path, kind: MatchKind, used_at: String, uid: usize) -> Result<MapData, String> {
    let text =
        std::fs::read(path).map_err(|e| format!("cannot read map file {}: {e}", path.display()))?;
    parse(&text, PathBuf::from(path), kind, used_at, uid)
}

pub fn parse(
    text: &[u8],
    path: PathBuf,
    kind: MatchKind,
    used_at: String,
    uid: usize,
) -> Result<MapData, String> {
    let mut map = MapData::new(path, kind, used_at, uid);
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = crate::rules::sample::trim(line.strip_suffix(b"\r").unwrap_or(line));
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        let split = line
            .iter()
            .position(|&b| b == b' ' || b == b'\t')
            .unwrap_or(line.len());
        let (key, value) = (&line[..split], crate::rules::sample::trim(&line[split..]));
        map.add(key, value)
            .map_err(|e| format!("{}:{}: {e}", map.path.display(), n + 1))?;
    }
    Ok(map)
}
