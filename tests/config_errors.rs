//! Every kind of configuration error, checked for file, line, key path, the
//! bad value and the hint; plus the shipped and documented configurations.

use std::path::{Path, PathBuf};
use std::time::Duration;

use percore::config::{load, load_str, Balance, Config, ConfigError, Mode, ServerProto, Threads};

const FILE: &str = "test.toml";

/// A valid configuration the tests break one piece at a time.
const BASE: &str = r#"
[global]
threads = "auto"
maxconn = 1000

[defaults]
mode = "tcp"
timeout = { connect = "5s", client = "30s", server = "30s" }

[[frontend]]
name = "db"
bind = ["127.0.0.1:15432"]
default_backend = "pg"

[[backend]]
name = "pg"
servers = [
  { name = "pg1", addr = "127.0.0.1:5432" },
]
"#;

fn ok(text: &str) -> Config {
    match load_str(text, Path::new(FILE)) {
        Ok(config) => config,
        Err(errors) => panic!("expected success, got:\n{errors}\n--- config:\n{text}"),
    }
}

fn errors(text: &str) -> Vec<ConfigError> {
    match load_str(text, Path::new(FILE)) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(errors) => errors.0,
    }
}

/// 1-based line of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in config"))
        + 1
}

/// 1-based line of the last line containing `needle`.
fn last_line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .last()
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in config"))
}

/// `BASE` with `from` replaced by `to` (which must change something).
fn base_with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} not in BASE");
    BASE.replacen(from, to, 1)
}

/// Asserts exactly one error, at the line holding `at`, with the key path,
/// every `values` in the message and `hint` in the hint. Returns it.
#[track_caller]
fn expect_one(text: &str, at: &str, key_path: &str, values: &[&str], hint: &str) -> ConfigError {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "expected one error, got: {errs:#?}");
    let err = errs.into_iter().next().unwrap();
    check(&err, text, at, key_path, values, hint);
    err
}

/// Asserts that among the errors one matches (for files with several).
#[track_caller]
fn expect_among(text: &str, at: &str, key_path: &str, values: &[&str], hint: &str) {
    let errs = errors(text);
    let line = line_of(text, at);
    let found = errs
        .iter()
        .find(|e| e.line == Some(line) && e.key_path == key_path);
    match found {
        Some(err) => check(err, text, at, key_path, values, hint),
        None => panic!("no error at line {line} for {key_path}; got: {errs:#?}"),
    }
}

#[track_caller]
fn check(err: &ConfigError, text: &str, at: &str, key_path: &str, values: &[&str], hint: &str) {
    let line = line_of(text, at);
    assert_eq!(err.file, PathBuf::from(FILE));
    assert_eq!(err.line, Some(line), "{err}");
    assert!(err.column.is_some(), "{err}");
    assert_eq!(err.key_path, key_path, "{err}");
    for value in values {
        assert!(
            err.message.contains(value),
            "{value:?} not in message of: {err}"
        );
    }
    let err_hint = err.hint.as_deref().unwrap_or_default();
    assert!(err_hint.contains(hint), "{hint:?} not in hint of: {err}");
    let shown = err.to_string();
    let prefix = format!("{FILE}:{line}:{}: {key_path}: ", err.column.unwrap_or(0));
    assert!(
        shown.starts_with(&prefix),
        "{shown:?} should start with {prefix:?}"
    );
    assert!(shown.ends_with(&format!("(hint: {err_hint})")) || err.hint.is_none());
}

// ---------------------------------------------------------------- syntax

#[test]
fn syntax_error_has_line_and_column() {
    let text = base_with("maxconn = 1000", "maxconn = = 1000");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].line, Some(line_of(&text, "maxconn = =")));
    assert!(errs[0].column.is_some());
    assert!(errs[0].message.contains("TOML syntax error"), "{}", errs[0]);
}

#[test]
fn duplicate_toml_key_is_a_syntax_error_with_line() {
    let text = base_with("name = \"db\"", "name = \"db\"\nname = \"db2\"");
    let errs = errors(&text);
    assert_eq!(
        errs[0].line,
        Some(line_of(&text, "name = \"db2\"")),
        "{}",
        errs[0]
    );
    assert!(errs[0].message.contains("duplicate key"), "{}", errs[0]);
}

#[test]
fn unreadable_file_names_file_and_os_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.toml");
    let errs = load(&missing).expect_err("missing file").0;
    assert_eq!(errs.len(), 1);
    let shown = errs[0].to_string();
    assert!(shown.contains("absent.toml"), "{shown}");
    assert!(shown.contains("No such file"), "{shown}");
    assert_eq!(errs[0].line, None);
}

#[test]
fn load_reads_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("percore.toml");
    std::fs::write(&path, BASE).unwrap();
    let config = load(&path).unwrap();
    assert_eq!(config.source, path);
    std::fs::write(&path, base_with("maxconn = 1000", "maxconn = 0")).unwrap();
    let shown = load(&path).expect_err("bad maxconn").to_string();
    let prefix = format!("{}:4:11: global.maxconn: 0 ", path.display());
    assert!(shown.starts_with(&prefix), "{shown}");
}

// ---------------------------------------------------------- unknown keys

#[test]
fn unknown_top_level_key() {
    let text = format!("[frontends]\nx = 1\n{BASE}");
    expect_one(
        &text,
        "[frontends]",
        "frontends",
        &["`frontends`"],
        "did you mean `frontend`?",
    );
}

#[test]
fn unknown_global_key_suggests_the_near_one() {
    let text = base_with("maxconn = 1000", "maxconn = 1000\nmaxpipe = 3");
    let err = expect_one(
        &text,
        "maxpipe",
        "global.maxpipe",
        &["`maxpipe`"],
        "did you mean `maxpipes`?",
    );
    assert!(err
        .hint
        .unwrap()
        .contains("threads, maxconn, hard-stop-after, strict-limits, tune, maxpipes"));
}

#[test]
fn unknown_dotted_tune_key() {
    let text = base_with("maxconn = 1000", "maxconn = 1000\ntune.spice = true");
    expect_one(
        &text,
        "tune.spice",
        "global.tune.spice",
        &["`spice`"],
        "did you mean `splice`?",
    );
}

#[test]
fn unknown_timeout_key_lists_all_timeouts() {
    let text = base_with("client = \"30s\"", "clinet = \"30s\"");
    let errs = errors(&text);
    let err = errs
        .iter()
        .find(|e| e.key_path == "defaults.timeout.clinet")
        .expect("unknown key error");
    check(
        err,
        &text,
        "clinet",
        "defaults.timeout.clinet",
        &["`clinet`"],
        "did you mean `client`?",
    );
    assert!(err.hint.as_deref().unwrap().contains("http-keep-alive"));
}

#[test]
fn unknown_frontend_backend_and_server_keys() {
    let text = base_with(
        "default_backend = \"pg\"",
        "default_backend = \"pg\"\nmonitor-uri = \"/health\"",
    );
    expect_one(
        &text,
        "monitor-uri",
        "frontend \"db\".monitor-uri",
        &["`monitor-uri`"],
        "default_backend",
    );

    let text = base_with("name = \"pg\"", "name = \"pg\"\nbalanse = \"first\"");
    expect_one(
        &text,
        "balanse",
        "backend \"pg\".balanse",
        &["`balanse`"],
        "did you mean `balance`?",
    );

    let text = base_with(
        "addr = \"127.0.0.1:5432\"",
        "addr = \"127.0.0.1:5432\", wieght = 3",
    );
    expect_one(
        &text,
        "wieght",
        "backend \"pg\".server \"pg1\".wieght",
        &["`wieght`"],
        "did you mean `weight`?",
    );
}

// ---------------------------------------------------------- value types

#[test]
fn wrong_type_names_expected_and_found() {
    let text = base_with("maxconn = 1000", "maxconn = \"many\"");
    expect_one(
        &text,
        "maxconn",
        "global.maxconn",
        &["expected an integer", "\"many\""],
        "",
    );
}

#[test]
fn bad_duration_lists_units() {
    let text = base_with("connect = \"5s\"", "connect = \"5 sec\"");
    expect_one(
        &text,
        "5 sec",
        "defaults.timeout.connect",
        &["\"5 sec\""],
        "us, ms, s, m, h, d",
    );
    let text = base_with(
        "maxconn = 1000",
        "maxconn = 1000\nhard-stop-after = \"1.5s\"",
    );
    expect_one(
        &text,
        "hard-stop-after",
        "global.hard-stop-after",
        &["\"1.5s\""],
        "bare number means milliseconds",
    );
}

#[test]
fn negative_duration_is_rejected() {
    let text = base_with("server = \"30s\"", "server = -30");
    expect_one(
        &text,
        "server = -30",
        "defaults.timeout.server",
        &["-30", "negative"],
        "us, ms",
    );
}

#[test]
fn out_of_range_integer() {
    let text = base_with("maxconn = 1000", "maxconn = -5");
    expect_one(
        &text,
        "maxconn",
        "global.maxconn",
        &["-5", "out of range"],
        "",
    );
}

#[test]
fn pipesize_must_be_a_power_of_two() {
    let text = base_with("maxconn = 1000", "maxconn = 1000\ntune.pipesize = 5000");
    expect_one(
        &text,
        "pipesize",
        "global.tune.pipesize",
        &["5000", "power of two"],
        "65536",
    );
}

#[test]
fn bad_mode_and_balance_list_the_keywords() {
    let text = base_with("mode = \"tcp\"", "mode = \"udp\"");
    expect_one(
        &text,
        "udp",
        "defaults.mode",
        &["\"udp\""],
        "\"tcp\", \"http\"",
    );
    let text = base_with("name = \"pg\"", "name = \"pg\"\nbalance = \"least_conn\"");
    expect_one(
        &text,
        "least_conn",
        "backend \"pg\".balance",
        &["\"least_conn\""],
        "\"leastconn\"",
    );
}

// -------------------------------------------------------------- threads

#[test]
fn threads_garbage_string() {
    let text = base_with("threads = \"auto\"", "threads = \"all\"");
    expect_one(&text, "threads", "global.threads", &["\"all\""], "\"auto\"");
}

#[test]
fn threads_zero() {
    let text = base_with("threads = \"auto\"", "threads = 0");
    expect_one(
        &text,
        "threads",
        "global.threads",
        &["threads = 0"],
        "\"auto\"",
    );
}

#[test]
fn threads_more_than_cpus() {
    let text = base_with("threads = \"auto\"", "threads = 100000");
    expect_one(
        &text,
        "threads",
        "global.threads",
        &["100000", "CPUs are available"],
        "CPUs available",
    );
}

#[test]
fn threads_list_with_duplicate_cpu() {
    let cpu = percore::config::cpus::available_cpus()[0];
    let text = base_with("threads = \"auto\"", &format!("threads = [{cpu}, {cpu}]"));
    expect_one(
        &text,
        "threads",
        "global.threads[1]",
        &[&format!("CPU {cpu} is listed twice")],
        "once",
    );
}

