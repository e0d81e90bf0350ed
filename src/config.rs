//! Typed configuration, loaded once at start and passed down; nothing reads the environment
//! after that.
//!
//! Sources, later ones winning: built-in defaults, an optional TOML file (`--config` or
//! `IAM_CONFIG`), `IAM_*` environment variables (`IAM_DATABASE_URL` sets `database_url`), and
//! command-line flags. An `IAM_*` variable that names no setting is reported at start, so a
//! typo does not go unnoticed.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::Value;
use serde::{Deserialize, Serialize};

/// Environment variables with the `IAM_` prefix that are not settings but are known.
const NON_SETTING_VARS: &[&str] = &["IAM_CONFIG", "IAM_TEST_DATABASE_URL", "IAM_TEST_REDIS_URL"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// `sqlite://path?mode=rwc` (embedded) or `postgres://user@host/db`.
    pub database_url: String,
    /// Pool size; by default 1 for SQLite (one writer at a time) and 10 for PostgreSQL.
    pub database_max_connections: Option<u32>,
    /// Redis: the shared cache (L2) and the change events between instances. Without it the
    /// instance runs alone, with its in-process cache.
    pub redis_url: Option<String>,
    /// Most principals' facts the in-process cache (L1) holds.
    pub cache_max_entries: u64,
    /// The profile: the name of a shipped one (`mechamental`, `mar`, `mentiko`, `inkeep`,
    /// `m3forge`) or the path of a TOML file (docs/profiles.md).
    pub profile: String,
    /// Deprecated (use a profile): a TOML file with a bare catalog (`[types]` table of resource
    /// type = `[actions]`) for the default profile's built-in roles.
    pub permission_catalog: Option<std::path::PathBuf>,
    /// Whether anyone may create an account with `signUp`.
    pub allow_signup: bool,
    /// How long a session lasts after sign-in (e.g. `14d`, `12h`).
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// The longest lifetime an API key may be given (e.g. `366d`); every key has an expiry.
    #[serde(with = "humantime_serde")]
    pub api_key_max_ttl: Duration,
    /// How often this instance writes the API key uses it saw (last use, client IPs) and
    /// looks for keys to warn about or record as expired (e.g. `1m`).
    #[serde(with = "humantime_serde")]
    pub api_key_jobs_interval: Duration,
    /// How long an invitation can be accepted when the inviter does not say (e.g. `7d`; at
    /// most 30 days). An inviter may choose 1 to 30 days per invitation.
    #[serde(with = "humantime_serde")]
    pub invitation_ttl: Duration,
    /// Base URL of the frontend or gateway, for links in invitations and password resets.
    pub public_url: String,
    /// SMTP server for invitation and password-reset emails: `smtps://user:pass@host:465`,
    /// `smtp://host:587?tls=required` (STARTTLS), or `smtp://host:25` (plain, local relays
    /// only). Without it, invitations return their link for the admin to share, and password
    /// resets cannot be sent.
    pub smtp_url: Option<String>,
    /// The sender of those emails.
    pub smtp_from: String,
    /// Where a browser lands after an SSO sign-in: the session token follows in the URL
    /// fragment (`#token=…&expires_at=…`, or `#error=…`). `{public_url}/` when unset.
    pub sso_redirect_url: Option<String>,
    /// 32 bytes in base64: the key that encrypts secrets at rest (SSO client secrets). Without
    /// it, SSO providers that need a secret cannot be configured.
    pub secret_key: Option<String>,
    /// Failed sign-ins in a row that lock an account.
    pub lockout_threshold: u32,
    /// How long a locked account stays locked (e.g. `15m`).
    #[serde(with = "humantime_serde")]
    pub lockout_duration: Duration,
    /// How long a password-reset link works (e.g. `30m`).
    #[serde(with = "humantime_serde")]
    pub password_reset_ttl: Duration,
    /// How long an email-verification link works (e.g. `2d`).
    #[serde(with = "humantime_serde")]
    pub email_verification_ttl: Duration,
    /// Who may create organizations: `anyone` signed in (self-service), or only `operators`.
    pub org_creation: OrgCreation,
    /// The platform operators: emails of accounts that may create organizations when
    /// `org_creation` is `operators` (their email must be verified).
    pub platform_operators: Vec<String>,
    /// The DNS server (`ip:port`) that domain verifications ask; the system's resolver when
    /// unset.
    pub dns_resolver: Option<std::net::SocketAddr>,
    /// Whether SSO issuer and metadata URLs (and every address they lead to) may be on
    /// private networks: loopback, RFC 1918, link-local, unique-local, carrier-grade NAT and
    /// other reserved ranges. Off: only public addresses are fetched (an organization admin
    /// must not reach the gateway's own network). Turn on for on-premises identity providers.
    pub sso_allow_private_networks: bool,
    /// Whether GraphQL introspection (and so GraphiQL's docs) is allowed.
    pub graphql_introspection: bool,
    /// Deepest nesting a GraphQL query may have.
    pub graphql_max_depth: usize,
    /// Largest cost a GraphQL query may have, computed before it runs: one per field, and
    /// every list multiplies what it selects by its page size (`first`, `limit`), or by 20 for
    /// a list without a page argument (see `graphql/cost.rs`). A query over it is refused
    /// with BAD_USER_INPUT naming its cost.
    pub graphql_max_complexity: usize,
    /// Whether the fast path serves repeated requests: a query text that ran cleanly is
    /// validated in the fast mode when it comes back with variables of a shape seen before
    /// (`http/documents.rs`), and a plain `check` of the caller is answered without the
    /// executor (`http/prepared.rs`). Off, every request gets the full validation and the
    /// executor: slower, and a way to rule the fast path out when something looks wrong.
    pub prepared_check: bool,
    /// Largest request body accepted, in bytes; also the largest WebSocket message.
    pub max_body_bytes: usize,
    /// How long a WebSocket connection may take to send `connection_init` (e.g. `10s`).
    #[serde(with = "humantime_serde")]
    pub ws_connection_init_timeout: Duration,
    /// Most operations (subscriptions, queries, mutations) open at once on one WebSocket
    /// connection.
    pub ws_max_subscriptions: usize,
    /// An address of its own for `/metrics` (e.g. `127.0.0.1:9090`, a private interface);
    /// the API's port then serves no metrics.
    pub metrics_listen: Option<SocketAddr>,
    /// Without `metrics_listen`: the bearer token `/metrics` on the API's port requires (at
    /// least 16 characters). With neither, no metrics are served.
    pub metrics_token: Option<String>,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Credential checks (sign-in, sign-up, password reset requests and redemptions, password
    /// change, invitation acceptance, email verification) one client address may make per
    /// minute, on this instance; an IPv6 client's address is its /64.
    pub rate_limit_ip_per_minute: u32,
    /// How many of those an address may make at once before the per-minute rate applies.
    pub rate_limit_ip_burst: u32,
    /// Credential checks that may name one account (its normalized email, whether or not it
    /// exists) per minute, on this instance, from any address.
    pub rate_limit_account_per_minute: u32,
    /// How many of those may come at once before the per-minute rate applies.
    pub rate_limit_account_burst: u32,
    /// `text` or `json` logs.
    pub log_format: LogFormat,
}

/// Who may call `createOrganization`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OrgCreation {
    /// Anyone signed in with a password session (self-service deployments).
    Anyone,
    /// Only the accounts named in `platform_operators` (closed deployments).
    Operators,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://iam-gateway.db?mode=rwc".to_owned(),
            database_max_connections: None,
            redis_url: None,
            cache_max_entries: 100_000,
            profile: "mechamental".to_owned(),
            permission_catalog: None,
            allow_signup: true,
            session_ttl: Duration::from_secs(14 * 24 * 3600),
            api_key_max_ttl: Duration::from_secs(366 * 24 * 3600),
            api_key_jobs_interval: Duration::from_secs(60),
            invitation_ttl: Duration::from_secs(7 * 24 * 3600),
            public_url: "http://127.0.0.1:8080".to_owned(),
            smtp_url: None,
            smtp_from: "iam-gateway <no-reply@localhost>".to_owned(),
            secret_key: None,
            sso_redirect_url: None,
            lockout_threshold: 5,
            lockout_duration: Duration::from_secs(15 * 60),
            password_reset_ttl: Duration::from_secs(30 * 60),
            email_verification_ttl: Duration::from_secs(2 * 24 * 3600),
            org_creation: OrgCreation::Anyone,
            platform_operators: Vec::new(),
            dns_resolver: None,
            sso_allow_private_networks: false,
            graphql_introspection: true,
            graphql_max_depth: 16,
            graphql_max_complexity: 20_000,
            prepared_check: true,
            max_body_bytes: 1 << 20,
            ws_connection_init_timeout: Duration::from_secs(10),
            ws_max_subscriptions: 100,
            metrics_listen: None,
            metrics_token: None,
            trust_forwarded_for: false,
            rate_limit_ip_per_minute: 30,
            rate_limit_ip_burst: 10,
            rate_limit_account_per_minute: 10,
            rate_limit_account_burst: 5,
            log_format: LogFormat::Text,
        }
    }
}

