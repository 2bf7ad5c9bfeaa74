//! HAProxy's custom log format (configuration manual 8.2.4): a string such
//! as `%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %{+Q}r`,
//! compiled once at load into a list of [`Part`]s and rendered per line
//! straight into the core's log buffer (numbers, addresses and dates are
//! written with `write!` into that buffer: no allocation per part).
//!
//! As in HAProxy, unescaped spaces are separators: several in a row print
//! one space, and a separator after a variable that printed nothing (e.g.
//! `%hr` without captures) or at the start of the line prints nothing.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::date::Clock;
use super::record::LogRecord;
use crate::net::blame::termination_state;
use crate::rules::convert_ops::run_chain;
use crate::rules::format::matching_bracket;
use crate::rules::sample::{Facts, Fetch};
use crate::rules::{Conv, Value};

/// A variable of the table of 8.2.4 that percore has data for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    ClientIp,
    ClientPort,
    FrontendIp,
    FrontendPort,
    ServerIp,
    ServerPort,
    Frontend,
    /// Frontend name, `~` appended on a TLS connection.
    FrontendTransport,
    Backend,
    Server,
    TimerRequest,
    TimerQueue,
    TimerConnect,
    TimerResponse,
    TimerActive,
    TimerTotal,
    TimerHandshake,
    TimerIdle,
    /// `Th + Ti + TR`.
    TimerTq,
    /// Data transmission time: `Tt - (Tq + Tw + Tc + Tr)`.
    TimerData,
    Status,
    BytesRead,
    BytesUploaded,
    CapturedRequestCookie,
    CapturedResponseCookie,
    TerminationState,
    TerminationStateCookie,
    ActConn,
    FeConn,
    BeConn,
    SrvConn,
    Retries,
    SrvQueue,
    BackendQueue,
    CapturedRequestHeaders,
    CapturedRequestHeadersList,
    CapturedResponseHeaders,
    CapturedResponseHeadersList,
    RequestLine,
    Method,
    Uri,
    Path,
    Query,
    Version,
    UniqueId,
    RequestCounter,
    Pid,
    Hostname,
    /// Accept date, `06/Feb/2009:12:14:14.655`.
    AcceptDate,
    /// Accept date, GMT, `06/Feb/2009:12:14:14 +0000`.
    AcceptDateGmt,
    AcceptDateLocal,
    /// Accept date as a UNIX timestamp.
    AcceptTimestamp,
    /// Milliseconds of the accept date.
    AcceptMillis,
    RequestDate,
    RequestDateGmt,
    RequestDateLocal,
}

/// Name, variable: HAProxy's names (case-sensitive), as in its table.
const VARIABLES: &[(&str, Var)] = &[
    ("ci", Var::ClientIp),
    ("cp", Var::ClientPort),
    ("fi", Var::FrontendIp),
    ("fp", Var::FrontendPort),
    ("si", Var::ServerIp),
    ("sp", Var::ServerPort),
    ("f", Var::Frontend),
    ("ft", Var::FrontendTransport),
    ("b", Var::Backend),
    ("s", Var::Server),
    ("TR", Var::TimerRequest),
    ("Tw", Var::TimerQueue),
    ("Tc", Var::TimerConnect),
    ("Tr", Var::TimerResponse),
    ("Ta", Var::TimerActive),
    ("Tt", Var::TimerTotal),
    ("Th", Var::TimerHandshake),
    ("Ti", Var::TimerIdle),
    ("Tq", Var::TimerTq),
    ("Td", Var::TimerData),
    ("ST", Var::Status),
    ("B", Var::BytesRead),
    ("U", Var::BytesUploaded),
    ("CC", Var::CapturedRequestCookie),
    ("CS", Var::CapturedResponseCookie),
    ("ts", Var::TerminationState),
    ("tsc", Var::TerminationStateCookie),
    ("ac", Var::ActConn),
    ("fc", Var::FeConn),
    ("bc", Var::BeConn),
    ("sc", Var::SrvConn),
    ("rc", Var::Retries),
    ("sq", Var::SrvQueue),
    ("bq", Var::BackendQueue),
    ("hr", Var::CapturedRequestHeaders),
    ("hrl", Var::CapturedRequestHeadersList),
    ("hs", Var::CapturedResponseHeaders),
    ("hsl", Var::CapturedResponseHeadersList),
    ("r", Var::RequestLine),
    ("HM", Var::Method),
    ("HU", Var::Uri),
    ("HP", Var::Path),
    ("HQ", Var::Query),
    ("HV", Var::Version),
    ("ID", Var::UniqueId),
    ("rt", Var::RequestCounter),
    ("pid", Var::Pid),
    ("H", Var::Hostname),
    ("t", Var::AcceptDate),
    ("T", Var::AcceptDateGmt),
    ("Tl", Var::AcceptDateLocal),
    ("Ts", Var::AcceptTimestamp),
    ("ms", Var::AcceptMillis),
    ("tr", Var::RequestDate),
    ("trg", Var::RequestDateGmt),
    ("trl", Var::RequestDateLocal),
];

