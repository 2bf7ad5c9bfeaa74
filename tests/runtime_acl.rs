//! The runtime API's ACL commands (`show acl`, `add acl`, `del acl`,
//! `clear acl`) against ACLs that read `-f` pattern files: a change holds
//! on both cores before the command answers, and bad commands change
//! nothing.

mod common;

use std::io::{BufReader, Write};
use std::path::Path;

use common::haproxy;
use common::http_backend::*;
use common::*;

/// The status of one request for `path` on a new connection (two cores:
/// connections spread over both), with `headers` (`Host: x` if they
/// have no Host).
fn status_with(proxy: &Proxy, path: &str, headers: &str) -> u16 {
    let mut rd = BufReader::new(connect(proxy.addr()));
    let host = if headers.to_ascii_lowercase().contains("host:") {
        ""
    } else {
        "Host: x\r\n"
    };
    let req = format!("GET {path} HTTP/1.1\r\n{host}{headers}\r\n");
    rd.get_mut().write_all(req.as_bytes()).unwrap();
    read_response(&mut rd, false).expect("a response").0
}

/// The status every one of `n` requests got (they must agree).
fn statuses_with(proxy: &Proxy, path: &str, headers: &str, n: usize) -> u16 {
    let all: Vec<u16> = (0..n).map(|_| status_with(proxy, path, headers)).collect();
    assert!(
        all.iter().all(|s| *s == all[0]),
        "{path} {headers:?}: {all:?}"
    );
    all[0]
}

fn statuses(proxy: &Proxy, path: &str, n: usize) -> u16 {
    statuses_with(proxy, path, "", n)
}

/// percore on two cores with an admin socket in `dir`, one frontend with
/// `acl_table` (the inside of its `acl = { ... }`) and `rules` (its
/// `http-request` lines, one quoted rule per line), before a backend that
/// answers "ok".
fn start_with(dir: &Path, acl_table: &str, rules: &str) -> (Proxy, HttpBackend) {
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
acl = {{ {acl_table} }}
http-request = [
{rules}
]

[[backend]]
name = "be"
{}
"#,
        dir.join("admin.sock").display(),
        servers(&[be.addr])
    );
    (Proxy::start(&text), be)
}

