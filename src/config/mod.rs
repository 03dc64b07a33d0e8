//! Settings: TOML file, environment overrides and command-line overrides, validated once.

mod model;

pub use model::*;
