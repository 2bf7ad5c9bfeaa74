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
use std::time::Duration;

use crate::net::Stream;

use super::io::{Clock, Lane, Shared};
use crate::backend::PickHint;
use crate::config::{Backend, Config, CookieMode, Frontend};
use crate::http::{
    write_request_head, BodyFraming, ClientSide, ConnectionMode, Method, RequestHead, ResponseHead,
};
use crate::rules::edit::{self, Edit, EditBuffers};
use crate::rules::reply::{write_auth, write_redirect, write_reply};
use crate::rules::{ConnFacts, Facts, HeaderEdit, HttpRules, TlsFacts, Verdict};

/// Per-connection routing state and reusable buffers.
pub(super) struct RouteState<'c> {
    pub conn: ConnFacts,
    /// For the backend's balancing of the current request.
    pub hint: PickHint,
    rule_edits: Vec<&'c HeaderEdit>,
    edits: Vec<Edit<'c>>,
    pub(super) bufs: EditBuffers,
    /// A local answer being sent.
    pub answer: Vec<u8>,
}

impl RouteState<'_> {
    /// `tls` is `Some` on a TLS client connection (`ssl_fc`, `ssl_fc_sni`).
    pub fn new(src: SocketAddr, dst: SocketAddr, tls: Option<TlsFacts>) -> Self {
        RouteState {
            conn: ConnFacts { src, dst, tls },
            hint: PickHint::default(),
            rule_edits: Vec::new(),
            edits: Vec::new(),
            bufs: EditBuffers::default(),
            answer: Vec::new(),
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
            edits: &mut self.edits,
            rule_edits: &mut self.rule_edits,
            bufs: &mut self.bufs,
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
    /// An error page, then close (`deny`).
    Deny(u16),
    /// Hold the request for `timeout tarpit`, then an error page.
    Tarpit(u16),
    /// `RouteState::answer` holds the response; close after it if set.
    Prepared { close: bool },
}

/// Evaluates the rules for one request and, unless it is answered
/// locally, writes the head to forward into `out` (cleared first).
pub(super) fn request<'c>(
    st: &mut RouteState<'c>,
    config: &'c Config,
    fe: &'c Frontend,
    head: &RequestHead<'_>,
    side: &ClientSide,
    mode: ConnectionMode,
    out: &mut Vec<u8>,
) -> Routed {
    st.rule_edits.clear();
    st.edits.clear();
    let facts = Facts::request(&st.conn, head);
    // Only requests without a body can keep the connection after a local
    // answer: the body would otherwise be read as the next request.
    let close = !head.keep_alive
        || !matches!(
            head.framing,
            BodyFraming::None | BodyFraming::ContentLength(0)
        );
    let head_only = head.method_kind == Method::Head;

    let verdict = fe.rules.eval_request(&facts, &mut st.rule_edits);
    if let Some(local) = local(&mut st.answer, verdict, &fe.name, &facts, head_only, close) {
        return Routed::Local(local);
    }
    let backend_id = fe.rules.pick_backend(&facts).unwrap_or(fe.default_backend);
    let be: &'c Backend = &config.backends[backend_id];
    let verdict = be.rules.eval_request(&facts, &mut st.rule_edits);
    if let Some(local) = local(&mut st.answer, verdict, &be.name, &facts, head_only, close) {
        return Routed::Local(local);
    }

    st.hint = PickHint {
        hash: be.balance_params.key.as_ref().and_then(|k| k.hash(head)),
        sticky: None,
    };
    st.edits.extend(st.rule_edits.iter().map(|e| Edit::Rule(e)));
    if let Some(cookie) = &be.cookie {
        if let Some(value) = cookie.requested(head) {
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

    out.clear();
    write_request_head(out, head, &fe.http.rewrite, side, mode);
    if !st.edits.is_empty() {
        edit::apply(out, &st.edits, &facts, &mut st.bufs);
    }
    Routed::Forward(backend_id)
}

/// The local answer a final verdict asks for (`None`: forward).
fn local(
    answer: &mut Vec<u8>,
    verdict: Verdict<'_>,
    section: &str,
    facts: &Facts<'_>,
    head_only: bool,
    close: bool,
) -> Option<LocalAnswer> {
    answer.clear();
    Some(match verdict {
        Verdict::Forward => return None,
        Verdict::Reject => LocalAnswer::Reject,
        Verdict::Deny(status) => LocalAnswer::Deny(status),
        Verdict::Tarpit(status) => LocalAnswer::Tarpit(status),
        Verdict::Auth(realm) => {
            // HAProxy's default realm is the proxy's name.
            let realm = if realm.is_empty() { section } else { realm };
            write_auth(answer, realm, head_only, close);
            LocalAnswer::Prepared { close }
        }
        Verdict::Redirect(r) => {
            write_redirect(answer, r, facts, close);
            LocalAnswer::Prepared { close }
        }
        Verdict::Return(reply) => {
            write_reply(answer, reply, head_only, close);
            LocalAnswer::Prepared { close }
        }
    })
}

/// Sends a prepared answer; false if the client is gone.
pub(super) async fn answer(
    clock: &Clock,
    client: &RefCell<Stream>,
    bytes: &[u8],
    timeout: Option<Duration>,
) -> bool {
    clock
        .send(Lane::Up, &mut Shared(client), bytes, timeout)
        .await
        .is_ok()
}

/// How long `tarpit` holds a request: `timeout tarpit`, else `timeout
/// connect` (HAProxy), else 5 s so a tarpit never holds forever.
pub(super) fn tarpit_time(fe: &Frontend, be: &Backend) -> Duration {
    fe.timeouts
        .tarpit
        .or(be.timeouts.tarpit)
        .or(fe.timeouts.connect)
        .or(be.timeouts.connect)
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
    pub edits: &'a mut Vec<Edit<'c>>,
    pub rule_edits: &'a mut Vec<&'c HeaderEdit>,
    pub bufs: &'a mut EditBuffers,
}

impl<'c> ResponseHook<'_, 'c> {
    /// Runs the backend's then the frontend's `http-response` rules on a
    /// response head already written to `out`, and rewrites `out`.
    /// `Err(status)`: a rule denied the response.
    pub fn apply(&mut self, head: &ResponseHead<'_>, out: &mut Vec<u8>) -> Result<(), u16> {
        let be: &'c Backend = self.backend;
        if self.frontend.response.is_empty() && be.rules.response.is_empty() && be.cookie.is_none()
        {
            return Ok(());
        }
        self.rule_edits.clear();
        self.edits.clear();
        let facts = Facts::response(self.conn, head);
        if let Some(status) = be.rules.eval_response(&facts, self.rule_edits) {
            return Err(status);
        }
        if let Some(status) = self.frontend.eval_response(&facts, self.rule_edits) {
            return Err(status);
        }
        self.edits
            .extend(self.rule_edits.iter().map(|e| Edit::Rule(e)));
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
            edit::apply(out, self.edits, &facts, self.bufs);
        }
        Ok(())
    }
}
