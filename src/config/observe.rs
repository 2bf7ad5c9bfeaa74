//! The observability keys: global `log` targets, a frontend's access-log
//! settings, and the `[stats]` section. Vocabulary is HAProxy's (`log`,
//! `option tcplog|httplog|dontlognull`, `capture request header`, `stats
//! uri|auth|refresh|hide-version`), spelled as TOML keys.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::error::{Diagnostics, Reported, Span};
use super::model::{
    DeclaredCaptures, Frontend, FrontendLog, HeaderCapture, LogDest, LogFormat, LogFraming,
    LogTarget, Mode, StatsPage, UniqueId,
};
use super::reader::{Node, TableView};
use super::values;

const LOG_TARGET_KEYS: &[&str] = &["target", "format", "facility", "tag"];
const CAPTURE_KEYS: &[&str] = &["name", "len"];
const DECLARE_KEYS: &[&str] = &["type", "len"];
const STATS_KEYS: &[&str] = &["bind", "uri", "auth", "hide-version", "refresh"];

/// Longest capture HAProxy's default buffers make useful.
const MAX_CAPTURE_LEN: i64 = 16384;
const DEFAULT_STATS_URI: &str = "/stats";
/// Served next to the stats page; a stats `uri` may not take it.
pub const METRICS_PATH: &str = "/metrics";
pub(crate) const DEFAULT_LOG_TAG: &str = "percore";

const FACILITIES: [(&str, u8); 24] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("auth2", 10),
    ("ftp", 11),
    ("ntp", 12),
    ("audit", 13),
    ("alert", 14),
    ("cron2", 15),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

const FRAMINGS: [(&str, LogFraming); 3] = [
    ("rfc3164", LogFraming::Rfc3164),
    ("rfc5424", LogFraming::Rfc5424),
    ("raw", LogFraming::Raw),
];

/// The named layouts; anything with a `%` or a space is a custom format.
const LOG_LAYOUTS: [(&str, NamedLayout); 3] = [
    ("tcplog", NamedLayout::Tcp),
    ("httplog", NamedLayout::Http),
    ("json", NamedLayout::Json),
];

#[derive(Debug, Clone, Copy)]
enum NamedLayout {
    Tcp,
    Http,
    Json,
}

/// `unique-id-format` and `unique-id-header` (the header alone does
/// nothing in HAProxy; here it is refused, so the omission is seen).
fn read_unique_id(diag: &mut Diagnostics<'_>, table: &TableView<'_>) -> Option<UniqueId> {
    let header = table.get("unique-id-header").and_then(|n| {
        let name = n.string(diag).ok()?;
        if !name.value.is_empty() && name.value.bytes().all(is_tchar) {
            Some(name.value)
        } else {
            diag.error(
                name.span.as_ref(),
                &n.path,
                format!("invalid header name {:?}", name.value),
                Some("a header field name such as \"X-Unique-ID\"".into()),
            );
            None
        }
    });
    let Some(n) = table.get("unique-id-format") else {
        if let Some(n) = table.get("unique-id-header") {
            diag.error(
                n.span.as_ref(),
                &n.path,
                "unique-id-header without unique-id-format",
                Some("add unique-id-format = \"%{+X}o %ci:%cp_%fi:%fp_%Ts_%rt:%pid\" (HAProxy sends nothing without it)".into()),
            );
        }
        return None;
    };
    let text = n.string(diag).ok()?.value;
    match crate::log::custom::CustomFormat::parse(&text) {
        Ok(format) => Some(UniqueId {
            format: std::sync::Arc::new(format),
            header,
        }),
        Err(e) => {
            let invalid = values::Invalid {
                message: e.message,
                hint: Some(e.hint),
            };
            super::routing::report_line(diag, &n, &text, (e.at, invalid));
            None
        }
    }
}

/// `log-format`: a named layout, or HAProxy's custom format string,
/// compiled here so that a bad variable is refused at load.
fn read_log_format(diag: &mut Diagnostics<'_>, node: &Node<'_>) -> Option<LogFormat> {
    let text = node.string(diag).ok()?.value;
    if !text.contains(['%', ' ']) {
        let layout = keyword(diag, node, "log-format", &LOG_LAYOUTS).ok()?;
        return Some(match layout {
            NamedLayout::Tcp => LogFormat::Tcp,
            NamedLayout::Http => LogFormat::Http,
            NamedLayout::Json => LogFormat::Json,
        });
    }
    match crate::log::custom::CustomFormat::parse(&text) {
        Ok(custom) => Some(LogFormat::Custom(std::sync::Arc::new(custom))),
        Err(e) => {
            let invalid = values::Invalid {
                message: e.message,
                hint: Some(e.hint),
            };
            super::routing::report_line(diag, node, &text, (e.at, invalid));
            None
        }
    }
}

