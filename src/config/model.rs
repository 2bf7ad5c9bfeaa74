//! The validated, typed configuration. Everything downstream of `config::load`
//! sees only these types: no raw TOML, no unresolved names, no missing values
//! that the data path would have to default on its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use super::health::*;
use crate::http::{ErrorPages, ErrorResponse, ForwardFor, RequestRewrite};
pub use crate::rules::{
    CookieMode, CookiePersistence, HashKey, HashType, HttpRules, TcpRules, Userlist,
};
pub use crate::tls::{BindTls, OriginTls};

/// Index into `Config::backends`; resolved once at load time so the data path
/// never looks a backend up by name.
pub type BackendId = usize;

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this configuration was read from (for messages only).
    pub source: PathBuf,
    pub global: Global,
    pub frontends: Vec<Frontend>,
    pub backends: Vec<Backend>,
    /// The `[stats]` section: the stats page and `/metrics` listener.
    pub stats: Option<StatsPage>,
    /// `[[userlist]]` sections (HTTP basic auth).
    pub userlists: Vec<Arc<Userlist>>,
    /// The map files the rules read (`map(<file>)`), as loaded; each core
    /// applies runtime changes to its own copy (`crate::maps::core`).
    pub maps: Vec<Arc<crate::maps::MapData>>,
    /// ACL `-f` files read only at load (only `-m found`/`-m bool` ACLs,
    /// which take no pattern, read them; see `rules_parse::acl`): `add
    /// acl` on them says so instead of "unknown".
    pub frozen_acl_files: Vec<std::path::PathBuf>,
    /// The ways converters read the maps, in the order first used (`get
    /// map` answers a line for each).
    pub map_uses: Vec<crate::maps::MapUse>,
    /// Non-fatal findings (e.g. a missing timeout), printed at start like
    /// HAProxy's `[WARNING]` lines.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Threads {
    /// One executor per CPU in the process affinity mask.
    Auto,
    /// This many executors, on the first N CPUs of the affinity mask.
    Count(usize),
    /// One executor on each listed CPU id.
    Cpus(Vec<usize>),
}

#[derive(Debug, Clone)]
pub struct Global {
    pub threads: Threads,
    /// Process-wide connection limit (HAProxy `maxconn`), shared out across
    /// cores at start.
    pub maxconn: u32,
    /// Grace period after SIGTERM/SIGINT before remaining connections are
    /// cut (HAProxy `hard-stop-after`).
    pub hard_stop_after: Duration,
    /// Refuse to start when the fd limit cannot cover `maxconn` (HAProxy
    /// `strict-limits`, on by default); `false` warns and runs with what
    /// the hard limit allows.
    pub strict_limits: bool,
    pub tune: Tune,
    /// Where access logs go (HAProxy global `log` lines).
    pub log: Vec<LogTarget>,
    /// Runtime API sockets (HAProxy `stats socket`).
    pub stats_sockets: Vec<StatsSocket>,
    /// Idle time after which a runtime API client is disconnected (HAProxy
    /// `stats timeout`, 10s by default).
    pub stats_timeout: Duration,
    /// Who the process runs as once it has started, and where.
    pub process: Process,
}

/// `user`, `group`, `chroot`, `setcap`, `pidfile`: applied once, at
/// start-up (a reload reports a change as needing a restart). Checked
/// against the system then, not when the file is read: see
/// `runtime::privileges`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Process {
    pub user: Option<Written<Account>>,
    /// Defaults to the user's primary group.
    pub group: Option<Written<Account>>,
    pub chroot: Option<Written<PathBuf>>,
    pub pidfile: Option<Written<PathBuf>>,
    /// Capabilities kept by the cores' threads after the switch to `user`.
    pub setcap: Vec<Capability>,
}

/// A user or group as written: a name to look up, or an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    Name(String),
    Id(u32),
}

/// A Linux capability number (`CAP_NET_BIND_SERVICE` is 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability(pub u8);

