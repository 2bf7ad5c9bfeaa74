//! `pidfile` / `-p FILE`: the process id for init scripts and monitoring
//! without systemd (HAProxy's `pidfile`).
//!
//! Written before anything is bound, as the user percore starts as (root,
//! usually: `/run` is root's). A binary upgrade's new process overwrites
//! it with its own id. At exit the file is removed only if it still holds
//! this process's id — the new process of an upgrade may have written it
//! since — and only if this process still may: after the switch to
//! `user`, a file in a root-owned directory stays, and the next start
//! overwrites it (as HAProxy's).

use std::io::Write;
use std::path::{Path, PathBuf};

/// The written pidfile; [`Pidfile::remove`] at exit.
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
    pid: u32,
}

impl Pidfile {
    /// Creates or truncates `path` and writes this process's id and a
    /// newline, mode 0644.
    pub fn write(path: &Path) -> Result<Pidfile, String> {
        use std::os::unix::fs::OpenOptionsExt;
        let pid = std::process::id();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(path)
            .map_err(|e| format!("cannot write pidfile {}: {e}", path.display()))?;
        file.write_all(format!("{pid}\n").as_bytes())
            .map_err(|e| format!("cannot write pidfile {}: {e}", path.display()))?;
        Ok(Pidfile {
            path: path.to_path_buf(),
            pid,
        })
    }

    /// Removes the file if it still names this process; quietly leaves it
    /// otherwise (see the module doc).
    pub fn remove(self) {
        let ours = std::fs::read_to_string(&self.path)
            .map(|text| text.trim() == self.pid.to_string())
            .unwrap_or(false);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_then_removed_only_while_ours() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.pid");
        let pidfile = Pidfile::write(&path).expect("write");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            format!("{}\n", std::process::id())
        );
        pidfile.remove();
        assert!(!path.exists());

        let pidfile = Pidfile::write(&path).expect("write");
        std::fs::write(&path, "1\n").expect("overwrite");
        pidfile.remove();
        assert!(path.exists(), "another process's pidfile was removed");
    }
}
