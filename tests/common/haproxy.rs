//! HAProxy from apt, started by a test as a peer (differential and
//! interoperability tests). `None` when it is not installed: the caller
//! skips with a line on stderr (.ci/run installs it, so CI never skips).
#![allow(dead_code)]

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{free_port, PATIENCE};

pub struct Haproxy {
    child: Child,
    /// The port `{port}` in the configuration was replaced with.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `haproxy -db` on `config` (HAProxy's own syntax) with `{port}`
/// replaced by a free port, once that port accepts connections.
pub fn start(config: &str) -> Option<Haproxy> {
    let found = Command::new("haproxy").arg("-v").output().ok()?;
    if !found.status.success() {
        return None;
    }
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg, config.replace("{port}", &port.to_string())).unwrap();
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "haproxy did not start");
        thread::sleep(Duration::from_millis(20));
    }
    Some(Haproxy {
        child,
        port,
        _dir: dir,
    })
}