#[test]
fn threads_list_with_missing_cpu_names_it() {
    let text = base_with("threads = \"auto\"", "threads = [100000]");
    let available = percore::config::cpus::available_cpus();
    let err = expect_one(
        &text,
        "threads",
        "global.threads[0]",
        &["CPU 100000", "not available"],
        "CPUs available",
    );
    assert!(err.hint.unwrap().contains(&available[0].to_string()));
}

#[test]
fn threads_empty_list() {
    let text = base_with("threads = \"auto\"", "threads = []");
    expect_one(&text, "threads", "global.threads", &["empty"], "\"auto\"");
}

#[test]
fn threads_forms_that_load() {
    let cpus = percore::config::cpus::available_cpus();
    let list = cpus
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let config = ok(&base_with(
        "threads = \"auto\"",
        &format!("threads = [{list}]"),
    ));
    assert_eq!(config.global.threads, Threads::Cpus(cpus.clone()));
    let config = ok(&base_with("threads = \"auto\"", "threads = 1"));
    assert_eq!(config.global.threads, Threads::Count(1));
    assert_eq!(ok(BASE).global.threads, Threads::Auto);
}

// ------------------------------------------------- names and references

#[test]
fn undefined_default_backend_lists_defined_ones() {
    let text = base_with("default_backend = \"pg\"", "default_backend = \"app\"");
    let err = expect_one(
        &text,
        "default_backend",
        "frontend \"db\".default_backend",
        &["backend \"app\" used by frontend \"db\" is not defined"],
        "defined backends: \"pg\"",
    );
    assert_eq!(err.column, Some(19));
}

#[test]
fn near_miss_default_backend_is_suggested() {
    let text = base_with("default_backend = \"pg\"", "default_backend = \"pq\"");
    expect_one(
        &text,
        "default_backend",
        "frontend \"db\".default_backend",
        &["\"pq\""],
        "did you mean \"pg\"?",
    );
}

/// HAProxy starts such a frontend and answers 503 to everything (or
/// closes, in TCP); percore refuses it: it can never serve.
#[test]
fn frontend_that_can_never_serve() {
    let text = base_with("default_backend = \"pg\"\n", "");
    expect_one(
        &text,
        "[[frontend]]",
        "frontend \"db\"",
        &["no default_backend, no use_backend", "can never serve"],
        "defined backends: \"pg\"",
    );
    // Edits and auth alone answer nothing either.
    let text = http_base("").replace(
        "default_backend = \"pg\"\n",
        "http-request = [\"set-header X-A 1\", \"auth\"]\n",
    );
    expect_one(
        &text,
        "[[frontend]]",
        "frontend \"db\"",
        &["can never serve"],
        "http-request return/redirect/deny",
    );
}

/// use_backend alone, or a rule that answers, is enough (HAProxy).
#[test]
fn default_backend_is_optional_with_use_backend_or_an_answering_rule() {
    for frontend in [
        "use_backend = \"pg if { path_beg /db }\"\n",
        "http-request = \"deny if { path_beg /x }\"\n",
        "http-request = \"return status 200 content-type text/plain string hi\"\n",
    ] {
        let text = http_base("").replace("default_backend = \"pg\"\n", frontend);
        let config = ok(&text);
        assert_eq!(config.frontends[0].default_backend, None, "{frontend}");
    }
}

#[test]
fn mode_mismatch_between_frontend_and_backend() {
    let text = base_with("name = \"pg\"", "name = \"pg\"\nmode = \"http\"");
    expect_one(
        &text,
        "default_backend",
        "frontend \"db\".default_backend",
        &["mode tcp", "\"pg\" is mode http"],
        "same mode",
    );
}

#[test]
fn duplicate_frontend_names() {
    let text = format!(
        "{BASE}\n[[frontend]]\nname = \"db\"\nbind = \":9999\"\ndefault_backend = \"pg\"\n"
    );
    let second = last_line_of(&text, "name = \"db\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].line, Some(second));
    assert_eq!(errs[0].key_path, "frontend \"db\".name");
    assert!(errs[0].message.contains("duplicate frontend name \"db\""));
    let first = line_of(&text, "name = \"db\"");
    assert!(errs[0]
        .hint
        .as_deref()
        .unwrap()
        .contains(&format!("first defined at line {first}")));
}

#[test]
fn duplicate_backend_names() {
    let text = format!("{BASE}\n[[backend]]\nname = \"pg\"\nservers = [{{ name = \"a\", addr = \"127.0.0.1:1\" }}]\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].key_path, "backend \"pg\".name");
    assert_eq!(errs[0].line, Some(text.lines().count() - 1));
    assert!(errs[0].message.contains("duplicate backend name \"pg\""));
    assert!(errs[0]
        .hint
        .as_deref()
        .unwrap()
        .contains("first defined at line"));
}

#[test]
fn duplicate_server_names() {
    let text = base_with(
        "  { name = \"pg1\", addr = \"127.0.0.1:5432\" },",
        "  { name = \"pg1\", addr = \"127.0.0.1:5432\" },\n  { name = \"pg1\", addr = \"127.0.0.1:5433\" },",
    );
    expect_one(
        &text,
        "5433",
        "backend \"pg\".server \"pg1\".name",
        &["duplicate server name \"pg1\""],
        &format!(
            "first defined at line {}",
            line_of(&text, "\"127.0.0.1:5432\"")
        ),
    );
}

#[test]
fn missing_and_invalid_names() {
    let text = base_with("name = \"pg\"\n", "");
    expect_among(
        &text,
        "[[backend]]",
        "backend[0]",
        &["backend has no name"],
        "name = ",
    );
    let text = base_with("name = \"db\"", "name = \"my db\"");
    expect_one(
        &text,
        "my db",
        "frontend[0].name",
        &["\"my db\""],
        "letters, digits",
    );
}

#[test]
fn frontend_written_as_single_table() {
    let text = BASE.replace("[[frontend]]", "[frontend]");
    expect_among(
        &text,
        "[frontend]",
        "frontend",
        &["expected an array of frontend sections"],
        "[[frontend]]",
    );
}

#[test]
fn no_frontend_at_all() {
    let errs = errors("[global]\nmaxconn = 10\n");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].key_path, "frontend");
    assert!(errs[0].message.contains("no frontend"));
    assert!(errs[0].hint.as_deref().unwrap().contains("[[frontend]]"));
}

// -------------------------------------------------------------- servers

#[test]
fn weight_over_256() {
    let text = base_with(
        "addr = \"127.0.0.1:5432\"",
        "addr = \"127.0.0.1:5432\", weight = 300",
    );
    expect_one(
        &text,
        "weight",
        "backend \"pg\".server \"pg1\".weight",
        &["300"],
        "256",
    );
}

#[test]
fn server_address_unparsable() {
    let text = base_with("127.0.0.1:5432", "127.0.0.1");
    expect_one(
        &text,
        "pg1",
        "backend \"pg\".server \"pg1\".addr",
        &["\"127.0.0.1\""],
        "host:port",
    );
}

#[test]
fn server_host_that_does_not_resolve() {
    let text = base_with("127.0.0.1:5432", "no-such-host.invalid:5432");
    expect_one(
        &text,
        "pg1",
        "backend \"pg\".server \"pg1\".addr",
        &["cannot resolve", "\"no-such-host.invalid\""],
        "resolved once",
    );
}

#[test]
fn server_without_address() {
    let text = base_with(", addr = \"127.0.0.1:5432\"", "");
    expect_one(
        &text,
        "pg1",
        "backend \"pg\".server \"pg1\"",
        &["no address"],
        "addr = ",
    );
}

#[test]
fn server_host_name_resolves_once_at_load() {
    let config = ok(&base_with("127.0.0.1:5432", "localhost:5432"));
    let addr = config.backends[0].servers[0].addr;
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_eq!(addr.port(), 5432);
}

// ---------------------------------------------------------------- binds

#[test]
fn bind_unparsable() {
    let text = base_with("127.0.0.1:15432", "localhost:15432");
    expect_one(
        &text,
        "bind",
        "frontend \"db\".bind[0]",
        &["\"localhost:15432\""],
        "[IPv6]:port",
    );
}

#[test]
fn bind_port_zero() {
    let text = base_with("127.0.0.1:15432", "127.0.0.1:0");
    expect_one(
        &text,
        "bind",
        "frontend \"db\".bind[0]",
        &["port 0"],
        "port",
    );
}

#[test]
fn bind_missing_or_empty() {
    let text = base_with("bind = [\"127.0.0.1:15432\"]\n", "");
    expect_one(
        &text,
        "[[frontend]]",
        "frontend \"db\"",
        &["no bind address"],
        "bind = ",
    );
    let text = base_with("[\"127.0.0.1:15432\"]", "[]");
    expect_one(
        &text,
        "bind",
        "frontend \"db\".bind",
        &["empty"],
        "at least one",
    );
}

#[test]
fn duplicate_bind_across_frontends() {
    let text = format!(
        "{BASE}\n[[frontend]]\nname = \"other\"\nbind = \"127.0.0.1:15432\"\ndefault_backend = \"pg\"\n"
    );
    let at = last_line_of(&text, "127.0.0.1:15432");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].line, Some(at));
    assert_eq!(errs[0].key_path, "frontend \"other\".bind");
    assert!(errs[0].message.contains("127.0.0.1:15432"));
    assert!(errs[0].message.contains("frontend \"db\""));
}

#[test]
fn bind_spellings_that_load() {
    let config = ok(&base_with(
        "[\"127.0.0.1:15432\"]",
        "[\":80\", \"[::1]:81\", \"*:82\"]",
    ));
    let binds: Vec<String> = config.frontends[0]
        .binds
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(binds, ["0.0.0.0:80", "[::1]:81", "0.0.0.0:82"]);
    let config = ok(&base_with("[\"127.0.0.1:15432\"]", "\"127.0.0.1:15432\""));
    assert_eq!(config.frontends[0].binds.len(), 1);
}

// ---------------------------------------------------- all errors at once

#[test]
fn all_errors_are_reported_in_file_order() {
    let text = r#"
[global]
threads = "many"
maxconn = 0

[[frontend]]
name = "web"
bind = "nonsense"
default_backend = "app"

[[backend]]
name = "pg"
servers = [ { name = "a", addr = "127.0.0.1:1", weight = 999 }, { name = "a", addr = "bad" } ]
"#;
    let errs = errors(text);
    let lines: Vec<usize> = errs.iter().filter_map(|e| e.line).collect();
    assert_eq!(errs.len(), 7, "{errs:#?}");
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
    let shown = percore::config::ConfigErrors(errs).to_string();
    assert_eq!(shown.lines().count(), 7);
    for needle in [
        "\"many\"",
        "maxconn",
        "\"nonsense\"",
        "\"app\"",
        "999",
        "duplicate server",
        "\"bad\"",
    ] {
        assert!(shown.contains(needle), "{needle} missing from:\n{shown}");
    }
}

// ------------------------------------------------------------- warnings

