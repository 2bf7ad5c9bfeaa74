//! Cost of routing one request: a frontend with 20 ACLs, its http-request
//! and use_backend rules, then the chosen backend's rules and balancing
//! hash, on typical requests. Also counts heap allocations per request
//! with a counting global allocator (target: none when no header is
//! rewritten).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use percore::config::{load_str, Config};
use percore::http::{write_request_head, ClientSide, ConnectionMode, ParseStatus, RequestParser};
use percore::rules::edit::{apply, Edit, EditBuffers};
use percore::rules::view::{run_request_rules, RuleRun};
use percore::rules::{ConnFacts, Facts, RequestView, Verdict};

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

const CONFIG: &str = r#"
[defaults]
mode = "http"
timeout = { connect = "5s", client = "30s", server = "30s" }

[[frontend]]
name = "www"
bind = ["127.0.0.1:18080"]
default_backend = "app"
acl = { is_ws = "hdr(Upgrade) -i websocket", one_key = "hdr_cnt(Sec-WebSocket-Key) eq 1", one_version = "hdr_cnt(Sec-WebSocket-Version) eq 1", chat = "hdr(host) -i chat.example.com", game = "hdr_beg(host) -i game.", static = ["path_beg -i /static /images /assets", "path_end -i .jpg .png .css .js .woff2"], api = "path_beg /api/", api_v2 = ["hdr(X-Api-Version) 2", "url_param(v) 2"], admin = "path_beg /admin", internal = "src 10.0.0.0/8 192.168.0.0/16 fd00::/8", bad_ua = "hdr_sub(User-Agent) -i sqlmap nikto masscan", legacy = "path_reg ^/(old|legacy)/", health = "path /healthz", post = "method POST PUT PATCH", http10 = "req.ver 1.0", tls = "ssl_fc", logged_in = "req.cook(session) -m found", big_query = "query -m len gt 512", example = "hdr_dom(host) example.com", tracking = "url_param(utm_source) -m found" }
http-request = [
  "deny deny_status 400 if is_ws !one_key || is_ws !one_version",
  "deny if bad_ua",
  "deny deny_status 400 if big_query",
  "return status 200 content-type text/plain string ok if health",
  "redirect prefix /new code 301 if legacy",
  "deny if admin !internal",
]
use_backend = ["chat if is_ws chat", "game if is_ws game", "static if static", "api_v2 if api api_v2", "api if api"]

[[backend]]
name = "app"
balance = "roundrobin"
servers = [{ name = "a1", addr = "127.0.0.1:9001" }, { name = "a2", addr = "127.0.0.1:9002" }]

[[backend]]
name = "static"
balance = "uri"
hash-type = "consistent"
servers = [{ name = "s1", addr = "127.0.0.1:9011" }, { name = "s2", addr = "127.0.0.1:9012" }]

[[backend]]
name = "api"
balance = "url_param tableId"
servers = [{ name = "p1", addr = "127.0.0.1:9021" }, { name = "p2", addr = "127.0.0.1:9022" }]

[[backend]]
name = "api_v2"
servers = [{ name = "v1", addr = "127.0.0.1:9031" }]
http-request = ["set-header X-Api-Version 2", "set-header X-Client %[src]"]

[[backend]]
name = "chat"
servers = [{ name = "c1", addr = "127.0.0.1:9041" }]

[[backend]]
name = "game"
servers = [{ name = "g1", addr = "127.0.0.1:9051" }]
"#;

const STATIC: &[u8] = b"GET /static/js/app.3f9a1c.js?v=20240611 HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: */*\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/products/widgets?page=2\r\n\
Connection: keep-alive\r\n\
Cookie: session=4f1c2a9be0d34f7a8c61; theme=dark; consent=1\r\n\
\r\n";

const API: &[u8] = b"GET /api/tables?tableId=42 HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: application/json\r\n\
Cookie: session=4f1c2a9be0d34f7a8c61\r\n\
\r\n";

const PAGE: &[u8] = b"GET /products/widgets?page=2 HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Connection: keep-alive\r\n\
\r\n";

const WEBSOCKET: &[u8] = b"GET /socket HTTP/1.1\r\n\
Host: chat.example.com\r\n\
Connection: Upgrade\r\n\
Upgrade: websocket\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\
\r\n";

/// An API v2 request: its backend rewrites two headers.
const API_V2: &[u8] = b"POST /api/orders?v=2 HTTP/1.1\r\n\
Host: www.example.com\r\n\
Content-Length: 0\r\n\
\r\n";

struct Router<'c> {
    config: &'c Config,
    conn: ConnFacts,
    side: ClientSide,
    edits: Vec<Edit<'c>>,
    bufs: EditBuffers,
    view: RequestView,
    out: Vec<u8>,
}

