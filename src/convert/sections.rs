//! Groups statements into sections (manual 2.1): a section keyword starts
//! one, the next section keyword or the end of the file ends it.

use super::lexer::Line;
use super::Problem;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Global,
    Defaults,
    Frontend,
    Backend,
    Listen,
    Userlist,
}

const KINDS: [(&str, Kind); 6] = [
    ("global", Kind::Global),
    ("defaults", Kind::Defaults),
    ("frontend", Kind::Frontend),
    ("backend", Kind::Backend),
    ("listen", Kind::Listen),
    ("userlist", Kind::Userlist),
];

/// Sections HAProxy knows that percore has no equivalent for: their
/// lines are reported once, at the section line.
pub const UNSUPPORTED: &[&str] = &[
    "resolvers",
    "peers",
    "cache",
    "program",
    "mailers",
    "http-errors",
    "ring",
    "log-forward",
    "fcgi-app",
];

impl Kind {
    pub fn of(word: &str) -> Option<Kind> {
        KINDS.iter().find(|(k, _)| *k == word).map(|(_, v)| *v)
    }
}

/// A section: its line (`frontend web from base`) and the lines under it.
#[derive(Debug, Clone)]
pub struct Section {
    pub kind: Kind,
    pub head: Line,
    pub body: Vec<Line>,
}

impl Section {
    pub fn name(&self) -> Option<String> {
        let n = self.head.word(1);
        (!n.is_empty() && n != "from").then_some(n)
    }

    /// The defaults section named after `from`.
    pub fn from(&self) -> Option<String> {
        (1..self.head.len())
            .find(|&i| self.head.word(i) == "from")
            .map(|i| self.head.word(i + 1))
    }
}

/// Splits one file's statements into sections. A file starts a section
/// (manual 2.1: one file cannot continue another's).
pub fn split(lines: Vec<Line>, problems: &mut Vec<Problem>) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    // None: outside any section, or inside an unsupported one.
    let mut current: Option<Section> = None;
    let mut skipped: Option<(Line, usize)> = None;
    let flush_skipped = |skipped: &mut Option<(Line, usize)>, problems: &mut Vec<Problem>| {
        if let Some((line, n)) = skipped.take() {
            problems.push(line.problem(
                format!(
                    "percore has no `{}` section ({n} line(s) under it skipped)",
                    line.word(0)
                ),
                match line.word(0).as_str() {
                    "resolvers" => "server host names are resolved once, at load",
                    "cache" => "put an HTTP cache in front of or behind percore",
                    "peers" => "percore has no stick tables to share",
                    "program" => "run the program from systemd next to percore",
                    _ => "remove the section or run it elsewhere",
                },
            ));
        }
    };
    for line in lines {
        let first = line.word(0);
        if let Some(kind) = Kind::of(&first) {
            flush_skipped(&mut skipped, problems);
            out.extend(current.take());
            current = Some(Section {
                kind,
                head: line,
                body: Vec::new(),
            });
        } else if UNSUPPORTED.contains(&first.as_str()) {
            flush_skipped(&mut skipped, problems);
            out.extend(current.take());
            skipped = Some((line, 0));
        } else if let Some((_, n)) = skipped.as_mut() {
            *n += 1;
        } else if let Some(s) = current.as_mut() {
            s.body.push(line);
        } else {
            problems.push(line.problem(
                "this line is outside any section",
                "put it under global, defaults, frontend, backend or listen",
            ));
        }
    }
    flush_skipped(&mut skipped, problems);
    out.extend(current);
    out
}