#[test]
fn missing_timeouts_warn_like_haproxy() {
    let text = BASE.replace(
        "timeout = { connect = \"5s\", client = \"30s\", server = \"30s\" }\n",
        "",
    );
    let config = ok(&text);
    let fe_line = line_of(&text, "[[frontend]]");
    let be_line = line_of(&text, "[[backend]]");
    assert_eq!(config.warnings.len(), 2, "{:#?}", config.warnings);
    assert!(config.warnings[0].starts_with(&format!(
        "{FILE}:{fe_line}:1: frontend \"db\": missing timeouts for frontend: 'client'"
    )));
    assert!(config.warnings[1].starts_with(&format!(
        "{FILE}:{be_line}:1: backend \"pg\": missing timeouts for backend: 'connect', 'server'"
    )));
    assert!(config.warnings[1].contains("while not properly invalid"));
    assert_eq!(config.frontends[0].timeouts.client, None);
}

#[test]
fn zero_timeout_means_none_and_warns() {
    let text = base_with(
        "default_backend = \"pg\"",
        "default_backend = \"pg\"\ntimeout = { client = 0 }",
    );
    let config = ok(&text);
    assert_eq!(config.frontends[0].timeouts.client, None);
    assert_eq!(config.warnings.len(), 1, "{:#?}", config.warnings);
    assert!(config.warnings[0].contains("'client'"));
}

#[test]
fn backend_without_servers_warns() {
    let text = base_with("  { name = \"pg1\", addr = \"127.0.0.1:5432\" },\n", "");
    let config = ok(&text);
    assert!(config.backends[0].servers.is_empty());
    assert_eq!(config.warnings.len(), 1, "{:#?}", config.warnings);
    assert!(config.warnings[0].contains("backend \"pg\".servers: backend has no server"));
    assert!(config.warnings[0].starts_with(&format!("{FILE}:{}:", line_of(&text, "servers"))));
}

#[test]
fn balance_first_without_maxconn_warns() {
    let text = base_with("name = \"pg\"", "name = \"pg\"\nbalance = \"first\"");
    let config = ok(&text);
    assert_eq!(config.backends[0].balance, Balance::First);
    assert_eq!(config.warnings.len(), 1, "{:#?}", config.warnings);
    assert!(config.warnings[0].contains("balance first without server maxconn on \"pg1\""));
    let at = format!(
        "{FILE}:{}:11: backend \"pg\".balance: ",
        line_of(&text, "first")
    );
    assert!(
        config.warnings[0].starts_with(&at),
        "{}",
        config.warnings[0]
    );
    let with_maxconn = text.replace("5432\" }", "5432\", maxconn = 10 }");
    assert!(ok(&with_maxconn).warnings.is_empty());
}

#[test]
fn backend_timeout_in_frontend_warns_as_ignored() {
    let text = base_with(
        "default_backend = \"pg\"",
        "default_backend = \"pg\"\ntimeout = { server = \"1s\" }",
    );
    let config = ok(&text);
    assert_eq!(config.warnings.len(), 1, "{:#?}", config.warnings);
    assert!(config.warnings[0]
        .contains("frontend \"db\".timeout.server: timeout server will be ignored"));
}

// ------------------------------------------------------------ semantics

#[test]
fn defaults_apply_per_key_and_sections_override() {
    let text = r#"
[global]
maxconn = 2000
hard-stop-after = "1m"
tune.splice = false
tune.pipesize = 131072
tune.bufsize = 32768
maxpipes = 64

[defaults]
mode = "tcp"
retries = 5
redispatch = true
balance = "leastconn"
timeout = { connect = "5s", client = "30s", server = "30s", tunnel = "1h" }

[[frontend]]
name = "a"
bind = "127.0.0.1:7001"
default_backend = "one"
maxconn = 100
timeout = { client = "1m" }

[[frontend]]
name = "b"
bind = "127.0.0.1:7002"
default_backend = "two"

[[backend]]
name = "one"
retries = 0
timeout = { server = "250", tunnel = 0 }
servers = [ { name = "s", addr = "127.0.0.1:1", weight = 0, maxconn = 0, backup = true, disabled = true } ]

[[backend]]
name = "two"
balance = "source"
redispatch = false
allbackups = true
"#;
    let config = ok(text);
    let g = &config.global;
    assert_eq!(
        (g.maxconn, g.hard_stop_after),
        (2000, Duration::from_secs(60))
    );
    assert!(!g.tune.splice);
    assert_eq!(
        (g.tune.pipesize, g.tune.bufsize, g.tune.maxpipes),
        (131072, 32768, 64)
    );

    let (a, b) = (&config.frontends[0], &config.frontends[1]);
    assert_eq!(a.timeouts.client, Some(Duration::from_secs(60)));
    assert_eq!(a.timeouts.connect, Some(Duration::from_secs(5)));
    assert_eq!(b.timeouts.client, Some(Duration::from_secs(30)));
    assert_eq!((a.maxconn, a.backlog), (Some(100), 100));
    assert_eq!((b.maxconn, b.backlog), (None, 2000));
    assert_eq!(a.mode, Mode::Tcp);
    assert_eq!(config.backend(a.default_backend.unwrap()).name, "one");
    assert_eq!(config.backend(b.default_backend.unwrap()).name, "two");

    let (one, two) = (&config.backends[0], &config.backends[1]);
    assert_eq!(
        (one.retries, one.redispatch, one.balance),
        (0, Some(-1), Balance::LeastConn)
    );
    assert_eq!(
        (two.retries, two.redispatch, two.balance),
        (5, None, Balance::Source)
    );
    assert!(!one.allbackups && two.allbackups);
    assert_eq!(one.timeouts.server, Some(Duration::from_millis(250)));
    assert_eq!(one.timeouts.tunnel, None);
    assert_eq!(two.timeouts.tunnel, Some(Duration::from_secs(3600)));
    let s = &one.servers[0];
    assert_eq!(
        (s.weight, s.maxconn, s.backup, s.disabled),
        (0, None, true, true)
    );
    // Only the empty backend "two" is worth a warning.
    assert_eq!(config.warnings.len(), 1, "{:#?}", config.warnings);
}

#[test]
fn haproxy_defaults_when_keys_are_absent() {
    let text = r#"
[defaults]
timeout = { connect = "5s", client = "30s", server = "30s" }
[[frontend]]
name = "f"
bind = "127.0.0.1:7000"
default_backend = "b"
[[backend]]
name = "b"
servers = [ { name = "s", addr = "127.0.0.1:1" } ]
"#;
    let config = ok(text);
    let g = &config.global;
    assert_eq!(g.threads, Threads::Auto);
    assert_eq!(g.maxconn, 4096);
    assert_eq!(g.hard_stop_after, Duration::from_secs(30));
    assert!(g.tune.splice);
    assert_eq!(
        (g.tune.pipesize, g.tune.bufsize, g.tune.maxpipes),
        (65536, 16384, 1024)
    );
    let b = &config.backends[0];
    assert_eq!(
        (b.mode, b.balance, b.retries, b.redispatch),
        (Mode::Tcp, Balance::RoundRobin, 3, None)
    );
    assert_eq!(b.servers[0].weight, 1);
    assert_eq!(config.frontends[0].backlog, 4096);
    assert!(config.warnings.is_empty(), "{:#?}", config.warnings);
}

// ------------------------------------------------ HTTP keys

/// BASE switched to mode http, with `extra` added to the backend.
fn http_base(extra_backend: &str) -> String {
    BASE.replace("mode = \"tcp\"", "mode = \"http\"").replacen(
        "name = \"pg\"\n",
        &format!("name = \"pg\"\n{extra_backend}\n"),
        1,
    )
}

fn errorfile(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

#[test]
fn http_keys_merge_defaults_frontend_and_backend() {
    let dir = tempfile::tempdir().unwrap();
    let d503 = errorfile(dir.path(), "d503.http", "HTTP/1.1 503 Busy\r\n\r\ndefaults");
    let b503 = errorfile(dir.path(), "b503.http", "HTTP/1.1 503 Busy\r\n\r\nbackend");
    let f400 = errorfile(dir.path(), "f400.http", "HTTP/1.1 400 Bad\r\n\r\nfrontend");
    let text = BASE
        .replace("mode = \"tcp\"", &format!(
            "mode = \"http\"\nforwardfor = true\nhttp-reuse = \"always\"\nerrorfile = {{ 503 = \"{d503}\" }}"
        ))
        .replace(
            "default_backend = \"pg\"",
            &format!("default_backend = \"pg\"\nx-forwarded-proto = true\nerrorfile = {{ 400 = \"{f400}\" }}"),
        )
        .replace(
            "name = \"pg\"\n",
            &format!("name = \"pg\"\nhttp-server-close = true\nforwardfor = {{ header = \"X-Real-IP\", except = [\"10.0.0.0/8\"], if-none = true }}\nerrorfile = {{ 503 = \"{b503}\" }}\n"),
        );
    let config = ok(&text);
    let fe = &config.frontends[0];
    let http = fe.http_for(fe.default_backend.unwrap());
    let ff = http.rewrite.forward_for.as_ref().unwrap();
    assert_eq!(ff.header, "X-Real-IP", "the backend's field name wins");
    // The frontend's forwardfor (from defaults) has no if-none: HAProxy
    // then adds the field whatever the backend says.
    assert!(!ff.if_none);
    assert_eq!(ff.except.len(), 1);
    assert!(http.rewrite.forwarded_proto);
    assert!(!http.rewrite.forwarded_port);
    assert!(http.server_close);
    assert_eq!(http.reuse, percore::config::HttpReuse::Always);
    let body = |p: &percore::http::ErrorPages, s| {
        String::from_utf8_lossy(p.get(s).bytes(true)).into_owned()
    };
    assert!(body(&http.errors, 400).ends_with("frontend"));
    assert!(body(&http.errors, 503).ends_with("defaults"));
    assert!(body(&http.backend_errors, 503).ends_with("backend"));
    assert!(body(&http.backend_errors, 502).contains("Bad Gateway"));
}

#[test]
fn unknown_http_reuse_lists_the_modes() {
    let text = http_base("http-reuse = \"aggressive\"");
    expect_one(
        &text,
        "http-reuse",
        "backend \"pg\".http-reuse",
        &["aggressive"],
        "\"never\", \"safe\"",
    );
}

#[test]
fn http_server_close_must_be_a_boolean() {
    let text = http_base("http-server-close = \"yes\"");
    expect_one(
        &text,
        "http-server-close",
        "backend \"pg\".http-server-close",
        &["true or false"],
        "",
    );
}

#[test]
fn forwardfor_of_the_wrong_type() {
    let text = http_base("forwardfor = \"on\"");
    expect_one(
        &text,
        "forwardfor",
        "backend \"pg\".forwardfor",
        &["string"],
        "if-none",
    );
}

#[test]
fn forwardfor_bad_network_header_and_key() {
    let text = http_base("forwardfor = { except = \"10.0.0.0/33\" }");
    expect_one(
        &text,
        "forwardfor",
        "backend \"pg\".forwardfor.except",
        &["10.0.0.0/33"],
        "10.0.0.0/8",
    );
    let text = http_base("forwardfor = { header = \"X Bad\" }");
    expect_one(
        &text,
        "forwardfor",
        "backend \"pg\".forwardfor.header",
        &["X Bad"],
        "token",
    );
    let text = http_base("forwardfor = { excpet = \"10.0.0.0/8\" }");
    expect_one(
        &text,
        "forwardfor",
        "backend \"pg\".forwardfor.excpet",
        &["excpet"],
        "except",
    );
}

#[test]
fn missing_errorfile_names_the_file() {
    let text = http_base("errorfile = { 503 = \"/nonexistent/percore/503.http\" }");
    expect_one(
        &text,
        "errorfile",
        "backend \"pg\".errorfile.503",
        &["/nonexistent/percore/503.http", "cannot read"],
        "complete HTTP response",
    );
}

#[test]
fn malformed_errorfiles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "nohead.http",
            "HTTP/1.1 503 Busy\r\nContent-Type: text/html\r\n",
            "no complete response head",
        ),
        ("garbage.http", "this is not HTTP\r\n\r\n", "invalid"),
        ("other.http", "HTTP/1.1 502 Bad\r\n\r\n", "does not match"),
        (
            "length.http",
            "HTTP/1.1 503 Busy\r\nContent-Length: 99\r\n\r\nshort",
            "Content-Length",
        ),
        ("empty.http", "", "empty"),
    ];
    for (name, content, message) in cases {
        let path = errorfile(dir.path(), name, content);
        let text = http_base(&format!("errorfile = {{ 503 = \"{path}\" }}"));
        expect_one(
            &text,
            "errorfile",
            "backend \"pg\".errorfile.503",
            &[message, &path],
            "",
        );
    }
}

