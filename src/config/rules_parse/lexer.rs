//! The one word splitter of HAProxy lines, shared by the rule lines
//! (`acl`, `http-request`, `use_backend`, ...) and the check lines
//! (`tcp-check`, `http-check`): HAProxy's quoting and escapes, each word
//! with the byte offset where it starts, and [`Words`], the cursor the
//! parsers consume them with.

use super::{err, Parsed};
use crate::config::values::Invalid;

fn invalid(message: impl Into<String>, hint: impl Into<String>) -> Invalid {
    Invalid {
        message: message.into(),
        hint: Some(hint.into()),
    }
}

const QUOTING_HINT: &str = "words are separated by spaces; quote a word with \"...\" or '...', \
     or escape a space as \\ ; escapes: \\\\ \\\" \\' \\r \\n \\t \\xHH";

/// A fetch or converter call, `name` or `name(<args>)`: the name, and the
/// text between the parentheses with its offset in `text`. `what` and
/// `example` word the error for a missing `)`.
pub(crate) fn split_call<'t>(
    at: usize,
    text: &'t str,
    what: &str,
    example: &str,
) -> Parsed<(&'t str, Option<(usize, &'t str)>)> {
    match text.find('(') {
        Some(open) => {
            if !text.ends_with(')') {
                return err(
                    at + text.len(),
                    format!("`{text}`: missing `)`"),
                    format!("write {what} arguments in parentheses, e.g. {example}"),
                );
            }
            Ok((
                &text[..open],
                Some((open + 1, &text[open + 1..text.len() - 1])),
            ))
        }
        None => Ok((text, None)),
    }
}

/// Splits a line into words the way HAProxy's configuration parser does:
/// spaces and tabs separate words; `"..."` groups and keeps escapes active,
/// `'...'` groups verbatim; outside single quotes `\\`, `\ `, `\"`, `\'`,
/// `\#`, `\$`, `\r`, `\n`, `\t` and `\xHH` are escapes and any other
/// backslash is kept (regular expressions need it). Any other character,
/// including a real CR or LF written with a TOML escape, is data.
/// (The words alone: what `convert`'s round-trip tests compare.)
#[cfg(test)]
pub(crate) fn tokenize(line: &str) -> Result<Vec<Vec<u8>>, Invalid> {
    tokenize_spanned(line)
        .map(|words| words.into_iter().map(|(_, w)| w).collect())
        .map_err(|(_, e)| e)
}

/// A word and the byte offset where it starts.
pub(crate) type SpannedWord = (usize, Vec<u8>);