/// A value and where it was written, for the errors only start-up can
/// find (a user that does not exist) to carry file:line:column too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written<T> {
    pub value: T,
    pub at: Origin,
}

/// The place of a setting: an error without its message yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(pub(crate) super::ConfigError);

impl Origin {
    /// The error `message` (and `hint`) at this place.
    pub fn error(&self, message: String, hint: Option<String>) -> super::ConfigError {
        super::ConfigError {
            message,
            hint,
            ..self.0.clone()
        }
    }
}

/// One runtime API socket (HAProxy `stats socket <path> mode <m> level <l>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSocket {
    pub path: PathBuf,
    /// Permission bits of the socket file; `None` leaves the umask's.
    pub mode: Option<u32>,
    pub level: CliLevel,
}

/// What a runtime API client may do, HAProxy's three levels in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CliLevel {
    /// Read non-sensitive information only.
    User,
    /// Also change some non-sensitive settings (`clear counters`).
    Operator,
    /// Everything.
    Admin,
}

impl CliLevel {
    pub fn name(self) -> &'static str {
        match self {
            CliLevel::User => "user",
            CliLevel::Operator => "operator",
            CliLevel::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tune {
    /// Forward tunnel bytes with splice(2) (HAProxy: on unless `nosplice`).
    pub splice: bool,
    /// Pipe capacity in bytes for splice (HAProxy `tune.pipesize`).
    pub pipesize: usize,
    /// Per-core cap on pooled pipes (HAProxy `maxpipes`, per core here).
    pub maxpipes: usize,
    /// Buffer size for the copy path and, later, HTTP heads (`tune.bufsize`).
    pub bufsize: usize,
    /// HTTP/2 frontend settings (`tune.h2.*`).
    pub h2: H2Tune,
}

/// `tune.h2.*`: what percore announces in its HTTP/2 SETTINGS and
/// enforces on clients (docs/security.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H2Tune {
    /// Streams a client may have open at once (HAProxy's default, 100).
    pub max_concurrent_streams: u32,
    /// Per-stream receive window: how much of a request body a client may
    /// send before percore has forwarded it (HAProxy's default, 65535).
    pub initial_window_size: u32,
    /// Largest frame payload percore accepts.
    pub max_frame_size: u32,
    /// HPACK dynamic table size the client may use towards percore.
    pub header_table_size: u32,
}

impl Default for H2Tune {
    fn default() -> Self {
        H2Tune {
            max_concurrent_streams: 100,
            initial_window_size: 65_535,
            max_frame_size: 16_384,
            header_table_size: 4096,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Tcp,
    Http,
}

/// Timeouts after `[defaults]` were applied. `None` means "no timeout",
/// which HAProxy allows but warns about; the loader adds that warning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Option<Duration>,
    pub client: Option<Duration>,
    pub server: Option<Duration>,
    pub tunnel: Option<Duration>,
    pub queue: Option<Duration>,
    pub http_request: Option<Duration>,
    pub http_keep_alive: Option<Duration>,
    /// `timeout check`: how long each check step (after the connect) may
    /// wait; `None` uses `inter`, as HAProxy does.
    pub check: Option<Duration>,
    /// `timeout tarpit`: how long `http-request tarpit` holds a request;
    /// `None` uses `timeout connect`, as HAProxy does.
    pub tarpit: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Frontend {
    pub name: String,
    pub mode: Mode,
    pub binds: Vec<SocketAddr>,
    /// TLS termination of each bind (HAProxy `bind ... ssl crt ...`), same
    /// order as `binds`; `None` for a plain bind.
    pub bind_tls: Vec<Option<Arc<BindTls>>>,
    /// `accept-proxy` of each bind (HAProxy `bind ... accept-proxy`),
    /// same order as `binds`: connections start with a PROXY header.
    pub bind_proxy: Vec<bool>,
    /// `proto = "h2"` of each bind, same order as `binds`: its clients
    /// speak HTTP/2 from the first byte (h2c with prior knowledge, or h2
    /// over TLS whatever ALPN said).
    pub bind_h2: Vec<bool>,
    /// `None`: requests no `use_backend` rule routes get a 503 (HTTP) or
    /// are closed (TCP), as HAProxy does without `default_backend`.
    pub default_backend: Option<BackendId>,
    /// Per-frontend connection limit (HAProxy frontend `maxconn`), if set.
    pub maxconn: Option<u32>,
    /// listen(2) backlog for this frontend's sockets.
    pub backlog: u32,
    pub timeouts: Timeouts,
    /// What `mode = "http"` sessions of this frontend do before a backend
    /// is chosen (and when none is): the frontend's own settings.
    pub http: FrontendHttp,
    /// The effective settings with each backend this frontend can route to
    /// (`default_backend` and `use_backend` targets), by `BackendId`;
    /// `None` for a backend it never routes to. See [`Frontend::http_for`].
    pub http_routes: Vec<Option<Box<FrontendHttp>>>,
    /// Access logging for this frontend.
    pub log: FrontendLog,
    /// `acl`, `http-request`, `use_backend` and `http-response` rules.
    pub rules: HttpRules,
    /// `tcp-request` rules (over the ACLs of `rules`).
    pub tcp_rules: TcpRules,
    /// `stick-table`: the table named after this frontend.
    pub stick_table: Option<Arc<crate::stick::TableDef>>,
}

/// HAProxy `http-reuse`: which requests may use an idle server connection
/// that another client connection opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpReuse {
    /// Server connections stay private to the client connection that
    /// opened them and are closed with it.
    Never,
    /// The first request of a client connection gets its own server
    /// connection; later ones may use idle connections of other clients.
    #[default]
    Safe,
    /// Any request may use any idle connection to the chosen server.
    Always,
}

/// Effective HTTP settings of a frontend and the backend a request was
/// routed to (HAProxy: options valid in both sections apply if set in
/// either; backend-only ones come from the backend).
#[derive(Debug, Clone, Default)]
pub struct FrontendHttp {
    /// X-Forwarded-For (frontend or backend `forwardfor`, the backend's
    /// parameters first, as HAProxy), X-Forwarded-Proto/Port.
    pub rewrite: RequestRewrite,
    /// `option http-server-close` on the frontend or the backend.
    pub server_close: bool,
    /// `option http-buffer-request` on the frontend or the backend: the
    /// body is waited for (up to the buffer) before the rules run. In the
    /// frontend's own settings (`Frontend::http`) also set when a backend
    /// it routes to has it: the wait happens before the frontend's rules.
    pub buffer_request: bool,
    /// The backend's `http-reuse`.
    pub reuse: HttpReuse,
    /// Pages for errors found before a backend is involved (400, 408):
    /// HAProxy's defaults with the frontend's `errorfile`s.
    pub errors: ErrorPages,
    /// Pages for errors once the backend is involved (502, 503, 504): the
    /// backend's `errorfile`s over the frontend's.
    pub backend_errors: ErrorPages,
}

/// HTTP settings of a backend as configured (see `FrontendHttp` for the
/// effective ones).
#[derive(Debug, Clone, Default)]
pub struct BackendHttp {
    pub forward_for: Option<ForwardFor>,
    pub server_close: bool,
    pub buffer_request: bool,
    pub reuse: HttpReuse,
    pub errorfiles: Vec<ErrorResponse>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    StaticRr,
    LeastConn,
    First,
    Source,
    /// `random` / `random(N)`: draws in `BalanceParams::draws`.
    Random,
    /// `uri`, `url_param`, `hdr(...)`: the key in `BalanceParams::key`.
    Uri,
    UrlParam,
    Hdr,
}

/// What `balance` says beyond its algorithm, and `hash-type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceParams {
    /// What the HTTP hash algorithms hash.
    pub key: Option<HashKey>,
    pub hash_type: HashType,
    /// `random(N)`: servers drawn per pick, the least loaded wins (power of
    /// N choices); 1 is plain weighted random.
    pub draws: u32,
}

impl Default for BalanceParams {
    fn default() -> Self {
        BalanceParams {
            key: None,
            hash_type: HashType::MapBased,
            draws: 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Backend {
    pub name: String,
    pub mode: Mode,
    pub balance: Balance,
    pub balance_params: BalanceParams,
    pub servers: Vec<Server>,
    /// Extra connection attempts after the first one fails (HAProxy `retries`).
    pub retries: u32,
    /// `option redispatch <interval>`: `None` = off; a positive P redispatches
    /// every Pth retry, a negative -N the Nth retry before the last (HAProxy's
    /// default, `option redispatch` alone, is -1: the last retry).
    pub redispatch: Option<i32>,
    /// Use every backup server at once instead of only the first
    /// (`option allbackups`).
    pub allbackups: bool,
    pub timeouts: Timeouts,
    /// How servers with `check` are checked (`tcp-check` / `http-check`).
    pub check: CheckKind,
    pub http: BackendHttp,
    /// `acl`, `http-request` and `http-response` rules.
    pub rules: HttpRules,
    /// `cookie NAME insert|rewrite|prefix ...`
    pub cookie: Option<CookiePersistence>,
    /// `stick-table`: the table named after this backend (a backend may
    /// hold nothing else, as HAProxy's table-only backends).
    pub stick_table: Option<Arc<crate::stick::TableDef>>,
    /// `stick on|match|store-request|store-response` (over the ACLs of
    /// `rules`).
    pub stick_rules: Vec<crate::stick::StickRule>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    pub addr: SocketAddr,
    /// 0..=256 as in HAProxy; 0 means the server takes no new traffic
    /// from load balancing.
    pub weight: u32,
    /// Concurrent connection limit for this server, process wide.
    pub maxconn: Option<u32>,
    pub backup: bool,
    pub disabled: bool,
    /// Active health checks (`check = true`); `None` when off.
    pub check: Option<ServerCheck>,
    /// TLS towards this server (`ssl = true`); `None` for plain TCP.
    pub ssl: Option<Arc<OriginTls>>,
    /// Cookie persistence value (HAProxy server `cookie`).
    pub cookie: Option<String>,
    /// The PROXY header each new connection to this server starts with
    /// (`send-proxy`, `send-proxy-v2`); `None`: none.
    pub send_proxy: Option<SendProxy>,
    /// The protocol requests go to this server in (`proto = "h2"`:
    /// HTTP/2, multiplexed; health checks stay HTTP/1).
    pub proto: ServerProto,
}

/// The protocol percore speaks to a server in `mode = "http"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ServerProto {
    /// HTTP/1.1, one request at a time per connection.
    #[default]
    Http1,
    /// HTTP/2 (h2c with prior knowledge; ALPN `h2` with `ssl = true`).
    H2,
}

/// Which PROXY protocol header a server connection starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendProxy {
    /// The text line (`send-proxy`).
    V1,
    /// The binary header (`send-proxy-v2`).
    V2,
}

impl Frontend {
    /// The HTTP settings for a request routed to `backend`; the
    /// frontend's own for a backend it cannot route to.
    pub fn http_for(&self, backend: BackendId) -> &FrontendHttp {
        self.http_routes
            .get(backend)
            .and_then(|h| h.as_deref())
            .unwrap_or(&self.http)
    }
}

impl Config {
    pub fn backend(&self, id: BackendId) -> &Backend {
        &self.backends[id]
    }

