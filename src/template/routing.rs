//! Where a template sends its requests, as far as can be told without an alert: [`Templates::routing`].
//!
//! A template names its accounts in `accounts` (a list, or an expression) or in a request table's
//! `account`. A list, or an expression that uses nothing of the alert (`['Sim101', 'Sim102']`), is fixed. An
//! expression of the alert is shown as written, with the accounts it yields for an alert that names none
//! when it has a default (`alert.accounts | default(['Sim101'])` → `Sim101`). `check` and `serve` print this
//! per source, and warn about live accounts no source reaches.

use std::collections::HashSet;

use minijinja::Value;

use super::compile::{Accounts, Field};
use super::render::account_list;
use super::Templates;

/// A template's accounts, as far as they are known without an alert.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routing {
    /// Accounts every alert that passes `when` reaches, in file order.
    pub fixed: Vec<String>,
    /// Fields whose accounts depend on the alert.
    pub by_alert: Vec<AccountExpr>,
}

/// A field that picks accounts from the alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountExpr {
    /// `accounts`, `account` or `requests[1].account`.
    pub field: String,
    /// The expression as written.
    pub expr: String,
    /// The accounts for an alert that names none, when the expression has a default.
    pub default: Option<Vec<String>>,
}

impl Routing {
    /// Every account known to be reached: the fixed ones and the defaults.
    pub fn known(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let defaults = self.by_alert.iter().filter_map(|e| e.default.as_ref());
        for a in self.fixed.iter().chain(defaults.flatten()) {
            if !out.contains(&a.as_str()) {
                out.push(a);
            }
        }
        out
    }
}

/// What an account expression turned out to be.
enum Kind {
    Fixed(Vec<String>),
    ByAlert(AccountExpr),
}

impl Templates {
    /// The accounts template `name` reaches, as far as they are known without an alert; `None` for an
    /// unknown template.
    pub fn routing(&self, name: &str, source: &str) -> Option<Routing> {
        let spec = self.specs.get(name)?;
        let vars: HashSet<&str> = spec.vars.fields().map(var_name).collect();
        let mut routing = Routing::default();
        let mut add = |kind: Kind| match kind {
            Kind::Fixed(list) => {
                for a in list {
                    if !routing.fixed.contains(&a) {
                        routing.fixed.push(a);
                    }
                }
            }
            Kind::ByAlert(e) => {
                if !routing.by_alert.contains(&e) {
                    routing.by_alert.push(e)
                }
            }
        };
        let fan_out = match &spec.accounts {
            None => None,
            Some(Accounts::Fixed(list)) => Some(Kind::Fixed(list.clone())),
            Some(Accounts::Expr(c)) => Some(self.classify(&c.field, &vars, true, source)),
        };
        let mut fan_out_used = false;
        for req in &spec.requests {
            let own = req
                .keys
                .iter()
                .zip(req.group.fields())
                .find(|(k, _)| **k == "account")
                .map(|(_, f)| f);
            match own {
                // `account = "account"` under a fan-out is the fan-out account itself.
                Some(f) if !(spec.accounts.is_some() && f.source.trim() == "account") => {
                    add(self.classify(f, &vars, false, source))
                }
                _ => fan_out_used = true,
            }
        }
        if fan_out_used {
            if let Some(kind) = fan_out {
                add(kind);
            }
        }
        Some(routing)
    }

    /// Fixed when the expression uses no name but functions and `source_accounts` (it is evaluated); otherwise by the alert,
    /// with the accounts it yields for an empty alert as its default.
    fn classify(&self, field: &Field, vars: &HashSet<&str>, list: bool, source: &str) -> Kind {
        let by_alert = |default| {
            Kind::ByAlert(AccountExpr {
                field: field.label.clone(),
                expr: field.source.clone(),
                default,
            })
        };
        let Ok(expr) = self.env.compile_expression(&field.source) else {
            return by_alert(None);
        };
        let globals: HashSet<&str> = self.env.globals().map(|(n, _)| n).collect();
        let names = expr.undeclared_variables(false);
        let names: Vec<&String> = names
            .iter()
            .filter(|n| !globals.contains(n.as_str()) && n.as_str() != "source_accounts")
            .collect();
        // A var is always defined once vars ran, so a default over it never applies.
        if names.iter().any(|n| vars.contains(n.as_str())) {
            return by_alert(None);
        }
        let empty_alert = Value::from_serialize(serde_json::Map::new());
        // `source_accounts` is known without an alert: the source's (or the default) accounts.
        let source_accounts = Value::from_serialize(self.accounts_of(source));
        let ctx = if names.is_empty() {
            minijinja::context! { source_accounts => source_accounts }
        } else {
            minijinja::context! { alert => empty_alert, source_accounts => source_accounts }
        };
        let accounts = expr.eval(ctx).ok().and_then(|v| {
            if list {
                account_list(&v).ok()
            } else {
                v.as_str()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .map(|s| vec![s])
            }
        });
        match accounts {
            Some(list) if names.is_empty() => Kind::Fixed(list),
            default => by_alert(default),
        }
    }
}

/// A var's name from its field label (`vars.NAME`).
fn var_name(field: &Field) -> &str {
    field.label.strip_prefix("vars.").unwrap_or(&field.label)
}
