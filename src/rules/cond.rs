//! ACLs and the conditions that combine them (`if`/`unless`, implicit AND,
//! `||`/`or`, `!`, anonymous `{ ... }` ACLs), as HAProxy evaluates them.

use super::convert_ops::{run_chain, Conv, Value};
use super::pattern::Matcher;
use super::sample::{Facts, Fetch};

/// One ACL line: a fetch, the converters its samples go through
/// (`req.hdr(host),lower`) and how the results are matched. True if any
/// sample matches any pattern.
#[derive(Debug, Clone)]
pub struct AclTest {
    pub fetch: Fetch,
    pub converters: Vec<Conv>,
    pub matcher: Matcher,
}

impl AclTest {
    pub fn eval(&self, facts: &Facts<'_>) -> bool {
        if self.converters.is_empty() {
            return self.fetch.any(facts, |s| self.matcher.matches(s));
        }
        self.fetch.any(facts, |s| {
            run_chain(&self.converters, Value::from(s), facts)
                .is_some_and(|v| self.matcher.matches(v.as_sample()))
        })
    }
}

/// A named ACL: its lines are OR-ed (several `acl` lines with one name in
/// HAProxy).
#[derive(Debug, Clone)]
pub struct Acl {
    pub name: Box<str>,
    pub tests: Vec<AclTest>,
}

impl Acl {
    pub fn eval(&self, facts: &Facts<'_>) -> bool {
        self.tests.iter().any(|t| t.eval(facts))
    }
}

/// An ACL as a condition refers to it.
#[derive(Debug, Clone)]
pub enum AclRef {
    /// Index into the section's ACL list.
    Named(usize),
    /// `{ fetch patterns }` written in the condition.
    Anonymous(AclTest),
}

#[derive(Debug, Clone)]
pub struct Term {
    pub negate: bool,
    pub acl: AclRef,
}

/// `if|unless term term || term ...`: OR of AND-groups.
#[derive(Debug, Clone)]
pub struct Condition {
    /// `unless`
    pub negate: bool,
    pub any_of: Vec<Vec<Term>>,
}

impl Condition {
    pub fn eval(&self, acls: &[Acl], facts: &Facts<'_>) -> bool {
        let holds = self.any_of.iter().any(|group| {
            group.iter().all(|term| {
                let v = match &term.acl {
                    AclRef::Named(i) => acls.get(*i).is_some_and(|a| a.eval(facts)),
                    AclRef::Anonymous(t) => t.eval(facts),
                };
                v != term.negate
            })
        });
        holds != self.negate
    }
}

impl Condition {
    /// Whether any test of the condition (named ACLs included) reads the
    /// client's first bytes (`req.len`, `req.payload`, `req.ssl_*`).
    pub fn reads_payload(&self, acls: &[Acl]) -> bool {
        self.any_of.iter().flatten().any(|term| match &term.acl {
            AclRef::Named(i) => acls
                .get(*i)
                .is_some_and(|a| a.tests.iter().any(|t| t.fetch.reads_payload())),
            AclRef::Anonymous(t) => t.fetch.reads_payload(),
        })
    }
}

/// An optional condition: no condition always holds.
pub fn holds(cond: &Option<Condition>, acls: &[Acl], facts: &Facts<'_>) -> bool {
    cond.as_ref().is_none_or(|c| c.eval(acls, facts))
}