/// [`tokenize`], with the byte offset in `line` where each word starts;
/// an error comes with the offset where it was found.
pub(crate) fn tokenize_spanned(line: &str) -> Result<Vec<SpannedWord>, (usize, Invalid)> {
    let mut words = Vec::new();
    let mut word: Option<(usize, Vec<u8>)> = None;
    let mut chars = line.char_indices().peekable();
    let mut quote: Option<(usize, char)> = None;
    while let Some((at, c)) = chars.next() {
        fn start(word: &mut Option<(usize, Vec<u8>)>, at: usize) -> &mut Vec<u8> {
            &mut word.get_or_insert_with(|| (at, Vec::new())).1
        }
        match (quote.map(|q| q.1), c) {
            (None, ' ' | '\t') => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            (None, '"' | '\'') => {
                quote = Some((at, c));
                start(&mut word, at);
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => push_char(start(&mut word, at), c),
            (_, '\\') => {
                let w = start(&mut word, at);
                match chars.next().map(|(_, c)| c) {
                    Some(e @ ('\\' | ' ' | '"' | '\'' | '#' | '$')) => push_char(w, e),
                    Some('r') => w.push(b'\r'),
                    Some('n') => w.push(b'\n'),
                    Some('t') => w.push(b'\t'),
                    Some('x') => {
                        let hi = chars.next().and_then(|(_, c)| c.to_digit(16));
                        let lo = chars.next().and_then(|(_, c)| c.to_digit(16));
                        match (hi, lo) {
                            (Some(hi), Some(lo)) => w.push((hi * 16 + lo) as u8),
                            _ => {
                                return Err((
                                    at,
                                    invalid("\\x must be followed by two hex digits", QUOTING_HINT),
                                ))
                            }
                        }
                    }
                    // Kept as written, as HAProxy does, so that regular
                    // expressions such as `^\+OK` or `\d+` read naturally.
                    Some(other) => {
                        w.push(b'\\');
                        push_char(w, other);
                    }
                    None => {
                        return Err((at, invalid("line ends with a lone backslash", QUOTING_HINT)))
                    }
                }
            }
            (_, c) => push_char(start(&mut word, at), c),
        }
    }
    if let Some((at, q)) = quote {
        return Err((
            at,
            invalid(format!("unterminated {q}quote{q}"), QUOTING_HINT),
        ));
    }
    words.extend(word);
    Ok(words)
}

fn push_char(word: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    word.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

fn text(word: &[u8]) -> String {
    String::from_utf8_lossy(word).into_owned()
}

/// Offsets inside a word count bytes of the word as unescaped; where the
/// word is written with quotes or escapes they are not offsets in the
/// line, so an error there points at the word's start instead. Found by
/// fuzzing (rule_lines): `set-header X "\x1e...%..."` gave an offset in the
/// middle of a character, and past where the `%` is.
pub(crate) fn in_raw_word<T>(line: &str, parsed: Parsed<T>) -> Parsed<T> {
    parsed.map_err(|(at, invalid)| {
        let words = tokenize_spanned(line).unwrap_or_default();
        let word = words.iter().rev().find(|(start, _)| *start <= at);
        let at = match word {
            Some((start, text)) if !line.as_bytes()[*start..].starts_with(text) => *start,
            _ => at,
        };
        (at.min(line.len()), invalid)
    })
}

/// The words of one line with their offsets, consumed front to back.
pub(crate) struct Words {
    /// Each word's offset, bytes (`\xHH` may give any) and text (invalid
    /// UTF-8 replaced).
    words: Vec<(usize, Vec<u8>, String)>,
    pos: usize,
    /// The line's length: where an error about a missing word points.
    pub(crate) end: usize,
}

impl Words {
    pub(crate) fn new(line: &str) -> Parsed<Self> {
        Ok(Words {
            words: tokenize_spanned(line)?
                .into_iter()
                .map(|(at, w)| {
                    let t = text(&w);
                    (at, w, t)
                })
                .collect(),
            pos: 0,
            end: line.len(),
        })
    }

    fn advance(&mut self) -> Option<&(usize, Vec<u8>, String)> {
        let w = self.words.get(self.pos)?;
        self.pos += 1;
        Some(w)
    }

    /// The next word as text with its offset.
    pub(crate) fn next(&mut self) -> Option<(usize, String)> {
        self.advance().map(|(at, _, t)| (*at, t.clone()))
    }

    /// The next word as text, without its offset.
    pub(crate) fn next_text(&mut self) -> Option<String> {
        self.next().map(|(_, w)| w)
    }

    pub(crate) fn peek(&self) -> Option<&str> {
        self.words.get(self.pos).map(|(_, _, t)| t.as_str())
    }

    /// Every word's text, consumed or not.
    pub(crate) fn texts(&self) -> impl Iterator<Item = &str> {
        self.words.iter().map(|(_, _, t)| t.as_str())
    }

    /// Offset of the next word, or the end of the line.
    pub(crate) fn here(&self) -> usize {
        self.words.get(self.pos).map_or(self.end, |(at, _, _)| *at)
    }

    /// The next word, which must be there.
    pub(crate) fn expect(&mut self, what: &str, hint: &str) -> Parsed<(usize, String)> {
        match self.next() {
            Some(w) => Ok(w),
            None => err(self.end, format!("missing {what}"), hint),
        }
    }

    /// The next word if it is not `if`/`unless` (an action's argument).
    pub(crate) fn argument(&mut self) -> Option<(usize, String)> {
        match self.peek() {
            Some("if" | "unless") | None => None,
            Some(_) => self.next(),
        }
    }

    /// The `what` argument of `keyword`, which must be there (check lines).
    pub(crate) fn required(&mut self, keyword: &str, what: &str) -> Result<Vec<u8>, Invalid> {
        self.advance().map(|(_, w, _)| w.clone()).ok_or_else(|| {
            invalid(
                format!("`{keyword}` needs {what}"),
                format!("write `{keyword} <{what}>`"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        tokenize(line)
            .unwrap()
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect()
    }

    #[test]
    fn tokenizer_follows_haproxy_quoting() {
        assert_eq!(words("send PING\\r\\n"), ["send", "PING\r\n"]);
        assert_eq!(words("  send   \"a b\"  "), ["send", "a b"]);
        assert_eq!(words("send 'a\\r b'"), ["send", "a\\r b"]);
        assert_eq!(words("send a\\ b"), ["send", "a b"]);
        assert_eq!(words("send \\x41\\x42"), ["send", "AB"]);
        assert_eq!(words("send \"\""), ["send", ""]);
        // A real CRLF (TOML "\r\n") is data, not a separator.
        assert_eq!(words("send PING\r\n"), ["send", "PING\r\n"]);
        assert_eq!(
            words("expect rstring ^\\+OK\\d"),
            ["expect", "rstring", "^\\+OK\\d"]
        );
        for bad in ["send \"open", "send a\\", "send \\x4"] {
            assert!(tokenize(bad).is_err(), "{bad}");
        }
    }
}