/// HAProxy variables percore refuses, with why (it has no data for them).
const NOT_SUPPORTED: &[(&str, &str)] = &[
    (
        "bi",
        "the source address of the server connection is not recorded",
    ),
    (
        "bp",
        "the source port of the server connection is not recorded",
    ),
    ("lc", "there is no log counter"),
    (
        "sslc",
        "TLS details are not recorded in the log; use ssl_fc_cipher in a rule",
    ),
    (
        "sslv",
        "TLS details are not recorded in the log; use ssl_fc_protocol in a rule",
    ),
    ("Tu", "Tu is not computed"),
];

/// HAProxy's per-variable options (`%{+Q}r`, `%{+E,-Q}HU`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// `+Q`: double quotes around text values.
    pub quote: bool,
    /// `+X`: hexadecimal addresses, ports and numbers.
    pub hex: bool,
    /// `+E`: backslash before `"`, `\` and `]` in text values.
    pub escape: bool,
}

#[derive(Debug, Clone)]
pub enum Part {
    Literal(Box<str>),
    /// One or more unescaped spaces.
    Separator,
    Var {
        var: Var,
        flags: Flags,
    },
    /// `%[fetch,converter...]`, evaluated on the connection's facts when
    /// the line is written.
    Sample {
        sample: Box<LogSample>,
        flags: Flags,
    },
}

impl PartialEq for Part {
    fn eq(&self, other: &Part) -> bool {
        match (self, other) {
            (Part::Literal(a), Part::Literal(b)) => a == b,
            (Part::Separator, Part::Separator) => true,
            (Part::Var { var: a, flags: f }, Part::Var { var: b, flags: g }) => a == b && f == g,
            // Compared by the text they were compiled from (CustomFormat).
            _ => false,
        }
    }
}

/// A compiled sample expression of a log format.
#[derive(Debug, Clone)]
pub struct LogSample {
    pub fetch: Fetch,
    pub converters: Vec<Conv>,
}

/// Compiles the inside of `%[...]` (its offset in the format, its text).
pub type SampleCompiler<'c> = dyn FnMut(usize, &str) -> Result<LogSample, FormatError> + 'c;

/// A compiled `log-format` string.
#[derive(Debug, Clone)]
pub struct CustomFormat {
    pub parts: Box<[Part]>,
    /// `%H`, read at load.
    hostname: Box<str>,
    /// The string as written (the config diff and `convert` show it).
    pub source: Box<str>,
}

/// Why a format string was refused: byte offset in it, message, hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FormatError {
    pub at: usize,
    pub message: String,
    pub hint: String,
}