#[test]
fn errorfile_for_a_status_haproxy_has_no_page_for() {
    let text = http_base("errorfile = { 418 = \"/tmp/x.http\" }");
    expect_one(
        &text,
        "errorfile",
        "backend \"pg\".errorfile.418",
        &["418"],
        "400, 401",
    );
}

#[test]
fn relative_errorfile_is_relative_to_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("errors")).unwrap();
    errorfile(
        &dir.path().join("errors"),
        "503.http",
        "HTTP/1.1 503 Busy\r\n\r\nrelative",
    );
    let cfg = dir.path().join("percore.toml");
    std::fs::write(&cfg, http_base("errorfile = { 503 = \"errors/503.http\" }")).unwrap();
    let config = load(&cfg).unwrap_or_else(|e| panic!("{e}"));
    let fe = &config.frontends[0];
    let page = fe
        .http_for(fe.default_backend.unwrap())
        .backend_errors
        .get(503)
        .bytes(true);
    assert!(page.ends_with(b"relative"));
}

// ------------------------------------------------ shipped configurations

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

#[test]
fn shipped_config_loads_cleanly() {
    let config = load(&repo_file("config.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.warnings.is_empty(), "{:#?}", config.warnings);
    assert_eq!(config.global.threads, Threads::Auto);
    assert_eq!(config.frontends.len(), 2);
    let web = &config.frontends[0];
    assert_eq!(web.mode, Mode::Http);
    assert_eq!(web.binds, ["127.0.0.1:8000".parse().unwrap()]);
    assert!(web.http.rewrite.forward_for.is_some());
    assert_eq!(
        web.rules.request.len(),
        1,
        "the /percore-status return rule"
    );
    let be = config.backend(web.default_backend.unwrap());
    assert_eq!(be.mode, Mode::Http);
    let addrs: Vec<_> = be.servers.iter().map(|s| s.addr).collect();
    assert_eq!(addrs, ["127.0.0.1:9000".parse().unwrap()]);
    let tcp = &config.frontends[1];
    assert_eq!(tcp.mode, Mode::Tcp);
    assert_eq!(tcp.binds, ["127.0.0.1:8001".parse().unwrap()]);
    assert_eq!(config.backend(tcp.default_backend.unwrap()).mode, Mode::Tcp);
}

#[test]
fn documented_examples_load_cleanly_and_are_referenced() {
    let guide = std::fs::read_to_string(repo_file("docs/configuration.md")).unwrap();
    let mut count = 0;
    for entry in std::fs::read_dir(repo_file("docs/examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        count += 1;
        let config = load(&path).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
        assert!(
            config.warnings.is_empty(),
            "{}: {:#?}",
            path.display(),
            config.warnings
        );
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            guide.contains(&format!("examples/{name}")),
            "docs/configuration.md does not reference {name}"
        );
    }
    assert!(
        count >= 2,
        "expected example configurations in docs/examples"
    );
}

// --------------------------------------------------------- health checks

/// BASE with `backend_extra` added to the backend and `server_extra` to its
/// server.
fn with_checks(backend_extra: &str, server_extra: &str) -> String {
    let text = base_with(
        "name = \"pg\"\n",
        &format!("name = \"pg\"\n{backend_extra}\n"),
    );
    text.replacen(
        "addr = \"127.0.0.1:5432\" }",
        &format!("addr = \"127.0.0.1:5432\"{server_extra} }}"),
        1,
    )
}

#[test]
fn health_check_settings_resolve_through_default_server() {
    let text = base_with(
        "mode = \"tcp\"\n",
        "mode = \"tcp\"\ndefault-server = { inter = \"3s\", rise = 4, fall = 5, observe = \"layer4\" }\n",
    )
    .replace(
        "name = \"pg\"\n",
        "name = \"pg\"\ndefault-server = { check = true, fall = 6, error-limit = 2 }\ntimeout = { check = \"1s\" }\n",
    )
    .replace(
        "{ name = \"pg1\", addr = \"127.0.0.1:5432\" }",
        "{ name = \"pg1\", addr = \"127.0.0.1:5432\", port = 9000, check-addr = \"127.0.0.2\", fastinter = \"500ms\", on-error = \"mark-down\" },\n  { name = \"pg2\", addr = \"127.0.0.1:5433\", check = false }",
    );
    let config = ok(&text);
    let be = &config.backends[0];
    assert_eq!(be.timeouts.check, Some(Duration::from_secs(1)));
    let check = be.servers[0].check.as_ref().expect("check on");
    assert_eq!(check.inter, Duration::from_secs(3));
    assert_eq!(check.fastinter, Duration::from_millis(500));
    assert_eq!(
        check.downinter,
        Duration::from_secs(3),
        "downinter defaults to inter"
    );
    assert_eq!((check.rise, check.fall), (4, 6));
    assert_eq!(check.addr.to_string(), "127.0.0.2:9000");
    let observe = check.observe.expect("observe from [defaults]");
    assert_eq!(observe.error_limit, 2);
    assert_eq!(observe.on_error, percore::config::OnError::MarkDown);
    assert!(be.servers[1].check.is_none());
    assert!(matches!(be.check, percore::config::CheckKind::Connect));
}

#[test]
fn tcp_check_and_http_check_rules_load() {
    let text = with_checks(
        "tcp-check = [\"connect port 1080\", \"send-binary 05020001\", \"expect binary 0500\", \"send PING\\\\r\\\\n\", \"expect string +PONG\", \"expect rstring ^\\\\+OK\"]",
        ", check = true",
    );
    match &ok(&text).backends[0].check {
        percore::config::CheckKind::TcpScript(rules) => assert_eq!(rules.len(), 6),
        other => panic!("{other:?}"),
    }
    let text = with_checks(
        "http-check = [\"send meth GET uri /generate_204 ver HTTP/1.1 hdr Host example.com\", \"expect status 204\"]",
        ", check = true",
    );
    match &ok(&text).backends[0].check {
        percore::config::CheckKind::Http(http) => {
            assert_eq!(http.uri, "/generate_204");
            assert_eq!(http.expects.len(), 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_default_server_key() {
    let text = with_checks("default-server = { check = true, intr = \"1s\" }", "");
    expect_one(
        &text,
        "intr",
        "backend \"pg\".default-server.intr",
        &["unknown key `intr`"],
        "did you mean `inter`?",
    );
}

#[test]
fn zero_check_interval() {
    let text = with_checks("", ", check = true, inter = \"0s\"");
    expect_one(
        &text,
        "inter",
        "backend \"pg\".server \"pg1\".inter",
        &["interval of 0"],
        "positive duration",
    );
}

#[test]
fn bad_check_interval_lists_units() {
    let text = with_checks("default-server = { fastinter = \"fast\" }", "");
    expect_one(
        &text,
        "fastinter",
        "backend \"pg\".default-server.fastinter",
        &["\"fast\""],
        "us, ms, s",
    );
}

#[test]
fn rise_of_zero() {
    let text = with_checks("", ", check = true, rise = 0");
    expect_one(
        &text,
        "rise",
        "backend \"pg\".server \"pg1\".rise",
        &["0 is out of range"],
        "",
    );
}

#[test]
fn check_port_out_of_range() {
    let text = with_checks("", ", check = true, port = 70000");
    expect_one(
        &text,
        "port",
        "backend \"pg\".server \"pg1\".port",
        &["70000", "65535"],
        "",
    );
}

#[test]
fn check_addr_must_be_an_ip() {
    let text = with_checks("", ", check = true, check-addr = \"10.0.0.1:80\"");
    expect_one(
        &text,
        "check-addr",
        "backend \"pg\".server \"pg1\".check-addr",
        &["\"10.0.0.1:80\""],
        "without port",
    );
}

#[test]
fn bad_observe_and_on_error_keywords() {
    let text = with_checks("", ", check = true, observe = \"layer5\"");
    expect_one(
        &text,
        "observe",
        "backend \"pg\".server \"pg1\".observe",
        &["unknown observe \"layer5\""],
        "\"layer4\"",
    );
    let text = with_checks("default-server = { on-error = \"panic\" }", "");
    expect_one(
        &text,
        "on-error",
        "backend \"pg\".default-server.on-error",
        &["unknown on-error \"panic\""],
        "\"mark-down\"",
    );
}

#[test]
fn observe_needs_check() {
    let text = with_checks("", ", observe = \"layer4\"");
    expect_one(
        &text,
        "observe",
        "backend \"pg\".server \"pg1\".observe",
        &["needs active health checks"],
        "check = true",
    );
}

#[test]
fn observe_layer7_needs_mode_http() {
    let text = with_checks("", ", check = true, observe = \"layer7\"");
    expect_one(
        &text,
        "observe",
        "backend \"pg\".server \"pg1\".observe",
        &["layer7 needs mode http"],
        "layer4",
    );
}

#[test]
fn tcp_check_and_http_check_exclude_each_other() {
    let text = with_checks("tcp-check = [\"send x\"]\nhttp-check = []", "");
    expect_one(
        &text,
        "http-check",
        "backend \"pg\".http-check",
        &["not both"],
        "exclude each other",
    );
}

#[test]
fn tcp_check_rule_errors_point_at_the_rule() {
    let text = with_checks(
        "tcp-check = [\n  \"connect\",\n  \"send-binary 0502001\",\n  \"expect rstring (\",\n  \"snd PING\",\n]",
        "",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    check(
        &errs[0],
        &text,
        "send-binary",
        "backend \"pg\".tcp-check[1]",
        &["odd number of digits"],
        "pairs of hex digits",
    );
    check(
        &errs[1],
        &text,
        "expect rstring",
        "backend \"pg\".tcp-check[2]",
        &["invalid regular expression \"(\""],
        "regex",
    );
    check(
        &errs[2],
        &text,
        "snd PING",
        "backend \"pg\".tcp-check[3]",
        &["unknown tcp-check action `snd`"],
        "did you mean `send`?",
    );
}

#[test]
fn tcp_check_must_be_a_list_of_strings() {
    let text = with_checks("tcp-check = [\"connect\", 5]", "");
    expect_one(
        &text,
        "tcp-check",
        "backend \"pg\".tcp-check[1]",
        &["expected a string"],
        "",
    );
}

#[test]
fn http_check_bad_status_and_version() {
    let text = with_checks("http-check = [\"expect status 2xx\"]", "");
    expect_one(
        &text,
        "http-check",
        "backend \"pg\".http-check[0]",
        &["invalid status \"2xx\""],
        "200-399",
    );
    let text = with_checks("http-check = [\"send ver HTTP/2.0\"]", "");
    expect_one(
        &text,
        "http-check",
        "backend \"pg\".http-check[0]",
        &["unsupported HTTP version \"HTTP/2.0\""],
        "HTTP/1.1",
    );
}

#[test]
fn timeout_check_in_a_frontend_is_ignored_with_a_warning() {
    let text = base_with(
        "default_backend = \"pg\"",
        "default_backend = \"pg\"\ntimeout = { client = \"30s\", check = \"1s\" }",
    );
    let config = ok(&text);
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("timeout check will be ignored")),
        "{:#?}",
        config.warnings
    );
}

// ------------------------------------------------- logging and [stats]

fn with_global_log(entries: &str) -> String {
    base_with(
        "maxconn = 1000",
        &format!("maxconn = 1000\nlog = [{entries}]"),
    )
}

fn with_frontend(keys: &str) -> String {
    base_with(
        "default_backend = \"pg\"",
        &format!("default_backend = \"pg\"\n{keys}"),
    )
}

fn with_stats(body: &str) -> String {
    format!("{BASE}\n[stats]\n{body}\n")
}

#[test]
fn log_targets_load_with_haproxy_defaults() {
    use percore::config::{LogDest, LogFormat, LogFraming};
    let text = with_frontend("log = true\ndontlognull = true").replace(
        "maxconn = 1000",
        "maxconn = 1000\nlog = [\"stdout\", { target = \"file:/var/log/percore.log\", format = \"rfc5424\" }, { target = \"udp://127.0.0.1\", facility = \"local7\", tag = \"lb1\" }]",
    );
    let config = ok(&text);
    let log = &config.global.log;
    assert_eq!(log.len(), 3);
    assert_eq!(
        (&log[0].dest, log[0].framing),
        (&LogDest::Stdout, LogFraming::Raw)
    );
    assert_eq!(log[1].framing, LogFraming::Rfc5424);
    assert_eq!(log[2].dest, LogDest::Udp("127.0.0.1:514".parse().unwrap()));
    assert_eq!(
        (log[2].framing, log[2].facility, log[2].tag.as_str()),
        (LogFraming::Rfc3164, 23, "lb1")
    );
    let fe = &config.frontends[0].log;
    assert!(fe.enabled && fe.dontlognull);
    assert_eq!(fe.format, LogFormat::Tcp);
    assert!(config.warnings.is_empty(), "{:#?}", config.warnings);
}

#[test]
fn log_target_unknown() {
    expect_one(
        &with_global_log("{ target = \"syslog\" }"),
        "syslog",
        "global.log[0].target",
        &["unknown log target \"syslog\""],
        "udp://IP:port",
    );
}

#[test]
fn log_target_relative_file() {
    expect_one(
        &with_global_log("\"file:logs/a.log\""),
        "file:logs",
        "global.log[0]",
        &["\"logs/a.log\" is not an absolute path"],
        "file:/absolute/path",
    );
}

#[test]
fn log_target_bad_udp_address() {
    expect_one(
        &with_global_log("{ target = \"udp://loghost:514\" }"),
        "udp://",
        "global.log[0].target",
        &["invalid syslog address \"loghost:514\""],
        "udp://IP:port",
    );
}

#[test]
fn log_target_missing() {
    expect_one(
        &with_global_log("{ format = \"raw\" }"),
        "log = [",
        "global.log[0]",
        &["log entry has no target"],
        "add target",
    );
}

#[test]
fn log_format_facility_and_tag_invalid() {
    expect_one(
        &with_global_log("{ target = \"stdout\", format = \"rfc5425\" }"),
        "rfc5425",
        "global.log[0].format",
        &["unknown log format \"rfc5425\""],
        "\"rfc3164\", \"rfc5424\", \"raw\"",
    );
    expect_one(
        &with_global_log("{ target = \"stdout\", facility = \"local8\" }"),
        "local8",
        "global.log[0].facility",
        &["unknown syslog facility \"local8\""],
        "\"local7\"",
    );
    expect_one(
        &with_global_log("{ target = \"stdout\", tag = \"my tag\" }"),
        "my tag",
        "global.log[0].tag",
        &["invalid log tag \"my tag\""],
        "RFC 3164",
    );
}

#[test]
fn frontend_log_must_be_a_bool() {
    expect_one(
        &with_frontend("log = \"global\""),
        "log = \"global\"",
        "frontend \"db\".log",
        &["expected true or false"],
        "",
    );
}

#[test]
fn frontend_log_format_unknown() {
    expect_one(
        &with_frontend("log-format = \"clf\""),
        "clf",
        "frontend \"db\".log-format",
        &["unknown log-format \"clf\""],
        "\"tcplog\", \"httplog\", \"json\"",
    );
}

#[test]
fn httplog_on_tcp_falls_back_with_a_warning() {
    let config = ok(&with_frontend("log-format = \"httplog\""));
    assert_eq!(
        config.frontends[0].log.format,
        percore::config::LogFormat::Tcp
    );
    assert_eq!(config.warnings.len(), 1, "{:#?}", config.warnings);
    assert!(config.warnings[0].contains("falling back to \"tcplog\""));
}

#[test]
fn logging_without_global_targets_warns() {
    let text = with_frontend("log = true");
    let config = ok(&text);
    assert_eq!(config.warnings.len(), 1, "{:#?}", config.warnings);
    assert!(config.warnings[0].starts_with(&format!("{FILE}:{}:", line_of(&text, "log = true"))));
    assert!(config.warnings[0].contains("nothing will be logged"));
}

#[test]
fn capture_request_header_errors() {
    expect_one(
        &with_frontend("capture-request-header = [{ name = \"Host Name\", len = 64 }]"),
        "capture-request-header",
        "frontend \"db\".capture-request-header[0].name",
        &["invalid header name \"Host Name\""],
        "\"User-Agent\"",
    );
    expect_one(
        &with_frontend("capture-request-header = [{ name = \"Host\" }]"),
        "capture-request-header",
        "frontend \"db\".capture-request-header[0]",
        &["capture has no len"],
        "HAProxy requires `len`",
    );
    expect_one(
        &with_frontend("capture-request-header = [{ len = 3 }]"),
        "capture-request-header",
        "frontend \"db\".capture-request-header[0]",
        &["capture has no header name"],
        "name = \"Host\"",
    );
    expect_one(
        &with_frontend("capture-request-header = [{ name = \"Host\", len = 0 }]"),
        "capture-request-header",
        "frontend \"db\".capture-request-header[0].len",
        &["0 is out of range"],
        "",
    );
}

#[test]
fn captures_load_and_warn_in_tcp_mode() {
    let text = with_frontend("capture-request-header = [{ name = \"Host\", len = 64 }]");
    let config = ok(&text);
    assert_eq!(config.frontends[0].log.captures[0].name, "Host");
    assert_eq!(config.frontends[0].log.captures[0].len, 64);
    assert_eq!(config.warnings.len(), 1, "{:#?}", config.warnings);
    assert!(config.warnings[0].contains("ignored in mode tcp"));
}

#[test]
fn stats_section_loads_with_defaults() {
    let config = ok(&with_stats("bind = \"127.0.0.1:8404\""));
    let stats = config.stats.expect("stats");
    assert_eq!(stats.bind, "127.0.0.1:8404".parse().unwrap());
    assert_eq!(stats.uri, "/stats");
    assert_eq!(
        (stats.auth, stats.hide_version, stats.refresh),
        (None, false, None)
    );
    let config = ok(&with_stats(
        "bind = \":8404\"\nuri = \"/lb\"\nauth = \"ops:pa:ss\"\nhide-version = true\nrefresh = \"10s\"",
    ));
    let stats = config.stats.expect("stats");
    assert_eq!(stats.auth, Some(("ops".into(), "pa:ss".into())));
    assert_eq!(stats.refresh, Some(Duration::from_secs(10)));
    assert!(stats.hide_version);
}

#[test]
fn stats_without_bind() {
    expect_one(
        &with_stats("uri = \"/stats\""),
        "[stats]",
        "stats",
        &["stats has no bind address"],
        "127.0.0.1:8404",
    );
}

#[test]
fn stats_bad_bind() {
    expect_one(
        &with_stats("bind = \"localhost:8404\""),
        "localhost:8404",
        "stats.bind",
        &["invalid bind address \"localhost:8404\""],
        "IPv4:port",
    );
}

#[test]
fn stats_bind_overlapping_a_frontend() {
    expect_one(
        &with_stats("bind = \"0.0.0.0:15432\""),
        "0.0.0.0:15432",
        "stats.bind",
        &["overlaps frontend \"db\" bind 127.0.0.1:15432"],
        "its own port",
    );
}

#[test]
fn stats_uri_invalid_or_taken() {
    expect_one(
        &with_stats("bind = \"127.0.0.1:8404\"\nuri = \"stats\""),
        "uri =",
        "stats.uri",
        &["invalid stats uri \"stats\""],
        "starting with '/'",
    );
    expect_one(
        &with_stats("bind = \"127.0.0.1:8404\"\nuri = \"/metrics\""),
        "uri =",
        "stats.uri",
        &["taken by the Prometheus metrics"],
        "choose another path",
    );
}

#[test]
fn stats_auth_needs_user_and_colon() {
    for bad in ["admin", ":secret", "ad min:x"] {
        expect_one(
            &with_stats(&format!("bind = \"127.0.0.1:8404\"\nauth = \"{bad}\"")),
            "auth =",
            "stats.auth",
            &["must be \"user:password\""],
            "stats auth",
        );
    }
}

#[test]
fn stats_refresh_invalid() {
    expect_one(
        &with_stats("bind = \"127.0.0.1:8404\"\nrefresh = \"500ms\""),
        "refresh",
        "stats.refresh",
        &["at least 1s"],
        "whole seconds",
    );
    expect_one(
        &with_stats("bind = \"127.0.0.1:8404\"\nrefresh = \"soon\""),
        "refresh",
        "stats.refresh",
        &["invalid duration \"soon\""],
        "us, ms, s",
    );
}

#[test]
fn stats_unknown_key() {
    expect_one(
        &with_stats("bind = \"127.0.0.1:8404\"\nrealm = \"x\""),
        "realm",
        "stats.realm",
        &["unknown key `realm`"],
        "valid keys here: bind, uri, auth, hide-version, refresh",
    );
}

// ---------------------------------------------------------------- routing

/// An HTTP configuration for routing errors: `{fe}`, `{be}` and `{top}`
/// are replaced by the text under test.
const ROUTING: &str = r#"
[defaults]
mode = "http"
timeout = { connect = "5s", client = "30s", server = "30s" }
{top}
[[frontend]]
name = "web"
bind = ["127.0.0.1:18080"]
default_backend = "app"
{fe}

[[backend]]
name = "app"
servers = [{ name = "a1", addr = "127.0.0.1:9000" }]
{be}

[[backend]]
name = "db"
mode = "tcp"
servers = [{ name = "d1", addr = "127.0.0.1:5432" }]
"#;

fn routing(top: &str, fe: &str, be: &str) -> String {
    ROUTING
        .replace("{top}", top)
        .replace("{fe}", fe)
        .replace("{be}", be)
}

/// Exactly one error, pointing at the first character of `word` on the
/// line that holds `line_with` (1-based columns counted in characters).
#[track_caller]
fn expect_at(text: &str, line_with: &str, word: &str, key_path: &str, values: &[&str], hint: &str) {
    let err = expect_one(text, line_with, key_path, values, hint);
    let line = text.lines().nth(line_of(text, line_with) - 1).unwrap();
    let byte = line
        .find(word)
        .unwrap_or_else(|| panic!("{word:?} not on {line:?}"));
    let column = line[..byte].chars().count() + 1;
    assert_eq!(err.column, Some(column), "{err}");
}

#[test]
fn routing_config_loads_and_compiles() {
    let text = routing(
        "[[userlist]]\nname = \"ops\"\nusers = [{ name = \"a\", insecure-password = \"x\" }]",
        r#"acl = { is_ws = "hdr(Upgrade) -i websocket", static = ["path_beg -i /static /images", "path_end -i .jpg .css .js"] }
use_backend = ["app if is_ws", "app if static"]
http-request = ["deny deny_status 403 if { src 10.0.0.0/8 }", "redirect scheme https code 301 if !{ ssl_fc }", "set-header X-Foo %[src]", "auth realm ops unless { http_auth(ops) }"]
http-response = ["set-header X-Frame-Options DENY"]"#,
        "balance = \"url_param tableId\"\nhash-type = \"consistent\"\ncookie = \"SRV insert indirect nocache\"",
    );
    let config = ok(&text);
    let fe = &config.frontends[0];
    assert_eq!(fe.rules.acls.len(), 2);
    assert_eq!(fe.rules.acls[1].tests.len(), 2);
    assert_eq!(fe.rules.use_backend.len(), 2);
    assert_eq!(fe.rules.request.len(), 4);
    assert_eq!(fe.rules.response.len(), 1);
    assert_eq!(config.backends[0].balance, Balance::UrlParam);
    assert_eq!(config.userlists.len(), 1);
    // A cookie without any server cookie value starts, with a warning.
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("no server has a cookie value")),
        "{:?}",
        config.warnings
    );
}

#[test]
fn unknown_acl_in_a_condition_points_at_the_name() {
    let text = routing(
        "",
        "acl = { is_ws = \"hdr(Upgrade) -i websocket\" }\nhttp-request = [\"deny if is_wss\"]",
        "",
    );
    expect_at(
        &text,
        "deny if is_wss",
        "is_wss",
        "frontend \"web\".http-request[0]",
        &["unknown ACL `is_wss`"],
        "did you mean `is_ws`?",
    );
}

#[test]
fn unknown_fetch_suggests_the_near_one() {
    let text = routing("", "acl = { p = \"pth_beg /x\" }", "");
    expect_at(
        &text,
        "pth_beg",
        "pth_beg",
        "frontend \"web\".acl.p",
        &["unknown fetch `pth_beg`"],
        "did you mean `path_beg`?",
    );
}

#[test]
fn bad_regex_points_at_the_pattern() {
    let text = routing("", "acl = { r = \"path_reg ^/(a\" }", "");
    expect_at(
        &text,
        "path_reg",
        "^/(a",
        "frontend \"web\".acl.r",
        &["invalid regular expression"],
        "regex syntax",
    );
}

#[test]
fn bad_address_pattern() {
    let text = routing("", "http-request = [\"deny if { src 10.0.0.300/8 }\"]", "");
    expect_at(
        &text,
        "10.0.0.300",
        "10.0.0.300",
        "frontend \"web\".http-request[0]",
        &["invalid address pattern"],
        "10.0.0.0/8",
    );
}

#[test]
fn acl_without_pattern_suggests_found() {
    let text = routing("", "acl = { h = \"hdr(X-Debug)\" }", "");
    expect_at(
        &text,
        "X-Debug",
        "hdr(X-Debug)",
        "frontend \"web\".acl.h",
        &["no pattern"],
        "-m found",
    );
}

#[test]
fn unknown_match_method_and_flag() {
    let text = routing("", "acl = { h = \"hdr(X) -m starts a\" }", "");
    expect_at(
        &text,
        "-m starts",
        "starts",
        "frontend \"web\".acl.h",
        &["unknown match method `starts`"],
        "beg",
    );
    let text = routing("", "acl = { h = \"hdr(X) -x a\" }", "");
    expect_at(
        &text,
        "-x a",
        "-x",
        "frontend \"web\".acl.h",
        &["unknown ACL flag `-x`"],
        "-i -m -f",
    );
}

#[test]
fn missing_pattern_file() {
    let text = routing(
        "",
        "acl = { h = \"path_beg -f /nonexistent/percore-paths.txt\" }",
        "",
    );
    expect_at(
        &text,
        "-f /nonexistent",
        "/nonexistent",
        "frontend \"web\".acl.h",
        &["cannot read pattern file", "percore-paths.txt"],
        "relative to the configuration file",
    );
}

#[test]
fn unknown_http_request_and_response_actions() {
    let text = routing("", "http-request = [\"denny if { path /x }\"]", "");
    expect_at(
        &text,
        "denny",
        "denny",
        "frontend \"web\".http-request[0]",
        &["unknown http-request action `denny`"],
        "did you mean `deny`?",
    );
    let text = routing("", "http-response = [\"set-path /x\"]", "");
    expect_at(
        &text,
        "set-path",
        "set-path",
        "frontend \"web\".http-response[0]",
        &["unknown http-response action `set-path`"],
        "set-header",
    );
}

#[test]
fn use_backend_to_an_undefined_or_tcp_backend() {
    let text = routing("", "use_backend = [\"ap if { path /x }\"]", "");
    expect_at(
        &text,
        "ap if",
        "ap if",
        "frontend \"web\".use_backend[0]",
        &["backend \"ap\" is not defined"],
        "did you mean \"app\"?",
    );
    let text = routing("", "use_backend = [\"db if { path /x }\"]", "");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].message.contains("backend \"db\" is mode tcp"),
        "{}",
        errs[0]
    );
    assert_eq!(errs[0].key_path, "frontend \"web\".use_backend");
}

#[test]
fn http_rules_in_a_tcp_backend() {
    let text = ROUTING
        .replace("{top}", "")
        .replace("{fe}", "")
        .replace("{be}", "")
        .replace(
            "servers = [{ name = \"d1\", addr = \"127.0.0.1:5432\" }]",
            "servers = [{ name = \"d1\", addr = \"127.0.0.1:5432\" }]\nhttp-request = [\"deny\"]",
        );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].message.contains("has HTTP rules but is mode tcp"),
        "{}",
        errs[0]
    );
    assert!(errs[0]
        .hint
        .as_deref()
        .unwrap_or("")
        .contains("mode = \"http\""));
}

