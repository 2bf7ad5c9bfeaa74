//! Reading each section of the document into the typed model, one problem
//! reported per bad value, without stopping at the first.

use std::net::SocketAddr;
use std::time::Duration;

use super::error::{quoted_list, Diagnostics, Reported, Span};
use super::health_read::{
    read_check_kind, read_server_check, CheckSettings, DEFAULT_SERVER_KEYS, SERVER_ONLY_CHECK_KEYS,
};
use super::http::{ErrorfileContext, HttpKeys};
use super::model::{
    Backend, Balance, BalanceParams, FrontendLog, Global, HashType, Mode, Server, ServerProto,
    Threads, Timeouts, Tune,
};
use super::proxy_keys::ProxySettings;
use super::reader::{Located, Node, TableView};
use super::values::{self, Invalid, Resolver};

pub(crate) const ROOT_KEYS: &[&str] = &[
    "global", "defaults", "frontend", "backend", "stats", "userlist",
];
const GLOBAL_KEYS: &[&str] = &[
    "threads",
    "maxconn",
    "hard-stop-after",
    "strict-limits",
    "tune",
    "maxpipes",
    "log",
    "stats-socket",
    "stats-timeout",
    "user",
    "group",
    "chroot",
    "setcap",
    "pidfile",
];
const TUNE_KEYS: &[&str] = &["splice", "pipesize", "bufsize", "h2"];
const DEFAULTS_KEYS: &[&str] = &[
    "mode",
    "retries",
    "redispatch",
    "timeout",
    "balance",
    "backlog",
    "default-server",
    "forwardfor",
    "x-forwarded-proto",
    "x-forwarded-port",
    "http-server-close",
    "http-buffer-request",
    "http-reuse",
    "errorfile",
    "hash-type",
];
const FRONTEND_KEYS: &[&str] = &[
    "name",
    "mode",
    "bind",
    "default_backend",
    "maxconn",
    "backlog",
    "timeout",
    "forwardfor",
    "x-forwarded-proto",
    "x-forwarded-port",
    "http-server-close",
    "http-buffer-request",
    "errorfile",
    "log",
    "log-format",
    "log-format-sd",
    "dontlognull",
    "capture-request-header",
    "capture-response-header",
    "capture-cookie",
    "declare-capture",
    "unique-id-format",
    "unique-id-header",
    "acl",
    "use_backend",
    "http-request",
    "http-response",
    "tcp-request",
    "stick-table",
];
const BACKEND_KEYS: &[&str] = &[
    "name",
    "mode",
    "balance",
    "retries",
    "redispatch",
    "allbackups",
    "timeout",
    "servers",
    "default-server",
    "tcp-check",
    "http-check",
    "forwardfor",
    "http-server-close",
    "http-buffer-request",
    "http-reuse",
    "errorfile",
    "hash-type",
    "cookie",
    "acl",
    "http-request",
    "http-response",
    "stick-table",
    "stick",
];
/// Bind options beside `addr` and the TLS ones (`tls::BIND_KEYS`).
pub(crate) const BIND_OPTION_KEYS: &[&str] = &["accept-proxy", "proto"];
const SERVER_KEYS: &[&str] = &[
    "name", "addr", "weight", "maxconn", "backup", "disabled", "cookie",
];
pub(crate) const TIMEOUT_KEYS: [&str; 9] = [
    "connect",
    "client",
    "server",
    "tunnel",
    "queue",
    "http-request",
    "http-keep-alive",
    "check",
    "tarpit",
];

/// HAProxy's default `maxconn` when the fd limit does not decide it.
pub(crate) const DEFAULT_MAXCONN: u32 = 4096;
pub(crate) const DEFAULT_HARD_STOP_AFTER: Duration = Duration::from_secs(30);
/// HAProxy's `stats timeout` default.
pub(crate) const DEFAULT_STATS_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const DEFAULT_PIPESIZE: usize = 65536;
pub(crate) const DEFAULT_BUFSIZE: usize = 16384;
pub(crate) const DEFAULT_MAXPIPES: usize = 1024;
pub(crate) const DEFAULT_RETRIES: u32 = 3;
pub(crate) const DEFAULT_WEIGHT: u32 = 1;
const MAX_WEIGHT: i64 = 256;

