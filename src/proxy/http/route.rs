//! Routing for one HTTP session: runs the frontend's and the chosen
//! backend's rules on each parsed request head (`http-request`,
//! `use_backend`), computes what balancing needs (hash, persistence
//! cookie), writes the outgoing head with its rewrites, and builds the
//! responses percore answers itself. `ResponseHook` does the same for
//! response heads (`http-response`, cookie insertion).
//!
//! The session calls [`request`] once per request and, for local answers,
//! [`answer`]; the exchange calls [`ResponseHook::apply`] once per response
//! head. A request that no rule rewrites costs no allocation.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use crate::net::proxy_protocol::Tlvs;

use super::client::ClientIo;
use super::io::{Clock, Lane, Shared};
use crate::backend::PickHint;
use crate::config::{Backend, Config, CookieMode, Frontend, HeaderCapture, Timeouts};
use crate::http::{
    write_request_head, BodyFraming, ClientSide, ConnectionMode, HeaderSpan, Headers, Method,
    RequestHead, ResponseHead,
};
use crate::rules::edit::{self, Edit, EditBuffers};
use crate::rules::reply::{write_auth, write_redirect, write_reply};
use crate::rules::view::{field_spans, run_request_rules, RuleRun};
use crate::rules::{
    CaptureSide, ConnFacts, Facts, HttpRules, RequestView, ResponseEnd, ResponseStep, TlsFacts,
    Verdict,
};
use crate::stick::{persist, Key, Scope, TableDef, Tracked};
use std::sync::Arc;

/// Per-connection routing state and reusable buffers.
pub(super) struct RouteState<'c> {
    pub conn: ConnFacts,
    /// For the backend's balancing of the current request.
    pub hint: PickHint,
    edits: Vec<Edit<'c>>,
    pub(super) bufs: EditBuffers,
    /// The request as the rules rewrote it.
    view: RequestView,
    /// The fields of a response head the rules rewrote.
    response_fields: Vec<HeaderSpan>,
    /// A local answer being sent.
    pub answer: Vec<u8>,
    /// Entries the backend's `stick on|store-request` rules write the
    /// server into once it answers.
    stick_keys: Vec<(Arc<TableDef>, Key)>,
    /// The method of the request as forwarded (`set-method` may change
    /// it): the server's response is read by it (HEAD: no body).
    pub sent_method: Method,
    /// The client's request is a HEAD.
    client_head: bool,
}

impl RouteState<'_> {
    /// `tls` is `Some` on a TLS client connection (`ssl_fc`, `ssl_fc_sni`).
    pub fn new(
        src: SocketAddr,
        dst: SocketAddr,
        tls: Option<TlsFacts>,
        pp: Option<Rc<Tlvs>>,
        stick: Tracked,
        live: crate::rules::sample::Live,
        vars: Rc<crate::rules::vars::Vars>,
    ) -> Self {
        RouteState {
            conn: ConnFacts {
                src,
                dst,
                tls,
                pp,
                stick,
                vars,
                live,
                unique_id: Default::default(),
                captures: Default::default(),
                log_level: Default::default(),
                timeouts: Default::default(),
                early_hints: Default::default(),
            },
            hint: PickHint::default(),
            edits: Vec::new(),
            bufs: EditBuffers::default(),
            view: RequestView::default(),
            response_fields: Vec::new(),
            answer: Vec::new(),
            stick_keys: Vec::new(),
            sent_method: Method::Get,
            client_head: false,
        }
    }
}

impl<'c> RouteState<'c> {
    /// The response side of the current request, answered by `server` of
    /// `backend`.
    pub fn response_hook<'a>(
        &'a mut self,
        frontend: &'c Frontend,
        backend: &'c Backend,
        server: usize,
    ) -> ResponseHook<'a, 'c> {
        ResponseHook {
            conn: &self.conn,
            frontend: &frontend.rules,
            backend,
            server,
            directed: self.hint.sticky == Some(server),
            head_only: self.client_head,
            response_captures: &frontend.log.response_captures,
            cookie_capture: frontend.log.cookie_capture.as_ref(),
            edits: &mut self.edits,
            fields: &mut self.response_fields,
            bufs: &mut self.bufs,
            stick_keys: &mut self.stick_keys,
        }
    }
}

