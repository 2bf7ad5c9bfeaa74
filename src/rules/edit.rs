//! Applies rewrites to an outgoing head that `crate::http::rewrite` has
//! already serialized (`start line CRLF (name: value CRLF)* CRLF`). Works
//! on the bytes so that a request with no rewrite costs nothing; a rewrite
//! rebuilds the head once through a scratch buffer.

use regex::bytes::Captures;

use super::action::HeaderEdit;
use super::format::Format;
use super::sample::Facts;

/// Reusable buffers for rewriting (kept per connection so steady state
/// does not allocate).
#[derive(Debug, Default)]
pub struct EditBuffers {
    scratch: Vec<u8>,
    value: Vec<u8>,
    expanded: Vec<u8>,
}

/// One rewrite to apply.
#[derive(Debug, Clone, Copy)]
pub enum Edit<'r> {
    Rule(&'r HeaderEdit),
    /// Cookie persistence: drop cookie `name` from Cookie fields
    /// (`indirect`), or only its `server~` prefix (`prefix` mode).
    StripCookie {
        name: &'r str,
        prefix_only: bool,
    },
    /// Adds a field with a fixed value.
    Add {
        name: &'r str,
        value: &'r [u8],
    },
    /// Cookie persistence (`insert`): `Set-Cookie: name=value; path=/`.
    InsertCookie {
        name: &'r str,
        value: &'r str,
    },
    /// Cookie persistence in the response: `rewrite` replaces the value of
    /// cookie `name` in Set-Cookie by `server`; `prefix` puts `server~`
    /// before it.
    SetCookieValue {
        name: &'r str,
        server: &'r str,
        prefix: bool,
    },
}