impl<'c> Router<'c> {
    /// What the HTTP session does per request (src/proxy/http/route.rs):
    /// frontend rules, use_backend, backend rules, balancing hash, then
    /// the outgoing head with its rewrites.
    fn route(&mut self, parser: &mut RequestParser, raw: &[u8]) -> (usize, Option<u64>) {
        let ParseStatus::Complete(head) = parser.parse(raw) else {
            panic!("bad request");
        };
        let fe = &self.config.frontends[0];
        self.edits.clear();
        self.view.clear();
        let verdict = run_request_rules(
            &fe.rules,
            &self.conn,
            &head,
            &mut self.view,
            &mut self.bufs,
            0,
        );
        if !matches!(verdict, RuleRun::Done(Verdict::Forward)) {
            return (usize::MAX, None);
        }
        let chosen = {
            let current = self.view.current(&head);
            let facts = Facts::request(&self.conn, &current);
            fe.rules.pick_backend(&facts).or(fe.default_backend)
        };
        let Some(be_id) = chosen else {
            return (usize::MAX, None);
        };
        let be = &self.config.backends[be_id];
        let verdict = run_request_rules(
            &be.rules,
            &self.conn,
            &head,
            &mut self.view,
            &mut self.bufs,
            0,
        );
        if !matches!(verdict, RuleRun::Done(Verdict::Forward)) {
            return (usize::MAX, None);
        }
        let current = self.view.current(&head);
        let facts = Facts::request(&self.conn, &current);
        let hash = be
            .balance_params
            .key
            .as_ref()
            .and_then(|k| k.hash(&current));
        self.out.clear();
        write_request_head(
            &mut self.out,
            &current,
            &fe.http_for(be_id).rewrite,
            &self.side,
            ConnectionMode::KeepAlive,
        );
        if !self.edits.is_empty() {
            apply(&mut self.out, &self.edits, &facts, &mut self.bufs);
        }
        (be_id, hash)
    }
}

/// The ACLs of [`CONFIG`] that [`FILE_ACLS`] reads from `-f` files
/// instead (live pattern files, the runtime API's `add acl` changes
/// them), with the file each reads and its lines.
const FILE_ACLS: [(&str, &str, &str, &str); 4] = [
    (
        "hdr(host) -i chat.example.com",
        "hdr(host) -i -f",
        "hosts.lst",
        "Chat.Example.com\n",
    ),
    (
        "hdr_beg(host) -i game.",
        "hdr_beg(host) -i -f",
        "game.lst",
        "game.\n",
    ),
    (
        "path_end -i .jpg .png .css .js .woff2",
        "path_end -i -f",
        "ext.lst",
        ".jpg\n.png\n.CSS\n.js\n.woff2\n",
    ),
    (
        "hdr_sub(User-Agent) -i sqlmap nikto masscan",
        "hdr_sub(User-Agent) -i -f",
        "ua.lst",
        "sqlmap\nNikto\nmasscan\n",
    ),
];

fn bench(c: &mut Criterion) {
    let config = load_str(CONFIG, Path::new("bench.toml")).expect("valid bench config");
    run(c, "routing_20_acls", &config);
    // The same routing with four `-i` ACLs reading live `-f` files.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut text = CONFIG.to_string();
    for (inline, flags, file, lines) in FILE_ACLS {
        let path = dir.path().join(file);
        std::fs::write(&path, lines).expect("pattern file written");
        text = text.replace(inline, &format!("{flags} {}", path.display()));
    }
    let config = load_str(&text, Path::new("bench.toml")).expect("valid bench config");
    run(c, "routing_20_acls_4_files", &config);
}

fn run(c: &mut Criterion, group_name: &str, config: &Config) {
    let acls = config.frontends[0].rules.acls.len();
    assert_eq!(acls, 20, "the frontend has 20 ACLs");
    let mut router = Router {
        config,
        conn: ConnFacts {
            pp: None,
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
            stick: Default::default(),
        },
        side: ClientSide {
            addr: "203.0.113.9".parse().unwrap(),
            local_port: 18080,
            tls: false,
        },
        edits: Vec::new(),
        bufs: EditBuffers::default(),
        view: RequestView::default(),
        out: Vec::with_capacity(4096),
    };
    let mut parser = RequestParser::default();
    let names = ["static", "api", "page", "websocket", "api_v2_rewrites"];
    let requests = [STATIC, API, PAGE, WEBSOCKET, API_V2];
    let expected = ["static", "api", "app", "chat", "api_v2"];

    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(1));
    for ((name, raw), want) in names.iter().zip(requests).zip(expected) {
        let (be, _) = router.route(&mut parser, raw);
        assert_eq!(config.backends[be].name, want, "{name}");
        // Parse alone, to subtract.
        group.bench_function(format!("parse_only/{name}"), |b| {
            b.iter(|| black_box(parser.parse(black_box(raw)).complete().map(|h| h.head_len)))
        });
        group.bench_function(format!("parse_and_route/{name}"), |b| {
            b.iter(|| black_box(router.route(&mut parser, black_box(raw))))
        });
        // Allocations per request in steady state.
        for _ in 0..10 {
            router.route(&mut parser, raw);
        }
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let rounds = 10_000u64;
        for _ in 0..rounds {
            black_box(router.route(&mut parser, raw));
        }
        let per_request = (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / rounds as f64;
        println!("allocations per request, {group_name}/{name}: {per_request:.2}");
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