const TARGET_HINT: &str = "write \"stdout\", \"stderr\", \"file:/absolute/path\", \
     \"udp://IP:port\" (syslog; port 514 if left out), \"tcp://IP:port\" (syslog over TCP, octet-counted) or \"unix:/dev/log\" (a local syslog socket)";

fn keyword<T: Copy>(
    diag: &mut Diagnostics<'_>,
    node: &Node<'_>,
    what: &str,
    table: &[(&str, T)],
) -> Result<T, Reported> {
    let text = node.string(diag)?.value;
    values::keyword(&text, what, table).map_err(|invalid| {
        diag.error(
            node.span.as_ref(),
            &node.path,
            invalid.message,
            invalid.hint,
        )
    })
}

fn parse_target(text: &str) -> Result<LogDest, String> {
    match text {
        "stdout" => return Ok(LogDest::Stdout),
        "stderr" => return Ok(LogDest::Stderr),
        _ => {}
    }
    if let Some(path) = text.strip_prefix("file:") {
        let path = PathBuf::from(path);
        if !path.is_absolute() {
            return Err(format!(
                "log file \"{}\" is not an absolute path",
                path.display()
            ));
        }
        return Ok(LogDest::File(path));
    }
    // `unix:/dev/log`, or the path alone as in HAProxy (`log /dev/log`).
    if let Some(path) = text
        .strip_prefix("unix:")
        .or(text.starts_with('/').then_some(text))
    {
        let path = PathBuf::from(path);
        if !path.is_absolute() {
            return Err(format!(
                "syslog socket \"{}\" is not an absolute path",
                path.display()
            ));
        }
        return Ok(LogDest::Unix(path));
    }
    // `tcp@` is HAProxy's spelling (`log tcp@10.0.0.1:514 local0`).
    let udp = text.strip_prefix("udp://").or(text.strip_prefix("udp@"));
    let tcp = text.strip_prefix("tcp://").or(text.strip_prefix("tcp@"));
    if let Some(addr) = udp.or(tcp) {
        let parsed = addr
            .parse::<SocketAddr>()
            .or_else(|_| format!("{addr}:514").parse::<SocketAddr>())
            .or_else(|_| format!("[{addr}]:514").parse::<SocketAddr>());
        return match parsed {
            Ok(a) if a.port() != 0 && tcp.is_some() => Ok(LogDest::Tcp(a)),
            Ok(a) if a.port() != 0 => Ok(LogDest::Udp(a)),
            _ => Err(format!("invalid syslog address \"{addr}\"")),
        };
    }
    Err(format!("unknown log target \"{text}\""))
}

fn read_log_target(diag: &mut Diagnostics<'_>, node: &Node<'_>) -> Option<LogTarget> {
    // A bare string is the target with every other setting defaulted.
    let (target_node, table) = if node.is_string() {
        (node.clone(), None)
    } else {
        let table = node.table(diag).ok()?;
        table.check_keys(diag, LOG_TARGET_KEYS);
        let Some(target) = table.get("target") else {
            diag.error(
                table.span.as_ref(),
                &table.path,
                "log entry has no target",
                Some(format!("add target = \"...\"; {TARGET_HINT}")),
            );
            return None;
        };
        (target, Some(table))
    };
    let text = target_node.string(diag).ok()?;
    let dest = match parse_target(&text.value) {
        Ok(dest) => Some(dest),
        Err(message) => {
            diag.error(
                text.span.as_ref(),
                &target_node.path,
                message,
                Some(TARGET_HINT.into()),
            );
            None
        }
    };
    let mut framing = match dest {
        Some(LogDest::Udp(_) | LogDest::Unix(_) | LogDest::Tcp(_)) => LogFraming::Rfc3164,
        _ => LogFraming::Raw,
    };
    let mut facility = 16;
    let mut tag = DEFAULT_LOG_TAG.to_string();
    let mut failed = false;
    if let Some(table) = table {
        if let Some(n) = table.get("format") {
            match keyword(diag, &n, "log format", &FRAMINGS) {
                Ok(f) => framing = f,
                Err(Reported) => failed = true,
            }
        }
        if let Some(n) = table.get("facility") {
            match keyword(diag, &n, "syslog facility", &FACILITIES) {
                Ok(f) => facility = f,
                Err(Reported) => failed = true,
            }
        }
        if let Some(n) = table.get("tag") {
            match n.string(diag) {
                Ok(t) if is_valid_tag(&t.value) => tag = t.value,
                Ok(t) => {
                    diag.error(
                        t.span.as_ref(),
                        &n.path,
                        format!("invalid log tag {:?}", t.value),
                        Some(
                            "1 to 32 printable ASCII characters, no spaces or ':' (RFC 3164 TAG)"
                                .into(),
                        ),
                    );
                    failed = true;
                }
                Err(Reported) => failed = true,
            }
        }
    }
    if failed {
        return None;
    }
    Some(LogTarget {
        dest: dest?,
        framing,
        facility,
        tag,
    })
}

