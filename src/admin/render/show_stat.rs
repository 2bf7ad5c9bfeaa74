//! The runtime API's `show stat`, in HAProxy 2.6's three formats: the CSV
//! (the same as the page's `;csv`), `typed` lines and `json`, with
//! HAProxy's `<iid> <type> <sid>` filter and its `desc`, `up` and
//! `no-maint` words. Everything is rendered from [`fields::FIELDS`].
//!
//! The output is the command's answer without the empty line that ends
//! every answer on HAProxy's CLI; the socket adds it.
//!
//! Typed lines are `<obj>.<iid>.<sid>.<pos>.<name>.1:<tag>:<value>`, one
//! per non-empty field, objects one after another (HAProxy prints no line
//! between them). JSON is one line: an array of objects, each an array of
//! field objects (`objType`, `proxyId`, `id`, `field`, `processNum`,
//! `tags`, `value`), as HAProxy's `show stat json`.

use std::fmt::Write;

use super::csv;
use super::fields::{self, Field, Row, FIELDS};
use super::typed::Val;
use super::View;
use crate::log::format::json_str;

/// HAProxy's process number: percore is one process.
const PROCESS_NUM: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Csv,
    Typed,
    Json,
}

/// Which proxy `show stat <iid|name> <type> <sid>` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxySel {
    /// `-1`.
    All,
    Id(u32),
    /// Every percore proxy of this name (a frontend and a backend may
    /// share one, which is what a HAProxy `listen` section shows), or if
    /// none has it, the id HAProxy's `atoi` reads from it.
    Name(String),
}

/// `<iid|name> <type> <sid>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub proxy: ProxySel,
    /// [`fields::FE`] | [`fields::BE`] | [`fields::SV`]; `-1` is all.
    pub types: u8,
    /// `None` for `-1`: every server.
    pub sid: Option<u32>,
}

/// A parsed `show stat` command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShowStat {
    pub filter: Option<Filter>,
    pub format: Format,
    /// Typed lines end with `:"<help>"`.
    pub desc: bool,
    /// Only servers that are up (`up`).
    pub up: bool,
    /// No servers in maintenance (`no-maint`).
    pub no_maint: bool,
}

/// The messages are HAProxy's own, answered on the CLI as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShowStatError {
    #[error("Invalid statistics domain.")]
    Domain,
    #[error("No such proxy.")]
    NoSuchProxy,
}

/// HAProxy's `atoi`: leading digits with an optional sign, 0 otherwise.
fn atoi(s: &str) -> i64 {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let n = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |n, d| {
            n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
        });
    if neg {
        -n
    } else {
        n
    }
}

impl ShowStat {
    /// Parses the words after `show stat`, as HAProxy 2.6 does:
    /// `[domain proxy] [<iid|name> <type> <sid>] [typed|json] [desc]
    /// [up|no-maint]`. Three words at the start are always the filter
    /// (HAProxy reads `show stat json desc up` as proxy "json"); other
    /// unknown words are ignored.
    pub fn parse(words: &[&str]) -> Result<ShowStat, ShowStatError> {
        let mut words = words;
        if let [first, rest @ ..] = words {
            if *first == "domain" {
                match rest.first() {
                    Some(&"proxy") => words = &rest[1..],
                    _ => return Err(ShowStatError::Domain),
                }
            }
        }
        let mut cmd = ShowStat::default();
        if let [px, ty, sid, rest @ ..] = words {
            // Names are resolved against the configuration when the
            // command runs (see `select`).
            let proxy = match *px {
                "-1" => ProxySel::All,
                name => ProxySel::Name(name.to_string()),
            };
            let types = match atoi(ty) {
                // -1 sets every bit, as in HAProxy.
                n if n < 0 => fields::ALL,
                n => (n & i64::from(fields::ALL)) as u8,
            };
            let sid = match atoi(sid) {
                -1 => None,
                // No server has id 0: other values match nothing.
                n => Some(u32::try_from(n).unwrap_or(0)),
            };
            cmd.filter = Some(Filter { proxy, types, sid });
            words = rest;
        }
        for w in words {
            match *w {
                "typed" => cmd.format = Format::Typed,
                "json" => cmd.format = Format::Json,
                "desc" => cmd.desc = true,
                "up" => cmd.up = true,
                "no-maint" => cmd.no_maint = true,
                _ => {}
            }
        }
        Ok(cmd)
    }
}

