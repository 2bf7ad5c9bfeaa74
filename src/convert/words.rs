//! Writing HAProxy words back as text percore reads: a rule line
//! (`acl`, `http-request`, `tcp-check`...) is stored in percore as one
//! string that percore splits again with HAProxy's quoting, so each word
//! the lexer resolved is quoted again when it needs to be.

/// Joins words into one rule string that splits back into the same words
/// (`src/config/rules_parse/lexer.rs` `tokenize` is the reader).
pub fn join(words: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&quote(w));
    }
    out
}

/// One word, bare when nothing in it is special, else in `"..."` with
/// `\\`, `\"`, `\r`, `\n`, `\t` and `\xHH` escapes. A backslash that
/// starts no escape (`\.` and `\1` in regexes) reads back as written, so
/// it leaves the word bare.
pub fn quote(word: &[u8]) -> String {
    let plain = !word.is_empty()
        && std::str::from_utf8(word).is_ok_and(|s| {
            let mut chars = s.chars().peekable();
            while let Some(c) = chars.next() {
                let special = match c {
                    '\\' => chars.peek().is_none_or(|n| {
                        matches!(
                            n,
                            '\\' | ' ' | '"' | '\'' | '#' | '$' | 'r' | 'n' | 't' | 'x' | '\t'
                        )
                    }),
                    c => c.is_control() || matches!(c, ' ' | '"' | '\''),
                };
                if special {
                    return false;
                }
            }
            true
        });
    if plain {
        return String::from_utf8_lossy(word).into_owned();
    }
    let mut out = String::from("\"");
    let text = String::from_utf8_lossy(word);
    if text.contains('\u{FFFD}') && std::str::from_utf8(word).is_err() {
        // Bytes that are not UTF-8 (`\xff`): every non-ASCII byte escaped.
        for &b in word {
            push_byte(&mut out, b);
        }
    } else {
        for c in text.chars() {
            if c.is_ascii() {
                push_byte(&mut out, c as u8);
            } else {
                out.push(c);
            }
        }
    }
    out.push('"');
    out
}

fn push_byte(out: &mut String, b: u8) {
    match b {
        b'\\' => out.push_str("\\\\"),
        b'"' => out.push_str("\\\""),
        b'\r' => out.push_str("\\r"),
        b'\n' => out.push_str("\\n"),
        b'\t' => out.push_str("\\t"),
        0x20..=0x7e => out.push(b as char),
        _ => out.push_str(&format!("\\x{b:02x}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_survive_percores_tokenizer() {
        let cases: Vec<Vec<u8>> = vec![
            b"plain".to_vec(),
            b"two words".to_vec(),
            b"PING\r\n".to_vec(),
            b"\\1 \\.".to_vec(),
            b"^/v[0-9]+\\.json$".to_vec(),
            b"\\".to_vec(),
            b"a\\n".to_vec(),
            b"q\"uo'te".to_vec(),
            b"".to_vec(),
            vec![0x05, 0x00, 0xff, b'#', b'$'],
            "caf\u{e9}".as_bytes().to_vec(),
        ];
        let line = join(&cases);
        let back = crate::config::tokenize_for_tests(&line).unwrap();
        assert_eq!(back, cases, "{line}");
    }
}
