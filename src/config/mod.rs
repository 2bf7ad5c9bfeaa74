//! Configuration: TOML in, validated [`Config`] out.

pub mod model;

pub use model::*;

/// Placeholder until the loader lands.
pub fn load(_path: &std::path::Path) -> Result<Config, String> {
    Err("not yet".into())
}
