//! Discord: a channel webhook (`POST https://discord.com/api/webhooks/{id}/{token}`) with the text as
//! `content`. Mentions are switched off, so an `@everyone` in an alert's text pings nobody.

use serde_json::json;

use super::channel::Outgoing;
use super::event::Notice;
use crate::secret::Secret;

/// Discord refuses a `content` longer than this many characters.
const MAX_CONTENT_CHARS: usize = 2000;

pub struct Discord {
    /// The whole webhook URL: it carries the webhook's token.
    pub webhook_url: Secret,
}

impl Discord {
    pub fn request(&self, notice: &Notice) -> Outgoing {
        let event = &notice.event;
        let text = format!("**{}**\n{}", event.title(), event.message());
        let content: String = if text.chars().count() > MAX_CONTENT_CHARS {
            text.chars()
                .take(MAX_CONTENT_CHARS - 1)
                .chain(['…'])
                .collect()
        } else {
            text
        };
        let body = json!({
            "content": content,
            "username": "alert-relay",
            "allowed_mentions": {"parse": []},
        });
        Outgoing::json(self.webhook_url.expose().to_string(), &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::channel::tests::{json_only, notice};
    use crate::notify::event::Event;

    #[test]
    fn content_without_mentions() {
        let d = Discord {
            webhook_url: Secret::new("https://discord.com/api/webhooks/42/tok-en"),
        };
        let out = d.request(&notice());
        assert_eq!(out.url, "https://discord.com/api/webhooks/42/tok-en");
        let v = json_only(&out);
        assert_eq!(
            v,
            json!({
                "content": "**Execution failed: Sim101 ES 12-26**\nAlert 01ALERT: stop through the market. Nothing was placed.",
                "username": "alert-relay",
                "allowed_mentions": {"parse": []},
            })
        );
    }

    #[test]
    fn long_text_is_cut_to_discords_limit() {
        let d = Discord {
            webhook_url: Secret::new("https://discord.com/api/webhooks/42/t"),
        };
        let mut n = notice();
        n.event = Event::ExecutionFailed {
            alert_id: "01A".into(),
            account: "Sim101".into(),
            instrument: "ES 12-26".into(),
            reason: "é".repeat(3000),
        };
        let v: serde_json::Value = serde_json::from_slice(&d.request(&n).body).unwrap();
        let content = v["content"].as_str().unwrap();
        assert_eq!(content.chars().count(), MAX_CONTENT_CHARS);
        assert!(content.ends_with('…'));
    }
}
