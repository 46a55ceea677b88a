//! `alert-relay check`: everything `serve` would verify, without writing anything, and where alerts go.

use super::routes::{routes, Routes};
use super::*;
use crate::template::TemplateError;

pub fn load_templates(cfg: &Config, instruments: &Arc<Instruments>) -> anyhow::Result<Templates> {
    let dir = cfg.templates_dir();
    let dir = dir.is_dir().then_some(dir);
    let templates =
        Templates::load(dir.as_deref(), instruments.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let live: Vec<&String> = cfg.crosstrade.iter().flat_map(|c| &c.accounts).collect();
    let mut by_source = std::collections::BTreeMap::new();
    for (name, sc) in &cfg.sources {
        for a in &sc.accounts {
            if !cfg.paper.accounts.contains(a) && !live.contains(&a) {
                anyhow::bail!(
                    "sources.{name}.accounts: '{a}' is neither a paper account ([paper] accounts) nor a live one ([crosstrade] accounts)"
                );
            }
        }
        by_source.insert(name.clone(), sc.accounts.clone());
    }
    Ok(templates.with_accounts(by_source, cfg.paper.accounts.clone()))
}

/// What `check` found in a valid config.
#[derive(Debug)]
pub struct Checked {
    /// One line: sources, templates, instruments, paper accounts.
    pub summary: String,
    /// Where each source's alerts go, and warnings about it.
    pub routes: Routes,
    /// Templates without a sample, or whose sample is skipped.
    pub sample_warnings: Vec<String>,
    /// Samples that do not parse or render, each naming the template, the field and the cause: the
    /// config is not OK (every alert like the sample would fail).
    pub sample_failures: Vec<String>,
}

/// `alert-relay check`: everything `serve` would verify before opening the journal, without writing
/// anything (`auto` secrets are not generated), and every template rendered against its sample. An error
/// is a config `serve` refuses; [`Checked::sample_failures`] are for the caller to refuse.
pub fn check(cfg: &Config) -> anyhow::Result<Checked> {
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
    let samples = render_samples(cfg, &templates);
    let rendered = templates.names().len() - samples.missing - samples.failures.len();
    Ok(Checked {
        summary: format!(
            "{} source(s), {} template(s) compiled, {rendered} rendered against their sample, {} instrument(s), paper accounts: {}",
            cfg.sources.len(),
            templates.names().len(),
            cfg.instruments.len(),
            cfg.paper.accounts.join(", ")
        ),
        routes: routes(cfg, &templates),
        sample_warnings: samples.warnings,
        sample_failures: samples.failures,
    })
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

/// What rendering the templates against their samples found.
#[derive(Debug, Default)]
pub(super) struct Samples {
    /// Samples that do not parse or render: each names the template, the field and the cause.
    pub(super) failures: Vec<String>,
    /// Templates without a sample, and samples the template skips (their requests were not rendered).
    pub(super) warnings: Vec<String>,
    /// How many templates have no sample.
    pub(super) missing: usize,
}

/// Renders every template (built-in and `templates_dir`) against its `sample`, with the relay's
/// instruments, as the first source that uses it (or `sample`). minijinja finds an unknown function or
/// filter only when it runs, so this is what catches `ofset(...)` before an alert does.
pub(super) fn render_samples(cfg: &Config, templates: &Templates) -> Samples {
    let mut out = Samples::default();
    for name in templates.names() {
        let file = templates.file(&name).unwrap_or_default();
        let Some(sample) = templates.sample(&name) else {
            out.missing += 1;
            out.warnings.push(format!(
                "template '{name}' ({file}) has no `sample`: add one (an alert as its sender sends it) so check can render it"
            ));
            continue;
        };
        let source = cfg
            .sources
            .iter()
            .find(|(_, s)| s.template == name || s.allowed_templates.contains(&name))
            .map_or("sample", |(n, _)| n.as_str());
        let mut body = match crate::body::parse(sample.trim().as_bytes(), None) {
            Ok(body) => body,
            Err(e) => {
                out.failures.push(format!(
                    "template '{name}' ({file}), field 'sample': not an alert body: {e}"
                ));
                continue;
            }
        };
        // As the relay does before rendering, whatever the field is called in the configured sources.
        for s in cfg.sources.values() {
            body.take_secret(&s.token_field);
        }
        match templates.render(&name, &body.fields, source) {
            Ok(Rendered::Requests { .. }) => {}
            Ok(Rendered::Skipped { reason, .. }) => out.warnings.push(format!(
                "template '{name}' ({file}): its sample is skipped ({reason}), so its requests were not rendered: give a sample that trades"
            )),
            Err(e) => out.failures.push(sample_failure(&e, file)),
        }
    }
    out
}

fn sample_failure(e: &TemplateError, file: &str) -> String {
    format!("{e} (rendering the sample alert of {file})")
}