/// RFC 9110 token characters (header field names).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_valid_tag(tag: &str) -> bool {
    (1..=32).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// A key that takes one entry or a list of them: its entries (none when
/// absent or not a readable list, which is reported).
pub(crate) fn one_or_many<'a>(diag: &mut Diagnostics<'_>, node: Option<Node<'a>>) -> Vec<Node<'a>> {
    match node {
        None => Vec::new(),
        Some(node) if node.is_array() => node.array(diag).unwrap_or_default(),
        Some(node) => vec![node],
    }
}

/// Global `log`: a list of targets, each a table or a bare target string.
pub(crate) fn read_log_targets(
    diag: &mut Diagnostics<'_>,
    node: Option<Node<'_>>,
) -> Vec<LogTarget> {
    one_or_many(diag, node)
        .iter()
        .filter_map(|e| read_log_target(diag, e))
        .collect()
}

/// A frontend's logging keys; also returns where `log` was set, for the
/// "nothing will be logged" warning made once the global targets are known.
pub(crate) fn read_frontend_log(
    diag: &mut Diagnostics<'_>,
    table: &TableView<'_>,
    mode: Option<Mode>,
) -> (FrontendLog, Option<Span>) {
    let mut log = FrontendLog::off();
    if mode == Some(Mode::Http) {
        log.format = LogFormat::Http;
    }
    let log_node = table.get("log");
    if let Some(n) = &log_node {
        if let Ok(b) = n.bool(diag) {
            log.enabled = b.value;
        }
    }
    if let Some(n) = table.get("log-format") {
        if let Some(format) = read_log_format(diag, &n) {
            if format == LogFormat::Http && mode == Some(Mode::Tcp) {
                // HAProxy: "option httplog not usable with proxy ... (needs
                // 'mode http'). Falling back to 'option tcplog'."
                diag.warn(
                    n.span.as_ref(),
                    &n.path,
                    "log-format \"httplog\" needs mode http; falling back to \"tcplog\"",
                    Some("use log-format = \"tcplog\" on a tcp frontend".into()),
                );
                log.format = LogFormat::Tcp;
            } else {
                log.format = format;
            }
        }
    }
    log.unique_id = read_unique_id(diag, table);
    if let Some(n) = table.get("log-format-sd") {
        if let Ok(text) = n.string(diag).map(|t| t.value) {
            match crate::log::custom::CustomFormat::parse(&text) {
                Ok(format) => log.sd = Some(std::sync::Arc::new(format)),
                Err(e) => {
                    let invalid = values::Invalid {
                        message: e.message,
                        hint: Some(e.hint),
                    };
                    super::routing::report_line(diag, &n, &text, (e.at, invalid));
                }
            }
        }
    }
    if let Some(n) = table.get("dontlognull") {
        if let Ok(b) = n.bool(diag) {
            log.dontlognull = b.value;
        }
    }
    for key in ["capture-request-header", "capture-response-header"] {
        let Some(n) = table.get(key) else { continue };
        let captures = read_captures(diag, &n);
        if mode == Some(Mode::Tcp) && !captures.is_empty() {
            diag.warn(
                n.span.as_ref(),
                &n.path,
                "header captures are ignored in mode tcp",
                Some("captures apply to mode http frontends".into()),
            );
        }
        match key {
            "capture-request-header" => log.captures = captures,
            _ => log.response_captures = captures,
        }
    }
    if let Some(n) = table.get("capture-cookie") {
        // One table (HAProxy takes one `capture cookie` per proxy); the
        // name is a cookie name's beginning, not a header name.
        log.cookie_capture = read_captures(diag, &n).pop();
    }
    if let Some(n) = table.get("declare-capture") {
        log.declared = read_declared(diag, &n);
    }
    (log, log_node.and_then(|n| n.span))
}

