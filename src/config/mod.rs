//! Configuration: TOML in, validated [`Config`] out.
//!
//! The file format and every key are described in `docs/configuration.md`.
//! Loading reports all problems at once, each as
//! `file:line:column: key.path: message (hint: ...)`.

mod admin;
mod check;
pub mod cpus;
pub mod diff;
mod error;
mod h2;
pub mod health;
mod health_lines;
mod health_read;
mod http;
pub mod model;
mod observe;
mod process;
mod proxy_keys;
mod reader;
mod routing;
mod rules_parse;
mod sections;
mod stick_tables;
mod tls;
mod values;
mod var_parse;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors};

/// The action tables of the rule and check lines, for `convert`.
pub(crate) mod rule_tables {
    pub(crate) use super::health_lines::{HTTP_CHECK_ACTIONS, TCP_CHECK_ACTIONS};
    pub(crate) use super::rules_parse::{
        REQUEST_ACTIONS as HTTP_REQUEST_ACTIONS, RESPONSE_ACTIONS as HTTP_RESPONSE_ACTIONS,
    };
}
/// What `crate::fuzzing` drives directly: the loader without DNS and the
/// rule/check line parsers, each a pure function over one line.
pub(crate) mod fuzz_access {
    pub(crate) use super::health_lines::{parse_http_check, parse_tcp_check};
    pub(crate) use super::load_with;
    pub(crate) use super::rules_parse::lexer::tokenize_spanned;
    pub(crate) use super::rules_parse::{
        parse_acl, parse_http_request, parse_http_response, parse_tcp_request, parse_use_backend,
        Env, Located,
    };
}
pub use model::*;
pub use observe::METRICS_PATH;
pub use process::CAPABILITIES;
/// The rule-line word splitter, for `convert`'s round-trip tests.
#[cfg(test)]
pub(crate) use rules_parse::lexer::tokenize as tokenize_for_tests;

use error::{sort_by_position, Diagnostics};
use reader::TableView;
use values::Resolver;

/// Reads and validates the configuration file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors::unreadable(path, &e))?;
    load_str(&text, path)
}

/// Validates configuration text; `source` names it in messages.
///
/// Host names in server addresses are resolved here, once.
pub fn load_str(text: &str, source: &Path) -> Result<Config, ConfigErrors> {
    load_with(
        text,
        source,
        &cpus::available_cpus(),
        &values::system_resolver,
    )
}

