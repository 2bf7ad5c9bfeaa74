//! `tcp-request` rules of a frontend (HAProxy's `tcp-request
//! inspect-delay`, `tcp-request connection ...` and `tcp-request content
//! ...`), evaluated over the frontend's ACLs.
//!
//! - Connection rules run at the accept, before any byte is read (before
//!   the PROXY header and TLS): they see the socket's addresses only.
//!   `expect-proxy layer4` asks for a PROXY header and goes on to the next
//!   rule; `accept` and `reject` end the evaluation.
//! - Content rules run once the client's first bytes can be looked at
//!   (after the PROXY header and TLS). A rule whose condition does not
//!   hold yet but could with more bytes (a ClientHello still arriving)
//!   waits for them, up to `inspect-delay` from the accept; then it is
//!   evaluated on what is there. No rule deciding means accept.

use std::cell::Cell;
use std::time::Duration;

use super::action::Rule;
use super::cond::{holds, Acl};
use super::sample::{ConnFacts, Facts, Payload};

#[derive(Debug, Clone)]
pub enum TcpAction {
    Accept,
    Reject,
    /// `expect-proxy layer4` (connection rules only): read a PROXY header
    /// as on an `accept-proxy` bind.
    ExpectProxy,
    /// `track-sc*`, `sc-inc-gpc0`, `sc-set-gpt0`: done by the caller (the
    /// entry may live on another core), then the rules go on.
    Stick(crate::stick::StickAction),
    /// `set-var`, `set-var-fmt`, `unset-var`: runs and goes on.
    SetVar(super::vars::SetVarRef),
}

#[derive(Debug, Clone, Default)]
pub struct TcpRules {
    /// `inspect-delay`: how long content rules may wait for bytes.
    pub inspect_delay: Option<Duration>,
    pub connection: Vec<Rule<TcpAction>>,
    pub content: Vec<Rule<TcpAction>>,
}

/// What the connection rules decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionVerdict {
    pub reject: bool,
    pub expect_proxy: bool,
}

/// One step of the connection rules.
#[derive(Debug, Clone, Copy)]
pub enum ConnectionStep<'r> {
    Done(ConnectionVerdict),
    /// A stick-table action to perform, then resume at `next`.
    Stick {
        next: usize,
        action: &'r crate::stick::StickAction,
    },
    /// Rule `at` needs stick-table entries first; resume there.
    Lookup {
        at: usize,
    },
}

/// One step of the content rules.
#[derive(Debug, Clone, Copy)]
pub enum ContentStep<'r> {
    Accept,
    Reject,
    /// Rule `at` could decide differently with more bytes: look again
    /// from there once more came (or the delay ran out).
    NeedMore {
        at: usize,
    },
    /// A stick-table action to perform, then resume at `next`.
    Stick {
        next: usize,
        action: &'r crate::stick::StickAction,
    },
    /// Rule `at` needs stick-table entries first; resume there.
    Lookup {
        at: usize,
    },
}

impl TcpRules {
    pub fn is_empty(&self) -> bool {
        self.connection.is_empty() && self.content.is_empty() && self.inspect_delay.is_none()
    }

    /// Runs the connection rules, passing over stick-table actions and
    /// rules that need entries (for callers that cannot reach other
    /// cores; the runtime uses [`TcpRules::connection_step`]).
    pub fn connection(&self, acls: &[Acl], conn: &ConnFacts) -> ConnectionVerdict {
        let mut verdict = ConnectionVerdict {
            reject: false,
            expect_proxy: false,
        };
        let mut from = 0;
        loop {
            match self.connection_step(from, acls, conn, &mut verdict) {
                ConnectionStep::Done(v) => return v,
                ConnectionStep::Stick { next, .. } => from = next,
                ConnectionStep::Lookup { at } => {
                    conn.stick.next_rule();
                    from = at + 1;
                }
            }
        }
    }

    /// Runs the connection rules from `from`, `verdict` holding what
    /// earlier steps decided, until the end or a stick-table step.
    pub fn connection_step<'r>(
        &'r self,
        from: usize,
        acls: &[Acl],
        conn: &ConnFacts,
        verdict: &mut ConnectionVerdict,
    ) -> ConnectionStep<'r> {
        let facts = Facts::content(conn, None);
        for (index, rule) in self.connection.iter().enumerate().skip(from) {
            let held = holds(&rule.cond, acls, &facts);
            if conn.stick.wants() {
                return ConnectionStep::Lookup { at: index };
            }
            if !held {
                continue;
            }
            match &rule.action {
                TcpAction::SetVar(set) => {
                    set.run(&facts);
                    if conn.stick.wants() {
                        // The expression reads a stick-table entry: fetch
                        // it, then set the variable again.
                        return ConnectionStep::Lookup { at: index };
                    }
                }
                TcpAction::ExpectProxy => verdict.expect_proxy = true,
                TcpAction::Accept => break,
                TcpAction::Reject => {
                    verdict.reject = true;
                    break;
                }
                TcpAction::Stick(action) => {
                    return ConnectionStep::Stick {
                        next: index + 1,
                        action,
                    }
                }
            }
        }
        ConnectionStep::Done(*verdict)
    }

    /// Runs the content rules from `from` over `data`; `last`: no more
    /// bytes will come.
    pub fn content<'r>(
        &'r self,
        from: usize,
        acls: &[Acl],
        conn: &ConnFacts,
        data: &[u8],
        last: bool,
    ) -> ContentStep<'r> {
        let more = Cell::new(false);
        let facts = Facts::content(
            conn,
            Some(Payload {
                data,
                last,
                more: &more,
            }),
        );
        for (at, rule) in self.content.iter().enumerate().skip(from) {
            more.set(false);
            let held = holds(&rule.cond, acls, &facts);
            if conn.stick.wants() {
                return ContentStep::Lookup { at };
            }
            if more.get() {
                return ContentStep::NeedMore { at };
            }
            if !held {
                continue;
            }
            match &rule.action {
                TcpAction::SetVar(set) => {
                    set.run(&facts);
                    if conn.stick.wants() {
                        return ContentStep::Lookup { at };
                    }
                }
                TcpAction::Accept | TcpAction::ExpectProxy => return ContentStep::Accept,
                TcpAction::Reject => return ContentStep::Reject,
                TcpAction::Stick(action) => {
                    return ContentStep::Stick {
                        next: at + 1,
                        action,
                    }
                }
            }
        }
        ContentStep::Accept
    }
}

/// The first `use_backend` whose condition holds over the inspected
/// bytes (mode tcp; HAProxy's switching rules run after content rules).
pub fn pick_backend(
    rules: &[Rule<super::action::UseBackend>],
    acls: &[Acl],
    conn: &ConnFacts,
    data: &[u8],
) -> Option<usize> {
    let more = Cell::new(false);
    let facts = Facts::content(
        conn,
        Some(Payload {
            data,
            last: true,
            more: &more,
        }),
    );
    rules
        .iter()
        .filter(|r| holds(&r.cond, acls, &facts))
        .find_map(|r| r.action.resolve(&facts))
}
