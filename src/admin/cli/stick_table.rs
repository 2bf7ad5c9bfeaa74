//! `show table`, `clear table`, `set table`: HAProxy 2.6's stick-table
//! commands over the tables of every core (each core holds the entries
//! whose keys it owns; a command asks them all and merges).

use std::sync::Arc;

use super::exec::Cli;
use crate::admin::apply::{CoreAnswer, CoreRequest, TableRequest};
use crate::stick::core::TableDump;
use crate::stick::{DataType, Filter, Key, Op, TableDef};

const NO_TABLE: &str = "No such table\n";
const CLEAR_USAGE: &str = "Required arguments: <table> \"data.<store_data_type>\" <operator> <value> or <table> key <key>\n";

/// Which table and entries a command names.
struct Target {
    def: Arc<TableDef>,
    filters: Vec<Filter>,
    key: Option<Key>,
}

fn find_table(cli: &Cli, name: &str) -> Option<Arc<TableDef>> {
    cli.shard
        .current()
        .config
        .stick_tables()
        .find(|t| &*t.name == name)
        .cloned()
}

/// `<table> [data.<type> <op> <value>]... | [key <key>]`.
fn target(cli: &Cli, args: &[String]) -> Result<Target, String> {
    let Some(name) = args.first() else {
        return Err(CLEAR_USAGE.into());
    };
    let def = find_table(cli, name).ok_or_else(|| NO_TABLE.to_string())?;
    let mut filters = Vec::new();
    let mut key = None;
    let mut rest = &args[1..];
    while let Some(word) = rest.first() {
        if word == "key" {
            let Some(text) = rest.get(1) else {
                return Err("Key value expected\n".into());
            };
            key =
                Some(Key::parse(text, def.key).ok_or_else(|| {
                    format!("Invalid key '{text}' for a {} table\n", def.key.name())
                })?);
            rest = &rest[2..];
            continue;
        }
        let n = filters.len() + 1;
        let Some(data) = word.strip_prefix("data.") else {
            return Err(format!("Filter entry #{n}: Unknown data type\n"));
        };
        let Some(data) = DataType::by_name(data) else {
            return Err(format!("Filter entry #{n}: Unknown data type\n"));
        };
        let Some(op) = rest.get(1).and_then(|o| Op::by_name(o)) else {
            return Err(format!(
                "Filter entry #{n}: Require and operator among \"eq\", \"ne\", \"le\", \"ge\", \"lt\", \"gt\"\n"
            ));
        };
        let Some(value) = rest.get(2).and_then(|v| v.parse::<i64>().ok()) else {
            return Err(format!(
                "Filter entry #{n}: Require a valid integer value to compare against\n"
            ));
        };
        if def.slot_of(data).is_none() {
            return Err(format!(
                "Filter entry #{n}: Data type not stored in this table\n"
            ));
        }
        filters.push(Filter { data, op, value });
        rest = &rest[3..];
    }
    Ok(Target { def, filters, key })
}

fn dumps(answers: Vec<CoreAnswer>) -> Vec<TableDump> {
    answers
        .into_iter()
        .filter_map(|a| match a {
            CoreAnswer::Table(Some(d)) => Some(*d),
            _ => None,
        })
        .collect()
}

fn header(def: &TableDef, used: usize) -> String {
    format!(
        "# table: {}, type: {}, size:{}, used:{}\n",
        def.name,
        def.key.name(),
        def.size,
        used
    )
}

