//! The runtime API's ACL commands (`show acl`, `add acl`, `del acl`,
//! `clear acl`) against ACLs that read `-f` pattern files: a change holds
//! on both cores before the command answers, and bad commands change
//! nothing.

mod common;

use std::io::{BufReader, Write};
use std::path::Path;

use common::http_backend::*;
use common::*;

/// The status of one request for `path` on a new connection (two cores:
/// connections spread over both).
fn status(proxy: &Proxy, path: &str) -> u16 {
    let mut rd = BufReader::new(connect(proxy.addr()));
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    rd.get_mut().write_all(req.as_bytes()).unwrap();
    read_response(&mut rd, false).expect("a response").0
}

/// The status every one of `n` requests got (they must agree).
fn statuses(proxy: &Proxy, path: &str, n: usize) -> u16 {
    let all: Vec<u16> = (0..n).map(|_| status(proxy, path)).collect();
    assert!(all.iter().all(|s| *s == all[0]), "{path}: {all:?}");
    all[0]
}

fn start(dir: &Path) -> (Proxy, HttpBackend) {
    let be = HttpBackend::start(|_| ok("ok"));
    let text = format!(
        r#"
[global]
threads = 2
stats-socket = {{ path = "{}", level = "admin" }}

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "30s", server = "30s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "be"
acl = {{ blocked = "src -f {}" }}
http-request = [
  "deny if blocked",
  "deny deny_status 410 if {{ path_beg -f {} }}",
  "deny deny_status 404 if {{ path_reg -f {} }}",
  "deny deny_status 429 if {{ hdr(host) -i -f {} }}",
]

[[backend]]
name = "be"
{}
"#,
        dir.join("admin.sock").display(),
        dir.join("blocked.lst").display(),
        dir.join("paths.lst").display(),
        dir.join("regs.lst").display(),
        dir.join("hosts.lst").display(),
        servers(&[be.addr])
    );
    (Proxy::start(&text), be)
}

#[test]
fn acl_pattern_files_change_on_every_core() {
    let dir = tempfile::tempdir().unwrap();
    // An empty file is a live set that `add acl` fills.
    std::fs::write(dir.path().join("blocked.lst"), "# none yet\n").unwrap();
    std::fs::write(dir.path().join("paths.lst"), "/admin\n").unwrap();
    std::fs::write(dir.path().join("regs.lst"), "").unwrap();
    std::fs::write(dir.path().join("hosts.lst"), "blocked.example\n").unwrap();
    let (proxy, _be) = start(dir.path());
    let sock = dir.path().join("admin.sock");
    let blocked = dir.path().join("blocked.lst").display().to_string();
    let paths = dir.path().join("paths.lst").display().to_string();
    let regs = dir.path().join("regs.lst").display().to_string();

    assert_eq!(statuses(&proxy, "/", 4), 200);
    assert_eq!(statuses(&proxy, "/admin/x", 4), 410);

    // show acl: one line per file, HAProxy's header.
    let list = socat(&sock, "show acl");
    assert!(list.starts_with("# id (file) description\n"), "{list}");
    for f in [&blocked, &paths, &regs] {
        assert!(
            list.contains(&format!("({f}) pattern loaded from file '{f}' used by acl")),
            "{list}"
        );
    }
    // Maps and ACL files are listed apart.
    assert_eq!(socat(&sock, "show map"), "# id (file) description\n\n");

    // src -f: add denies on both cores, del allows again.
    assert_eq!(
        socat(&sock, &format!("add acl {blocked} 127.0.0.0/8")),
        "\n"
    );
    assert_eq!(statuses(&proxy, "/", 8), 403);
    let shown = socat(&sock, &format!("show acl {blocked}"));
    let line = shown.lines().next().unwrap_or("");
    assert!(
        line.starts_with("0x") && line.ends_with(" 127.0.0.0/8"),
        "{shown}"
    );
    assert_eq!(
        socat(&sock, &format!("del acl {blocked} 127.0.0.0/8")),
        "\n"
    );
    assert_eq!(statuses(&proxy, "/", 8), 200);
    // del by #<ref>.
    assert_eq!(socat(&sock, &format!("add acl {blocked} 127.0.0.1")), "\n");
    assert_eq!(statuses(&proxy, "/", 8), 403);
    let shown = socat(&sock, &format!("show acl {blocked}"));
    let reference = shown.split(' ').next().unwrap_or("").to_string();
    assert_eq!(
        socat(&sock, &format!("del acl {blocked} #{reference}")),
        "\n"
    );
    assert_eq!(statuses(&proxy, "/", 8), 200);

    // path_beg -f: add, then clear.
    assert_eq!(statuses(&proxy, "/private/a", 4), 200);
    assert_eq!(socat(&sock, &format!("add acl {paths} /private")), "\n");
    assert_eq!(statuses(&proxy, "/private/a", 8), 410);
    assert_eq!(socat(&sock, &format!("clear acl {paths}")), "\n");
    assert_eq!(statuses(&proxy, "/private/a", 8), 200);
    assert_eq!(statuses(&proxy, "/admin/x", 8), 200);
    assert_eq!(socat(&sock, &format!("show acl {paths}")), "\n");

    // path_reg -f.
    assert_eq!(socat(&sock, &format!("add acl {regs} \\.php$")), "\n");
    assert_eq!(statuses(&proxy, "/a/index.php", 8), 404);
    assert_eq!(statuses(&proxy, "/a/index.html", 8), 200);
}

