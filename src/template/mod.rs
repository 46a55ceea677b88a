//! Alert templates: turn one alert (a JSON object) into zero or more validated [`BracketRequest`]s.
//!
//! A template is a TOML file, `templates/<name>.toml`, whose values are minijinja expressions. The shipped
//! templates are embedded in the binary; a template directory may add more or override them by name.
//!
//! Evaluation order for one alert, and what each step can see:
//! 1. `key` (a template string, `{{ ... }}`): the alert's top-level fields, `alert` (the whole object) and
//!    `source` (the source name). An empty result means no idempotency key.
//! 2. `when`: the same; a falsy result skips the alert (nothing runs, the skip is recorded with its key).
//! 3. `[vars]`, in file order: the same plus the vars defined above them. Vars run only for alerts that
//!    pass `when`, so they may assume a live position.
//! 4. `accounts`: the same plus all vars; a list of names, or one string (comma-separated names allowed).
//! 5. `[request]` / each `[[requests]]`, once per account: the same plus `account`. Without `accounts` the
//!    request sets `account` itself; with it, `account` defaults to the fan-out account.
//!
//! `sample` (optional, not evaluated per alert) is an alert body as its sender sends it; `alert-relay check`
//! renders every template against its sample, because minijinja finds an unknown function or filter only
//! when it runs (`ofset(...)` compiles). Every template should carry one; `check` warns about one without.
//!
//! Names resolve vars first, then `account`, `alert`, `source`, then the alert's fields. Undefined values are
//! strict: using a missing field is an error naming the template and field, while `x is defined` and
//! `x | default(...)` still work. Every expression is compiled once at load.
//!
//! Each expression is stored as a one-line minijinja template (`{% set __value = (expr) %}`) in a single
//! shared `Environment`: the environment owns the compiled code, so `Templates` needs neither self-references
//! nor leaked memory, and a render is a lookup plus a VM run. The vars, and each request table, are also
//! compiled together into one template (`group`), which is what renders: four renders per alert
//! instead of one per field.
//!
//! Where things live:
//! - `mod.rs`: the public API ([`Templates`], [`Rendered`]) and loading: the built-ins, the template
//!   directory, and compiling every file into one environment.
//! - `compile.rs`: the template file format, the `Compiler` that checks each field and compiles it,
//!   and the compiled form (`Spec`).
//! - `render.rs`: [`Templates::render`]: the names an expression sees (`Scope`), the evaluation
//!   order above, the fan-out over accounts, and mapping each request table to a [`BracketRequest`].
//! - `group.rs`: several expressions evaluated in one render.
//! - `routing.rs`: [`Templates::routing`]: the accounts a template reaches, as far as known without an alert.
//! - `functions.rs`: the trading helpers templates call (`ticks`, `points`, `round_tick`, ...).
//! - `error.rs`: [`TemplateError`], whose messages name the template, file and field.

mod compile;
mod error;
mod functions;
mod group;
mod render;
mod routing;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use crate::command::Command;
use crate::instruments::Instruments;
use compile::{Compiler, Spec};
pub use error::TemplateError;
pub use routing::{AccountExpr, Routing};

/// The templates shipped with alert-relay, embedded at build time.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "crosstrade-kv",
        include_str!("../../templates/crosstrade-kv.toml"),
    ),
    (
        "signal-service",
        include_str!("../../templates/signal-service.toml"),
    ),
    (
        "tradingview-indicator",
        include_str!("../../templates/tradingview-indicator.toml"),
    ),
    (
        "tradingview-protect",
        include_str!("../../templates/tradingview-protect.toml"),
    ),
    (
        "tradingview-strategy",
        include_str!("../../templates/tradingview-strategy.toml"),
    ),
];

/// What a template made of one alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Rendered {
    /// `when` was falsy: nothing to execute.
    Skipped { reason: String, key: Option<String> },
    /// The validated requests, account by account, each account's requests in template order.
    Requests {
        key: Option<String>,
        requests: Vec<Command>,
    },
}

/// All loaded templates, compiled. `Send + Sync`; share it behind an `Arc`.
pub struct Templates {
    env: Environment<'static>,
    instruments: Arc<Instruments>,
    specs: BTreeMap<String, Spec>,
    /// `source_accounts` by source (`[sources.X] accounts`), and for a source that names none.
    source_accounts: BTreeMap<String, Vec<String>>,
    default_accounts: Vec<String>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("names", &self.names())
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// The built-in templates plus every `*.toml` in `dir` (a file overrides the built-in of the same name),
    /// with every expression compiled.
    pub fn load(
        dir: Option<&Path>,
        instruments: Arc<Instruments>,
    ) -> Result<Templates, TemplateError> {
        // name → (file, text)
        let mut sources: BTreeMap<String, (String, String)> = BUILT_IN
            .iter()
            .map(|(name, text)| {
                (
                    name.to_string(),
                    (format!("built-in {name}.toml"), text.to_string()),
                )
            })
            .collect();
        if let Some(dir) = dir {
            for (name, path) in template_files(dir)? {
                let file = path.display().to_string();
                let text = std::fs::read_to_string(&path).map_err(|e| TemplateError::File {
                    file: file.clone(),
                    cause: e.to_string(),
                })?;
                sources.insert(name, (file, text));
            }
        }

        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        functions::register(&mut env, &instruments);
        group::register(&mut env);

        let mut specs = BTreeMap::new();
        for (name, (file, text)) in sources {
            let spec = Compiler {
                env: &mut env,
                template: &name,
                file: &file,
            }
            .compile(&text)?;
            specs.insert(name, spec);
        }
        Ok(Templates {
            env,
            instruments,
            specs,
            source_accounts: BTreeMap::new(),
            default_accounts: vec!["Sim101".to_string()],
        })
    }

    /// What `source_accounts` holds in a template: `by_source[source]`, else `default`.
    pub fn with_accounts(
        mut self,
        by_source: BTreeMap<String, Vec<String>>,
        default: Vec<String>,
    ) -> Templates {
        self.source_accounts = by_source;
        self.default_accounts = default;
        self
    }

    /// The accounts a source's alerts go to by default.
    pub fn accounts_of(&self, source: &str) -> &[String] {
        match self.source_accounts.get(source) {
            Some(list) if !list.is_empty() => list,
            _ => &self.default_accounts,
        }
    }

    /// Template names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.specs.keys().cloned().collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.specs.contains_key(name)
    }

    /// The template's `description`, if it exists.
    pub fn description(&self, name: &str) -> Option<&str> {
        self.specs.get(name).map(|s| s.description.as_str())
    }

    /// The template's `sample`: an alert body as its sender sends it, for `check` to render.
    pub fn sample(&self, name: &str) -> Option<&str> {
        self.specs.get(name).and_then(|s| s.sample.as_deref())
    }

    /// The file the template was loaded from (`built-in NAME.toml` for a built-in).
    pub fn file(&self, name: &str) -> Option<&str> {
        self.specs.get(name).map(|s| s.file.as_str())
    }
}

/// `*.toml` files in `dir`, sorted, with their template names.
fn template_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, TemplateError> {
    let io_err = |e: std::io::Error| TemplateError::File {
        file: dir.display().to_string(),
        cause: e.to_string(),
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") || !path.is_file() {
            continue;
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !valid_name(&name) {
            return Err(TemplateError::InvalidName {
                name,
                file: path.display().to_string(),
            });
        }
        files.push((name, path));
    }
    files.sort();
    Ok(files)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
