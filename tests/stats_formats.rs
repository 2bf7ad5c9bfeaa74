//! percore's runtime API renderers against HAProxy 2.6 itself: a real
//! `haproxy` with a stats socket and the same frontend, backend and
//! servers; for every field percore prints in `show stat typed`,
//! `show stat json`, `show info typed` and `show info json`, HAProxy must
//! print the same field at the same position with the same tags and type
//! (values differ, of course). .ci/run installs haproxy, so a missing
//! binary fails the test.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use percore::admin::render::info::{show_info, ShowInfo};
use percore::admin::render::show_stat::{show_stat, ShowStat};
use percore::admin::render::{csv, PageInfo, View};
use percore::stats::{BackendState, CoreStats, ServerState, Snapshot};

const PATIENCE: Duration = Duration::from_secs(10);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

struct Haproxy {
    child: Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Haproxy {
    fn start() -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("admin.sock");
        let cfg = dir.path().join("haproxy.cfg");
        let (fe, s1, s2) = (free_port(), free_port(), free_port());
        std::fs::write(
            &cfg,
            format!(
                "global\n  nbthread 1\n  stats socket {} level admin\n\
                 defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
                 frontend fe\n  bind 127.0.0.1:{fe}\n  maxconn 100\n  default_backend be\n\
                 backend be\n  server s1 127.0.0.1:{s1} maxconn 10\n  server s2 127.0.0.1:{s2} backup\n",
                sock.display()
            ),
        )
        .unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy must be installed (.ci/run installs it)");
        let deadline = Instant::now() + PATIENCE;
        while UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "haproxy did not start");
            thread::sleep(Duration::from_millis(20));
        }
        Haproxy {
            child,
            sock,
            _dir: dir,
        }
    }

    /// One command on the stats socket; HAProxy answers and closes.
    fn ask(&self, command: &str) -> String {
        let mut s = UnixStream::connect(&self.sock).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.write_all(format!("{command}\n").as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        // The CLI's own end-of-answer line; percore's socket adds it too.
        out.strip_suffix('\n').unwrap_or(&out).to_string()
    }
}

/// The same proxies in percore's configuration, with untouched counters.
fn percore_view_parts() -> (percore::config::Config, Snapshot, PageInfo) {
    let config = percore::config::load_str(
        r#"
[[frontend]]
name = "fe"
bind = ["127.0.0.1:1"]
maxconn = 100
default_backend = "be"
mode = "http"
timeout = { client = "5s" }
[[backend]]
name = "be"
mode = "http"
timeout = { connect = "1s", server = "5s" }
servers = [
  { name = "s1", addr = "127.0.0.1:2", maxconn = 10 },
  { name = "s2", addr = "127.0.0.1:3", backup = true },
]
"#,
        Path::new("stats_formats.toml"),
    )
    .unwrap();
    let server = |backup| ServerState {
        up_cores: 1,
        disabled_cores: 0,
        cores: 1,
        weight: 1,
        backup,
        since_change: Duration::from_secs(1),
        slots_used: 0,
        lbtot: 0,
        admin: Default::default(),
    };
    let snapshot = Snapshot {
        cores: 1,
        stats: CoreStats::for_config(&config),
        backends: vec![BackendState {
            queue_cur: 0,
            queue_max: 0,
            servers: vec![server(false), server(true)],
        }],
        log_lines: 0,
        log_dropped: 0,
        pipes_used: 0,
        pipes_free: 0,
        frontend_maxconn: vec![None],
    };
    let info = PageInfo::now(Instant::now(), 1, "lb".into(), &config);
    (config, snapshot, info)
}

/// `<obj>.<iid>.<sid>.<pos>.<name>.<proc>:<tag>:<type>:<value>` as
/// ((obj, name), (pos, "tag:type")).
fn stat_line(line: &str) -> ((String, String), (String, String)) {
    let mut parts = line.splitn(4, ':');
    let key = parts.next().unwrap();
    let tag = parts.next().unwrap();
    let ty = parts.next().unwrap();
    let k: Vec<&str> = key.split('.').collect();
    assert_eq!(k.len(), 6, "{line}");
    assert_eq!(k[5], "1", "process number: {line}");
    (
        (k[0].to_string(), k[4].to_string()),
        (k[3].to_string(), format!("{tag}:{ty}")),
    )
}