    /// Every stick table, frontends' first.
    pub fn stick_tables(&self) -> impl Iterator<Item = &Arc<crate::stick::TableDef>> {
        self.frontends
            .iter()
            .filter_map(|f| f.stick_table.as_ref())
            .chain(self.backends.iter().filter_map(|b| b.stick_table.as_ref()))
    }
}

/// One global log destination (HAProxy `log <target> [format <fmt>] <facility>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    pub dest: LogDest,
    pub framing: LogFraming,
    /// Syslog facility code (local0 = 16).
    pub facility: u8,
    /// Program name in syslog headers (HAProxy `log-tag`).
    pub tag: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDest {
    Stdout,
    Stderr,
    /// Appended to; created if missing.
    File(std::path::PathBuf),
    /// Syslog over UDP.
    Udp(SocketAddr),
    /// Syslog over TCP, octet-counted (RFC 6587 3.4.1).
    Tcp(SocketAddr),
    /// Syslog to a local datagram socket such as `/dev/log` (HAProxy `log
    /// /dev/log`).
    Unix(std::path::PathBuf),
}

/// How each line is framed on the wire (HAProxy `format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFraming {
    Rfc3164,
    Rfc5424,
    /// The log line alone.
    Raw,
}

/// The access-log line layout of a frontend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFormat {
    /// HAProxy `option tcplog`.
    Tcp,
    /// HAProxy `option httplog`.
    Http,
    /// One JSON object per line, every field named.
    Json,
    /// HAProxy's custom log format (`log-format "%ci:%cp ..."`), compiled.
    Custom(std::sync::Arc<crate::log::custom::CustomFormat>),
}