fn start(dir: &Path) -> (Proxy, HttpBackend) {
    let f = |name: &str| dir.join(name).display().to_string();
    start_with(
        dir,
        &format!("blocked = \"src -f {}\"", f("blocked.lst")),
        &format!(
            "  \"deny if blocked\",\n  \"deny deny_status 410 if {{ path_beg -f {} }}\",\n  \"deny deny_status 404 if {{ path_reg -f {} }}\",\n  \"deny deny_status 429 if {{ hdr(host) -i -f {} }}\",",
            f("paths.lst"),
            f("regs.lst"),
            f("hosts.lst")
        ),
    )
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
    // A -i file is live too.
    let hosts = dir.path().join("hosts.lst").display().to_string();
    assert!(socat(&sock, "show acl").contains("hosts.lst"));
    assert_eq!(
        socat(&sock, &format!("del acl {hosts} nothing.example")),
        "Key not found.\n\n"
    );
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

/// The pattern files of the live-method test, with their first content.
const METHOD_FILES: [(&str, &str); 7] = [
    ("hosts.lst", "Foo.example\nbar.example\n"),
    ("dirs.lst", "images/png\n"),
    ("doms.lst", "Example.com\n"),
    ("ints.lst", "2\n5:6\n"),
    ("a.lst", "/a1\n"),
    ("b.lst", "/b1\n"),
    ("regs.lst", "^/adm.*\\.PHP$\n"),
];

/// One ACL per method that used to be read only at load (named so that
/// their order is the same however the table is sorted), as percore's
/// `acl` table and as HAProxy lines.
fn method_acls(dir: &Path) -> Vec<(&'static str, String, u16)> {
    let f = |name: &str| dir.join(name).display().to_string();
    vec![
        ("a_host", format!("hdr(host) -i -f {}", f("hosts.lst")), 429),
        ("b_dirs", format!("path_dir -f {}", f("dirs.lst")), 410),
        (
            "c_doms",
            format!("hdr_dom(host) -i -f {}", f("doms.lst")),
            425,
        ),
        ("d_n", format!("hdr_cnt(x-n) -f {}", f("ints.lst")), 400),
        ("e_l", format!("hdr_len(x-l) -f {}", f("ints.lst")), 413),
        (
            "f_two",
            format!("path -f {} -f {} /fixed", f("a.lst"), f("b.lst")),
            404,
        ),
        ("g_reg", format!("path_reg -i -f {}", f("regs.lst")), 405),
        (
            "h_map",
            format!("hdr(host),map({}) -m str blocked", f("m.map")),
            403,
        ),
    ]
}

fn start_methods(dir: &Path) -> (Proxy, HttpBackend) {
    for (name, text) in METHOD_FILES {
        std::fs::write(dir.join(name), text).unwrap();
    }
    std::fs::write(dir.join("empty.lst"), "").unwrap();
    std::fs::write(dir.join("m.map"), "a.example blocked\n").unwrap();
    let acls = method_acls(dir);
    let table: Vec<String> = acls
        .iter()
        .map(|(name, line, _)| format!("{name} = {line:?}"))
        .chain(std::iter::once(format!(
            "z_found = \"req.cook(s) -m found -f {}\"",
            dir.join("empty.lst").display()
        )))
        .collect();
    let rules: Vec<String> = acls
        .iter()
        .map(|(name, _, code)| format!("  \"deny deny_status {code} if {name}\","))
        .chain(std::iter::once(
            "  \"deny deny_status 403 if z_found\",".into(),
        ))
        .collect();
    start_with(dir, &table.join(", "), &rules.join("\n"))
}

/// HAProxy 2.6 with the same ACLs on the same files, for `get acl`'s
/// answers; `None` when it is not installed.
fn haproxy_with_methods(dir: &Path) -> Option<(haproxy::Haproxy, std::path::PathBuf)> {
    let acls: Vec<(&str, String)> = method_acls(dir)
        .into_iter()
        .map(|(name, line, _)| (name, line))
        .collect();
    haproxy_denying(dir, &acls)
}

/// HAProxy 2.6 with a stats socket in `dir` and one frontend that denies
/// any request matching one of `acls` (name, ACL line); `None` when it is
/// not installed.
fn haproxy_denying(
    dir: &Path,
    acls: &[(&str, String)],
) -> Option<(haproxy::Haproxy, std::path::PathBuf)> {
    let sock = dir.join("haproxy.sock");
    let lines: Vec<String> = acls
        .iter()
        .map(|(name, line)| format!("  acl {name} {line}"))
        .collect();
    let names: Vec<&str> = acls.iter().map(|(name, _)| *name).collect();
    let config = format!(
        "global\n  stats socket {} level admin\ndefaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\nfrontend fe\n  bind 127.0.0.1:{{port}}\n{}\n  http-request deny if {}\n",
        sock.display(),
        lines.join("\n"),
        names.join(" || ")
    );
    haproxy::start(&config).map(|h| (h, sock))
}

/// `get acl` questions whose answers must be HAProxy's, byte for byte.
fn get_acl_questions(dir: &Path) -> Vec<String> {
    let f = |name: &str| dir.join(name).display().to_string();
    [
        ("hosts.lst", "FOO.EXAMPLE"),
        ("hosts.lst", "nope.example"),
        ("hosts.lst", "NEW.example"),
        ("dirs.lst", "/x/images/png/y"),
        ("dirs.lst", "/x/images"),
        ("dirs.lst", "a?images/png"),
        ("dirs.lst", "/v1/api/users"),
        ("doms.lst", "WWW.EXAMPLE.COM:80"),
        ("doms.lst", "example.comx"),
        ("ints.lst", "2"),
        ("ints.lst", "3"),
        ("ints.lst", "6"),
        ("ints.lst", "abc"),
        ("a.lst", "/a1"),
        ("b.lst", "/b1"),
        ("b.lst", "/fixed"),
        ("regs.lst", "/ADMIN/x.php"),
        ("regs.lst", "/admin/x.txt"),
    ]
    .iter()
    .map(|(file, value)| format!("get acl {} {value}", f(file)))
    .chain([
        "get acl".to_string(),
        format!("get acl {}", f("hosts.lst")),
        "get acl /no/such.lst x".to_string(),
    ])
    .collect()
}

#[test]
fn every_match_method_reads_its_files_live() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, _be) = start_methods(dir.path());
    let sock = dir.path().join("admin.sock");
    let f = |name: &str| dir.path().join(name).display().to_string();

    assert_eq!(statuses(&proxy, "/", 4), 200);
    // -i: the file's case and the request's do not matter.
    assert_eq!(statuses_with(&proxy, "/", "Host: FOO.EXAMPLE\r\n", 4), 429);
    assert_eq!(statuses_with(&proxy, "/", "Host: new.example\r\n", 4), 200);
    assert_eq!(
        socat(&sock, &format!("add acl {} NEW.Example", f("hosts.lst"))),
        "\n"
    );
    assert_eq!(statuses_with(&proxy, "/", "Host: new.EXAMPLE\r\n", 8), 429);
    assert_eq!(
        socat(&sock, &format!("del acl {} NEW.Example", f("hosts.lst"))),
        "\n"
    );
    assert_eq!(statuses_with(&proxy, "/", "Host: new.example\r\n", 8), 200);
    // A host longer than the stack buffer is lowercased too.
    let long = format!("{}.FOO.EXAMPLE", "A".repeat(300));
    assert_eq!(
        socat(&sock, &format!("add acl {} {long}", f("hosts.lst"))),
        "\n"
    );
    let header = format!("Host: {}\r\n", long.to_ascii_lowercase());
    assert_eq!(statuses_with(&proxy, "/", &header, 8), 429);

    // dir.
    assert_eq!(statuses(&proxy, "/x/images/png/y", 4), 410);
    assert_eq!(statuses(&proxy, "/v1/api/users", 4), 200);
    assert_eq!(
        socat(&sock, &format!("add acl {} api", f("dirs.lst"))),
        "\n"
    );
    assert_eq!(statuses(&proxy, "/v1/api/users", 8), 410);
    assert_eq!(statuses(&proxy, "/v1/apis/users", 8), 200);

    // dom with -i.
    assert_eq!(
        statuses_with(&proxy, "/", "Host: WWW.EXAMPLE.COM\r\n", 4),
        425
    );
    assert_eq!(socat(&sock, &format!("clear acl {}", f("doms.lst"))), "\n");
    assert_eq!(
        statuses_with(&proxy, "/", "Host: www.example.com\r\n", 8),
        200
    );

    // int and len share a file: a change holds for both.
    let (two, three) = ("X-N: a\r\nX-N: b\r\n", "X-N: a\r\nX-N: b\r\nX-N: c\r\n");
    assert_eq!(statuses_with(&proxy, "/", two, 4), 400);
    assert_eq!(statuses_with(&proxy, "/", three, 4), 200);
    assert_eq!(statuses_with(&proxy, "/", "X-L: abcdef\r\n", 4), 413);
    assert_eq!(statuses_with(&proxy, "/", "X-L: abc\r\n", 4), 200);
    assert_eq!(
        socat(&sock, &format!("add acl {} 3:4", f("ints.lst"))),
        "\n"
    );
    assert_eq!(statuses_with(&proxy, "/", three, 8), 400);
    assert_eq!(statuses_with(&proxy, "/", "X-L: abc\r\n", 8), 413);

    // Two files and an inline pattern: each file is live, the inline
    // pattern stays.
    for path in ["/a1", "/b1", "/fixed"] {
        assert_eq!(statuses(&proxy, path, 4), 404, "{path}");
    }
    assert_eq!(statuses(&proxy, "/other", 4), 200);
    assert_eq!(
        socat(&sock, &format!("add acl {} /other", f("b.lst"))),
        "\n"
    );
    assert_eq!(statuses(&proxy, "/other", 8), 404);
    assert_eq!(socat(&sock, &format!("clear acl {}", f("a.lst"))), "\n");
    assert_eq!(statuses(&proxy, "/a1", 8), 200);
    assert_eq!(statuses(&proxy, "/fixed", 8), 404);

    // reg -i.
    assert_eq!(statuses(&proxy, "/ADMIN/x.php", 4), 405);
    assert_eq!(statuses(&proxy, "/admin/x.txt", 4), 200);
    assert_eq!(
        socat(&sock, &format!("add acl {} \\.TXT$", f("regs.lst"))),
        "\n"
    );
    assert_eq!(statuses(&proxy, "/admin/x.txt", 8), 405);

    // The -i file shows its patterns as written.
    let shown = socat(&sock, &format!("show acl {}", f("hosts.lst")));
    assert!(shown.contains(" Foo.example\n"), "{shown}");
}