/// `show table [<name> ...]`.
pub async fn show(cli: &Cli, args: &[String]) -> String {
    if args.is_empty() {
        // Every table, headers only, in HAProxy's order (the last
        // declared first).
        let tables: Vec<Arc<TableDef>> =
            cli.shard.current().config.stick_tables().cloned().collect();
        let mut out = String::new();
        for def in tables.iter().rev() {
            let parts = ask(
                cli,
                TableRequest::Show {
                    name: def.name.to_string(),
                    filters: Vec::new(),
                    // A key of no table type: the cores count, list nothing.
                    key: Some(Key::Int(i64::MIN)),
                },
            )
            .await;
            out.push_str(&header(def, parts.iter().map(|d| d.used).sum()));
        }
        return out;
    }
    let target = match target(cli, args) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let parts = ask(
        cli,
        TableRequest::Show {
            name: target.def.name.to_string(),
            filters: target.filters,
            key: target.key,
        },
    )
    .await;
    let mut out = header(&target.def, parts.iter().map(|d| d.used).sum());
    let mut entries: Vec<(usize, crate::stick::table::Listed)> = parts
        .into_iter()
        .flat_map(|d| {
            let core = d.core;
            d.entries.into_iter().map(move |e| (core, e))
        })
        .collect();
    // HAProxy lists its tree in key order.
    entries.sort_by(|a, b| key_order(&a.1.key, &b.1.key));
    for (core, e) in entries {
        let id = ((core as u64 + 1) << 40) | u64::from(e.slot);
        out.push_str(&format!(
            "0x{id:x}: key={} use={} exp={}",
            e.key,
            e.refs,
            e.expires_in.unwrap_or(0)
        ));
        // In HAProxy's data type order, whatever the `store` order.
        for data in DataType::ALL {
            let (Some(slot), Some(v)) = (target.def.slot_of(data), e.snapshot.get(data)) else {
                continue;
            };
            let stored = &target.def.store[slot];
            match stored.period {
                Some(p) => out.push_str(&format!(" {}({})={v}", stored.data.name(), p.as_millis())),
                None => out.push_str(&format!(" {}={v}", stored.data.name())),
            }
        }
        out.push('\n');
    }
    out
}

fn key_order(a: &Key, b: &Key) -> std::cmp::Ordering {
    match (a, b) {
        (Key::Ip(x), Key::Ip(y)) => x.cmp(y),
        (Key::Int(x), Key::Int(y)) => x.cmp(y),
        (Key::Str(x), Key::Str(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

async fn ask(cli: &Cli, request: TableRequest) -> Vec<TableDump> {
    let answers = cli
        .collector
        .ask_all(&cli.shard, CoreRequest::Table(request))
        .await;
    dumps(answers.answers)
}

/// `clear table <name> [data.<type> <op> <value>]... | [key <key>]`.
pub async fn clear(cli: &Cli, args: &[String]) -> String {
    if args.get(1).map(String::as_str) == Some("key") && args.len() == 2 {
        return "Key value expected\n".into();
    }
    let target = match target(cli, args) {
        Ok(t) => t,
        Err(e) => return e,
    };
    cli.collector
        .ask_all(
            &cli.shard,
            CoreRequest::Table(TableRequest::Clear {
                name: target.def.name.to_string(),
                filters: target.filters,
                key: target.key,
            }),
        )
        .await;
    String::new()
}

/// `set table <name> key <key> [data.<type> <value>]...`.
pub async fn set(cli: &Cli, args: &[String]) -> String {
    let Some(name) = args.first() else {
        return "Require a table name\n".into();
    };
    let Some(def) = find_table(cli, name) else {
        return NO_TABLE.into();
    };
    if args.get(1).map(String::as_str) != Some("key") {
        return "Require key\n".into();
    }
    let Some(text) = args.get(2) else {
        return "Key value expected\n".into();
    };
    let Some(key) = Key::parse(text, def.key) else {
        return format!("Invalid key '{text}' for a {} table\n", def.key.name());
    };
    let mut data = Vec::new();
    let mut rest = &args[3..];
    while let Some(word) = rest.first() {
        let Some(d) = word.strip_prefix("data.").and_then(DataType::by_name) else {
            return "Unknown data type\n".into();
        };
        if def.slot_of(d).is_none() {
            return "Data type not stored in this table\n".into();
        }
        let Some(v) = rest.get(1).and_then(|v| v.parse::<i64>().ok()) else {
            return "Require a valid integer value to store\n".into();
        };
        data.push((d, v));
        rest = &rest[2..];
    }
    cli.collector
        .ask_all(
            &cli.shard,
            CoreRequest::Table(TableRequest::Set {
                name: def.name.to_string(),
                key,
                data,
            }),
        )
        .await;
    String::new()
}
