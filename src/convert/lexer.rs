//! HAProxy's line grammar (configuration manual, 2.1 to 2.4): words split
//! on unprotected spaces and tabs, `#` starts a comment, `\` escapes,
//! `"..."` (weak quoting, where `$NAME`/`${NAME}` are expanded) and `'...'`
//! (strong quoting), and the `.if`/`.elif`/`.else`/`.endif` blocks.

use std::sync::Arc;

use super::{Input, Origin, Problem};

/// One statement: its origin and its words after quotes, escapes and
/// variables were resolved (bytes: `\xNN` may make any byte).
#[derive(Debug, Clone)]
pub struct Line {
    pub origin: Origin,
    pub words: Vec<Vec<u8>>,
}

impl Line {
    /// Word `i` as text (lossy), or "" when missing.
    pub fn word(&self, i: usize) -> String {
        self.words
            .get(i)
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn problem(&self, why: impl Into<String>, hint: impl Into<String>) -> Problem {
        Problem {
            origin: self.origin.clone(),
            why: why.into(),
            hint: hint.into(),
        }
    }
}

/// The version `.if version_atleast(...)` compares with: the HAProxy
/// whose behaviour percore mirrors.
const HAPROXY_VERSION: [u32; 3] = [2, 6, 0];

/// Build features `feature(<name>)` answers true for (HAProxy 2.6 as
/// Debian builds it, so that `.if feature(OPENSSL)` keeps its TLS lines).
const FEATURES: &[&str] = &["OPENSSL", "LINUX_SPLICE", "TPROXY", "PCRE2", "ZLIB", "LUA"];

/// Reads one file into its active statements; lines that cannot be read
/// (an unterminated quote...) are reported and skipped.
pub fn read(
    input: &Input,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Vec<Line> {
    let file: Arc<str> = Arc::from(input.name.as_str());
    let mut out = Vec::new();
    // One frame per open `.if`: (parent active, a branch was taken, active).
    let mut blocks: Vec<(bool, bool, bool)> = Vec::new();
    let mut section = String::new();
    for (i, raw) in input.bytes.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let origin = Origin {
            file: Arc::clone(&file),
            line: i + 1,
            text: shown(raw),
        };
        let active = blocks.last().is_none_or(|b| b.2);
        let pseudo = Pseudo {
            file: &input.name,
            line: i + 1,
            section: &section,
        };
        let words = match split(raw, env, &pseudo) {
            Ok(w) => w,
            Err(why) => {
                if active {
                    problems.push(Problem {
                        origin,
                        why,
                        hint:
                            "quote with \"...\" or '...', escape with \\ (configuration manual 2.2)"
                                .into(),
                    });
                }
                continue;
            }
        };
        let Some(first) = words.first().cloned() else {
            continue;
        };
        let line = Line { origin, words };
        match first.as_slice() {
            b".if" => {
                let taken = active && condition(&line, env, problems);
                blocks.push((active, taken, taken));
            }
            b".elif" | b".else" => {
                let Some(top) = blocks.last_mut() else {
                    problems.push(line.problem("no .if before it", "open the block with .if"));
                    continue;
                };
                let take = top.0
                    && !top.1
                    && (first.as_slice() == b".else" || condition(&line, env, problems));
                top.1 |= take;
                top.2 = take;
            }
            b".endif" => {
                if blocks.pop().is_none() {
                    problems.push(line.problem("no .if before it", "remove the .endif"));
                }
            }
            _ if !active => {}
            b".diag" | b".notice" | b".warning" => {}
            b".alert" => problems.push(line.problem(
                "HAProxy refuses to start on this .alert",
                "the configuration says it cannot run in this environment",
            )),
            _ => {
                if sections_keyword(&first) {
                    section = line.word(1);
                    if section.is_empty() {
                        section = line.word(0);
                    }
                }
                out.push(line);
            }
        }
    }
    if !blocks.is_empty() {
        problems.push(Problem {
            origin: Origin {
                file,
                line: input.bytes.split(|&b| b == b'\n').count(),
                text: String::new(),
            },
            why: ".if block without .endif at the end of the file".into(),
            hint: "close every .if with .endif".into(),
        });
    }
    out
}

fn sections_keyword(w: &[u8]) -> bool {
    super::sections::Kind::of(&String::from_utf8_lossy(w)).is_some()
        || super::sections::UNSUPPORTED.contains(&String::from_utf8_lossy(w).as_ref())
}

/// A line as it may appear in a comment and a message.
fn shown(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .trim()
        .chars()
        .map(|c| match c {
            '\t' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

/// HAProxy's pseudo-variables `.FILE`, `.LINE`, `.SECTION`.
struct Pseudo<'a> {
    file: &'a str,
    line: usize,
    section: &'a str,
}

/// Cuts a line into words (manual 2.2, 2.3).
fn split(
    raw: &[u8],
    env: &dyn Fn(&str) -> Option<String>,
    pseudo: &Pseudo<'_>,
) -> Result<Vec<Vec<u8>>, String> {
    let mut words: Vec<Vec<u8>> = Vec::new();
    let mut word: Option<Vec<u8>> = None;
    let (mut squote, mut dquote) = (false, false);
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        i += 1;
        if squote {
            if c == b'\'' {
                squote = false;
            } else {
                word.get_or_insert_with(Vec::new).push(c);
            }
            continue;
        }
        match c {
            b' ' | b'\t' if !dquote => {
                words.extend(word.take());
            }
            b'#' if !dquote => break,
            b'\'' if !dquote => {
                squote = true;
                word.get_or_insert_with(Vec::new);
            }
            b'"' => {
                dquote = !dquote;
                word.get_or_insert_with(Vec::new);
            }
            b'\\' => {
                let w = word.get_or_insert_with(Vec::new);
                let Some(&n) = raw.get(i) else {
                    return Err("the line ends with a lone backslash".into());
                };
                i += 1;
                match n {
                    b' ' | b'\t' | b'\\' | b'#' | b'\'' | b'"' | b'$' => w.push(n),
                    b'r' => w.push(b'\r'),
                    b'n' => w.push(b'\n'),
                    b't' => w.push(b'\t'),
                    b'x' => {
                        let hex = raw.get(i..i + 2).and_then(|h| {
                            u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
                        });
                        let Some(b) = hex else {
                            return Err("\\x must be followed by two hex digits".into());
                        };
                        i += 2;
                        w.push(b);
                    }
                    // Other sequences are kept as written (`\1`, `\.` in
                    // regular expressions), as HAProxy does.
                    other => {
                        w.push(b'\\');
                        w.push(other);
                    }
                }
            }
            b'$' if dquote => {
                let (name, default, list, used) = variable(&raw[i..]);
                if used == 0 {
                    word.get_or_insert_with(Vec::new).push(b'$');
                    continue;
                }
                i += used;
                let value = match name.as_str() {
                    ".FILE" => Some(pseudo.file.to_string()),
                    ".LINE" => Some(pseudo.line.to_string()),
                    ".SECTION" => Some(pseudo.section.to_string()),
                    _ => env(&name),
                }
                .or(default)
                .unwrap_or_default();
                if list {
                    // `${NAME[*]}`: one word per space-separated element.
                    let mut parts = value.split(' ').filter(|p| !p.is_empty());
                    if let Some(first) = parts.next() {
                        word.get_or_insert_with(Vec::new)
                            .extend_from_slice(first.as_bytes());
                    }
                    for p in parts {
                        words.extend(word.take());
                        word = Some(p.as_bytes().to_vec());
                    }
                } else {
                    word.get_or_insert_with(Vec::new)
                        .extend_from_slice(value.as_bytes());
                }
            }
            _ => word.get_or_insert_with(Vec::new).push(c),
        }
    }
    if squote || dquote {
        return Err(format!(
            "unterminated {} quote",
            if squote { "single" } else { "double" }
        ));
    }
    words.extend(word);
    Ok(words)
}

/// After a `$`: `NAME`, `{NAME}`, `{NAME-default}` or `{NAME[*]}`.
/// Returns (name, default, list form, bytes used; 0 when not a variable).
fn variable(rest: &[u8]) -> (String, Option<String>, bool, usize) {
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'.';
    if rest.first() == Some(&b'{') {
        let Some(close) = rest.iter().position(|&b| b == b'}') else {
            return (String::new(), None, false, 0);
        };
        let inner = String::from_utf8_lossy(&rest[1..close]).into_owned();
        let (inner, list) = match inner.strip_suffix("[*]") {
            Some(n) => (n.to_string(), true),
            None => (inner, false),
        };
        let (name, default) = match inner.split_once('-') {
            Some((n, d)) => (n.to_string(), Some(d.to_string())),
            None => (inner, None),
        };
        return (name, default, list, close + 1);
    }
    let n = rest.iter().take_while(|&&b| is_name(b)).count();
    if n == 0 || rest[0].is_ascii_digit() {
        return (String::new(), None, false, 0);
    }
    (
        String::from_utf8_lossy(&rest[..n]).into_owned(),
        None,
        false,
        n,
    )
}

/// Evaluates the condition of `.if`/`.elif` (manual 2.4); an expression
/// that cannot be read is reported and taken as false.
fn condition(
    line: &Line,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> bool {
    let text: Vec<String> = (1..line.len()).map(|i| line.word(i)).collect();
    let text = text.join(" ");
    let mut p = Cond {
        s: text.as_bytes(),
        at: 0,
        env,
    };
    match p.or().and_then(|v| {
        p.skip();
        if p.at == p.s.len() {
            Ok(v)
        } else {
            Err(format!("unexpected text at {:?}", &text[p.at..]))
        }
    }) {
        Ok(v) => v,
        Err(e) => {
            problems.push(line.problem(
                format!("cannot evaluate the condition: {e}"),
                "defined(), feature(), streq(), strneq(), version_atleast(), version_before(), !, &&, ||, ( )",
            ));
            false
        }
    }
}

struct Cond<'a> {
    s: &'a [u8],
    at: usize,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Cond<'_> {
    fn skip(&mut self) {
        while self.s.get(self.at).is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.skip();
        if self.s[self.at..].starts_with(tok.as_bytes()) {
            self.at += tok.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<bool, String> {
        let mut v = self.and()?;
        while self.eat("||") {
            v |= self.and()?;
        }
        Ok(v)
    }

    fn and(&mut self) -> Result<bool, String> {
        let mut v = self.term()?;
        while self.eat("&&") {
            v &= self.term()?;
        }
        Ok(v)
    }

    fn term(&mut self) -> Result<bool, String> {
        if self.eat("!") {
            return Ok(!self.term()?);
        }
        if self.eat("(") {
            let v = self.or()?;
            if !self.eat(")") {
                return Err("missing )".into());
            }
            return Ok(v);
        }
        self.skip();
        if self.at == self.s.len() {
            // An empty condition is false.
            return Ok(false);
        }
        let start = self.at;
        while self
            .s
            .get(self.at)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
        {
            self.at += 1;
        }
        let word = String::from_utf8_lossy(&self.s[start..self.at]).into_owned();
        if let Ok(n) = word.parse::<i64>() {
            return Ok(n != 0);
        }
        if !self.eat("(") {
            return Err(format!("unknown predicate {word:?}"));
        }
        let close = self.s[self.at..]
            .iter()
            .position(|&b| b == b')')
            .ok_or("missing )")?;
        let args = String::from_utf8_lossy(&self.s[self.at..self.at + close]).into_owned();
        self.at += close + 1;
        let args: Vec<&str> = args.split(',').collect();
        let arg = |i: usize| args.get(i).copied().unwrap_or("");
        Ok(match word.as_str() {
            "defined" => (self.env)(arg(0)).is_some(),
            "feature" => FEATURES.contains(&arg(0)),
            "streq" => arg(0) == arg(1),
            "strneq" => arg(0) != arg(1),
            "version_atleast" => version(arg(0)) <= HAPROXY_VERSION,
            "version_before" => HAPROXY_VERSION < version(arg(0)),
            other => return Err(format!("unknown predicate {other:?}")),
        })
    }
}

/// `2.4-dev19` → [2, 4, 0]: missing parts are zero.
fn version(text: &str) -> [u32; 3] {
    let mut v = [0; 3];
    let main = text.split('-').next().unwrap_or("");
    for (slot, part) in v.iter_mut().zip(main.split('.')) {
        *slot = part.parse().unwrap_or(0);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str, env: &[(&str, &str)]) -> Vec<String> {
        let lookup = |n: &str| {
            env.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        };
        let pseudo = Pseudo {
            file: "f.cfg",
            line: 7,
            section: "web",
        };
        split(line.as_bytes(), &lookup, &pseudo)
            .unwrap()
            .into_iter()
            .map(|w| String::from_utf8_lossy(&w).into_owned())
            .collect()
    }

    #[test]
    fn the_manuals_equivalent_log_formats_read_alike() {
        let want = vec!["log-format", "%{+Q}o %t %s %{-Q}r"];
        for line in [
            r"log-format %{+Q}o\ %t\ %s\ %{-Q}r",
            r#"log-format "%{+Q}o %t %s %{-Q}r""#,
            r"log-format '%{+Q}o %t %s %{-Q}r'",
            r#"log-format "%{+Q}o %t"' %s %{-Q}r'"#,
            r#"log-format "%{+Q}o %t"' %s'\ %{-Q}r"#,
        ] {
            assert_eq!(words(line, &[]), want, "{line}");
        }
    }

    #[test]
    fn escapes_comments_and_variables() {
        assert_eq!(
            words(r"send PING\r\n  # comment", &[]),
            ["send", "PING\r\n"]
        );
        assert_eq!(words(r"a\#b c\x41 \1 \.", &[]), ["a#b", "cA", r"\1", r"\."]);
        assert_eq!(
            words(r#"x "$A" '$A' $A"#, &[("A", "v")]),
            ["x", "v", "$A", "$A"]
        );
        assert_eq!(
            words(r#"bind "${IP-127.0.0.1}:${PORT}""#, &[("PORT", "80")]),
            ["bind", "127.0.0.1:80"]
        );
        assert_eq!(
            words(r#"x "${L[*]}" y"#, &[("L", "a b")]),
            ["x", "a", "b", "y"]
        );
        assert_eq!(words(r#"x "\$A" """#, &[("A", "v")]), ["x", "$A", ""]);
        assert_eq!(
            words(r#"x "${.LINE}" "${.SECTION}""#, &[]),
            ["x", "7", "web"]
        );
        assert!(split(
            b"x 'open",
            &|_| None,
            &Pseudo {
                file: "",
                line: 1,
                section: ""
            }
        )
        .is_err());
    }

    #[test]
    fn conditional_blocks() {
        let text = ".if streq(a,a) && !defined(PERCORE_SURELY_UNSET_VAR)\nkeep1\n.elif 1\ndrop\n.else\ndrop\n.endif\n.if 0\ndrop\n.elif version_atleast(2.4-dev19)\nkeep2\n.endif\n.if feature(OPENSSL) && (0 || 1)\n keep3\n.endif\n";
        let input = Input {
            name: "t.cfg".into(),
            bytes: text.as_bytes().to_vec(),
        };
        let mut problems = Vec::new();
        let lines = read(&input, &|_| None, &mut problems);
        let kept: Vec<String> = lines.iter().map(|l| l.word(0)).collect();
        assert_eq!(kept, ["keep1", "keep2", "keep3"]);
        assert!(problems.is_empty(), "{problems:?}");
    }
}