#[test]
fn get_acl_answers_as_haproxy() {
    let dir = tempfile::tempdir().unwrap();
    let (_proxy, _be) = start_methods(dir.path());
    let sock = dir.path().join("admin.sock");
    let Some((_haproxy, hsock)) = haproxy_with_methods(dir.path()) else {
        eprintln!("haproxy is not installed: skipped");
        return;
    };
    let compare = |when: &str| {
        for q in get_acl_questions(dir.path()) {
            assert_eq!(socat(&sock, &q), socat(&hsock, &q), "{when}: {q}");
        }
    };
    let first = &get_acl_questions(dir.path())[0];
    assert_eq!(
        socat(&sock, first),
        "type=str, case=insensitive, match=yes, idx=list, pattern=\"Foo.example\"\n\n"
    );
    compare("as loaded");
    // The same changes on both.
    let f = |name: &str| dir.path().join(name).display().to_string();
    for change in [
        format!("add acl {} NEW.Example", f("hosts.lst")),
        format!("add acl {} api", f("dirs.lst")),
        format!("add acl {} 3:4", f("ints.lst")),
        format!("add acl {} /fixed", f("b.lst")),
        format!("clear acl {}", f("regs.lst")),
    ] {
        assert_eq!(socat(&sock, &change), socat(&hsock, &change), "{change}");
    }
    compare("after changes");
}