/// [`load_str`] with the CPU set and name resolution supplied by the caller.
pub(crate) fn load_with(
    text: &str,
    source: &Path,
    cpus: &[usize],
    resolve: Resolver<'_>,
) -> Result<Config, ConfigErrors> {
    let mut diag = Diagnostics::new(source, text);
    let document = match toml_edit::ImDocument::parse(text) {
        Ok(document) => document,
        Err(syntax) => {
            let message = syntax.message().trim().replace('\n', "; ");
            diag.error(
                syntax.span().as_ref(),
                "",
                format!("TOML syntax error: {message}"),
                None,
            );
            return Err(ConfigErrors(diag.errors));
        }
    };
    let root = TableView::root(document.as_table());
    root.check_keys(&mut diag, sections::ROOT_KEYS);
    let global = sections::read_global(&mut diag, root.get("global"), cpus);
    let base_dir = source.parent().unwrap_or(Path::new("."));
    let files = http::ErrorfileContext {
        base_dir,
        bufsize: global.tune.bufsize,
    };
    let defaults = sections::read_defaults(&mut diag, root.get("defaults"), &files);
    let stats = observe::read_stats(&mut diag, root.get("stats"));
    let userlists = routing::read_userlists(&mut diag, root.get("userlist"));

    let errors_before = diag.errors.len();
    let frontend_nodes = section_list(&mut diag, &root, "frontend");
    if frontend_nodes.is_empty() && diag.errors.len() == errors_before {
        let empty_list = root.get("frontend").and_then(|n| n.span);
        diag.error(
            empty_list.as_ref(),
            "frontend",
            "no frontend defined: nothing would listen",
            Some("add a [[frontend]] section with bind and default_backend".into()),
        );
    }
    let mut frontends = Vec::new();
    for node in frontend_nodes {
        frontends.extend(sections::read_frontend(&mut diag, &node, &defaults, &files));
    }
    let mut backends = Vec::new();
    for node in section_list(&mut diag, &root, "backend") {
        backends.extend(sections::read_backend(
            &mut diag, &node, &defaults, resolve, &files,
        ));
    }
    let (mut frontends, mut backends, sources) =
        check::frontends_and_backends(&mut diag, &global, frontends, backends);
    let tables = stick_tables::read_tables(&mut diag, &root, &mut frontends, &mut backends);
    let maps = crate::maps::load::MapRegistry::default();
    let server_names: Vec<Vec<String>> = backends
        .iter()
        .map(|b| b.servers.iter().map(|s| s.name.clone()).collect())
        .collect();
    routing::attach_rules(
        &mut diag,
        &root,
        &mut frontends,
        &mut backends,
        &routing::RuleContext {
            userlists: &userlists,
            base_dir,
            tables: &tables,
            maps: &maps,
            servers: &server_names,
        },
    );
    check::after_rules(&mut diag, &mut frontends, &backends, &sources);
    if let Some(stats) = &stats {
        observe::check_stats_bind(&mut diag, stats, &frontends);
    }

    sort_by_position(&mut diag.errors);
    if !diag.errors.is_empty() {
        return Err(ConfigErrors(diag.errors));
    }
    sort_by_position(&mut diag.warnings);
    Ok(Config {
        source: source.to_path_buf(),
        global,
        frontends,
        backends,
        stats: stats.map(|s| s.page),
        userlists,
        frozen_acl_files: maps.frozen_acl_files(),
        map_uses: maps.map_uses(),
        maps: maps.into_maps(),
        warnings: diag.warnings.iter().map(ToString::to_string).collect(),
    })
}

/// The `[[frontend]]` / `[[backend]]` entries, with a pointed error for the
/// common slip of writing `[frontend]` (one table) instead.
fn section_list<'a>(
    diag: &mut Diagnostics<'_>,
    root: &TableView<'a>,
    kind: &str,
) -> Vec<reader::Node<'a>> {
    let Some(node) = root.get(kind) else {
        return Vec::new();
    };
    if !node.is_array() {
        diag.error(
            node.span.as_ref(),
            kind,
            format!(
                "expected an array of {kind} sections, found {}",
                node.describe()
            ),
            Some(format!(
                "write [[{kind}]] (double brackets), once per {kind}"
            )),
        );
        return Vec::new();
    }
    node.array(diag).unwrap_or_default()
}

#[cfg(test)]
mod l4_tests;

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
[global]
threads = [0, 1]
maxconn = 50000
hard-stop-after = "30s"
tune.splice = true
tune.pipesize = 65536
tune.bufsize = 16384
maxpipes = 1024

[defaults]
mode = "tcp"
retries = 3
redispatch = true
timeout = { connect = "5s", client = "30s", server = "30s", tunnel = "1h", queue = "30s", http-request = "10s", http-keep-alive = "5s" }
balance = "roundrobin"
backlog = 1024

[[frontend]]
name = "db"
bind = ["127.0.0.1:15432", "[::1]:15432", ":15433"]
default_backend = "pg"
maxconn = 1000
timeout = { client = "1m" }

