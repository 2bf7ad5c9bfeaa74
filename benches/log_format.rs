//! Cost of writing one access-log line: HAProxy's httplog built in, the
//! same layout as a custom `log-format` string, and a custom format with
//! `%[...]` samples and flags. Also counts heap allocations per line with
//! a counting global allocator (target: none once the buffer has grown).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use percore::config::{load_str, LogFormat};
use percore::log::{format_record, Clock, ConnCounts, HttpLog, LogRecord};
use percore::rules::{ConnFacts, Facts};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const HTTPLOG: &str = "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r";
const RICH: &str = "%{+Q}o %ci %[src] %[dst_port] %[var(txn.who),upper] %HM %HP %HQ %{-Q}ST %B %U %Tt %Tq %ID %rt %{+X}Ts %T";

fn custom(format: &str) -> LogFormat {
    let config = format!(
        r#"
[defaults]
mode = "http"
timeout = {{ connect = "5s", client = "30s", server = "30s" }}

[[frontend]]
name = "www"
bind = ["127.0.0.1:18080"]
default_backend = "app"
log-format = '{format}'

[[backend]]
name = "app"
servers = [{{ name = "a1", addr = "127.0.0.1:9001" }}]
"#
    );
    let config = load_str(&config, Path::new("bench.toml")).unwrap_or_else(|e| panic!("{e}"));
    config.frontends[0].log.format.clone()
}

fn bench(c: &mut Criterion) {
    let captures = vec!["www.example.com".to_string()];
    let date = UNIX_EPOCH + Duration::from_millis(1_233_922_454_655);
    let record = LogRecord {
        client: "203.0.113.9:51234".parse().unwrap(),
        frontend_addr: Some("127.0.0.1:18080".parse().unwrap()),
        tls: false,
        server_addr: Some("127.0.0.1:9001".parse().unwrap()),
        unique_id: Some("CB007109:C822_7F000001:46A0_498C2996_001A:3039"),
        request_id: 26,
        accept_date: date,
        frontend: "www",
        backend: "app",
        server: Some("a1"),
        t_queue: Some(Duration::ZERO),
        t_connect: Some(Duration::from_millis(1)),
        t_total: Duration::from_millis(12),
        bytes_read: 2750,
        bytes_uploaded: 412,
        end: None,
        conns: ConnCounts {
            actconn: 40,
            feconn: 30,
            beconn: 20,
            srv_conn: 10,
        },
        retries: 0,
        redispatched: false,
        srv_queue: 0,
        backend_queue: 0,
        http: Some(HttpLog {
            request_date: date,
            t_idle: Duration::ZERO,
            t_request: Some(Duration::from_millis(1)),
            t_response: Some(Duration::from_millis(9)),
            t_active: Duration::from_millis(11),
            status: Some(200),
            request_line: "GET /static/app.js?v=3 HTTP/1.1",
            captured_request_headers: &captures,
            captured_response_headers: &[],
            captured_cookies: (None, None),
        }),
    };
    let conn = ConnFacts {
        src: "203.0.113.9:51234".parse().unwrap(),
        dst: "127.0.0.1:18080".parse().unwrap(),
        tls: None,
        pp: None,
        stick: Default::default(),
        vars: Default::default(),
        live: Default::default(),
        unique_id: Default::default(),
        captures: Default::default(),
        log_level: Default::default(),
        timeouts: Default::default(),
        early_hints: Default::default(),
    };
    let facts = Facts {
        conn: &conn,
        req: None,
        res: None,
        payload: None,
    };
    let formats = [
        ("httplog_builtin", LogFormat::Http),
        ("httplog_custom", custom(HTTPLOG)),
        ("rich_custom_with_samples", custom(RICH)),
    ];
    let mut group = c.benchmark_group("log_line");
    group.throughput(Throughput::Elements(1));
    let mut out = String::with_capacity(64 << 10);
    for (name, format) in &formats {
        out.clear();
        format_record(&mut out, format, &record, Clock::utc(), Some(&facts));
        println!("{name}: {out}");
        group.bench_function(*name, |b| {
            b.iter(|| {
                out.clear();
                format_record(
                    &mut out,
                    black_box(format),
                    black_box(&record),
                    Clock::utc(),
                    Some(&facts),
                );
                black_box(out.len())
            })
        });
        // Allocations per line in steady state.
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let rounds = 10_000u64;
        for _ in 0..rounds {
            out.clear();
            format_record(&mut out, format, &record, Clock::utc(), Some(&facts));
        }
        let per_line = (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / rounds as f64;
        println!("allocations per line, {name}: {per_line:.2}");
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
