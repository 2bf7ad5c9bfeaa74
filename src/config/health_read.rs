//! Reading the health-check keys: `default-server` tables, a server's
//! check settings, and a backend's `tcp-check` / `http-check` rules.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::error::{Diagnostics, Reported};
use super::health::{
    CheckKind, Observe, ObserveLayer, OnError, ServerCheck, DEFAULT_ERROR_LIMIT, DEFAULT_FALL,
    DEFAULT_INTER, DEFAULT_RISE,
};
use super::health_lines::{parse_http_check, parse_tcp_check};
use super::model::Mode;
use super::reader::{Node, TableView};
use super::sections::{duration, keyword, optional, report};
use super::values::Invalid;

/// Keys a `default-server` table may hold; a server takes these too.
pub(crate) const DEFAULT_SERVER_KEYS: &[&str] = &[
    "check",
    "inter",
    "fastinter",
    "downinter",
    "rise",
    "fall",
    "port",
    "observe",
    "error-limit",
    "on-error",
    // `proxy_keys::SERVER_PROXY_KEYS`
    "send-proxy",
    "send-proxy-v2",
    "check-send-proxy",
    "proto",
];

/// Check keys only a server has (`addr` is the server's own address).
pub(crate) const SERVER_ONLY_CHECK_KEYS: &[&str] = &["check-addr"];

const OBSERVE: [(&str, ObserveLayer); 2] = [
    ("layer4", ObserveLayer::Layer4),
    ("layer7", ObserveLayer::Layer7),
];
const ON_ERROR: [(&str, OnError); 4] = [
    ("fastinter", OnError::FastInter),
    ("fail-check", OnError::FailCheck),
    ("sudden-death", OnError::SuddenDeath),
    ("mark-down", OnError::MarkDown),
];

/// Check settings as written in one place (a `default-server` table or a
/// server); `None` = not written there.
#[derive(Debug, Clone, Default)]
pub(crate) struct CheckSettings {
    check: Option<bool>,
    inter: Option<Duration>,
    fastinter: Option<Duration>,
    downinter: Option<Duration>,
    rise: Option<u32>,
    fall: Option<u32>,
    port: Option<u16>,
    observe: Option<ObserveLayer>,
    error_limit: Option<u32>,
    on_error: Option<OnError>,
}

impl CheckSettings {
    /// The `default-server` table of a `[defaults]` or `[[backend]]` section.
    pub(crate) fn read_default_server(diag: &mut Diagnostics<'_>, section: &TableView<'_>) -> Self {
        let Some(Ok(table)) = section.get("default-server").map(|n| n.table(diag)) else {
            return CheckSettings::default();
        };
        table.check_keys(diag, DEFAULT_SERVER_KEYS);
        Self::read(diag, &table)
    }

    /// The check keys of `table` (a server or a `default-server`).
    pub(crate) fn read(diag: &mut Diagnostics<'_>, table: &TableView<'_>) -> Self {
        let interval = |diag: &mut Diagnostics<'_>, key: &str| {
            optional(table, key, |n| positive_duration(diag, n))
                .ok()
                .flatten()
        };
        let count = |diag: &mut Diagnostics<'_>, key: &str| {
            optional(table, key, |n| n.integer_in::<u32>(diag, 1..=1_000_000))
                .ok()
                .flatten()
                .map(|l| l.value)
        };
        CheckSettings {
            check: optional(table, "check", |n| n.bool(diag))
                .ok()
                .flatten()
                .map(|l| l.value),
            inter: interval(diag, "inter"),
            fastinter: interval(diag, "fastinter"),
            downinter: interval(diag, "downinter"),
            rise: count(diag, "rise"),
            fall: count(diag, "fall"),
            port: optional(table, "port", |n| n.integer_in::<u16>(diag, 1..=65535))
                .ok()
                .flatten()
                .map(|l| l.value),
            observe: optional(table, "observe", |n| keyword(diag, n, "observe", &OBSERVE))
                .ok()
                .flatten(),
            error_limit: count(diag, "error-limit"),
            on_error: optional(table, "on-error", |n| {
                keyword(diag, n, "on-error", &ON_ERROR)
            })
            .ok()
            .flatten(),
        }
    }

    /// These settings, falling back to `base` key by key.
    pub(crate) fn over(&self, base: &CheckSettings) -> CheckSettings {
        CheckSettings {
            check: self.check.or(base.check),
            inter: self.inter.or(base.inter),
            fastinter: self.fastinter.or(base.fastinter),
            downinter: self.downinter.or(base.downinter),
            rise: self.rise.or(base.rise),
            fall: self.fall.or(base.fall),
            port: self.port.or(base.port),
            observe: self.observe.or(base.observe),
            error_limit: self.error_limit.or(base.error_limit),
            on_error: self.on_error.or(base.on_error),
        }
    }
}

/// `inter` and friends: HAProxy refuses a zero interval.
fn positive_duration(diag: &mut Diagnostics<'_>, node: &Node<'_>) -> Result<Duration, Reported> {
    let d = duration(diag, node)?;
    if d.is_zero() {
        return Err(report(
            diag,
            node,
            Invalid {
                message: "a check interval of 0 is not allowed".into(),
                hint: Some("give a positive duration such as \"2s\" (HAProxy's default)".into()),
            },
        ));
    }
    Ok(d)
}

