//! The `[notify]` section: a list of channels, each of one kind with its own keys and an event filter.
//!
//! Validation here touches neither the disk nor the environment (secrets are resolved when the relay is
//! built), and no message ever carries a secret: a channel is named by its index, name and kind.

use serde::Deserialize;

use super::event::EVENT_NAMES;

/// `[notify]`. Absent or without channels: nothing is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    pub channels: Vec<ChannelConfig>,
}

/// Where a channel sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// A JSON POST to any HTTPS endpoint, optionally signed (Standard Webhooks headers).
    Webhook,
    /// A Telegram bot's `sendMessage` to one chat.
    Telegram,
    /// A Discord channel webhook.
    Discord,
    /// An ntfy topic (ntfy.sh or your own server).
    Ntfy,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Telegram => "telegram",
            ChannelKind::Discord => "discord",
            ChannelKind::Ntfy => "ntfy",
        }
    }
}

/// One `[[notify.channels]]` table. The keys a kind does not use are refused, so a key given to the wrong
/// kind (a `topic` on a telegram channel) is noticed at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub kind: ChannelKind,
    /// Names the channel in logs and metrics (letters, digits, `-`, `_`); never a secret.
    pub name: String,
    /// Event names (see [`EVENT_NAMES`]) or `"*"` for all.
    #[serde(default = "all_events")]
    pub events: Vec<String>,
    /// One attempt's limit (connecting and the answer), in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// webhook: the endpoint, `https://...` or a secret reference (`env:NAME`, `file:PATH`).
    pub url: Option<String>,
    /// webhook: a Standard Webhooks signing secret (`whsec_...`), by reference; signs every body.
    pub secret: Option<String>,
    /// telegram: the bot token, by reference.
    pub bot_token: Option<String>,
    /// telegram: the chat to write to (a number, or `@channelname`).
    pub chat_id: Option<String>,
    /// telegram: the Bot API's base URL.
    pub api_base: Option<String>,
    /// discord: the channel webhook's URL, by reference (it carries the webhook's token).
    pub webhook_url: Option<String>,
    /// ntfy: the server's base URL (default `https://ntfy.sh`).
    pub server: Option<String>,
    /// ntfy: the topic.
    pub topic: Option<String>,
    /// ntfy: an access token for a protected topic, by reference.
    pub token: Option<String>,
}

fn all_events() -> Vec<String> {
    vec!["*".into()]
}

fn default_timeout_ms() -> u64 {
    5_000
}

pub const DEFAULT_TELEGRAM_API: &str = "https://api.telegram.org";
pub const DEFAULT_NTFY_SERVER: &str = "https://ntfy.sh";

/// The longest accepted `timeout_ms`: an attempt waits no longer than this.
pub const MAX_TIMEOUT_MS: u64 = 60_000;

