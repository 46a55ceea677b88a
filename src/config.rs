//! The configuration file: its shape, defaults and validation. `config.toml` at the repository root is
//! embedded in the binary and is what runs when no `--config` is given.
//!
//! Relative paths in a config file (`data_dir`, `templates_dir`) are resolved against the directory of that
//! file; for the embedded default, against the working directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::crosstrade::CrossTradeConfig;
use crate::instruments::{InstrumentConfig, InstrumentError, Instruments};
/// The `[journal]` section: the journal owns its settings.
pub use crate::journal::JournalConfig;
use crate::journal::JournalConfigError;
use crate::netguard::AllowListError;
use crate::notify::{NotifyConfig, NotifyConfigError};
use crate::paper::PaperConfig;

/// The default configuration, identical to the shipped `config.toml`.
pub const EMBEDDED_CONFIG: &str = include_str!("../config.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub journal: JournalConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub execution: ExecutionConfig,
    #[serde(default)]
    pub paper: PaperConfig,
    /// Live execution through CrossTrade, for the accounts it lists. Absent: everything is paper.
    #[serde(default)]
    pub crosstrade: Option<CrossTradeConfig>,
    #[serde(default)]
    pub instruments: BTreeMap<String, InstrumentConfig>,
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    /// Notification channels. Absent: nothing is sent.
    #[serde(default)]
    pub notify: NotifyConfig,
    /// Directory the config file lives in (relative paths resolve against it). Not a config key.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Where the config came from, for messages. Not a config key.
    #[serde(skip)]
    pub origin: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    pub templates_dir: PathBuf,
    pub body_limit_bytes: usize,
    pub api_tokens: Vec<String>,
    /// How long in-flight executions may take to finish on shutdown.
    pub shutdown_grace_ms: u64,
    /// Async worker threads of `serve`; 0 = one per core but one, at least one (see [`crate::runtime`]).
    pub workers: usize,
    /// `/healthz`'s status code when degraded: 200 with `"status": "degraded"` (`always-200`), or 503 for
    /// monitors that read only the code (`503-when-degraded`).
    pub health_status_code: HealthStatusCode,
}