/// The setting names, derived from the defaults so that the list cannot drift.
fn setting_names() -> Vec<String> {
    match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// The configuration and what was noticed while loading it.
pub struct Loaded {
    pub config: Config,
    /// `IAM_*` variables that name no setting.
    pub unknown_vars: Vec<String>,
}

impl Config {
    /// Loads defaults, then `file` (if any), then the process environment, then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Loaded, ConfigError> {
        Self::load_from(file, std::env::vars(), overrides)
    }

    /// As [`Config::load`], with the environment given explicitly (tests).
    pub fn load_from(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Loaded, ConfigError> {
        let names = setting_names();
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with("IAM_"))
            .collect();
        let unknown_vars = vars
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| {
                !NON_SETTING_VARS.contains(&k.as_str())
                    && !names.iter().any(|n| k[4..].eq_ignore_ascii_case(n))
            })
            .collect();
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            figment = figment.merge(Toml::file_exact(path));
        }
        // As figment's `Env` provider does, values are read leniently: `false` is a bool,
        // `10` a number, anything else a string.
        let mut given = Given {
            file,
            ..Given::default()
        };
        for (key, raw) in vars {
            let name = key[4..].to_ascii_lowercase();
            if names.contains(&name) {
                let value: Value = raw.parse().unwrap_or_else(|never| match never {});
                figment = figment.merge(Serialized::default(&name, value));
                given.env.push((name, raw));
            }
        }
        if let Ok(serde_json::Value::Object(flags)) = serde_json::to_value(overrides) {
            given.flags = flags.keys().cloned().collect();
        }
        figment = figment.merge(Serialized::defaults(overrides));
        Ok(Loaded {
            config: figment.extract().map_err(|e| given.explain(e))?,
            unknown_vars,
        })
    }
}