/// `<pos>.<name>.<proc>:<tag>:<type>:<value>` as (name, (pos, "tag:type")).
fn info_line(line: &str) -> (String, (String, String)) {
    let mut parts = line.splitn(4, ':');
    let key = parts.next().unwrap();
    let tag = parts.next().unwrap();
    let ty = parts.next().unwrap();
    let (pos, rest) = key.split_once('.').unwrap();
    let name = rest.strip_suffix(".1").unwrap();
    (name.to_string(), (pos.to_string(), format!("{tag}:{ty}")))
}

/// Every field object of a `show stat json` / `show info json` answer,
/// keyed by (objType, name), without its value's value.
fn json_fields(text: &str) -> HashMap<(String, String), serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    let objects: Vec<serde_json::Value> = match v {
        serde_json::Value::Array(items) => items
            .into_iter()
            .flat_map(|i| match i {
                serde_json::Value::Array(fields) => fields,
                field => vec![field],
            })
            .collect(),
        other => panic!("not an array: {other}"),
    };
    objects
        .into_iter()
        .map(|mut f| {
            let obj = f["objType"].as_str().unwrap_or("Info").to_string();
            let name = f["field"]["name"].as_str().unwrap().to_string();
            // Shape only: ids and values differ between the two.
            f["value"]["value"] = serde_json::Value::Null;
            for k in ["proxyId", "id"] {
                if let Some(o) = f.as_object_mut() {
                    o.remove(k);
                }
            }
            ((obj, name), f)
        })
        .collect()
}

#[test]
fn typed_and_json_fields_match_haproxy_2_6() {
    let haproxy = Haproxy::start();
    let (config, snapshot, info) = percore_view_parts();
    let v = View {
        config: &config,
        snapshot: &snapshot,
        info: &info,
    };
    let ours = |words: &[&str]| show_stat(&v, &ShowStat::parse(words).unwrap()).unwrap();

    // show stat typed
    let theirs: HashMap<_, _> = haproxy
        .ask("show stat typed")
        .lines()
        .filter(|l| !l.is_empty())
        .map(stat_line)
        .collect();
    let typed = ours(&["typed"]);
    let mut checked = 0;
    for line in typed.lines() {
        let (key, shape) = stat_line(line);
        assert_eq!(
            theirs.get(&key),
            Some(&shape),
            "{line}: HAProxy has {:?}",
            theirs.get(&key)
        );
        checked += 1;
    }
    assert!(checked > 100, "{typed}");

    // show stat json
    let theirs = json_fields(&haproxy.ask("show stat json"));
    let json = ours(&["json"]);
    for (key, shape) in &json_fields(&json) {
        assert_eq!(theirs.get(key), Some(shape), "{key:?}");
    }
    assert_eq!(
        json.matches("\"field\":").count(),
        checked,
        "json has the typed fields"
    );

    // show stat: the CSV header's HAProxy columns.
    let their_header = haproxy.ask("show stat");
    let their_header = their_header.lines().next().unwrap();
    let mut our_header = String::new();
    csv::header(&mut our_header);
    let ours_cols: Vec<&str> = our_header.trim_end().split(',').collect();
    let theirs_cols: Vec<&str> = their_header.split(',').collect();
    assert_eq!(ours_cols[..77], theirs_cols[..77]);

    // show info typed and json
    let theirs: HashMap<_, _> = haproxy
        .ask("show info typed")
        .lines()
        .filter(|l| !l.is_empty())
        .map(info_line)
        .collect();
    let typed = show_info(&v, ShowInfo::parse(&["typed"]));
    for line in typed.lines() {
        let (name, shape) = info_line(line);
        assert_eq!(theirs.get(&name), Some(&shape), "{line}");
    }
    // Every field HAProxy prints, percore prints, except the one it has
    // no value for.
    let our_names: Vec<String> = typed.lines().map(|l| info_line(l).0).collect();
    for name in theirs.keys() {
        assert!(
            our_names.contains(name) || name == "Release_date",
            "percore lacks {name}"
        );
    }
    let theirs = json_fields(&haproxy.ask("show info json"));
    let ours_json = json_fields(&show_info(&v, ShowInfo::parse(&["json"])));
    for (key, shape) in &ours_json {
        assert_eq!(theirs.get(key), Some(shape), "{key:?}");
    }
}