/// How `/healthz` answers when degraded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum HealthStatusCode {
    #[default]
    #[serde(rename = "always-200")]
    Always200,
    #[serde(rename = "503-when-degraded")]
    ServiceUnavailableWhenDegraded,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            data_dir: "data".into(),
            templates_dir: "templates".into(),
            body_limit_bytes: 64 * 1024,
            api_tokens: Vec::new(),
            shutdown_grace_ms: 10_000,
            workers: 0,
            health_status_code: HealthStatusCode::Always200,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutionConfig {
    /// An alert older than this is not (re)tried: retries stop, and after a restart a not-yet-executed
    /// alert becomes `expired` instead of running.
    pub max_age_secs: u64,
    /// First retry delay after a retryable failure; doubles up to `retry_backoff_max_ms`.
    pub retry_backoff_ms: u64,
    pub retry_backoff_max_ms: u64,
    /// Start with the kill switch on: alerts are authenticated and recorded as rejected, nothing executes.
    pub kill_switch: bool,
    /// How long the broker is asked, with backoff, about an execution whose outcome is unknown before it is
    /// left to a person (`alerts resolve`).
    pub settle_for_secs: u64,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        ExecutionConfig {
            max_age_secs: 30,
            retry_backoff_ms: 250,
            retry_backoff_max_ms: 5_000,
            kill_switch: false,
            settle_for_secs: 600,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub outbound: OutboundLimit,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundLimit {
    pub per_second: u32,
    pub burst: u32,
    /// How long an execution may wait for the budget before it is rejected as rate-limited.
    pub max_wait_ms: u64,
}

impl Default for OutboundLimit {
    fn default() -> Self {
        OutboundLimit {
            per_second: 3,
            burst: 20,
            max_wait_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthScheme {
    /// Shared secret in the body (`secret` field / `secret=`) or `?token=`: for TradingView.
    Token,
    /// `webhook-id` / `webhook-timestamp` / `webhook-signature` headers.
    StandardWebhooks,
    /// GitHub-style `sha256=<hex>` HMAC of the raw body in a header.
    HmacSha256,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub auth: AuthScheme,
    /// Secret reference: `env:NAME`, `file:PATH`, or `auto` (generated into the data dir on first start).
    pub secret: String,
    /// Token scheme: the body field (JSON) or key (key=value text) holding the shared secret.
    #[serde(default = "default_token_field")]
    pub token_field: String,
    /// hmac-sha256 scheme: the header carrying `sha256=<hex>`.
    #[serde(default = "default_signature_header")]
    pub signature_header: String,
    /// The template used for this source's alerts.
    pub template: String,
    /// Optional alert field naming another template; only names in `allowed_templates` are accepted.
    #[serde(default)]
    pub template_field: Option<String>,
    #[serde(default)]
    pub allowed_templates: Vec<String>,
    /// Accepted sender addresses / CIDRs; `"tradingview"` expands to TradingView's published addresses.
    #[serde(default)]
    pub allow_ips: Vec<String>,
    /// Proxies whose `X-Forwarded-For` is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// The accounts this source's alerts trade (`source_accounts` in a template); empty: the paper accounts.
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub rate_limit: InboundLimit,
}

fn default_token_field() -> String {
    "secret".into()
}

fn default_signature_header() -> String {
    "X-Hub-Signature-256".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for InboundLimit {
    fn default() -> Self {
        InboundLimit {
            per_second: 50,
            burst: 200,
        }
    }
}

/// A config that could not be loaded or is invalid: where it came from, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {problem}")]
pub struct ConfigError {
    pub origin: String,
    pub problem: ConfigProblem,
}

/// What is wrong with a config; every message names the key and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    #[error("cannot read config file: {0}")]
    Unreadable(std::io::Error),
    /// Not TOML, or not the config's shape (an unknown key, a wrong type): the parser's message on one line.
    #[error("{0}")]
    Syntax(String),
    #[error("server.listen: '{0}' is not an address:port (e.g. 127.0.0.1:8080)")]
    ListenAddr(String),
    #[error(
        "server.workers must be at most {} (0 picks one per core but one)",
        crate::runtime::MAX_WORKERS
    )]
    TooManyWorkers(usize),
    #[error("server.body_limit_bytes must be at least 256")]
    BodyLimitTooSmall(usize),
    #[error("limits.outbound.per_second and limits.outbound.burst must be at least 1")]
    OutboundLimitZero,
    #[error(transparent)]
    Journal(#[from] JournalConfigError),
    #[error("paper.accounts must name at least one account (e.g. [\"Sim101\"])")]
    NoPaperAccounts,
    #[error(
        "instruments: no instruments configured; add at least one root table like [instruments.ES]"
    )]
    NoInstruments,
    #[error(transparent)]
    Instruments(#[from] InstrumentError),
    #[error("crosstrade.accounts: list the accounts to trade live through CrossTrade")]
    NoLiveAccounts,
    #[error("crosstrade.accounts: account '{0}' is also in paper.accounts; an account is either paper or live")]
    PaperAndLive(String),
    /// The CrossTrade token is written inline instead of by reference.
    #[error(
        "crosstrade.token: give your CrossTrade API token by reference, env:NAME or file:PATH"
    )]
    InlineCrossTradeToken,
    #[error("sources.{0}: source names may only contain letters, digits, '-' and '_'")]
    SourceName(String),
    #[error("sources.{0}.rate_limit: per_second and burst must be at least 1")]
    SourceRateLimitZero(String),
    #[error("sources.{0}.token_field must not be empty")]
    EmptyTokenField(String),
    #[error("sources.{name}.signature_header: '{header}' is not a valid HTTP header name")]
    SignatureHeader { name: String, header: String },
    #[error("sources.{0}.allowed_templates is set but template_field is not: say which alert field names the template")]
    AllowedTemplatesWithoutField(String),
    #[error("sources.{name}.allow_ips: {cause}")]
    AllowIps { name: String, cause: AllowListError },
    #[error("sources.{name}.trusted_proxies: {cause}")]
    TrustedProxies { name: String, cause: AllowListError },
    #[error(transparent)]
    Notify(#[from] NotifyConfigError),
}

impl Config {
    /// Loads `path`, or the embedded default when `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (text, origin, base_dir) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
                    origin: p.display().to_string(),
                    problem: ConfigProblem::Unreadable(e),
                })?;
                let base = p
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."));
                (text, p.display().to_string(), base)
            }
            None => (
                EMBEDDED_CONFIG.to_string(),
                "embedded default config".to_string(),
                PathBuf::from("."),
            ),
        };
        Self::parse(&text, &origin, base_dir)
    }

    pub fn parse(text: &str, origin: &str, base_dir: PathBuf) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError {
            origin: origin.to_string(),
            problem: ConfigProblem::Syntax(e.to_string().trim().replace('\n', " | ")),
        })?;
        cfg.base_dir = base_dir;
        cfg.origin = origin.to_string();
        cfg.validate().map_err(|problem| ConfigError {
            origin: origin.to_string(),
            problem,
        })?;
        Ok(cfg)
    }

    /// Checks what can be checked without touching the disk or the environment.
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        self.listen_addr()?;
        if self.server.workers > crate::runtime::MAX_WORKERS {
            return Err(ConfigProblem::TooManyWorkers(self.server.workers));
        }
        if self.server.body_limit_bytes < 256 {
            return Err(ConfigProblem::BodyLimitTooSmall(
                self.server.body_limit_bytes,
            ));
        }
        let o = &self.limits.outbound;
        if o.per_second == 0 || o.burst == 0 {
            return Err(ConfigProblem::OutboundLimitZero);
        }
        self.journal.validate()?;
        if self.paper.accounts.is_empty() {
            return Err(ConfigProblem::NoPaperAccounts);
        }
        self.instruments()?;
        if let Some(ct) = &self.crosstrade {
            if ct.accounts.is_empty() {
                return Err(ConfigProblem::NoLiveAccounts);
            }
            if let Some(a) = ct.accounts.iter().find(|a| self.paper.accounts.contains(a)) {
                return Err(ConfigProblem::PaperAndLive(a.clone()));
            }
            let t = ct.token.trim();
            if !(t.starts_with("env:") || t.starts_with("file:")) {
                return Err(ConfigProblem::InlineCrossTradeToken);
            }
        }
        for (name, src) in &self.sources {
            if !valid_name(name) {
                return Err(ConfigProblem::SourceName(name.clone()));
            }
            if src.rate_limit.per_second == 0 || src.rate_limit.burst == 0 {
                return Err(ConfigProblem::SourceRateLimitZero(name.clone()));
            }
            if src.token_field.trim().is_empty() {
                return Err(ConfigProblem::EmptyTokenField(name.clone()));
            }
            if !valid_header_name(&src.signature_header) {
                return Err(ConfigProblem::SignatureHeader {
                    name: name.clone(),
                    header: src.signature_header.clone(),
                });
            }
            if src.template_field.is_none() && !src.allowed_templates.is_empty() {
                return Err(ConfigProblem::AllowedTemplatesWithoutField(name.clone()));
            }
            crate::netguard::parse_allow_list(&src.allow_ips).map_err(|cause| {
                ConfigProblem::AllowIps {
                    name: name.clone(),
                    cause,
                }
            })?;
            crate::netguard::parse_allow_list(&src.trusted_proxies).map_err(|cause| {
                ConfigProblem::TrustedProxies {
                    name: name.clone(),
                    cause,
                }
            })?;
        }
        self.notify.validate()?;
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigProblem> {
        self.server
            .listen
            .parse()
            .map_err(|_| ConfigProblem::ListenAddr(self.server.listen.clone()))
    }

    pub fn instruments(&self) -> Result<Instruments, ConfigProblem> {
        if self.instruments.is_empty() {
            return Err(ConfigProblem::NoInstruments);
        }
        Ok(Instruments::from_config(&self.instruments)?)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.base_dir.join(&self.server.data_dir)
    }

    pub fn templates_dir(&self) -> PathBuf {
        self.base_dir.join(&self.server.templates_dir)
    }
}

