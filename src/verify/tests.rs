//! Tests for [`crate::verify`], in file order: the official Standard Webhooks vectors, secret
//! parsing, malformed headers and forgeries, timestamp tolerance, the GitHub `sha256=` vector and
//! forgeries, and the shared-token comparison.

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
    assert!(verify_standard_webhooks(&secret1(), SW1_ID, SW1_TS, SW1_SIG, &longer, NOW1).is_err());
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