/// Where a name was written, for duplicate and reference checks.
pub(crate) struct NameAt {
    pub name: String,
    pub span: Option<Span>,
}

pub(crate) fn report(diag: &mut Diagnostics<'_>, node: &Node<'_>, invalid: Invalid) -> Reported {
    diag.error(
        node.span.as_ref(),
        &node.path,
        invalid.message,
        invalid.hint,
    )
}

/// Turns an absent key into `Ok(None)`, keeping reported errors apart.
pub(crate) fn optional<'a, T>(
    table: &TableView<'a>,
    key: &str,
    read: impl FnOnce(&Node<'a>) -> Result<T, Reported>,
) -> Result<Option<T>, Reported> {
    table.get(key).map(|node| read(&node)).transpose()
}

pub(crate) fn duration(diag: &mut Diagnostics<'_>, node: &Node<'_>) -> Result<Duration, Reported> {
    let parsed = if node.is_string() {
        let text = node.string(diag)?.value;
        values::parse_duration(&text)
    } else if node.is_integer() {
        values::duration_from_millis(node.integer(diag)?.value)
    } else {
        return Err(diag.error(
            node.span.as_ref(),
            &node.path,
            format!(
                "expected a duration such as \"5s\", found {}",
                node.describe()
            ),
            Some(values::DURATION_HINT.into()),
        ));
    };
    parsed.map_err(|invalid| report(diag, node, invalid))
}

pub(crate) fn keyword<T: Copy>(
    diag: &mut Diagnostics<'_>,
    node: &Node<'_>,
    what: &str,
    table: &[(&str, T)],
) -> Result<T, Reported> {
    let text = node.string(diag)?.value;
    values::keyword(&text, what, table).map_err(|invalid| report(diag, node, invalid))
}

/// Reads `name` and renames the section's path after it, so every later
/// error in the section says `backend "pg"` rather than `backend[0]`.
fn section_name(
    diag: &mut Diagnostics<'_>,
    table: &mut TableView<'_>,
    kind: &str,
) -> Option<NameAt> {
    let Some(node) = table.get("name") else {
        diag.error(
            table.span.as_ref(),
            &table.path,
            format!("{kind} has no name"),
            Some(format!("add name = \"...\"; {}", values::NAME_HINT)),
        );
        return None;
    };
    let name = node.string(diag).ok()?;
    if !values::is_valid_name(&name.value) {
        diag.error(
            name.span.as_ref(),
            &node.path,
            format!("invalid {kind} name {:?}", name.value),
            Some(values::NAME_HINT.into()),
        );
        return None;
    }
    table.rename(format!("{kind} \"{}\"", name.value));
    Some(NameAt {
        name: name.value,
        span: name.span,
    })
}

