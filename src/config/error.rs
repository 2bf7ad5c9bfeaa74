//! Configuration errors and how they are located and printed.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Byte range in the configuration text.
pub(crate) type Span = Range<usize>;

/// One problem found in a configuration file.
///
/// Printed as `file:line:column: key.path: message (hint: ...)`, the shape
/// compilers use, so editors can jump to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; `None` only when the problem has no place in the text
    /// (unreadable file, nothing defined at all).
    pub line: Option<usize>,
    /// 1-based, counted in characters.
    pub column: Option<usize>,
    /// Where in the configuration, e.g. `backend "pg".server "pg1".weight`.
    /// Empty for syntax errors, which have no reliable key.
    pub key_path: String,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if !self.key_path.is_empty() {
            write!(f, "{}: ", self.key_path)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Every error found in one load; a configuration is never half accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", one_per_line(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

fn one_per_line(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigErrors {
    /// The error for a file that could not be read at all.
    pub(crate) fn unreadable(path: &Path, err: &std::io::Error) -> Self {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            key_path: String::new(),
            message: format!("cannot read configuration file: {err}"),
            hint: None,
        }])
    }
}

/// Maps byte offsets to 1-based line and column.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, line_starts }
    }

    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line.saturating_sub(1)];
        // A span may start inside a multi-byte character only if the parser
        // is wrong; count what is there rather than slicing and panicking.
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line.max(1), column + 1)
    }
}

/// Collects errors and warnings while a configuration is read.
pub(crate) struct Diagnostics<'a> {
    file: PathBuf,
    lines: LineIndex<'a>,
    pub(crate) errors: Vec<ConfigError>,
    pub(crate) warnings: Vec<ConfigError>,
}

/// Marker for "this value was bad and an error has already been recorded",
/// so later checks can stay quiet instead of piling up follow-on errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reported;

impl<'a> Diagnostics<'a> {
    pub(crate) fn new(file: &Path, text: &'a str) -> Self {
        Diagnostics {
            file: file.to_path_buf(),
            lines: LineIndex::new(text),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub(crate) fn locate(
        &self,
        span: Option<&Span>,
        key_path: &str,
        message: String,
        hint: Option<String>,
    ) -> ConfigError {
        let position = span.map(|s| self.lines.position(s.start));
        ConfigError {
            file: self.file.clone(),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            key_path: key_path.to_string(),
            message,
            hint,
        }
    }

    pub(crate) fn error(
        &mut self,
        span: Option<&Span>,
        key_path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Reported {
        let error = self.locate(span, key_path, message.into(), hint);
        self.errors.push(error);
        Reported
    }

    pub(crate) fn warn(
        &mut self,
        span: Option<&Span>,
        key_path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let warning = self.locate(span, key_path, message.into(), hint);
        self.warnings.push(warning);
    }

    /// Where byte `offset` of a string value lies in the file, the value's
    /// node spanning `span`: exact when the string is written without
    /// escapes (its text is then the value itself), else `None`.
    pub(crate) fn inside_string(&self, span: &Span, value: &str, offset: usize) -> Option<Span> {
        let raw = self.lines.text.get(span.clone())?;
        let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            3
        } else {
            1
        };
        let mut start = span.start + quote;
        let mut inner = raw.get(quote..raw.len().checked_sub(quote)?)?;
        if quote == 3 {
            if let Some(rest) = inner.strip_prefix('\n') {
                inner = rest;
                start += 1;
            }
        }
        (inner == value && offset <= value.len()).then(|| start + offset..start + offset + 1)
    }

    pub(crate) fn line_of(&self, span: Option<&Span>) -> Option<usize> {
        span.map(|s| self.lines.position(s.start).0)
    }
}

/// Errors in reading order; those without a position last.
pub(crate) fn sort_by_position(errors: &mut [ConfigError]) {
    errors.sort_by_key(|e| (e.line.is_none(), e.line, e.column));
}

/// Levenshtein distance, for "did you mean" hints on short key names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a typo.
pub(crate) fn did_you_mean<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let word = word.to_ascii_lowercase().replace('_', "-");
    candidates
        .iter()
        .map(|c| (edit_distance(&word, &c.replace('_', "-")), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `"a", "b", "c"`: how lists of names appear in hints.
pub(crate) fn quoted_list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        let lines = LineIndex::new(text);
        assert_eq!(lines.position(0), (1, 1));
        assert_eq!(lines.position(4), (1, 5));
        assert_eq!(lines.position(6), (2, 1));
        // "bé = " is 6 bytes but 5 characters.
        assert_eq!(lines.position(12), (2, 6));
        assert_eq!(lines.position(10_000), (3, 1));
    }

    #[test]
    fn near_misses_are_suggested_and_strangers_are_not() {
        let keys = ["default_backend", "timeout", "maxconn", "mode"];
        assert_eq!(did_you_mean("timout", &keys), Some("timeout"));
        assert_eq!(
            did_you_mean("default-backend", &keys),
            Some("default_backend")
        );
        assert_eq!(did_you_mean("mod", &keys), Some("mode"));
        assert_eq!(did_you_mean("frobnicate", &keys), None);
    }

    #[test]
    fn display_has_file_line_column_path_message_hint() {
        let e = ConfigError {
            file: "config.toml".into(),
            line: Some(14),
            column: Some(19),
            key_path: "frontend \"web\".default_backend".into(),
            message: "backend \"app\" is not defined".into(),
            hint: Some("defined backends: \"pg\"".into()),
        };
        assert_eq!(
            e.to_string(),
            "config.toml:14:19: frontend \"web\".default_backend: backend \"app\" is not defined (hint: defined backends: \"pg\")"
        );
        let both = ConfigErrors(vec![e.clone(), e]);
        assert_eq!(both.to_string().lines().count(), 2);
    }
}
