//! Several expressions evaluated in one minijinja render.
//!
//! A template's vars (and each request table) are compiled into one template, one `{% set %}` per
//! expression, each starting on its own line: one render evaluates them all. A render costs a minijinja
//! `State`, so twelve fields in one template cost one instead of twelve. An error is pinned to its field by
//! the line it occurred on, and a field whose value is undefined fails on its own line (through
//! [`UNDEFINED_FN`]) before a later field can use it.

use std::sync::Arc;

use minijinja::{Environment, Value};

use super::compile::Field;

/// The function a group calls where a field's value is undefined, to fail on that field's line.
const UNDEFINED_FN: &str = "__undefined";

/// Adds the function groups use to the environment.
pub(super) fn register(env: &mut Environment<'static>) {
    env.add_function(UNDEFINED_FN, || -> Result<Value, minijinja::Error> {
        Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            "undefined value",
        ))
    });
}

/// Can `name` be assigned with `{% set %}`? Reserved words (`true`, `none`, `loop`, `self`...) cannot, and
/// an expression using them would get the built-in meaning anyway.
pub(super) fn settable(name: &str) -> bool {
    let text = format!("{{% set {name} = 1 %}}{{{{ {name} }}}}");
    let env = Environment::new();
    env.template_from_str(&text)
        .and_then(|t| t.render(()))
        .is_ok_and(|out| out == "1")
}

pub(super) struct Group {
    /// The name of the combined template in the environment (absent when there are no fields).
    compiled: Option<String>,
    /// (name it is set to, the field, its first line in the combined template).
    members: Vec<(Arc<str>, Field, usize)>,
}

/// Why a group did not evaluate.
pub(super) enum Failure<'a> {
    /// minijinja failed on this field (the one whose lines hold the error).
    Error {
        field: &'a Field,
        error: minijinja::Error,
    },
    /// This field's value is undefined.
    Undefined(&'a Field),
}

impl Group {
    /// Compiles already checked expression fields into one template named `name`, each set to its name.
    /// Each expression compiled on its own before, so only a clash between them can fail here.
    pub(super) fn compile(
        env: &mut Environment<'static>,
        name: String,
        fields: Vec<(Arc<str>, Field)>,
    ) -> Result<Group, minijinja::Error> {
        if fields.is_empty() {
            return Ok(Group {
                compiled: None,
                members: Vec::new(),
            });
        }
        let mut text = String::new();
        let mut members = Vec::new();
        let mut line = 1;
        for (var, field) in fields {
            let set = format!(
                "{{% set {var} = ({expr}) %}}{{% if {var} is undefined %}}{{{{ {UNDEFINED_FN}() }}}}{{% endif %}}\n",
                expr = field.source
            );
            members.push((var, field, line));
            line += set.matches('\n').count();
            text.push_str(&set);
        }
        env.add_template_owned(name.clone(), text)?;
        Ok(Group {
            compiled: Some(name),
            members,
        })
    }

    /// The fields, in order.
    pub(super) fn fields(&self) -> impl Iterator<Item = &Field> {
        self.members.iter().map(|(_, f, _)| f)
    }

    /// Evaluates every member in one render: (name, value) in order.
    pub(super) fn eval(
        &self,
        env: &Environment<'static>,
        ctx: &Value,
    ) -> Result<Vec<(Arc<str>, Value)>, Failure<'_>> {
        let Some(compiled) = &self.compiled else {
            return Ok(Vec::new());
        };
        let captured = env
            .get_template(compiled)
            .and_then(|t| t.render_captured(ctx))
            .map_err(|error| {
                // The member whose lines hold the error: the last one starting at or before it. A group
                // is compiled only with members, so there is always a first one.
                let line = error.line().unwrap_or(1);
                let at = self
                    .members
                    .iter()
                    .rposition(|(_, _, first)| *first <= line)
                    .unwrap_or(0);
                Failure::Error {
                    field: &self.members[at].1,
                    error,
                }
            })?;
        let state = captured.state();
        self.members
            .iter()
            .map(|(name, field, _)| match state.lookup(name) {
                Some(v) if !v.is_undefined() => Ok((name.clone(), v)),
                _ => Err(Failure::Undefined(field)),
            })
            .collect()
    }
}
