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
//! Names resolve vars first, then `account`, `alert`, `source`, then the alert's fields. Undefined values are
//! strict: using a missing field is an error naming the template and field, while `x is defined` and
//! `x | default(...)` still work. Every expression is compiled once at load.
//!
//! Each expression is stored as a one-line minijinja template (`{% set __value = (expr) %}`) in a single
//! shared `Environment`: the environment owns the compiled code, so `Templates` needs neither self-references
//! nor leaked memory, and a render is a lookup plus a VM run. The vars, and each request table, are also
//! compiled together into one template (`group`), which is what renders: four renders per alert
//! instead of one per field.

mod functions;
mod group;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ValueKind};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Deserialize;
use serde_json::{Map as JsonMap, Value as Json};

use crate::domain::{BracketRequest, RequestError};
use crate::instruments::Instruments;
use group::Group;

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
        "tradingview-strategy",
        include_str!("../../templates/tradingview-strategy.toml"),
    ),
];

/// The CancelAndBracket fields a request table may set.
const REQUEST_FIELDS: &[&str] = &[
    "account",
    "instrument",
    "action",
    "quantity",
    "takeProfit",
    "stopLoss",
    "ocoId",
    "cancelDelayMs",
];

/// Names the context provides; a var may not take them.
const RESERVED: &[&str] = &["alert", "source", "account"];

/// The variable each compiled expression template assigns its result to.
const RESULT_VAR: &str = "__value";

/// Why templates failed to load or an alert failed to render. Every message names the template (and the
/// file or field where there is one) and the cause.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown template '{name}'; known templates: {}", .known.join(", "))]
    Unknown { name: String, known: Vec<String> },
    #[error(
        "invalid template name '{name}' ({file}): names may only use letters, digits, '-' and '_'"
    )]
    InvalidName { name: String, file: String },
    #[error("template file {file}: {cause}")]
    File { file: String, cause: String },
    /// A field that does not fit the template format (wrong type, unknown key, reserved name, ...).
    #[error("template '{template}' ({file}), field '{field}': {cause}")]
    Invalid {
        template: String,
        file: String,
        field: String,
        cause: String,
    },
    #[error("template '{template}' ({file}), field '{field}' ({expr}): {cause}")]
    Compile {
        template: String,
        file: String,
        field: String,
        expr: String,
        cause: String,
    },
    #[error("template '{template}', field '{field}' ({expr}){}: {cause}", for_account(.account))]
    Render {
        template: String,
        field: String,
        expr: String,
        account: Option<String>,
        cause: String,
    },
    #[error("template '{template}', {}{}: {error}", request_label(.request), for_account(.account))]
    InvalidRequest {
        template: String,
        /// Which `[[requests]]` table (0-based); `None` for a single `[request]`.
        request: Option<usize>,
        account: Option<String>,
        /// Boxed to keep `TemplateError` small on the hot path. Part of the message, so not a `#[source]`
        /// (`{:#}` would print it twice).
        error: Box<RequestError>,
    },
}

fn request_label(index: &Option<usize>) -> String {
    match index {
        Some(i) => format!("requests[{i}]"),
        None => "request".to_string(),
    }
}

fn for_account(account: &Option<String>) -> String {
    match account {
        Some(a) => format!(" for account '{a}'"),
        None => String::new(),
    }
}

/// What a template made of one alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Rendered {
    /// `when` was falsy: nothing to execute.
    Skipped { reason: String, key: Option<String> },
    /// The validated requests, account by account, each account's requests in template order.
    Requests {
        key: Option<String>,
        requests: Vec<BracketRequest>,
    },
}

/// All loaded templates, compiled. `Send + Sync`; share it behind an `Arc`.
pub struct Templates {
    env: Environment<'static>,
    instruments: Arc<Instruments>,
    specs: BTreeMap<String, Spec>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("names", &self.names())
            .finish_non_exhaustive()
    }
}

