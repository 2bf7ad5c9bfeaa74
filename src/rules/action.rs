//! `http-request`, `http-response` and `use_backend` rules, evaluated in
//! order against one message.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use regex::bytes::Regex;

use super::cond::{holds, Acl, Condition};
use super::format::Format;
use super::sample::Facts;

/// A rule with its optional condition.
#[derive(Debug, Clone)]
pub struct Rule<A> {
    pub action: A,
    pub cond: Option<Condition>,
}

/// A header or start-line rewrite.
#[derive(Debug, Clone)]
pub enum HeaderEdit {
    /// Removes every field named so, then adds one.
    Set {
        name: Box<str>,
        value: Format,
    },
    Add {
        name: Box<str>,
        value: Format,
    },
    Del {
        name: Box<str>,
    },
    /// Each field named so whose value matches becomes the replacement,
    /// with `\1`..`\9` standing for the groups.
    Replace {
        name: Box<str>,
        regex: Regex,
        with: Format,
    },
    /// The path of the request target, query kept.
    SetPath(Format),
    /// The query string (without `?`; an empty result removes it).
    SetQuery(Format),
    /// `replace-path <regex> <fmt>`: a path the regex matches becomes the
    /// expanded replacement (`\1`..`\9`), query kept.
    ReplacePath {
        regex: Regex,
        with: Format,
    },
    /// `replace-uri <regex> <fmt>`: the same on the whole target.
    ReplaceUri {
        regex: Regex,
        with: Format,
    },
    /// `set-uri <fmt>`: the whole request target.
    SetUri(Format),
    /// `replace-value <name> <regex> <fmt>`: as `replace-header`, on each
    /// comma-separated value of the fields.
    ReplaceValue {
        name: Box<str>,
        regex: Regex,
        with: Format,
    },
    /// `set-method <fmt>`: the method of the request line. A rendered
    /// value that is no token, or CONNECT, leaves the method unchanged
    /// (CONNECT's target and tunnel are decided on the received request).
    SetMethod(Format),
    /// `normalize-uri <kind>`: the request target normalized.
    NormalizeUri(super::normalize::NormalizeUri),
    /// `set-status <code> [reason <text>]` (responses).
    SetStatus {
        code: u16,
        reason: Option<Box<str>>,
    },
}

#[derive(Debug, Clone)]
pub enum RedirectTarget {
    /// `scheme <s>`: same host and URI with another scheme.
    Scheme(Box<str>),
    /// `location <url>`: exactly this.
    Location(Format),
    /// `prefix <p>`: the prefix followed by the request's URI.
    Prefix(Format),
}

#[derive(Debug, Clone)]
pub struct Redirect {
    pub target: RedirectTarget,
    pub code: u16,
    pub drop_query: bool,
    /// `append-slash`: a path not ending with `/` gets one (prefix and
    /// scheme redirects, which carry the request's path).
    pub append_slash: bool,
    /// `set-cookie` / `clear-cookie`: a Set-Cookie field on the redirect.
    pub cookie: Option<RedirectCookie>,
}

/// The cookie a redirect sets or clears, as written (`NAME[=value]`).
#[derive(Debug, Clone)]
pub enum RedirectCookie {
    /// `Set-Cookie: NAME[=value]; path=/;`.
    Set(Box<str>),
    /// `Set-Cookie: NAME[=]; path=/; Max-Age=0;`.
    Clear(Box<str>),
}

/// A response percore builds itself (`return`).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<Box<str>>,
    pub body: Box<[u8]>,
    /// `lf-string <fmt>`: a body rendered per request (instead of `body`).
    pub lf_body: Option<Format>,
    /// `hdr <name> <fmt>`: fields added to the answer.
    pub headers: Vec<(Box<str>, Format)>,
}