impl Config {
    /// Checks the settings that have bounds; the message names the setting.
    pub fn check(&self) -> Result<(), String> {
        const DAY: u64 = 24 * 3600;
        if self.invitation_ttl.is_zero() || self.invitation_ttl.as_secs() > 30 * DAY {
            return Err("`invitation_ttl` must be longer than zero and at most 30 days".to_owned());
        }
        if self.permission_catalog.is_some() && self.profile != "mechamental" {
            return Err(format!(
                "`permission_catalog` replaces the catalog of the default profile only; with `profile` = `{}` leave it out",
                self.profile
            ));
        }
        if self.api_key_max_ttl.as_secs() < 3600 {
            return Err("`api_key_max_ttl` must be at least one hour".to_owned());
        }
        if self.api_key_jobs_interval.is_zero() {
            return Err("`api_key_jobs_interval` must be longer than zero".to_owned());
        }
        if self.lockout_threshold == 0 {
            return Err("`lockout_threshold` must be at least 1".to_owned());
        }
        if self.email_verification_ttl.is_zero() {
            return Err("`email_verification_ttl` must be longer than zero".to_owned());
        }
        if self.password_reset_ttl.is_zero() {
            return Err("`password_reset_ttl` must be longer than zero".to_owned());
        }
        if self.metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err("`metrics_token` must be at least 16 characters".to_owned());
        }
        if self.ws_max_subscriptions == 0 {
            return Err("`ws_max_subscriptions` must be at least 1".to_owned());
        }
        if self.ws_connection_init_timeout.is_zero() {
            return Err("`ws_connection_init_timeout` must be longer than zero".to_owned());
        }
        for (name, value) in [
            ("rate_limit_ip_per_minute", self.rate_limit_ip_per_minute),
            ("rate_limit_ip_burst", self.rate_limit_ip_burst),
            (
                "rate_limit_account_per_minute",
                self.rate_limit_account_per_minute,
            ),
            ("rate_limit_account_burst", self.rate_limit_account_burst),
        ] {
            if value == 0 {
                return Err(format!("`{name}` must be at least 1"));
            }
        }
        Ok(())
    }
}