pub(crate) fn read_global(
    diag: &mut Diagnostics<'_>,
    node: Option<Node<'_>>,
    cpus: &[usize],
) -> Global {
    let mut global = Global {
        threads: Threads::Auto,
        maxconn: DEFAULT_MAXCONN,
        hard_stop_after: DEFAULT_HARD_STOP_AFTER,
        strict_limits: true,
        tune: Tune {
            splice: true,
            pipesize: DEFAULT_PIPESIZE,
            maxpipes: DEFAULT_MAXPIPES,
            bufsize: DEFAULT_BUFSIZE,
            h2: Default::default(),
        },
        log: Vec::new(),
        stats_sockets: Vec::new(),
        stats_timeout: DEFAULT_STATS_TIMEOUT,
        process: Default::default(),
    };
    let Some(Ok(table)) = node.map(|n| n.table(diag)) else {
        return global;
    };
    table.check_keys(diag, GLOBAL_KEYS);
    global.process = super::process::read_process(diag, &table);
    global.log = super::observe::read_log_targets(diag, table.get("log"));
    global.stats_sockets = super::admin::read_stats_sockets(diag, table.get("stats-socket"));
    if let Ok(Some(timeout)) = optional(&table, "stats-timeout", |n| duration(diag, n)) {
        global.stats_timeout = timeout;
    }
    if let Ok(Some(threads)) = optional(&table, "threads", |n| read_threads(diag, n, cpus)) {
        global.threads = threads;
    }
    if let Ok(Some(maxconn)) = optional(&table, "maxconn", |n| {
        n.integer_in(diag, 1..=i64::from(u32::MAX))
    }) {
        global.maxconn = maxconn.value;
    }
    if let Ok(Some(grace)) = optional(&table, "hard-stop-after", |n| duration(diag, n)) {
        global.hard_stop_after = grace;
    }
    if let Ok(Some(strict)) = optional(&table, "strict-limits", |n| n.bool(diag)) {
        global.strict_limits = strict.value;
    }
    if let Ok(Some(maxpipes)) = optional(&table, "maxpipes", |n| n.integer_in(diag, 0..=1_000_000))
    {
        global.tune.maxpipes = maxpipes.value;
    }
    if let Some(Ok(tune)) = table.get("tune").map(|n| n.table(diag)) {
        tune.check_keys(diag, TUNE_KEYS);
        if let Ok(Some(splice)) = optional(&tune, "splice", |n| n.bool(diag)) {
            global.tune.splice = splice.value;
        }
        if let Ok(Some(size)) = optional(&tune, "pipesize", |n| {
            n.integer_in::<usize>(diag, 4096..=1 << 20)
        }) {
            if size.value.is_power_of_two() {
                global.tune.pipesize = size.value;
            } else if let Some(node) = tune.get("pipesize") {
                diag.error(
                    size.span.as_ref(),
                    &node.path,
                    format!("pipe size {} is not a power of two", size.value),
                    Some(
                        "the kernel rounds pipe sizes up to a power of two; use e.g. 65536".into(),
                    ),
                );
            }
        }
        if let Ok(Some(size)) = optional(&tune, "bufsize", |n| n.integer_in(diag, 1024..=1 << 20)) {
            global.tune.bufsize = size.value;
        }
        super::h2::read_h2_tune(diag, &tune, &mut global.tune.h2);
    }
    global
}

const THREADS_HINT: &str =
    "threads is \"auto\" (one per available CPU), a count such as 2, or a list of CPU ids such as [0, 1]";

fn read_threads(
    diag: &mut Diagnostics<'_>,
    node: &Node<'_>,
    cpus: &[usize],
) -> Result<Threads, Reported> {
    let available = || {
        let ids: Vec<String> = cpus.iter().map(ToString::to_string).collect();
        format!("CPUs available to this process: {}", ids.join(", "))
    };
    if node.is_string() {
        let text = node.string(diag)?.value;
        if text == "auto" {
            return Ok(Threads::Auto);
        }
        return Err(diag.error(
            node.span.as_ref(),
            &node.path,
            format!("invalid threads \"{text}\""),
            Some(THREADS_HINT.into()),
        ));
    }
    if node.is_integer() {
        let count = node.integer(diag)?.value;
        if count < 1 {
            return Err(diag.error(
                node.span.as_ref(),
                &node.path,
                format!("threads = {count}: at least one thread is needed"),
                Some(THREADS_HINT.into()),
            ));
        }
        return match usize::try_from(count) {
            Ok(n) if n <= cpus.len() => Ok(Threads::Count(n)),
            _ => Err(diag.error(
                node.span.as_ref(),
                &node.path,
                format!(
                    "threads = {count} but only {} CPUs are available: percore runs one pinned executor per CPU",
                    cpus.len()
                ),
                Some(format!("use threads = \"auto\"; {}", available())),
            )),
        };
    }
    if !node.is_array() {
        return Err(diag.error(
            node.span.as_ref(),
            &node.path,
            format!(
                "expected \"auto\", a count or a list of CPU ids, found {}",
                node.describe()
            ),
            Some(THREADS_HINT.into()),
        ));
    }
    let elements = node.array(diag)?;
    if elements.is_empty() {
        return Err(diag.error(
            node.span.as_ref(),
            &node.path,
            "threads is an empty list of CPUs",
            Some(THREADS_HINT.into()),
        ));
    }
    let mut ids: Vec<usize> = Vec::new();
    let mut failed = false;
    for element in &elements {
        let Ok(id) = element.integer_in::<usize>(diag, 0..=i64::from(u32::MAX)) else {
            failed = true;
            continue;
        };
        if ids.contains(&id.value) {
            diag.error(
                id.span.as_ref(),
                &element.path,
                format!("CPU {} is listed twice", id.value),
                Some("each CPU runs one executor; list it once".into()),
            );
            failed = true;
        } else if !cpus.contains(&id.value) {
            diag.error(
                id.span.as_ref(),
                &element.path,
                format!(
                    "CPU {} does not exist or is not available to this process",
                    id.value
                ),
                Some(available()),
            );
            failed = true;
        }
        ids.push(id.value);
    }
    if failed {
        Err(Reported)
    } else {
        Ok(Threads::Cpus(ids))
    }
}

