//! Signatures of test bodies, made with the relay's own signing functions: Standard Webhooks headers and
//! GitHub's `X-Hub-Signature-256`, and the clock they are signed at.

use super::fixtures::GH_SECRET;

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`) for `body`.
pub fn sw_headers(secret: &str, id: &str, ts: i64, body: &str) -> Vec<(String, String)> {
    let key = alert_relay::verify::WebhookSecret::parse(secret).expect("valid whsec secret");
    let sig =
        alert_relay::verify::sign_standard_webhooks(&key, id, &ts.to_string(), body.as_bytes());
    vec![
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), ts.to_string()),
        ("webhook-signature".into(), sig),
    ]
}

/// `X-Hub-Signature-256` value of `body` under [`GH_SECRET`].
pub fn gh_signature(body: &str) -> String {
    alert_relay::verify::sign_hmac_sha256(GH_SECRET.as_bytes(), body.as_bytes())
}

/// Borrows owned header pairs for `post_hook` / `post_raw`.
pub fn hdrs(h: &[(String, String)]) -> Vec<(&str, &str)> {
    h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}