/// One section's `http-request` rules, with their stick-table steps
/// done in between (the entries may live on other cores).
async fn section_rules<'c>(
    rules: &'c HttpRules,
    st: &mut RouteState<'_>,
    head: &RequestHead<'_>,
) -> Verdict<'c> {
    let mut from = 0;
    loop {
        match run_request_rules(rules, &st.conn, head, &mut st.view, &mut st.bufs, from) {
            RuleRun::Done(verdict) => {
                st.conn.stick.next_rule();
                return verdict;
            }
            // Boxed: see `request`.
            RuleRun::Lookup { at } => {
                Box::pin(st.conn.stick.resolve()).await;
                from = at;
            }
            RuleRun::Stick { next, action } => {
                let key = {
                    let current = st.view.current(head);
                    action.key(&Facts::request(&st.conn, &current))
                };
                Box::pin(st.conn.stick.perform(action, key, Scope::Request)).await;
                from = next;
            }
        }
    }
}

/// What to do with a request.
pub(super) enum Routed {
    /// Forward to this backend; the head is in the session's head buffer.
    Forward(usize),
    /// Answer without a server.
    Local(LocalAnswer),
}

#[derive(Debug, Clone, Copy)]
pub(super) enum LocalAnswer {
    /// Close at once, no response (`reject`).
    Reject,
    /// An error page, then close (`deny`). `backend`: a rule of this
    /// backend denied, its errorfiles apply before the frontend's.
    Deny { status: u16, backend: Option<usize> },
    /// Hold the request for `hold` (`timeout tarpit`), then an error page.
    Tarpit {
        status: u16,
        hold: Duration,
        backend: Option<usize>,
    },
    /// A rule found the request invalid: 400, then close. `backend`: as
    /// for `Deny`.
    BadRequest { backend: Option<usize> },
    /// No `use_backend` matched and the frontend has no
    /// `default_backend`: a 503, logged `<NOSRV>` (HAProxy).
    NoBackend,
    /// `RouteState::answer` holds the response; close after it if set.
    Prepared { close: bool },
}