/// What is wrong with `[notify]`; every message names the channel's key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyConfigError {
    #[error(
        "notify.channels[{index}].name: '{name}' may only contain letters, digits, '-' and '_'"
    )]
    Name { index: usize, name: String },
    #[error("notify.channels[{index}].name: '{name}' is used by another channel")]
    DuplicateName { index: usize, name: String },
    #[error("notify.channels[{index}] ({name}, {kind}): {key} is required for a {kind} channel")]
    Missing {
        index: usize,
        name: String,
        kind: &'static str,
        key: &'static str,
    },
    #[error("notify.channels[{index}] ({name}, {kind}): {key} is not a key of a {kind} channel (its keys: {allowed})")]
    NotForKind {
        index: usize,
        name: String,
        kind: &'static str,
        key: &'static str,
        allowed: String,
    },
    #[error(
        "notify.channels[{index}].events: unknown event '{event}'; valid: \"*\", {}",
        valid_list()
    )]
    UnknownEvent { index: usize, event: String },
    #[error("notify.channels[{index}].events is empty; list event names or [\"*\"] for all")]
    NoEvents { index: usize },
    #[error("notify.channels[{index}].{key}: give it by reference, env:NAME or file:PATH (it is a secret)")]
    InlineSecret { index: usize, key: &'static str },
    #[error("notify.channels[{index}].{key}: not an http(s) URL")]
    Url { index: usize, key: &'static str },
    #[error("notify.channels[{index}].timeout_ms must be between 1 and {MAX_TIMEOUT_MS}")]
    Timeout { index: usize },
}

fn valid_list() -> String {
    EVENT_NAMES
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Is `value` a secret reference (`env:` or `file:`)?
pub fn is_reference(value: &str) -> bool {
    let v = value.trim();
    v.starts_with("env:") || v.starts_with("file:")
}

/// Is `value` an absolute http(s) URL?
pub fn is_http_url(value: &str) -> bool {
    reqwest::Url::parse(value.trim())
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .unwrap_or(false)
}

impl ChannelConfig {
    /// The keys given, by name, beside the keys this kind accepts and requires.
    fn keys(&self) -> [(&'static str, Option<&String>); 9] {
        [
            ("url", self.url.as_ref()),
            ("secret", self.secret.as_ref()),
            ("bot_token", self.bot_token.as_ref()),
            ("chat_id", self.chat_id.as_ref()),
            ("api_base", self.api_base.as_ref()),
            ("webhook_url", self.webhook_url.as_ref()),
            ("server", self.server.as_ref()),
            ("topic", self.topic.as_ref()),
            ("token", self.token.as_ref()),
        ]
    }

    /// (accepted, required) kind-specific keys.
    fn kind_keys(&self) -> (&'static [&'static str], &'static [&'static str]) {
        match self.kind {
            ChannelKind::Webhook => (&["url", "secret"], &["url"]),
            ChannelKind::Telegram => (
                &["bot_token", "chat_id", "api_base"],
                &["bot_token", "chat_id"],
            ),
            ChannelKind::Discord => (&["webhook_url"], &["webhook_url"]),
            ChannelKind::Ntfy => (&["server", "topic", "token"], &["topic"]),
        }
    }

    fn validate(&self, index: usize) -> Result<(), NotifyConfigError> {
        let kind = self.kind.as_str();
        let name = self.name.clone();
        if !crate::config::valid_name(&self.name) {
            return Err(NotifyConfigError::Name { index, name });
        }
        let (accepted, required) = self.kind_keys();
        for (key, value) in self.keys() {
            if value.is_some() && !accepted.contains(&key) {
                return Err(NotifyConfigError::NotForKind {
                    index,
                    name,
                    kind,
                    key,
                    allowed: accepted.join(", "),
                });
            }
            if required.contains(&key) && value.map_or(true, |v| v.trim().is_empty()) {
                return Err(NotifyConfigError::Missing {
                    index,
                    name,
                    kind,
                    key,
                });
            }
        }
        if self.events.is_empty() {
            return Err(NotifyConfigError::NoEvents { index });
        }
        if let Some(bad) = self
            .events
            .iter()
            .find(|e| e.as_str() != "*" && !EVENT_NAMES.contains(&e.as_str()))
        {
            return Err(NotifyConfigError::UnknownEvent {
                index,
                event: bad.clone(),
            });
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return Err(NotifyConfigError::Timeout { index });
        }
        // Secrets only by reference: an inline token would end up in backups and shared config files.
        for key in ["secret", "bot_token", "webhook_url", "token"] {
            let value = self
                .keys()
                .into_iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| v);
            if value.is_some_and(|v| !is_reference(v)) {
                return Err(NotifyConfigError::InlineSecret { index, key });
            }
        }
        // The webhook URL may be written out, or be a reference (when it carries a token of its own).
        for key in ["url", "api_base", "server"] {
            let value = self
                .keys()
                .into_iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| v);
            let fine = |v: &String| is_http_url(v) || (key == "url" && is_reference(v));
            if value.is_some_and(|v| !fine(v)) {
                return Err(NotifyConfigError::Url { index, key });
            }
        }
        Ok(())
    }
}