/// A configuration that cannot be loaded, in words for the operator: each bad setting, where
/// it was given (variable, file or flag), the value and what is expected.
#[derive(Debug)]
pub struct ConfigError(Vec<String>);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

impl std::error::Error for ConfigError {}

/// Where the settings were given, to say where a bad one came from.
#[derive(Default)]
struct Given<'a> {
    file: Option<&'a Path>,
    /// `(setting, raw value)` of each `IAM_*` variable that names a setting.
    env: Vec<(String, String)>,
    /// The settings given as flags.
    flags: Vec<String>,
}

impl Given<'_> {
    fn explain(&self, error: figment::Error) -> ConfigError {
        ConfigError(error.into_iter().map(|e| self.problem(&e)).collect())
    }

    /// One bad setting, in words. A later source wins, so the value came from the flag if one
    /// was given, else from the variable, else from the file.
    fn problem(&self, e: &figment::Error) -> String {
        use figment::error::Kind;
        let key = e.path.join(".");
        let file = self.file.map(|f| f.display().to_string());
        let (source, shown) = if self.flags.contains(&key) {
            (format!("the --{} flag", key.replace('_', "-")), false)
        } else if let Some((_, raw)) = self.env.iter().find(|(k, _)| *k == key) {
            (format!("IAM_{}={raw:?}", key.to_ascii_uppercase()), true)
        } else if let Some(file) = &file {
            (format!("`{key}` in {file}"), false)
        } else {
            (format!("`{key}`"), false)
        };
        let got = |actual: &figment::error::Actual| {
            if shown {
                String::new()
            } else {
                format!("got {actual}, ")
            }
        };
        match &e.kind {
            Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
                format!("{source}: {}expected {}", got(actual), in_words(expected))
            }
            Kind::UnknownVariant(value, options) => format!(
                "{source}: `{value}` is not one of {}",
                options
                    .iter()
                    .map(|o| format!("`{o}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Kind::UnknownField(name, _) => format!(
                "{}: `{name}` is not a setting (the settings are listed in the README)",
                file.as_deref().unwrap_or("the configuration")
            ),
            Kind::Message(message) if key.is_empty() => format!(
                "{}: {message}",
                file.as_deref().unwrap_or("the configuration")
            ),
            Kind::Message(message) if message.contains("socket address") => {
                format!("{source}: expected {}", in_words("socket address"))
            }
            other => format!("{source}: {other}"),
        }
    }
}

