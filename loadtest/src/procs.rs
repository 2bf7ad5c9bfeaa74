//! Child processes (proxies, the backend) started pinned with `taskset -c`,
//! and the guarantee that none of them outlives the benchmark: a `Spawned`
//! stops its process when dropped (normal end, error, panic), a SIGINT /
//! SIGTERM handler stops every live child before exiting, and each child
//! gets PR_SET_PDEATHSIG so even a SIGKILLed loadtest leaves nothing behind.

use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// PIDs of live children, for the signal handler (which cannot reach the
/// `Spawned` values owned by the main thread).
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Set by the signal handler: the main thread must not start anything new
/// nor write a report from a run that was cut short.
static STOPPING: AtomicBool = AtomicBool::new(false);

pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

const STOP_GRACE: Duration = Duration::from_secs(3);

pub struct Spawned {
    name: String,
    child: Child,
    /// The command as a shell would spell it, for messages and the report.
    command_line: String,
    stopped: bool,
}

/// How a child was asked to run.
pub struct SpawnSpec<'a> {
    pub name: &'a str,
    /// CPUs for `taskset -c`; empty to run unpinned (on the caller's mask).
    pub cpus: &'a [usize],
    pub program: &'a Path,
    pub args: Vec<OsString>,
    /// Where stdout+stderr go when stdout is not captured.
    pub log: Option<&'a Path>,
    pub capture_stdout: bool,
}

impl Spawned {
    pub fn spawn(spec: SpawnSpec<'_>) -> Result<Spawned> {
        let mut command;
        if !spec.cpus.is_empty() {
            let list: Vec<String> = spec.cpus.iter().map(ToString::to_string).collect();
            command = Command::new("taskset");
            command.arg("-c").arg(list.join(",")).arg(spec.program);
        } else {
            command = Command::new(spec.program);
        }
        command.args(&spec.args).stdin(Stdio::null());
        let command_line = relative_to_cwd(&shell_words(&command));

        let log = match spec.log {
            Some(path) => {
                Some(File::create(path).with_context(|| format!("creating {}", path.display()))?)
            }
            None => None,
        };
        match (&log, spec.capture_stdout) {
            (_, true) => command.stdout(Stdio::piped()),
            (Some(file), false) => command.stdout(file.try_clone()?),
            (None, false) => command.stdout(Stdio::null()),
        };
        match log {
            Some(file) => command.stderr(file),
            None => command.stderr(Stdio::inherit()),
        };

        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the closure runs between fork and exec and calls only
        // async-signal-safe functions (prctl, getppid, _exit).
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }

        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        // Checked under the lock the signal handler takes, so a child is
        // either refused here or seen (and stopped) by the handler.
        if stopping() {
            bail!("interrupted");
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {command_line}"))?;
        live.push(child.id());
        drop(live);
        Ok(Spawned {
            name: spec.name.to_string(),
            child,
            command_line,
            stopped: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Fails if the process has already exited (a proxy that died on start).
    /// Waits for a backend's `listening ADDR` line on its stdout (spawned
    /// with `capture_stdout`).
    pub fn wait_listening(&mut self) -> Result<()> {
        use std::io::{BufRead, BufReader};
        let stdout = self
            .take_stdout()
            .with_context(|| format!("{} stdout", self.name))?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .with_context(|| format!("waiting for the {} to listen", self.name))?;
        if !line.starts_with("listening") {
            self.check_running()?;
            bail!("{} said {line:?} instead of `listening ADDR`", self.name);
        }
        Ok(())
    }

    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            self.stopped = true;
            forget_pid(self.child.id());
            bail!(
                "{} exited early ({status}): {}",
                self.name,
                self.command_line
            );
        }
        Ok(())
    }

    /// SIGKILL at once, as a crash would end it (the soak's fault).
    pub fn kill_hard(mut self) -> Result<ExitStatus> {
        self.stopped = true;
        let pid = self.child.id();
        let result = self.child.kill().and_then(|()| self.child.wait());
        forget_pid(pid);
        result.with_context(|| format!("killing {}", self.name))
    }

    /// SIGTERM, then SIGKILL after a grace period. Returns the exit status.
    pub fn stop(mut self) -> Result<ExitStatus> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<ExitStatus> {
        self.stopped = true;
        let pid = self.child.id();
        let result = terminate(&mut self.child);
        forget_pid(pid);
        result.with_context(|| format!("stopping {}", self.name))
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if !self.stopped {
            if let Err(e) = self.stop_inner() {
                eprintln!("loadtest: {e:#}");
            }
        }
    }
}

fn terminate(child: &mut Child) -> Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    // SAFETY: kill has no memory-safety preconditions; the pid is our own
    // unreaped child, so it cannot have been reused.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill()?;
    Ok(child.wait()?)
}