/// The rows `cmd` selects, in CSV order.
fn select<'a>(v: &View<'a>, cmd: &ShowStat) -> Result<Vec<Row<'a>>, ShowStatError> {
    let rows = fields::rows(v);
    // HAProxy looks a proxy up by name first, then reads a number; id 0
    // (and so any other word) is refused.
    let proxy = match cmd.filter.as_ref().map(|f| &f.proxy) {
        Some(ProxySel::Name(name)) if !rows.iter().any(|r| r.proxy_name() == name) => {
            match u32::try_from(atoi(name)) {
                Ok(id) if id > 0 => ProxySel::Id(id),
                _ => return Err(ShowStatError::NoSuchProxy),
            }
        }
        Some(ProxySel::Id(0)) => return Err(ShowStatError::NoSuchProxy),
        Some(sel) => sel.clone(),
        None => ProxySel::All,
    };
    Ok(rows
        .into_iter()
        .filter(|r| match &cmd.filter {
            None => true,
            Some(f) => {
                let proxy = match &proxy {
                    ProxySel::All => true,
                    ProxySel::Id(id) => r.iid() == *id,
                    ProxySel::Name(name) => r.proxy_name() == name,
                };
                let server = match (r, f.sid) {
                    (Row::Server(sv), Some(sid)) => sv.sid == sid,
                    _ => true,
                };
                proxy && server && f.types & r.kind().bit() != 0
            }
        })
        .filter(|r| match r.server_state() {
            Some(st) => {
                let look = st.status().look();
                (!cmd.up || look.reported_up) && (!cmd.no_maint || !look.maint)
            }
            None => true,
        })
        .collect())
}

/// The non-empty fields of a row with HAProxy positions.
fn typed_fields<'r, 'a>(
    r: &'r Row<'a>,
) -> impl Iterator<Item = (&'static Field, u16, Val<'a>)> + 'r {
    FIELDS.iter().filter_map(move |f| {
        let pos = f.pos?;
        let val = r.get(f);
        (!val.is_empty()).then_some((f, pos, val))
    })
}

fn typed_row(out: &mut String, r: &Row<'_>, desc: bool) {
    let kind = r.kind();
    for (f, pos, val) in typed_fields(r) {
        let _ = write!(
            out,
            "{}.{}.{}.{pos}.{}.{PROCESS_NUM}:",
            kind.letter(),
            r.iid(),
            r.sid(),
            f.name
        );
        f.tag(kind).write(out);
        out.push(':');
        val.write(out);
        if desc {
            let _ = write!(out, ":\"{}\"", f.help(kind));
        }
        out.push('\n');
    }
}

fn json_row(out: &mut String, r: &Row<'_>) {
    let kind = r.kind();
    out.push('[');
    for (i, (f, pos, val)) in typed_fields(r).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let tag = f.tag(kind);
        let _ = write!(
            out,
            "{{\"objType\":\"{}\",\"proxyId\":{},\"id\":{},\"field\":{{\"pos\":{pos},\"name\":",
            kind.obj_type(),
            r.iid(),
            r.sid()
        );
        json_str(out, f.name);
        let _ = write!(out, "}},\"processNum\":{PROCESS_NUM},\"tags\":");
        tag.write_json(out);
        out.push_str(",\"value\":");
        val.write_json_typed(tag.ty, out);
        out.push('}');
    }
    out.push(']');
}

