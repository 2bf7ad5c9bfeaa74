//! Values with embedded samples, HAProxy's log-format strings restricted to
//! `%[fetch,converter...]` and `%%`: `"%[src]"`, `"%[ssl_fc,iif(https,http)]"`.

use super::convert_ops::{run_chain, Conv, Value};
use super::sample::{Facts, Fetch};

#[derive(Debug, Clone)]
pub enum Part {
    Literal(Box<[u8]>),
    Sample { fetch: Fetch, converters: Vec<Conv> },
}

/// A compiled value.
#[derive(Debug, Clone, Default)]
pub struct Format {
    pub parts: Vec<Part>,
}

impl Format {
    pub fn literal(bytes: &[u8]) -> Self {
        Format {
            parts: vec![Part::Literal(bytes.into())],
        }
    }

    /// Appends the value for these facts. A fetch without a sample (or a
    /// converter that fails) adds nothing; of several samples (a repeated
    /// header) the last is used, as HAProxy does outside ACLs.
    pub fn render(&self, facts: &Facts<'_>, out: &mut Vec<u8>) {
        for part in &self.parts {
            match part {
                Part::Literal(bytes) => out.extend_from_slice(bytes),
                Part::Sample { fetch, converters } => {
                    let start = out.len();
                    fetch.any(facts, |s| {
                        out.truncate(start);
                        if let Some(v) = run_chain(converters, Value::from(s), facts) {
                            v.write_to(out);
                        }
                        false
                    });
                }
            }
        }
    }
}

/// The offset of the `]` that closes a `%[` sample in `s` (which starts
/// after the `%[`): brackets inside converter arguments' parentheses do
/// not count. Shared by rule values and log formats.
pub fn matching_bracket(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ']' if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}
