//! `[global] user`, `group`, `chroot`, `setcap`, `pidfile` against the real
//! binary. The privilege tests need root (CI runs as root); as another
//! user they say so and pass without checking anything. What the kernel
//! says about each thread is read from `/proc/<pid>/task/*/status`.

mod common;

use common::http_backend::HttpBackend;
use common::{free_port, plain_get, run_percore, Proxy};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};

/// `CAP_NET_BIND_SERVICE` as a capability mask.
const NET_BIND_SERVICE: u64 = 1 << 10;

fn is_root() -> bool {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root to switch users");
            return;
        }
    };
}

/// nobody's uid and primary gid, from the user database.
fn nobody() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .expect("a nobody user");
    let fields: Vec<&str> = line.split(':').collect();
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}

/// A free port below 1024 (only root may bind those without
/// `CAP_NET_BIND_SERVICE`). Tests of this file take different ones.
fn low_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 600 + (std::process::id() % 200) as u16;
    for _ in 0..400 {
        let port = start + NEXT.fetch_add(1, Ordering::SeqCst) % 400;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below 1024");
}

fn addr(port: u16) -> SocketAddr {
    format!("127.0.0.1:{port}").parse().unwrap()
}

fn http_config(global: &str, binds: &[u16], backend: SocketAddr, defaults: &str) -> String {
    let binds: Vec<String> = binds.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    format!(
        r#"
[global]
threads = 2
maxconn = 1000
{global}

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "1m", server = "1m" }}
{defaults}

[[frontend]]
name = "fe"
bind = [{}]
default_backend = "be"

[[backend]]
name = "be"
servers = [{{ name = "s1", addr = "{backend}" }}]
"#,
        binds.join(", ")
    )
}

/// One thread's ids and capabilities from /proc/<pid>/task/<tid>/status.
#[derive(Debug)]
struct ThreadCreds {
    name: String,
    uids: Vec<u32>,
    gids: Vec<u32>,
    groups: String,
    cap_eff: u64,
    cap_prm: u64,
}

fn threads(pid: u32) -> Vec<ThreadCreds> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let Ok(status) = std::fs::read_to_string(task.join("status")) else {
            continue; // the thread ended meanwhile
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let ids =
            |s: String| -> Vec<u32> { s.split_whitespace().map(|v| v.parse().unwrap()).collect() };
        out.push(ThreadCreds {
            name: field("Name:"),
            uids: ids(field("Uid:")),
            gids: ids(field("Gid:")),
            groups: field("Groups:"),
            cap_eff: u64::from_str_radix(&field("CapEff:"), 16).unwrap(),
            cap_prm: u64::from_str_radix(&field("CapPrm:"), 16).unwrap(),
        });
    }
    assert!(
        out.len() > 2,
        "expected the main thread and two cores: {out:?}"
    );
    out
}

/// Every thread has nobody's ids and no supplementary group; the two
/// cores' threads hold exactly `cores_keep` capabilities, every other
/// thread none. (glommio names a core's helper threads after the core, so
/// the cores' threads are told apart by counting, not by name.)
fn assert_dropped(pid: u32, cores_keep: u64) {
    let (uid, gid) = nobody();
    let mut keeping = 0;
    for t in threads(pid) {
        assert_eq!(t.uids, [uid; 4], "{t:?}");
        assert_eq!(t.gids, [gid; 4], "{t:?}");
        assert_eq!(t.groups, "", "supplementary groups left: {t:?}");
        assert_eq!(t.cap_eff, t.cap_prm, "{t:?}");
        if t.cap_prm != 0 {
            assert_eq!(t.cap_prm, cores_keep, "{t:?}");
            assert!(t.name.starts_with("percore-"), "{t:?}");
            keeping += 1;
        }
    }
    assert_eq!(keeping, if cores_keep == 0 { 0 } else { 2 });
}

