//! `percore convert` on arbitrary haproxy.cfg bytes.
//!
//! Properties:
//! - the output is TOML that parses, with no control character but LF
//!   and tab (hostile bytes in the input never reach a terminal or an
//!   editor);
//! - every problem names a line of the input;
//! - converting is deterministic;
//! - the output, loaded as percore loads a configuration, obeys the
//!   loader's own properties (see `config`).

use crate::convert::{convert as run, Input};

pub fn convert(data: &[u8]) {
    let env = |name: &str| (name == "PORT").then(|| "8080".to_string());
    let inputs = [Input {
        name: "haproxy.cfg".into(),
        bytes: data.to_vec(),
    }];
    let out = run(&inputs, &env);
    if let Err(e) = out.toml.parse::<toml_edit::DocumentMut>() {
        panic!("output is not TOML: {e}\n{}", out.toml);
    }
    // A tab is kept in comments (`emit`), as TOML allows.
    if let Some(c) = out
        .toml
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        panic!("control character {c:?} in the output:\n{}", out.toml);
    }
    let lines = data.split(|&b| b == b'\n').count();
    for p in &out.problems {
        assert!(
            p.origin.line >= 1 && p.origin.line <= lines,
            "problem on line {} of {lines}: {p}",
            p.origin.line
        );
    }
    assert_eq!(
        run(&inputs, &env).toml,
        out.toml,
        "a second conversion differs"
    );
    super::config::config_toml(out.toml.as_bytes());
}
