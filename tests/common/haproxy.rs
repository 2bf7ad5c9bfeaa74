//! HAProxy (2.6, from apt), started by a test as a peer: differential
//! tests (`convert`, `http_hostile`) and interoperability tests (PROXY
//! protocol). `.ci/run` installs it.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{free_port, PATIENCE};

/// True when `haproxy -v` runs.
pub fn installed() -> bool {
    Command::new("haproxy")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A running `haproxy -db -f <cfg>`, killed on drop.
pub struct Haproxy {
    child: Child,
    stderr_path: std::path::PathBuf,
    /// The port `{port}` was replaced with, for one started by [`start`].
    pub port: u16,
    /// The directory holding the configuration [`start`] wrote.
    _dir: Option<tempfile::TempDir>,
}

/// Starts `haproxy -db` on `config` (HAProxy's own syntax) with `{port}`
/// replaced by a free port, once that port accepts connections; `None`
/// when HAProxy is not installed (the caller skips, saying so).
pub fn start(config: &str) -> Option<Haproxy> {
    if !installed() {
        return None;
    }
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg, config.replace("{port}", &port.to_string())).unwrap();
    let mut h = Haproxy::start(&cfg, &[], &[port]);
    h.port = port;
    h._dir = Some(dir);
    Some(h)
}

impl Haproxy {
    /// Starts HAProxy on `cfg` with `env` added to its environment and
    /// waits until every port in `ports` accepts connections (a connect
    /// without data reaches no server in mode http).
    pub fn start(cfg: &Path, env: &[(String, String)], ports: &[u16]) -> Haproxy {
        Haproxy::try_start(cfg, env, ports).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Haproxy::start`], with HAProxy's stderr as the error when it exits
    /// first (e.g. a port taken since it was picked: "cannot bind socket").
    pub fn try_start(
        cfg: &Path,
        env: &[(String, String)],
        ports: &[u16],
    ) -> Result<Haproxy, String> {
        let stderr_path = cfg.with_extension("stderr");
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(cfg)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("haproxy runs (Debian package haproxy)");
        let mut h = Haproxy {
            child,
            stderr_path,
            port: 0,
            _dir: None,
        };
        let deadline = Instant::now() + PATIENCE;
        for &port in ports {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Ok(Some(status)) = h.child.try_wait() {
                    return Err(format!("haproxy exited ({status}):\n{}", h.stderr()));
                }
                assert!(
                    Instant::now() < deadline,
                    "haproxy did not listen on {port}:\n{}",
                    h.stderr()
                );
                thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(h)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
