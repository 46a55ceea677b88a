//! [`TemplateError`]: why templates failed to load or an alert failed to render.

use crate::domain::RequestError;

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

/// A minijinja error without the internal template name and line (always `<template>/<field>:1`): the
/// surrounding [`TemplateError`] already names both. Errors raised by our own helpers carry a full
/// sentence, so their kind prefix is dropped.
pub(super) fn cause(e: &minijinja::Error) -> String {
    use minijinja::ErrorKind;
    match (e.kind(), e.detail()) {
        (ErrorKind::InvalidOperation, Some(d)) => d.to_string(),
        (kind, Some(d)) => format!("{kind}: {d}"),
        (kind, None) => kind.to_string(),
    }
}