#[test]
fn bad_patterns_for_each_method_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, _be) = start_methods(dir.path());
    let sock = dir.path().join("admin.sock");
    let f = |name: &str| dir.path().join(name).display().to_string();
    for (file, pattern) in [
        ("ints.lst", "abc"),
        ("ints.lst", "5:x"),
        ("ints.lst", "12abc"),
        ("regs.lst", "([a-z]"),
    ] {
        let answer = socat(&sock, &format!("add acl {} {pattern}", f(file)));
        assert!(
            answer.starts_with("Failed to add an ACL entry: ") && answer.contains(pattern),
            "{file} {pattern}: {answer}"
        );
    }
    // An ACL that takes no pattern reads its file at load only.
    let frozen = socat(&sock, &format!("add acl {} x", f("empty.lst")));
    assert!(
        frozen.starts_with("This pattern file is read only at load"),
        "{frozen}"
    );
    // get acl: missing words, unknown file.
    let missing = "Missing ACL identifier and/or key.\n\n";
    let unknown = "Unknown ACL identifier. Please use #<id> or <file>.\n\n";
    assert_answers(
        &sock,
        &[
            ("get acl".to_string(), missing),
            (format!("get acl {}", f("ints.lst")), missing),
            ("get acl /no/such.lst x".to_string(), unknown),
            (format!("get acl {} x", f("empty.lst")), unknown),
        ],
    );
    // Nothing changed.
    assert_eq!(
        socat(&sock, &format!("show acl {}", f("ints.lst")))
            .lines()
            .count(),
        3
    );
    assert_eq!(statuses_with(&proxy, "/", "X-L: abcde\r\n", 4), 413);
    assert_eq!(statuses_with(&proxy, "/", "X-L: abc\r\n", 4), 200);
}

