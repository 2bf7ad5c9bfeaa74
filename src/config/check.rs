//! Checks across sections: names, references, modes, addresses, and the
//! warnings HAProxy would print for a configuration that starts but is
//! likely wrong.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::error::{did_you_mean, Diagnostics, Span};
use super::http::HttpKeys;
use super::model::{
    Backend, BackendHttp, BackendId, Balance, Frontend, FrontendHttp, Global, Mode,
};
use super::sections::{names_or_none, NameAt, PendingFrontend, ReadBackend};
use super::values::mode_name;

/// Reports every name seen before in `names`; returns the first index of
/// each distinct name.
fn check_unique<'n>(
    diag: &mut Diagnostics<'_>,
    kind: &str,
    names: impl Iterator<Item = (&'n NameAt, String)>,
) -> HashMap<String, usize> {
    let mut first: HashMap<String, (usize, Option<Span>)> = HashMap::new();
    for (index, (name, path)) in names.enumerate() {
        if let Some((_, span)) = first.get(&name.name) {
            let hint = match diag.line_of(span.as_ref()) {
                Some(line) => format!("first defined at line {line}; {kind} names must be unique"),
                None => format!("{kind} names must be unique"),
            };
            diag.error(
                name.span.as_ref(),
                &format!("{path}.name"),
                format!("duplicate {kind} name \"{}\"", name.name),
                Some(hint),
            );
        } else {
            first.insert(name.name.clone(), (index, name.span.clone()));
        }
    }
    first
        .into_iter()
        .map(|(name, (index, _))| (name, index))
        .collect()
}

pub(crate) fn frontends_and_backends(
    diag: &mut Diagnostics<'_>,
    global: &Global,
    pending: Vec<PendingFrontend>,
    read: Vec<ReadBackend>,
) -> (Vec<Frontend>, Vec<Backend>, Vec<FrontendSource>) {
    check_unique(
        diag,
        "frontend",
        pending
            .iter()
            .filter_map(|f| f.name.as_ref().map(|n| (n, f.path.clone()))),
    );
    // Ids index `read`, which becomes `Config::backends` unchanged.
    let backend_ids: HashMap<String, BackendId> = {
        let named = read
            .iter()
            .enumerate()
            .filter_map(|(id, b)| b.name.as_ref().map(|n| (id, n, b.path.clone())));
        let mut ids = HashMap::new();
        let mut listed = Vec::new();
        for (id, name, path) in named {
            ids.entry(name.name.clone()).or_insert(id);
            listed.push((name, path));
        }
        check_unique(diag, "backend", listed.into_iter());
        ids
    };
    for backend in &read {
        check_unique(
            diag,
            "server",
            backend.server_names.iter().map(|(n, p)| (n, p.clone())),
        );
        backend_warnings(diag, backend);
    }
    let mut defined: Vec<&str> = Vec::new();
    for name in read.iter().filter_map(|b| b.name.as_ref()) {
        if !defined.contains(&name.name.as_str()) {
            defined.push(&name.name);
        }
    }

    check_binds(diag, &pending);

    let mut frontends = Vec::new();
    let mut sources = Vec::new();
    for fe in pending {
        frontend_warnings(diag, &fe);
        if fe.log.enabled && global.log.is_empty() {
            diag.warn(
                fe.log_span.as_ref(),
                &format!("{}.log", fe.path),
                "frontend logs but global has no log target: nothing will be logged",
                Some("add global log = [{ target = \"stdout\" }] (HAProxy `log global` needs a global `log` line)".into()),
            );
        }
        let fe_name = fe.name.as_ref().map_or("?", |n| n.name.as_str());
        // `Err`: already reported; `Ok(None)`: no default_backend, which
        // `after_rules` checks once the use_backend rules are known.
        let target: Result<Option<BackendId>, ()> = match &fe.default_backend {
            Err(_) => Err(()),
            Ok(None) => Ok(None),
            Ok(Some(wanted)) => match backend_ids.get(&wanted.value) {
                Some(&id) => Ok(Some(id)),
                None => {
                    let hint = match did_you_mean(&wanted.value, &defined) {
                        Some(near) => format!(
                            "did you mean \"{near}\"? defined backends: {}",
                            names_or_none(&defined)
                        ),
                        None => format!("defined backends: {}", names_or_none(&defined)),
                    };
                    diag.error(
                        wanted.span.as_ref(),
                        &fe.default_backend_path,
                        format!(
                            "backend \"{}\" used by frontend \"{fe_name}\" is not defined",
                            wanted.value
                        ),
                        Some(hint),
                    );
                    Err(())
                }
            },
        };
        let Ok(target) = target else { continue };
        if let Some(backend) = target.map(|id| &read[id]) {
            if let (Some(fe_mode), Some(be_mode)) = (fe.mode, backend.mode) {
                if fe_mode != be_mode {
                    let span = fe
                        .default_backend
                        .as_ref()
                        .ok()
                        .and_then(|l| l.as_ref())
                        .and_then(|l| l.span.clone());
                    diag.error(
                        span.as_ref(),
                        &fe.default_backend_path,
                        format!(
                            "frontend \"{fe_name}\" is mode {} but its default_backend \"{}\" is mode {}",
                            mode_name(fe_mode),
                            backend.backend.name,
                            mode_name(be_mode)
                        ),
                        Some("HAProxy refuses to mix modes; set the same mode on both (or in [defaults])".into()),
                    );
                }
            }
        }
        frontends.push(Frontend {
            name: fe_name.to_string(),
            mode: fe.mode.unwrap_or(Mode::Tcp),
            binds: fe.binds.iter().map(|b| b.value).collect(),
            bind_tls: fe.bind_tls.clone(),
            bind_proxy: fe.bind_proxy.clone(),
            bind_h2: fe.bind_h2.clone(),
            default_backend: target,
            maxconn: fe.maxconn,
            // HAProxy: the backlog defaults to the frontend's maxconn, which
            // defaults to the global one; the kernel caps it at somaxconn.
            backlog: fe.backlog.or(fe.maxconn).unwrap_or(global.maxconn),
            timeouts: fe.timeouts.clone(),
            http: fe.http.frontend(&BackendHttp::default()),
            http_routes: Vec::new(),
            log: fe.log.clone(),
            rules: Default::default(),
            tcp_rules: Default::default(),
            stick_table: None,
        });
        sources.push(FrontendSource {
            http: fe.http,
            span: fe.span,
            path: fe.path,
        });
    }
    let backends = read.into_iter().map(|b| b.backend).collect();
    (frontends, backends, sources)
}

