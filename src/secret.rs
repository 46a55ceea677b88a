//! Secrets given by reference in the config (`env:NAME`, `file:PATH`, `auto`) and the `Secret` type that
//! never prints its value.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;

/// A resolved secret. `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What kind of value to generate for `auto` secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A URL-safe random token (shared tokens, HMAC keys, API bearer tokens).
    Token,
    /// A Standard Webhooks signing secret: `whsec_` + base64 of 24 random bytes.
    WebhookSigning,
}

/// How a secret came to be, for the start-up log (never the value itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Env(String),
    File(PathBuf),
    /// Generated on this start into this file.
    Generated(PathBuf),
    /// Read back from a file generated on an earlier start.
    Auto(PathBuf),
    Inline,
}

/// Resolves a secret reference. `key` is the config key, used in every error message; `auto_path` is where
/// an `auto` secret lives (created with mode 0600 on first use).
pub fn resolve(
    reference: &str,
    key: &str,
    auto_path: &Path,
    kind: SecretKind,
) -> Result<(Secret, Origin), String> {
    let reference = reference.trim();
    if let Some(name) = reference.strip_prefix("env:") {
        let value = std::env::var(name).map_err(|_| {
            format!("{key}: environment variable {name} is not set (the config refers to it as env:{name})")
        })?;
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err(format!("{key}: environment variable {name} is empty"));
        }
        return Ok((Secret(value), Origin::Env(name.to_string())));
    }
    if let Some(path) = reference.strip_prefix("file:") {
        let path = PathBuf::from(path);
        let value = read_secret_file(&path).map_err(|e| format!("{key}: {e}"))?;
        return Ok((Secret(value), Origin::File(path)));
    }
    if reference == "auto" {
        if auto_path.exists() {
            let value = read_secret_file(auto_path).map_err(|e| format!("{key}: {e}"))?;
            return Ok((Secret(value), Origin::Auto(auto_path.to_path_buf())));
        }
        let value = generate(kind);
        write_private(auto_path, &value).map_err(|e| {
            format!(
                "{key}: cannot write generated secret to {}: {e}",
                auto_path.display()
            )
        })?;
        return Ok((Secret(value), Origin::Generated(auto_path.to_path_buf())));
    }
    if reference.is_empty() {
        return Err(format!("{key}: is empty; give env:NAME, file:PATH or auto"));
    }
    Ok((Secret(reference.to_string()), Origin::Inline))
}

fn read_secret_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
    let value = text.trim().to_string();
    if value.is_empty() {
        return Err(format!("secret file {} is empty", path.display()));
    }
    Ok(value)
}

/// Generates a fresh secret of the given kind.
pub fn generate(kind: SecretKind) -> String {
    let bytes: [u8; 24] = rand::random();
    match kind {
        SecretKind::Token => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        SecretKind::WebhookSigning => format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ),
    }
}

/// Writes `value` to `path` readable by the owner only (mode 0600 on Unix), creating parent directories.
pub fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        crate::fsync::create_dir_all(parent)?;
    }
    // Whole or absent, and its name durable too: a secret cut short or regenerated after a power loss would
    // no longer match the senders' copy. Never over an existing one.
    crate::fsync::write_atomically(
        path,
        format!("{value}\n").as_bytes(),
        crate::fsync::Existing::Keep,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }

    #[test]
    fn env_reference_names_the_key_when_unset() {
        let e = resolve(
            "env:ALERT_RELAY_TEST_SURELY_UNSET",
            "sources.tv.secret",
            Path::new("/nonexistent"),
            SecretKind::Token,
        )
        .unwrap_err();
        assert!(e.starts_with("sources.tv.secret:"), "{e}");
        assert!(e.contains("ALERT_RELAY_TEST_SURELY_UNSET"));
    }

    #[test]
    fn auto_generates_once_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secrets/x.secret");
        let (a, o) = resolve("auto", "k", &p, SecretKind::WebhookSigning).unwrap();
        assert!(matches!(o, Origin::Generated(_)));
        assert!(a.expose().starts_with("whsec_"));
        let (b, o) = resolve("auto", "k", &p, SecretKind::WebhookSigning).unwrap();
        assert!(matches!(o, Origin::Auto(_)));
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn file_reference_trims() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "  abc \n").unwrap();
        let (s, _) = resolve(
            &format!("file:{}", p.display()),
            "k",
            Path::new("/x"),
            SecretKind::Token,
        )
        .unwrap();
        assert_eq!(s.expose(), "abc");
    }
}