/// A server's active check settings: its own keys over the backend's
/// `default-server` (already over the one in `[defaults]`). `Ok(None)` when
/// checks are off for it.
pub(crate) fn read_server_check(
    diag: &mut Diagnostics<'_>,
    server: &TableView<'_>,
    inherited: &CheckSettings,
    addr: Option<SocketAddr>,
    mode: Option<Mode>,
) -> Result<Option<ServerCheck>, Reported> {
    let own = CheckSettings::read(diag, server);
    let check_addr = optional(server, "check-addr", |n| {
        let text = n.string(diag)?.value;
        text.parse::<IpAddr>().map_err(|_| {
            report(
                diag,
                n,
                Invalid {
                    message: format!("invalid check address \"{text}\""),
                    hint: Some(
                        "write an IP address without port, e.g. \"10.0.0.7\"; the check port is `port`"
                            .into(),
                    ),
                },
            )
        })
    });
    let settings = own.over(inherited);
    let enabled = settings.check.unwrap_or(false);
    if !enabled {
        if let (Some(_), Some(node)) = (own.observe, server.get("observe")) {
            return Err(diag.error(
                node.span.as_ref(),
                &node.path,
                "observe needs active health checks on this server",
                Some("add check = true (HAProxy: observe requires check)".into()),
            ));
        }
        return Ok(None);
    }
    let check_addr = check_addr?;
    let Some(addr) = addr else {
        return Err(Reported);
    };
    if settings.observe == Some(ObserveLayer::Layer7) && mode == Some(Mode::Tcp) {
        let node = server.get("observe");
        let span = node.as_ref().and_then(|n| n.span.clone());
        let path = node.map_or_else(|| server.path.clone(), |n| n.path);
        return Err(diag.error(
            span.as_ref().or(server.span.as_ref()),
            &path,
            "observe layer7 needs mode http (it watches HTTP responses)",
            Some("use observe = \"layer4\" in a mode tcp backend".into()),
        ));
    }
    let inter = settings.inter.unwrap_or(DEFAULT_INTER);
    let mut check_target = addr;
    if let Some(ip) = check_addr {
        check_target.set_ip(ip);
    }
    if let Some(port) = settings.port {
        check_target.set_port(port);
    }
    Ok(Some(ServerCheck {
        inter,
        fastinter: settings.fastinter.unwrap_or(inter),
        downinter: settings.downinter.unwrap_or(inter),
        rise: settings.rise.unwrap_or(DEFAULT_RISE),
        fall: settings.fall.unwrap_or(DEFAULT_FALL),
        addr: check_target,
        observe: settings.observe.map(|layer| Observe {
            layer,
            error_limit: settings.error_limit.unwrap_or(DEFAULT_ERROR_LIMIT),
            on_error: settings.on_error.unwrap_or(OnError::FailCheck),
        }),
        // Set by the server's reader, which knows its PROXY keys.
        send_proxy: None,
    }))
}

/// A backend's `tcp-check` or `http-check` rules (at most one of them).
pub(crate) fn read_check_kind(diag: &mut Diagnostics<'_>, backend: &TableView<'_>) -> CheckKind {
    let tcp = backend.get("tcp-check");
    let http = backend.get("http-check");
    if let (Some(_), Some(h)) = (&tcp, &http) {
        diag.error(
            h.span.as_ref(),
            &h.path,
            "a backend has either tcp-check or http-check rules, not both",
            Some("HAProxy's option tcp-check and option httpchk exclude each other".into()),
        );
        return CheckKind::Connect;
    }
    if let Some(node) = tcp {
        let Some((lines, elements)) = rule_lines(diag, &node) else {
            return CheckKind::Connect;
        };
        return match parse_tcp_check(&lines) {
            Ok(rules) => CheckKind::TcpScript(rules),
            Err(errors) => {
                report_rules(diag, &elements, errors, "tcp-check");
                CheckKind::Connect
            }
        };
    }
    if let Some(node) = http {
        let Some((lines, elements)) = rule_lines(diag, &node) else {
            return CheckKind::Connect;
        };
        return match parse_http_check(&lines) {
            Ok(check) => CheckKind::Http(check),
            Err(errors) => {
                report_rules(diag, &elements, errors, "http-check");
                CheckKind::Connect
            }
        };
    }
    CheckKind::Connect
}

/// The strings of a rule list, with their nodes for error positions.
fn rule_lines<'a>(
    diag: &mut Diagnostics<'_>,
    node: &Node<'a>,
) -> Option<(Vec<String>, Vec<Node<'a>>)> {
    let elements = node.array(diag).ok()?;
    let mut lines = Vec::new();
    let mut failed = false;
    for element in &elements {
        match element.string(diag) {
            Ok(line) => lines.push(line.value),
            Err(Reported) => failed = true,
        }
    }
    (!failed).then_some((lines, elements))
}

fn report_rules(
    diag: &mut Diagnostics<'_>,
    elements: &[Node<'_>],
    errors: Vec<(usize, Invalid)>,
    what: &str,
) {
    for (index, invalid) in errors {
        if let Some(node) = elements.get(index) {
            report(diag, node, invalid);
        } else if let Some(first) = elements.first() {
            diag.error(
                first.span.as_ref(),
                &first.path,
                invalid.message,
                invalid.hint,
            );
        } else {
            diag.error(None, what, invalid.message, invalid.hint);
        }
    }
}