#[test]
fn versioned_changes_apply_at_commit_as_haproxy() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, _be) = start_methods(dir.path());
    let sock = dir.path().join("admin.sock");
    let Some((_haproxy, hsock)) = haproxy_with_methods(dir.path()) else {
        eprintln!("haproxy is not installed: skipped");
        return;
    };
    let hosts = dir.path().join("hosts.lst").display().to_string();
    let map = dir.path().join("m.map").display().to_string();
    // Each command, its answer from percore, which must be HAProxy's.
    let both = |command: String, want: &str| {
        assert_eq!(socat(&sock, &command), want, "percore: {command}");
        assert_eq!(socat(&hsock, &command), want, "haproxy: {command}");
    };
    let out_of_range = "Version number out of range.\n\n";
    both(format!("prepare acl {hosts}"), "New version created: 1\n\n");
    both(format!("add acl @1 {hosts} new1.example"), "\n");
    both(
        format!("add acl @9 {hosts} x.example"),
        "Version number in the future, please use 'prepare acl' before.\n\n",
    );
    both(
        format!("get acl {hosts} NEW1.example"),
        "type=str, case=insensitive, match=no\n\n",
    );
    // Not matched before the commit, on any core.
    assert_eq!(statuses_with(&proxy, "/", "Host: new1.example\r\n", 8), 200);
    assert_eq!(statuses_with(&proxy, "/", "Host: foo.example\r\n", 8), 429);
    let shown = socat(&sock, &format!("show acl @1 {hosts}"));
    assert!(shown.ends_with(" new1.example\n\n"), "{shown}");
    assert!(socat(&sock, "show acl").contains("curr_ver=0 next_ver=1 entry_cnt=2"));
    both(format!("commit acl @9 {hosts}"), out_of_range);
    both(format!("commit acl {hosts}"), "Missing version number.\n\n");
    both("commit acl @1".into(), "Missing ACL identifier.\n\n");
    let unknown = "Unknown ACL identifier. Please use #<id> or <file>.\n\n";
    both("prepare acl /no/such.lst".into(), unknown);
    both("prepare acl".into(), unknown);
    both("commit acl @1 /no/such.lst".into(), unknown);
    both(format!("commit acl @1 {hosts}"), "\n");
    both(
        format!("get acl {hosts} NEW1.example"),
        "type=str, case=insensitive, match=yes, idx=list, pattern=\"new1.example\"\n\n",
    );
    both(
        format!("get acl {hosts} foo.example"),
        "type=str, case=insensitive, match=no\n\n",
    );
    both(format!("commit acl @1 {hosts}"), out_of_range);
    assert_eq!(statuses_with(&proxy, "/", "Host: new1.example\r\n", 8), 429);
    assert_eq!(statuses_with(&proxy, "/", "Host: foo.example\r\n", 8), 200);
    assert!(socat(&sock, "show acl").contains("curr_ver=1 next_ver=1 entry_cnt=1"));
    // clear @<ver> empties a prepared version only.
    both(format!("prepare acl {hosts}"), "New version created: 2\n\n");
    both(format!("add acl @2 {hosts} two.example"), "\n");
    both(format!("clear acl @2 {hosts}"), "\n");
    both(format!("commit acl @2 {hosts}"), "\n");
    assert_eq!(statuses_with(&proxy, "/", "Host: new1.example\r\n", 8), 200);
    assert_eq!(socat(&sock, &format!("show acl {hosts}")), "\n");

    // A version that is not a number, on percore only (HAProxy 2.6
    // answers `add acl @abc` with an empty line).
    for command in [
        format!("add acl @abc {hosts} x.example"),
        format!("clear acl @-1 {hosts}"),
        format!("commit acl @abc {hosts}"),
        format!("show acl @abc {hosts}"),
    ] {
        assert_eq!(socat(&sock, &command), out_of_range, "{command}");
    }
    assert_eq!(socat(&sock, &format!("show acl @7 {hosts}")), "\n");
    assert!(socat(&sock, "show acl").contains("curr_ver=2 next_ver=2 entry_cnt=0"));

    // Maps: the same forms.
    assert_eq!(statuses_with(&proxy, "/", "Host: b.example\r\n", 4), 200);
    both(format!("prepare map {map}"), "New version created: 1\n\n");
    both(format!("add map @1 {map} b.example blocked"), "\n");
    both(
        format!("add map @2 {map} c.example blocked"),
        "Version number in the future, please use 'prepare map' before.\n\n",
    );
    assert_eq!(statuses_with(&proxy, "/", "Host: b.example\r\n", 8), 200);
    assert_eq!(statuses_with(&proxy, "/", "Host: a.example\r\n", 8), 403);
    both(
        "prepare map /no/such.map".into(),
        "Unknown map identifier. Please use #<id> or <file>.\n\n",
    );
    both(format!("commit map @2 {map}"), out_of_range);
    both(format!("commit map @1 {map}"), "\n");
    assert_eq!(statuses_with(&proxy, "/", "Host: b.example\r\n", 8), 403);
    assert_eq!(statuses_with(&proxy, "/", "Host: a.example\r\n", 8), 200);
    assert!(socat(&sock, "show map").contains("curr_ver=1 next_ver=1 entry_cnt=1"));
}

/// Asks each question on the runtime API and checks the whole answer.
fn assert_answers(sock: &Path, cases: &[(String, &str)]) {
    for (question, answer) in cases {
        assert_eq!(socat(sock, question), *answer, "{question}");
    }
}

