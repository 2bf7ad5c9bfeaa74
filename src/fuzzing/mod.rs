//! Properties the fuzz targets check, one function per target over raw
//! bytes. Not an API: `fuzz/` (libFuzzer through `cargo fuzz`, nightly)
//! wraps each function in a one-line target, and `tests/fuzz_corpus.rs`
//! replays every saved input through the same functions on stable, so a
//! crash found by fuzzing stays a test once its input is in
//! `fuzz/corpus/<target>/`.
//!
//! Every function panics when a property fails (that is how libFuzzer
//! sees a finding); inputs that are merely refused are not findings.
//! What each target asserts is written at its function.

mod chunked;
mod config;
mod convert;
mod edit;
mod h2_request;
mod heads;
mod proxy_protocol;
mod rule_lines;
mod runtime_api;

/// One target: its name (the `fuzz/fuzz_targets/<name>.rs` file and the
/// `fuzz/corpus/<name>/` directory) and its property function.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target; `fuzz/`, `scripts/fuzz.sh` and the corpus replay read
/// this table.
pub const TARGETS: &[Target] = &[
    Target {
        name: "request_head",
        run: heads::request_head,
    },
    Target {
        name: "response_head",
        run: heads::response_head,
    },
    Target {
        name: "chunked",
        run: chunked::chunked,
    },
    Target {
        name: "header_edit",
        run: edit::header_edit,
    },
    Target {
        name: "rule_lines",
        run: rule_lines::rule_lines,
    },
    Target {
        name: "config_toml",
        run: config::config_toml,
    },
    Target {
        name: "proxy_protocol",
        run: proxy_protocol::proxy_protocol,
    },
    Target {
        name: "runtime_api",
        run: runtime_api::runtime_api,
    },
    Target {
        name: "convert",
        run: convert::convert,
    },
    Target {
        name: "h2_request",
        run: h2_request::h2_request,
    },
];

/// The property function of target `name`.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|t| t.name == name).map(|t| t.run)
}

/// Runs target `name` on `data` (a fuzz target's whole body).
pub fn run(name: &str, data: &[u8]) {
    match target(name) {
        Some(run) => run(data),
        None => panic!("no fuzz target {name} in percore::fuzzing::TARGETS"),
    }
}

/// Paths a fuzzed configuration or rule line must not name: reading a
/// device (`/dev/zero`, a tty) would hang the fuzzer rather than find
/// anything in percore. Inputs naming them are skipped.
fn names_special_files(text: &str) -> bool {
    ["/dev", "/proc", "/sys", "/run"]
        .iter()
        .any(|p| text.contains(p))
}
