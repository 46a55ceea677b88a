//! `check`: validates the config, resolves its secret references and compiles every template.

use std::path::Path;

use crate::config::load_config;

pub(super) fn check(path: Option<&Path>) -> anyhow::Result<()> {
    let cfg = load_config(path, None, None)?;
    let summary = crate::relay::check(&cfg)?;
    println!("{}: OK — {summary}", cfg.origin);
    Ok(())
}