fn forget_pid(pid: u32) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.retain(|&p| p != pid);
}

/// On SIGINT/SIGTERM/SIGHUP: stop every live child, then exit 130.
pub fn install_signal_handler() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("installing signal handlers")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                eprintln!("loadtest: signal {signal}, stopping children");
                let pids: Vec<u32> = {
                    let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
                    STOPPING.store(true, Ordering::SeqCst);
                    live.clone()
                };
                for &pid in &pids {
                    // SAFETY: see `terminate`; a pid is removed from LIVE
                    // before its child is reaped.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                }
                std::thread::sleep(Duration::from_millis(500));
                // Only those the main thread has not stopped and reaped
                // meanwhile: a reaped pid may already belong to someone else.
                let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
                for pid in pids.iter().filter(|pid| live.contains(pid)) {
                    // SAFETY: as above.
                    unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
                }
                std::process::exit(130);
            }
        })?;
    Ok(())
}

/// Pins the calling thread (and every thread it starts afterwards) to one
/// CPU: used for the client, before its stream threads exist.
pub fn pin_current_thread(cpu: usize) -> Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_SET bounds-checks against its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("pinning to CPU {cpu}"));
        }
    }
    Ok(())
}

/// Runs a short-lived command to completion and returns its output; it is
/// killed if it outlives `limit` (a binary that ignores `--version` and
/// starts serving instead must not hang the benchmark).
pub fn output_within(command: &mut Command, limit: Duration) -> Result<std::process::Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", shell_words(command)))?;
    let deadline = Instant::now() + limit;
    while child.try_wait()?.is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{} did not finish within {limit:?}", shell_words(command));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child.wait_with_output()?)
}

/// Finds a program in PATH, the way a shell would.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Paths under the working directory shown relative to it, so a command in
/// the report can be pasted from the workspace root on another checkout.
fn relative_to_cwd(command_line: &str) -> String {
    match std::env::current_dir() {
        Ok(cwd) => {
            let prefix = format!("{}/", cwd.display());
            command_line.replace(&format!(" {prefix}"), " ")
        }
        Err(_) => command_line.to_string(),
    }
}

fn shell_words(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|word| {
            let word = word.to_string_lossy();
            if word.is_empty() || word.contains(|c: char| c.is_whitespace() || c == '\'') {
                format!("'{}'", word.replace('\'', r"'\''"))
            } else {
                word.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_a_spawned_child_stops_it() {
        let sleep = which("sleep").expect("coreutils sleep");
        let spawned = Spawned::spawn(SpawnSpec {
            name: "sleeper",
            cpus: &[],
            program: &sleep,
            args: vec!["300".into()],
            log: None,
            capture_stdout: false,
        })
        .unwrap();
        let pid = spawned.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        assert!(LIVE.lock().unwrap().contains(&pid));
        drop(spawned);
        // Reaped by the drop, so the pid is gone (or reused by someone else,
        // in which case it is not a `sleep 300` of ours).
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(!cmdline.contains("300"), "child still alive: {cmdline:?}");
        assert!(!LIVE.lock().unwrap().contains(&pid));
    }

    #[test]
    fn early_exit_is_reported() {
        let program = which("false").expect("coreutils false");
        let mut spawned = Spawned::spawn(SpawnSpec {
            name: "quitter",
            cpus: &[],
            program: &program,
            args: vec![],
            log: None,
            capture_stdout: false,
        })
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match spawned.check_running() {
                Err(e) => {
                    assert!(format!("{e}").contains("exited early"));
                    break;
                }
                Ok(()) if Instant::now() > deadline => panic!("`false` did not exit"),
                Ok(()) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    #[test]
    fn short_commands_return_output_and_long_ones_are_cut() {
        let out = output_within(Command::new("echo").arg("hi"), Duration::from_secs(30)).unwrap();
        assert_eq!(out.stdout, b"hi\n");
        let err = output_within(Command::new("sleep").arg("300"), Duration::from_millis(200))
            .unwrap_err();
        assert!(format!("{err}").contains("did not finish"), "{err}");
    }

    #[test]
    fn command_lines_are_quoted_for_a_shell() {
        let mut command = Command::new("taskset");
        command.args(["-c", "1", "haproxy", "-f", "a b.cfg"]);
        assert_eq!(shell_words(&command), "taskset -c 1 haproxy -f 'a b.cfg'");
    }
}