/// One compiled template.
struct Spec {
    description: String,
    key: Option<Compiled>,
    when: Option<Compiled>,
    /// Every var, in file order, evaluated in one run.
    vars: Group,
    accounts: Option<Accounts>,
    requests: Vec<RequestSpec>,
}

enum Accounts {
    Fixed(Vec<String>),
    Expr(Compiled),
}

struct RequestSpec {
    /// Position in `[[requests]]`; `None` for `[request]`.
    index: Option<usize>,
    /// The request field each member of `group` sets, in order.
    keys: Vec<&'static str>,
    /// Every field of the table, evaluated in one run per account.
    group: Group,
}

/// One field of a template file: an expression (or, for `key`, a template string), checked at load.
struct Field {
    /// Where it sits in the file: `when`, `vars.entry`, `takeProfit`, `requests[1].stopLoss`.
    label: String,
    /// The text as written, for error messages.
    source: String,
}

/// A field rendered on its own (`key`, `when`, `accounts`); vars and request fields render in a [`Group`].
struct Compiled {
    field: Field,
    /// The name of its compiled template in the environment.
    name: String,
}

/// The file format, before compiling.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    #[serde(default)]
    description: String,
    when: Option<String>,
    key: Option<String>,
    accounts: Option<toml::Value>,
    #[serde(default)]
    vars: toml::Table,
    request: Option<toml::Table>,
    requests: Option<Vec<toml::Table>>,
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
        })
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

    /// Renders one alert: skipped, or the validated requests.
    pub fn render(
        &self,
        name: &str,
        alert: &JsonMap<String, Json>,
        source: &str,
    ) -> Result<Rendered, TemplateError> {
        let spec = self.specs.get(name).ok_or_else(|| TemplateError::Unknown {
            name: name.to_string(),
            known: self.names(),
        })?;
        let r = Renderer {
            env: &self.env,
            template: name,
        };
        let base = Arc::new(Base {
            alert: Value::from_serialize(alert),
            source: Value::from(source),
        });
        let mut scope = Scope {
            base,
            vars: Vec::new(),
            account: None,
        };

        let key = match &spec.key {
            Some(field) => {
                let key = r.render_string(field, &scope.to_value(), None)?;
                let key = key.trim();
                (!key.is_empty()).then(|| key.to_string())
            }
            None => None,
        };
        if let Some(when) = &spec.when {
            if !r.eval(when, &scope.to_value(), None)?.is_true() {
                return Ok(Rendered::Skipped {
                    reason: format!("when condition is false: {}", when.field.source),
                    key,
                });
            }
        }
        for (var, value) in r.eval_group(&spec.vars, &scope.to_value(), None)? {
            scope.vars.push((var, value));
        }
        let accounts = match &spec.accounts {
            None => None,
            Some(Accounts::Fixed(list)) => Some(list.clone()),
            Some(Accounts::Expr(field)) => {
                let value = r.eval(field, &scope.to_value(), None)?;
                Some(account_list(&value).map_err(|cause| r.error(&field.field, None, cause))?)
            }
        };

        let mut requests = Vec::new();
        let fan_out: Vec<Option<String>> = match accounts {
            Some(list) => list.into_iter().map(Some).collect(),
            None => vec![None],
        };
        for account in fan_out {
            scope.account = account.as_deref().map(Value::from);
            let ctx = scope.to_value();
            for req in &spec.requests {
                let mut args = JsonMap::new();
                if let Some(a) = &account {
                    args.insert("account".to_string(), Json::from(a.as_str()));
                }
                let values = r.eval_group(&req.group, &ctx, account.as_deref())?;
                for ((key, (_, value)), field) in
                    req.keys.iter().zip(values).zip(req.group.fields())
                {
                    let json = serde_json::to_value(&value)
                        .map_err(|e| r.error(field, account.as_deref(), e.to_string()))?;
                    args.insert(key.to_string(), json);
                }
                let request =
                    BracketRequest::from_rendered(&args, &self.instruments).map_err(|error| {
                        TemplateError::InvalidRequest {
                            template: name.to_string(),
                            request: req.index,
                            account: account.clone(),
                            error: Box::new(error),
                        }
                    })?;
                requests.push(request);
            }
        }
        Ok(Rendered::Requests { key, requests })
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

fn valid_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The accounts an `accounts` expression yielded: a list of names, or one string of comma-separated names.
fn account_list(value: &Value) -> Result<Vec<String>, String> {
    let names: Vec<String> = if let Some(s) = value.as_str() {
        s.split(',').map(|a| a.trim().to_string()).collect()
    } else if matches!(value.kind(), ValueKind::Seq | ValueKind::Iterable) {
        let iter = value.try_iter().map_err(|e| cause(&e))?;
        iter.map(|v| match v.as_str() {
            Some(s) => Ok(s.trim().to_string()),
            None => Err(format!("account names must be strings, got {v}")),
        })
        .collect::<Result<_, _>>()?
    } else {
        return Err(format!(
            "expected a list of account names or a string, got {}",
            value.kind()
        ));
    };
    let names: Vec<String> = names.into_iter().filter(|a| !a.is_empty()).collect();
    if names.is_empty() {
        return Err("no accounts to fan out to".to_string());
    }
    Ok(names)
}

/// Compiles one template file into the shared environment.
struct Compiler<'a> {
    env: &'a mut Environment<'static>,
    template: &'a str,
    file: &'a str,
}