/// Applies `edits` in order to `head`.
pub fn apply(head: &mut Vec<u8>, edits: &[Edit<'_>], facts: &Facts<'_>, bufs: &mut EditBuffers) {
    for edit in edits {
        match *edit {
            Edit::Rule(rule) => {
                prepare(rule, facts, bufs);
                apply_prepared(head, rule, bufs);
            }
            Edit::StripCookie { name, prefix_only } => {
                map_fields(head, "cookie", bufs, |value, out| {
                    strip_cookie(value, name.as_bytes(), prefix_only, out)
                });
                // A Cookie field left empty is dropped.
                remove_empty(head, "cookie", bufs);
            }
            Edit::Add { name, value } => add_field(head, name.as_bytes(), value),
            Edit::InsertCookie { name, value } => {
                let line = &mut bufs.value;
                line.clear();
                line.extend_from_slice(name.as_bytes());
                line.push(b'=');
                line.extend_from_slice(value.as_bytes());
                line.extend_from_slice(b"; path=/");
                add_field(head, b"Set-Cookie", line);
            }
            Edit::SetCookieValue {
                name,
                server,
                prefix,
            } => map_fields(head, "set-cookie", bufs, |value, out| {
                rewrite_set_cookie(value, name.as_bytes(), server.as_bytes(), prefix, out)
            }),
        }
    }
}

/// Renders the value `edit` writes, for these facts, into `bufs`: done
/// before [`apply_prepared`] so that the facts may borrow the very head
/// the edit then rewrites.
pub fn prepare(edit: &HeaderEdit, facts: &Facts<'_>, bufs: &mut EditBuffers) {
    match edit {
        HeaderEdit::Set { value, .. } | HeaderEdit::Add { value, .. } => {
            render(value, facts, &mut bufs.value)
        }
        HeaderEdit::Replace { with, .. } => render(with, facts, &mut bufs.value),
        HeaderEdit::SetPath(format) | HeaderEdit::SetQuery(format) => {
            render(format, facts, &mut bufs.value)
        }
        HeaderEdit::Del { .. } | HeaderEdit::SetStatus { .. } | HeaderEdit::NormalizeUri(_) => {
            bufs.value.clear()
        }
        HeaderEdit::ReplacePath { with, .. }
        | HeaderEdit::ReplaceUri { with, .. }
        | HeaderEdit::ReplaceValue { with, .. }
        | HeaderEdit::SetUri(with) => render(with, facts, &mut bufs.value),
        HeaderEdit::SetMethod(format) => {
            render(format, facts, &mut bufs.value);
            if !is_method_token(&bufs.value) {
                bufs.value.clear();
            }
        }
    }
}

/// A method the request line may carry after `set-method`: a token
/// (RFC 9110 5.6.2), not CONNECT.
pub(crate) fn is_method_token(m: &[u8]) -> bool {
    !m.is_empty()
        && m != b"CONNECT"
        && m.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
}

/// Applies `edit` to `head` with the value [`prepare`] rendered.
pub fn apply_prepared(head: &mut Vec<u8>, edit: &HeaderEdit, bufs: &mut EditBuffers) {
    let value = std::mem::take(&mut bufs.value);
    match edit {
        HeaderEdit::Set { name, .. } => {
            remove_fields(head, name, bufs);
            add_field(head, name.as_bytes(), &value);
        }
        HeaderEdit::Add { name, .. } => add_field(head, name.as_bytes(), &value),
        HeaderEdit::Del { name } => remove_fields(head, name, bufs),
        HeaderEdit::Replace { name, regex, .. } => {
            map_fields(head, name, bufs, |field, out| match regex.captures(field) {
                Some(caps) => {
                    expand(&value, &caps, out);
                    true
                }
                None => false,
            });
        }
        HeaderEdit::SetPath(_) => rewrite_target(head, bufs, |_path, query, out| {
            out.extend_from_slice(&value);
            if let Some(q) = query {
                out.push(b'?');
                out.extend_from_slice(q);
            }
        }),
        HeaderEdit::SetQuery(_) => rewrite_target(head, bufs, |path, _, out| {
            out.extend_from_slice(path);
            if !value.is_empty() {
                out.push(b'?');
                out.extend_from_slice(&value);
            }
        }),
        HeaderEdit::ReplacePath { regex, .. } => {
            let mut expanded = std::mem::take(&mut bufs.expanded);
            rewrite_target(head, bufs, |path, query, out| {
                expanded.clear();
                match regex.captures(path) {
                    Some(caps) => expand(&value, &caps, &mut expanded),
                    None => expanded.extend_from_slice(path),
                }
                out.extend_from_slice(&expanded);
                if let Some(q) = query {
                    out.push(b'?');
                    out.extend_from_slice(q);
                }
            });
            bufs.expanded = expanded;
        }
        HeaderEdit::ReplaceUri { regex, .. } => {
            rewrite_whole_target(head, bufs, |target, out| match regex.captures(target) {
                Some(caps) => expand(&value, &caps, out),
                None => out.extend_from_slice(target),
            })
        }
        HeaderEdit::SetUri(_) => rewrite_whole_target(head, bufs, |_, out| {
            out.extend_from_slice(&value);
        }),
        HeaderEdit::ReplaceValue { name, regex, .. } => {
            map_fields(head, name, bufs, |field, out| {
                let mut changed = false;
                for (i, part) in field.split(|&b| b == b',').enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    let lead = part.len() - part.trim_ascii_start().len();
                    let trimmed = super::sample::trim(part);
                    match regex.captures(trimmed) {
                        Some(caps) => {
                            out.extend_from_slice(&part[..lead]);
                            expand(&value, &caps, out);
                            out.extend_from_slice(&part[lead + trimmed.len()..]);
                            changed = true;
                        }
                        None => out.extend_from_slice(part),
                    }
                }
                changed
            })
        }
        HeaderEdit::SetMethod(_) => set_method(head, bufs, &value),
        HeaderEdit::NormalizeUri(kind) => rewrite_whole_target(head, bufs, |target, out| {
            super::normalize::normalize(*kind, target, out)
        }),
        HeaderEdit::SetStatus { code, reason } => {
            let reason = reason
                .as_deref()
                .unwrap_or_else(|| super::reply::reason(*code));
            set_status(head, bufs, *code, reason.as_bytes());
        }
    }
    bufs.value = value;
}

fn render(format: &Format, facts: &Facts<'_>, out: &mut Vec<u8>) {
    out.clear();
    format.render(facts, out);
    out.retain(allowed_in_value);
}

/// A value must not break the head apart (CR, LF) nor carry a control
/// byte a server may refuse or read differently (NUL, ESC, ...): samples
/// rendered at run time can hold any byte (`url_dec` of `%00`). HTAB is a
/// field-value byte. Literal values are checked at load.
fn allowed_in_value(b: &u8) -> bool {
    *b == b'\t' || !b.is_ascii_control()
}

