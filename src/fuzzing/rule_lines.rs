//! HAProxy line syntax: ACLs, conditions, `use_backend`, `tcp-request`,
//! `http-request`, `http-response`, `tcp-check` and `http-check` lines.
//!
//! Input: a selector byte, then the line (or, for the check lists, lines
//! separated by LF). Properties:
//! - an error points inside the line (an offset at most its length, on a
//!   character boundary: the loader turns it into line:column) and says
//!   something, with a hint;
//! - a check list's errors name rules that exist;
//! - parsing is deterministic (the same line gives the same error);
//! - the word splitter's offsets are increasing character boundaries.

use std::path::Path;

use crate::config::fuzz_access::{
    parse_acl, parse_http_check, parse_http_request, parse_http_response, parse_tcp_check,
    parse_tcp_request, parse_use_backend, tokenize_spanned, Env,
};

/// `(offset, message, hint)` of a refused line.
type Refusal = (usize, String, Option<String>);

fn refusal<T>(r: Result<T, crate::config::fuzz_access::Located>) -> Option<Refusal> {
    r.err().map(|(at, e)| (at, e.message, e.hint))
}

fn check_refusal(line: &str, r: &Option<Refusal>) {
    if let Some((at, message, hint)) = r {
        assert!(
            *at <= line.len(),
            "error at {at} beyond a {}-byte line: {message}",
            line.len()
        );
        assert!(
            line.is_char_boundary(*at),
            "error at {at} inside a character: {message}"
        );
        assert!(!message.trim().is_empty(), "empty error message at {at}");
        assert!(
            hint.as_deref().is_some_and(|h| !h.trim().is_empty()),
            "no hint for `{message}`"
        );
    }
}

pub fn rule_lines(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    if super::names_special_files(&text) {
        return;
    }
    let acls = ["is_ws".to_string(), "local".to_string()];
    let backends = ["app".to_string(), "static".to_string()];
    // Fresh per input: maps a line reads are not kept between inputs.
    let maps = crate::maps::load::MapRegistry::default();
    let env = Env {
        acls: &acls,
        userlists: &[],
        base_dir: Path::new("/nonexistent-fuzz-dir"),
        backends: &backends,
        response: selector % 8 == 4,
        payload: selector & 0x80 != 0,
        tables: &[],
        own_table: None,
        maps: &maps,
        servers: &[],
        frontends: &[],
        section: None,
    };
    let line: &str = &text;
    let parse = || -> Option<Refusal> {
        match selector % 8 {
            0 => refusal(parse_acl(line, &env)),
            1 => refusal(parse_use_backend(line, &env)),
            2 => refusal(parse_tcp_request(line, &env)),
            3 => refusal(parse_http_request(line, &env)),
            4 => refusal(parse_http_response(line, &env)),
            _ => None,
        }
    };
    match selector % 8 {
        0..=4 => {
            let first = parse();
            check_refusal(line, &first);
            assert_eq!(parse(), first, "a second parse of the same line differs");
        }
        5 | 6 => {
            let lines: Vec<String> = line.split('\n').map(str::to_string).collect();
            let errors = if selector % 8 == 5 {
                parse_tcp_check(&lines).err()
            } else {
                parse_http_check(&lines).err()
            };
            for (index, e) in errors.unwrap_or_default() {
                assert!(
                    index < lines.len(),
                    "error names rule {index} of {}",
                    lines.len()
                );
                assert!(!e.message.trim().is_empty(), "empty error message");
            }
        }
        _ => match tokenize_spanned(line) {
            Ok(words) => {
                let mut last = None;
                for (at, _) in &words {
                    assert!(
                        *at < line.len() && line.is_char_boundary(*at),
                        "word at {at}"
                    );
                    assert!(last < Some(*at), "word offsets not increasing");
                    last = Some(*at);
                }
            }
            Err((at, e)) => {
                assert!(
                    at <= line.len() && line.is_char_boundary(at),
                    "error at {at}"
                );
                assert!(!e.message.trim().is_empty());
            }
        },
    }
}
