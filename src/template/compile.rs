//! Compiling one template file: the TOML format, the checks on every field (names, request keys,
//! expressions that parse on their own), and the compiled form the renderer runs.

use std::sync::Arc;

use minijinja::Environment;
use serde::Deserialize;

use super::error::cause;
use super::group::{self, Group};
use super::TemplateError;

/// The CancelAndBracket fields a request table may set.
const REQUEST_FIELDS: &[&str] = &[
    "when",
    "command",
    "account",
    "instrument",
    "action",
    "quantity",
    "takeProfit",
    "stopLoss",
    "ocoId",
    "cancelDelayMs",
    "orderType",
    "limitPrice",
    "stopPrice",
    "timeInForce",
    "position",
    "entry",
    "alertPrice",
];

/// Names the context provides; a var may not take them.
const RESERVED: &[&str] = &["alert", "source", "account"];

/// The variable each compiled expression template assigns its result to.
pub(super) const RESULT_VAR: &str = "__value";

/// One compiled template.
pub(super) struct Spec {
    pub(super) description: String,
    /// The file it was loaded from (`built-in NAME.toml` for a built-in).
    pub(super) file: String,
    /// An alert body as its sender sends it, which `check` renders the template against.
    pub(super) sample: Option<String>,
    pub(super) key: Option<Compiled>,
    pub(super) when: Option<Compiled>,
    /// Every var, in file order, evaluated in one run.
    pub(super) vars: Group,
    pub(super) accounts: Option<Accounts>,
    pub(super) requests: Vec<RequestSpec>,
}

pub(super) enum Accounts {
    Fixed(Vec<String>),
    Expr(Compiled),
}

pub(super) struct RequestSpec {
    /// Position in `[[requests]]`; `None` for `[request]`.
    pub(super) index: Option<usize>,
    /// The request field each member of `group` sets, in order.
    pub(super) keys: Vec<&'static str>,
    /// Every field of the table, evaluated in one run per account.
    pub(super) group: Group,
}

/// One field of a template file: an expression (or, for `key`, a template string), checked at load.
pub(super) struct Field {
    /// Where it sits in the file: `when`, `vars.entry`, `takeProfit`, `requests[1].stopLoss`.
    pub(super) label: String,
    /// The text as written, for error messages.
    pub(super) source: String,
}

/// A field rendered on its own (`key`, `when`, `accounts`); vars and request fields render in a [`Group`].
pub(super) struct Compiled {
    pub(super) field: Field,
    /// The name of its compiled template in the environment.
    pub(super) name: String,
}

/// The file format, before compiling.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    #[serde(default)]
    description: String,
    /// A sample alert body (JSON, `key=value;` text or plain text, as the sender sends it).
    sample: Option<String>,
    when: Option<String>,
    key: Option<String>,
    accounts: Option<toml::Value>,
    #[serde(default)]
    vars: toml::Table,
    request: Option<toml::Table>,
    requests: Option<Vec<toml::Table>>,
}

fn valid_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Compiles one template file into the shared environment.
pub(super) struct Compiler<'a> {
    pub(super) env: &'a mut Environment<'static>,
    pub(super) template: &'a str,
    pub(super) file: &'a str,
}

impl Compiler<'_> {
    pub(super) fn compile(mut self, text: &str) -> Result<Spec, TemplateError> {
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

        if parsed
            .sample
            .as_deref()
            .is_some_and(|s| s.trim().is_empty())
        {
            return Err(self.invalid(
                "sample",
                "empty: give an alert body as the sender sends it, or leave `sample` out",
            ));
        }
        Ok(Spec {
            description: parsed.description,
            file: self.file.to_string(),
            sample: parsed.sample,
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