/// What the checks after the rules were read need of each frontend (same
/// order as the frontends).
pub(crate) struct FrontendSource {
    /// The frontend's HTTP keys, merged over `[defaults]`.
    pub http: HttpKeys,
    pub span: Option<Span>,
    pub path: String,
}

/// Checks that need the rules (read after the sections): a frontend must
/// be able to answer something; then each frontend gets the effective
/// HTTP settings with every backend it routes to.
pub(crate) fn after_rules(
    diag: &mut Diagnostics<'_>,
    frontends: &mut [Frontend],
    backends: &[Backend],
    sources: &[FrontendSource],
) {
    for (fe, source) in frontends.iter_mut().zip(sources) {
        // A frontend whose rules failed to read has them missing here: its
        // errors already say what is wrong.
        let rules_failed = diag
            .errors
            .iter()
            .any(|e| e.key_path.starts_with(&source.path));
        if fe.default_backend.is_none() && !fe.rules.answers_without_backend() && !rules_failed {
            let defined: Vec<&str> = backends.iter().map(|b| b.name.as_str()).collect();
            // HAProxy starts such a frontend and answers every request with
            // 503 (or closes, in TCP); percore refuses it as a mistake.
            diag.error(
                source.span.as_ref(),
                &source.path,
                format!(
                    "frontend \"{}\" has no default_backend, no use_backend and no rule that answers: it can never serve a request",
                    fe.name
                ),
                Some(format!(
                    "add default_backend = \"<backend name>\", use_backend rules (mode http), or an http-request return/redirect/deny rule; defined backends: {}",
                    names_or_none(&defined)
                )),
            );
        }
        let mut routes: Vec<Option<Box<FrontendHttp>>> = vec![None; backends.len()];
        // A dynamic `use_backend %[...]` may pick any backend.
        let dynamic = fe
            .rules
            .use_backend
            .iter()
            .any(|r| r.action.static_id().is_none());
        let targets = fe
            .default_backend
            .into_iter()
            .chain(
                fe.rules
                    .use_backend
                    .iter()
                    .filter_map(|r| r.action.static_id()),
            )
            .chain((0..backends.len()).filter(|_| dynamic));
        for id in targets {
            if let Some(slot @ None) = routes.get_mut(id) {
                *slot = Some(Box::new(source.http.frontend(&backends[id].http)));
            }
        }
        // The body is waited for before the frontend's rules, so a backend
        // that wants it makes the frontend wait.
        fe.http.buffer_request |= routes.iter().flatten().any(|r| r.buffer_request);
        fe.http_routes = routes;
    }
}