/// `show stat ...`: the answer to `cmd`, or HAProxy's error message.
pub fn show_stat(v: &View<'_>, cmd: &ShowStat) -> Result<String, ShowStatError> {
    let rows = select(v, cmd)?;
    let mut out = String::with_capacity(4096);
    match cmd.format {
        Format::Csv => {
            csv::header(&mut out);
            for r in &rows {
                csv::row(&mut out, r);
            }
        }
        Format::Typed => {
            for r in &rows {
                typed_row(&mut out, r, cmd.desc);
            }
        }
        Format::Json => {
            out.push('[');
            for (i, r) in rows.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_row(&mut out, r);
            }
            out.push_str("]\n");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    fn run(words: &[&str]) -> Result<String, ShowStatError> {
        let (config, snapshot, info) = sample();
        let v = View {
            config: &config,
            snapshot: &snapshot,
            info: &info,
        };
        ShowStat::parse(words).and_then(|cmd| show_stat(&v, &cmd))
    }

    #[test]
    fn parses_haproxys_words() {
        let cmd = ShowStat::parse(&["be", "4", "-1", "typed", "desc", "up"]).unwrap();
        assert_eq!(
            cmd.filter,
            Some(Filter {
                proxy: ProxySel::Name("be".into()),
                types: fields::SV,
                sid: None
            })
        );
        assert_eq!((cmd.format, cmd.desc, cmd.up), (Format::Typed, true, true));
        let cmd = ShowStat::parse(&["domain", "proxy", "-1", "-1", "2", "json"]).unwrap();
        assert_eq!(
            cmd.filter,
            Some(Filter {
                proxy: ProxySel::All,
                types: fields::ALL,
                sid: Some(2)
            })
        );
        assert_eq!(cmd.format, Format::Json);
        assert_eq!(
            ShowStat::parse(&["domain", "dns"]),
            Err(ShowStatError::Domain)
        );
        // Fewer than three words: no filter; unknown words are ignored.
        let cmd = ShowStat::parse(&["typed", "bogus"]).unwrap();
        assert_eq!((cmd.filter, cmd.format), (None, Format::Typed));
    }

    #[test]
    fn csv_is_the_pages() {
        let (config, snapshot, info) = sample();
        let v = View {
            config: &config,
            snapshot: &snapshot,
            info: &info,
        };
        assert_eq!(run(&[]).unwrap(), csv::render(&v));
    }

    #[test]
    fn filters_by_proxy_type_and_server() {
        let names = |text: String| -> Vec<String> {
            text.lines()
                .skip(1)
                .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
                .collect()
        };
        assert_eq!(names(run(&["2", "4", "2"]).unwrap()), ["be,s2"]);
        assert_eq!(
            names(run(&["-1", "3", "-1"]).unwrap()),
            ["fe,FRONTEND", "be,BACKEND"]
        );
        assert_eq!(
            names(run(&["be", "-1", "1"]).unwrap()),
            ["be,s1", "be,BACKEND"]
        );
        assert_eq!(names(run(&["9", "7", "-1"]).unwrap()), Vec::<String>::new());
        assert_eq!(run(&["nope", "7", "-1"]), Err(ShowStatError::NoSuchProxy));
        assert_eq!(run(&["0", "7", "-1"]), Err(ShowStatError::NoSuchProxy));
        // s2 is DOWN in the sample.
        assert_eq!(names(run(&["-1", "4", "-1", "up"]).unwrap()), ["be,s1"]);
    }

    #[test]
    fn typed_lines_are_haproxys() {
        let text = run(&["typed", "desc"]).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "F.1.0.0.pxname.1:KNS:str:fe:\"Proxy name.\"");
        assert!(lines.contains(&"F.1.0.8.bin.1:MCP:u64:1234:\"Bytes received from clients.\""));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("S.2.2.20.bck.1:SGP:u32:1:")));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("B.2.0.19.act.1:MGP:u32:1:")));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("F.1.0.105.ssl_failed_handshake.1:MCP:u64:0:")));
        // Empty fields have no line; objects follow each other directly.
        assert!(!text.contains(".slim."), "{text}");
        assert!(!lines.contains(&""));
        let plain = run(&["typed"]).unwrap();
        assert!(
            plain.starts_with("F.1.0.0.pxname.1:KNS:str:fe\nF.1.0.1.svname.1:KNS:str:FRONTEND\n")
        );
    }

    #[test]
    fn json_is_an_array_of_objects_of_fields() {
        let text = run(&["json"]).unwrap();
        assert!(text.ends_with("]]\n"));
        assert!(text.starts_with(
            "[[{\"objType\":\"Frontend\",\"proxyId\":1,\"id\":0,\"field\":{\"pos\":0,\"name\":\"pxname\"},\"processNum\":1,\"tags\":{\"origin\":\"Key\",\"nature\":\"Name\",\"scope\":\"Service\"},\"value\":{\"type\":\"str\",\"value\":\"fe\"}},"
        ));
        assert!(text.contains("\"field\":{\"pos\":8,\"name\":\"bin\"},\"processNum\":1,\"tags\":{\"origin\":\"Metric\",\"nature\":\"Counter\",\"scope\":\"Process\"},\"value\":{\"type\":\"u64\",\"value\":1234}}"));
        assert_eq!(text.matches("],[").count(), 3, "four objects");
        assert_eq!(run(&["9", "7", "-1", "json"]).unwrap(), "[]\n");
    }
}