/// Timeouts as written in one section: absent, set, or set to zero
/// (explicitly no timeout, as `0` means in HAProxy).
#[derive(Default, Clone)]
pub(crate) struct TimeoutSettings {
    values: [Option<Located<Option<Duration>>>; 9],
}

impl TimeoutSettings {
    pub(crate) fn read(diag: &mut Diagnostics<'_>, table: &TableView<'_>) -> Self {
        let mut settings = TimeoutSettings::default();
        let Some(Ok(timeouts)) = table.get("timeout").map(|n| n.table(diag)) else {
            return settings;
        };
        timeouts.check_keys(diag, &TIMEOUT_KEYS);
        for (slot, key) in settings.values.iter_mut().zip(TIMEOUT_KEYS) {
            if let Some(node) = timeouts.get(key) {
                if let Ok(d) = duration(diag, &node) {
                    *slot = Some(node.located((!d.is_zero()).then_some(d)));
                }
            }
        }
        settings
    }

    /// Where `key` was set in this section, if it was.
    pub(crate) fn span_of(&self, key: &str) -> Option<Option<Span>> {
        let index = TIMEOUT_KEYS.iter().position(|k| *k == key)?;
        self.values[index].as_ref().map(|l| l.span.clone())
    }

    /// This section's settings over `defaults`, key by key.
    pub(crate) fn over(&self, defaults: &TimeoutSettings) -> Timeouts {
        let pick = |i: usize| {
            self.values[i]
                .as_ref()
                .or(defaults.values[i].as_ref())
                .and_then(|l| l.value)
        };
        Timeouts {
            connect: pick(0),
            client: pick(1),
            server: pick(2),
            tunnel: pick(3),
            queue: pick(4),
            http_request: pick(5),
            http_keep_alive: pick(6),
            check: pick(7),
            tarpit: pick(8),
        }
    }
}

/// `[defaults]`: values every frontend and backend inherits per key.
pub(crate) struct Defaults {
    /// `Err` when the defaults' own mode was invalid: sections inheriting it
    /// then have an unknown mode and skip mode checks.
    pub mode: Result<Option<Mode>, Reported>,
    pub retries: Option<u32>,
    pub redispatch: Option<Option<i32>>,
    pub balance: Option<(Balance, BalanceParams)>,
    pub hash_type: Option<HashType>,
    pub backlog: Option<u32>,
    pub timeouts: TimeoutSettings,
    /// `default-server` check settings.
    pub checks: CheckSettings,
    /// `default-server` PROXY protocol settings.
    pub proxy: ProxySettings,
    pub http: HttpKeys,
}