impl Compiler<'_> {
    fn compile(mut self, text: &str) -> Result<Spec, TemplateError> {
        let parsed: TemplateFile = toml::from_str(text).map_err(|e| TemplateError::File {
            file: self.file.to_string(),
            cause: e.to_string().trim_end().to_string(),
        })?;
        let key = parsed
            .key
            .map(|k| self.template_string("key", k))
            .transpose()?;
        let when = parsed
            .when
            .map(|w| self.expression("when", w))
            .transpose()?;

        let mut vars = Vec::new();
        for (name, value) in parsed.vars {
            let label = format!("vars.{name}");
            if !valid_var_name(&name) || RESERVED.contains(&name.as_str()) || name.starts_with("__")
            {
                return Err(self.invalid(
                    &label,
                    "a var name must be an identifier (letters, digits, '_') other than alert, source and account, not starting with '__'",
                ));
            }
            if !group::settable(&name) {
                return Err(self.invalid(
                    &label,
                    "this name is a reserved word in expressions (true, false, none, loop, self...) and cannot name a var",
                ));
            }
            let expr = self.expression_text(&label, &value)?;
            vars.push((Arc::from(name.as_str()), self.checked(&label, expr)?));
        }
        let vars = self.group("vars", vars)?;

        let accounts = match parsed.accounts {
            None => None,
            Some(toml::Value::String(expr)) => {
                Some(Accounts::Expr(self.expression("accounts", expr)?))
            }
            Some(toml::Value::Array(items)) => {
                let names: Option<Vec<String>> = items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                    })
                    .collect();
                match names {
                    Some(names) if !names.is_empty() => Some(Accounts::Fixed(names)),
                    _ => {
                        return Err(self.invalid(
                            "accounts",
                            "a list of accounts must hold at least one non-empty account name",
                        ))
                    }
                }
            }
            Some(_) => {
                return Err(self.invalid(
                    "accounts",
                    "must be a list of account names or a string holding an expression",
                ))
            }
        };

        let tables: Vec<(Option<usize>, toml::Table)> = match (parsed.request, parsed.requests) {
            (Some(t), None) => vec![(None, t)],
            (None, Some(ts)) if !ts.is_empty() => ts
                .into_iter()
                .enumerate()
                .map(|(i, t)| (Some(i), t))
                .collect(),
            (Some(_), Some(_)) => {
                return Err(
                    self.invalid("request", "use either [request] or [[requests]], not both")
                )
            }
            _ => return Err(self.invalid("request", "missing: add a [request] table")),
        };
        let mut requests = Vec::new();
        for (index, table) in tables {
            let mut fields = Vec::new();
            for (key, value) in table {
                // `[request]` fields are labelled by their key alone: `takeProfit`.
                let field_label = match index {
                    None => key.clone(),
                    Some(i) => format!("requests[{i}].{key}"),
                };
                let Some(known) = REQUEST_FIELDS.iter().find(|f| **f == key) else {
                    return Err(self.invalid(
                        &field_label,
                        &format!(
                            "unknown request field; expected one of {}",
                            REQUEST_FIELDS.join(", ")
                        ),
                    ));
                };
                let expr = self.expression_text(&field_label, &value)?;
                fields.push((*known, self.checked(&field_label, expr)?));
            }
            let label = match index {
                None => "request".to_string(),
                Some(i) => format!("requests[{i}]"),
            };
            let keys = fields.iter().map(|(k, _)| *k).collect();
            let members = fields
                .into_iter()
                .enumerate()
                .map(|(i, (_, field))| (Arc::from(format!("__r{i}").as_str()), field))
                .collect();
            let group = self.group(&label, members)?;
            requests.push(RequestSpec { index, keys, group });
        }

        Ok(Spec {
            description: parsed.description,
            key,
            when,
            vars,
            accounts,
            requests,
        })
    }

    /// The expression text of a TOML value: strings are expressions, numbers and booleans are literals.
    fn expression_text(&self, label: &str, value: &toml::Value) -> Result<String, TemplateError> {
        match value {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) if f.is_finite() => Ok(format!("{f:?}")),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            _ => Err(self.invalid(label, "must be a string holding an expression")),
        }
    }

    /// Checks that `expr` parses on its own as one expression (so text like `x %}...` cannot escape the
    /// template it is compiled into: its own wrapper, or a [`Group`]).
    fn checked(&self, label: &str, expr: String) -> Result<Field, TemplateError> {
        if expr.trim().is_empty() {
            return Err(self.invalid(label, "empty expression"));
        }
        if let Err(e) = self.env.compile_expression(&expr) {
            return Err(self.compile_error(label, &expr, &e));
        }
        Ok(Field {
            label: label.to_string(),
            source: expr,
        })
    }

    /// Compiles a checked expression on its own, as `{% set __value = (expr) %}`.
    fn expression(&mut self, label: &str, expr: String) -> Result<Compiled, TemplateError> {
        let field = self.checked(label, expr)?;
        let wrapped = format!("{{% set {RESULT_VAR} = ({}) %}}", field.source);
        self.add(field, wrapped)
    }

    /// Compiles already checked expression fields into one [`Group`], each set to its name.
    fn group(
        &mut self,
        label: &str,
        fields: Vec<(Arc<str>, Field)>,
    ) -> Result<Group, TemplateError> {
        let name = format!("{}/{label}#group", self.template);
        Group::compile(self.env, name, fields).map_err(|e| self.invalid(label, &cause(&e)))
    }

    /// Compiles a template string (`{{ ticker }}-{{ timenow }}`).
    fn template_string(&mut self, label: &str, text: String) -> Result<Compiled, TemplateError> {
        let compiled = text.clone();
        let field = Field {
            label: label.to_string(),
            source: text,
        };
        self.add(field, compiled)
    }

    fn add(&mut self, field: Field, compiled_text: String) -> Result<Compiled, TemplateError> {
        let name = format!("{}/{}", self.template, field.label);
        if let Err(e) = self.env.add_template_owned(name.clone(), compiled_text) {
            return Err(self.compile_error(&field.label, &field.source, &e));
        }
        Ok(Compiled { field, name })
    }

    fn compile_error(&self, label: &str, expr: &str, e: &minijinja::Error) -> TemplateError {
        TemplateError::Compile {
            template: self.template.to_string(),
            file: self.file.to_string(),
            field: label.to_string(),
            expr: expr.to_string(),
            cause: cause(e),
        }
    }

    fn invalid(&self, label: &str, cause: &str) -> TemplateError {
        TemplateError::Invalid {
            template: self.template.to_string(),
            file: self.file.to_string(),
            field: label.to_string(),
            cause: cause.to_string(),
        }
    }
}