/// The map files of the `get map` tests, with their content.
const LOOKUP_MAPS: [(&str, &str); 7] = [
    ("str.map", "a.example one\nB.example two\n"),
    ("beg.map", "/api v_api\n/api/v2 v_api2\n"),
    ("ip.map", "10.0.0.0/8 192.168.0.1\n10.1.0.0/16 ::1\n"),
    ("int.map", "2 20\n5:6 56\n"),
    ("sub.map", "png img\n"),
    ("reg.map", "^/adm.*\\.php$ php\n"),
    ("dom.map", "example.com dom\n"),
];

/// ACLs reading the maps through converters (and one pattern file), as
/// percore's `acl` table and as HAProxy lines; named so that their order
/// is the same however the table is sorted, since `get map` prints one
/// line per way a file is read, in the order the rules first read it.
fn lookup_acls(dir: &Path) -> Vec<(&'static str, String)> {
    let f = |name: &str| dir.join(name).display().to_string();
    vec![
        ("a_str", format!("hdr(host),map({}) -m found", f("str.map"))),
        ("b_beg", format!("path,map_beg({}) -m found", f("beg.map"))),
        // Two value types: two lines.
        ("c_ipip", format!("src,map_ip_ip({}) -m found", f("ip.map"))),
        ("d_ip", format!("src,map_ip({}) -m found", f("ip.map"))),
        (
            "e_int",
            format!("req.hdr_cnt(x),map_int_int({}) -m found", f("int.map")),
        ),
        // sub and end share HAProxy's pattern list: one line.
        ("f_sub", format!("path,map_sub({}) -m found", f("sub.map"))),
        ("g_end", format!("path,map_end({}) -m found", f("sub.map"))),
        ("h_reg", format!("path,map_reg({}) -m found", f("reg.map"))),
        (
            "i_dom",
            format!("hdr(host),map_dom({}) -m found", f("dom.map")),
        ),
        ("j_hosts", format!("hdr(host) -i -f {}", f("hosts.lst"))),
    ]
}

fn write_lookup_files(dir: &Path) {
    for (name, text) in LOOKUP_MAPS {
        std::fs::write(dir.join(name), text).unwrap();
    }
    std::fs::write(dir.join("hosts.lst"), "A.example\nb.example\n").unwrap();
}

fn start_lookups(dir: &Path) -> (Proxy, HttpBackend) {
    write_lookup_files(dir);
    let acls = lookup_acls(dir);
    let table: Vec<String> = acls
        .iter()
        .map(|(name, line)| format!("{name} = {line:?}"))
        .collect();
    let rules: Vec<String> = acls
        .iter()
        .map(|(name, _)| format!("  \"deny if {name}\","))
        .collect();
    start_with(dir, &table.join(", "), &rules.join("\n"))
}

fn haproxy_with_lookups(dir: &Path) -> Option<(haproxy::Haproxy, std::path::PathBuf)> {
    haproxy_denying(dir, &lookup_acls(dir))
}

/// `get map` questions whose answers must be HAProxy's, byte for byte:
/// found and not found for each kind, a pattern file through `get map`
/// and a map through `get acl`, and bad input.
fn get_map_questions(dir: &Path) -> Vec<String> {
    let f = |name: &str| dir.join(name).display().to_string();
    [
        ("str.map", "a.example"),
        ("str.map", "A.example"),
        ("str.map", "B.example"),
        ("beg.map", "/api/v2/x"),
        ("beg.map", "/api"),
        ("beg.map", "/x"),
        ("ip.map", "10.1.2.3"),
        ("ip.map", "10.2.0.1"),
        ("ip.map", "::ffff:10.2.0.1"),
        ("ip.map", "11.0.0.1"),
        ("ip.map", "abc"),
        ("int.map", "2"),
        ("int.map", "6"),
        ("int.map", "5abc"),
        ("int.map", "3"),
        ("int.map", "x"),
        ("sub.map", "/a.png"),
        ("sub.map", "/a.pngx"),
        ("sub.map", "/a.gif"),
        ("reg.map", "/admin/x.php"),
        ("reg.map", "/admin/x.phpx"),
        ("dom.map", "www.example.com"),
        ("dom.map", "example.comx"),
        ("dom.map", "EXAMPLE.com"),
        ("hosts.lst", "B.EXAMPLE"),
        ("hosts.lst", "zz"),
    ]
    .iter()
    .map(|(file, value)| format!("get map {} {value}", f(file)))
    .chain([
        format!("get acl {} a.example", f("str.map")),
        format!("get acl {} /a.png", f("sub.map")),
        "get map".to_string(),
        format!("get map {}", f("str.map")),
        "get map /no/such.map x".to_string(),
        "get acl /no/such.map x".to_string(),
    ])
    .collect()
}

