//! Signature header parsing and verification (Standard Webhooks, GitHub HMAC, shared token) on arbitrary
//! header values and bodies: never a panic, and never an acceptance of a forged signature.
#![no_main]
use alert_relay::verify::{
    sign_standard_webhooks, token_matches, verify_hmac_sha256, verify_standard_webhooks,
    WebhookSecret,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, '\n');
    let (id, ts, sig, body) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let now = ts.trim().parse::<i64>().unwrap_or(0);
    if verify_standard_webhooks(&secret, id, ts, sig, body.as_bytes(), now).is_ok() {
        // Only a real signature of this exact content may verify.
        let real = sign_standard_webhooks(&secret, id, ts, body.as_bytes());
        assert!(sig.split(' ').any(|s| s == real), "forged signature accepted");
    }
    let _ = verify_hmac_sha256(b"It's a Secret to Everybody", sig, body.as_bytes());
    let _ = WebhookSecret::parse(sig);
    assert!(!token_matches(b"", data));
});
