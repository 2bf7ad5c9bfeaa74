//! The runtime API's command line: splitting (`;`, spaces, backslash
//! escapes) and matching against the command table.
//!
//! Properties, for any line:
//! - words written back with every separator escaped split to the same
//!   commands and words;
//! - a matched command's keywords are the first words, its arguments the
//!   rest, and no other command matches more keywords;
//! - unmatched words get the unknown-command answer, never nothing.

use crate::admin::cli::command::{find, help, unknown, COMMANDS};
use crate::admin::cli::words::split_line;
use crate::admin::cli::MAX_LINE;

fn escape(word: &str, out: &mut String) {
    for c in word.chars() {
        if matches!(c, '\\' | ';' | ' ' | '\t') {
            out.push('\\');
        }
        out.push(c);
    }
}

pub fn runtime_api(data: &[u8]) {
    let data = &data[..data.len().min(MAX_LINE)];
    let line = String::from_utf8_lossy(data);
    let commands = split_line(&line);
    assert!(!commands.is_empty(), "no command at all");

    if commands.iter().flatten().all(|w| !w.is_empty()) {
        let mut written = String::new();
        for (i, words) in commands.iter().enumerate() {
            if i > 0 {
                written.push(';');
            }
            for (j, w) in words.iter().enumerate() {
                if j > 0 {
                    written.push(' ');
                }
                escape(w, &mut written);
            }
        }
        assert_eq!(split_line(&written), commands, "escaped form {written:?}");
    }

    for words in &commands {
        match find(words) {
            Some((spec, args)) => {
                let n = spec.words.len();
                assert!(words.len() >= n);
                assert!(spec.words.iter().zip(words).all(|(k, w)| *k == w.as_str()));
                assert_eq!(args, &words[n..]);
                let longer = COMMANDS.iter().any(|other| {
                    other.words.len() > n
                        && words.len() >= other.words.len()
                        && other.words.iter().zip(words).all(|(k, w)| *k == w.as_str())
                });
                assert!(!longer, "a longer command matches {words:?}");
            }
            None => {
                let answer = unknown(words);
                assert!(!answer.is_empty() && answer.ends_with('\n'), "{answer:?}");
            }
        }
        let _ = help(words);
    }
}