#[test]
fn get_map_answers_as_haproxy() {
    let dir = tempfile::tempdir().unwrap();
    let (_proxy, _be) = start_lookups(dir.path());
    let sock = dir.path().join("admin.sock");
    let f = |name: &str| dir.path().join(name).display().to_string();
    // percore's own answers first (they hold without HAProxy too).
    let missing = "Missing map identifier and/or key.\n\n";
    let unknown = "Unknown map identifier. Please use #<id> or <file>.\n\n";
    assert_answers(
        &sock,
        &[
            (
                format!("get map {} a.example", f("str.map")),
                "type=str, case=sensitive, found=yes, idx=tree, key=\"a.example\", value=\"one\", type=\"str\"\n\n",
            ),
            (
                format!("get map {} A.example", f("str.map")),
                "type=str, case=sensitive, found=no\n\n",
            ),
            (
                format!("get map {} 10.1.2.3", f("ip.map")),
                "type=ip, case=sensitive, found=yes, idx=tree, key=\"10.1.0.0/16\", value=\"::1\", type=\"ipv6\"\n\
                 type=ip, case=sensitive, found=yes, idx=tree, key=\"10.1.0.0/16\", value=\"::1\", type=\"str\"\n\n",
            ),
            ("get map".to_string(), missing),
            (format!("get map {}", f("str.map")), missing),
            ("get map /no/such.map x".to_string(), unknown),
            ("get map #99 x".to_string(), unknown),
        ],
    );
    let Some((_haproxy, hsock)) = haproxy_with_lookups(dir.path()) else {
        eprintln!("haproxy is not installed: skipped");
        return;
    };
    let compare = |when: &str| {
        for q in get_map_questions(dir.path()) {
            assert_eq!(socat(&sock, &q), socat(&hsock, &q), "{when}: {q}");
        }
    };
    compare("as loaded");
    // The same changes on both: get map reads the live copy.
    for change in [
        format!("add map {} A.example three", f("str.map")),
        format!("del map {} a.example", f("str.map")),
        format!("add map {} /ap short", f("beg.map")),
        format!("add map {} 3 30", f("int.map")),
        format!("clear map {}", f("reg.map")),
        format!("add acl {} zz", f("hosts.lst")),
    ] {
        assert_eq!(socat(&sock, &change), socat(&hsock, &change), "{change}");
    }
    compare("after changes");
}

/// `show acl <acl>`'s patterns without the entry ids (percore's and
/// HAProxy's differ).
fn patterns(sock: &Path, file: &str) -> Vec<String> {
    socat(sock, &format!("show acl {file}"))
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, p)| p.to_string()))
        .collect()
}

#[test]
fn del_acl_on_a_case_insensitive_file_takes_the_pattern_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, _be) = start_lookups(dir.path());
    let sock = dir.path().join("admin.sock");
    let hosts = dir.path().join("hosts.lst").display().to_string();
    // Each command and its answer on percore, which must be HAProxy's
    // when HAProxy is installed.
    let haproxy = haproxy_with_lookups(dir.path());
    let both = |command: String, want: &str| {
        assert_eq!(socat(&sock, &command), want, "percore: {command}");
        if let Some((_, hsock)) = &haproxy {
            assert_eq!(socat(hsock, &command), want, "haproxy: {command}");
        }
    };
    // HAProxy 2.6 compares the stored pattern byte for byte, -i or not:
    // a pattern differing only in case deletes nothing.
    both(format!("del acl {hosts} a.example"), "Key not found.\n\n");
    both(format!("del acl {hosts} B.EXAMPLE"), "Key not found.\n\n");
    both(format!("add acl {hosts} C.example"), "\n");
    both(format!("add acl {hosts} c.EXAMPLE"), "\n");
    // Deletes the one written so, not the other.
    both(format!("del acl {hosts} C.example"), "\n");
    both(
        format!("get acl {hosts} c.example"),
        "type=str, case=insensitive, match=yes, idx=list, pattern=\"c.EXAMPLE\"\n\n",
    );
    both(format!("del acl {hosts} A.example"), "\n");
    both(
        format!("get acl {hosts} a.example"),
        "type=str, case=insensitive, match=no\n\n",
    );
    let want = ["b.example", "c.EXAMPLE"];
    assert_eq!(patterns(&sock, &hosts), want);
    if let Some((_, hsock)) = &haproxy {
        assert_eq!(patterns(hsock, &hosts), want);
    }
    // The request path agrees, on every core (`A.example` is in no map:
    // str.map has `a.example`).
    assert_eq!(statuses_with(&proxy, "/", "Host: C.Example\r\n", 8), 403);
    assert_eq!(statuses_with(&proxy, "/", "Host: A.example\r\n", 8), 200);
}

