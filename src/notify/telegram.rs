//! Telegram: the Bot API's `sendMessage` (`POST {api_base}/bot{token}/sendMessage`) to one chat, as plain
//! text (no parse mode, so nothing in an alert's text needs escaping).

use serde_json::json;

use super::channel::Outgoing;
use super::event::Notice;
use crate::secret::Secret;

pub struct Telegram {
    /// `https://api.telegram.org`, or a fake server in tests; no trailing slash.
    pub api_base: String,
    pub bot_token: Secret,
    pub chat_id: String,
}

impl Telegram {
    pub fn request(&self, notice: &Notice) -> Outgoing {
        let body = json!({
            "chat_id": self.chat_id,
            "text": notice.text(),
            "disable_web_page_preview": true,
        });
        let url = format!(
            "{}/bot{}/sendMessage",
            self.api_base,
            self.bot_token.expose()
        );
        Outgoing::json(url, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::channel::tests::{json_only, notice};

    #[test]
    fn send_message_to_the_chat() {
        let t = Telegram {
            api_base: "https://api.telegram.org".into(),
            bot_token: Secret::new("123456:ABC-def"),
            chat_id: "-1001234".into(),
        };
        let out = t.request(&notice());
        assert_eq!(
            out.url,
            "https://api.telegram.org/bot123456:ABC-def/sendMessage"
        );
        let v = json_only(&out);
        assert_eq!(
            v,
            json!({
                "chat_id": "-1001234",
                "text": "Execution failed: Sim101 ES 12-26\nAlert 01ALERT: stop through the market. Nothing was placed.",
                "disable_web_page_preview": true,
            })
        );
    }
}