fn error<T>(
    at: usize,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> Result<T, FormatError> {
    Err(FormatError {
        at,
        message: message.into(),
        hint: hint.into(),
    })
}

/// Two formats are the same when written the same (a reload compares them).
impl PartialEq for CustomFormat {
    fn eq(&self, other: &CustomFormat) -> bool {
        self.source == other.source
    }
}

impl Eq for CustomFormat {}

impl CustomFormat {
    /// A format whose `%[...]` expressions are only checked for their
    /// brackets (each compiles to "no sample"): the configuration compiles
    /// them once the sections' fetch context is known.
    pub fn parse(text: &str) -> Result<CustomFormat, FormatError> {
        Self::parse_with(text, &super::syslog::hostname(), &mut |_, _| {
            Ok(LogSample {
                fetch: Fetch::Env(None),
                converters: Vec::new(),
            })
        })
    }

    pub fn parse_with_hostname(text: &str, hostname: &str) -> Result<CustomFormat, FormatError> {
        Self::parse_with(text, hostname, &mut |at, _| {
            error(
                at,
                "sample expressions are not available here",
                "use log variables",
            )
        })
    }

    pub fn has_samples(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Sample { .. }))
    }

    pub fn parse_with(
        text: &str,
        hostname: &str,
        compile: &mut SampleCompiler<'_>,
    ) -> Result<CustomFormat, FormatError> {
        let bytes = text.as_bytes();
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut defaults = Flags::default();
        let mut i = 0;
        let flush = |literal: &mut String, parts: &mut Vec<Part>| {
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(literal).into()));
            }
        };
        while i < bytes.len() {
            match bytes[i] {
                b' ' => {
                    flush(&mut literal, &mut parts);
                    if parts.last() != Some(&Part::Separator) {
                        parts.push(Part::Separator);
                    }
                    i += 1;
                }
                b'%' => {
                    let start = i;
                    i += 1;
                    if bytes.get(i) == Some(&b'%') {
                        literal.push('%');
                        i += 1;
                        continue;
                    }
                    let mut flags = defaults;
                    if bytes.get(i) == Some(&b'{') {
                        let Some(close) = text[i..].find('}') else {
                            return error(i, "`%{` without its `}`", "write flags as %{+Q}r");
                        };
                        flags = parse_flags(i + 1, &text[i + 1..i + close], flags)?;
                        i += close + 1;
                    }
                    if bytes.get(i) == Some(&b'[') {
                        let Some(close) = matching_bracket(&text[i + 1..]) else {
                            return error(
                                start,
                                "`%[` without its `]`",
                                "write %[fetch] or %[fetch,converter]",
                            );
                        };
                        let sample = compile(i + 1, &text[i + 1..i + 1 + close])?;
                        flush(&mut literal, &mut parts);
                        parts.push(Part::Sample {
                            sample: Box::new(sample),
                            flags,
                        });
                        i += close + 2;
                        continue;
                    }
                    let name_len = text[i..]
                        .bytes()
                        .take_while(u8::is_ascii_alphabetic)
                        .count();
                    let name = &text[i..i + name_len];
                    if name == "o" {
                        // `%{+Q}o`: the flags become the default of the
                        // variables that follow.
                        defaults = flags;
                        i += name_len;
                        continue;
                    }
                    let var = lookup(start, name)?;
                    flush(&mut literal, &mut parts);
                    parts.push(Part::Var { var, flags });
                    i += name_len;
                }
                _ => {
                    // Copy the whole run of ordinary characters (UTF-8 safe:
                    // `%` and space are ASCII).
                    let run = text[i..].find(['%', ' ']).unwrap_or(text.len() - i);
                    literal.push_str(&text[i..i + run]);
                    i += run;
                }
            }
        }
        flush(&mut literal, &mut parts);
        Ok(CustomFormat {
            parts: parts.into(),
            hostname: hostname.into(),
            source: text.into(),
        })
    }

    /// Appends the line for `record` to `out`; `%[...]` parts read
    /// `facts` (no sample without them).
    pub fn render(
        &self,
        out: &mut String,
        record: &LogRecord<'_>,
        clock: Clock,
        facts: Option<&Facts<'_>>,
    ) {
        // HAProxy starts "after a space": leading separators print nothing.
        let mut after_space = true;
        for part in self.parts.iter() {
            match part {
                Part::Literal(text) => {
                    out.push_str(text);
                    after_space = false;
                }
                Part::Separator => {
                    if !after_space {
                        out.push(' ');
                        after_space = true;
                    }
                }
                Part::Var { var, flags } => {
                    let before = out.len();
                    self.render_var(out, *var, *flags, record, clock);
                    if out.len() != before {
                        after_space = false;
                    }
                }
                Part::Sample { sample, flags } => {
                    render_sample(out, sample, *flags, facts);
                    after_space = false;
                }
            }
        }
    }

    fn render_var(
        &self,
        out: &mut String,
        var: Var,
        flags: Flags,
        r: &LogRecord<'_>,
        clock: Clock,
    ) {
        let http = r.http.as_ref();
        match var {
            Var::ClientIp => ip(out, Some(r.client.ip()), flags),
            Var::ClientPort => port(out, Some(r.client), flags),
            Var::FrontendIp => ip(out, r.frontend_addr.map(|a| a.ip()), flags),
            Var::FrontendPort => port(out, r.frontend_addr, flags),
            Var::ServerIp => ip(out, r.server_addr.map(|a| a.ip()), flags),
            Var::ServerPort => port(out, r.server_addr, flags),
            Var::Frontend => text(out, Some(r.frontend), flags),
            Var::FrontendTransport => {
                quote(out, flags);
                escaped(out, r.frontend, flags);
                if r.tls {
                    out.push('~');
                }
                quote(out, flags);
            }
            Var::Backend => text(out, Some(r.backend), flags),
            Var::Server => text(out, Some(r.server.unwrap_or("<NOSRV>")), flags),
            Var::TimerRequest => timer(out, http.and_then(|h| h.t_request), flags),
            Var::TimerQueue => timer(out, r.t_queue, flags),
            Var::TimerConnect => timer(out, r.t_connect, flags),
            Var::TimerResponse => timer(out, http.and_then(|h| h.t_response), flags),
            Var::TimerActive => timer(out, http.map(|h| h.t_active), flags),
            Var::TimerTotal => timer(out, Some(r.t_total), flags),
            // TLS and PROXY handshakes are not timed apart: 0, as HAProxy
            // logs for a plain connection.
            Var::TimerHandshake => timer(out, Some(Duration::ZERO), flags),
            Var::TimerIdle => timer(out, http.map(|h| h.t_idle), flags),
            Var::TimerTq => timer(out, tq(r), flags),
            Var::TimerData => {
                let data = match (
                    tq(r),
                    r.t_queue,
                    r.t_connect,
                    http.and_then(|h| h.t_response),
                ) {
                    (Some(tq), Some(tw), Some(tc), Some(tr)) => {
                        r.t_total.checked_sub(tq + tw + tc + tr)
                    }
                    _ => None,
                };
                timer(out, data, flags);
            }
            Var::Status => signed(
                out,
                http.and_then(|h| h.status).map_or(-1, i64::from),
                flags,
            ),
            Var::BytesRead => number(out, r.bytes_read, flags),
            Var::BytesUploaded => number(out, r.bytes_uploaded, flags),
            Var::CapturedRequestCookie => text(out, http.and_then(|h| h.captured_cookies.0), flags),
            Var::CapturedResponseCookie => {
                text(out, http.and_then(|h| h.captured_cookies.1), flags)
            }
            Var::TerminationState => out.push_str(termination_state(r.end).as_str()),
            Var::TerminationStateCookie => {
                out.push_str(termination_state(r.end).as_str());
                // Persistence cookie states (not supported): unknown.
                out.push_str("--");
            }
            Var::ActConn => number(out, r.conns.actconn, flags),
            Var::FeConn => number(out, r.conns.feconn, flags),
            Var::BeConn => number(out, r.conns.beconn, flags),
            Var::SrvConn => number(out, r.conns.srv_conn, flags),
            Var::Retries => {
                if r.redispatched {
                    out.push('+');
                }
                number(out, u64::from(r.retries), flags);
            }
            Var::SrvQueue => number(out, r.srv_queue, flags),
            Var::BackendQueue => number(out, r.backend_queue, flags),
            Var::CapturedRequestHeaders | Var::CapturedRequestHeadersList => {
                let captures = http.map_or(&[][..], |h| h.captured_request_headers);
                captured_headers(out, captures, var == Var::CapturedRequestHeaders, flags);
            }
            Var::CapturedResponseHeaders | Var::CapturedResponseHeadersList => {
                let captures = http.map_or(&[][..], |h| h.captured_response_headers);
                captured_headers(out, captures, var == Var::CapturedResponseHeaders, flags);
            }
            Var::RequestLine => request_text(out, http.map(|h| h.request_line), flags),
            Var::Method => request_text(
                out,
                http.and_then(|h| request_parts(h.request_line).0),
                flags,
            ),
            Var::Uri => request_text(
                out,
                http.and_then(|h| request_parts(h.request_line).1),
                flags,
            ),
            Var::Path => request_text(
                out,
                http.and_then(|h| request_parts(h.request_line).1)
                    .map(|u| u.split_once('?').map_or(u, |(p, _)| p)),
                flags,
            ),
            Var::Query => request_text(
                out,
                http.and_then(|h| request_parts(h.request_line).1)
                    .map(|u| u.find('?').map_or("", |q| &u[q..])),
                flags,
            ),
            Var::Version => request_text(
                out,
                http.and_then(|h| request_parts(h.request_line).2),
                flags,
            ),
            Var::UniqueId => text(out, r.unique_id, flags),
            Var::RequestCounter => number(out, r.request_id, flags),
            Var::Pid => number(out, u64::from(std::process::id()), flags),
            Var::Hostname => text(out, Some(&self.hostname), flags),
            Var::AcceptDate => clock.date(r.accept_date).write_haproxy(out),
            Var::AcceptDateGmt => Clock::utc().date(r.accept_date).write_clf(out),
            Var::AcceptDateLocal => clock.date(r.accept_date).write_clf(out),
            Var::AcceptTimestamp => number(out, unix_secs(r.accept_date), flags),
            Var::AcceptMillis => {
                let ms = clock.date(r.accept_date).micros / 1000;
                if flags.hex {
                    let _ = write!(out, "{ms:02X}");
                } else {
                    let _ = write!(out, "{ms:03}");
                }
            }
            Var::RequestDate => clock.date(request_date(r)).write_haproxy(out),
            Var::RequestDateGmt => Clock::utc().date(request_date(r)).write_clf(out),
            Var::RequestDateLocal => clock.date(request_date(r)).write_clf(out),
        }
    }
}