#[test]
fn bad_redirect_code_and_deny_status() {
    let text = routing(
        "",
        "http-request = [\"redirect scheme https code 309\"]",
        "",
    );
    expect_at(
        &text,
        "code 309",
        "309",
        "frontend \"web\".http-request[0]",
        &["invalid status `309`"],
        "301, 302, 303, 307, 308",
    );
    let text = routing("", "http-request = [\"deny deny_status 418\"]", "");
    expect_at(
        &text,
        "deny_status 418",
        "418",
        "frontend \"web\".http-request[0]",
        &["invalid status `418`"],
        "403",
    );
}

#[test]
fn unsupported_log_variable_in_a_value() {
    let text = routing("", "http-request = [\"set-header X-Client %ci\"]", "");
    expect_at(
        &text,
        "%ci",
        "%ci",
        "frontend \"web\".http-request[0]",
        &["%[fetch]"],
        "%[src]",
    );
    let text = routing("", "http-request = [\"set-header X-A %[src,base65]\"]", "");
    expect_at(
        &text,
        "base65",
        "base65",
        "frontend \"web\".http-request[0]",
        &["unknown converter `base65`"],
        "did you mean `base64`?",
    );
}

#[test]
fn rules_may_not_touch_framing_headers() {
    let text = routing("", "http-request = [\"del-header Transfer-Encoding\"]", "");
    expect_at(
        &text,
        "Transfer-Encoding",
        "Transfer-Encoding",
        "frontend \"web\".http-request[0]",
        &["may not change"],
        "frames bodies",
    );
}