/// `\0`..`\9` in `template` stand for the regex groups.
pub(super) fn expand(template: &[u8], caps: &Captures<'_>, out: &mut Vec<u8>) {
    let mut i = 0;
    while i < template.len() {
        let b = template[i];
        if b == b'\\' && i + 1 < template.len() && template[i + 1].is_ascii_digit() {
            let group = usize::from(template[i + 1] - b'0');
            if let Some(m) = caps.get(group) {
                out.extend_from_slice(m.as_bytes());
            }
            i += 2;
        } else {
            out.push(b);
            i += 1;
        }
    }
}

/// Byte ranges of the header lines (after the start line, before the
/// final CRLF), each with its name and value ranges.
pub(super) struct Line {
    pub start: usize,
    pub end: usize,
    pub name: (usize, usize),
    pub value: (usize, usize),
}

pub(super) fn lines(head: &[u8]) -> impl Iterator<Item = Line> + '_ {
    let first_end = find_crlf(head, 0).map_or(head.len(), |p| p + 2);
    let mut pos = first_end;
    std::iter::from_fn(move || {
        let end = find_crlf(head, pos)?;
        if end == pos {
            return None;
        }
        let start = pos;
        pos = end + 2;
        let colon = head[start..end].iter().position(|&b| b == b':')? + start;
        let mut v = colon + 1;
        while v < end && (head[v] == b' ' || head[v] == b'\t') {
            v += 1;
        }
        Some(Line {
            start,
            end: end + 2,
            name: (start, colon),
            value: (v, end),
        })
    })
}

pub(super) fn find_crlf(head: &[u8], from: usize) -> Option<usize> {
    head.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| p + from)
}

fn named(head: &[u8], line: &Line, name: &str) -> bool {
    head[line.name.0..line.name.1].eq_ignore_ascii_case(name.as_bytes())
}

fn remove_fields(head: &mut Vec<u8>, name: &str, bufs: &mut EditBuffers) {
    if !lines(head).any(|l| named(head, &l, name)) {
        return;
    }
    let out = &mut bufs.scratch;
    out.clear();
    let mut copied = 0;
    for line in lines(head) {
        if named(head, &line, name) {
            out.extend_from_slice(&head[copied..line.start]);
            copied = line.end;
        }
    }
    out.extend_from_slice(&head[copied..]);
    std::mem::swap(head, out);
}

fn remove_empty(head: &mut Vec<u8>, name: &str, bufs: &mut EditBuffers) {
    let empty = |head: &[u8], l: &Line| named(head, l, name) && l.value.0 == l.value.1;
    if !lines(head).any(|l| empty(head, &l)) {
        return;
    }
    let out = &mut bufs.scratch;
    out.clear();
    let mut copied = 0;
    for line in lines(head) {
        if empty(head, &line) {
            out.extend_from_slice(&head[copied..line.start]);
            copied = line.end;
        }
    }
    out.extend_from_slice(&head[copied..]);
    std::mem::swap(head, out);
}

/// Inserts `name: value` before the final CRLF (in place: the iterator's
/// exact length lets `splice` move the tail once, without a temporary).
fn add_field(head: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    let at = head.len().saturating_sub(2);
    let line = name
        .iter()
        .chain(b": ")
        .chain(value)
        .chain(b"\r\n")
        .copied();
    head.splice(at..at, line);
}

/// Rewrites the value of each field named `name` for which `f` writes a
/// new value into its output and returns true.
fn map_fields(
    head: &mut Vec<u8>,
    name: &str,
    bufs: &mut EditBuffers,
    mut f: impl FnMut(&[u8], &mut Vec<u8>) -> bool,
) {
    if !lines(head).any(|l| named(head, &l, name)) {
        return;
    }
    let out = &mut bufs.scratch;
    out.clear();
    let mut copied = 0;
    for line in lines(head) {
        if !named(head, &line, name) {
            continue;
        }
        bufs.expanded.clear();
        if f(&head[line.value.0..line.value.1], &mut bufs.expanded) {
            out.extend_from_slice(&head[copied..line.value.0]);
            bufs.expanded.retain(allowed_in_value);
            out.extend_from_slice(&bufs.expanded);
            copied = line.value.1;
        }
    }
    out.extend_from_slice(&head[copied..]);
    std::mem::swap(head, out);
}