pub(crate) fn read_defaults(
    diag: &mut Diagnostics<'_>,
    node: Option<Node<'_>>,
    files: &ErrorfileContext<'_>,
) -> Defaults {
    let Some(Ok(table)) = node.map(|n| n.table(diag)) else {
        return Defaults {
            mode: Ok(None),
            retries: None,
            redispatch: None,
            balance: None,
            hash_type: None,
            backlog: None,
            timeouts: TimeoutSettings::default(),
            checks: CheckSettings::default(),
            proxy: ProxySettings::default(),
            http: HttpKeys::default(),
        };
    };
    table.check_keys(diag, DEFAULTS_KEYS);
    Defaults {
        mode: optional(&table, "mode", |n| keyword(diag, n, "mode", &values::MODES)),
        retries: optional(&table, "retries", |n| n.integer_in(diag, 0..=1000))
            .ok()
            .flatten()
            .map(|l| l.value),
        redispatch: optional(&table, "redispatch", |n| n.redispatch(diag))
            .ok()
            .flatten()
            .map(|l| l.value),
        balance: optional(&table, "balance", |n| super::routing::read_balance(diag, n))
            .ok()
            .flatten(),
        hash_type: optional(&table, "hash-type", |n| {
            keyword(diag, n, "hash-type", &super::routing::HASH_TYPES)
        })
        .ok()
        .flatten(),
        backlog: optional(&table, "backlog", |n| {
            n.integer_in(diag, 1..=i64::from(u32::MAX))
        })
        .ok()
        .flatten()
        .map(|l| l.value),
        timeouts: TimeoutSettings::read(diag, &table),
        checks: CheckSettings::read_default_server(diag, &table),
        proxy: ProxySettings::read_default_server(diag, &table),
        http: HttpKeys::read(diag, &table, files),
    }
}

/// A section's mode: its own, else the defaults', else tcp (HAProxy's
/// default). `None` if a mode involved was invalid (already reported).
fn effective_mode(
    diag: &mut Diagnostics<'_>,
    table: &TableView<'_>,
    defaults: &Defaults,
) -> Option<Mode> {
    match optional(table, "mode", |n| keyword(diag, n, "mode", &values::MODES)) {
        Ok(Some(mode)) => Some(mode),
        Ok(None) => defaults.mode.ok().map(|m| m.unwrap_or(Mode::Tcp)),
        Err(Reported) => None,
    }
}

/// A frontend before its backend reference is resolved.
pub(crate) struct PendingFrontend {
    pub name: Option<NameAt>,
    pub path: String,
    pub span: Option<Span>,
    pub mode: Option<Mode>,
    pub binds: Vec<Located<SocketAddr>>,
    /// TLS of each bind, same order as `binds`.
    pub bind_tls: Vec<Option<std::sync::Arc<crate::tls::BindTls>>>,
    /// `accept-proxy` of each bind, same order as `binds`.
    pub bind_proxy: Vec<bool>,
    /// `proto = "h2"` of each bind, same order as `binds`.
    pub bind_h2: Vec<bool>,
    pub default_backend: Result<Option<Located<String>>, Reported>,
    pub default_backend_path: String,
    pub maxconn: Option<u32>,
    pub backlog: Option<u32>,
    pub timeouts: Timeouts,
    pub own_timeouts: TimeoutSettings,
    /// HTTP keys, merged over `[defaults]`.
    pub http: HttpKeys,
    pub log: FrontendLog,
    /// Where `log` was set, if it was.
    pub log_span: Option<Span>,
}

pub(crate) fn read_frontend(
    diag: &mut Diagnostics<'_>,
    node: &Node<'_>,
    defaults: &Defaults,
    files: &ErrorfileContext<'_>,
) -> Option<PendingFrontend> {
    let mut table = node.table(diag).ok()?;
    let name = section_name(diag, &mut table, "frontend");
    table.check_keys(diag, FRONTEND_KEYS);
    let mode = effective_mode(diag, &table, defaults);
    let Binds {
        addrs: binds,
        tls: bind_tls,
        accept_proxy: bind_proxy,
        h2: bind_h2,
    } = read_binds(diag, &table, mode, files.base_dir);
    let own_timeouts = TimeoutSettings::read(diag, &table);
    let http = HttpKeys::read(diag, &table, files).over(&defaults.http);
    let (log, log_span) = super::observe::read_frontend_log(diag, &table, mode);
    Some(PendingFrontend {
        http,
        log,
        log_span,
        mode,
        binds,
        bind_tls,
        bind_proxy,
        bind_h2,
        default_backend: optional(&table, "default_backend", |n| n.string(diag)),
        default_backend_path: format!("{}.default_backend", table.path),
        maxconn: optional(&table, "maxconn", |n| {
            n.integer_in(diag, 1..=i64::from(u32::MAX))
        })
        .ok()
        .flatten()
        .map(|l| l.value),
        backlog: optional(&table, "backlog", |n| {
            n.integer_in(diag, 1..=i64::from(u32::MAX))
        })
        .ok()
        .flatten()
        .map(|l| l.value)
        .or(defaults.backlog),
        timeouts: own_timeouts.over(&defaults.timeouts),
        own_timeouts,
        name,
        path: table.path.clone(),
        span: table.span.clone(),
    })
}

