//! Responses percore writes itself for `redirect`, `return` and `auth`.

use std::io::Write;

use super::action::{Redirect, RedirectCookie, RedirectTarget, Reply};
use super::sample::Facts;

/// Reason phrase of the statuses rules may produce.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

fn status_line(out: &mut Vec<u8>, status: u16) {
    let _ = write!(out, "HTTP/1.1 {status} {}\r\n", reason(status));
}

fn end_head(out: &mut Vec<u8>, body_len: usize, close: bool) {
    let _ = write!(out, "content-length: {body_len}\r\n");
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// `return status <s> [content-type <t>] [string <s> | file <f>]`.
pub fn write_reply(
    out: &mut Vec<u8>,
    reply: &Reply,
    facts: &Facts<'_>,
    head_only: bool,
    close: bool,
) {
    status_line(out, reply.status);
    if let Some(ct) = &reply.content_type {
        let _ = write!(out, "content-type: {ct}\r\n");
    }
    for (name, value) in &reply.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        let start = out.len();
        value.render(facts, out);
        strip_line_breaks(out, start);
        out.extend_from_slice(b"\r\n");
    }
    let mut rendered = Vec::new();
    let body: &[u8] = match &reply.lf_body {
        Some(format) => {
            format.render(facts, &mut rendered);
            &rendered
        }
        None => &reply.body,
    };
    end_head(out, body.len(), close);
    if !head_only {
        out.extend_from_slice(body);
    }
}

/// Drops CR and LF from `out[start..]`: a rendered value must not split
/// the head.
fn strip_line_breaks(out: &mut Vec<u8>, start: usize) {
    let mut i = start;
    while i < out.len() {
        if out[i] == b'\r' || out[i] == b'\n' {
            out.remove(i);
        } else {
            i += 1;
        }
    }
}

/// A 401 asking for basic credentials.
pub fn write_auth(out: &mut Vec<u8>, realm: &str, head_only: bool, close: bool) {
    const BODY: &[u8] =
        b"<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n";
    status_line(out, 401);
    out.extend_from_slice(b"content-type: text/html\r\ncache-control: no-cache\r\n");
    let realm = realm.replace(['"', '\\', '\r', '\n'], "");
    let _ = write!(out, "www-authenticate: Basic realm=\"{realm}\"\r\n");
    end_head(out, BODY.len(), close);
    if !head_only {
        out.extend_from_slice(BODY);
    }
}

/// A redirect for the request in `facts`.
pub fn write_redirect(out: &mut Vec<u8>, r: &Redirect, facts: &Facts<'_>, close: bool) {
    status_line(out, r.code);
    out.extend_from_slice(b"location: ");
    let start = out.len();
    let req = facts.req;
    let path = req.map_or("/", |h| if h.path.is_empty() { "/" } else { h.path });
    let query = if r.drop_query {
        None
    } else {
        req.and_then(|h| h.query)
    };
    let uri = |out: &mut Vec<u8>| {
        out.extend_from_slice(path.as_bytes());
        if r.append_slash && !path.ends_with('/') {
            out.push(b'/');
        }
        if let Some(q) = query {
            out.push(b'?');
            out.extend_from_slice(q.as_bytes());
        }
    };
    match &r.target {
        RedirectTarget::Scheme(scheme) => {
            out.extend_from_slice(scheme.as_bytes());
            out.extend_from_slice(b"://");
            if let Some(host) = req.and_then(|h| h.host) {
                out.extend_from_slice(host);
            }
            uri(out);
        }
        RedirectTarget::Location(format) => {
            format.render(facts, out);
        }
        RedirectTarget::Prefix(format) => {
            format.render(facts, out);
            // HAProxy: a prefix of "/" adds nothing (no "//path").
            if out[start..] == *b"/" {
                out.truncate(start);
            }
            uri(out);
        }
    }
    strip_line_breaks(out, start);
    out.extend_from_slice(b"\r\n");
    // As HAProxy 2.6 writes them (trailing `;` included).
    match &r.cookie {
        Some(RedirectCookie::Set(cookie)) => {
            let _ = write!(out, "set-cookie: {cookie}; path=/;\r\n");
        }
        Some(RedirectCookie::Clear(cookie)) => {
            let _ = write!(out, "set-cookie: {cookie}; path=/; Max-Age=0;\r\n");
        }
        None => {}
    }
    end_head(out, 0, close);
}