#[test]
fn return_needs_a_content_type_and_a_readable_file() {
    let text = routing("", "http-request = ['return status 200 string \"hi\"']", "");
    let err = expect_one(
        &text,
        "return status",
        "frontend \"web\".http-request[0]",
        &["content-type"],
        "content-type text/plain",
    );
    assert!(err.column.is_some());
    let text = routing(
        "",
        "http-request = [\"return content-type text/html file /nonexistent/page.html\"]",
        "",
    );
    expect_at(
        &text,
        "file /nonexistent",
        "/nonexistent",
        "frontend \"web\".http-request[0]",
        &["cannot read", "page.html"],
        "relative to the configuration file",
    );
}

#[test]
fn http_auth_with_an_undefined_userlist() {
    let text = routing(
        "",
        "http-request = [\"auth unless { http_auth(admins) }\"]",
        "",
    );
    expect_at(
        &text,
        "http_auth",
        "http_auth",
        "frontend \"web\".http-request[0]",
        &["userlist \"admins\" is not defined"],
        "[[userlist]]",
    );
}

#[test]
fn userlist_errors() {
    let text = routing(
        "[[userlist]]\nname = \"ops\"\nusers = [{ name = \"a\" }]",
        "",
        "",
    );
    expect_one(
        &text,
        "users = [",
        "userlist[0].users[0]",
        &["exactly one of password and insecure-password"],
        "crypt(3)",
    );
    let text = routing(
        "[[userlist]]\nname = \"ops\"\nusers = [{ name = \"a\", password = \"$1$abc$def\" }]",
        "",
        "",
    );
    expect_one(
        &text,
        "users = [",
        "userlist[0].users[0].password",
        &["not a supported crypt(3) hash"],
        "mkpasswd -m sha-512",
    );
    let text = routing(
        "[[userlist]]\nname = \"ops\"\n[[userlist]]\nname = \"ops\"",
        "",
        "",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].line, Some(last_line_of(&text, "name = \"ops\"")));
    assert_eq!(errs[0].key_path, "userlist[1].name");
    assert!(errs[0].message.contains("duplicate userlist name"));
}

