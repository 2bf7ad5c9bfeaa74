//! The HTTP-mode keys of `[defaults]`, `[[frontend]]` and `[[backend]]`:
//! `forwardfor`, `x-forwarded-proto`, `x-forwarded-port`,
//! `http-server-close`, `http-buffer-request`, `http-reuse` and
//! `errorfile`. Errorfiles are read
//! and checked here, at load, so a bad one stops the start.

use std::path::Path;

use super::error::{Diagnostics, Reported};
use super::model::{BackendHttp, FrontendHttp, HttpReuse};
use super::reader::{Node, TableView};
use crate::http::{load_errorfile, ErrorPages, ErrorResponse, ForwardFor, Network, MAXREWRITE};

const FORWARDFOR_KEYS: &[&str] = &["except", "header", "if-none"];
const REUSE: [(&str, HttpReuse); 3] = [
    ("never", HttpReuse::Never),
    ("safe", HttpReuse::Safe),
    ("always", HttpReuse::Always),
];
/// The statuses HAProxy 2.6 accepts in `errorfile`.
const ERRORFILE_STATUSES: [u16; 17] = [
    200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504,
];

/// The HTTP keys as written in one section; `None` = not set there.
#[derive(Default, Clone)]
pub(crate) struct HttpKeys {
    /// `Some(None)`: `forwardfor = false`.
    forward_for: Option<Option<ForwardFor>>,
    forwarded_proto: Option<bool>,
    forwarded_port: Option<bool>,
    server_close: Option<bool>,
    /// `http-buffer-request` (HAProxy `option http-buffer-request`).
    buffer_request: Option<bool>,
    reuse: Option<HttpReuse>,
    errorfiles: Vec<ErrorResponse>,
}

/// Where errorfiles are looked up, and how large they may be.
pub(crate) struct ErrorfileContext<'p> {
    /// Relative errorfile paths are relative to the configuration file.
    pub base_dir: &'p Path,
    pub bufsize: usize,
}

impl HttpKeys {
    pub(crate) fn read(
        diag: &mut Diagnostics<'_>,
        table: &TableView<'_>,
        files: &ErrorfileContext<'_>,
    ) -> Self {
        let bool_key = |diag: &mut Diagnostics<'_>, key: &str| {
            table
                .get(key)
                .and_then(|n| n.bool(diag).ok())
                .map(|l| l.value)
        };
        let server_close = bool_key(diag, "http-server-close");
        let buffer_request = bool_key(diag, "http-buffer-request");
        let forwarded_proto = bool_key(diag, "x-forwarded-proto");
        let forwarded_port = bool_key(diag, "x-forwarded-port");
        let reuse = table.get("http-reuse").and_then(|n| {
            let text = n.string(diag).ok()?.value;
            super::values::keyword(&text, "http-reuse", &REUSE)
                .map_err(|invalid| {
                    diag.error(n.span.as_ref(), &n.path, invalid.message, invalid.hint)
                })
                .ok()
        });
        let forward_for = table
            .get("forwardfor")
            .and_then(|n| read_forwardfor(diag, &n).ok());
        let errorfiles = table
            .get("errorfile")
            .map(|n| read_errorfiles(diag, &n, files))
            .unwrap_or_default();
        HttpKeys {
            forward_for,
            forwarded_proto,
            forwarded_port,
            server_close,
            buffer_request,
            reuse,
            errorfiles,
        }
    }

    /// This section's keys over `defaults`, key by key; errorfiles merge
    /// per status.
    pub(crate) fn over(&self, defaults: &HttpKeys) -> HttpKeys {
        let mut errorfiles = defaults.errorfiles.clone();
        for page in &self.errorfiles {
            errorfiles.retain(|p| p.status() != page.status());
            errorfiles.push(page.clone());
        }
        HttpKeys {
            forward_for: self
                .forward_for
                .clone()
                .or_else(|| defaults.forward_for.clone()),
            forwarded_proto: self.forwarded_proto.or(defaults.forwarded_proto),
            forwarded_port: self.forwarded_port.or(defaults.forwarded_port),
            server_close: self.server_close.or(defaults.server_close),
            buffer_request: self.buffer_request.or(defaults.buffer_request),
            reuse: self.reuse.or(defaults.reuse),
            errorfiles,
        }
    }

    pub(crate) fn backend(&self) -> BackendHttp {
        BackendHttp {
            forward_for: self.forward_for.clone().flatten(),
            server_close: self.server_close.unwrap_or(false),
            buffer_request: self.buffer_request.unwrap_or(false),
            reuse: self.reuse.unwrap_or_default(),
            errorfiles: self.errorfiles.clone(),
        }
    }

    /// The effective settings of a frontend (these keys, already merged
    /// with `[defaults]`) in front of `backend`.
    pub(crate) fn frontend(&self, backend: &BackendHttp) -> FrontendHttp {
        let mut errors = ErrorPages::haproxy_defaults();
        for page in &self.errorfiles {
            errors.set(page.clone());
        }
        let mut backend_errors = errors.clone();
        for page in &backend.errorfiles {
            backend_errors.set(page.clone());
        }
        FrontendHttp {
            rewrite: crate::http::RequestRewrite {
                forward_for: merge_forward_for(
                    self.forward_for.clone().flatten(),
                    backend.forward_for.clone(),
                ),
                forwarded_proto: self.forwarded_proto.unwrap_or(false),
                forwarded_port: self.forwarded_port.unwrap_or(false),
            },
            server_close: self.server_close.unwrap_or(false) || backend.server_close,
            buffer_request: self.buffer_request.unwrap_or(false) || backend.buffer_request,
            reuse: backend.reuse,
            errors,
            backend_errors,
        }
    }
}