impl NotifyConfig {
    /// Checks every channel; the first problem, naming its key.
    pub fn validate(&self) -> Result<(), NotifyConfigError> {
        for (index, ch) in self.channels.iter().enumerate() {
            ch.validate(index)?;
            if self.channels[..index].iter().any(|c| c.name == ch.name) {
                return Err(NotifyConfigError::DuplicateName {
                    index,
                    name: ch.name.clone(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<NotifyConfig, String> {
        let cfg: NotifyConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        cfg.validate().map_err(|e| e.to_string())?;
        Ok(cfg)
    }

    #[test]
    fn one_channel_of_each_kind() {
        let cfg = parse(
            r#"
[[channels]]
kind = "webhook"
name = "ops"
url = "https://example.com/hook"
secret = "env:NOTIFY_WEBHOOK_SECRET"
events = ["*"]
[[channels]]
kind = "telegram"
name = "phone"
bot_token = "env:TELEGRAM_BOT_TOKEN"
chat_id = "123456"
events = ["execution.failed", "kill_switch"]
[[channels]]
kind = "discord"
name = "desk"
webhook_url = "file:/run/secrets/discord"
[[channels]]
kind = "ntfy"
name = "watch"
topic = "relay-alerts"
"#,
        )
        .unwrap();
        let kinds: Vec<ChannelKind> = cfg.channels.iter().map(|c| c.kind).collect();
        use ChannelKind::*;
        assert_eq!(kinds, [Webhook, Telegram, Discord, Ntfy]);
        assert_eq!(cfg.channels[2].events, ["*"], "all events by default");
        assert_eq!(cfg.channels[3].timeout_ms, 5_000);
    }

    #[test]
    fn an_unknown_event_lists_the_valid_ones() {
        let e = parse("[[channels]]\nkind = \"ntfy\"\nname = \"n\"\ntopic = \"t\"\nevents = [\"execution.fail\"]\n")
            .unwrap_err();
        assert!(
            e.starts_with("notify.channels[0].events: unknown event 'execution.fail'; valid: \"*\", \"execution.failed\", \"execution.unknown\""),
            "{e}"
        );
        for name in EVENT_NAMES {
            assert!(e.contains(&format!("\"{name}\"")), "{name} missing: {e}");
        }
    }

    /// A table of configs and the start of the message each must give.
    #[test]
    fn each_problem_names_its_key() {
        let cases = [
            ("kind = \"telegram\"\nname = \"p\"\nchat_id = \"1\"",
             "notify.channels[0] (p, telegram): bot_token is required for a telegram channel"),
            ("kind = \"telegram\"\nname = \"p\"\nbot_token = \"123:abc\"\nchat_id = \"1\"",
             "notify.channels[0].bot_token: give it by reference"),
            ("kind = \"discord\"\nname = \"d\"\nwebhook_url = \"https://discord.com/api/webhooks/1/tok\"",
             "notify.channels[0].webhook_url: give it by reference"),
            ("kind = \"ntfy\"\nname = \"n\"\ntopic = \"t\"\nbot_token = \"env:X\"",
             "notify.channels[0] (n, ntfy): bot_token is not a key of a ntfy channel (its keys: server, topic, token)"),
            ("kind = \"ntfy\"\nname = \"n\"\ntopic = \"t\"\nevents = []",
             "notify.channels[0].events is empty"),
            ("kind = \"ntfy\"\nname = \"n\"\ntopic = \"t\"\nserver = \"ntfy.sh\"",
             "notify.channels[0].server: not an http(s) URL"),
            ("kind = \"webhook\"\nname = \"w\"\nurl = \"ftp://x\"",
             "notify.channels[0].url: not an http(s) URL"),
            ("kind = \"webhook\"\nname = \"a b\"\nurl = \"https://x\"",
             "notify.channels[0].name: 'a b'"),
            ("kind = \"webhook\"\nname = \"w\"\nurl = \"https://x\"\ntimeout_ms = 0",
             "notify.channels[0].timeout_ms must be between 1 and 60000"),
        ];
        for (body, want) in cases {
            let e = parse(&format!("[[channels]]\n{body}\n")).unwrap_err();
            assert!(e.starts_with(want), "{body}\n→ {e}");
        }
        let e = parse("[[channels]]\nkind = \"pager\"\nname = \"p\"\n").unwrap_err();
        assert!(e.contains("unknown variant `pager`"), "{e}");
        let twice = "[[channels]]\nkind = \"ntfy\"\nname = \"n\"\ntopic = \"t\"\n";
        let e = parse(&format!("{twice}{twice}")).unwrap_err();
        assert!(
            e.starts_with("notify.channels[1].name: 'n' is used by another channel"),
            "{e}"
        );
    }

    /// `[notify]` as a whole config file holds it.
    #[derive(Deserialize)]
    struct Outer {
        notify: NotifyConfig,
    }

    fn kinds_of(text: &str, origin: &str) -> Vec<ChannelKind> {
        let outer: Outer = toml::from_str(text).unwrap_or_else(|e| panic!("{origin}: {e}"));
        outer
            .notify
            .validate()
            .unwrap_or_else(|e| panic!("{origin}: {e}"));
        outer.notify.channels.iter().map(|c| c.kind).collect()
    }

    /// The README's example and config.toml's commented one are valid, one channel of each kind.
    #[test]
    fn the_documented_examples_are_valid() {
        use ChannelKind::*;
        let readme = include_str!("../../README.md");
        let section = &readme[readme.find("## Notifications").expect("README section")..];
        let block = section
            .split("```toml\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .expect("a toml block");
        assert_eq!(
            kinds_of(block, "README"),
            [Webhook, Telegram, Discord, Ntfy]
        );

        let shipped = crate::config::EMBEDDED_CONFIG;
        let start = shipped
            .find("# [[notify.channels]]")
            .expect("commented example");
        let end = start + shipped[start..].find("\n\n").expect("end of the example");
        let uncommented: String = shipped[start..end]
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or("").to_string() + "\n")
            .collect();
        assert_eq!(
            kinds_of(&uncommented, "config.toml"),
            [Webhook, Telegram, Discord, Ntfy]
        );
    }

    #[test]
    fn a_webhook_url_may_be_a_reference() {
        parse("[[channels]]\nkind = \"webhook\"\nname = \"w\"\nurl = \"env:HOOK_URL\"\n").unwrap();
        assert!(parse("").unwrap().channels.is_empty());
    }
}
