//! Variables: `set-var(<scope>.<name>) <expr>`, `set-var-fmt`,
//! `unset-var`, and the `var(<scope>.<name>)` fetch.
//!
//! Scopes, as HAProxy's: `sess` lives as long as the client connection,
//! `txn` for one request and its response, `req` while the request is
//! processed, `res` while the response is. `proc` is HAProxy's process-wide
//! scope; percore has no state shared between cores on the request path,
//! so a `proc` variable set by a rule is **per core**: the rules of the
//! connections of that core see it, other cores do not (written down in
//! docs/configuration.md). Each store is a short list searched by name:
//! rules set few variables, and a list costs no hashing.

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Arc;

use super::convert_ops::{run_chain, Conv, Value};
use super::format::Format;
use super::sample::{Facts, Fetch, Sample};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Proc,
    Sess,
    Txn,
    Req,
    Res,
}

impl Scope {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "proc" => Scope::Proc,
            "sess" => Scope::Sess,
            "txn" => Scope::Txn,
            "req" => Scope::Req,
            "res" => Scope::Res,
            _ => return None,
        })
    }
}

/// A variable's name as rules write it, checked at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarName {
    pub scope: Scope,
    pub name: Box<str>,
}

impl VarName {
    /// `txn.name`: a scope, a dot, then letters, digits, `.` and `_`.
    pub fn parse(text: &str) -> Option<Self> {
        let (scope, name) = text.split_once('.')?;
        let scope = Scope::from_name(scope)?;
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
        valid.then(|| VarName {
            scope,
            name: name.into(),
        })
    }
}

/// A stored value (owned: it outlives the message it came from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    Str(Box<[u8]>),
    Int(i64),
    Ip(IpAddr),
    Bool(bool),
}

impl Stored {
    pub fn of(v: &Value<'_>) -> Self {
        match v {
            Value::Str(s) | Value::Bin(s) => Stored::Str(s[..].into()),
            Value::Shared(s) => Stored::Str(s[..].into()),
            Value::Int(i) => Stored::Int(*i),
            Value::Ip(ip) => Stored::Ip(*ip),
            Value::Bool(b) => Stored::Bool(*b),
        }
    }

    pub fn sample(&self) -> Sample<'_> {
        match self {
            Stored::Str(s) => Sample::Str(s),
            Stored::Int(i) => Sample::Int(*i),
            Stored::Ip(ip) => Sample::Ip(*ip),
            Stored::Bool(b) => Sample::Bool(*b),
        }
    }
}

type Store = RefCell<Vec<(Box<str>, Stored)>>;

/// The variables of one client connection: its session's, and those of
/// the transaction being processed.
#[derive(Debug, Default)]
pub struct Vars {
    sess: Store,
    txn: Store,
    req: Store,
    res: Store,
}

thread_local! {
    /// `proc` variables: per core (see the module documentation).
    static PROC: Store = const { RefCell::new(Vec::new()) };
}

impl Vars {
    fn with_store<R>(&self, scope: Scope, f: impl FnOnce(&Store) -> R) -> R {
        match scope {
            Scope::Proc => PROC.with(f),
            Scope::Sess => f(&self.sess),
            Scope::Txn => f(&self.txn),
            Scope::Req => f(&self.req),
            Scope::Res => f(&self.res),
        }
    }

    /// Calls `f` with the variable's value, if it is set.
    pub fn get<R>(&self, var: &VarName, f: impl FnOnce(Sample<'_>) -> R) -> Option<R> {
        self.with_store(var.scope, |store| {
            let store = store.borrow();
            store
                .iter()
                .find(|(n, _)| *n == var.name)
                .map(|(_, v)| f(v.sample()))
        })
    }

    pub fn set(&self, var: &VarName, value: Stored) {
        self.with_store(var.scope, |store| {
            let mut store = store.borrow_mut();
            match store.iter_mut().find(|(n, _)| *n == var.name) {
                Some((_, v)) => *v = value,
                None => store.push((var.name.clone(), value)),
            }
        });
    }

    pub fn unset(&self, var: &VarName) {
        self.with_store(var.scope, |store| {
            store.borrow_mut().retain(|(n, _)| *n != var.name);
        });
    }

    /// A new request on the connection: the previous transaction's
    /// variables are gone.
    pub fn new_transaction(&self) {
        for store in [&self.txn, &self.req, &self.res] {
            if !store.borrow().is_empty() {
                store.borrow_mut().clear();
            }
        }
    }

    /// Whether a connection waiting for its next request must keep these
    /// variables: only `sess` ones outlive the transaction.
    pub fn outlives_pause(&self) -> bool {
        !self.sess.borrow().is_empty()
    }

    /// The response starts: the request's variables are gone.
    pub fn response_starts(&self) {
        if !self.req.borrow().is_empty() {
            self.req.borrow_mut().clear();
        }
    }
}

/// What `set-var` stores.
#[derive(Debug, Clone)]
pub enum VarValue {
    /// `set-var(<var>) <fetch>[,<converter>...]`
    Expr { fetch: Fetch, converters: Vec<Conv> },
    /// `set-var-fmt(<var>) <format>`: a string.
    Format(Format),
}

/// `set-var` / `set-var-fmt` / `unset-var`.
#[derive(Debug, Clone)]
pub struct SetVar {
    pub var: VarName,
    /// `None`: `unset-var`.
    pub value: Option<VarValue>,
}

impl SetVar {
    /// Runs the action: an expression without a sample leaves the
    /// variable as it was (as HAProxy).
    pub fn run(&self, facts: &Facts<'_>) {
        let vars = &facts.conn.vars;
        match &self.value {
            None => vars.unset(&self.var),
            Some(VarValue::Expr { fetch, converters }) => {
                let mut last: Option<Stored> = None;
                fetch.any(facts, |s| {
                    if let Some(v) = run_chain(converters, Value::from(s), facts) {
                        last = Some(Stored::of(&v));
                    }
                    false
                });
                if let Some(v) = last {
                    vars.set(&self.var, v);
                }
            }
            Some(VarValue::Format(format)) => {
                let mut out = Vec::new();
                format.render(facts, &mut out);
                vars.set(&self.var, Stored::Str(out.into()));
            }
        }
    }
}

/// Shared between the rules of a section (cheap to clone in an action).
pub type SetVarRef = Arc<SetVar>;