/// A frontend's logging (HAProxy `log global`, `option tcplog|httplog`,
/// `option dontlognull`, `capture request header`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendLog {
    pub enabled: bool,
    pub format: LogFormat,
    /// Skip sessions that carried no data from the client.
    pub dontlognull: bool,
    pub captures: Vec<HeaderCapture>,
    /// `capture-response-header`: HAProxy's `capture response header`.
    pub response_captures: Vec<HeaderCapture>,
    /// `capture-cookie`: HAProxy's `capture cookie <name> len <n>` (`%CC`,
    /// `%CS`); `name` is the cookie name's beginning.
    pub cookie_capture: Option<HeaderCapture>,
    /// `declare-capture`: slots for `http-request|http-response capture
    /// ... id <n>` (their lengths), after the header captures.
    pub declared: DeclaredCaptures,
    /// `unique-id-format` (and `unique-id-header`).
    pub unique_id: Option<UniqueId>,
    /// `log-format-sd`: the RFC 5424 STRUCTURED-DATA of each line (used
    /// by `format = "rfc5424"` targets only, as in HAProxy).
    pub sd: Option<std::sync::Arc<crate::log::custom::CustomFormat>>,
}

/// HAProxy's `declare capture request|response len <n>`: the lengths of
/// the declared slots of each side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclaredCaptures {
    pub request: Vec<usize>,
    pub response: Vec<usize>,
}