#[test]
fn balance_hash_type_and_cookie_errors() {
    let text = routing("", "", "balance = \"url_param\"");
    expect_one(
        &text,
        "balance = \"url_param\"",
        "backend \"app\".balance",
        &["needs a parameter name"],
        "url_param <name>",
    );
    let text = routing("", "", "balance = \"random(0)\"");
    expect_one(
        &text,
        "random(0)",
        "backend \"app\".balance",
        &["between 1 and 16"],
        "random(2)",
    );
    let text = routing("", "", "balance = \"uri depth x\"");
    expect_one(
        &text,
        "uri depth",
        "backend \"app\".balance",
        &["positive number"],
        "depth <n>",
    );
    let text = routing("", "", "hash-type = \"ring\"");
    expect_one(
        &text,
        "hash-type",
        "backend \"app\".hash-type",
        &["\"ring\""],
        "\"consistent\"",
    );
    let text = routing("", "", "cookie = \"SRV\"");
    expect_one(
        &text,
        "cookie = ",
        "backend \"app\".cookie",
        &["needs a mode"],
        "insert|rewrite|prefix",
    );
}

#[test]
fn unterminated_quote_in_a_rule() {
    let text = routing("", "http-request = ['set-header X-A \"abc']", "");
    expect_at(
        &text,
        "set-header X-A",
        "\"abc",
        "frontend \"web\".http-request[0]",
        &["unterminated"],
        "quote",
    );
}

#[test]
fn escaped_strings_report_the_offset_in_the_rule() {
    // \u0020 is a space written as a TOML escape: the text no longer maps
    // one to one, so the error names the offset instead.
    let text = routing("", "http-request = [\"deny\\u0020if nope\"]", "");
    let err = expect_one(
        &text,
        "deny\\u0020",
        "frontend \"web\".http-request[0]",
        &["unknown ACL `nope`", "at offset 8"],
        "",
    );
    let line = text.lines().nth(line_of(&text, "deny\\u0020") - 1).unwrap();
    let quote = line.find('"').unwrap();
    assert_eq!(err.column, Some(quote + 1), "{err}");
}

#[test]
fn acls_may_be_a_subtable_of_the_frontend() {
    let text = routing(
        "",
        "use_backend = [\"app if api !old\"]\n[frontend.acl]\napi = \"path_beg /api\"\nold = [\"hdr(X-Version) 1\", \"url_param(v) 1\"]",
        "",
    );
    let config = ok(&text);
    let acls = &config.frontends[0].rules.acls;
    assert_eq!(acls.len(), 2);
    assert_eq!(&*acls[1].name, "old");
    assert_eq!(acls[1].tests.len(), 2);
}

// ------------------------------------------------------------------- TLS

/// Certificate files generated for one test (rcgen); nothing committed.
struct CertDir {
    dir: tempfile::TempDir,
}

