//! The configuration loader on arbitrary TOML.
//!
//! Properties, for any UTF-8 text (no DNS: host names do not resolve):
//! - loading never panics and gives the same answer twice;
//! - every error says where it is: a line within the text and a column
//!   (only "no frontend defined", which has no place, goes without),
//!   printed as `file:line:column: ...` with a message.

use std::path::Path;

use crate::config::fuzz_access::load_with;
use crate::config::{Config, ConfigErrors};

fn no_dns(_host: &str, _port: u16) -> std::io::Result<Vec<std::net::SocketAddr>> {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "no name resolution while fuzzing",
    ))
}

fn load(text: &str) -> Result<Config, ConfigErrors> {
    load_with(
        text,
        Path::new("/nonexistent-fuzz-dir/fuzz.toml"),
        &[0, 1],
        &no_dns,
    )
}

pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if super::names_special_files(text) {
        return;
    }
    let first = load(text);
    let line_count = text.lines().count() + 1;
    match &first {
        Ok(_) => assert!(
            load(text).is_ok(),
            "a valid configuration is refused the second time"
        ),
        Err(errors) => {
            assert!(!errors.0.is_empty(), "refused without an error");
            for e in &errors.0 {
                assert!(!e.message.trim().is_empty(), "empty message: {e:?}");
                match (e.line, e.column) {
                    (Some(line), Some(column)) => {
                        assert!(line >= 1 && line <= line_count, "{e}: line beyond the text");
                        assert!(column >= 1, "{e}: column 0");
                        assert!(
                            e.to_string()
                                .starts_with(&format!("{}:{line}:{column}: ", e.file.display())),
                            "{e}"
                        );
                    }
                    (None, None) => assert_eq!(e.key_path, "frontend", "{e} has no position"),
                    _ => panic!("{e}: a line without a column"),
                }
            }
            assert_eq!(
                load(text).err().as_ref(),
                Some(errors),
                "a second load differs"
            );
        }
    }
}
