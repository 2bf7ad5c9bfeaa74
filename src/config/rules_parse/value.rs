//! Values with samples: `%[fetch,converter...]` inside rule arguments
//! (`set-header X-Client %[src]`) and log formats.

use super::{err, parse_fetch, Env, Parsed};
use crate::rules::convert_ops::ValType;
use crate::rules::format::matching_bracket;
use crate::rules::{Fetch, Format, Part};

/// A value with `%[fetch,converter...]` parts.
pub(crate) fn parse_format(at: usize, text: &str, env: &Env<'_>) -> Parsed<Format> {
    let mut parts = Vec::new();
    let mut literal = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            literal.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'%') => {
                literal.push(b'%');
                i += 2;
            }
            Some(b'[') => {
                let Some(close) = matching_bracket(&text[i + 2..]) else {
                    return err(
                        at + i,
                        "`%[` without its `]`",
                        "write %[fetch] or %[fetch,converter]",
                    );
                };
                let inner = &text[i + 2..i + 2 + close];
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal).into()));
                }
                parts.push(parse_expression(at + i + 2, inner, env)?);
                i += 2 + close + 1;
            }
            _ => return err(
                at + i,
                "a `%` in a value must start %[fetch] (or be doubled: %%)",
                "HAProxy log variables such as %ci are not supported in rule values; use %[src]",
            ),
        }
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal.into()));
    }
    Ok(Format { parts })
}

/// The inside of a log format's `%[...]`: a fetch that has a value when
/// the line is written (end of the stream: the request and response heads
/// are gone) and its converters.
pub(crate) fn parse_log_sample(
    at: usize,
    text: &str,
    env: &Env<'_>,
) -> Parsed<(Fetch, Vec<crate::rules::Conv>)> {
    match parse_expression(at, text, env)? {
        Part::Sample { fetch, .. } if !fetch.available_at_log() => err(
            at,
            format!("`{}` has no value when the log line is written", text.trim()),
            "log-format samples read the connection (src, dst, ssl_fc*, fc_pp_*, var(sess.*), sc_*, hostname, date, unique-id...); log request headers with capture-request-header and %hr",
        ),
        Part::Sample { fetch, converters } => Ok((fetch, converters)),
        Part::Literal(_) => err(at, "expected a fetch", "write %[fetch] or %[fetch,converter]"),
    }
}

/// `fetch(args),conv(args),...`, splitting on commas outside parentheses.
fn parse_expression(at: usize, text: &str, env: &Env<'_>) -> Parsed<Part> {
    let pieces = super::conv::split_chain(text);
    let (off, fetch_text) = pieces[0];
    let (fetch, suffix) = parse_fetch(at + off, fetch_text.trim(), env)?;
    if suffix.is_some() {
        return err(
            at + off,
            format!("`{fetch_text}` is a match, not a fetch"),
            "in a value write the plain fetch, e.g. %[path]",
        );
    }
    let (converters, _) =
        super::conv::parse_converters(at, &pieces[1..], ValType::of(fetch.sample_type()), env)?;
    Ok(Part::Sample { fetch, converters })
}