/// `declare-capture = [{ type = "request"|"response", len = <n> }]`.
fn read_declared(diag: &mut Diagnostics<'_>, node: &Node<'_>) -> DeclaredCaptures {
    let mut declared = DeclaredCaptures::default();
    let Ok(elements) = node.array(diag) else {
        return declared;
    };
    for element in &elements {
        let Ok(table) = element.table(diag) else {
            continue;
        };
        table.check_keys(diag, DECLARE_KEYS);
        let side = match table.get("type") {
            Some(n) => match n.string(diag) {
                Ok(t) if t.value == "request" => Some(&mut declared.request),
                Ok(t) if t.value == "response" => Some(&mut declared.response),
                Ok(t) => {
                    diag.error(
                        t.span.as_ref(),
                        &n.path,
                        format!("invalid capture type {:?}", t.value),
                        Some("type = \"request\" or \"response\"".into()),
                    );
                    None
                }
                Err(_) => None,
            },
            None => {
                diag.error(
                    table.span.as_ref(),
                    &table.path,
                    "declare-capture has no type",
                    Some("write { type = \"request\", len = 64 }".into()),
                );
                None
            }
        };
        let len = capture_len(diag, &table, "declare-capture", "type = \"request\"");
        if let (Some(side), Some(len)) = (side, len) {
            side.push(len);
        }
    }
    declared
}

/// The `len` of a capture table (`what` names it in the error, `example`
/// is the rest of the table the hint shows); HAProxy requires it.
fn capture_len(
    diag: &mut Diagnostics<'_>,
    table: &TableView<'_>,
    what: &str,
    example: &str,
) -> Option<usize> {
    match table.get("len") {
        Some(n) => n
            .integer_in::<usize>(diag, 1..=MAX_CAPTURE_LEN)
            .ok()
            .map(|l| l.value),
        None => {
            diag.error(
                table.span.as_ref(),
                &table.path,
                format!("{what} has no len"),
                Some(format!(
                    "HAProxy requires `len`: write {{ {example}, len = 64 }}"
                )),
            );
            None
        }
    }
}

/// A list of `{ name, len }`, or one such table (`capture-cookie`).
fn read_captures(diag: &mut Diagnostics<'_>, node: &Node<'_>) -> Vec<HeaderCapture> {
    let elements = if node.is_array() {
        let Ok(elements) = node.array(diag) else {
            return Vec::new();
        };
        elements
    } else {
        vec![node.clone()]
    };
    let mut captures = Vec::new();
    for element in &elements {
        let Ok(table) = element.table(diag) else {
            continue;
        };
        table.check_keys(diag, CAPTURE_KEYS);
        let name = match table.get("name") {
            Some(n) => n.string(diag).ok().and_then(|name| {
                if !name.value.is_empty() && name.value.bytes().all(is_tchar) {
                    Some(name.value)
                } else {
                    diag.error(
                        name.span.as_ref(),
                        &n.path,
                        format!("invalid header name {:?}", name.value),
                        Some("a header field name such as \"Host\" or \"User-Agent\"".into()),
                    );
                    None
                }
            }),
            None => {
                diag.error(
                    table.span.as_ref(),
                    &table.path,
                    "capture has no header name",
                    Some("write { name = \"Host\", len = 64 }".into()),
                );
                None
            }
        };
        let len = capture_len(diag, &table, "capture", "name = \"Host\"");
        if let (Some(name), Some(len)) = (name, len) {
            captures.push(HeaderCapture { name, len });
        }
    }
    captures
}

/// `[stats]` as read, with where its bind was written.
pub(crate) struct ReadStats {
    pub page: StatsPage,
    pub bind_span: Option<Span>,
    pub bind_path: String,
}

