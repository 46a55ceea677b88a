//! A configured alert source (`POST /hooks/{name}`) with its secret resolved, and how it authenticates a
//! request: shared token, Standard Webhooks or GitHub-style HMAC, all over the raw bytes.

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;

use crate::body::{self, AlertBody};
use crate::config::{AuthScheme, SourceConfig};
use crate::error::RelayError;
use crate::headers::Headers;
use crate::netguard::{self, AllowListError};
use crate::secret::{self, Origin, Secret, SecretError, SecretKind};
use crate::verify::{self, VerifyError, WebhookSecret};

pub struct Source {
    pub name: String,
    pub scheme: AuthScheme,
    secret: Secret,
    webhook_secret: Option<WebhookSecret>,
    pub token_field: String,
    pub signature_header: String,
    pub template: String,
    pub template_field: Option<String>,
    pub allowed_templates: Vec<String>,
    pub allow_ips: Vec<IpNet>,
    pub trusted_proxies: Vec<IpNet>,
    pub per_second: u32,
    pub burst: u32,
}

/// An authenticated request: its parsed body (secret removed) — or why it could not be parsed, with a
/// redacted preview of it for the record — and the sender's idempotency key, if any.
pub struct Authenticated {
    pub body: Result<AlertBody, Unparsable>,
    pub webhook_id: Option<String>,
}

/// An authenticated body that does not parse.
pub struct Unparsable {
    pub error: RelayError,
    /// The start of the body as text, any occurrence of the source's secret replaced by `***`.
    pub preview: String,
}

/// Why a configured source could not be set up; every message names the config key.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// `sources.<name>.secret` did not resolve.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A `standard-webhooks` source whose secret is not a signing key.
    #[error("{key}: {cause} (expected whsec_<base64>)")]
    WebhookSecret { key: String, cause: VerifyError },
    #[error("sources.{name}.allow_ips: {cause}")]
    AllowIps { name: String, cause: AllowListError },
    #[error("sources.{name}.trusted_proxies: {cause}")]
    TrustedProxies { name: String, cause: AllowListError },
}

/// How much of an unparsable body the record keeps.
const PREVIEW_BYTES: usize = 2048;

impl Source {
    /// Resolves the source's secret (`auto` secrets live in `<data_dir>/secrets/<name>.secret`).
    pub fn from_config(
        name: &str,
        cfg: &SourceConfig,
        data_dir: &Path,
    ) -> Result<(Source, Origin), SourceError> {
        let key = format!("sources.{name}.secret");
        let kind = match cfg.auth {
            AuthScheme::StandardWebhooks => SecretKind::WebhookSigning,
            _ => SecretKind::Token,
        };
        let auto = data_dir.join("secrets").join(format!("{name}.secret"));
        let (secret, origin) = secret::resolve(&cfg.secret, &key, &auto, kind)?;
        let webhook_secret = match cfg.auth {
            AuthScheme::StandardWebhooks => Some(
                WebhookSecret::parse(secret.expose())
                    .map_err(|cause| SourceError::WebhookSecret { key, cause })?,
            ),
            _ => None,
        };
        let allow_ips =
            netguard::parse_allow_list(&cfg.allow_ips).map_err(|cause| SourceError::AllowIps {
                name: name.to_string(),
                cause,
            })?;
        let trusted_proxies =
            netguard::parse_allow_list(&cfg.trusted_proxies).map_err(|cause| {
                SourceError::TrustedProxies {
                    name: name.to_string(),
                    cause,
                }
            })?;
        Ok((
            Source {
                name: name.to_string(),
                scheme: cfg.auth,
                secret,
                webhook_secret,
                token_field: cfg.token_field.clone(),
                signature_header: cfg.signature_header.clone(),
                template: cfg.template.clone(),
                template_field: cfg.template_field.clone(),
                allowed_templates: cfg.allowed_templates.clone(),
                allow_ips,
                trusted_proxies,
                per_second: cfg.rate_limit.per_second,
                burst: cfg.rate_limit.burst,
            },
            origin,
        ))
    }

