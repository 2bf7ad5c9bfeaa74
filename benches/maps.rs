//! Map lookups (`map`, `map_beg`, `map_ip` converters) in a 100,000-line
//! map, against a 10-line one: the cost must not grow with the map
//! (hash tables per key / prefix length). Also the whole routing of a
//! request by `use_backend %[req.hdr(host),lower,map(hosts.map,dflt)]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use percore::config::load_str;
use percore::http::{ParseStatus, RequestParser};
use percore::maps::{load, MapRef, MatchKind};
use percore::rules::convert_ops::{ValType, Value};
use percore::rules::{ConnFacts, Facts};

/// Counts heap allocations, to show that routing by a map allocates
/// nothing per request.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only
// counts them.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`, and `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn map_text(lines: usize, key: impl Fn(usize) -> String) -> String {
    (0..lines)
        .map(|i| format!("{} be{}\n", key(i), i % 10))
        .collect()
}

fn map(kind: MatchKind, text: &str) -> MapRef {
    let data = load::parse(text.as_bytes(), "bench.map".into(), kind, String::new(), 0)
        .expect("valid map");
    MapRef {
        map: Arc::new(data),
        output: ValType::Str,
    }
}

fn lookups(c: &mut Criterion) {
    let mut group = c.benchmark_group("map_lookup");
    for lines in [10usize, 100_000] {
        let host = |i: usize| format!("host{i}.example.com");
        let exact = map(MatchKind::Str, &map_text(lines, host));
        let key = format!("host{}.example.com", lines / 2);
        group.bench_function(format!("str/{lines}"), |b| {
            b.iter(|| black_box(exact.lookup(&Value::Str(black_box(key.as_bytes()).into()))))
        });
        let prefix = map(MatchKind::Beg, &map_text(lines, |i| format!("/app{i}/")));
        let path = format!("/app{}/static/js/main.js", lines / 2);
        group.bench_function(format!("beg/{lines}"), |b| {
            b.iter(|| black_box(prefix.lookup(&Value::Str(black_box(path.as_bytes()).into()))))
        });
        let nets = map(
            MatchKind::Ip,
            &map_text(lines, |i| format!("10.{}.{}.0/24", (i >> 8) & 255, i & 255)),
        );
        let ip = Value::Ip("10.0.5.7".parse().unwrap());
        group.bench_function(format!("ip/{lines}"), |b| {
            b.iter(|| black_box(nets.lookup(black_box(&ip))))
        });
    }
    group.finish();
}

fn routing(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("percore-bench-maps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("hosts.map"),
        map_text(100_000, |i| format!("host{i}.example.com")),
    )
    .unwrap();
    let mut config = String::from(
        r#"
[defaults]
mode = "http"
timeout = { connect = "5s", client = "30s", server = "30s" }

[[frontend]]
name = "www"
bind = ["127.0.0.1:18080"]
default_backend = "dflt"
use_backend = ["%[req.hdr(host),lower,map(hosts.map,dflt)]"]
"#,
    );
    for name in [
        "dflt", "be0", "be1", "be2", "be3", "be4", "be5", "be6", "be7", "be8", "be9",
    ] {
        config.push_str(&format!(
            "\n[[backend]]\nname = \"{name}\"\nservers = [{{ name = \"s\", addr = \"127.0.0.1:9001\" }}]\n"
        ));
    }
    let config = load_str(&config, &dir.join("bench.toml")).expect("valid config");
    let conn = ConnFacts {
        pp: None,
        stick: Default::default(),
        vars: Default::default(),
        live: Default::default(),
        unique_id: Default::default(),
        captures: Default::default(),
        log_level: Default::default(),
        timeouts: Default::default(),
        early_hints: Default::default(),
        src: "203.0.113.9:51234".parse().unwrap(),
        dst: "127.0.0.1:18080".parse().unwrap(),
        tls: None,
    };
    let raw = b"GET / HTTP/1.1\r\nHost: host50001.example.com\r\n\r\n";
    let mut parser = RequestParser::default();
    let fe = &config.frontends[0];
    let mut route = || {
        let ParseStatus::Complete(head) = parser.parse(raw) else {
            panic!("bad request")
        };
        fe.rules.pick_backend(&Facts::request(&conn, &head))
    };
    assert_eq!(config.backends[route().unwrap()].name, "be1");
    c.bench_function("use_backend_map_100k/parse_and_route", |b| {
        b.iter(|| black_box(route()))
    });
    for _ in 0..10 {
        route();
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let rounds = 10_000u64;
    for _ in 0..rounds {
        black_box(route());
    }
    let per_request = (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / rounds as f64;
    println!("allocations per request, use_backend by a 100,000-line map: {per_request:.2}");
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, lookups, routing);
criterion_main!(benches);