/// The status one request with `headers` got from `addr`.
fn status_at(addr: std::net::SocketAddr, headers: &str) -> u16 {
    let mut rd = BufReader::new(connect(addr));
    let req = format!("GET / HTTP/1.1\r\n{headers}\r\n");
    rd.get_mut().write_all(req.as_bytes()).unwrap();
    read_response(&mut rd, false).expect("a response").0
}

#[test]
fn ignore_case_applies_to_the_patterns_after_it_as_haproxy() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("exact.lst"), "Exact.example\n").unwrap();
    std::fs::write(dir.path().join("generic.lst"), "Generic.example\n").unwrap();
    let f = |name: &str| dir.path().join(name).display().to_string();
    let acls = [
        // After a pattern, `-i` is a pattern: the ACL keeps case.
        (
            "a_inline",
            "hdr(host) a.example -i B.example".to_string(),
            410,
        ),
        (
            "b_files",
            format!("hdr(x-ua) -f {} -i -f {}", f("exact.lst"), f("generic.lst")),
            429,
        ),
    ];
    let table: Vec<String> = acls
        .iter()
        .map(|(name, line, _)| format!("{name} = {line:?}"))
        .collect();
    let rules: Vec<String> = acls
        .iter()
        .map(|(name, _, code)| format!("  \"deny deny_status {code} if {name}\","))
        .collect();
    let (proxy, _be) = start_with(dir.path(), &table.join(", "), &rules.join("\n"));
    let sock = dir.path().join("admin.sock");
    let cases = [
        ("Host: a.example\r\n", 410),
        ("Host: A.EXAMPLE\r\n", 200),
        ("Host: B.example\r\n", 410),
        ("Host: b.example\r\n", 200),
        ("Host: -i\r\n", 410),
        ("Host: x\r\nX-UA: Exact.example\r\n", 429),
        ("Host: x\r\nX-UA: exact.example\r\n", 200),
        ("Host: x\r\nX-UA: Generic.example\r\n", 429),
        ("Host: x\r\nX-UA: GENERIC.EXAMPLE\r\n", 429),
    ];
    for (headers, want) in cases {
        assert_eq!(statuses_with(&proxy, "/", headers, 4), want, "{headers:?}");
    }
    // A pattern added at runtime follows its file's case.
    assert_eq!(
        socat(&sock, &format!("add acl {} New.example", f("exact.lst"))),
        "\n"
    );
    assert_eq!(
        statuses_with(&proxy, "/", "Host: x\r\nX-UA: new.example\r\n", 8),
        200
    );
    let questions = [
        format!("get acl {} EXACT.example", f("exact.lst")),
        format!("get acl {} GENERIC.example", f("generic.lst")),
    ];
    assert_eq!(
        socat(&sock, &questions[0]),
        "type=str, case=sensitive, match=no\n\n"
    );

    // HAProxy answers the same requests and questions alike.
    let lines: Vec<String> = acls
        .iter()
        .map(|(name, line, code)| {
            format!("  acl {name} {line}\n  http-request deny deny_status {code} if {name}")
        })
        .collect();
    let hsock = dir.path().join("haproxy.sock");
    let config = format!(
        "global\n  stats socket {} level admin\ndefaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\nfrontend fe\n  bind 127.0.0.1:{{port}}\n{}\n  http-request return status 200\n",
        hsock.display(),
        lines.join("\n"),
    );
    let Some(haproxy) = haproxy::start(&config) else {
        eprintln!("haproxy is not installed: skipped");
        return;
    };
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", haproxy.port).parse().unwrap();
    for (headers, want) in cases {
        assert_eq!(status_at(addr, headers), want, "haproxy: {headers:?}");
    }
    assert_eq!(
        socat(&hsock, &format!("add acl {} New.example", f("exact.lst"))),
        "\n"
    );
    for q in &questions {
        assert_eq!(socat(&sock, q), socat(&hsock, q), "{q}");
    }
}