pub(crate) fn read_stats(diag: &mut Diagnostics<'_>, node: Option<Node<'_>>) -> Option<ReadStats> {
    let table = node?.table(diag).ok()?;
    table.check_keys(diag, STATS_KEYS);
    let bind_path = format!("{}.bind", table.path);
    let (bind, bind_span) = match table.get("bind") {
        Some(n) => {
            let text = n.string(diag).ok();
            let addr = text
                .as_ref()
                .and_then(|t| match values::parse_bind(&t.value) {
                    Ok(a) => Some(a),
                    Err(invalid) => {
                        diag.error(n.span.as_ref(), &n.path, invalid.message, invalid.hint);
                        None
                    }
                });
            (addr, n.span.clone())
        }
        None => {
            diag.error(
                table.span.as_ref(),
                &table.path,
                "stats has no bind address",
                Some("add bind = \"127.0.0.1:8404\"".into()),
            );
            (None, None)
        }
    };
    let mut failed = false;
    let mut uri = DEFAULT_STATS_URI.to_string();
    if let Some(n) = table.get("uri") {
        match n.string(diag) {
            Ok(u) => {
                let bad = !u.value.starts_with('/')
                    || u.value
                        .bytes()
                        .any(|b| !b.is_ascii_graphic() || matches!(b, b'?' | b';' | b'#'));
                if bad {
                    diag.error(
                        u.span.as_ref(),
                        &n.path,
                        format!("invalid stats uri {:?}", u.value),
                        Some("a path starting with '/', without spaces, '?', ';' or '#', e.g. \"/stats\"".into()),
                    );
                    failed = true;
                } else if u.value == METRICS_PATH {
                    diag.error(
                        u.span.as_ref(),
                        &n.path,
                        format!("stats uri {METRICS_PATH:?} is taken by the Prometheus metrics"),
                        Some("choose another path, e.g. \"/stats\"".into()),
                    );
                    failed = true;
                } else {
                    uri = u.value;
                }
            }
            Err(Reported) => failed = true,
        }
    }
    let mut auth = None;
    if let Some(n) = table.get("auth") {
        match n.string(diag) {
            Ok(a) => match a.value.split_once(':') {
                Some((user, pass))
                    if !user.is_empty() && !a.value.contains(char::is_whitespace) =>
                {
                    auth = Some((user.to_string(), pass.to_string()));
                }
                _ => {
                    diag.error(
                        a.span.as_ref(),
                        &n.path,
                        "stats auth must be \"user:password\"",
                        Some(
                            "HAProxy `stats auth <user>:<passwd>`; no spaces, user not empty"
                                .into(),
                        ),
                    );
                    failed = true;
                }
            },
            Err(Reported) => failed = true,
        }
    }
    let mut hide_version = false;
    if let Some(n) = table.get("hide-version") {
        match n.bool(diag) {
            Ok(b) => hide_version = b.value,
            Err(Reported) => failed = true,
        }
    }
    let mut refresh = None;
    if let Some(n) = table.get("refresh") {
        let parsed = n.string(diag).and_then(|t| {
            values::parse_duration(&t.value).map_err(|invalid| {
                diag.error(n.span.as_ref(), &n.path, invalid.message, invalid.hint)
            })
        });
        match parsed {
            Ok(d) if d.as_secs() >= 1 => refresh = Some(d),
            Ok(_) => {
                diag.error(
                    n.span.as_ref(),
                    &n.path,
                    "stats refresh must be at least 1s",
                    Some("browsers refresh in whole seconds; e.g. \"10s\"".into()),
                );
                failed = true;
            }
            Err(Reported) => failed = true,
        }
    }
    if failed {
        return None;
    }
    Some(ReadStats {
        page: StatsPage {
            bind: bind?,
            uri,
            auth,
            hide_version,
            refresh,
        },
        bind_span,
        bind_path,
    })
}

/// The stats listener may not share an address with a frontend: with
/// SO_REUSEPORT both would bind and the kernel would split connections.
pub(crate) fn check_stats_bind(
    diag: &mut Diagnostics<'_>,
    stats: &ReadStats,
    frontends: &[Frontend],
) {
    let bind = stats.page.bind;
    for fe in frontends {
        for addr in &fe.binds {
            let overlap = addr.port() == bind.port()
                && (addr.ip() == bind.ip()
                    || addr.ip().is_unspecified()
                    || bind.ip().is_unspecified())
                && addr.is_ipv4() == bind.is_ipv4();
            if overlap {
                diag.error(
                    stats.bind_span.as_ref(),
                    &stats.bind_path,
                    format!(
                        "stats bind {bind} overlaps frontend \"{}\" bind {addr}",
                        fe.name
                    ),
                    Some("give the stats page its own port".into()),
                );
                return;
            }
        }
    }
}