/// Evaluates the rules for one request and, unless it is answered
/// locally, writes the head to forward into `out` (cleared first), with
/// the HTTP settings of the frontend and the backend the rules chose.
///
/// Order, as HAProxy: the frontend's `http-request` rules, its
/// `use_backend` rules (else `default_backend`), the backend's
/// `http-request` rules; each rule sees the request as the rules before
/// it rewrote it. X-Forwarded-For and the Connection field are written
/// after all rules, as HAProxy adds them last.
pub(super) async fn request<'c>(
    st: &mut RouteState<'c>,
    config: &'c Config,
    fe: &'c Frontend,
    head: &RequestHead<'_>,
    side: &ClientSide,
    out: &mut Vec<u8>,
) -> Routed {
    st.edits.clear();
    st.view.clear();
    st.conn.captures.clear();
    st.conn.log_level.set(None);
    st.conn.timeouts.set(Default::default());
    st.conn.early_hints.borrow_mut().clear();
    st.sent_method = head.method_kind;
    st.client_head = head.method_kind == Method::Head;
    // The connection's tracked entries count this request (HAProxy
    // counts each request of the stream's tracked counters). Each stick
    // table step is awaited boxed, only where tables are: inline, their
    // futures would make this one larger for every request, and an
    // awaited future is moved whole and kept twice in its caller's
    // (rust-lang/rust #62958), up to the session's.
    if st.conn.stick.core().is_some() {
        Box::pin(st.conn.stick.new_request()).await;
    }
    st.conn.vars.new_transaction();
    // Only requests without a body can keep the connection after a local
    // answer: the body would otherwise be read as the next request.
    let close = !head.keep_alive
        || !matches!(
            head.framing,
            BodyFraming::None | BodyFraming::ContentLength(0)
        );
    let head_only = head.method_kind == Method::Head;

    if let Some(c) = &fe.log.cookie_capture {
        let found = head
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
            .find_map(|(_, v)| crate::rules::Captured::cookie_from(v, &c.name, c.len, false));
        st.conn.captures.cookie.borrow_mut().0 = found;
    }
    let verdict = section_rules(&fe.rules, st, head).await;
    let answer = Answer {
        head_only,
        close,
        section: &fe.name,
        timeouts: &fe.timeouts,
        backend: None,
    };
    if let Some(local) = local(&mut st.answer, verdict, &answer, &st.conn, &st.view, head) {
        return Routed::Local(local);
    }
    let chosen = {
        let current = st.view.current(head);
        let facts = Facts::request(&st.conn, &current);
        fe.rules.pick_backend(&facts).or(fe.default_backend)
    };
    let Some(backend_id) = chosen else {
        return Routed::Local(LocalAnswer::NoBackend);
    };
    let be: &'c Backend = &config.backends[backend_id];
    let verdict = section_rules(&be.rules, st, head).await;
    let answer = Answer {
        section: &be.name,
        timeouts: &be.timeouts,
        backend: Some(backend_id),
        ..answer
    };
    if let Some(local) = local(&mut st.answer, verdict, &answer, &st.conn, &st.view, head) {
        return Routed::Local(local);
    }

    // `stick match|on`: the server the entry names (looked up where the
    // entry lives), unless the persistence cookie named one.
    st.stick_keys.clear();
    let mut stuck = None;
    if let (false, Some(core)) = (be.stick_rules.is_empty(), st.conn.stick.core()) {
        let current = st.view.current(head);
        let facts = Facts::request(&st.conn, &current);
        let acls = &be.rules.acls;
        let matched = persist::matched(&be.stick_rules, acls, &facts, core, be.servers.len());
        stuck = Box::pin(matched).await;
        st.stick_keys = persist::request_keys(&be.stick_rules, acls, &facts);
    }
    let current = st.view.current(head);
    st.sent_method = current.method_kind;
    let facts = Facts::request(&st.conn, &current);
    st.hint = PickHint {
        hash: be
            .balance_params
            .key
            .as_ref()
            .and_then(|k| k.hash(&current)),
        sticky: None,
    };
    if let Some(cookie) = &be.cookie {
        if let Some(value) = cookie.requested(&current) {
            st.hint.sticky = be
                .servers
                .iter()
                .position(|s| s.cookie.as_deref().map(str::as_bytes) == Some(value));
            match cookie.mode {
                CookieMode::Prefix => st.edits.push(Edit::StripCookie {
                    name: &cookie.name,
                    prefix_only: true,
                }),
                CookieMode::Insert if cookie.indirect => st.edits.push(Edit::StripCookie {
                    name: &cookie.name,
                    prefix_only: false,
                }),
                _ => {}
            }
        }
    }
    if st.hint.sticky.is_none() {
        st.hint.sticky = stuck;
    }

    let http = fe.http_for(backend_id);
    // http-server-close on the frontend or the backend closes the server
    // side after each response (HAProxy: set in either, it applies).
    let mode = if head.upgrade.is_some() {
        ConnectionMode::Upgrade
    } else if http.server_close {
        ConnectionMode::Close
    } else {
        ConnectionMode::KeepAlive
    };
    out.clear();
    write_request_head(out, &current, &http.rewrite, side, mode);
    if !st.edits.is_empty() {
        edit::apply(out, &st.edits, &facts, &mut st.bufs);
    }
    Routed::Forward(backend_id)
}

/// What a local answer depends on besides the verdict.
#[derive(Clone, Copy)]
struct Answer<'a> {
    head_only: bool,
    close: bool,
    /// The section whose rule answered (default `auth` realm).
    section: &'a str,
    /// Its timeouts (`timeout tarpit`).
    timeouts: &'a Timeouts,
    /// The backend, when the section is one (its errorfiles apply).
    backend: Option<usize>,
}