/// Binds with their TLS settings (`None` for plain ones), whether they
/// expect a PROXY header and whether they speak HTTP/2 from the first
/// byte (`proto = "h2"`), in order.
#[derive(Default)]
struct Binds {
    addrs: Vec<Located<SocketAddr>>,
    tls: Vec<Option<std::sync::Arc<crate::tls::BindTls>>>,
    accept_proxy: Vec<bool>,
    h2: Vec<bool>,
}

fn read_binds(
    diag: &mut Diagnostics<'_>,
    table: &TableView<'_>,
    mode: Option<Mode>,
    base_dir: &std::path::Path,
) -> Binds {
    let Some(node) = table.get("bind") else {
        diag.error(
            table.span.as_ref(),
            &table.path,
            "frontend has no bind address",
            Some("add bind = [\"127.0.0.1:8000\"] (HAProxy `bind`)".into()),
        );
        return Binds::default();
    };
    let elements = if node.is_array() {
        match node.array(diag) {
            Ok(elements) => elements,
            Err(Reported) => return Binds::default(),
        }
    } else {
        vec![node.clone()]
    };
    if elements.is_empty() {
        diag.error(
            node.span.as_ref(),
            &node.path,
            "bind is an empty list",
            Some("give at least one address, e.g. bind = \"127.0.0.1:8000\"".into()),
        );
    }
    let mut binds = Binds::default();
    for element in &elements {
        // `{ addr = "...", ssl = true, crt = "..." }`: HAProxy's bind options.
        let (addr_node, bind_tls, accept_proxy, proto_h2) = if element.is_table() {
            let Ok(bind_table) = element.table(diag) else {
                continue;
            };
            let (addr, bind_tls) = super::tls::read_bind_table(diag, &bind_table, mode, base_dir);
            let accept_proxy = optional(&bind_table, "accept-proxy", |n| n.bool(diag));
            let proto_h2 = super::h2::read_bind_proto(diag, &bind_table, mode);
            let Some(addr) = addr else { continue };
            let Ok(accept_proxy) = accept_proxy else {
                continue;
            };
            (
                addr,
                bind_tls,
                accept_proxy.is_some_and(|l| l.value),
                proto_h2,
            )
        } else {
            (element.clone(), Ok(None), false, Ok(false))
        };
        let Ok(text) = addr_node.string(diag) else {
            continue;
        };
        match values::parse_bind(&text.value) {
            Ok(addr) => {
                if let (Ok(bind_tls), Ok(proto_h2)) = (bind_tls, proto_h2) {
                    binds.addrs.push(addr_node.located(addr));
                    binds.tls.push(bind_tls);
                    binds.accept_proxy.push(accept_proxy);
                    binds.h2.push(proto_h2);
                }
            }
            Err(invalid) => {
                report(diag, &addr_node, invalid);
            }
        }
    }
    binds
}

/// Backend with where its parts were written.
pub(crate) struct ReadBackend {
    pub backend: Backend,
    pub name: Option<NameAt>,
    pub path: String,
    pub span: Option<Span>,
    /// `None` if the mode was invalid (already reported).
    pub mode: Option<Mode>,
    pub own_timeouts: TimeoutSettings,
    pub server_names: Vec<(NameAt, String)>,
    /// Servers without maxconn, for the `balance first` warning.
    pub servers_without_maxconn: Vec<String>,
    pub servers_path: String,
    pub servers_span: Option<Span>,
    /// Where `balance` was set, else the section header.
    pub balance_span: Option<Span>,
}