    /// The sender's address as far as it can be believed, and whether it may send to this source.
    pub fn check_address(
        &self,
        peer: IpAddr,
        forwarded_for: Option<&str>,
    ) -> Result<IpAddr, RelayError> {
        let ip = netguard::client_ip(peer, forwarded_for, &self.trusted_proxies);
        if netguard::is_allowed(ip, &self.allow_ips) {
            Ok(ip)
        } else {
            Err(RelayError::AddressNotAllowed(format!(
                "address {ip} is not allowed to send to source '{}'; add it to sources.{}.allow_ips (behind a proxy, list the proxy in trusted_proxies)",
                self.name, self.name
            )))
        }
    }

    /// Authenticates the raw request and parses its body. Nothing about an unauthenticated request is kept.
    pub fn authenticate(
        &self,
        headers: &Headers,
        query_token: Option<&str>,
        raw: &[u8],
        now_unix: i64,
    ) -> Result<Authenticated, RelayError> {
        let content_type = header(headers, "content-type");
        let parse = |raw: &[u8]| {
            body::parse(raw, content_type)
                .map_err(|e| RelayError::Body(format!("unparsable body: {e}")))
        };
        match self.scheme {
            AuthScheme::Token => {
                if let Some(t) = query_token {
                    if !verify::token_matches(self.secret.expose().as_bytes(), t.as_bytes()) {
                        return Err(
                            self.unauthorized("the token in ?token= is not this source's secret")
                        );
                    }
                    let body = parse(raw).map(|mut b| {
                        b.take_secret(&self.token_field);
                        b
                    });
                    return Ok(Authenticated {
                        body: body.map_err(|e| self.unparsable(e, raw)),
                        webhook_id: None,
                    });
                }
                let mut body = parse(raw)?;
                let presented = body.take_secret(&self.token_field).ok_or_else(|| {
                    self.unauthorized(&format!(
                        "missing token: put the source's secret in the '{}' field of the alert (or {}=... in key=value text, or ?token=... in the URL)",
                        self.token_field, self.token_field
                    ))
                })?;
                if !verify::token_matches(self.secret.expose().as_bytes(), presented.as_bytes()) {
                    return Err(self.unauthorized(&format!(
                        "the '{}' field is not this source's secret",
                        self.token_field
                    )));
                }
                Ok(Authenticated {
                    body: Ok(body),
                    webhook_id: None,
                })
            }
            AuthScheme::StandardWebhooks => {
                let secret = self
                    .webhook_secret
                    .as_ref()
                    .ok_or_else(|| RelayError::Internal("source secret not loaded".into()))?;
                let id = header(headers, verify::HEADER_ID).unwrap_or("");
                let ts = header(headers, verify::HEADER_TIMESTAMP).unwrap_or("");
                let sig = header(headers, verify::HEADER_SIGNATURE).unwrap_or("");
                verify::verify_standard_webhooks(secret, id, ts, sig, raw, now_unix)
                    .map_err(|e| self.verify_failed(e))?;
                Ok(Authenticated {
                    body: parse(raw).map_err(|e| self.unparsable(e, raw)),
                    webhook_id: Some(id.to_string()),
                })
            }
            AuthScheme::HmacSha256 => {
                let sig = header(headers, &self.signature_header).ok_or_else(|| {
                    self.unauthorized(&format!(
                        "missing {} header: sign the raw body with HMAC-SHA256 and send sha256=<hex>",
                        self.signature_header
                    ))
                })?;
                verify::verify_hmac_sha256(self.secret.expose().as_bytes(), sig, raw)
                    .map_err(|e| self.verify_failed(e))?;
                Ok(Authenticated {
                    body: parse(raw).map_err(|e| self.unparsable(e, raw)),
                    webhook_id: None,
                })
            }
        }
    }

    fn unparsable(&self, error: RelayError, raw: &[u8]) -> Unparsable {
        let mut preview = String::from_utf8_lossy(&raw[..raw.len().min(PREVIEW_BYTES)]).to_string();
        let secret = self.secret.expose();
        if !secret.is_empty() {
            preview = preview.replace(secret, "***");
        }
        Unparsable { error, preview }
    }

