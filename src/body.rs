//! Alert body parsing: turns the raw (already authenticated) bytes into named fields.
//!
//! TradingView posts JSON with `Content-Type: text/plain`, or free text; CrossTrade-style alerts
//! are `key=value;` text. Formats are recognised in this order:
//! 1. JSON, when the trimmed text starts with `{` or the content type is JSON. It must be an
//!    object nested at most [`MAX_DEPTH`] levels. Duplicate JSON keys: the last one wins
//!    (serde_json's behaviour).
//! 2. Key/value, when every non-empty segment between `;` or newlines is `key=value` with a key
//!    of `[A-Za-z0-9_.-]`. Keys and values are trimmed; values are strings. A duplicate key is an
//!    error: an alert with two `action=` lines is ambiguous and must not be guessed at.
//! 3. Text otherwise: the single field `text` holds the trimmed text.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Deepest accepted nesting of JSON objects and arrays (the top-level object counts as 1).
pub const MAX_DEPTH: usize = 32;

/// How the alert body was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    Json,
    KeyValue,
    Text,
}

/// A parsed alert body: its format and its top-level fields.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertBody {
    pub format: BodyFormat,
    pub fields: Map<String, Value>,
}

/// Why a body could not be read. Messages say what the sender should change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("body is not valid UTF-8 (first bad byte at offset {valid_up_to}): send text or JSON encoded as UTF-8")]
    NotUtf8 { valid_up_to: usize },
    #[error("body is empty: the alert message must contain JSON, key=value pairs or text")]
    Empty,
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("JSON body must be an object (`{{\"key\": value, ...}}`), not {0}")]
    NotAnObject(&'static str),
    #[error("JSON body is nested deeper than {MAX_DEPTH} levels: flatten the alert message")]
    TooDeep,
    #[error("key `{0}` appears more than once in the key=value body: give each key once")]
    DuplicateKey(String),
}

/// Parses an alert body. `content_type` is the request's `Content-Type` header, if any.
pub fn parse(raw: &[u8], content_type: Option<&str>) -> Result<AlertBody, BodyError> {
    let text = std::str::from_utf8(raw).map_err(|e| BodyError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    // Editors on Windows like to prepend a byte-order mark; it is not content.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(BodyError::Empty);
    }

    if trimmed.starts_with('{') || content_type.is_some_and(is_json_content_type) {
        // Parse the untrimmed text so serde's line/column match what the sender wrote.
        return parse_json(text).map(|fields| AlertBody {
            format: BodyFormat::Json,
            fields,
        });
    }
    if let Some(fields) = parse_key_value(trimmed)? {
        return Ok(AlertBody {
            format: BodyFormat::KeyValue,
            fields,
        });
    }
    let mut fields = Map::new();
    fields.insert("text".to_string(), Value::String(trimmed.to_string()));
    Ok(AlertBody {
        format: BodyFormat::Text,
        fields,
    })
}

impl AlertBody {
    /// Removes a secret field (JSON top-level field or key=value key, exact name) and returns its
    /// value as a string, so it is never stored. Non-string JSON values are returned as their JSON
    /// text. Text bodies have no named fields to take a secret from: always `None`.
    pub fn take_secret(&mut self, field: &str) -> Option<String> {
        if self.format == BodyFormat::Text {
            return None;
        }
        if !self.fields.contains_key(field) {
            return None;
        }
        // Rebuilt rather than `remove`d: with serde_json's `preserve_order` feature (which another
        // crate may switch on) `remove` swaps the last field into place, reordering the journal.
        let mut taken = None;
        self.fields = std::mem::take(&mut self.fields)
            .into_iter()
            .filter_map(|(key, value)| {
                if key == field {
                    taken = Some(value);
                    None
                } else {
                    Some((key, value))
                }
            })
            .collect();
        match taken? {
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        }
    }

    /// The body as stored in the journal: a JSON value (secret already removed by take_secret).
    pub fn to_stored(&self) -> Value {
        Value::Object(self.fields.clone())
    }
}

fn is_json_content_type(content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    media_type.eq_ignore_ascii_case("application/json")
        || media_type
            .get(media_type.len().saturating_sub(5)..)
            .is_some_and(|suffix| suffix.eq_ignore_ascii_case("+json"))
}

fn parse_json(text: &str) -> Result<Map<String, Value>, BodyError> {
    // Reject deep nesting before serde builds (and later drops) a deep value.
    check_depth(text)?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(BodyError::NotAnObject(match other {
            Value::Array(_) => "an array",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            _ => "null",
        })),
        Err(e) => Err(BodyError::InvalidJson(e.to_string())),
    }
}