thread_local! {
    /// Where a sample's value is written before it is escaped into the
    /// line: one buffer per thread, reused, so a line allocates nothing
    /// once it has grown.
    static SAMPLE_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A sample's value (the last one, as HAProxy), `-` when there is none;
/// quoted and escaped as text, with controls and non-ASCII bytes as `#XX`.
fn render_sample(out: &mut String, sample: &LogSample, flags: Flags, facts: Option<&Facts<'_>>) {
    SAMPLE_SCRATCH.with(|scratch| {
        let Ok(mut buf) = scratch.try_borrow_mut() else {
            return;
        };
        buf.clear();
        let mut found = false;
        if let Some(facts) = facts {
            sample.fetch.any(facts, |s| {
                buf.clear();
                if let Some(v) = run_chain(&sample.converters, Value::from(s), facts) {
                    v.write_to(&mut buf);
                    found = true;
                }
                false
            });
        }
        quote(out, flags);
        if found {
            for &b in buf.iter() {
                if (b.is_ascii_graphic() || b == b' ') && b != b'"' || !flags.quote && b == b'"' {
                    if flags.escape && matches!(b, b'"' | b'\\' | b']') {
                        out.push('\\');
                    }
                    out.push(char::from(b));
                } else {
                    let _ = write!(out, "#{b:02X}");
                }
            }
        } else if !flags.quote {
            out.push('-');
        }
        quote(out, flags);
    });
}

fn lookup(at: usize, name: &str) -> Result<Var, FormatError> {
    if let Some((_, var)) = VARIABLES.iter().find(|(n, _)| *n == name) {
        return Ok(*var);
    }
    if let Some((_, why)) = NOT_SUPPORTED.iter().find(|(n, _)| *n == name) {
        return error(
            at,
            format!("log variable %{name} is not supported by percore"),
            format!("{why}; see the log-format table in docs/configuration.md"),
        );
    }
    if name.is_empty() {
        return error(
            at,
            "a `%` must start a log variable such as %ci (or be doubled: %%)",
            "write %% for a literal percent sign",
        );
    }
    let names: Vec<&str> = VARIABLES.iter().map(|(n, _)| *n).collect();
    let near = names
        .iter()
        .find(|n| n.eq_ignore_ascii_case(name))
        .map(|n| format!("did you mean %{n}? "))
        .unwrap_or_default();
    error(
        at,
        format!("unknown log variable %{name}"),
        format!(
            "{near}variables are case-sensitive; known: %{}",
            names.join(" %")
        ),
    )
}

/// `+Q,-X` or `+Q+E`: each flag is a sign and a letter.
fn parse_flags(at: usize, text: &str, mut flags: Flags) -> Result<Flags, FormatError> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b',' {
            i += 1;
            continue;
        }
        let on = match bytes[i] {
            b'+' => true,
            b'-' => false,
            _ => return error(
                at + i,
                format!("invalid log-format flag {:?}", &text[i..]),
                "flags are +Q / -Q (quote), +X / -X (hexadecimal), +E / -E (escape), e.g. %{+Q}r",
            ),
        };
        match bytes.get(i + 1) {
            Some(b'Q') => flags.quote = on,
            Some(b'X') => flags.hex = on,
            Some(b'E') => flags.escape = on,
            _ => {
                return error(
                    at + i,
                    format!("unknown log-format flag {:?}", &text[i..]),
                    "flags are Q (quote), X (hexadecimal) and E (escape), each with + or -",
                )
            }
        }
        i += 2;
    }
    Ok(flags)
}