impl FrontendLog {
    pub fn off() -> Self {
        FrontendLog {
            enabled: false,
            format: LogFormat::Tcp,
            dontlognull: false,
            captures: Vec::new(),
            response_captures: Vec::new(),
            cookie_capture: None,
            declared: DeclaredCaptures::default(),
            unique_id: None,
            sd: None,
        }
    }
}

/// HAProxy's `unique-id-format <fmt>` and `unique-id-header <name>`: an id
/// made once per request from a log-format string, logged as `%ID`, read by
/// the `unique-id` fetch and, with a header name, sent to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueId {
    pub format: std::sync::Arc<crate::log::custom::CustomFormat>,
    pub header: Option<String>,
}

/// `capture request header <name> len <len>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderCapture {
    pub name: String,
    pub len: usize,
}

/// The `[stats]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsPage {
    pub bind: SocketAddr,
    /// Path of the HTML page (`;csv`, `;json` select other formats).
    pub uri: String,
    /// Basic auth credentials (HAProxy `stats auth user:pass`).
    pub auth: Option<(String, String)>,
    /// Leave the version out of the page (HAProxy `stats hide-version`).
    pub hide_version: bool,
    /// HTML auto-refresh period (HAProxy `stats refresh`).
    pub refresh: Option<Duration>,
}