#[derive(Debug, Clone)]
pub enum RequestAction {
    /// Stops evaluating this section's `http-request` rules.
    Allow,
    Deny {
        status: u16,
    },
    /// Closes the connection without a response.
    Reject,
    /// Holds the connection for `timeout tarpit`, then answers `status`.
    Tarpit {
        status: u16,
    },
    /// 401 with a basic-auth challenge for `realm`.
    Auth {
        realm: Box<str>,
    },
    Redirect(Redirect),
    Return(Reply),
    Edit(HeaderEdit),
    /// `track-sc*`, `sc-inc-gpc0`, `sc-set-gpt0`: done by the session
    /// (the entry may live on another core), then the rules go on.
    Stick(crate::stick::StickAction),
    /// `set-var`, `set-var-fmt`, `unset-var`: runs and goes on.
    SetVar(super::vars::SetVarRef),
    /// `capture <sample> len|id <n>`: fills a capture slot, goes on.
    Capture(super::capture::CaptureRule),
    /// `set-log-level <level>`: the request's log line, goes on.
    SetLogLevel(LogLevel),
    /// `set-timeout server|tunnel <time>`: this request's timeout, goes on.
    SetTimeout(TimeoutOverride),
    /// `early-hint <name> <fmt>`: a field of the 103 Early Hints sent
    /// before the request is forwarded, goes on.
    EarlyHint {
        name: Box<str>,
        value: Format,
    },
}

/// `set-timeout server|tunnel <time>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutOverride {
    Server(std::time::Duration),
    Tunnel(std::time::Duration),
}

/// The timeouts rules set for the current request (`None`: the
/// sections').
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxnTimeouts {
    pub server: Option<std::time::Duration>,
    pub tunnel: Option<std::time::Duration>,
}

/// The level of a request's log line (`set-log-level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// No line at all.
    Silent,
    /// A syslog severity, 0 (emerg) to 7 (debug).
    Severity(u8),
}

#[derive(Debug, Clone)]
pub enum ResponseAction {
    /// Replaces the response with an error page (`status`, 502 by default).
    Deny {
        status: u16,
    },
    Edit(HeaderEdit),
    /// `set-var`, `set-var-fmt`, `unset-var`: runs and goes on.
    SetVar(super::vars::SetVarRef),
    /// `return ...`: the server's response is dropped and this one sent.
    Return(Reply),
    /// `redirect location <fmt> ...`: the same with a redirect.
    Redirect(Redirect),
    /// `capture <sample> id <n>`: fills a capture slot, goes on.
    Capture(super::capture::CaptureRule),
    /// `set-log-level <level>`: the request's log line, goes on.
    SetLogLevel(LogLevel),
}