pub(crate) fn read_backend(
    diag: &mut Diagnostics<'_>,
    node: &Node<'_>,
    defaults: &Defaults,
    resolve: Resolver<'_>,
    files: &ErrorfileContext<'_>,
) -> Option<ReadBackend> {
    let mut table = node.table(diag).ok()?;
    let name = section_name(diag, &mut table, "backend");
    table.check_keys(diag, BACKEND_KEYS);
    let mode = effective_mode(diag, &table, defaults);
    let (balance, mut balance_params) =
        optional(&table, "balance", |n| super::routing::read_balance(diag, n))
            .ok()
            .flatten()
            .or(defaults.balance.clone())
            .unwrap_or((Balance::RoundRobin, BalanceParams::default()));
    if let Some(hash_type) = optional(&table, "hash-type", |n| {
        keyword(diag, n, "hash-type", &super::routing::HASH_TYPES)
    })
    .ok()
    .flatten()
    .or(defaults.hash_type)
    {
        balance_params.hash_type = hash_type;
    }
    let cookie = optional(&table, "cookie", |n| super::routing::read_cookie(diag, n))
        .ok()
        .flatten();
    let retries = optional(&table, "retries", |n| n.integer_in(diag, 0..=1000))
        .ok()
        .flatten()
        .map(|l| l.value)
        .or(defaults.retries)
        .unwrap_or(DEFAULT_RETRIES);
    let redispatch = optional(&table, "redispatch", |n| n.redispatch(diag))
        .ok()
        .flatten()
        .map(|l| l.value)
        .or(defaults.redispatch)
        .unwrap_or(None);
    let allbackups = optional(&table, "allbackups", |n| n.bool(diag))
        .ok()
        .flatten()
        .is_some_and(|l| l.value);
    let own_timeouts = TimeoutSettings::read(diag, &table);
    let check_settings = CheckSettings::read_default_server(diag, &table).over(&defaults.checks);
    let proxy_settings = ProxySettings::read_default_server(diag, &table).over(&defaults.proxy);
    let check = read_check_kind(diag, &table);
    let http = HttpKeys::read(diag, &table, files)
        .over(&defaults.http)
        .backend();

    let mut servers = Vec::new();
    let mut server_names = Vec::new();
    let mut servers_without_maxconn = Vec::new();
    let servers_path = format!("{}.servers", table.path);
    let servers_node = table.get("servers");
    let servers_span = servers_node.as_ref().and_then(|n| n.span.clone());
    if let Some(Ok(elements)) = servers_node.map(|n| n.array(diag)) {
        for element in &elements {
            let (name, server) = read_server(
                diag,
                element,
                &table.path,
                resolve,
                (&check_settings, &proxy_settings),
                mode,
                files.base_dir,
            );
            if let Some(name) = name {
                let path = format!("{}.server \"{}\"", table.path, name.name);
                server_names.push((name, path));
            }
            if let Some(server) = server {
                if server.maxconn.is_none() {
                    servers_without_maxconn.push(server.name.clone());
                }
                servers.push(server);
            }
        }
    }

    Some(ReadBackend {
        backend: Backend {
            name: name.as_ref().map(|n| n.name.clone()).unwrap_or_default(),
            mode: mode.unwrap_or(Mode::Tcp),
            balance,
            balance_params,
            servers,
            retries,
            redispatch,
            allbackups,
            timeouts: own_timeouts.over(&defaults.timeouts),
            check,
            http,
            rules: Default::default(),
            cookie,
            stick_table: None,
            stick_rules: Vec::new(),
        },
        name,
        path: table.path.clone(),
        span: table.span.clone(),
        mode,
        own_timeouts,
        server_names,
        servers_without_maxconn,
        servers_path,
        servers_span,
        balance_span: table
            .get("balance")
            .and_then(|n| n.span)
            .or(table.span.clone()),
    })
}

