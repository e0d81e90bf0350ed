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