impl CertDir {
    fn new() -> Self {
        CertDir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn issue(params: rcgen::CertificateParams) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A bundle (chain + key) for `name`; returns its path.
    fn bundle(&self, file: &str, name: &str) -> String {
        let (cert, key) =
            Self::issue(rcgen::CertificateParams::new(vec![name.to_string()]).unwrap());
        self.write(file, &format!("{cert}{key}"))
    }

    fn write(&self, file: &str, text: &str) -> String {
        let path = self.path(file);
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn tls_frontend(bind: &str) -> String {
    base_with(
        "bind = [\"127.0.0.1:15432\"]",
        &format!("bind = [\"127.0.0.1:15432\", {bind}]"),
    )
}

fn tls_server(server: &str) -> String {
    base_with(
        "{ name = \"pg1\", addr = \"127.0.0.1:5432\" },",
        &format!("{{ name = \"pg1\", addr = \"127.0.0.1:5432\", {server} }},"),
    )
}

#[test]
fn tls_binds_load_bundles_separate_keys_and_directories() {
    let certs = CertDir::new();
    let bundle = certs.bundle("site.pem", "site.test");
    let (cert, key) =
        CertDir::issue(rcgen::CertificateParams::new(vec!["split.test".into()]).unwrap());
    let split = certs.write("split.pem", &cert);
    certs.write("split.pem.key", &key);
    let other = certs.write("other.crt", &cert);
    let other_key = certs.write("other.key", &key);
    std::fs::create_dir(certs.path("dir")).unwrap();
    certs.bundle("dir/a.pem", "a.test");
    certs.bundle("dir/b.pem", "b.test");
    let text = tls_frontend(&format!(
        r#"{{ addr = "127.0.0.1:8443", ssl = true, crt = "{bundle}", ssl-min-ver = "TLSv1.3", alpn = ["x-custom"] }},
  {{ addr = "127.0.0.1:8444", ssl = true, crt = "{split}", ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256", ciphersuites = "TLS_AES_128_GCM_SHA256" }},
  {{ addr = "127.0.0.1:8445", ssl = true, crt = "{other}", key = "{other_key}" }},
  {{ addr = "127.0.0.1:8446", ssl = true, crt = "{}" }}"#,
        certs.path("dir")
    ));
    let config = ok(&text);
    let fe = &config.frontends[0];
    assert_eq!(fe.binds.len(), 5);
    assert!(fe.bind_tls[0].is_none());
    let first = fe.bind_tls[1].as_ref().unwrap();
    assert_eq!(first.certs[0].facts.names, ["site.test"]);
    assert_eq!(first.min_version, percore::tls::TlsVersion::Tls13);
    assert_eq!(first.alpn, [b"x-custom".to_vec()]);
    let second = fe.bind_tls[2].as_ref().unwrap();
    assert_eq!(second.tls12_suites.as_ref().unwrap().len(), 1);
    assert_eq!(fe.bind_tls[4].as_ref().unwrap().certs.len(), 2);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn tls_http_bind_advertises_http11_unless_told_h2() {
    let certs = CertDir::new();
    let bundle = certs.bundle("site.pem", "site.test");
    let text = tls_frontend(&format!(
        r#"{{ addr = "127.0.0.1:8443", ssl = true, crt = "{bundle}" }}"#
    ))
    .replace("mode = \"tcp\"", "mode = \"http\"");
    let config = ok(&text);
    assert_eq!(
        config.frontends[0].bind_tls[1].as_ref().unwrap().alpn,
        [b"http/1.1".to_vec()]
    );
    // HAProxy's `alpn h2,http/1.1`, as a list or as its string.
    for alpn in [r#"["h2", "http/1.1"]"#, r#""h2,http/1.1""#] {
        let h2 = text.replace("ssl = true,", &format!("ssl = true, alpn = {alpn},"));
        assert_eq!(
            ok(&h2).frontends[0].bind_tls[1].as_ref().unwrap().alpn,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
    let spdy = text.replace(
        "ssl = true,",
        "ssl = true, alpn = [\"spdy/3\", \"http/1.1\"],",
    );
    expect_one(
        &spdy,
        "8443",
        "frontend \"db\".bind[1].alpn[0]",
        &["\"spdy/3\""],
        "\"h2\" and/or \"http/1.1\"",
    );
}

#[test]
fn bind_proto_h2_and_tune_h2() {
    let http = BASE.replace("mode = \"tcp\"", "mode = \"http\"").replace(
        "bind = [\"127.0.0.1:15432\"]",
        "bind = [\"127.0.0.1:15432\", { addr = \"127.0.0.1:15433\", proto = \"h2\" }]",
    );
    let config = ok(&http);
    assert_eq!(config.frontends[0].bind_h2, [false, true]);
    assert_eq!(config.global.tune.h2.max_concurrent_streams, 100);
    assert_eq!(config.global.tune.h2.initial_window_size, 65_535);

    let tuned = http.replace(
        "maxconn = 1000",
        "maxconn = 1000\ntune.h2 = { max-concurrent-streams = 8, initial-window-size = 1048576, max-frame-size = 32768, header-table-size = 0 }",
    );
    let h2 = ok(&tuned).global.tune.h2;
    assert_eq!(
        (
            h2.max_concurrent_streams,
            h2.initial_window_size,
            h2.max_frame_size,
            h2.header_table_size
        ),
        (8, 1_048_576, 32_768, 0)
    );
    let zero = http.replace(
        "maxconn = 1000",
        "maxconn = 1000\ntune.h2 = { max-concurrent-streams = 0 }",
    );
    expect_one(
        &zero,
        "max-concurrent-streams",
        "global.tune.h2.max-concurrent-streams",
        &["0", "out of range"],
        "",
    );
    let typo = http.replace(
        "maxconn = 1000",
        "maxconn = 1000\ntune.h2 = { max-streams = 8 }",
    );
    expect_one(
        &typo,
        "max-streams",
        "global.tune.h2.max-streams",
        &["max-streams"],
        "max-concurrent-streams",
    );

    // HTTP/2 is an HTTP mode thing; unknown protocols are named.
    let tcp = BASE.replace(
        "bind = [\"127.0.0.1:15432\"]",
        "bind = [{ addr = \"127.0.0.1:15433\", proto = \"h2\" }]",
    );
    expect_one(
        &tcp,
        "15433",
        "frontend \"db\".bind[0].proto",
        &["mode = \"http\""],
        "mode = \"http\"",
    );
    let other = http.replace("proto = \"h2\"", "proto = \"h3\"");
    expect_one(
        &other,
        "15433",
        "frontend \"db\".bind[1].proto",
        &["\"h3\""],
        "\"h2\"",
    );
}

#[test]
fn tls_unreadable_certificate_names_the_file() {
    let certs = CertDir::new();
    let missing = certs.path("missing.pem");
    let text = tls_frontend(&format!(
        r#"{{ addr = "127.0.0.1:8443", ssl = true, crt = "{missing}" }}"#
    ));
    expect_one(
        &text,
        "8443",
        "frontend \"db\".bind[1].crt",
        &[&missing, "cannot read"],
        "relative to the configuration file",
    );
}

#[test]
fn tls_key_not_matching_the_certificate_names_the_file() {
    let certs = CertDir::new();
    let (cert, _) = CertDir::issue(rcgen::CertificateParams::new(vec!["a.test".into()]).unwrap());
    let (_, other_key) =
        CertDir::issue(rcgen::CertificateParams::new(vec!["b.test".into()]).unwrap());
    let bad = certs.write("mismatch.pem", &format!("{cert}{other_key}"));
    let text = tls_frontend(&format!(
        r#"{{ addr = "127.0.0.1:8443", ssl = true, crt = "{bad}" }}"#
    ));
    expect_one(
        &text,
        "8443",
        "frontend \"db\".bind[1].crt",
        &[&bad, "does not match"],
        "issued for",
    );
}

#[test]
fn tls_certificate_without_key_names_both_places() {
    let certs = CertDir::new();
    let (cert, _) = CertDir::issue(rcgen::CertificateParams::new(vec!["a.test".into()]).unwrap());
    let lone = certs.write("lone.pem", &cert);
    let text = tls_frontend(&format!(
        r#"{{ addr = "127.0.0.1:8443", ssl = true, crt = "{lone}" }}"#
    ));
    expect_one(
        &text,
        "8443",
        "frontend \"db\".bind[1].crt",
        &[&lone, "no private key", &format!("{lone}.key")],
        "<crt>.key",
    );
}

#[test]
fn tls_empty_certificate_directory_names_it() {
    let certs = CertDir::new();
    let dir = certs.path("empty");
    std::fs::create_dir(&dir).unwrap();
    let text = tls_frontend(&format!(
        r#"{{ addr = "127.0.0.1:8443", ssl = true, crt = "{dir}" }}"#
    ));
    expect_one(
        &text,
        "8443",
        "frontend \"db\".bind[1].crt",
        &[&dir, "no certificate bundle"],
        "PEM bundles",
    );
}

#[test]
fn tls_expired_certificate_is_a_warning() {
    let certs = CertDir::new();
    let mut params = rcgen::CertificateParams::new(vec!["old.test".into()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let (cert, key) = CertDir::issue(params);
    let old = certs.write("old.pem", &format!("{cert}{key}"));
    let text = tls_frontend(&format!(
        r#"{{ addr = "127.0.0.1:8443", ssl = true, crt = "{old}" }}"#
    ));
    let config = ok(&text);
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert!(config.warnings[0].contains(&old), "{}", config.warnings[0]);
    assert!(config.warnings[0].contains("has expired"));
}

#[test]
fn tls_ssl_and_certificate_go_together() {
    let certs = CertDir::new();
    let bundle = certs.bundle("site.pem", "site.test");
    let no_crt = tls_frontend(r#"{ addr = "127.0.0.1:8443", ssl = true }"#);
    expect_one(
        &no_crt,
        "8443",
        "frontend \"db\".bind[1]",
        &["needs a certificate"],
        "crt = ",
    );
    let no_ssl = tls_frontend(&format!(
        r#"{{ addr = "127.0.0.1:8443", crt = "{bundle}" }}"#
    ));
    expect_one(
        &no_ssl,
        "8443",
        "frontend \"db\".bind[1].crt",
        &["without ssl = true"],
        "add ssl = true",
    );
    let no_addr = tls_frontend(&format!(r#"{{ ssl = true, crt = "{bundle}" }}"#));
    expect_one(
        &no_addr,
        "ssl = true",
        "frontend \"db\".bind[1]",
        &["no addr"],
        "addr = ",
    );
}

#[test]
fn tls_versions_below_12_and_inverted_ranges_are_refused() {
    let certs = CertDir::new();
    let bundle = certs.bundle("site.pem", "site.test");
    let old = tls_frontend(&format!(
        r#"{{ addr = "127.0.0.1:8443", ssl = true, crt = "{bundle}", ssl-min-ver = "TLSv1.1" }}"#
    ));
    expect_one(
        &old,
        "8443",
        "frontend \"db\".bind[1].ssl-min-ver",
        &["TLSv1.1", "TLS 1.2 and TLS 1.3 only"],
        "TLSv1.2",
    );
    let inverted = tls_frontend(&format!(
        r#"{{ addr = "127.0.0.1:8443", ssl = true, crt = "{bundle}", ssl-min-ver = "TLSv1.3", ssl-max-ver = "TLSv1.2" }}"#
    ));
    let errs = errors(&inverted);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].key_path, "frontend \"db\".bind[1].ssl-min-ver");
    assert!(errs[0].message.contains("above ssl-max-ver"));
}

#[test]
fn tls_cipher_names() {
    let certs = CertDir::new();
    let bundle = certs.bundle("site.pem", "site.test");
    let typo = tls_frontend(&format!(
        r#"{{ addr = "127.0.0.1:8443", ssl = true, crt = "{bundle}", ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_129_GCM" }}"#
    ));
    expect_one(
        &typo,
        "8443",
        "frontend \"db\".bind[1].ciphersuites",
        &["unknown cipher suite", "TLS_AES_129_GCM"],
        "TLS_CHACHA20_POLY1305_SHA256",
    );
    let only_dhe = tls_frontend(&format!(
        r#"{{ addr = "127.0.0.1:8443", ssl = true, crt = "{bundle}", ciphers = "DHE-RSA-AES128-GCM-SHA256" }}"#
    ));
    expect_one(
        &only_dhe,
        "8443",
        "frontend \"db\".bind[1].ciphers",
        &["no usable cipher suite"],
        "ECDHE-ECDSA-AES256-GCM-SHA384",
    );
    let mixed = tls_frontend(&format!(
        r#"{{ addr = "127.0.0.1:8443", ssl = true, crt = "{bundle}", ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256" }}"#
    ));
    let config = ok(&mixed);
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert!(config.warnings[0].contains("DHE-RSA-AES128-GCM-SHA256"));
}

#[test]
fn tls_server_settings() {
    let certs = CertDir::new();
    let ca = certs.bundle("ca.pem", "ca.test");
    let client = certs.bundle("client.pem", "client.test");
    let config = ok(&tls_server(&format!(
        r#"ssl = true, ca-file = "{ca}", sni = "db.internal", crt = "{client}""#
    )));
    let ssl = config.backends[0].servers[0].ssl.as_ref().unwrap();
    assert_eq!(ssl.sni.as_deref(), Some("db.internal"));
    assert!(ssl.client_cert.is_some());
    assert!(matches!(
        ssl.verify,
        percore::tls::Verify::Required { ref roots } if roots.len() == 1
    ));
    let none = ok(&tls_server(r#"ssl = true, verify = "none""#));
    assert!(matches!(
        none.backends[0].servers[0].ssl.as_ref().unwrap().verify,
        percore::tls::Verify::None
    ));

    expect_one(
        &tls_server("ssl = true"),
        "pg1",
        "backend \"pg\".server \"pg1\"",
        &["no ca-file"],
        "verify = \"none\"",
    );
    expect_one(
        &tls_server(r#"ssl = true, verify = "optional""#),
        "pg1",
        "backend \"pg\".server \"pg1\".verify",
        &["\"optional\""],
        "\"required\" or \"none\"",
    );
    let missing = certs.path("nope.pem");
    expect_one(
        &tls_server(&format!(r#"ssl = true, ca-file = "{missing}""#)),
        "pg1",
        "backend \"pg\".server \"pg1\".ca-file",
        &[&missing, "cannot read"],
        "CAs to trust",
    );
    expect_one(
        &tls_server(r#"ssl = true, verify = "none", sni = "bad name!""#),
        "pg1",
        "backend \"pg\".server \"pg1\".sni",
        &["bad name!"],
        "",
    );
    expect_one(
        &tls_server(r#"verify = "none""#),
        "pg1",
        "backend \"pg\".server \"pg1\".verify",
        &["without ssl = true"],
        "add ssl = true",
    );
}

// ------------------------------------------------------- stats-socket

#[test]
fn stats_sockets_read_as_haproxy_spells_them() {
    let text = base_with(
        "maxconn = 1000",
        "maxconn = 1000\nstats-socket = [\"/run/a.sock\", { path = \"/run/b.sock\", mode = \"0660\", level = \"operator\" }, { path = \"/run/c.sock\", mode = 0o600, level = \"admin\" }]\nstats-timeout = \"1m\"",
    );
    let config = ok(&text);
    let sockets = &config.global.stats_sockets;
    use percore::config::CliLevel;
    assert_eq!(sockets.len(), 3);
    assert_eq!(
        (sockets[0].path.to_str(), sockets[0].mode, sockets[0].level),
        (Some("/run/a.sock"), None, CliLevel::User)
    );
    assert_eq!(
        (sockets[1].mode, sockets[1].level),
        (Some(0o660), CliLevel::Operator)
    );
    assert_eq!(
        (sockets[2].mode, sockets[2].level),
        (Some(0o600), CliLevel::Admin)
    );
    assert_eq!(config.global.stats_timeout, Duration::from_secs(60));
    let single = ok(&base_with(
        "maxconn = 1000",
        "maxconn = 1000\nstats-socket = \"/run/x.sock\"",
    ));
    assert_eq!(single.global.stats_sockets.len(), 1);
}

#[test]
fn bad_stats_sockets_are_located() {
    let text = base_with(
        "maxconn = 1000",
        "maxconn = 1000\nstats-socket = { path = \"/run/a.sock\", level = \"root\" }",
    );
    expect_one(
        &text,
        "level = \"root\"",
        "global.stats-socket.level",
        &["root"],
        "user",
    );
    let text = base_with(
        "maxconn = 1000",
        "maxconn = 1000\nstats-socket = { path = \"/run/a.sock\", mode = \"rw\" }",
    );
    expect_one(
        &text,
        "mode = \"rw\"",
        "global.stats-socket.mode",
        &["mode"],
        "octal",
    );
    let text = base_with(
        "maxconn = 1000",
        "maxconn = 1000\nstats-socket = { level = \"admin\" }",
    );
    expect_one(
        &text,
        "stats-socket",
        "global.stats-socket",
        &["no path"],
        "path",
    );
    let long = format!("/run/{}.sock", "x".repeat(120));
    let text = base_with(
        "maxconn = 1000",
        &format!("maxconn = 1000\nstats-socket = \"{long}\""),
    );
    expect_one(
        &text,
        "stats-socket",
        "global.stats-socket",
        &["not a usable"],
        "107 bytes",
    );
    let text = base_with(
        "maxconn = 1000",
        "maxconn = 1000\nstats-socket = [\"/run/a.sock\",\n  \"/run/a.sock\"]",
    );
    expect_one(
        &text,
        "  \"/run/a.sock\"]",
        "global.stats-socket[1]",
        &["twice"],
        "once",
    );
    let text = base_with("maxconn = 1000", "maxconn = 1000\nstats-socket = 5");
    expect_one(
        &text,
        "stats-socket = 5",
        "global.stats-socket",
        &["integer"],
        "stats-socket =",
    );
}

#[test]
fn server_proto_h2() {
    let http = BASE.replace("mode = \"tcp\"", "mode = \"http\"").replace(
        "{ name = \"pg1\", addr = \"127.0.0.1:5432\" },",
        "{ name = \"pg1\", addr = \"127.0.0.1:5432\", proto = \"h2\" },\n  \
         { name = \"pg2\", addr = \"127.0.0.1:5433\" },",
    );
    let config = ok(&http);
    let protos: Vec<ServerProto> = config.backends[0].servers.iter().map(|s| s.proto).collect();
    assert_eq!(protos, [ServerProto::H2, ServerProto::Http1]);

    // From `default-server`, unless the server says otherwise.
    let defaulted = http
        .replace(
            "name = \"pg\"\n",
            "name = \"pg\"\ndefault-server = { proto = \"h2\" }\n",
        )
        .replace("proto = \"h2\" },", "proto = \"h1\" },");
    let protos: Vec<ServerProto> = ok(&defaulted).backends[0]
        .servers
        .iter()
        .map(|s| s.proto)
        .collect();
    assert_eq!(protos, [ServerProto::Http1, ServerProto::H2]);

    // HTTP/2 carries HTTP requests; unknown protocols are named.
    let tcp = http.replace("mode = \"http\"", "mode = \"tcp\"");
    expect_one(
        &tcp,
        "proto = \"h2\"",
        "backend \"pg\".server \"pg1\".proto",
        &["mode = \"http\""],
        "mode = \"http\"",
    );
    let other = http.replace("proto = \"h2\"", "proto = \"h3\"");
    expect_one(
        &other,
        "proto = \"h3\"",
        "backend \"pg\".server \"pg1\".proto",
        &["\"h3\""],
        "\"h2\"",
    );
}
