//! Rendering one alert: the names an expression sees, the evaluation order (key, when, vars,
//! accounts, requests), the fan-out over accounts, and mapping each rendered request table to a
//! validated [`BracketRequest`].

use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ValueKind};
use minijinja::{Environment, Value};
use serde_json::{Map as JsonMap, Value as Json};

use super::compile::{Accounts, Compiled, Field, RESULT_VAR};
use super::error::cause;
use super::group::{self, Group};
use super::{Rendered, TemplateError, Templates};
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::command::Command;

/// The hidden name under which an expression's `instrument` helper finds the time contract months resolve
/// at (epoch milliseconds).
pub(super) const CONTRACTS_AT_VAR: &str = "__contracts_at_ms";

impl Templates {
    /// Renders one alert with contract months as of now: skipped, or the validated requests.
    pub fn render(
        &self,
        name: &str,
        alert: &JsonMap<String, Json>,
        source: &str,
    ) -> Result<Rendered, TemplateError> {
        self.render_at(name, alert, source, SystemClock.now())
    }

    /// Renders one alert, resolving continuous symbols (`ES1!`) to the front month at `at` (the alert's
    /// receipt).
    pub fn render_at(
        &self,
        name: &str,
        alert: &JsonMap<String, Json>,
        source: &str,
        at: Timestamp,
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
            source_accounts: Value::from_serialize(self.accounts_of(source)),
            contracts_at: Value::from(at.as_ms()),
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
                // A request's own `when`: a falsy one leaves it out (one step of a sequence).
                if let Some(when) = args.remove("when") {
                    if matches!(when, Json::Null | Json::Bool(false))
                        || when
                            .as_str()
                            .is_some_and(|s| s.trim().is_empty() || s.trim() == "false")
                    {
                        continue;
                    }
                }
                let request =
                    Command::from_rendered(&args, &self.instruments, at).map_err(|error| {
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
        if requests.is_empty() {
            return Ok(Rendered::Skipped {
                reason: "no request's when condition held".to_string(),
                key,
            });
        }
        Ok(Rendered::Requests { key, requests })
    }
}

/// The accounts an `accounts` expression yielded: a list of names, or one string of comma-separated names.
pub(super) fn account_list(value: &Value) -> Result<Vec<String>, String> {
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

/// The per-alert part of the context, shared by every scope of one render.
#[derive(Debug)]
struct Base {
    alert: Value,
    source: Value,
    /// `[sources.X] accounts`, or the paper accounts when the source names none.
    source_accounts: Value,
    contracts_at: Value,
}

/// The names an expression sees: vars, then `account`, `alert`, `source`, `source_accounts`, then the
/// alert's fields.
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
            "source_accounts" => Some(self.base.source_accounts.clone()),
            CONTRACTS_AT_VAR => Some(self.base.contracts_at.clone()),
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
