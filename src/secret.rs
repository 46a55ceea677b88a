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

/// Why a secret reference did not resolve. `key` is the config key that holds the reference; every message
/// starts with it.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// `env:NAME` and `NAME` is not set (or not valid Unicode).
    #[error(
        "{key}: environment variable {name} is not set (the config refers to it as env:{name})"
    )]
    EnvUnset { key: String, name: String },
    /// `env:NAME` and `NAME` is set but blank.
    #[error("{key}: environment variable {name} is empty")]
    EnvEmpty { key: String, name: String },
    /// `file:PATH` (or an earlier `auto` file) that cannot be read.
    #[error("{key}: cannot read secret file {}: {cause}", .path.display())]
    UnreadableFile {
        key: String,
        path: PathBuf,
        cause: std::io::Error,
    },
    /// `file:PATH` (or an earlier `auto` file) that holds only whitespace.
    #[error("{key}: secret file {} is empty", .path.display())]
    EmptyFile { key: String, path: PathBuf },
    /// `auto`, and the generated secret could not be stored.
    #[error("{key}: cannot write generated secret to {}: {cause}", .path.display())]
    WriteGenerated {
        key: String,
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The reference is blank.
    #[error("{key}: is empty; give env:NAME, file:PATH or auto")]
    EmptyReference { key: String },
    /// `word:...` with a word that is not a known prefix (a typo such as `envv:NAME`): refused rather than
    /// taken as an inline secret whose value would be the reference itself.
    #[error("{key}: unknown secret reference prefix '{prefix}:'; use env:NAME, file:PATH or auto (an inline secret cannot start with a word and a colon)")]
    UnknownPrefix { key: String, prefix: String },
}

/// Resolves a secret reference. `key` is the config key, used in every error message; `auto_path` is where
/// an `auto` secret lives (created with mode 0600 on first use).
pub fn resolve(
    reference: &str,
    key: &str,
    auto_path: &Path,
    kind: SecretKind,
) -> Result<(Secret, Origin), SecretError> {
    let reference = reference.trim();
    if let Some(name) = reference.strip_prefix("env:") {
        return from_env(key, name, std::env::var(name).ok());
    }
    if let Some(path) = reference.strip_prefix("file:") {
        let path = PathBuf::from(path);
        let value = read_secret_file(&path, key)?;
        return Ok((Secret(value), Origin::File(path)));
    }
    if reference == "auto" {
        if auto_path.exists() {
            let value = read_secret_file(auto_path, key)?;
            return Ok((Secret(value), Origin::Auto(auto_path.to_path_buf())));
        }
        let value = generate(kind);
        write_private(auto_path, &value).map_err(|cause| SecretError::WriteGenerated {
            key: key.to_string(),
            path: auto_path.to_path_buf(),
            cause,
        })?;
        return Ok((Secret(value), Origin::Generated(auto_path.to_path_buf())));
    }
    if reference.is_empty() {
        return Err(SecretError::EmptyReference {
            key: key.to_string(),
        });
    }
    if let Some((prefix, _)) = reference.split_once(':') {
        if !prefix.is_empty()
            && prefix.len() <= 16
            && prefix.chars().all(|c| c.is_ascii_alphabetic())
        {
            return Err(SecretError::UnknownPrefix {
                key: key.to_string(),
                prefix: prefix.to_string(),
            });
        }
    }
    Ok((Secret(reference.to_string()), Origin::Inline))
}

/// An `env:NAME` secret, given the variable's value (`None`: not set, or not Unicode).
fn from_env(key: &str, name: &str, value: Option<String>) -> Result<(Secret, Origin), SecretError> {
    let value = value.ok_or_else(|| SecretError::EnvUnset {
        key: key.to_string(),
        name: name.to_string(),
    })?;
    let value = value.trim().to_string();
    if value.is_empty() {
        return Err(SecretError::EnvEmpty {
            key: key.to_string(),
            name: name.to_string(),
        });
    }
    Ok((Secret(value), Origin::Env(name.to_string())))
}