/// Replaces the whole request target of the start line by what `f`
/// writes (given the current one).
fn rewrite_whole_target(
    head: &mut Vec<u8>,
    bufs: &mut EditBuffers,
    f: impl FnOnce(&[u8], &mut Vec<u8>),
) {
    let Some(line_end) = find_crlf(head, 0) else {
        return;
    };
    let line = &head[..line_end];
    let (Some(sp1), Some(sp2)) = (
        line.iter().position(|&b| b == b' '),
        line.iter().rposition(|&b| b == b' '),
    ) else {
        return;
    };
    if sp2 <= sp1 {
        return;
    }
    let out = &mut bufs.scratch;
    out.clear();
    out.extend_from_slice(&head[..sp1 + 1]);
    let start = out.len();
    f(&head[sp1 + 1..sp2], out);
    drop_target_breaks(out, start);
    out.extend_from_slice(&head[sp2..]);
    std::mem::swap(head, out);
}

/// A request target is one token: a space or line break rendered into it
/// at run time (`set-path %[url_dec]` of a client's `%20`) would split the
/// request line, and a server could read another target or version than
/// percore did. Drops them from `out[start..]`.
fn drop_target_breaks(out: &mut Vec<u8>, start: usize) {
    let mut kept = start;
    for i in start..out.len() {
        let b = out[i];
        if !matches!(b, b' ' | b'\r' | b'\n' | b'\t') {
            out[kept] = b;
            kept += 1;
        }
    }
    out.truncate(kept);
}

/// `<method> <target> <version>`: replaces the method; an empty `method`
/// (the rendered value was no token) or a CONNECT request (its target is
/// an authority) leaves the line as it is.
fn set_method(head: &mut Vec<u8>, bufs: &mut EditBuffers, method: &[u8]) {
    let Some(sp) = head.iter().position(|&b| b == b' ') else {
        return;
    };
    if method.is_empty() || head[..sp] == *b"CONNECT" {
        return;
    }
    let out = &mut bufs.scratch;
    out.clear();
    out.extend_from_slice(method);
    out.extend_from_slice(&head[sp..]);
    std::mem::swap(head, out);
}

/// `HTTP/1.1 <code> <reason>`: the status line of a response head.
fn set_status(head: &mut Vec<u8>, bufs: &mut EditBuffers, code: u16, reason: &[u8]) {
    let Some(line_end) = find_crlf(head, 0) else {
        return;
    };
    let Some(sp) = head[..line_end].iter().position(|&b| b == b' ') else {
        return;
    };
    let out = &mut bufs.scratch;
    out.clear();
    out.extend_from_slice(&head[..sp + 1]);
    let _ = std::io::Write::write_fmt(out, format_args!("{code:03} "));
    out.extend(reason.iter().filter(|&&b| b != b'\r' && b != b'\n'));
    out.extend_from_slice(&head[line_end..]);
    std::mem::swap(head, out);
}

