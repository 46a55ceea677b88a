//! Webhook authentication: decides whether a request really comes from the configured sender.
//!
//! Three schemes, all computed over the raw body bytes before any parsing:
//! - [Standard Webhooks](https://www.standardwebhooks.com): HMAC-SHA256 over
//!   `{webhook-id}.{webhook-timestamp}.{body}`, `v1,<base64>` entries, ±[`TOLERANCE_SECS`] clock skew.
//! - GitHub style: `sha256=<hex>` HMAC-SHA256 over the body.
//! - A shared token, for senders such as TradingView that cannot sign.
//!
//! Every comparison of secret material is full-length and constant-time (`Mac::verify_slice`,
//! `subtle`); no error message echoes a secret or a signature.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Largest accepted difference, in seconds, between `webhook-timestamp` and our clock (either way).
pub const TOLERANCE_SECS: i64 = 300;

/// Standard Webhooks header carrying the message id.
pub const HEADER_ID: &str = "webhook-id";
/// Standard Webhooks header carrying the unix timestamp (seconds).
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Standard Webhooks header carrying space-separated `v1,<base64>` signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// Prefix of Standard Webhooks secrets; the rest is the base64-encoded key.
const SECRET_PREFIX: &str = "whsec_";
/// Standard Webhooks asks for keys of at least 24 bytes (192 bits).
const MIN_SECRET_BYTES: usize = 24;
/// Output length of HMAC-SHA256.
const SIGNATURE_BYTES: usize = 32;

/// Secrets are typed by people and copied from dashboards: accept them with or without `=` padding.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a request was not authenticated. Messages tell the sender (or operator) what to fix and
/// never contain secret or signature material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing or empty header `{0}`: the sender must include it on every signed request")]
    MissingHeader(&'static str),
    #[error(
        "`webhook-timestamp` is not a unix time in whole seconds (send digits only, e.g. 1614265330)"
    )]
    InvalidTimestamp,
    #[error(
        "`webhook-timestamp` is more than {TOLERANCE_SECS} seconds in the past: \
         check the sender's clock and send a fresh request instead of replaying an old one"
    )]
    TimestampTooOld,
    #[error(
        "`webhook-timestamp` is more than {TOLERANCE_SECS} seconds in the future: \
         check the sender's clock"
    )]
    TimestampTooNew,
    #[error("malformed signature: {0}")]
    MalformedSignature(&'static str),
    #[error(
        "signature does not match: sign the exact raw body with the secret configured for this \
         endpoint"
    )]
    InvalidSignature,
    #[error("invalid webhook secret: {0}")]
    InvalidSecret(&'static str),
}

