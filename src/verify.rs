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
mod tests {
    use super::*;

    // Public vectors copied from shared/fixtures/signature-vectors.json (never read at run time).
    const SW1_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SW1_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SW1_TS: &str = "1614265330";
    const SW1_BODY: &str = "{\"test\": 2432232314}";
    const SW1_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    const SW2_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const SW2_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const SW2_TS: &str = "1649367553";
    const SW2_BODY: &str = "{\"email\":\"test@example.com\",\"username\":\"test_user\"}";
    const SW2_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
    const SW2_BAD: &str = "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=";

    const GH_SECRET: &str = "It's a Secret to Everybody";
    const GH_BODY: &str = "Hello, World!";
    const GH_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    const NOW1: i64 = 1_614_265_330;

    fn secret1() -> WebhookSecret {
        WebhookSecret::parse(SW1_SECRET).unwrap()
    }

    fn check1(sig_header: &str) -> Result<(), VerifyError> {
        verify_standard_webhooks(
            &secret1(),
            SW1_ID,
            SW1_TS,
            sig_header,
            SW1_BODY.as_bytes(),
            NOW1,
        )
    }

    /// The valid vector-1 signature, base64-decoded.
    fn sig1_bytes() -> Vec<u8> {
        STANDARD.decode(&SW1_SIG[3..]).unwrap()
    }

    #[test]
    fn standard_webhooks_vectors_verify() {
        assert_eq!(check1(SW1_SIG), Ok(()));
        let s2 = WebhookSecret::parse(SW2_SECRET).unwrap();
        let now2: i64 = SW2_TS.parse().unwrap();
        assert_eq!(
            verify_standard_webhooks(&s2, SW2_ID, SW2_TS, SW2_SIG, SW2_BODY.as_bytes(), now2),
            Ok(())
        );
    }

