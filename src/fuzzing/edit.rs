//! Header rewriting (`rules::edit`, through `rules::view` as the session
//! runs it) on arbitrary heads with arbitrary `http-request` rewrite
//! lines.
//!
//! Input: rule lines, a NUL byte, then the request head. Properties,
//! after every rewrite:
//! - the fields that frame the body and the connection
//!   (Content-Length, Transfer-Encoding, Connection) are exactly those
//!   received;
//! - `del-header n` leaves no field `n`; `set-header n` leaves exactly
//!   one; `add-header n` adds one;
//! - the rewritten head is still one HTTP/1.1 request head: it parses,
//!   with the same method, version and framing. Refusals a rule can
//!   cause on purpose are allowed (a second Host added by `add-header`,
//!   a `set-path` that writes what is no valid target: the server sees
//!   what the operator wrote, as with HAProxy).

use std::path::Path;

use crate::config::fuzz_access::{parse_http_request, Env};
use crate::http::{HeadError, ParseStatus, RequestHead, RequestParser};
use crate::rules::edit::{self, EditBuffers};
use crate::rules::sample::{ConnFacts, Facts};
use crate::rules::{HeaderEdit, RequestAction, RequestView};

const FRAMING: [&str; 3] = ["content-length", "transfer-encoding", "connection"];

fn fields_named(head: &RequestHead<'_>, name: &str) -> Vec<Vec<u8>> {
    head.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v.to_vec())
        .collect()
}

fn serialize(head: &RequestHead<'_>) -> Vec<u8> {
    let mut out = format!(
        "{} {} {}\r\n",
        head.method,
        head.target,
        head.version.as_str()
    )
    .into_bytes();
    for (n, v) in head.headers.iter() {
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

pub fn header_edit(data: &[u8]) {
    let Some(nul) = data.iter().position(|&b| b == 0) else {
        return;
    };
    let (rules_text, head_bytes) = (String::from_utf8_lossy(&data[..nul]), &data[nul + 1..]);
    if super::names_special_files(&rules_text) {
        return;
    }
    // Fresh per input: maps a line reads are not kept between inputs.
    let maps = crate::maps::load::MapRegistry::default();
    let env = Env {
        acls: &[],
        userlists: &[],
        base_dir: Path::new("/nonexistent-fuzz-dir"),
        backends: &[],
        response: false,
        payload: false,
        tables: &[],
        own_table: None,
        maps: &maps,
        servers: &[],
        frontends: &[],
        section: None,
    };
    let edits: Vec<HeaderEdit> = rules_text
        .lines()
        .filter_map(|line| match parse_http_request(line, &env) {
            Ok(rule) => match rule.action {
                RequestAction::Edit(e) => Some(e),
                _ => None,
            },
            Err(_) => None,
        })
        .take(16)
        .collect();
    if edits.is_empty() {
        return;
    }
    let mut parser = RequestParser::default();
    let Some(received) = parser.parse(head_bytes).complete() else {
        return;
    };
    let framing_before: Vec<_> = FRAMING.iter().map(|f| fields_named(&received, f)).collect();
    let conn = ConnFacts {
        src: "192.0.2.1:4000".parse().expect("literal address"),
        dst: "127.0.0.1:80".parse().expect("literal address"),
        tls: None,
        pp: None,
        stick: Default::default(),
        vars: Default::default(),
        live: Default::default(),
        unique_id: Default::default(),
        captures: Default::default(),
        log_level: Default::default(),
        timeouts: Default::default(),
        early_hints: Default::default(),
    };
    let mut view = RequestView::default();
    let mut bufs = EditBuffers::default();
    for e in &edits {
        let count =
            |view: &RequestView, name: &str| fields_named(&view.current(&received), name).len();
        let name = match e {
            HeaderEdit::Set { name, .. }
            | HeaderEdit::Add { name, .. }
            | HeaderEdit::Del { name }
            | HeaderEdit::Replace { name, .. }
            | HeaderEdit::ReplaceValue { name, .. } => Some(name.to_string()),
            HeaderEdit::SetPath(_)
            | HeaderEdit::SetQuery(_)
            | HeaderEdit::ReplacePath { .. }
            | HeaderEdit::ReplaceUri { .. }
            | HeaderEdit::SetUri(_)
            | HeaderEdit::SetMethod(_)
            | HeaderEdit::NormalizeUri(_)
            | HeaderEdit::SetStatus { .. } => None,
        };
        let before = name.as_deref().map_or(0, |n| count(&view, n));
        {
            let current = view.current(&received);
            let facts = Facts::request(&conn, &current);
            edit::prepare(e, &facts, &mut bufs);
        }
        view.apply(&received, e, &mut bufs);
        let current = view.current(&received);
        let after = name.as_deref().map_or(0, |n| count(&view, n));
        match e {
            HeaderEdit::Set { .. } => assert_eq!(after, 1, "set-header left {after} fields"),
            HeaderEdit::Add { .. } => assert_eq!(after, before + 1, "add-header"),
            HeaderEdit::Del { .. } => assert_eq!(after, 0, "del-header left {after} fields"),
            HeaderEdit::Replace { .. } => assert_eq!(after, before, "replace-header"),
            HeaderEdit::ReplaceValue { .. } => assert_eq!(after, before, "replace-value"),
            HeaderEdit::SetPath(_)
            | HeaderEdit::SetQuery(_)
            | HeaderEdit::ReplacePath { .. }
            | HeaderEdit::ReplaceUri { .. }
            | HeaderEdit::SetUri(_)
            | HeaderEdit::SetMethod(_)
            | HeaderEdit::NormalizeUri(_)
            | HeaderEdit::SetStatus { .. } => {}
        }
        let framing_after: Vec<_> = FRAMING.iter().map(|f| fields_named(&current, f)).collect();
        assert_eq!(
            framing_after, framing_before,
            "{e:?} changed a framing field"
        );

        let bytes = serialize(&current);
        let mut reparse = RequestParser::default();
        match reparse.parse(&bytes) {
            ParseStatus::Complete(h) => {
                assert_eq!(
                    (h.method, h.version, h.framing),
                    (received.method, received.version, received.framing),
                    "{e:?} changed the request's meaning"
                );
            }
            ParseStatus::Error(
                HeadError::MultipleHost
                | HeadError::HostMismatch
                | HeadError::InvalidTarget
                | HeadError::BadRequestLine
                | HeadError::HeadTooLarge
                | HeadError::TooManyHeaders,
            ) => return,
            other => panic!(
                "after {e:?} the head {:?} parses as {other:?}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }
}