    fn verify_failed(&self, e: VerifyError) -> RelayError {
        self.unauthorized(&e.to_string())
    }

    fn unauthorized(&self, why: &str) -> RelayError {
        RelayError::Authentication(format!("source '{}': {why}", self.name))
    }

    /// The templates an alert may name: the source's own, then the allowed ones, each once.
    fn allowed_names(&self) -> Vec<&str> {
        let mut names = vec![self.template.as_str()];
        for t in &self.allowed_templates {
            if !names.contains(&t.as_str()) {
                names.push(t);
            }
        }
        names
    }

    /// The template to use: the source's, or one named by the alert's `template_field` if allowed.
    pub fn pick_template(&self, body: &AlertBody) -> Result<String, RelayError> {
        let Some(field) = &self.template_field else {
            return Ok(self.template.clone());
        };
        let Some(v) = body.fields.get(field) else {
            return Ok(self.template.clone());
        };
        let name = v.as_str().ok_or_else(|| {
            RelayError::Template(format!(
                "alert field '{field}' must be a template name (a string)"
            ))
        })?;
        if !crate::config::valid_name(name) {
            return Err(RelayError::Template(format!(
                "alert field '{field}': '{}' is not a valid template name (letters, digits, '-', '_')",
                name.chars().take(64).collect::<String>()
            )));
        }
        if self.allowed_names().contains(&name) {
            Ok(name.to_string())
        } else {
            Err(RelayError::Template(format!(
                "alert field '{field}': template '{name}' is not allowed for source '{}'; allowed: {}",
                self.name,
                self.allowed_names().join(", ")
            )))
        }
    }
}

pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers.get(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> SourceConfig {
        toml::from_str(&format!("template = \"t\"\n{extra}")).unwrap()
    }

    fn error(extra: &str) -> SourceError {
        let dir = tempfile::tempdir().unwrap();
        match Source::from_config("tv", &config(extra), dir.path()) {
            Ok(_) => panic!("{extra} was accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn setup_errors_say_which_part_failed() {
        let e = error("auth = \"token\"\nsecret = \" \"");
        assert!(
            matches!(&e, SourceError::Secret(SecretError::EmptyReference { key }) if key == "sources.tv.secret"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "sources.tv.secret: is empty; give env:NAME, file:PATH or auto"
        );

        let e = error("auth = \"standard-webhooks\"\nsecret = \"whsec_\"");
        assert!(
            matches!(&e, SourceError::WebhookSecret { key, cause: VerifyError::InvalidSecret(_) } if key == "sources.tv.secret"),
            "{e:?}"
        );
        assert!(e
            .to_string()
            .starts_with("sources.tv.secret: invalid webhook secret: "));
        assert!(e.to_string().ends_with(" (expected whsec_<base64>)"), "{e}");

        let e = error("auth = \"token\"\nsecret = \"s\"\nallow_ips = [\"10.0.0.0/8\", \"nope\"]");
        assert!(
            matches!(&e, SourceError::AllowIps { name, cause: AllowListError::NotAnAddress { entry } }
                if name == "tv" && entry == "nope"),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("sources.tv.allow_ips: allow-list entry \"nope\" is not"),
            "{e}"
        );

        let e = error("auth = \"token\"\nsecret = \"s\"\ntrusted_proxies = [\"\"]");
        assert!(
            matches!(
                &e,
                SourceError::TrustedProxies {
                    cause: AllowListError::EmptyEntry { position: 1 },
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("sources.tv.trusted_proxies: allow-list entry 1 is empty"),
            "{e}"
        );
    }

    #[test]
    fn a_valid_source_resolves_its_secret() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config("auth = \"token\"\nsecret = \"s3cret\"\nallow_ips = [\"tradingview\"]");
        let (src, origin) = Source::from_config("tv", &cfg, dir.path()).unwrap();
        assert_eq!(origin, Origin::Inline);
        assert_eq!(src.allow_ips.len(), netguard::TRADINGVIEW_IPS.len());
    }
}
