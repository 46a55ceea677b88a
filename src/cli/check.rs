//! `check`: validates the config, resolves its secret references, compiles every template and renders it
//! against its sample; prints where each source's alerts go, warnings on standard error.

use std::path::Path;

use crate::config::load_config;

pub(super) fn check(path: Option<&Path>) -> anyhow::Result<()> {
    let cfg = load_config(path, None, None)?;
    let checked = crate::relay::check(&cfg)?;
    for line in &checked.routes.lines {
        println!("{line}");
    }
    for warning in checked
        .routes
        .warnings
        .iter()
        .chain(&checked.sample_warnings)
    {
        eprintln!("warning: {warning}");
    }
    if !checked.sample_failures.is_empty() {
        anyhow::bail!(
            "{}: a template does not render its sample alert:\n{}",
            cfg.origin,
            checked.sample_failures.join("\n")
        );
    }
    println!("{}: OK — {}", cfg.origin, checked.summary);
    Ok(())
}