/// Evaluates compiled fields of one template.
struct Renderer<'a> {
    env: &'a Environment<'static>,
    template: &'a str,
}

impl Renderer<'_> {
    /// Evaluates an expression field; an undefined result is an error.
    fn eval(
        &self,
        compiled: &Compiled,
        ctx: &Value,
        account: Option<&str>,
    ) -> Result<Value, TemplateError> {
        let field = &compiled.field;
        let value = self
            .env
            .get_template(&compiled.name)
            .and_then(|t| t.render_captured(ctx))
            .map(|c| c.state().lookup(RESULT_VAR).unwrap_or_default())
            .map_err(|e| self.error(field, account, cause(&e)))?;
        if value.is_undefined() {
            return Err(self.error(field, account, "undefined value".to_string()));
        }
        Ok(value)
    }

    /// Evaluates every field of a group in one render: (name, value) in order.
    fn eval_group(
        &self,
        group: &Group,
        ctx: &Value,
        account: Option<&str>,
    ) -> Result<Vec<(Arc<str>, Value)>, TemplateError> {
        group.eval(self.env, ctx).map_err(|failure| match failure {
            group::Failure::Undefined(field) => {
                self.error(field, account, "undefined value".to_string())
            }
            group::Failure::Error { field, error } => self.error(field, account, cause(&error)),
        })
    }

    fn render_string(
        &self,
        compiled: &Compiled,
        ctx: &Value,
        account: Option<&str>,
    ) -> Result<String, TemplateError> {
        self.env
            .get_template(&compiled.name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| self.error(&compiled.field, account, cause(&e)))
    }

    fn error(&self, field: &Field, account: Option<&str>, cause: String) -> TemplateError {
        TemplateError::Render {
            template: self.template.to_string(),
            field: field.label.clone(),
            expr: field.source.clone(),
            account: account.map(str::to_string),
            cause,
        }
    }
}