/// A Standard Webhooks signing key (the decoded bytes). `Debug` never shows the key.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` or a bare base64 secret (surrounding whitespace ignored, `=`
    /// padding optional). The decoded key must be at least 24 bytes, as the spec asks.
    pub fn parse(secret: &str) -> Result<Self, VerifyError> {
        let trimmed = secret.trim();
        let encoded = trimmed.strip_prefix(SECRET_PREFIX).unwrap_or(trimmed);
        if encoded.is_empty() {
            return Err(VerifyError::InvalidSecret(
                "the secret is empty: set it to `whsec_` followed by a base64-encoded key",
            ));
        }
        let key = LENIENT_BASE64.decode(encoded).map_err(|_| {
            VerifyError::InvalidSecret(
                "the part after `whsec_` is not valid base64 (standard alphabet A-Z a-z 0-9 + /)",
            )
        })?;
        if key.len() < MIN_SECRET_BYTES {
            return Err(VerifyError::InvalidSecret(
                "the decoded key is shorter than 24 bytes: generate one with \
                 `openssl rand -base64 32` and prefix it with `whsec_`",
            ));
        }
        Ok(Self { key })
    }

    /// Wraps raw key bytes (no length check; prefer [`WebhookSecret::parse`] for configured secrets).
    pub fn from_bytes(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length")
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

fn standard_webhooks_mac(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: &str,
    body: &[u8],
) -> HmacSha256 {
    let mut mac = secret.mac();
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Signs like a Standard Webhooks sender; returns the `webhook-signature` value `v1,<base64>`.
pub fn sign_standard_webhooks(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: &str,
    body: &[u8],
) -> String {
    let tag = standard_webhooks_mac(secret, msg_id, timestamp, body)
        .finalize()
        .into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// Verifies a Standard Webhooks request against `now_unix` (unix seconds, injected for tests).
///
/// Empty header values count as missing. Entries with versions other than `v1` are ignored;
/// the request is accepted if any `v1` entry matches in full.
pub fn verify_standard_webhooks(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(), VerifyError> {
    if msg_id.is_empty() {
        return Err(VerifyError::MissingHeader(HEADER_ID));
    }
    if timestamp.is_empty() {
        return Err(VerifyError::MissingHeader(HEADER_TIMESTAMP));
    }
    if signature_header.trim().is_empty() {
        return Err(VerifyError::MissingHeader(HEADER_SIGNATURE));
    }
    check_timestamp(timestamp, now_unix)?;

    let expected = standard_webhooks_mac(secret, msg_id, timestamp, body);
    // The first problem seen in a v1 entry that could not be a signature at all; reported only
    // when no entry was even well-formed, so the sender learns what to fix.
    let mut malformed: Option<&'static str> = None;
    let mut any_well_formed = false;
    for entry in signature_header.split_ascii_whitespace() {
        let Some(("v1", encoded)) = entry.split_once(',') else {
            continue;
        };
        let candidate = match STANDARD.decode(encoded) {
            Ok(bytes) => bytes,
            Err(_) => {
                malformed.get_or_insert("a `v1,` entry is not valid padded base64");
                continue;
            }
        };
        if candidate.is_empty() {
            malformed.get_or_insert("a `v1,` entry has an empty signature");
        } else if candidate.len() != SIGNATURE_BYTES {
            malformed.get_or_insert("a `v1,` signature must decode to 32 bytes (HMAC-SHA256)");
        } else {
            any_well_formed = true;
        }
        // Always the full constant-time check: verify_slice rejects any length but 32.
        if expected.clone().verify_slice(&candidate).is_ok() {
            return Ok(());
        }
    }
    match malformed {
        Some(what) if !any_well_formed => Err(VerifyError::MalformedSignature(what)),
        _ if any_well_formed => Err(VerifyError::InvalidSignature),
        _ => Err(VerifyError::MalformedSignature(
            "no `v1,<base64>` entry: only v1 (HMAC-SHA256) signatures are supported",
        )),
    }
}

fn check_timestamp(timestamp: &str, now_unix: i64) -> Result<(), VerifyError> {
    if !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidTimestamp);
    }
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp)?;
    let age = now_unix.saturating_sub(ts);
    if age > TOLERANCE_SECS {
        Err(VerifyError::TimestampTooOld)
    } else if age < -TOLERANCE_SECS {
        Err(VerifyError::TimestampTooNew)
    } else {
        Ok(())
    }
}

/// Signs like GitHub: returns `sha256=<lowercase hex>` of HMAC-SHA256 over `body`.
pub fn sign_hmac_sha256(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Verifies a GitHub-style `sha256=<hex>` header (e.g. `X-Hub-Signature-256`) over the raw body.
/// Hex digits are accepted in either case.
pub fn verify_hmac_sha256(
    secret: &[u8],
    header_value: &str,
    body: &[u8],
) -> Result<(), VerifyError> {
    let header_value = header_value.trim();
    if header_value.is_empty() {
        return Err(VerifyError::MalformedSignature(
            "the signature header is empty: expected `sha256=<hex>`",
        ));
    }
    let Some(encoded) = header_value.strip_prefix("sha256=") else {
        return Err(VerifyError::MalformedSignature(
            "expected `sha256=<hex>`; other algorithms (such as sha1) are not accepted",
        ));
    };
    if encoded.is_empty() {
        return Err(VerifyError::MalformedSignature(
            "`sha256=` is followed by nothing: expected 64 hex digits",
        ));
    }
    let candidate = hex::decode(encoded).map_err(|_| {
        VerifyError::MalformedSignature("the part after `sha256=` is not hexadecimal")
    })?;
    if candidate.len() != SIGNATURE_BYTES {
        return Err(VerifyError::MalformedSignature(
            "the part after `sha256=` must be 64 hex digits (HMAC-SHA256)",
        ));
    }
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.verify_slice(&candidate)
        .map_err(|_| VerifyError::InvalidSignature)
}

/// Compares a presented shared token with the expected one in constant time, without leaking
/// either length: both are hashed to SHA-256 and the digests compared with `subtle`.
/// An empty `expected` token never matches, so a missing configuration fails closed.
pub fn token_matches(expected: &[u8], presented: &[u8]) -> bool {
    if expected.is_empty() {
        return false;
    }
    let want = Sha256::digest(expected);
    let got = Sha256::digest(presented);
    want.ct_eq(&got).into()
}

#[cfg(test)]
mod tests;
