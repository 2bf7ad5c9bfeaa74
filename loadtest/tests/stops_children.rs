//! loadtest must leave nothing running: not after Ctrl-C (SIGINT), not
//! when it is killed outright (SIGKILL: its children die with it through
//! PR_SET_PDEATHSIG), and not after a run in which something failed (here:
//! the backend killed in the middle of a scenario). Each test starts the
//! real binary against its own ports, watches which processes it starts
//! (from /proc), and checks every one of them is gone afterwards.
//!
//! Time bounds here only fail a hung test; nothing asserts how fast.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HUNG: Duration = Duration::from_secs(60);

/// A process as /proc shows it; the start time tells a reused pid apart.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proc {
    pid: u32,
    start: u64,
    comm: String,
}

/// (comm, state, ppid, starttime) from /proc/<pid>/stat.
fn stat(pid: u32) -> Option<(String, char, u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // Fields after the name start at 3 (state); ppid is 4, starttime 22.
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((comm, state, ppid, start))
}

fn children_of(parent: u32) -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (comm, _, ppid, start) = stat(pid)?;
            (ppid == parent).then_some(Proc { pid, start, comm })
        })
        .collect()
}

/// Alive: the same process (pid and start time) and not a zombie.
fn alive(p: &Proc) -> bool {
    matches!(stat(p.pid), Some((_, state, _, start)) if start == p.start && state != 'Z')
}

fn percore() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    ["target/debug/percore", "target/release/percore"]
        .iter()
        .map(|p| root.join(p))
        .find(|p| p.is_file())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

struct Run {
    child: Child,
    dir: PathBuf,
    seen: Vec<Proc>,
}

impl Run {
    /// loadtest `scenario` --quick on ports from `base`, with percore and
    /// HAProxy where they exist (the suite skips what is missing).
    fn start(scenario: &str, base: u16) -> Run {
        let dir = std::env::temp_dir().join(format!(
            "loadtest-stop-{}-{scenario}-{base}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing");
        let mut command = Command::new(env!("CARGO_BIN_EXE_loadtest"));
        command
            .arg(scenario)
            .arg("--quick")
            .args(["--duration", "3s", "--warmup", "200ms"])
            .args(["--idle-connections", "200"])
            .arg("--percore")
            .arg(percore().unwrap_or_else(|| missing.clone()))
            .arg("--haproxy")
            .arg(which("haproxy").unwrap_or_else(|| missing.clone()))
            .arg("--wrk")
            .arg(&missing)
            .args(["--proxy-port", &base.to_string()])
            .args(["--backend-port", &(base + 2).to_string()])
            .arg("--results-dir")
            .arg(dir.join("results"))
            .arg("--log-dir")
            .arg(dir.join("logs"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Run {
            child: command.spawn().unwrap(),
            dir,
            seen: Vec::new(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Records loadtest's children until `enough` of them were seen at once.
    fn wait_for_children(&mut self, enough: usize) -> Vec<Proc> {
        let deadline = Instant::now() + HUNG;
        loop {
            let now = children_of(self.pid());
            for p in &now {
                if !self.seen.contains(p) {
                    self.seen.push(p.clone());
                }
            }
            if now.len() >= enough {
                return now;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("loadtest ended ({status}) before starting {enough} children");
            }
            assert!(Instant::now() < deadline, "no {enough} children: {now:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for loadtest to end, recording children until then.
    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + HUNG;
        loop {
            for p in children_of(self.pid()) {
                if !self.seen.contains(&p) {
                    self.seen.push(p);
                }
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "loadtest did not end");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every child ever seen is gone (allowing a killed orphan the time to
    /// be torn down by the kernel).
    fn assert_nothing_left(&self) {
        assert!(!self.seen.is_empty(), "no child was ever seen");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left: Vec<&Proc> = self.seen.iter().filter(|p| alive(p)).collect();
            if left.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "still running: {left:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // A failed test must not leave its own processes behind either.
        let _ = self.child.kill();
        let _ = self.child.wait();
        for p in self.seen.iter().filter(|p| alive(p)) {
            // SAFETY: kill has no memory preconditions; `alive` checked the
            // start time, so the pid is still the process we saw.
            unsafe { libc::kill(p.pid as libc::pid_t, libc::SIGKILL) };
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The number of children to wait for: the backend, plus a proxy when one
/// of them can run here.
fn with_a_proxy() -> usize {
    if percore().is_some() || which("haproxy").is_some() {
        2
    } else {
        1
    }
}

#[test]
fn ctrl_c_stops_every_child_and_exits_130() {
    let mut run = Run::start("http-keepalive", 26_111);
    run.wait_for_children(with_a_proxy());
    // SAFETY: signalling our own child, not yet reaped.
    unsafe { libc::kill(run.pid() as libc::pid_t, libc::SIGINT) };
    let status = run.wait();
    assert_eq!(status.code(), Some(130), "{status}");
    run.assert_nothing_left();
}

#[test]
fn children_die_with_a_killed_loadtest() {
    let mut run = Run::start("http-keepalive", 26_121);
    run.wait_for_children(with_a_proxy());
    // SIGKILL: no handler, no drop; PR_SET_PDEATHSIG must do it.
    run.child.kill().unwrap();
    run.wait();
    run.assert_nothing_left();
}

#[test]
fn a_run_with_a_failure_still_stops_everything() {
    let mut run = Run::start("http-keepalive", 26_131);
    let children = run.wait_for_children(1);
    // The backend is the first child; kill it mid-scenario. Every run after
    // that fails (refused or 503), which the suite records and goes on.
    let backend = children
        .iter()
        .find(|p| p.comm.starts_with("loadtest"))
        .unwrap_or(&children[0])
        .clone();
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: a child of our child, checked alive just now.
    unsafe { libc::kill(backend.pid as libc::pid_t, libc::SIGKILL) };
    let status = run.wait();
    // Finished (with failures in its report) or gave up: not hung, not
    // interrupted.
    assert_ne!(status.code(), Some(130), "{status}");
    run.assert_nothing_left();
}
