//! `percore convert`: reads haproxy.cfg files as HAProxy 2.6 reads them and
//! writes the equivalent percore TOML.
//!
//! Layers, one way: [`lexer`] turns bytes into lines of words (quotes,
//! escapes, `${ENV}`, comments, `.if` blocks); [`sections`] groups them into
//! sections; [`global`] and [`proxy`] map each keyword onto percore keys
//! ([`Entry`]), resolving `defaults` inheritance and `default-server` on the
//! way, so the output never depends on percore's own `[defaults]`; [`emit`]
//! writes the TOML with one comment per item naming its source line. Nothing
//! here touches the runtime; [`cli`] only adds file handling and the final
//! `--check` of the result.
//!
//! Every line that is not mapped becomes a [`Problem`]: it is printed to
//! stderr, written as a comment in the output, and makes the exit status 2.

pub mod cli;
mod emit;
mod global;
mod lexer;
mod proxy;
mod sections;
#[cfg(test)]
mod tests;
mod words;

use std::fmt;
use std::sync::Arc;

/// Where an item of the output comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<str>,
    pub line: usize,
    /// The line as written (trimmed, control characters shown as `?`).
    pub text: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.text)
    }
}

/// A TOML value the converter writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Str(String),
    Int(i64),
    Bool(bool),
    /// An inline table, keys in this order.
    Table(Vec<(String, Val)>),
    List(Vec<Val>),
}

impl Val {
    pub(crate) fn str(s: impl Into<String>) -> Val {
        Val::Str(s.into())
    }
}

/// One key set (or one element added to a list) by one source line.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Dotted key path inside the section's table, e.g. `["timeout", "client"]`.
    pub key: Vec<String>,
    pub value: Val,
    /// Appends `value` to the list at `key` instead of setting it.
    pub push: bool,
    pub origin: Origin,
    /// Said in the comment next to the value (e.g. "from defaults web").
    pub note: Option<String>,
}

/// A line, or part of one, that has no percore equivalent.
#[derive(Debug, Clone)]
pub struct Problem {
    pub origin: Origin,
    pub why: String,
    pub hint: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (hint: {})", self.origin, self.why, self.hint)
    }
}

/// One section of the output, e.g. `[[frontend]]`.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// `[global]`, `[[frontend]]`, ...
    pub header: String,
    /// The section line it comes from.
    pub origin: Option<Origin>,
    pub entries: Vec<Entry>,
    /// Comments written under the header: problems and notes.
    pub notes: Vec<String>,
}

/// One configuration file's content.
pub struct Input {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The result of a conversion.
pub struct Converted {
    pub toml: String,
    pub problems: Vec<Problem>,
}

/// Converts the files, read in order as `haproxy -f a -f b` would;
/// `env` answers `${NAME}` lookups.
pub fn convert(inputs: &[Input], env: &dyn Fn(&str) -> Option<String>) -> Converted {
    let mut problems = Vec::new();
    let mut sections = Vec::new();
    for input in inputs {
        let lines = lexer::read(input, env, &mut problems);
        sections.extend(sections::split(lines, &mut problems));
    }
    let mut tables = Vec::new();
    let mut global = global::Global::default();
    let mut global_at = None;
    let mut defaults = proxy::DefaultsSet::default();
    for section in &sections {
        match section.kind {
            sections::Kind::Global => {
                global_at.get_or_insert(tables.len());
                global.read(section, &mut problems);
            }
            sections::Kind::Defaults => defaults.read(section, &global, &mut problems),
            sections::Kind::Frontend | sections::Kind::Backend | sections::Kind::Listen => {
                tables.extend(proxy::convert(section, &defaults, &global, &mut problems));
            }
            sections::Kind::Userlist => tables.push(global::userlist(section, &mut problems)),
        }
    }
    // percore has one [stats] page: a second stats proxy is reported.
    let mut stats_seen = false;
    // The global table goes where the first global section was: a stats
    // table dropped before it moves that place back (found by fuzzing
    // convert: two stats proxies before a `global` section made the
    // insertion index run past the end).
    let mut index = 0;
    let mut dropped_before_global = 0;
    tables.retain(|t| {
        let at = index;
        index += 1;
        if t.header != "[stats]" {
            return true;
        }
        if stats_seen {
            if let Some(o) = &t.origin {
                problems.push(Problem {
                    origin: o.clone(),
                    why: "percore serves one stats page".into(),
                    hint: "keep one stats section".into(),
                });
            }
            if global_at.is_some_and(|g| at < g) {
                dropped_before_global += 1;
            }
            return false;
        }
        stats_seen = true;
        true
    });
    // Always written: it carries the notes on HAProxy's implicit globals.
    let global_at = global_at.map_or(0, |g| g - dropped_before_global);
    tables.insert(global_at, global.table());
    // One line split into several items (`bind :443,:8443 ... alpn h2`)
    // is reported once.
    problems.dedup_by(|a, b| a.origin == b.origin && a.why == b.why);
    let orphans = attach_problems(&mut tables, &problems);
    let mut toml = emit::header(inputs, &orphans);
    toml.push_str(&emit::tables(&tables));
    Converted { toml, problems }
}

/// Each problem is written as a comment under the table its line belongs
/// to (the last table whose section line precedes it), else at the top.
fn attach_problems(tables: &mut [Table], problems: &[Problem]) -> Vec<String> {
    let mut orphans = Vec::new();
    for p in problems {
        let comment = format!("NOT CONVERTED {p}");
        let owner = tables.iter_mut().rev().find(|t| {
            t.origin.as_ref().is_some_and(|o| {
                o.file == p.origin.file && o.line <= p.origin.line && !t.header.is_empty()
            })
        });
        match owner {
            Some(t) => t.notes.push(comment),
            None => orphans.push(comment),
        }
    }
    orphans
}
