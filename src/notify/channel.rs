//! A configured channel, its secrets resolved: which events it wants, and the HTTP request it makes for
//! one. Every secret it holds is known here, so any text about it (an error, an answer's body) is redacted
//! before it reaches a log.

use std::path::Path;
use std::time::Duration;

use super::config::{
    is_reference, ChannelConfig, ChannelKind, DEFAULT_NTFY_SERVER, DEFAULT_TELEGRAM_API,
};
use super::discord::Discord;
use super::event::Notice;
use super::ntfy::Ntfy;
use super::telegram::Telegram;
use super::webhook::Webhook;
use crate::secret::{self, Secret, SecretError, SecretKind};
use crate::verify::WebhookSecret;

/// One HTTP POST, built for one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// May carry a secret (a bot token, a Discord webhook's token): never logged.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Outgoing {
    /// A POST of `body` as JSON to `url`: what every channel kind sends; some add headers after.
    pub fn json(url: String, body: &serde_json::Value) -> Outgoing {
        Outgoing {
            url,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(body).unwrap_or_default(),
        }
    }
}

/// Where a channel sends, by kind.
pub enum Target {
    Webhook(Webhook),
    Telegram(Telegram),
    Discord(Discord),
    Ntfy(Ntfy),
}

/// Why a channel could not be set up. Never carries a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("notify.channels[{index}].secret: {why}")]
    SigningSecret { index: usize, why: String },
    #[error("notify.channels[{index}].{key}: the value it refers to is not an http(s) URL")]
    Url { index: usize, key: &'static str },
}

pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    /// The event names it wants; `None`: all.
    events: Option<Vec<String>>,
    pub timeout: Duration,
    target: Target,
    /// Every secret text of this channel, for [`Channel::redact`].
    secrets: Vec<String>,
}