    #[test]
    fn standard_webhooks_must_not_verify_vector_fails() {
        let s2 = WebhookSecret::parse(SW2_SECRET).unwrap();
        let now2: i64 = SW2_TS.parse().unwrap();
        assert_eq!(
            verify_standard_webhooks(&s2, SW2_ID, SW2_TS, SW2_BAD, SW2_BODY.as_bytes(), now2),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn sign_reproduces_vectors() {
        assert_eq!(
            sign_standard_webhooks(&secret1(), SW1_ID, SW1_TS, SW1_BODY.as_bytes()),
            SW1_SIG
        );
        let s2 = WebhookSecret::parse(SW2_SECRET).unwrap();
        assert_eq!(
            sign_standard_webhooks(&s2, SW2_ID, SW2_TS, SW2_BODY.as_bytes()),
            SW2_SIG
        );
    }

    #[test]
    fn bare_base64_secret_is_accepted() {
        let bare = WebhookSecret::parse(&SW1_SECRET["whsec_".len()..]).unwrap();
        assert_eq!(
            verify_standard_webhooks(&bare, SW1_ID, SW1_TS, SW1_SIG, SW1_BODY.as_bytes(), NOW1),
            Ok(())
        );
    }

    #[test]
    fn bad_secrets_are_rejected_without_echoing_them() {
        for bad in ["", "whsec_", "whsec_!!!not-base64!!!", "whsec_c2hvcnQ="] {
            let err = WebhookSecret::parse(bad).unwrap_err();
            assert!(matches!(err, VerifyError::InvalidSecret(_)), "{bad:?}");
            if bad.len() > "whsec_".len() {
                assert!(!err.to_string().contains(&bad["whsec_".len()..]));
            }
        }
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert_eq!(format!("{:?}", secret1()), "WebhookSecret(***)");
    }

    #[test]
    fn empty_headers_count_as_missing() {
        assert_eq!(
            check1(""),
            Err(VerifyError::MissingHeader(HEADER_SIGNATURE))
        );
        assert_eq!(
            check1("   "),
            Err(VerifyError::MissingHeader(HEADER_SIGNATURE))
        );
        let body = SW1_BODY.as_bytes();
        assert_eq!(
            verify_standard_webhooks(&secret1(), "", SW1_TS, SW1_SIG, body, NOW1),
            Err(VerifyError::MissingHeader(HEADER_ID))
        );
        assert_eq!(
            verify_standard_webhooks(&secret1(), SW1_ID, "", SW1_SIG, body, NOW1),
            Err(VerifyError::MissingHeader(HEADER_TIMESTAMP))
        );
    }

    #[test]
    fn empty_v1_entry_fails() {
        assert!(matches!(
            check1("v1,"),
            Err(VerifyError::MalformedSignature(_))
        ));
        assert!(check1("v1, v1,").is_err());
    }

    #[test]
    fn truncated_and_prefix_signatures_fail() {
        let full = sig1_bytes();
        for len in [1, 4, 16, 31] {
            let header = format!("v1,{}", STANDARD.encode(&full[..len]));
            assert!(check1(&header).is_err(), "prefix of {len} bytes accepted");
        }
        // Prefix of the base64 text (not a whole number of quanta) as well.
        assert!(check1(&SW1_SIG[..20]).is_err());
        assert!(check1(&SW1_SIG[..SW1_SIG.len() - 1]).is_err());
    }

    #[test]
    fn overlong_signature_fails() {
        let mut long = sig1_bytes();
        long.push(0);
        let header = format!("v1,{}", STANDARD.encode(&long));
        assert!(matches!(
            check1(&header),
            Err(VerifyError::MalformedSignature(_))
        ));
    }

    #[test]
    fn other_versions_are_ignored() {
        let v2 = SW1_SIG.replacen("v1,", "v2,", 1);
        assert!(matches!(
            check1(&v2),
            Err(VerifyError::MalformedSignature(_))
        ));
        let v1a = SW1_SIG.replacen("v1,", "v1a,", 1);
        assert!(check1(&v1a).is_err());
        assert!(check1(&SW1_SIG[3..]).is_err(), "entry without version");
        // An unknown version next to a valid v1 entry does not block it.
        assert_eq!(check1(&format!("{v1a} {SW1_SIG}")), Ok(()));
    }

    #[test]
    fn non_base64_signature_fails() {
        assert!(matches!(
            check1("v1,@@@@not*base64@@@@"),
            Err(VerifyError::MalformedSignature(_))
        ));
    }

    #[test]
    fn wrong_signature_of_right_length_is_invalid() {
        let mut bytes = sig1_bytes();
        bytes[31] ^= 1;
        let header = format!("v1,{}", STANDARD.encode(&bytes));
        assert_eq!(check1(&header), Err(VerifyError::InvalidSignature));
    }

    #[test]
    fn changed_body_or_id_fails() {
        let mut body = SW1_BODY.as_bytes().to_vec();
        body[10] ^= 1;
        assert_eq!(
            verify_standard_webhooks(&secret1(), SW1_ID, SW1_TS, SW1_SIG, &body, NOW1),
            Err(VerifyError::InvalidSignature)
        );
        let mut longer = SW1_BODY.as_bytes().to_vec();
        longer.push(b' ');
        assert!(
            verify_standard_webhooks(&secret1(), SW1_ID, SW1_TS, SW1_SIG, &longer, NOW1).is_err()
        );
        assert_eq!(
            verify_standard_webhooks(
                &secret1(),
                "msg_p5jXN8AQM9LWM0D4loKWxJeK",
                SW1_TS,
                SW1_SIG,
                SW1_BODY.as_bytes(),
                NOW1
            ),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn wrong_secret_fails() {
        let other = WebhookSecret::parse(SW2_SECRET).unwrap();
        assert_eq!(
            verify_standard_webhooks(&other, SW1_ID, SW1_TS, SW1_SIG, SW1_BODY.as_bytes(), NOW1),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn timestamp_tolerance_edges() {
        let at = |now: i64| {
            verify_standard_webhooks(
                &secret1(),
                SW1_ID,
                SW1_TS,
                SW1_SIG,
                SW1_BODY.as_bytes(),
                now,
            )
        };
        assert_eq!(at(NOW1 + TOLERANCE_SECS), Ok(()));
        assert_eq!(at(NOW1 - TOLERANCE_SECS), Ok(()));
        assert_eq!(
            at(NOW1 + TOLERANCE_SECS + 1),
            Err(VerifyError::TimestampTooOld)
        );
        assert_eq!(
            at(NOW1 - TOLERANCE_SECS - 1),
            Err(VerifyError::TimestampTooNew)
        );
        assert_eq!(at(i64::MIN), Err(VerifyError::TimestampTooNew));
        assert_eq!(at(i64::MAX), Err(VerifyError::TimestampTooOld));
    }

    #[test]
    fn non_numeric_timestamps_fail() {
        let body = SW1_BODY.as_bytes();
        for ts in [
            "abc",
            "-1614265330",
            "+1614265330",
            " 1614265330",
            "1614265330.0",
            "99999999999999999999999",
        ] {
            assert_eq!(
                verify_standard_webhooks(&secret1(), SW1_ID, ts, SW1_SIG, body, NOW1),
                Err(VerifyError::InvalidTimestamp),
                "{ts:?}"
            );
        }
    }

    #[test]
    fn any_valid_entry_among_several_accepts() {
        let mut bad = sig1_bytes();
        bad[0] ^= 0xff;
        let bad = format!("v1,{}", STANDARD.encode(&bad));
        assert_eq!(check1(&format!("{bad} {SW1_SIG}")), Ok(()));
        assert_eq!(check1(&format!("v1, {SW1_SIG}")), Ok(()));
        assert_eq!(check1(&format!("v1,@@ {SW1_SIG}")), Ok(()));
        assert_eq!(
            check1(&format!("{bad}  v1,")),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn errors_do_not_echo_signatures() {
        let msg = check1(SW2_BAD).unwrap_err().to_string();
        assert!(!msg.contains(&SW2_BAD[3..]));
        assert!(!msg.contains(&SW1_SIG[3..]));
    }

    #[test]
    fn github_vector_verifies_and_signs() {
        assert_eq!(
            verify_hmac_sha256(GH_SECRET.as_bytes(), GH_SIG, GH_BODY.as_bytes()),
            Ok(())
        );
        assert_eq!(
            sign_hmac_sha256(GH_SECRET.as_bytes(), GH_BODY.as_bytes()),
            GH_SIG
        );
    }

    #[test]
    fn github_uppercase_hex_is_accepted() {
        let upper = format!("sha256={}", GH_SIG["sha256=".len()..].to_uppercase());
        assert_eq!(
            verify_hmac_sha256(GH_SECRET.as_bytes(), &upper, GH_BODY.as_bytes()),
            Ok(())
        );
    }

    #[test]
    fn github_forgeries_fail() {
        let secret = GH_SECRET.as_bytes();
        let body = GH_BODY.as_bytes();
        let hex_part = &GH_SIG["sha256=".len()..];
        let malformed = [
            String::new(),
            "sha256=".to_string(),
            format!("sha1={hex_part}"),
            format!("SHA256={hex_part}"),
            hex_part.to_string(),
            format!("sha256={}", &hex_part[..62]),
            format!("sha256={}", &hex_part[..63]),
            format!("sha256={hex_part}00"),
            format!("sha256={}zz", &hex_part[..62]),
        ];
        for header in &malformed {
            assert!(
                matches!(
                    verify_hmac_sha256(secret, header, body),
                    Err(VerifyError::MalformedSignature(_))
                ),
                "{header:?}"
            );
        }
        let mut flipped = hex_part.to_string();
        flipped.replace_range(63.., "0");
        assert_eq!(
            verify_hmac_sha256(secret, &format!("sha256={flipped}"), body),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(
            verify_hmac_sha256(secret, GH_SIG, b"Hello, World?"),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(
            verify_hmac_sha256(b"another secret", GH_SIG, body),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn token_comparison() {
        assert!(token_matches(b"s3cret-token", b"s3cret-token"));
        assert!(!token_matches(b"s3cret-token", b"s3cret-toke"));
        assert!(!token_matches(b"s3cret-token", b"s3cret-token2"));
        assert!(!token_matches(b"s3cret-token", b""));
        assert!(!token_matches(b"s3cret-token", b"S3cret-token"));
        assert!(
            !token_matches(b"", b""),
            "empty expected token fails closed"
        );
    }
}
