//! ntfy: a JSON publish (`POST {server}/` with `topic`, `title`, `message`, `priority`, `tags`), so titles
//! need no header encoding; urgent events get priority 4 ("high") and the `warning` tag, which ntfy shows as
//! an emoji. A protected topic takes `Authorization: Bearer <token>`.

use serde_json::json;

use super::channel::Outgoing;
use super::event::Notice;
use crate::secret::Secret;

pub struct Ntfy {
    /// `https://ntfy.sh` or your own server; no trailing slash.
    pub server: String,
    pub topic: String,
    pub token: Option<Secret>,
}

impl Ntfy {
    pub fn request(&self, notice: &Notice) -> Outgoing {
        let event = &notice.event;
        let urgent = event.urgent();
        let mut tags = Vec::new();
        if urgent {
            tags.push("warning");
        }
        tags.push(event.name());
        let body = json!({
            "topic": self.topic,
            "title": event.title(),
            "message": event.message(),
            "priority": if urgent { 4 } else { 3 },
            "tags": tags,
        });
        let mut out = Outgoing::json(format!("{}/", self.server), &body);
        if let Some(t) = &self.token {
            out.headers
                .push(("authorization".into(), format!("Bearer {}", t.expose())));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::channel::tests::{json_only, notice};
    use crate::notify::event::Event;

    #[test]
    fn json_publish_to_the_topic() {
        let n = Ntfy {
            server: "https://ntfy.sh".into(),
            topic: "relay-alerts".into(),
            token: None,
        };
        let out = n.request(&notice());
        assert_eq!(out.url, "https://ntfy.sh/");
        let v = json_only(&out);
        assert_eq!(
            v,
            json!({
                "topic": "relay-alerts",
                "title": "Execution failed: Sim101 ES 12-26",
                "message": "Alert 01ALERT: stop through the market. Nothing was placed.",
                "priority": 4,
                "tags": ["warning", "execution.failed"],
            })
        );
    }

    #[test]
    fn a_token_is_a_bearer_header_and_calm_events_default_priority() {
        let n = Ntfy {
            server: "https://ntfy.example.com".into(),
            topic: "t".into(),
            token: Some(Secret::new("tk_abc")),
        };
        let mut notice = notice();
        notice.event = Event::KillSwitch { on: false };
        let out = n.request(&notice);
        assert!(out
            .headers
            .contains(&("authorization".into(), "Bearer tk_abc".into())));
        let v: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(v["priority"], 3);
        assert_eq!(v["tags"], json!(["kill_switch"]));
    }
}
