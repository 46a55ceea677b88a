//! The generic webhook: the event as JSON, POSTed to any endpoint; with a `secret`, signed as a Standard
//! Webhooks sender would (`webhook-id`, `webhook-timestamp`, `webhook-signature`) — the mirror of what
//! [`crate::verify`] checks on the way in.

use serde_json::json;

use super::channel::Outgoing;
use super::event::Notice;
use crate::secret::Secret;
use crate::verify::{self, WebhookSecret};

pub struct Webhook {
    pub url: Secret,
    pub signing: Option<WebhookSecret>,
}

impl Webhook {
    /// The request for `notice`, signed at `now_unix` (each attempt is signed anew, under the same id, so a
    /// retry is never older than the receiver's tolerance).
    pub fn request(&self, notice: &Notice, now_unix: i64) -> Outgoing {
        let body = json!({
            "id": notice.id,
            "event": notice.event.name(),
            "at": notice.at,
            "title": notice.event.title(),
            "message": notice.event.message(),
            "urgent": notice.event.urgent(),
            "data": notice.event,
        });
        let mut out = Outgoing::json(self.url.expose().to_string(), &body);
        if let Some(key) = &self.signing {
            // Signed over the exact bytes sent.
            let ts = now_unix.to_string();
            let signature = verify::sign_standard_webhooks(key, &notice.id, &ts, &out.body);
            out.headers
                .push((verify::HEADER_ID.into(), notice.id.clone()));
            out.headers.push((verify::HEADER_TIMESTAMP.into(), ts));
            out.headers
                .push((verify::HEADER_SIGNATURE.into(), signature));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::channel::tests::{json_only, notice};

    const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn the_body_is_the_event_as_json() {
        let hook = Webhook {
            url: Secret::new("https://example.com/relay-events"),
            signing: None,
        };
        let out = hook.request(&notice(), 1_800_000_000);
        assert_eq!(out.url, "https://example.com/relay-events");
        let v = json_only(&out);
        assert_eq!(v["event"], "execution.failed");
        assert_eq!(v["id"], "msg_01TEST");
        assert_eq!(v["at"], "2026-01-01T00:00:00.000Z");
        assert_eq!(v["title"], "Execution failed: Sim101 ES 12-26");
        assert_eq!(v["urgent"], true);
        assert_eq!(v["data"]["alertId"], "01ALERT");
        assert_eq!(v["data"]["reason"], "stop through the market");
    }

    /// What is signed verifies with the relay's own Standard Webhooks check, under the headers it sends.
    #[test]
    fn a_signed_body_verifies_as_standard_webhooks() {
        let key = WebhookSecret::parse(KEY).unwrap();
        let hook = Webhook {
            url: Secret::new("https://example.com/in"),
            signing: Some(key.clone()),
        };
        let now = 1_800_000_000;
        let out = hook.request(&notice(), now);
        let h = |name: &str| {
            out.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{name} missing: {:?}", out.headers))
        };
        assert_eq!(h("webhook-id"), "msg_01TEST");
        assert_eq!(h("webhook-timestamp"), now.to_string());
        assert!(h("webhook-signature").starts_with("v1,"));
        verify::verify_standard_webhooks(
            &key,
            &h("webhook-id"),
            &h("webhook-timestamp"),
            &h("webhook-signature"),
            &out.body,
            now,
        )
        .unwrap();
        let mut tampered = out.body.clone();
        tampered[1] ^= 1;
        assert!(verify::verify_standard_webhooks(
            &key,
            &h("webhook-id"),
            &h("webhook-timestamp"),
            &h("webhook-signature"),
            &tampered,
            now,
        )
        .is_err());
    }
}