/// Two frontends on one address would silently share it via SO_REUSEPORT
/// instead of failing to bind, so this is checked here.
fn check_binds(diag: &mut Diagnostics<'_>, frontends: &[PendingFrontend]) {
    let mut seen: HashMap<SocketAddr, (String, Option<Span>)> = HashMap::new();
    for fe in frontends {
        let name = fe.name.as_ref().map_or("?", |n| n.name.as_str());
        for bind in &fe.binds {
            if let Some((owner, span)) = seen.get(&bind.value) {
                let line = diag
                    .line_of(span.as_ref())
                    .map_or(String::new(), |l| format!(" at line {l}"));
                diag.error(
                    bind.span.as_ref(),
                    &format!("{}.bind", fe.path),
                    format!(
                        "bind address {} is already used by frontend \"{owner}\"{line}",
                        bind.value
                    ),
                    Some("each address may be bound by one frontend only".into()),
                );
            } else {
                seen.insert(bind.value, (name.to_string(), bind.span.clone()));
            }
        }
    }
    // With net.ipv6.bindv6only = 0 (the Linux default) `[::]:p` also takes
    // IPv4, so it collides with `0.0.0.0:p` at bind time, not here.
    for fe in frontends {
        for bind in fe
            .binds
            .iter()
            .filter(|b| b.value.is_ipv6() && b.value.ip().is_unspecified())
        {
            let v4 = SocketAddr::from(([0, 0, 0, 0], bind.value.port()));
            if let Some((owner, _)) = seen.get(&v4) {
                diag.warn(
                    bind.span.as_ref(),
                    &format!("{}.bind", fe.path),
                    format!(
                        "{} may also cover IPv4 and then conflict with {v4} of frontend \"{owner}\"",
                        bind.value
                    ),
                    Some("with net.ipv6.bindv6only = 0 an IPv6 wildcard bind takes IPv4 too; bind one of them only".into()),
                );
            }
        }
    }
}

const MISSING_TIMEOUTS_HINT: &str = "while not properly invalid, you will certainly encounter \
     various problems with such a configuration; set these timeouts to a non-zero value \
     in [defaults] or in this section";

fn frontend_warnings(diag: &mut Diagnostics<'_>, fe: &PendingFrontend) {
    if fe.timeouts.client.is_none() {
        diag.warn(
            fe.span.as_ref(),
            &fe.path,
            "missing timeouts for frontend: 'client'",
            Some(MISSING_TIMEOUTS_HINT.into()),
        );
    }
    for key in ["connect", "server", "queue", "tunnel", "check"] {
        if let Some(span) = fe.own_timeouts.span_of(key) {
            diag.warn(
                span.as_ref(),
                &format!("{}.timeout.{key}", fe.path),
                format!(
                    "timeout {key} will be ignored because a frontend has no backend capability"
                ),
                Some("set it in the backend or in [defaults]".into()),
            );
        }
    }
}

fn backend_warnings(diag: &mut Diagnostics<'_>, be: &ReadBackend) {
    let missing: Vec<&str> = [
        ("connect", be.backend.timeouts.connect),
        ("server", be.backend.timeouts.server),
    ]
    .iter()
    .filter(|(_, t)| t.is_none())
    .map(|(k, _)| *k)
    .collect();
    if !missing.is_empty() {
        let keys: Vec<String> = missing.iter().map(|k| format!("'{k}'")).collect();
        diag.warn(
            be.span.as_ref(),
            &be.path,
            format!("missing timeouts for backend: {}", keys.join(", ")),
            Some(MISSING_TIMEOUTS_HINT.into()),
        );
    }
    if let Some(span) = be.own_timeouts.span_of("client") {
        diag.warn(
            span.as_ref(),
            &format!("{}.timeout.client", be.path),
            "timeout client will be ignored because a backend has no frontend capability",
            Some("set it in the frontend or in [defaults]".into()),
        );
    }
    if be.backend.servers.is_empty() && be.name.is_some() {
        diag.warn(
            be.servers_span.as_ref().or(be.span.as_ref()),
            &be.servers_path,
            "backend has no server: every connection to it will be refused (HTTP: 503)",
            None,
        );
    }
    if be.backend.balance == Balance::First && !be.servers_without_maxconn.is_empty() {
        diag.warn(
            be.balance_span.as_ref(),
            &format!("{}.balance", be.path),
            format!(
                "balance first without server maxconn on {}: the first server takes all traffic",
                names_or_none(
                    &be.servers_without_maxconn
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                )
            ),
            Some("set maxconn on each server so `first` can move on to the next one".into()),
        );
    }
}