impl Channel {
    /// Builds channel `index` of `[notify]` (validated), resolving its secret references.
    pub fn from_config(index: usize, cfg: &ChannelConfig) -> Result<Channel, ChannelError> {
        let mut secrets = Vec::new();
        let mut resolve = |key: &'static str, reference: &str| -> Result<Secret, SecretError> {
            // `auto` is refused by validation: a generated value could not be a token someone else issued.
            let (s, _) = secret::resolve(
                reference,
                &format!("notify.channels[{index}].{key}"),
                Path::new(""),
                SecretKind::Token,
            )?;
            secrets.push(s.expose().to_string());
            Ok(s)
        };
        let url_secret = |key: &'static str, s: &Secret| -> Result<(), ChannelError> {
            if super::config::is_http_url(s.expose()) {
                Ok(())
            } else {
                Err(ChannelError::Url { index, key })
            }
        };
        let given = |v: &Option<String>| v.clone().unwrap_or_default();
        let base = |v: &Option<String>, default: &str| {
            v.as_deref()
                .unwrap_or(default)
                .trim()
                .trim_end_matches('/')
                .to_string()
        };
        let target = match cfg.kind {
            ChannelKind::Webhook => {
                let url = given(&cfg.url);
                let url = if is_reference(&url) {
                    let s = resolve("url", &url)?;
                    url_secret("url", &s)?;
                    s
                } else {
                    Secret::new(url.trim())
                };
                let signing = match &cfg.secret {
                    Some(reference) => {
                        let s = resolve("secret", reference)?;
                        Some(WebhookSecret::parse(s.expose()).map_err(|e| {
                            ChannelError::SigningSecret {
                                index,
                                why: e.to_string(),
                            }
                        })?)
                    }
                    None => None,
                };
                Target::Webhook(Webhook { url, signing })
            }
            ChannelKind::Telegram => Target::Telegram(Telegram {
                api_base: base(&cfg.api_base, DEFAULT_TELEGRAM_API),
                bot_token: resolve("bot_token", &given(&cfg.bot_token))?,
                chat_id: given(&cfg.chat_id).trim().to_string(),
            }),
            ChannelKind::Discord => {
                let url = resolve("webhook_url", &given(&cfg.webhook_url))?;
                url_secret("webhook_url", &url)?;
                Target::Discord(Discord { webhook_url: url })
            }
            ChannelKind::Ntfy => Target::Ntfy(Ntfy {
                server: base(&cfg.server, DEFAULT_NTFY_SERVER),
                topic: given(&cfg.topic).trim().to_string(),
                token: cfg
                    .token
                    .as_ref()
                    .map(|t| resolve("token", t))
                    .transpose()?,
            }),
        };
        Ok(Channel::new(
            cfg.name.clone(),
            cfg.kind,
            &cfg.events,
            Duration::from_millis(cfg.timeout_ms),
            target,
            secrets,
        ))
    }

    /// A channel from its parts (`events`: names, or `*` for all). URL secrets are also redacted by their
    /// path and query alone (a server may echo only those).
    pub fn new(
        name: String,
        kind: ChannelKind,
        events: &[String],
        timeout: Duration,
        target: Target,
        secrets: Vec<String>,
    ) -> Channel {
        let mut all = Vec::new();
        for s in secrets {
            if let Ok(u) = reqwest::Url::parse(&s) {
                all.extend(
                    [u.path().to_string(), u.query().unwrap_or("").to_string()]
                        .into_iter()
                        .filter(|p| p.len() >= 8),
                );
            }
            all.push(s);
        }
        // Longest first, so a secret that contains another is replaced whole.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        all.retain(|s| !s.is_empty());
        Channel {
            name,
            kind,
            events: (!events.iter().any(|e| e == "*")).then(|| events.to_vec()),
            timeout,
            target,
            secrets: all,
        }
    }

    /// Does this channel want events named `name`?
    pub fn wants(&self, name: &str) -> bool {
        self.events
            .as_ref()
            .map_or(true, |list| list.iter().any(|e| e == name))
    }

    /// The request for `notice`, for an attempt made at `now_unix`.
    pub fn request(&self, notice: &Notice, now_unix: i64) -> Outgoing {
        match &self.target {
            Target::Webhook(w) => w.request(notice, now_unix),
            Target::Telegram(t) => t.request(notice),
            Target::Discord(d) => d.request(notice),
            Target::Ntfy(n) => n.request(notice),
        }
    }

    /// `text` with every secret of this channel replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::notify::event::Event;

    /// A failed execution, as every channel's tests send it.
    pub(crate) fn notice() -> Notice {
        Notice {
            id: "msg_01TEST".into(),
            event: Event::ExecutionFailed {
                alert_id: "01ALERT".into(),
                account: "Sim101".into(),
                instrument: "ES 12-26".into(),
                reason: "stop through the market".into(),
            },
            at: crate::clock::Timestamp(ManualClock::DEFAULT_START_MS),
        }
    }

    /// The body of `out` as JSON, after checking that content-type is its only header.
    pub(crate) fn json_only(out: &Outgoing) -> serde_json::Value {
        assert_eq!(
            out.headers,
            [("content-type".into(), "application/json".into())]
        );
        serde_json::from_slice(&out.body).unwrap()
    }

    fn config(text: &str) -> ChannelConfig {
        let cfg: super::super::config::NotifyConfig = toml::from_str(text).unwrap();
        cfg.validate().unwrap();
        cfg.channels.into_iter().next().unwrap()
    }

    #[test]
    fn secrets_resolve_from_files_and_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("discord");
        std::fs::write(
            &file,
            "https://discord.com/api/webhooks/42/SeCrEt-ToKeN-123\n",
        )
        .unwrap();
        let ch = Channel::from_config(
            0,
            &config(&format!(
                "[[channels]]\nkind = \"discord\"\nname = \"desk\"\nwebhook_url = \"file:{}\"\nevents = [\"kill_switch\"]\n",
                file.display()
            )),
        )
        .unwrap();
        assert!(ch.wants("kill_switch") && !ch.wants("execution.failed"));
        let out = ch.request(&notice(), 0);
        assert_eq!(
            out.url,
            "https://discord.com/api/webhooks/42/SeCrEt-ToKeN-123"
        );
        assert_eq!(
            ch.redact("POST https://discord.com/api/webhooks/42/SeCrEt-ToKeN-123 failed"),
            "POST *** failed"
        );
        assert_eq!(
            ch.redact("unknown webhook /api/webhooks/42/SeCrEt-ToKeN-123"),
            "unknown webhook ***"
        );
    }

    #[test]
    fn defaults_and_trailing_slashes() {
        std::env::set_var("NOTIFY_TEST_TG_TOKEN", "777:tg-secret");
        let ch = Channel::from_config(
            0,
            &config("[[channels]]\nkind = \"telegram\"\nname = \"p\"\nbot_token = \"env:NOTIFY_TEST_TG_TOKEN\"\nchat_id = \" 42 \"\n"),
        )
        .unwrap();
        assert!(ch.wants("contracts.roll"), "all events by default");
        let out = ch.request(&notice(), 0);
        assert_eq!(
            out.url,
            "https://api.telegram.org/bot777:tg-secret/sendMessage"
        );
        assert_eq!(ch.redact("bot777:tg-secret: 401"), "bot***: 401");
        let ch = Channel::from_config(
            0,
            &config("[[channels]]\nkind = \"ntfy\"\nname = \"n\"\ntopic = \"t\"\nserver = \"http://127.0.0.1:9/\"\n"),
        )
        .unwrap();
        assert_eq!(ch.request(&notice(), 0).url, "http://127.0.0.1:9/");
        let ch = Channel::from_config(
            0,
            &config("[[channels]]\nkind = \"ntfy\"\nname = \"n\"\ntopic = \"t\"\n"),
        )
        .unwrap();
        assert_eq!(ch.request(&notice(), 0).url, "https://ntfy.sh/");
    }

    #[test]
    fn errors_name_the_key_never_the_value() {
        std::env::set_var("NOTIFY_TEST_NOT_A_URL", "not-a-url-but-secret");
        let e = Channel::from_config(
            3,
            &config("[[channels]]\nkind = \"discord\"\nname = \"d\"\nwebhook_url = \"env:NOTIFY_TEST_NOT_A_URL\"\n"),
        )
        .err()
        .unwrap()
        .to_string();
        assert_eq!(
            e,
            "notify.channels[3].webhook_url: the value it refers to is not an http(s) URL"
        );
        let e = Channel::from_config(
            0,
            &config("[[channels]]\nkind = \"ntfy\"\nname = \"n\"\ntopic = \"t\"\ntoken = \"env:NOTIFY_TEST_UNSET_VAR\"\n"),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.starts_with(
                "notify.channels[0].token: environment variable NOTIFY_TEST_UNSET_VAR is not set"
            ),
            "{e}"
        );
        std::env::set_var("NOTIFY_TEST_BAD_WHSEC", "whsec_short");
        let e = Channel::from_config(
            0,
            &config("[[channels]]\nkind = \"webhook\"\nname = \"w\"\nurl = \"https://x.example\"\nsecret = \"env:NOTIFY_TEST_BAD_WHSEC\"\n"),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.starts_with("notify.channels[0].secret: "), "{e}");
        assert!(!e.contains("whsec_short"), "{e}");
    }
}