/// Rewrites the request target of the start line (`METHOD target
/// VERSION`): `f` gets the path and query and writes the new target.
fn rewrite_target(
    head: &mut Vec<u8>,
    bufs: &mut EditBuffers,
    f: impl FnOnce(&[u8], Option<&[u8]>, &mut Vec<u8>),
) {
    let Some(line_end) = find_crlf(head, 0) else {
        return;
    };
    let line = &head[..line_end];
    let Some(sp1) = line.iter().position(|&b| b == b' ') else {
        return;
    };
    let Some(sp2) = line.iter().rposition(|&b| b == b' ') else {
        return;
    };
    if sp2 <= sp1 {
        return;
    }
    let target = &head[sp1 + 1..sp2];
    // Absolute form keeps its scheme and authority.
    let path_start = match target.windows(3).position(|w| w == b"://") {
        Some(p) => target[p + 3..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(target.len(), |q| p + 3 + q),
        None => 0,
    };
    let (path, query) = match target[path_start..].iter().position(|&b| b == b'?') {
        Some(q) => (
            &target[path_start..path_start + q],
            Some(&target[path_start + q + 1..]),
        ),
        None => (&target[path_start..], None),
    };
    let out = &mut bufs.scratch;
    out.clear();
    out.extend_from_slice(&head[..sp1 + 1 + path_start]);
    let start = out.len();
    f(path, query, out);
    drop_target_breaks(out, start);
    out.extend_from_slice(&head[sp2..]);
    std::mem::swap(head, out);
}

/// Writes a Cookie value without cookie `name` (or with its `xxx~` prefix
/// removed); returns whether anything changed.
fn strip_cookie(value: &[u8], name: &[u8], prefix_only: bool, out: &mut Vec<u8>) -> bool {
    let mut changed = false;
    for pair in value.split(|&b| b == b';') {
        let trimmed = super::sample::trim(pair);
        let eq = trimmed.iter().position(|&b| b == b'=');
        let is_ours = eq.is_some_and(|e| super::sample::trim(&trimmed[..e]) == name);
        if is_ours {
            changed = true;
            if prefix_only {
                let Some(e) = eq else { continue };
                let v = &trimmed[e + 1..];
                let rest = match v.iter().position(|&b| b == b'~') {
                    Some(t) => &v[t + 1..],
                    None => v,
                };
                push_pair(out, name, rest);
            }
            continue;
        }
        if !trimmed.is_empty() {
            if !out.is_empty() {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(trimmed);
        }
    }
    changed
}

fn push_pair(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    if !out.is_empty() {
        out.extend_from_slice(b"; ");
    }
    out.extend_from_slice(name);
    out.push(b'=');
    out.extend_from_slice(value);
}

/// `NAME=value; attrs` → `NAME=server; attrs` or `NAME=server~value; attrs`.
fn rewrite_set_cookie(
    value: &[u8],
    name: &[u8],
    server: &[u8],
    prefix: bool,
    out: &mut Vec<u8>,
) -> bool {
    let first_end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
    let pair = &value[..first_end];
    let Some(eq) = pair.iter().position(|&b| b == b'=') else {
        return false;
    };
    if super::sample::trim(&pair[..eq]) != name {
        return false;
    }
    out.extend_from_slice(name);
    out.push(b'=');
    out.extend_from_slice(server);
    if prefix {
        out.push(b'~');
        out.extend_from_slice(super::sample::trim(&pair[eq + 1..]));
    }
    out.extend_from_slice(&value[first_end..]);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::sample::ConnFacts;
    use regex::bytes::Regex;

    fn facts_conn() -> ConnFacts {
        ConnFacts {
            pp: None,
            stick: Default::default(),
            vars: Default::default(),
            live: Default::default(),
            unique_id: Default::default(),
            captures: Default::default(),
            log_level: Default::default(),
            timeouts: Default::default(),
            early_hints: Default::default(),
            src: "192.0.2.1:4000".parse().unwrap(),
            dst: "127.0.0.1:80".parse().unwrap(),
            tls: None,
        }
    }

    fn run(head: &str, edits: &[Edit<'_>]) -> String {
        let conn = facts_conn();
        let facts = Facts::content(&conn, None);
        let mut h = head.as_bytes().to_vec();
        apply(&mut h, edits, &facts, &mut EditBuffers::default());
        String::from_utf8(h).unwrap()
    }

    const HEAD: &str = "GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nCookie: a=1; SRV=s1~abc; b=2\r\n\r\n";

    #[test]
    fn set_add_del_replace() {
        let set = HeaderEdit::Set {
            name: "X-A".into(),
            value: Format::literal(b"new"),
        };
        assert_eq!(
            run(HEAD, &[Edit::Rule(&set)]),
            "GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nCookie: a=1; SRV=s1~abc; b=2\r\nX-A: new\r\n\r\n"
        );
        let del = HeaderEdit::Del { name: "x-a".into() };
        let add = HeaderEdit::Add {
            name: "Y".into(),
            value: Format::literal(b"v"),
        };
        assert_eq!(
            run(HEAD, &[Edit::Rule(&del), Edit::Rule(&add)]),
            "GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nCookie: a=1; SRV=s1~abc; b=2\r\nY: v\r\n\r\n"
        );
        let replace = HeaderEdit::Replace {
            name: "host".into(),
            regex: Regex::new("^(.*)$").unwrap(),
            with: Format::literal(b"www.\\1"),
        };
        assert!(run(HEAD, &[Edit::Rule(&replace)]).contains("\r\nHost: www.h\r\n"));
    }

    /// Values rendered at run time can hold any byte (`url_dec` of a
    /// client's `%00`): control bytes never reach the server.
    #[test]
    fn control_bytes_in_rendered_values_are_dropped() {
        let set = HeaderEdit::Set {
            name: "X-A".into(),
            value: Format::literal(b"a\x00b\x1b[c\td\r\ne\x7f"),
        };
        assert!(run(HEAD, &[Edit::Rule(&set)]).contains("\r\nX-A: ab[c\tde\r\n"));
    }

    /// A target rendered at run time with a space or a line break in it
    /// would split the request line: they are dropped.
    #[test]
    fn spaces_in_rendered_targets_are_dropped() {
        let path = HeaderEdit::SetPath(Format::literal(b"/a b\tc"));
        let out = run(HEAD, &[Edit::Rule(&path)]);
        assert!(out.starts_with("GET /abc"), "{out}");
        assert_eq!(out.lines().next().map(|l| l.split(' ').count()), Some(3));
        let query = HeaderEdit::SetQuery(Format::literal(b"x=1 HTTP/1.0"));
        let out = run(HEAD, &[Edit::Rule(&query)]);
        assert_eq!(out.lines().next().map(|l| l.split(' ').count()), Some(3));
    }

    #[test]
    fn set_method() {
        let m = HeaderEdit::SetMethod(Format::literal(b"POST"));
        assert!(run(HEAD, &[Edit::Rule(&m)]).starts_with("POST /a/b?x=1 HTTP/1.1\r\nHost: h"));
        // Rendered values that are no token, and CONNECT, change nothing.
        for bad in [&b"GE T"[..], b"", b"CONNECT", b"G/T"] {
            let m = HeaderEdit::SetMethod(Format::literal(bad));
            assert!(run(HEAD, &[Edit::Rule(&m)]).starts_with("GET /a/b"));
        }
        let connect = "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n";
        let m = HeaderEdit::SetMethod(Format::literal(b"GET"));
        assert!(run(connect, &[Edit::Rule(&m)]).starts_with("CONNECT h:443"));
    }

    #[test]
    fn path_and_query() {
        let p = HeaderEdit::SetPath(Format::literal(b"/new"));
        assert!(run(HEAD, &[Edit::Rule(&p)]).starts_with("GET /new?x=1 HTTP/1.1\r\n"));
        let q = HeaderEdit::SetQuery(Format::literal(b"y=2"));
        assert!(run(HEAD, &[Edit::Rule(&q)]).starts_with("GET /a/b?y=2 HTTP/1.1\r\n"));
        let none = HeaderEdit::SetQuery(Format::literal(b""));
        assert!(run(HEAD, &[Edit::Rule(&none)]).starts_with("GET /a/b HTTP/1.1\r\n"));
        let abs = "GET http://h:8/p?q HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(run(abs, &[Edit::Rule(&p)]).starts_with("GET http://h:8/new?q HTTP/1.1"));
    }

    #[test]
    fn cookies() {
        let strip = Edit::StripCookie {
            name: "SRV",
            prefix_only: true,
        };
        assert!(run(HEAD, &[strip]).contains("\r\nCookie: a=1; SRV=abc; b=2\r\n"));
        let drop = Edit::StripCookie {
            name: "SRV",
            prefix_only: false,
        };
        assert!(run(HEAD, &[drop]).contains("\r\nCookie: a=1; b=2\r\n"));
        let only = "GET / HTTP/1.1\r\nCookie: SRV=s1\r\n\r\n";
        assert_eq!(run(only, &[drop]), "GET / HTTP/1.1\r\n\r\n");
        let res = "HTTP/1.1 200 OK\r\nSet-Cookie: SRV=xyz; Path=/\r\n\r\n";
        let set = Edit::SetCookieValue {
            name: "SRV",
            server: "s2",
            prefix: true,
        };
        assert!(run(res, &[set]).contains("Set-Cookie: SRV=s2~xyz; Path=/\r\n"));
    }
}
