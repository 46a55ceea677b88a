//! Where alerts go: one line per source (auth scheme, template(s), and each account it reaches, paper or
//! live), and warnings about routes that look wrong. `check` prints them, and `serve` at start-up.
//!
//! A source's accounts are its templates' ([`Templates::routing`]): fixed lists, and fields that take them
//! from the alert (shown as written, with their default). An account is live when it is in
//! `[crosstrade] accounts`, paper when in `[paper] accounts`.
//!
//! Warnings (they do not stop anything):
//! - a live account that no source is known to reach (a trade you expect live never happens);
//! - a source known to reach only paper accounts while live accounts exist (a strategy you think is live
//!   trades on paper);
//! - a source that reaches an account that is neither paper nor live (its alerts fail).

use crate::config::{AuthScheme, Config};
use crate::crosstrade::Transport;
use crate::template::{Routing, Templates};

/// The per-source lines and the warnings, in source order.
#[derive(Debug, Default)]
pub struct Routes {
    pub lines: Vec<String>,
    pub warnings: Vec<String>,
}

/// Routes of every source of `cfg` through `templates` (which must hold every template a source names).
pub fn routes(cfg: &Config, templates: &Templates) -> Routes {
    let live: Vec<&str> = cfg
        .crosstrade
        .iter()
        .flat_map(|c| c.accounts.iter().map(String::as_str))
        .collect();
    let live_kind = match cfg.crosstrade.as_ref().map(|c| c.transport) {
        Some(Transport::Websocket) => "live (crosstrade-websocket)",
        _ => "live (crosstrade-http)",
    };
    let kind = |account: &str| -> Option<&str> {
        if live.contains(&account) {
            Some(live_kind)
        } else if cfg.paper.accounts.iter().any(|a| a == account) {
            Some("paper")
        } else {
            None
        }
    };
    let described = |accounts: &[String]| -> String {
        accounts
            .iter()
            .map(|a| match kind(a) {
                Some(k) => format!("{a} {k}"),
                None => format!("{a} (neither paper nor live)"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };

    let mut out = Routes::default();
    // Every account some source is known to reach; sources that take accounts from the alert.
    let mut reached: Vec<String> = Vec::new();
    let mut open: Vec<&str> = Vec::new();
    for (name, s) in &cfg.sources {
        let mut names = vec![s.template.as_str()];
        for t in &s.allowed_templates {
            if !names.contains(&t.as_str()) {
                names.push(t);
            }
        }
        let mut parts = Vec::new();
        let mut known: Vec<String> = Vec::new();
        let mut by_alert = false;
        for t in &names {
            let routing = templates.routing(t, name).unwrap_or_default();
            parts.push(format!("{t} → {}", describe(&routing, &described)));
            by_alert |= !routing.by_alert.is_empty();
            for a in routing.known() {
                if !known.iter().any(|k| k == a) {
                    known.push(a.to_string());
                }
            }
        }
        let templates_part = match (&s.template_field, names.len()) {
            (Some(field), n) if n > 1 => {
                format!("templates (alert field '{field}') {}", parts.join("; "))
            }
            _ => format!("template {}", parts.join("; ")),
        };
        out.lines.push(format!(
            "source {name}: auth {}; {templates_part}",
            auth_name(s.auth)
        ));

        for a in known.iter().filter(|a| kind(a).is_none()) {
            out.warnings.push(format!(
                "source '{name}' reaches account '{a}', which is in neither [paper] accounts nor [crosstrade] accounts: its alerts for it will fail"
            ));
        }
        let all_paper = !known.is_empty() && known.iter().all(|a| kind(a) == Some("paper"));
        if all_paper && !live.is_empty() {
            out.warnings.push(format!(
                "source '{name}' reaches only paper accounts ({}) while live accounts exist ({}){}",
                known.join(", "),
                live.join(", "),
                if by_alert {
                    ", unless an alert names another account"
                } else {
                    ""
                }
            ));
        }
        if by_alert {
            open.push(name);
        }
        reached.extend(known);
    }
    for a in live.iter().filter(|a| !reached.iter().any(|r| r == *a)) {
        let hint = match open.as_slice() {
            [] => String::new(),
            names => format!(
                " (only an alert that names it can: sources {} take accounts from the alert)",
                names.join(", ")
            ),
        };
        out.warnings.push(format!(
            "live account '{a}' ([crosstrade] accounts) is reached by no source{hint}"
        ));
    }
    out
}

/// `Sim101 paper`, or `the alert's accounts (accounts = EXPR), by default Sim101 paper`.
fn describe(routing: &Routing, described: &dyn Fn(&[String]) -> String) -> String {
    let mut parts = Vec::new();
    if !routing.fixed.is_empty() {
        parts.push(described(&routing.fixed));
    }
    for e in &routing.by_alert {
        let mut part = format!("from the alert ({} = {})", e.field, e.expr);
        if let Some(default) = &e.default {
            part.push_str(&format!(", by default {}", described(default)));
        }
        parts.push(part);
    }
    if parts.is_empty() {
        "no account".to_string()
    } else {
        parts.join(" + ")
    }
}

fn auth_name(auth: AuthScheme) -> &'static str {
    match auth {
        AuthScheme::Token => "token",
        AuthScheme::StandardWebhooks => "standard-webhooks",
        AuthScheme::HmacSha256 => "hmac-sha256",
    }
}