/// How the response rules of a section ended, when a rule ended them.
#[derive(Debug, Clone, Copy)]
pub enum ResponseEnd<'r> {
    /// `deny`: an error page with this status instead of the response.
    Deny(u16),
    /// `return`: this answer instead of the response.
    Return(&'r Reply),
    /// `redirect`: this redirect instead of the response.
    Redirect(&'r Redirect),
}

/// How the request rules of one section ended.
#[derive(Debug, Clone, Copy)]
pub enum Verdict<'r> {
    /// Go on (all rules ran, or `allow` stopped them).
    Forward,
    Deny(u16),
    Reject,
    Tarpit(u16),
    Auth(&'r str),
    Redirect(&'r Redirect),
    Return(&'r Reply),
    /// A rule found the request invalid (`normalize-uri ... strict` and
    /// an invalid `%`-sequence): 400, logged and counted as a bad request
    /// (HAProxy's ACT_RET_INV).
    BadRequest,
}

/// One step of [`HttpRules::step_request`].
#[derive(Debug, Clone, Copy)]
pub enum Step<'r> {
    /// A rule rewrites the request; evaluation resumes at rule `next`.
    Edit { next: usize, edit: &'r HeaderEdit },
    /// A stick-table action to perform; evaluation resumes at `next`.
    Stick {
        next: usize,
        action: &'r crate::stick::StickAction,
    },
    /// Rule `at` needs stick-table entries first
    /// (`crate::stick::Tracked::resolve`), then is evaluated again.
    Lookup { at: usize },
    /// The evaluation ended.
    Done(Verdict<'r>),
}

/// One step of [`HttpRules::step_response`].
#[derive(Debug, Clone, Copy)]
pub enum ResponseStep<'r> {
    /// A rule rewrites the response; evaluation resumes at rule `next`.
    Edit { next: usize, edit: &'r HeaderEdit },
    /// The evaluation ended; `Some`: a rule replaces the response.
    Done(Option<ResponseEnd<'r>>),
}

/// The routing rules of a frontend or a backend.
#[derive(Debug, Clone, Default)]
pub struct HttpRules {
    pub acls: Vec<Acl>,
    pub request: Vec<Rule<RequestAction>>,
    pub response: Vec<Rule<ResponseAction>>,
    /// `use_backend` (frontends): backend ids resolved at load, or names
    /// rendered per request (`use_backend %[...]`).
    pub use_backend: Vec<Rule<UseBackend>>,
}

impl HttpRules {
    pub fn is_empty(&self) -> bool {
        self.request.is_empty() && self.response.is_empty() && self.use_backend.is_empty()
    }

    /// Runs the `http-request` rules in order. Edits whose condition holds
    /// are pushed to `edits` (to be applied to the outgoing head); the
    /// first final action ends the evaluation. Every rule sees the request
    /// as received: use [`HttpRules::step_request`] for rules that must see
    /// the rewrites of earlier ones.
    pub fn eval_request<'r>(
        &'r self,
        facts: &Facts<'_>,
        edits: &mut Vec<&'r HeaderEdit>,
    ) -> Verdict<'r> {
        let mut from = 0;
        loop {
            match self.step_request(from, facts) {
                Step::Done(verdict) => return verdict,
                Step::Edit { next, edit } => {
                    edits.push(edit);
                    from = next;
                }
                // Synchronous evaluation cannot reach other cores: stick
                // actions are the session's (`proxy::http::route`), and a
                // rule that needs an entry is passed over.
                Step::Stick { next, .. } => from = next,
                Step::Lookup { at } => {
                    facts.conn.stick.next_rule();
                    from = at + 1;
                }
            }
        }
    }

    /// Runs the `http-request` rules from index `from` until one whose
    /// condition holds rewrites the request or ends the evaluation. The
    /// caller applies a rewrite and resumes at `next` with facts of the
    /// rewritten request, so that later rules see it (HAProxy runs each
    /// rule on the current message).
    pub fn step_request<'r>(&'r self, from: usize, facts: &Facts<'_>) -> Step<'r> {
        for (index, rule) in self.request.iter().enumerate().skip(from) {
            let held = holds(&rule.cond, &self.acls, facts);
            if facts.conn.stick.wants() {
                return Step::Lookup { at: index };
            }
            if !held {
                continue;
            }
            let verdict = match &rule.action {
                RequestAction::Allow => Verdict::Forward,
                RequestAction::Deny { status } => Verdict::Deny(*status),
                RequestAction::Reject => Verdict::Reject,
                RequestAction::Tarpit { status } => Verdict::Tarpit(*status),
                RequestAction::Auth { realm } => Verdict::Auth(realm),
                RequestAction::Redirect(r) => Verdict::Redirect(r),
                RequestAction::Return(r) => Verdict::Return(r),
                RequestAction::Edit(HeaderEdit::NormalizeUri(kind))
                    if facts
                        .req
                        .is_some_and(|req| kind.refuses(req.target.as_bytes())) =>
                {
                    Verdict::BadRequest
                }
                RequestAction::Edit(edit) => {
                    return Step::Edit {
                        next: index + 1,
                        edit,
                    }
                }
                RequestAction::Stick(action) => {
                    return Step::Stick {
                        next: index + 1,
                        action,
                    }
                }
                RequestAction::Capture(capture) => {
                    capture.run(facts);
                    continue;
                }
                RequestAction::SetLogLevel(level) => {
                    facts.conn.log_level.set(Some(*level));
                    continue;
                }
                RequestAction::EarlyHint { name, value } => {
                    let mut hints = facts.conn.early_hints.borrow_mut();
                    hints.extend_from_slice(name.as_bytes());
                    hints.extend_from_slice(b": ");
                    let start = hints.len();
                    value.render(facts, &mut hints);
                    // A rendered value must not break the interim head.
                    let mut kept = start;
                    for i in start..hints.len() {
                        let b = hints[i];
                        if b == b'\t' || !b.is_ascii_control() {
                            hints[kept] = b;
                            kept += 1;
                        }
                    }
                    hints.truncate(kept);
                    hints.extend_from_slice(b"\r\n");
                    continue;
                }
                RequestAction::SetTimeout(t) => {
                    let mut timeouts = facts.conn.timeouts.get();
                    match *t {
                        TimeoutOverride::Server(d) => timeouts.server = Some(d),
                        TimeoutOverride::Tunnel(d) => timeouts.tunnel = Some(d),
                    }
                    facts.conn.timeouts.set(timeouts);
                    continue;
                }
                RequestAction::SetVar(set) => {
                    set.run(facts);
                    if facts.conn.stick.wants() {
                        // The expression reads a stick-table entry: fetch
                        // it, then set the variable again.
                        return Step::Lookup { at: index };
                    }
                    continue;
                }
            };
            return Step::Done(verdict);
        }
        Step::Done(Verdict::Forward)
    }

    /// Whether these rules can serve a request without a backend: a
    /// `use_backend`, or an `http-request` rule that answers (deny,
    /// reject, tarpit, redirect, return).
    pub fn answers_without_backend(&self) -> bool {
        !self.use_backend.is_empty()
            || self.request.iter().any(|r| {
                !matches!(
                    r.action,
                    RequestAction::Allow
                        | RequestAction::Auth { .. }
                        | RequestAction::Edit(_)
                        | RequestAction::Stick(_)
                        | RequestAction::SetVar(_)
                        | RequestAction::Capture(_)
                        | RequestAction::SetLogLevel(_)
                        | RequestAction::SetTimeout(_)
                        | RequestAction::EarlyHint { .. }
                )
            })
    }

    /// Runs the `http-response` rules; `Some` when one replaces the
    /// response.
    /// Every rule sees the response as received: use
    /// [`HttpRules::step_response`] for rules that must see the rewrites of
    /// earlier ones.
    pub fn eval_response<'r>(
        &'r self,
        facts: &Facts<'_>,
        edits: &mut Vec<&'r HeaderEdit>,
    ) -> Option<ResponseEnd<'r>> {
        let mut from = 0;
        loop {
            match self.step_response(from, facts) {
                ResponseStep::Done(denied) => return denied,
                ResponseStep::Edit { next, edit } => {
                    edits.push(edit);
                    from = next;
                }
            }
        }
    }

    /// Runs the `http-response` rules from index `from` until one whose
    /// condition holds rewrites the response or replaces it (as
    /// [`HttpRules::step_request`]).
    pub fn step_response<'r>(&'r self, from: usize, facts: &Facts<'_>) -> ResponseStep<'r> {
        for (index, rule) in self.response.iter().enumerate().skip(from) {
            if !holds(&rule.cond, &self.acls, facts) {
                continue;
            }
            return match &rule.action {
                ResponseAction::SetVar(set) => {
                    set.run(facts);
                    continue;
                }
                ResponseAction::Capture(capture) => {
                    capture.run(facts);
                    continue;
                }
                ResponseAction::SetLogLevel(level) => {
                    facts.conn.log_level.set(Some(*level));
                    continue;
                }
                ResponseAction::Deny { status } => {
                    ResponseStep::Done(Some(ResponseEnd::Deny(*status)))
                }
                ResponseAction::Return(reply) => {
                    ResponseStep::Done(Some(ResponseEnd::Return(reply)))
                }
                ResponseAction::Redirect(r) => ResponseStep::Done(Some(ResponseEnd::Redirect(r))),
                ResponseAction::Edit(edit) => ResponseStep::Edit {
                    next: index + 1,
                    edit,
                },
            };
        }
        ResponseStep::Done(None)
    }

    /// The first `use_backend` whose condition holds.
    pub fn pick_backend(&self, facts: &Facts<'_>) -> Option<usize> {
        self.use_backend
            .iter()
            .filter(|r| holds(&r.cond, &self.acls, facts))
            .find_map(|r| r.action.resolve(facts))
    }
}

/// Where a `use_backend` rule sends the request.
#[derive(Debug, Clone)]
pub enum UseBackend {
    /// A backend named in the rule, resolved at load.
    Id(usize),
    /// `use_backend %[req.hdr(host),lower,map(hosts.map,default)]`: the
    /// name is rendered per request and looked up among the backends; a
    /// name that is no backend skips the rule (the next rules, then
    /// `default_backend`, decide).
    Dynamic(Arc<DynamicBackend>),
}

#[derive(Debug)]
pub struct DynamicBackend {
    pub name: Format,
    /// Backend name -> id.
    pub ids: HashMap<Box<[u8]>, usize>,
}

thread_local! {
    /// Where a dynamic backend name is rendered: reused, so that routing
    /// allocates nothing once it grew to the longest name.
    static NAME: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl UseBackend {
    pub fn resolve(&self, facts: &Facts<'_>) -> Option<usize> {
        match self {
            UseBackend::Id(id) => Some(*id),
            UseBackend::Dynamic(d) => NAME.with(|buf| {
                let mut buf = buf.borrow_mut();
                buf.clear();
                d.name.render(facts, &mut buf);
                d.ids.get(&buf[..]).copied()
            }),
        }
    }

    /// The backend, when the rule names one.
    pub fn static_id(&self) -> Option<usize> {
        match self {
            UseBackend::Id(id) => Some(*id),
            UseBackend::Dynamic(_) => None,
        }
    }
}