/// A minijinja error without the internal template name and line (always `<template>/<field>:1`): the
/// surrounding [`TemplateError`] already names both. Errors raised by our own helpers carry a full
/// sentence, so their kind prefix is dropped.
fn cause(e: &minijinja::Error) -> String {
    use minijinja::ErrorKind;
    match (e.kind(), e.detail()) {
        (ErrorKind::InvalidOperation, Some(d)) => d.to_string(),
        (kind, Some(d)) => format!("{kind}: {d}"),
        (kind, None) => kind.to_string(),
    }
}

/// The per-alert part of the context, shared by every scope of one render.
#[derive(Debug)]
struct Base {
    alert: Value,
    source: Value,
}

/// The names an expression sees: vars, then `account`, `alert`, `source`, then the alert's fields.
#[derive(Debug, Clone)]
struct Scope {
    base: Arc<Base>,
    vars: Vec<(Arc<str>, Value)>,
    account: Option<Value>,
}

impl Scope {
    fn to_value(&self) -> Value {
        Value::from_object(self.clone())
    }
}

impl Object for Scope {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        if let Some((_, v)) = self.vars.iter().rev().find(|(name, _)| &**name == key) {
            return Some(v.clone());
        }
        match key {
            "account" if self.account.is_some() => self.account.clone(),
            "alert" => Some(self.base.alert.clone()),
            "source" => Some(self.base.source.clone()),
            _ => self
                .base
                .alert
                .get_attr(key)
                .ok()
                .filter(|v| !v.is_undefined()),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::NonEnumerable
    }
}
