//! The API's errors: a stable `extensions.code` and a message written for the client.
//!
//! `ApiError` deliberately has no `Display`, so it cannot slip into async-graphql's blanket
//! conversion for displayable errors; it becomes a GraphQL error only through the `From` below.
//! Internal detail (SQL, hashing failures) is logged here and replaced by a generic message.

use async_graphql::ErrorExtensions;

use crate::auth::AuthError;
use crate::domain::InvalidInput;
use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadUserInput,
    Conflict,
    RateLimited,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Conflict => "CONFLICT",
            Self::RateLimited => "RATE_LIMITED",
            Self::Internal => "INTERNAL",
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    /// The input field at fault, for BAD_USER_INPUT.
    pub field: Option<&'static str>,
    /// For RATE_LIMITED: whole seconds until a retry may succeed (`extensions.retryAfter`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(Code::NotFound, format!("{what} not found"))
    }

    pub fn bad_input(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            code: Code::BadUserInput,
            message: message.into(),
            field: Some(field),
            retry_after: None,
        }
    }

    /// Logs `detail` and returns an error that tells the client nothing internal.
    pub fn internal(detail: &dyn std::fmt::Debug) -> Self {
        tracing::error!(detail = ?detail, "internal error");
        Self::new(
            Code::Internal,
            "internal error; the server log has the details",
        )
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        async_graphql::Error::new(e.message).extend_with(|_, ext| {
            ext.set("code", e.code.as_str());
            if let Some(field) = e.field {
                ext.set("field", field);
            }
            if let Some(seconds) = e.retry_after {
                ext.set("retryAfter", seconds);
            }
        })
    }
}

impl From<InvalidInput> for ApiError {
    fn from(e: InvalidInput) -> Self {
        Self::bad_input(e.field, e.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::not_found(what),
            StoreError::Conflict(message) => Self::new(Code::Conflict, message),
            StoreError::Invalid(invalid) => invalid.into(),
            StoreError::Db(err) => Self::internal(&err),
        }
    }
}

impl From<StoreError> for async_graphql::Error {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::SignupDisabled => Self::forbidden(
                "sign-up is turned off on this server; ask an administrator for an invitation",
            ),
            AuthError::InvalidCredentials => {
                Self::unauthenticated("the email or the password is wrong")
            }
            AuthError::Locked(until) => Self {
                retry_after: until.map(|(_, left)| {
                    // Whole seconds, rounded up: retrying at once after them succeeds.
                    let left = left.num_milliseconds().max(0);
                    (left as u64).div_ceil(1000).max(1)
                }),
                ..Self::new(
                Code::RateLimited,
                match until {
                    Some((until, _)) => format!(
                        "too many failed attempts: the account is locked until {}; try again then, reset the password by email, or ask an administrator to unlock it",
                        until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ),
                    None => "too many failed attempts: the account is locked for now; try again later, reset the password by email, or ask an administrator to unlock it".to_owned(),
                },
            )
            },
            AuthError::ResetUnavailable => Self::forbidden(
                "password resets by email are not available: this server has no SMTP server configured; ask an administrator",
            ),
            AuthError::SsoRequired(slug) => Self::forbidden(format!(
                "organization `{slug}` requires single sign-on: sign in through its identity provider"
            )),
            AuthError::Invalid(invalid) => invalid.into(),
            AuthError::Store(store) => store.into(),
            AuthError::Internal(detail) => Self::internal(&detail),
        }
    }
}

impl From<AuthError> for async_graphql::Error {
    fn from(e: AuthError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<InvalidInput> for async_graphql::Error {
    fn from(e: InvalidInput) -> Self {
        ApiError::from(e).into()
    }
}
