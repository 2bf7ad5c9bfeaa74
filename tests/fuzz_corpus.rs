//! Replays every saved fuzz input (`fuzz/corpus/<target>/`: seeds from
//! the tests' own inputs, what fuzzing kept, and every input that once
//! found a bug) through the same property functions the libFuzzer
//! targets run (`percore::fuzzing`), on stable, so no nightly toolchain
//! is needed for a finding to stay fixed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use percore::fuzzing::{target, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn inputs(name: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join("corpus").join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(name: &str) {
    let run = target(name).unwrap_or_else(|| panic!("no target {name}"));
    let files = inputs(name);
    assert!(!files.is_empty(), "fuzz/corpus/{name}/ is empty");
    let mut failed = Vec::new();
    for file in &files {
        let data = std::fs::read(file).expect("corpus file");
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(&data))) {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{}: {why}", file.display()));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} inputs of {name} break a property:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}

/// The table, the target files and the corpus directories agree: a target
/// added to `percore::fuzzing::TARGETS` needs all three.
#[test]
fn every_target_has_a_fuzz_target_file_and_a_corpus() {
    for t in TARGETS {
        let file = fuzz_dir()
            .join("fuzz_targets")
            .join(format!("{}.rs", t.name));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            text.contains(&format!("run(\"{}\"", t.name)),
            "{} runs another target",
            file.display()
        );
        let manifest =
            std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
        assert!(
            manifest.contains(&format!("name = \"{}\"", t.name)),
            "fuzz/Cargo.toml lacks {}",
            t.name
        );
        assert!(!inputs(t.name).is_empty(), "no corpus for {}", t.name);
    }
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*
        #[test]
        fn every_target_is_replayed() {
            let replayed = [$(stringify!($name)),*];
            for t in TARGETS {
                assert!(replayed.contains(&t.name), "{} has no replay test", t.name);
            }
        }
    };
}

replay_tests!(
    request_head,
    response_head,
    chunked,
    header_edit,
    rule_lines,
    config_toml,
    proxy_protocol,
    runtime_api,
    convert,
    h2_request,
);