/// `forwardfor` set in the frontend, the backend or both, as HAProxy's
/// `http_process_request()` combines them: the field is added if either
/// asks; the backend's field name; `if-none` only if both say so ("if at
/// least one of the frontend or the backend does not specify it, it wants
/// the addition to be mandatory, so it wins"); a client in either's
/// `except` networks gets no field.
fn merge_forward_for(
    frontend: Option<ForwardFor>,
    backend: Option<ForwardFor>,
) -> Option<ForwardFor> {
    match (frontend, backend) {
        (Some(fe), Some(mut be)) => {
            be.if_none = be.if_none && fe.if_none;
            be.except.extend(fe.except);
            Some(be)
        }
        (fe, be) => be.or(fe),
    }
}

const FORWARDFOR_HINT: &str = "forwardfor = true, or a table such as \
     { except = \"127.0.0.0/8\", header = \"X-Client-IP\", if-none = true } (HAProxy option forwardfor)";

fn read_forwardfor(
    diag: &mut Diagnostics<'_>,
    node: &Node<'_>,
) -> Result<Option<ForwardFor>, Reported> {
    if let Some(flag) = node.as_bool() {
        return Ok(flag.then(ForwardFor::default));
    }
    if !node.is_table() {
        return Err(diag.error(
            node.span.as_ref(),
            &node.path,
            format!("expected true, false or a table, found {}", node.describe()),
            Some(FORWARDFOR_HINT.into()),
        ));
    }
    let table = node.table(diag)?;
    table.check_keys(diag, FORWARDFOR_KEYS);
    let mut ff = ForwardFor::default();
    let mut failed = false;
    if let Some(h) = table.get("header") {
        match h.string(diag) {
            Ok(name) if is_header_name(&name.value) => ff.header = name.value,
            Ok(name) => {
                diag.error(
                    name.span.as_ref(),
                    &h.path,
                    format!("invalid header name {:?}", name.value),
                    Some("a header name is a token: letters, digits and !#$%&'*+-.^_`|~".into()),
                );
                failed = true;
            }
            Err(_) => failed = true,
        }
    }
    if let Some(n) = table.get("if-none") {
        match n.bool(diag) {
            Ok(b) => ff.if_none = b.value,
            Err(_) => failed = true,
        }
    }
    if let Some(n) = table.get("except") {
        let elements = if n.is_array() {
            n.array(diag).unwrap_or_default()
        } else {
            vec![n.clone()]
        };
        for element in elements {
            let Ok(text) = element.string(diag) else {
                failed = true;
                continue;
            };
            match text.value.parse::<Network>() {
                Ok(net) => ff.except.push(net),
                Err(e) => {
                    diag.error(
                        text.span.as_ref(),
                        &element.path,
                        format!("invalid network {:?}: {e}", text.value),
                        Some(
                            "write an address or address/prefix, e.g. \"10.0.0.0/8\" or \"::1\""
                                .into(),
                        ),
                    );
                    failed = true;
                }
            }
        }
    }
    if failed {
        return Err(Reported);
    }
    Ok(Some(ff))
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn read_errorfiles(
    diag: &mut Diagnostics<'_>,
    node: &Node<'_>,
    files: &ErrorfileContext<'_>,
) -> Vec<ErrorResponse> {
    let Ok(table) = node.table(diag) else {
        return Vec::new();
    };
    let allowed: Vec<String> = ERRORFILE_STATUSES.iter().map(u16::to_string).collect();
    let mut pages = Vec::new();
    for (key, value) in table.entries() {
        let status = key
            .parse::<u16>()
            .ok()
            .filter(|s| ERRORFILE_STATUSES.contains(s));
        let Some(status) = status else {
            diag.error(
                value.span.as_ref(),
                &value.path,
                format!("no error page for status {key:?}"),
                Some(format!("errorfile statuses are {}", allowed.join(", "))),
            );
            continue;
        };
        let Ok(path) = value.string(diag) else {
            continue;
        };
        let full = files.base_dir.join(&path.value);
        let max = files.bufsize.saturating_sub(MAXREWRITE);
        match load_errorfile(&full, Some(status), max) {
            Ok(page) => pages.push(page),
            Err(e) => {
                diag.error(
                    path.span.as_ref(),
                    &value.path,
                    format!("errorfile {}: {e}", full.display()),
                    Some(
                        "an errorfile holds a complete HTTP response: status line, headers, \
                         empty line, body (as in HAProxy)"
                            .into(),
                    ),
                );
            }
        }
    }
    pages
}