[[backend]]
name = "pg"
balance = "leastconn"
retries = 2
allbackups = false
timeout = { connect = "2s", server = "1m" }
servers = [
  { name = "pg1", addr = "127.0.0.1:5432", weight = 10, maxconn = 200 },
  { name = "pg2", addr = "db.internal:5433", backup = true },
  { name = "pg3", addr = "[::1]:5434", disabled = true },
]
"#;

    /// No DNS in unit tests: one known name, everything else fails fast.
    fn resolver(host: &str, port: u16) -> std::io::Result<Vec<std::net::SocketAddr>> {
        if host == "db.internal" {
            Ok(vec![std::net::SocketAddr::from(([10, 0, 0, 5], port))])
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "unknown host",
            ))
        }
    }

    fn load_fixed(text: &str) -> Result<Config, ConfigErrors> {
        load_with(text, Path::new("fuzz.toml"), &[0, 1], &resolver)
    }

    /// Whatever comes back, every error must say where it is, except the
    /// one about a missing `[[frontend]]`, which has no place in the text.
    fn assert_located(text: &str) {
        let line_count = text.lines().count() + 1;
        if let Err(errors) = load_fixed(text) {
            assert!(!errors.0.is_empty());
            for e in &errors.0 {
                match e.line {
                    Some(line) => assert!(line <= line_count, "{e} beyond end of:\n{text}"),
                    None => assert_eq!(e.key_path, "frontend", "{e} has no line; config:\n{text}"),
                }
            }
        }
    }

    #[test]
    fn the_fuzz_seed_is_valid() {
        let config = load_fixed(VALID).unwrap_or_else(|e| panic!("{e}"));
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert_eq!(
            config.backends[0].servers[1].addr.to_string(),
            "10.0.0.5:5433"
        );
    }

    /// Found by fuzzing (fuzz/corpus/config_toml): a use_backend to a
    /// backend of the other mode was reported without a position.
    #[test]
    fn use_backend_across_modes_points_at_the_rule() {
        let text = r#"
[[frontend]]
name = "db"
mode = "tcp"
bind = ["127.0.0.1:15432"]
default_backend = "pg"
use_backend = ["web if { src 10.0.0.0/8 }"]

[[backend]]
name = "pg"
mode = "tcp"
servers = [{ name = "a", addr = "127.0.0.1:5432" }]

[[backend]]
name = "web"
mode = "http"
servers = [{ name = "b", addr = "127.0.0.1:8080" }]
"#;
        let errors = load_fixed(text).expect_err("modes differ").0;
        let e = errors
            .iter()
            .find(|e| e.message.contains("is mode http"))
            .unwrap_or_else(|| panic!("{errors:?}"));
        assert_eq!((e.line, e.column), (Some(7), Some(15)), "{e}");
    }

    #[test]
    fn truncated_configs_never_panic() {
        for (end, _) in VALID.char_indices() {
            assert_located(&VALID[..end]);
        }
    }

    #[test]
    fn garbled_configs_never_panic() {
        // xorshift: deterministic, so a failure reproduces.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % bound as u64).unwrap_or(0)
        };
        let noise = [
            "\"",
            "'",
            "[",
            "]",
            "{",
            "}",
            "=",
            ",",
            "\n",
            "#",
            ".",
            "-",
            "0",
            "99999999999999999999",
            "é",
            "\\",
            "[[",
            "]]",
            "true",
            " ",
            "",
        ];
        let lines: Vec<&str> = VALID.lines().collect();
        for _ in 0..3000 {
            let mut chars: Vec<char> = VALID.chars().collect();
            for _ in 0..1 + next(3) {
                let at = next(chars.len());
                let with: Vec<char> = noise[next(noise.len())].chars().collect();
                let remove = next(3).min(chars.len() - at);
                chars.splice(at..at + remove, with);
            }
            assert_located(&chars.into_iter().collect::<String>());
        }
        // Whole-line damage: dropped, doubled and swapped lines.
        for i in 0..lines.len() {
            let mut dropped = lines.clone();
            dropped.remove(i);
            assert_located(&dropped.join("\n"));
            let mut doubled = lines.clone();
            doubled.insert(i, lines[i]);
            assert_located(&doubled.join("\n"));
            let mut swapped = lines.clone();
            swapped.swap(i, next(lines.len()));
            assert_located(&swapped.join("\n"));
        }
    }
}
