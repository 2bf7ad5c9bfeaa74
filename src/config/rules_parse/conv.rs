//! Converter chains in rule lines: `<fetch>,conv1,conv2(<arg>,<arg>)`,
//! checked against the converter table (`crate::rules::convert_ops`):
//! names, argument counts and kinds, and the types along the chain.
//! Arguments are split on commas outside parentheses; `\,` is a comma
//! inside an argument.

use super::lexer::split_call;
use super::{compile_regex, err, Env, Parsed};
use crate::config::error::did_you_mean;
use crate::maps::MapRef;
use crate::rules::convert_ops::table::TableArg;
use crate::rules::convert_ops::{self, cast, find, map_variant, Arg, ArgKind, Conv, ValType};

/// `text` split on commas outside parentheses, each piece with its offset.
pub(crate) fn split_chain(text: &str) -> Vec<(usize, &str)> {
    split_on_commas(text, true)
}

fn split_on_commas(text: &str, nested: bool) -> Vec<(usize, &str)> {
    let mut pieces = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '(' if nested => depth += 1,
            ')' if nested => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                pieces.push((start, &text[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push((start, &text[start..]));
    pieces
}

fn hint_list() -> String {
    let mut names = convert_ops::names();
    names.retain(|n| *n != "map");
    format!(
        "converters: {}, map(<file>[,<default>]) and map_<str|beg|end|sub|dir|dom|reg|ip|int>[_<str|int|ip>]",
        names.join(", ")
    )
}

/// The converters after a fetch of type `input`, and the chain's type.
pub(crate) fn parse_converters(
    at: usize,
    pieces: &[(usize, &str)],
    input: ValType,
    env: &Env<'_>,
) -> Parsed<(Vec<Conv>, ValType)> {
    let mut convs = Vec::with_capacity(pieces.len());
    let mut ty = input;
    for (off, text) in pieces {
        let conv = parse_converter(at + off, text.trim(), env)?;
        if !castable(ty, conv.def.input) {
            return err(
                at + off,
                format!(
                    "`{}` takes {} samples, it gets {} ones",
                    conv.def.name,
                    conv.def.input.name(),
                    ty.name()
                ),
                "HAProxy cannot cast between these types; convert the sample first",
            );
        }
        ty = conv.output;
        convs.push(conv);
    }
    Ok((convs, ty))
}

/// Whether samples of type `from` can always be given to a converter
/// taking `to` (an address to an integer only for IPv4: allowed, it fails
/// on IPv6 at run time).
fn castable(from: ValType, to: ValType) -> bool {
    !matches!((from, to), (ValType::Ip, ValType::Bool))
}

fn parse_converter(at: usize, text: &str, env: &Env<'_>) -> Parsed<Conv> {
    let (name, inner) = split_call(at, text, "converter", "regsub(^/api,)")?;
    let args: Vec<_> = inner.map_or_else(Vec::new, |(from, inner)| {
        split_on_commas(inner, false)
            .into_iter()
            .map(|(o, a)| (from + o, a))
            .collect()
    });
    let Some(def) = find(name) else {
        let names = convert_ops::names();
        let hint = match did_you_mean(name, &names) {
            Some(near) => format!("did you mean `{near}`? {}", hint_list()),
            None => hint_list(),
        };
        return err(at, format!("unknown converter `{name}`"), hint);
    };
    let required = def.args.iter().filter(|a| !a.optional).count();
    // `conv()` is the same as `conv`.
    let args: Vec<(usize, &str)> = if args.len() == 1 && args[0].1.is_empty() && required == 0 {
        Vec::new()
    } else {
        args
    };
    if args.len() < required || args.len() > def.args.len() {
        return err(
            at,
            format!(
                "`{name}` takes {} argument{}, not {}",
                if required == def.args.len() {
                    required.to_string()
                } else {
                    format!("{required} to {}", def.args.len())
                },
                if def.args.len() == 1 { "" } else { "s" },
                args.len()
            ),
            format!("write {}", def.usage()),
        );
    }
    let mut output = def.output;
    let icase = def
        .args
        .iter()
        .zip(&args)
        .any(|(spec, (_, a))| spec.name == "flags" && a.contains('i'));
    let mut compiled = Vec::with_capacity(args.len());
    for (spec, (off, raw)) in def.args.iter().zip(&args) {
        let aat = at + off;
        let raw = raw.replace("\\,", ",");
        let arg = match spec.kind {
            ArgKind::Str => Arg::Str(raw.into_bytes().into()),
            ArgKind::Int => match raw.trim().parse::<i64>() {
                Ok(i) => Arg::Int(i),
                Err(_) => {
                    return err(
                        aat,
                        format!("`{name}`: <{}> `{raw}` is not an integer", spec.name),
                        format!("write {}", def.usage()),
                    )
                }
            },
            ArgKind::Regex => Arg::Regex(compile_regex(aat, &raw, icase)?),
            ArgKind::Map => {
                let Some((kind, out)) = map_variant(name) else {
                    return err(at, format!("unknown map converter `{name}`"), hint_list());
                };
                output = out;
                let used_at = env.base_dir.display().to_string();
                let map = env
                    .maps
                    .get_or_load(env.base_dir, raw.trim(), (kind, out), &used_at)
                    .or_else(|e| {
                        err(
                            aat,
                            e,
                            "map paths are relative to the configuration file; one `<key> <value>` per line, # comments",
                        )
                    })?;
                let map = MapRef { map, output };
                if out != ValType::Str {
                    if let Some(bad) = map
                        .map
                        .entries()
                        .iter()
                        .find(|e| map.cast_value(&e.value).is_none())
                    {
                        return err(
                            aat,
                            format!(
                                "{}: the value `{}` of key `{}` is not {}",
                                map.map.path.display(),
                                String::from_utf8_lossy(&bad.value),
                                String::from_utf8_lossy(&bad.key),
                                if out == ValType::Int {
                                    "an integer"
                                } else {
                                    "an address"
                                }
                            ),
                            format!("`{name}` gives {} values", out.name()),
                        );
                    }
                }
                Arg::Map(map)
            }
            ArgKind::Table => Arg::Table(table_arg(aat, name, raw.trim(), env)?),
        };
        compiled.push(arg);
    }
    check_values(at, name, &compiled, &args, output)?;
    Ok(Conv {
        def,
        args: compiled,
        output,
    })
}

/// A `table_*` converter's table: one that exists and stores what the
/// converter reads. HAProxy accepts a table that lacks the data type and
/// gives no sample at run time; percore refuses the line, as the rule
/// could never match.
fn table_arg(at: usize, name: &str, table: &str, env: &Env<'_>) -> Parsed<TableArg> {
    let Some(read) = convert_ops::table::read_of(name) else {
        return err(at, format!("unknown converter `{name}`"), hint_list());
    };
    let table = super::stick_rules::table_named(at, Some(table), env)?;
    if let Some(data) = read.needs() {
        if table.slot_of(data).is_none() {
            let stored: Vec<&str> = table.store.iter().map(|s| s.data.name()).collect();
            return err(
                at,
                format!(
                    "`{name}`: table \"{}\" does not store {}",
                    table.name,
                    data.name()
                ),
                format!(
                    "add {} to its stick-table store list (it stores: {})",
                    data.name(),
                    crate::config::sections::names_or_none(&stored)
                ),
            );
        }
    }
    if read.needs_expire() && table.expire.is_none() {
        return err(
            at,
            format!("`{name}`: table \"{}\" has no expire", table.name),
            "its entries never expire, and their last update is not kept: add expire <time> to its stick-table line",
        );
    }
    Ok(TableArg { table, read })
}

/// The checks one converter's arguments need beyond their kinds.
fn check_values(
    at: usize,
    name: &str,
    args: &[Arg],
    raw: &[(usize, &str)],
    output: ValType,
) -> Parsed<()> {
    let arg_at = |i: usize| raw.get(i).map_or(at, |(o, _)| at + o);
    match (name, args) {
        ("sha2", [Arg::Int(bits)]) if ![224, 256, 384, 512].contains(bits) => err(
            arg_at(0),
            format!("sha2: {bits} bits is not a SHA-2 size"),
            "write sha2, sha2(224), sha2(256), sha2(384) or sha2(512)",
        ),
        ("ipmask", [Arg::Str(mask4), rest @ ..]) => {
            if convert_ops::parse_mask4(mask4).is_none() {
                return err(
                    arg_at(0),
                    format!("ipmask: `{}` is not an IPv4 mask", String::from_utf8_lossy(mask4)),
                    "write a prefix length (0 to 32) or a dotted mask, e.g. ipmask(24) or ipmask(255.255.255.0,64)",
                );
            }
            match rest {
                [Arg::Int(bits)] if !(0..=128).contains(bits) => err(
                    arg_at(1),
                    format!("ipmask: IPv6 prefix length {bits} is not 0 to 128"),
                    "write ipmask(<mask4>,<0 to 128>)",
                ),
                _ => Ok(()),
            }
        }
        ("json", [Arg::Str(code)]) if !matches!(&code[..], b"" | b"ascii" | b"utf8" | b"utf8s") => {
            err(
                arg_at(0),
                format!(
                    "json: unknown input code `{}`",
                    String::from_utf8_lossy(code)
                ),
                "write json, json(ascii), json(utf8) or json(utf8s)",
            )
        }
        ("http_date", [_, Arg::Str(unit)]) if !matches!(&unit[..], b"s" | b"ms" | b"us") => err(
            arg_at(1),
            format!(
                "http_date: unknown unit `{}`",
                String::from_utf8_lossy(unit)
            ),
            "write http_date(<offset>,s|ms|us)",
        ),
        ("concat", [_, Arg::Str(var), ..]) if !var.is_empty() => err(
            arg_at(1),
            "concat: variables are not supported by percore yet",
            "write concat(<start>,,<end>)",
        ),
        ("regsub", [_, _, Arg::Str(flags)]) if flags.iter().any(|f| !b"ig".contains(f)) => err(
            arg_at(2),
            format!("regsub: unknown flags `{}`", String::from_utf8_lossy(flags)),
            "flags: i (ignore case), g (every match)",
        ),
        ("map", [_, Arg::Str(default)]) | (_, [Arg::Map(_), Arg::Str(default)])
            if output != ValType::Str =>
        {
            let probe = convert_ops::Value::Str(default[..].into());
            if cast(probe, output).is_none() {
                return err(
                    arg_at(1),
                    format!(
                        "the default `{}` is not of the map's output type {}",
                        String::from_utf8_lossy(default),
                        output.name()
                    ),
                    "a map_*_int default is an integer, a map_*_ip default an address",
                );
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
