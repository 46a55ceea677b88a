//! `alert-relay check`: everything `serve` would verify, without writing anything.

use super::*;

pub fn load_templates(cfg: &Config, instruments: &Arc<Instruments>) -> anyhow::Result<Templates> {
    let dir = cfg.templates_dir();
    let dir = dir.is_dir().then_some(dir);
    Templates::load(dir.as_deref(), instruments.clone()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `alert-relay check`: everything `serve` would verify before opening the journal, without writing
/// anything (`auto` secrets are not generated).
pub fn check(cfg: &Config) -> anyhow::Result<String> {
    let instruments = Arc::new(cfg.instruments()?);
    let templates = load_templates(cfg, &instruments)?;
    check_source_templates(cfg, &templates)?;
    let scratch = std::env::temp_dir().join(format!("alert-relay-check-{}", std::process::id()));
    for (name, sc) in &cfg.sources {
        if sc.secret.trim() == "auto" {
            continue;
        }
        Source::from_config(name, sc, &scratch)?;
    }
    if let Some(ct) = &cfg.crosstrade {
        let (token, _) =
            secret::resolve(&ct.token, "crosstrade.token", &scratch, SecretKind::Token)?;
        crate::crosstrade::validate(ct, &token).map_err(anyhow::Error::msg)?;
    }
    for (i, reference) in cfg.server.api_tokens.iter().enumerate() {
        if reference.trim() != "auto" {
            secret::resolve(
                reference,
                &format!("server.api_tokens[{i}]"),
                &scratch,
                SecretKind::Token,
            )?;
        }
    }
    for (i, channel) in cfg.notify.channels.iter().enumerate() {
        crate::notify::Channel::from_config(i, channel)?;
    }
    Ok(format!(
        "{} source(s), {} template(s) compiled, {} instrument(s), paper accounts: {}",
        cfg.sources.len(),
        templates.names().len(),
        cfg.instruments.len(),
        cfg.paper.accounts.join(", ")
    ))
}

/// Every source's template (and allowed templates) must exist.
pub(super) fn check_source_templates(cfg: &Config, templates: &Templates) -> anyhow::Result<()> {
    for (name, s) in &cfg.sources {
        for (key, t) in std::iter::once(("template", &s.template))
            .chain(s.allowed_templates.iter().map(|t| ("allowed_templates", t)))
        {
            if !templates.contains(t) {
                anyhow::bail!(
                    "sources.{name}.{key}: no template named '{t}'; available: {}",
                    templates.names().join(", ")
                );
            }
        }
    }
    Ok(())
}