/// Iterative scan of brackets outside strings. Invalid JSON passes through to serde for a
/// precise error; only the depth is judged here.
fn check_depth(text: &str) -> Result<(), BodyError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for b in text.bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(BodyError::TooDeep);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// `Ok(None)` when the text is not key=value shaped (it is then treated as text).
fn parse_key_value(text: &str) -> Result<Option<Map<String, Value>>, BodyError> {
    let mut fields = Map::new();
    for segment in text.split([';', '\n', '\r']) {
        let segment = segment.trim();
        if segment.is_empty() {
            continue;
        }
        let Some((key, value)) = segment.split_once('=') else {
            return Ok(None);
        };
        let key = key.trim();
        let valid_key = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !valid_key {
            return Ok(None);
        }
        if fields
            .insert(key.to_string(), Value::String(value.trim().to_string()))
            .is_some()
        {
            return Err(BodyError::DuplicateKey(key.to_string()));
        }
    }
    Ok((!fields.is_empty()).then_some(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tradingview_json_sent_as_text_plain() {
        let raw =
            br#"{"ticker":"NQ1!","action":"buy","price":18250.25,"qty":2,"secret":"hunter2"}"#;
        let body = parse(raw, Some("text/plain; charset=utf-8")).unwrap();
        assert_eq!(body.format, BodyFormat::Json);
        assert_eq!(body.fields["ticker"], "NQ1!");
        assert_eq!(body.fields["qty"], json!(2));
        assert_eq!(body.fields["price"], json!(18250.25));
    }

    #[test]
    fn json_without_content_type_and_with_whitespace() {
        let body = parse(b"\n  { \"a\": 1 }  \n", None).unwrap();
        assert_eq!(body.format, BodyFormat::Json);
        assert_eq!(body.to_stored(), json!({"a": 1}));
    }

    #[test]
    fn numbers_are_preserved() {
        let raw = br#"{"int":9007199254740993,"neg":-42,"price":4512.75,"tick":0.25,"big":18446744073709551615}"#;
        let body = parse(raw, Some("application/json")).unwrap();
        let stored = body.to_stored();
        assert_eq!(stored["int"].as_u64(), Some(9_007_199_254_740_993));
        assert_eq!(stored["neg"].as_i64(), Some(-42));
        assert_eq!(stored["big"].as_u64(), Some(u64::MAX));
        assert_eq!(stored["price"].to_string(), "4512.75");
        assert_eq!(stored["tick"].to_string(), "0.25");
    }

    #[test]
    fn json_secret_is_removed() {
        let mut body = parse(br#"{"secret":"hunter2","action":"sell"}"#, None).unwrap();
        assert_eq!(body.take_secret("secret").as_deref(), Some("hunter2"));
        assert_eq!(body.take_secret("secret"), None);
        assert_eq!(body.to_stored(), json!({"action": "sell"}));
        assert!(!body.to_stored().to_string().contains("hunter2"));
    }

    #[test]
    fn json_non_string_secret_is_returned_as_text() {
        let mut body = parse(br#"{"token":12345,"a":"b"}"#, None).unwrap();
        assert_eq!(body.take_secret("token").as_deref(), Some("12345"));
        assert_eq!(body.to_stored(), json!({"a": "b"}));
    }

    #[test]
    fn secret_name_is_exact() {
        let mut body = parse(br#"{"Secret":"x"}"#, None).unwrap();
        assert_eq!(body.take_secret("secret"), None);
        assert_eq!(body.take_secret("Secret").as_deref(), Some("x"));
    }

    #[test]
    fn key_value_body() {
        let raw =
            b"key=abc123; command=PLACE; account=sim101; instrument=NQ 06-25; action=BUY; qty=1;";
        let mut body = parse(raw, Some("text/plain")).unwrap();
        assert_eq!(body.format, BodyFormat::KeyValue);
        assert_eq!(body.fields["instrument"], "NQ 06-25");
        assert_eq!(body.fields["qty"], "1");
        assert_eq!(body.take_secret("key").as_deref(), Some("abc123"));
        assert_eq!(
            body.to_stored(),
            json!({"command": "PLACE", "account": "sim101", "instrument": "NQ 06-25",
                   "action": "BUY", "qty": "1"})
        );
    }

    #[test]
    fn key_value_on_lines_with_empty_value_and_equals_in_value() {
        let raw = b"a.b=1\r\nc-d = x=y\n\ne_f=\n";
        let body = parse(raw, None).unwrap();
        assert_eq!(body.format, BodyFormat::KeyValue);
        assert_eq!(
            body.to_stored(),
            json!({"a.b": "1", "c-d": "x=y", "e_f": ""})
        );
    }

    #[test]
    fn key_value_duplicate_key_is_an_error() {
        let err = parse(b"action=buy;action=sell", None).unwrap_err();
        assert_eq!(err, BodyError::DuplicateKey("action".into()));
        assert!(err.to_string().contains("action"));
    }

    #[test]
    fn plain_text_body() {
        let body = parse(b"  Close crossed above SMA(20) on NQ1!  ", None).unwrap();
        assert_eq!(body.format, BodyFormat::Text);
        assert_eq!(
            body.to_stored(),
            json!({"text": "Close crossed above SMA(20) on NQ1!"})
        );
        let mut body = body;
        assert_eq!(body.take_secret("text"), None);
    }

    #[test]
    fn almost_key_value_is_text() {
        for raw in ["a=1; this is not a pair", "bad key=1", "=1", "price: 10"] {
            let body = parse(raw.as_bytes(), None).unwrap();
            assert_eq!(body.format, BodyFormat::Text, "{raw:?}");
            assert_eq!(body.fields["text"], raw);
        }
    }

    #[test]
    fn invalid_json_reports_position() {
        let err = parse(br#"{"action": "buy" "qty": 1}"#, Some("text/plain")).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, BodyError::InvalidJson(_)));
        assert!(msg.starts_with("body is not valid JSON: "), "{msg}");
        assert!(msg.contains("line 1 column 18"), "{msg}");
    }

    #[test]
    fn json_content_type_requires_json() {
        assert!(matches!(
            parse(b"action=buy", Some("application/json")),
            Err(BodyError::InvalidJson(_))
        ));
        assert!(matches!(
            parse(b"[1]", Some("application/vnd.api+JSON; charset=utf-8")),
            Err(BodyError::NotAnObject("an array"))
        ));
    }

    #[test]
    fn non_object_json_is_rejected() {
        let err = parse(b"[1, 2]", Some("application/json")).unwrap_err();
        assert_eq!(err, BodyError::NotAnObject("an array"));
        assert!(err.to_string().contains("JSON body must be an object"));
        assert_eq!(
            parse(b"42", Some("application/json")),
            Err(BodyError::NotAnObject("a number"))
        );
        // Without a JSON content type an array is just text.
        assert_eq!(parse(b"[1, 2]", None).unwrap().format, BodyFormat::Text);
    }

    #[test]
    fn nesting_limit() {
        let nested = |n: usize| {
            let mut s = String::from("{\"a\":");
            s.push_str(&"[".repeat(n - 1));
            s.push_str(&"]".repeat(n - 1));
            s.push('}');
            s
        };
        assert!(parse(nested(MAX_DEPTH).as_bytes(), None).is_ok());
        assert_eq!(
            parse(nested(MAX_DEPTH + 1).as_bytes(), None),
            Err(BodyError::TooDeep)
        );
        // Far beyond serde_json's own limit: still a clean error, no stack trouble.
        let deep = format!("{{\"a\":{}", "[".repeat(100_000));
        assert_eq!(parse(deep.as_bytes(), None), Err(BodyError::TooDeep));
        // Brackets inside strings (with escaped quotes) do not count.
        let in_string = format!(r#"{{"a":"\"{}"}}"#, "[".repeat(100));
        assert!(parse(in_string.as_bytes(), None).is_ok());
    }

    #[test]
    fn non_utf8_is_rejected() {
        let err = parse(b"{\"a\":\"\xff\"}", None).unwrap_err();
        assert_eq!(err, BodyError::NotUtf8 { valid_up_to: 6 });
    }

    #[test]
    fn empty_bodies_are_rejected() {
        for raw in [&b""[..], b"   ", b"\n\t\r\n", "\u{feff}".as_bytes()] {
            assert_eq!(parse(raw, None), Err(BodyError::Empty), "{raw:?}");
        }
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        let body = parse("\u{feff}{\"a\":1}".as_bytes(), None).unwrap();
        assert_eq!(body.format, BodyFormat::Json);
    }

    #[test]
    fn binary_garbage_does_not_panic() {
        let garbage: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        assert!(parse(&garbage, None).is_err());
        assert!(parse(b"\x00\x01\x02", None).is_ok_and(|b| b.format == BodyFormat::Text));
    }

    #[test]
    fn format_serializes_lowercase() {
        assert_eq!(
            serde_json::to_string(&BodyFormat::KeyValue).unwrap(),
            "\"keyvalue\""
        );
        assert_eq!(
            serde_json::to_string(&BodyFormat::Json).unwrap(),
            "\"json\""
        );
        assert_eq!(
            serde_json::to_string(&BodyFormat::Text).unwrap(),
            "\"text\""
        );
    }

    mod prop {
        //! Invariant: `parse` never panics, whatever the bytes and content type, and a successful
        //! parse always yields at least one field.
        use super::super::*;
        use proptest::prelude::*;

        fn check(raw: &[u8], content_type: Option<&str>) {
            if let Ok(body) = parse(raw, content_type) {
                assert!(!body.fields.is_empty());
            }
        }

        proptest! {
            #[test]
            fn parse_never_panics_on_bytes(
                raw in proptest::collection::vec(any::<u8>(), 0..512),
                ct in proptest::option::of("[a-z/+;= -]{0,30}"),
            ) {
                check(&raw, ct.as_deref());
            }

            #[test]
            fn parse_never_panics_on_json_like_text(
                raw in r#"[{}\[\]":,;=\\ a-z0-9.\n-]{0,200}"#,
            ) {
                check(raw.as_bytes(), None);
                check(raw.as_bytes(), Some("application/json"));
            }
        }
    }
}
