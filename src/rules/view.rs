//! The request as the `http-request` rules have rewritten it so far.
//! HAProxy runs each rule on the current message, so a rule sees the
//! headers, path and query that earlier rules set or removed. Until a rule
//! rewrites something the current request is the parsed head itself (no
//! copy, no allocation); the first rewrite serializes it once into a
//! per-connection buffer, and each rewrite then edits that buffer.
//!
//! What decides framing and the connection (version, body framing,
//! keep-alive, upgrade) always comes from the request as received; the
//! method is the rewritten one (`set-method`), and the session reads the
//! server's response by the method it was sent: rules cannot rewrite Content-Length, Transfer-Encoding or
//! Connection (refused at load).

use super::action::HeaderEdit;
use super::edit::{self, find_crlf, lines, EditBuffers};
use super::sample::{trim, ConnFacts, Facts};
use super::{HttpRules, Step, Verdict};
use crate::http::request::{split_target, strip_userinfo};
use crate::http::{HeaderSpan, Headers, Method, RequestHead, TargetForm};

/// The rewritten request of one connection (reused from request to
/// request).
#[derive(Debug, Default)]
pub struct RequestView {
    /// Start line, fields and the blank line, as `edit` rewrites them.
    head: Vec<u8>,
    spans: Vec<HeaderSpan>,
    /// Whether `head` holds the current request (a rule rewrote it).
    rewritten: bool,
}

impl RequestView {
    /// Forgets the previous request.
    pub fn clear(&mut self) {
        self.rewritten = false;
    }

    pub fn is_rewritten(&self) -> bool {
        self.rewritten
    }

    /// The current request: `received` until a rule rewrote it.
    pub fn current<'v>(&'v self, received: &RequestHead<'v>) -> RequestHead<'v> {
        if !self.rewritten {
            return *received;
        }
        let mut head = *received;
        head.headers = Headers::new(&self.head, &self.spans);
        if let Some(method) = self.method() {
            // `set-method`: rules after it, and the server, see the new
            // one (never CONNECT: `edit` refuses to write it).
            head.method = method;
            head.method_kind = Method::from_token(method);
        }
        if let Some(target) = self.target() {
            let (form, path, query) = split_target(head.method_kind, target).unwrap_or_else(|_| {
                // set-path may write something that is no valid target;
                // the rules still see it as written.
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p, Some(q)),
                    None => (target, None),
                };
                (TargetForm::Origin, path, query)
            });
            head.target = target;
            head.form = form;
            head.path = path;
            head.query = query;
        }
        head.host = head.headers.find("host").map(trim).or(match head.form {
            TargetForm::Absolute { authority, .. } => Some(strip_userinfo(authority).as_bytes()),
            _ => None,
        });
        head
    }

    /// Applies `edit`, whose value [`edit::prepare`] rendered into `bufs`
    /// from the current request, to the current request.
    pub fn apply(&mut self, received: &RequestHead<'_>, edit: &HeaderEdit, bufs: &mut EditBuffers) {
        if !self.rewritten {
            self.serialize(received);
            self.rewritten = true;
        }
        edit::apply_prepared(&mut self.head, edit, bufs);
        field_spans(&self.head, &mut self.spans);
    }

    fn serialize(&mut self, received: &RequestHead<'_>) {
        let out = &mut self.head;
        out.clear();
        out.extend_from_slice(received.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(received.target.as_bytes());
        out.push(b' ');
        out.extend_from_slice(received.version.as_str().as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in received.headers.iter() {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The method of the rewritten start line.
    fn method(&self) -> Option<&str> {
        let sp = self.head.iter().position(|&b| b == b' ')?;
        std::str::from_utf8(&self.head[..sp]).ok()
    }

    /// The request target of the rewritten start line; `None` if it is not
    /// UTF-8 (a rendered value may not be), then the received one stays.
    fn target(&self) -> Option<&str> {
        let line = &self.head[..find_crlf(&self.head, 0)?];
        let first = line.iter().position(|&b| b == b' ')?;
        let last = line.iter().rposition(|&b| b == b' ')?;
        (last > first)
            .then(|| std::str::from_utf8(&line[first + 1..last]).ok())
            .flatten()
    }
}

/// The fields of a serialized head (start line, fields, blank line) as
/// spans, values without surrounding whitespace, for `Headers::new`.
pub(crate) fn field_spans(head: &[u8], spans: &mut Vec<HeaderSpan>) {
    spans.clear();
    for line in lines(head) {
        let value = trim(&head[line.value.0..line.value.1]);
        // `value` is a subslice of `head`: its offset is its position.
        let start = value.as_ptr() as usize - head.as_ptr() as usize;
        spans.push(HeaderSpan::new(
            line.name.0..line.name.1,
            start..start + value.len(),
        ));
    }
}

/// Where [`run_request_rules`] stopped.
#[derive(Debug, Clone, Copy)]
pub enum RuleRun<'c> {
    Done(Verdict<'c>),
    /// A stick-table action to perform, then resume at `next`.
    Stick {
        next: usize,
        action: &'c crate::stick::StickAction,
    },
    /// Rule `at` needs stick-table entries: resolve them, then resume
    /// at `at`.
    Lookup {
        at: usize,
    },
}

/// Runs one section's `http-request` rules from rule `from`, each on the
/// request as the rules before it left it; rewrites go to `view`. Stops
/// at what needs the stick tables (the caller awaits it and resumes).
pub fn run_request_rules<'c>(
    rules: &'c HttpRules,
    conn: &ConnFacts,
    received: &RequestHead<'_>,
    view: &mut RequestView,
    bufs: &mut EditBuffers,
    from: usize,
) -> RuleRun<'c> {
    let mut from = from;
    loop {
        let edit = {
            let current = view.current(received);
            let facts = Facts::request(conn, &current);
            match rules.step_request(from, &facts) {
                Step::Done(verdict) => return RuleRun::Done(verdict),
                Step::Stick { next, action } => return RuleRun::Stick { next, action },
                Step::Lookup { at } => return RuleRun::Lookup { at },
                Step::Edit { next, edit } => {
                    // Rendered now: `%[...]` reads the request as it is
                    // before this rule.
                    edit::prepare(edit, &facts, bufs);
                    if facts.conn.stick.wants() {
                        // The value reads a stick-table entry
                        // (`%[src,table_http_req_rate(t)]`): fetch it,
                        // then run this rule again.
                        return RuleRun::Lookup { at: next - 1 };
                    }
                    from = next;
                    edit
                }
            }
        };
        view.apply(received, edit, bufs);
    }
}