fn tq(r: &LogRecord<'_>) -> Option<Duration> {
    let h = r.http.as_ref()?;
    Some(h.t_idle + h.t_request?)
}

fn request_date(r: &LogRecord<'_>) -> std::time::SystemTime {
    r.http.as_ref().map_or(r.accept_date, |h| h.request_date)
}

fn unix_secs(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Method, URI and version of a request line; `None` for what is missing.
fn request_parts(line: &str) -> (Option<&str>, Option<&str>, Option<&str>) {
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    (words.next(), words.next(), words.next())
}

fn quote(out: &mut String, flags: Flags) {
    if flags.quote {
        out.push('"');
    }
}

/// A text value: `-` when there is none (`""` when quoted, as HAProxy).
fn text(out: &mut String, value: Option<&str>, flags: Flags) {
    quote(out, flags);
    match value {
        Some(v) => escaped(out, v, flags),
        None if !flags.quote => out.push('-'),
        None => {}
    }
    quote(out, flags);
}

fn escaped(out: &mut String, value: &str, flags: Flags) {
    if !flags.escape {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Request text (`%r`, `%HU`...): `"` and `#`, controls and non-ASCII
/// bytes become `#XX` as in httplog, so the line stays parseable.
fn request_text(out: &mut String, value: Option<&str>, flags: Flags) {
    quote(out, flags);
    match value {
        Some(v) => {
            for b in v.bytes() {
                let plain = (b.is_ascii_graphic() || b == b' ') && b != b'"' && b != b'#';
                if !plain {
                    let _ = write!(out, "#{b:02X}");
                } else {
                    if flags.escape && matches!(b, b'\\' | b']') {
                        out.push('\\');
                    }
                    out.push(char::from(b));
                }
            }
        }
        None if !flags.quote => out.push('-'),
        None => {}
    }
    quote(out, flags);
}

fn captured_headers(out: &mut String, values: &[String], braces: bool, flags: Flags) {
    if values.is_empty() {
        return;
    }
    if braces {
        out.push('{');
    }
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(if braces { '|' } else { ' ' });
        }
        quote(out, flags);
        for b in value.bytes() {
            if b.is_ascii_graphic() && !b"\"#{|}".contains(&b) || b == b' ' {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "#{b:02X}");
            }
        }
        quote(out, flags);
    }
    if braces {
        out.push('}');
    }
}