fn read_secret_file(path: &Path, key: &str) -> Result<String, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|cause| SecretError::UnreadableFile {
        key: key.to_string(),
        path: path.to_path_buf(),
        cause,
    })?;
    let value = text.trim().to_string();
    if value.is_empty() {
        return Err(SecretError::EmptyFile {
            key: key.to_string(),
            path: path.to_path_buf(),
        });
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
    fn an_unknown_prefix_is_refused_not_taken_inline() {
        let dir = tempfile::tempdir().unwrap();
        let auto = dir.path().join("auto");
        let e = resolve(
            "envv:TV_SECRET",
            "sources.tv.secret",
            &auto,
            SecretKind::Token,
        )
        .unwrap_err();
        assert!(
            matches!(&e, SecretError::UnknownPrefix { prefix, .. } if prefix == "envv"),
            "{e:?}"
        );
        assert!(e
            .to_string()
            .starts_with("sources.tv.secret: unknown secret reference prefix 'envv:'"));
        assert!(
            !e.to_string().contains("TV_SECRET"),
            "the rest may be a secret: {e}"
        );
        // Inline secrets without a word-and-colon start still work.
        let (s, origin) = resolve("whsec_abc:def/1", "k", &auto, SecretKind::Token).unwrap();
        assert_eq!((s.expose(), origin), ("whsec_abc:def/1", Origin::Inline));
    }

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
        assert!(
            matches!(&e, SecretError::EnvUnset { key, name }
                if key == "sources.tv.secret" && name == "ALERT_RELAY_TEST_SURELY_UNSET"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "sources.tv.secret: environment variable ALERT_RELAY_TEST_SURELY_UNSET is not set (the config refers to it as env:ALERT_RELAY_TEST_SURELY_UNSET)"
        );
    }

    #[test]
    fn env_reference_to_a_blank_variable_is_empty() {
        // Through the helper: setting a variable would race with other tests reading the environment.
        let e = from_env("k", "BLANK", Some("  ".into())).unwrap_err();
        assert!(matches!(e, SecretError::EnvEmpty { .. }), "{e:?}");
        assert_eq!(e.to_string(), "k: environment variable BLANK is empty");
        let e = from_env("k", "UNSET", None).unwrap_err();
        assert!(matches!(e, SecretError::EnvUnset { .. }), "{e:?}");
        let (s, o) = from_env("k", "SET", Some(" v ".into())).unwrap();
        assert_eq!((s.expose(), o), ("v", Origin::Env("SET".into())));
    }

    #[test]
    fn file_reference_errors_say_missing_or_empty() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let e = resolve(
            &format!("file:{}", missing.display()),
            "k",
            Path::new("/x"),
            SecretKind::Token,
        )
        .unwrap_err();
        match &e {
            SecretError::UnreadableFile { key, path, cause } => {
                assert_eq!((key.as_str(), path), ("k", &missing));
                assert_eq!(cause.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            e.to_string().starts_with(&format!(
                "k: cannot read secret file {}: ",
                missing.display()
            )),
            "{e}"
        );

        let blank = dir.path().join("blank");
        std::fs::write(&blank, " \n").unwrap();
        let e = resolve(
            &format!("file:{}", blank.display()),
            "k",
            Path::new("/x"),
            SecretKind::Token,
        )
        .unwrap_err();
        assert!(matches!(&e, SecretError::EmptyFile { path, .. } if *path == blank));
        assert_eq!(
            e.to_string(),
            format!("k: secret file {} is empty", blank.display())
        );
        // An `auto` file from an earlier start is read the same way.
        let e = resolve("auto", "k", &blank, SecretKind::Token).unwrap_err();
        assert!(matches!(e, SecretError::EmptyFile { .. }), "{e:?}");
    }

    #[test]
    fn blank_reference_is_refused_and_anything_else_is_inline() {
        let e = resolve("  ", "k", Path::new("/x"), SecretKind::Token).unwrap_err();
        assert!(matches!(&e, SecretError::EmptyReference { key } if key == "k"));
        assert_eq!(
            e.to_string(),
            "k: is empty; give env:NAME, file:PATH or auto"
        );
        let (s, o) = resolve(" abc ", "k", Path::new("/x"), SecretKind::Token).unwrap();
        assert_eq!((s.expose(), o), ("abc", Origin::Inline));
    }

    #[test]
    fn auto_secret_that_cannot_be_written() {
        let dir = tempfile::tempdir().unwrap();
        // The parent "directory" is a file, so the secret cannot be created under it.
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let e = resolve("auto", "k", &file.join("s"), SecretKind::Token).unwrap_err();
        assert!(matches!(e, SecretError::WriteGenerated { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with(&format!(
                "k: cannot write generated secret to {}: ",
                file.join("s").display()
            )),
            "{e}"
        );
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