/// The local answer a final verdict asks for (`None`: forward).
fn local(
    out: &mut Vec<u8>,
    verdict: Verdict<'_>,
    answer: &Answer<'_>,
    conn: &ConnFacts,
    view: &RequestView,
    received: &RequestHead<'_>,
) -> Option<LocalAnswer> {
    out.clear();
    let close = answer.close;
    Some(match verdict {
        Verdict::Forward => return None,
        Verdict::Reject => LocalAnswer::Reject,
        Verdict::Deny(status) => LocalAnswer::Deny {
            status,
            backend: answer.backend,
        },
        Verdict::BadRequest => LocalAnswer::BadRequest {
            backend: answer.backend,
        },
        Verdict::Tarpit(status) => LocalAnswer::Tarpit {
            status,
            hold: tarpit_time(answer.timeouts),
            backend: answer.backend,
        },
        Verdict::Auth(realm) => {
            // HAProxy's default realm is the proxy's name.
            let realm = if realm.is_empty() {
                answer.section
            } else {
                realm
            };
            write_auth(out, realm, answer.head_only, close);
            LocalAnswer::Prepared { close }
        }
        Verdict::Redirect(r) => {
            let current = view.current(received);
            write_redirect(out, r, &Facts::request(conn, &current), close);
            LocalAnswer::Prepared { close }
        }
        Verdict::Return(reply) => {
            let current = view.current(received);
            let facts = Facts::request(conn, &current);
            write_reply(out, reply, &facts, answer.head_only, close);
            LocalAnswer::Prepared { close }
        }
    })
}

/// Sends the 103 Early Hints the `early-hint` rules of the request gave
/// (none: nothing is sent); false if the client is gone. HTTP/1.1 clients
/// only (an HTTP/2 client's stream relays it as informational HEADERS).
pub(super) async fn send_early_hints(
    st: &mut RouteState<'_>,
    clock: &Clock,
    client: &RefCell<ClientIo>,
    timeout: Option<Duration>,
) -> bool {
    {
        let hints = st.conn.early_hints.borrow();
        if hints.is_empty() {
            return true;
        }
        st.answer.clear();
        st.answer.extend_from_slice(b"HTTP/1.1 103 Early Hints\r\n");
        st.answer.extend_from_slice(&hints);
        st.answer.extend_from_slice(b"\r\n");
    }
    answer(clock, client, &st.answer, timeout).await
}

/// Sends a prepared answer; false if the client is gone.
pub(super) async fn answer(
    clock: &Clock,
    client: &RefCell<ClientIo>,
    bytes: &[u8],
    timeout: Option<Duration>,
) -> bool {
    clock
        .send(Lane::Up, &mut Shared(client), bytes, timeout)
        .await
        .is_ok()
}

/// How long `tarpit` holds a request: the `timeout tarpit` of the
/// section whose rule tarpitted, else its `timeout connect` (HAProxy),
/// else 5 s so a tarpit never holds forever.
fn tarpit_time(timeouts: &Timeouts) -> Duration {
    timeouts
        .tarpit
        .or(timeouts.connect)
        .unwrap_or(Duration::from_secs(5))
}

/// Response rules and cookie persistence for one exchange.
pub(super) struct ResponseHook<'a, 'c> {
    pub conn: &'a ConnFacts,
    pub frontend: &'c HttpRules,
    pub backend: &'c Backend,
    /// The server that answers.
    pub server: usize,
    /// The request named this server in its persistence cookie.
    pub directed: bool,
    /// The client asked HEAD: an answer a rule gives has no body.
    pub head_only: bool,
    /// The frontend's `capture-response-header` entries.
    pub response_captures: &'c [HeaderCapture],
    /// The frontend's `capture-cookie`.
    pub cookie_capture: Option<&'c HeaderCapture>,
    pub edits: &'a mut Vec<Edit<'c>>,
    /// The fields of `out` once a rule rewrote it.
    pub fields: &'a mut Vec<HeaderSpan>,
    pub bufs: &'a mut EditBuffers,
    /// Entries `stick on|store-request` write the server into.
    pub stick_keys: &'a mut Vec<(Arc<TableDef>, Key)>,
}