/// Loads the config (`path`, or the embedded default) and applies the command-line overrides `--listen` and
/// `--data-dir`, then validates again.
pub fn load_config(
    path: Option<&Path>,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<Config> {
    let mut cfg = Config::load(path)?;
    if let Some(l) = listen {
        cfg.server.listen = l;
    }
    if let Some(d) = data_dir {
        // A data dir given on the command line is relative to the working directory, as usual for flags.
        cfg.server.data_dir = std::env::current_dir().map(|cwd| cwd.join(&d)).unwrap_or(d);
    }
    cfg.validate().map_err(|problem| ConfigError {
        origin: cfg.origin.clone(),
        problem,
    })?;
    Ok(cfg)
}

/// Names used in URLs and file names: letters, digits, `-`, `_`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// An HTTP header name (RFC 9110 `token`: letters, digits and ``!#$%&'*+-.^_`|~``).
fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_rfc_tokens() {
        for ok in ["X-Hub-Signature-256", "x-signature", "A!#$%&'*+-.^_`|~9"] {
            assert!(valid_header_name(ok), "{ok}");
        }
        for bad in ["", "X Signature", "x:sig", "x(sig)", "é", "x\"y"] {
            assert!(!valid_header_name(bad), "{bad}");
        }
    }

    #[test]
    fn embedded_default_is_valid() {
        let cfg = Config::load(None).unwrap();
        assert!(!cfg.sources.is_empty());
        assert!(cfg
            .instruments()
            .unwrap()
            .resolve_at("ES1!", crate::clock::Timestamp(0))
            .unwrap()
            .is_some());
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::parse("[server]\nlisten = \"nope\"\n", "t", ".".into()).unwrap_err();
        assert!(e.to_string().contains("server.listen"), "{e}");
        let e = Config::parse("[server]\nbogus = 1\n", "t", ".".into()).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = Config::parse("[server]\nworkers = 5000\n", "t", ".".into()).unwrap_err();
        assert!(
            e.to_string()
                .contains("server.workers must be at most 1024"),
            "{e}"
        );
        let text = EMBEDDED_CONFIG.replace("workers = 0", "workers = 3");
        let cfg = Config::parse(&text, "t", ".".into()).unwrap();
        assert_eq!(cfg.server.workers, 3);
        assert_eq!(Config::load(None).unwrap().server.workers, 0);
        let text = format!(
            "{EMBEDDED_CONFIG}\n[sources.bad]\nauth = \"token\"\nsecret = \"auto\"\ntemplate = \"x\"\nallow_ips = [\"not-an-ip\"]\n"
        );
        let e = Config::parse(&text, "t", ".".into()).unwrap_err();
        assert!(e.to_string().contains("sources.bad.allow_ips"), "{e}");
    }

    /// The embedded config with `extra` appended (later tables of the same name are TOML errors, so
    /// `extra` adds new tables only) and `from` replaced by `to`.
    fn problem(from: &str, to: &str, extra: &str) -> ConfigProblem {
        let text = format!("{}\n{extra}", EMBEDDED_CONFIG.replacen(from, to, 1));
        assert!(from.is_empty() || EMBEDDED_CONFIG.contains(from), "{from}");
        let e = Config::parse(&text, "t", ".".into()).unwrap_err();
        assert_eq!(e.origin, "t");
        e.problem
    }

    #[test]
    fn validation_says_which_key() {
        let p = problem("workers = 0", "workers = 5000", "");
        assert!(matches!(p, ConfigProblem::TooManyWorkers(5000)), "{p:?}");
        let p = problem("listen = \"", "listen = \"x", "");
        assert!(
            matches!(&p, ConfigProblem::ListenAddr(l) if l.starts_with("x")),
            "{p:?}"
        );
        let p = problem("max_records = 100000", "max_records = 10", "");
        assert!(
            matches!(p, ConfigProblem::Journal(JournalConfigError::TooFewRecords)),
            "{p:?}"
        );
        assert_eq!(p.to_string(), "journal.max_records must be at least 1000");
        let p = problem(
            "",
            "",
            "[instruments.\"ES 03-27\"]\ntick_size = -1\npoint_value = 50\n",
        );
        assert!(
            matches!(&p, ConfigProblem::Instruments(InstrumentError::TickSize { name, .. }) if name == "ES 03-27"),
            "{p:?}"
        );
        let source = |body: &str| {
            format!("[sources.x]\nauth = \"token\"\nsecret = \"auto\"\ntemplate = \"t\"\n{body}")
        };
        let p = problem("", "", &source("token_field = \" \""));
        assert!(
            matches!(&p, ConfigProblem::EmptyTokenField(n) if n == "x"),
            "{p:?}"
        );
        assert_eq!(p.to_string(), "sources.x.token_field must not be empty");
        let p = problem("", "", &source("signature_header = \"a b\""));
        assert!(
            matches!(&p, ConfigProblem::SignatureHeader { name, header } if name == "x" && header == "a b"),
            "{p:?}"
        );
        let p = problem("", "", &source("allowed_templates = [\"u\"]"));
        assert!(
            matches!(&p, ConfigProblem::AllowedTemplatesWithoutField(n) if n == "x"),
            "{p:?}"
        );
        let p = problem("", "", &source("trusted_proxies = [\"10.0.0.0/33\"]"));
        assert!(
            matches!(&p, ConfigProblem::TrustedProxies { name, cause: AllowListError::NotAnAddress { entry } }
                if name == "x" && entry == "10.0.0.0/33"),
            "{p:?}"
        );
        let p = problem(
            "",
            "",
            "[crosstrade]\naccounts = [\"Sim101\"]\ntoken = \"env:CT\"\n",
        );
        assert!(
            matches!(&p, ConfigProblem::PaperAndLive(a) if a == "Sim101"),
            "{p:?}"
        );
        assert_eq!(
            p.to_string(),
            "crosstrade.accounts: account 'Sim101' is also in paper.accounts; an account is either paper or live"
        );
        let p = problem(
            "",
            "",
            "[crosstrade]\naccounts = [\"Live1\"]\ntoken = \"abc\"\n",
        );
        assert!(matches!(p, ConfigProblem::InlineCrossTradeToken), "{p:?}");
    }

    #[test]
    fn load_says_unreadable_or_syntax() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");
        let e = Config::load(Some(&missing)).unwrap_err();
        assert!(
            matches!(&e.problem, ConfigProblem::Unreadable(io) if io.kind() == std::io::ErrorKind::NotFound),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with(&format!("{}: cannot read config file: ", missing.display())),
            "{e}"
        );
        let e = Config::parse("[server\n", "t", ".".into()).unwrap_err();
        assert!(matches!(e.problem, ConfigProblem::Syntax(_)), "{e:?}");
        assert!(!e.to_string().contains('\n'), "{e}");
    }

    /// Overrides from the command line are validated too, and the message names where the config came from.
    #[test]
    fn load_config_validates_the_overrides() {
        let e = load_config(None, Some("nope".into()), None).unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "embedded default config: server.listen: 'nope' is not an address:port (e.g. 127.0.0.1:8080)"
        );
        let e = e.downcast::<ConfigError>().unwrap();
        assert!(matches!(e.problem, ConfigProblem::ListenAddr(_)), "{e:?}");
    }
}
