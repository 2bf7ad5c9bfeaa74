//! HTTP routing rules, HAProxy's rule language compiled once at load:
//! ACLs ([`cond`]: named and anonymous, `if`/`unless`, `!`, `||`) over
//! sample fetches ([`sample`]) and match methods ([`pattern`]);
//! `http-request` / `http-response` / `use_backend` rules ([`action`]);
//! values with `%[fetch,converter]` ([`format`]); rewrites of outgoing heads
//! ([`edit`]) and the request as rules rewrote it so far ([`view`]); responses percore writes itself ([`reply`]); userlists and
//! basic auth ([`auth`]); what HTTP balancing hashes and cookie persistence
//! ([`balance`]).
//!
//! I/O free, like `crate::http`: the session evaluates rules on a parsed
//! head and applies the result. Evaluating allocates nothing; only a rule
//! that rewrites a head does (once, through reusable buffers).
//! The text syntax is parsed by `crate::config` (`rules_parse`).

pub mod action;
pub mod auth;
pub mod balance;
pub mod body_fetch;
pub mod capture;
pub mod cert_fetch;
pub mod cond;
pub mod convert_ops;
pub mod edit;
pub mod format;
pub mod normalize;
pub mod pattern;
pub mod reply;
pub mod sample;
pub mod tcp_request;
pub mod tls_hello;
pub mod vars;
pub mod view;

pub use action::{
    HeaderEdit, HttpRules, LogLevel, Redirect, RedirectCookie, RedirectTarget, Reply,
    RequestAction, ResponseAction, ResponseEnd, ResponseStep, Rule, Step, TimeoutOverride,
    TxnTimeouts, UseBackend, Verdict,
};
pub use auth::{Password, User, Userlist};
pub use balance::{hash_bytes, CookieMode, CookiePersistence, HashKey, HashType};
pub use capture::{CaptureRule, CaptureSide, Captured, SlotRef};
pub use cond::{Acl, AclRef, AclTest, Condition, Term};
pub use convert_ops::{Conv, Value};
pub use edit::{Edit, EditBuffers};
pub use format::{Format, Part};
pub use pattern::{IntRange, LivePatterns, Matcher, StrPatterns};
pub use sample::{ConnFacts, Facts, Fetch, Payload, Sample, SampleType, Side, TlsFacts};
pub use tcp_request::{TcpAction, TcpRules};
pub use view::RequestView;