#[test]
fn bad_acl_commands_answer_an_error_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blocked.lst"), "10.0.0.0/8\n").unwrap();
    std::fs::write(dir.path().join("paths.lst"), "/admin\n").unwrap();
    std::fs::write(dir.path().join("regs.lst"), "").unwrap();
    std::fs::write(dir.path().join("hosts.lst"), "blocked.example\n").unwrap();
    let (proxy, _be) = start(dir.path());
    let sock = dir.path().join("admin.sock");
    let blocked = dir.path().join("blocked.lst").display().to_string();
    let regs = dir.path().join("regs.lst").display().to_string();
    let unknown = "Unknown ACL identifier. Please use #<id> or <file>.\n\n";
    assert_eq!(socat(&sock, "add acl /no/such.lst /x"), unknown);
    assert_eq!(socat(&sock, "show acl /no/such.lst"), unknown);
    assert_eq!(socat(&sock, "clear acl #99"), unknown);
    assert_eq!(
        socat(&sock, &format!("add acl {blocked}")),
        "'add acl' expects two parameters: ACL identifier and pattern.\n\n"
    );
    assert_eq!(
        socat(&sock, "add acl"),
        "'add acl' expects two parameters: ACL identifier and pattern.\n\n"
    );
    assert_eq!(
        socat(&sock, &format!("del acl {blocked}")),
        "This command expects two parameters: ACL identifier and key.\n\n"
    );
    assert_eq!(socat(&sock, "clear acl"), "Missing ACL identifier.\n\n");
    assert_eq!(
        socat(&sock, &format!("del acl {blocked} 192.168.0.0/16")),
        "Key not found.\n\n"
    );
    let bad_ip = socat(&sock, &format!("add acl {blocked} 127.0.0.300"));
    assert!(
        bad_ip.starts_with("Failed to add an ACL entry: "),
        "{bad_ip}"
    );
    assert!(bad_ip.contains("127.0.0.300"), "{bad_ip}");
    let bad_re = socat(&sock, &format!("add acl {regs} ([a-z]"));
    assert!(
        bad_re.starts_with("Failed to add an ACL entry: "),
        "{bad_re}"
    );
    // A file read only at load (-i): a clear refusal.
    let hosts = dir.path().join("hosts.lst").display().to_string();
    let frozen = socat(&sock, &format!("add acl {hosts} x.example"));
    assert!(
        frozen.starts_with("This pattern file is read only at load"),
        "{frozen}"
    );
    assert!(!socat(&sock, "show acl").contains("hosts.lst"));
    // Nothing changed.
    assert_eq!(
        socat(&sock, &format!("show acl {blocked}"))
            .lines()
            .filter(|l| !l.is_empty())
            .count(),
        1
    );
    assert_eq!(socat(&sock, &format!("show acl {regs}")), "\n");
    assert_eq!(statuses(&proxy, "/", 4), 200);
    assert_eq!(statuses(&proxy, "/admin", 4), 410);
}