fn ip(out: &mut String, addr: Option<IpAddr>, flags: Flags) {
    match (addr, flags.hex) {
        (None, _) => out.push('-'),
        (Some(IpAddr::V4(v4)), true) => {
            let _ = write!(out, "{:08X}", u32::from(v4));
        }
        (Some(IpAddr::V6(v6)), true) => {
            let _ = write!(out, "{:032X}", u128::from(v6));
        }
        (Some(a), false) => {
            let _ = write!(out, "{a}");
        }
    }
}

fn port(out: &mut String, addr: Option<SocketAddr>, flags: Flags) {
    match (addr, flags.hex) {
        (None, _) => out.push('-'),
        (Some(a), true) => {
            let _ = write!(out, "{:04X}", a.port());
        }
        (Some(a), false) => {
            let _ = write!(out, "{}", a.port());
        }
    }
}

fn number(out: &mut String, n: u64, flags: Flags) {
    let _ = if flags.hex {
        write!(out, "{n:X}")
    } else {
        write!(out, "{n}")
    };
}

fn signed(out: &mut String, n: i64, flags: Flags) {
    let _ = if flags.hex && n >= 0 {
        write!(out, "{n:X}")
    } else {
        write!(out, "{n}")
    };
}

/// Milliseconds; -1 for a phase not reached.
fn timer(out: &mut String, d: Option<Duration>, flags: Flags) {
    match d {
        Some(d) => number(out, u64::try_from(d.as_millis()).unwrap_or(u64::MAX), flags),
        None => out.push_str("-1"),
    }
}

#[cfg(test)]
mod tests;