/// What serde expected, as an operator would say it.
fn in_words(expected: &str) -> String {
    match expected {
        "a duration" => "a duration such as 30s, 15m, 12h or 14d".to_owned(),
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "socket address" => "an address and port such as 127.0.0.1:8080".to_owned(),
        other => other.to_owned(),
    }
}

/// Settings given as command-line flags; `None` leaves the setting to the other sources.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_then_env_then_flags() {
        let loaded = Config::load_from(
            None,
            vars(&[
                ("IAM_DATABASE_URL", "sqlite::memory:"),
                ("IAM_ALLOW_SIGNUP", "false"),
                ("IAM_SESSION_TTL", "12h"),
                ("IAM_LISTEN", "127.0.0.1:9000"),
                ("HOME", "/root"),
            ]),
            &Overrides {
                listen: Some(SocketAddr::from(([127, 0, 0, 1], 9100))),
                database_url: None,
            },
        )
        .unwrap();
        assert_eq!(loaded.config.database_url, "sqlite::memory:");
        assert!(!loaded.config.allow_signup);
        assert_eq!(loaded.config.session_ttl, Duration::from_secs(12 * 3600));
        assert_eq!(loaded.config.listen.port(), 9100);
        assert!(loaded.unknown_vars.is_empty());
    }

    #[test]
    fn unknown_iam_vars_are_reported() {
        let loaded = Config::load_from(
            None,
            vars(&[("IAM_DATABSE_URL", "x"), ("IAM_CONFIG", "/etc/iam.toml")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(loaded.unknown_vars, vec!["IAM_DATABSE_URL".to_owned()]);
    }

    fn error_of(file: Option<&Path>, pairs: &[(&str, &str)], overrides: &Overrides) -> String {
        match Config::load_from(file, vars(pairs), overrides) {
            Ok(_) => panic!("loaded"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_values_name_the_setting_the_value_and_what_is_expected() {
        let none = Overrides::default();
        assert_eq!(
            error_of(None, &[("IAM_SESSION_TTL", "banana")], &none),
            r#"IAM_SESSION_TTL="banana": expected a duration such as 30s, 15m, 12h or 14d"#
        );
        assert_eq!(
            error_of(None, &[("IAM_GRAPHQL_MAX_DEPTH", "-3")], &none),
            r#"IAM_GRAPHQL_MAX_DEPTH="-3": expected a whole number, 0 or more"#
        );
        assert_eq!(
            error_of(None, &[("IAM_ORG_CREATION", "everyone")], &none),
            r#"IAM_ORG_CREATION="everyone": `everyone` is not one of `anyone`, `operators`"#
        );
        assert_eq!(
            error_of(None, &[("IAM_LISTEN", "localhost")], &none),
            r#"IAM_LISTEN="localhost": expected an address and port such as 127.0.0.1:8080"#
        );
        let dir = std::env::temp_dir().join(format!("iam-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.toml");
        std::fs::write(&file, "allow_signup = \"maybe\"\nsesion_ttl = \"1d\"\n").unwrap();
        let message = error_of(Some(&file), &[], &none);
        let shown = file.display();
        assert!(
            message.contains(&format!(
                "`allow_signup` in {shown}: got string \"maybe\", expected true or false"
            )) || message.contains(&format!("{shown}: `sesion_ttl` is not a setting")),
            "{message}"
        );
        std::fs::write(&file, "allow_signup = [").unwrap();
        let message = error_of(Some(&file), &[], &none);
        assert!(message.starts_with(&format!("{shown}: ")), "{message}");
        std::fs::remove_dir_all(&dir).unwrap();
        for message in [
            error_of(None, &[("IAM_SESSION_TTL", "banana")], &none),
            error_of(None, &[("IAM_LISTEN", "localhost")], &none),
        ] {
            assert!(
                !message.contains("figment") && !message.contains(".rs:"),
                "{message}"
            );
        }
    }
}
