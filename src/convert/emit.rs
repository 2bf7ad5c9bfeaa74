//! Writes the tables as TOML: each key once (the last line that set it
//! wins, earlier ones stay as comments), lists one element per line, and
//! every value followed by a comment naming the line it comes from.
//! Strings and keys are quoted here; `tests` parse the result back.

use super::{Entry, Input, Table, Val};

pub fn header(inputs: &[Input], orphans: &[String]) -> String {
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    let mut out = format!(
        "# percore configuration converted from {} by `percore convert`.\n\
         # Each item names the HAProxy line it comes from; inherited defaults are\n\
         # written into every section that uses them.\n",
        comment_text(&names.join(", "))
    );
    for o in orphans {
        out.push_str(&format!("# {}\n", comment_text(o)));
    }
    out
}

pub fn tables(tables: &[Table]) -> String {
    let mut out = String::new();
    for t in tables {
        out.push('\n');
        out.push_str(&t.header);
        if let Some(o) = &t.origin {
            out.push_str(&format!("  # {}", comment_text(&o.to_string())));
        }
        out.push('\n');
        for n in &t.notes {
            out.push_str(&format!("# {}\n", comment_text(n)));
        }
        for (key, group) in groups(&t.entries) {
            write_group(&mut out, &key, &group);
        }
    }
    out
}

/// Entries by key, keys in order of first appearance, keys sharing their
/// first segment kept together (`timeout.client`, `timeout.server`).
fn groups(entries: &[Entry]) -> Vec<(Vec<String>, Vec<&Entry>)> {
    let mut out: Vec<(Vec<String>, Vec<&Entry>)> = Vec::new();
    for e in entries {
        match out.iter_mut().find(|(k, _)| *k == e.key) {
            Some((_, g)) => g.push(e),
            None => out.push((e.key.clone(), vec![e])),
        }
    }
    let firsts: Vec<String> = out.iter().map(|(k, _)| k[0].clone()).collect();
    out.sort_by_key(|(k, _)| firsts.iter().position(|f| *f == k[0]));
    out
}

fn comment_for(e: &Entry) -> String {
    let mut c = e.origin.to_string();
    if let Some(n) = &e.note {
        c.push_str(&format!(" ({n})"));
    }
    comment_text(&c)
}

fn write_group(out: &mut String, key: &[String], group: &[&Entry]) {
    let key_text: Vec<String> = key.iter().map(|k| key_segment(k)).collect();
    let key_text = key_text.join(".");
    let is_list = group
        .iter()
        .any(|e| e.push || matches!(e.value, Val::List(_)));
    if !is_list {
        let (last, earlier) = group.split_last().expect("a group has an entry");
        for e in earlier {
            out.push_str(&format!("# {} (overridden below)\n", comment_for(e)));
        }
        out.push_str(&format!(
            "{key_text} = {}  # {}\n",
            value(&last.value),
            comment_for(last)
        ));
        return;
    }
    let mut items: Vec<(&Val, &Entry)> = Vec::new();
    for e in group {
        if e.push {
            items.push((&e.value, e));
        } else {
            if let Val::List(vs) = &e.value {
                items = vs.iter().map(|v| (v, *e)).collect();
            }
            out.push_str(&format!("# {}\n", comment_for(e)));
        }
    }
    if items.is_empty() {
        out.push_str(&format!("{key_text} = []\n"));
        return;
    }
    out.push_str(&format!("{key_text} = [\n"));
    for (v, e) in items {
        out.push_str(&format!("  {},  # {}\n", value(v), comment_for(e)));
    }
    out.push_str("]\n");
}

/// A comment line's text: no control characters (TOML forbids them).
fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect()
}

fn key_segment(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        k.to_string()
    } else {
        basic_string(k)
    }
}

pub fn value(v: &Val) -> String {
    match v {
        Val::Str(s) => string(s),
        Val::Int(n) => n.to_string(),
        Val::Bool(b) => b.to_string(),
        Val::Table(t) => {
            if t.is_empty() {
                return "{}".into();
            }
            // A key given twice on one line (`stats socket ... mode 600
            // mode 600`) is written once, the later value winning as
            // HAProxy applies options in order: a TOML table cannot hold a
            // key twice (found by fuzzing `convert`).
            let parts: Vec<String> = t
                .iter()
                .enumerate()
                .filter(|(i, (k, _))| !t[i + 1..].iter().any(|(later, _)| later == k))
                .map(|(_, (k, v))| format!("{} = {}", key_segment(k), value(v)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
        Val::List(items) => {
            let parts: Vec<String> = items.iter().map(value).collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

/// A TOML string: a literal string ('...') when the text has backslashes
/// or double quotes and can be written that way (rules read better
/// without doubled backslashes), else a basic string with escapes.
fn string(s: &str) -> String {
    let literal_ok = !s.contains('\'') && !s.chars().any(|c| c.is_control() && c != '\t');
    if literal_ok && (s.contains('\\') || s.contains('"')) {
        format!("'{s}'")
    } else {
        basic_string(s)
    }
}

fn basic_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_keys_parse_back() {
        let samples = [
            "plain",
            "with \"double\" quotes",
            "it's",
            r"back\slash",
            "it's a \\ and \"",
            "tab\tcr\rlf\n",
            "\u{7f}\u{1}",
            "caf\u{e9}",
            "",
        ];
        for s in samples {
            let doc = format!("{} = {}\n", key_segment(s), string(s));
            let parsed: toml_edit::DocumentMut =
                doc.parse().unwrap_or_else(|e| panic!("{doc}: {e}"));
            let (k, v) = parsed.iter().next().unwrap();
            assert_eq!(k, s, "{doc}");
            assert_eq!(v.as_str(), Some(s), "{doc}");
        }
    }
}