impl<'c> ResponseHook<'_, 'c> {
    /// Writes to `out` the answer an `http-response return|redirect`
    /// rule gives instead of `head` (the server's response); its status.
    pub fn write_answer(
        &self,
        end: ResponseEnd<'c>,
        head: &ResponseHead<'_>,
        out: &mut Vec<u8>,
        close: bool,
    ) -> u16 {
        out.clear();
        let facts = Facts::response(self.conn, head);
        match end {
            ResponseEnd::Return(reply) => {
                write_reply(out, reply, &facts, self.head_only, close);
                reply.status
            }
            ResponseEnd::Redirect(r) => {
                write_redirect(out, r, &facts, close);
                r.code
            }
            ResponseEnd::Deny(status) => status,
        }
    }

    /// Runs the backend's then the frontend's `http-response` rules on a
    /// response head already written to `out`, and rewrites `out`. Each
    /// rule sees the response as the rules before it left it (once a rule
    /// rewrote it, its fields are read from `out`). `Err`: a rule replaces
    /// the response (deny, return, redirect).
    pub fn apply(
        &mut self,
        head: &ResponseHead<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), ResponseEnd<'c>> {
        self.conn.stick.response_status(head.status);
        let be: &'c Backend = self.backend;
        if let Some(core) = self.conn.stick.core() {
            let mut keys = std::mem::take(self.stick_keys);
            if !be.stick_rules.is_empty() {
                let facts = Facts::response(self.conn, head);
                keys.extend(persist::response_keys(
                    &be.stick_rules,
                    &be.rules.acls,
                    &facts,
                ));
            }
            if !keys.is_empty() {
                persist::store(core, keys, self.server);
            }
        }
        if let Some(c) = self.cookie_capture {
            let found = head
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(b"set-cookie"))
                .find_map(|(_, v)| crate::rules::Captured::cookie_from(v, &c.name, c.len, true));
            self.conn.captures.cookie.borrow_mut().1 = found;
        }
        for (slot, capture) in self.response_captures.iter().enumerate() {
            if let Some(value) = head.headers.find(&capture.name) {
                let value = crate::log::capture::cut(&String::from_utf8_lossy(value), capture.len);
                self.conn.captures.write(CaptureSide::Response, slot, value);
            }
        }
        if self.frontend.response.is_empty() && be.rules.response.is_empty() && be.cookie.is_none()
        {
            return Ok(());
        }
        self.edits.clear();
        self.conn.vars.response_starts();
        let mut rewritten = false;
        for rules in [&be.rules, self.frontend] {
            let mut from = 0;
            loop {
                let edit = {
                    let current = if rewritten {
                        ResponseHead {
                            headers: Headers::new(out, self.fields),
                            ..*head
                        }
                    } else {
                        *head
                    };
                    let facts = Facts::response(self.conn, &current);
                    match rules.step_response(from, &facts) {
                        ResponseStep::Done(Some(end)) => return Err(end),
                        ResponseStep::Done(None) => break,
                        ResponseStep::Edit { next, edit } => {
                            edit::prepare(edit, &facts, self.bufs);
                            from = next;
                            edit
                        }
                    }
                };
                edit::apply_prepared(out, edit, self.bufs);
                field_spans(out, self.fields);
                rewritten = true;
            }
        }
        if let (Some(cookie), Some(value)) = (
            &be.cookie,
            be.servers
                .get(self.server)
                .and_then(|s| s.cookie.as_deref()),
        ) {
            match cookie.mode {
                CookieMode::Insert if !self.directed => {
                    self.edits.push(Edit::InsertCookie {
                        name: &cookie.name,
                        value,
                    });
                    if cookie.nocache {
                        self.edits.push(Edit::Add {
                            name: "Cache-Control",
                            value: b"private",
                        });
                    }
                }
                CookieMode::Insert => {}
                CookieMode::Rewrite | CookieMode::Prefix => self.edits.push(Edit::SetCookieValue {
                    name: &cookie.name,
                    server: value,
                    prefix: cookie.mode == CookieMode::Prefix,
                }),
            }
        }
        if !self.edits.is_empty() {
            // Cookie edits render nothing from the facts.
            edit::apply(
                out,
                self.edits,
                &Facts::response(self.conn, head),
                self.bufs,
            );
        }
        Ok(())
    }
}