/// Lets the unprivileged process read its configuration at a reload
/// (tempdir makes the directory 0700, root's).
fn readable_dir(proxy: &Proxy) {
    std::fs::set_permissions(proxy.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn reload(proxy: &mut Proxy, config: &str, outcome: &str, n: usize) -> String {
    std::fs::write(proxy.dir.path().join("percore.toml"), config).unwrap();
    proxy.signal(libc::SIGHUP);
    proxy.wait_for_stderr(outcome, n)
}

#[test]
fn root_drops_to_nobody_on_every_thread_and_keeps_serving_a_low_port() {
    require_root!();
    let backend = HttpBackend::ok();
    let port = low_port();
    let config = http_config("user = \"nobody\"", &[port], backend.addr, "");
    let mut proxy = Proxy::spawn(&config, &[]);
    proxy.wait_listening();
    readable_dir(&proxy);
    let stderr = proxy.stderr();
    assert!(
        stderr.contains("[NOTICE] running as user nobody"),
        "{stderr}"
    );
    assert!(!stderr.contains("percore runs as root"), "{stderr}");
    assert_dropped(proxy.pid(), 0);
    assert_eq!(plain_get(addr(port), "/").0, 200);

    // A new port below 1024 needs CAP_NET_BIND_SERVICE, dropped without
    // setcap: the reload is refused, the running configuration serves.
    let second = low_port();
    let more = http_config("user = \"nobody\"", &[port, second], backend.addr, "");
    let stderr = reload(&mut proxy, &more, "reload refused", 1);
    assert!(
        stderr.contains(&format!("cannot bind 127.0.0.1:{second}")),
        "{stderr}"
    );
    assert_eq!(plain_get(addr(port), "/").0, 200);
    assert!(TcpListener::bind(("127.0.0.1", second)).is_ok());

    // A file the unprivileged user cannot read: refused, still serving.
    let secret = proxy.dir.path().join("503.http");
    std::fs::write(&secret, "HTTP/1.0 503 Service Unavailable\r\n\r\nbusy\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let errorfile = format!("errorfile = {{ 503 = \"{}\" }}", secret.display());
    let unreadable = http_config("user = \"nobody\"", &[port], backend.addr, &errorfile);
    let stderr = reload(&mut proxy, &unreadable, "reload refused", 2);
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert_eq!(plain_get(addr(port), "/").0, 200);

    // Readable, the same file is applied.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    reload(&mut proxy, &unreadable, "reload 1 applied", 1);
    assert_eq!(plain_get(addr(port), "/").0, 200);
    assert_dropped(proxy.pid(), 0);
    let (status, stderr) = proxy.stop();
    assert!(status.success(), "{stderr}");
}

#[test]
fn setcap_keeps_net_bind_service_on_the_cores_for_a_reload() {
    require_root!();
    let backend = HttpBackend::ok();
    let port = low_port();
    let global = "user = \"nobody\"\ngroup = \"nogroup\"\nsetcap = \"cap_net_bind_service\"";
    let mut proxy = Proxy::spawn(&http_config(global, &[port], backend.addr, ""), &[]);
    proxy.wait_listening();
    readable_dir(&proxy);
    assert!(
        proxy.stderr().contains("keeping cap_net_bind_service"),
        "{}",
        proxy.stderr()
    );
    assert_dropped(proxy.pid(), NET_BIND_SERVICE);

    let second = low_port();
    let more = http_config(global, &[port, second], backend.addr, "");
    reload(&mut proxy, &more, "reload 1 applied", 1);
    assert_eq!(plain_get(addr(port), "/").0, 200);
    assert_eq!(plain_get(addr(second), "/").0, 200);
    let (status, stderr) = proxy.stop();
    assert!(status.success(), "{stderr}");
}

#[test]
fn chroot_confines_the_process_after_start() {
    require_root!();
    let backend = HttpBackend::ok();
    let jail = tempfile::tempdir().unwrap();
    let port = low_port();
    let global = format!(
        "user = 65534\ngroup = 65534\nchroot = \"{}\"",
        jail.path().display()
    );
    let mut proxy = Proxy::spawn(&http_config(&global, &[port], backend.addr, ""), &[]);
    proxy.wait_listening();
    let root = std::fs::read_link(format!("/proc/{}/root", proxy.pid())).unwrap();
    assert_eq!(root, jail.path());
    let cwd = std::fs::read_link(format!("/proc/{}/cwd", proxy.pid())).unwrap();
    assert_eq!(cwd, jail.path());
    assert_dropped(proxy.pid(), 0);
    assert_eq!(plain_get(addr(port), "/").0, 200);
    let (status, stderr) = proxy.stop();
    assert!(status.success(), "{stderr}");
}

#[test]
fn root_without_user_is_warned() {
    require_root!();
    let backend = HttpBackend::ok();
    let config = http_config("", &[free_port()], backend.addr, "");
    let (status, _, stderr) = run_percore(&config, &["--check"]);
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("[WARNING] percore runs as root: set global.user"),
        "{stderr}"
    );
}

/// Each bad setting stops the start with one line naming file:line:col,
/// exits non-zero, and leaves nothing behind: the port stays free, no
/// socket or pid file is made.
#[test]
fn bad_process_settings_stop_the_start_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let backend = HttpBackend::ok();
    for (setting, message) in [
        (
            "user = \"no-such-user-percore\"",
            "global.user: user \"no-such-user-percore\" does not exist",
        ),
        (
            "group = \"no-such-group-percore\"\nuser = 0",
            "global.group: group \"no-such-group-percore\" does not exist",
        ),
        (
            "chroot = \"/nonexistent-percore-jail\"",
            "global.chroot: chroot directory /nonexistent-percore-jail: does not exist",
        ),
        (
            &format!("chroot = \"{}\"", file.display()),
            "is not a directory",
        ),
        (
            "pidfile = \"/nonexistent-percore-run/percore.pid\"",
            "global.pidfile: cannot write pidfile /nonexistent-percore-run/percore.pid: \
             directory /nonexistent-percore-run: does not exist",
        ),
    ] {
        let port = free_port();
        let sock = dir.path().join("admin.sock");
        let global = format!("{setting}\nstats-socket = \"{}\"", sock.display());
        let config = http_config(&global, &[port], backend.addr, "");
        for args in [&[][..], &["--check"][..]] {
            let mut proxy = Proxy::spawn(&config, args);
            let status = proxy.wait_exit();
            let stderr = proxy.stderr();
            assert_eq!(status.code(), Some(1), "{setting}: {stderr}");
            // [global] is on line 2; the setting is the first key after
            // threads and maxconn.
            let place = format!("{}:5:", proxy.dir.path().join("percore.toml").display());
            let line = stderr
                .lines()
                .find(|l| l.contains(message))
                .unwrap_or_else(|| panic!("{setting}: no {message:?} in:\n{stderr}"));
            assert!(line.starts_with(&place), "{setting}: {line}");
            assert!(
                stderr.contains("[ALERT] percore cannot start as configured"),
                "{stderr}"
            );
            assert!(!stderr.contains("started:"), "{stderr}");
            assert!(
                TcpListener::bind(("127.0.0.1", port)).is_ok(),
                "{setting}: port left bound"
            );
            assert!(!sock.exists(), "{setting}: socket file left");
        }
    }
    // -p has no place in the file; it says which option failed.
    let config = http_config("", &[free_port()], backend.addr, "");
    let (status, _, stderr) = run_percore(&config, &["-p", "/nonexistent-percore-run/p.pid"]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("-p /nonexistent-percore-run/p.pid: cannot write pidfile"),
        "{stderr}"
    );
}

#[test]
fn pidfile_holds_the_pid_while_running_and_goes_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let backend = HttpBackend::ok();
    let from_config = dir.path().join("config.pid");
    let from_flag = dir.path().join("flag.pid");
    let global = format!("pidfile = \"{}\"", from_config.display());
    let config = http_config(&global, &[free_port()], backend.addr, "");
    // -p wins over global.pidfile, as HAProxy's.
    for (args, path, other) in [
        (vec![], &from_config, &from_flag),
        (
            vec!["-p", from_flag.to_str().unwrap()],
            &from_flag,
            &from_config,
        ),
    ] {
        let mut proxy = Proxy::spawn(&config, &args);
        proxy.wait_listening();
        // Written before anything is bound, so there by "started".
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(text, format!("{}\n", proxy.pid()));
        assert!(!other.exists());
        let (status, stderr) = proxy.stop();
        assert!(status.success(), "{stderr}");
        assert!(!Path::new(path).exists(), "pidfile left after a clean stop");
    }
}
