//! What the store reports. It has no `Display`: a database error can only reach a client
//! through the GraphQL layer's conversion, which logs the detail and shows `INTERNAL`.

use sea_orm::{DbErr, SqlErr};

use crate::domain::InvalidInput;

#[derive(Debug)]
pub enum StoreError {
    /// The named thing does not exist (or is not visible to the caller).
    NotFound(&'static str),
    /// The change clashes with the current state; the message is written for the client.
    Conflict(String),
    /// The change is not allowed as asked; the message is written for the client.
    Invalid(InvalidInput),
    /// Anything else from the database. Its detail is for the logs only.
    Db(DbErr),
}

impl StoreError {
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }

    /// Maps a unique-constraint violation to `Conflict(message)`, and anything else to `Db`.
    pub(crate) fn unique_or_db(err: DbErr, message: impl FnOnce() -> String) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => Self::Conflict(message()),
            _ => Self::Db(err),
        }
    }
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        Self::Db(err)
    }
}

impl From<InvalidInput> for StoreError {
    fn from(err: InvalidInput) -> Self {
        Self::Invalid(err)
    }
}

/// Why the database at `url` could not be opened, in words for the operator. For a server
/// that never answered, a plain TCP connection says whether anything listens there.
pub async fn connect_failure(url: &str, error: &StoreError) -> String {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;
    let StoreError::Db(DbErr::Conn(cause)) = error else {
        return match error {
            StoreError::Db(e) => e.to_string(),
            other => format!("{other:?}"),
        };
    };
    match cause {
        RuntimeErr::SqlxError(e) => match e.as_ref() {
            Sqlx::PoolTimedOut => match server_of(url) {
                Some(server) => format!("no connection could be made: {}", probe(&server).await),
                None => "no connection could be made".to_owned(),
            },
            Sqlx::Protocol(e) => format!("the server there does not speak PostgreSQL ({e})"),
            Sqlx::Io(e) => format!("cannot reach the server: {e}"),
            Sqlx::Tls(e) => format!("the TLS handshake failed: {e}"),
            Sqlx::Configuration(e) => format!("the URL is not valid: {e}"),
            Sqlx::Database(e) if url.starts_with("sqlite") => format!(
                "{} (does its directory exist, may this process write there, and does the URL end in `?mode=rwc` so that the file is created?)",
                e.message()
            ),
            Sqlx::Database(e) => format!("the server refused: {}", e.message()),
            other => other.to_string(),
        },
        RuntimeErr::Internal(message) if message.contains("no supporting driver") => {
            "this is neither a SQLite (`sqlite://path?mode=rwc`) nor a PostgreSQL (`postgres://user@host/db`) URL".to_owned()
        }
        RuntimeErr::Internal(message) => message.clone(),
    }
}

/// `url` without its password, to be shown.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// `host:port` of a PostgreSQL URL.
fn server_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !parsed.scheme().starts_with("postgres") {
        return None;
    }
    let host = parsed.host_str()?;
    Some(format!("{host}:{}", parsed.port().unwrap_or(5432)))
}

/// Whether anything accepts a TCP connection at `server`, in words.
async fn probe(server: &str) -> String {
    let attempt = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        tokio::net::TcpStream::connect(server),
    )
    .await;
    match attempt {
        Err(_) => format!("{server} does not answer (is a firewall dropping the connection?)"),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!(
                "nothing listens at {server} (connection refused): is PostgreSQL running there?"
            )
        }
        Ok(Err(e)) => format!("cannot connect to {server}: {e}"),
        Ok(Ok(_)) => format!(
            "{server} accepts connections but the server did not complete the PostgreSQL start-up in time"
        ),
    }
}