/// The server's name is returned even when another of its keys is bad, so
/// duplicate names are still found.
fn read_server(
    diag: &mut Diagnostics<'_>,
    node: &Node<'_>,
    backend_path: &str,
    resolve: Resolver<'_>,
    (check_settings, proxy_settings): (&CheckSettings, &ProxySettings),
    mode: Option<Mode>,
    base_dir: &std::path::Path,
) -> (Option<NameAt>, Option<Server>) {
    let Ok(mut table) = node.table(diag) else {
        return (None, None);
    };
    let name = section_name(diag, &mut table, "server");
    // `server "x"` alone would lose which backend it is in.
    table.rename(format!("{backend_path}.{}", table.path));
    let server_keys: Vec<&str> = [
        SERVER_KEYS,
        DEFAULT_SERVER_KEYS,
        SERVER_ONLY_CHECK_KEYS,
        super::tls::SERVER_TLS_KEYS,
    ]
    .concat();
    table.check_keys(diag, &server_keys);
    let addr = match table.get("addr") {
        Some(addr_node) => addr_node.string(diag).ok().and_then(|text| {
            values::parse_server_addr(&text.value, resolve)
                .map_err(|invalid| report(diag, &addr_node, invalid))
                .ok()
        }),
        None => {
            diag.error(
                table.span.as_ref(),
                &table.path,
                "server has no address",
                Some("add addr = \"host:port\"".into()),
            );
            None
        }
    };
    let weight = optional(&table, "weight", |n| {
        let weight = n.integer(diag)?;
        if (0..=MAX_WEIGHT).contains(&weight.value) {
            Ok(u32::try_from(weight.value).unwrap_or(DEFAULT_WEIGHT))
        } else {
            Err(diag.error(
                weight.span.as_ref(),
                &n.path,
                format!("weight {} is out of range", weight.value),
                Some(format!(
                    "weights go from 0 (no new traffic) to {MAX_WEIGHT}, as in HAProxy"
                )),
            ))
        }
    });
    // HAProxy: a server maxconn of 0 means no limit.
    let maxconn = optional(&table, "maxconn", |n| {
        n.integer_in::<u32>(diag, 0..=i64::from(u32::MAX))
    });
    let backup = optional(&table, "backup", |n| n.bool(diag));
    let disabled = optional(&table, "disabled", |n| n.bool(diag));
    let cookie = optional(&table, "cookie", |n| n.string(diag));
    let mut check = read_server_check(diag, &table, check_settings, addr, mode);
    let proxy = super::proxy_keys::read_server_proxy(diag, &table, proxy_settings);
    if let (Ok(Some(check)), Ok(proxy), Some(addr)) = (&mut check, &proxy, addr) {
        check.send_proxy = proxy.check(check.addr != addr);
    }
    let ssl = super::tls::read_server_tls(diag, &table, base_dir);
    let proto = proxy.as_ref().map(|p| p.proto());
    if matches!(proto, Ok(ServerProto::H2)) && mode != Some(Mode::Http) {
        let at = table.get("proto");
        diag.error(
            at.as_ref().map_or(table.span.as_ref(), |n| n.span.as_ref()),
            at.as_ref().map_or(&table.path, |n| &n.path),
            "proto = \"h2\" needs mode = \"http\"",
            Some(
                "HTTP/2 to a server carries HTTP requests; set mode = \"http\" on this backend"
                    .into(),
            ),
        );
    }
    let server = (|| {
        Some(Server {
            name: name.as_ref()?.name.clone(),
            addr: addr?,
            weight: weight.ok()?.unwrap_or(DEFAULT_WEIGHT),
            maxconn: maxconn.ok()?.map(|l| l.value).filter(|&m| m > 0),
            backup: backup.ok()?.is_some_and(|l| l.value),
            disabled: disabled.ok()?.is_some_and(|l| l.value),
            check: check.ok()?,
            ssl: ssl.ok()?,
            cookie: cookie.ok()?.map(|l| l.value),
            send_proxy: proxy.ok()?.send(),
            proto: proto.ok()?,
        })
    })();
    (name, server)
}

/// `"a", "b"` or `none` for hints listing defined names.
pub(crate) fn names_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        quoted_list(names)
    }
}
