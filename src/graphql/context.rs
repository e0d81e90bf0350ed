//! What a resolver knows about the request: the caller, the actor recorded in audit events,
//! and the shared services.

use async_graphql::{Context, ID};
use uuid::Uuid;

use super::error::ApiError;
use crate::auth::Caller;
use crate::domain::{Actor, Session, User};
use crate::services::Services;

/// Per-request data, put into the GraphQL request by the HTTP handler.
pub struct RequestCtx {
    pub caller: Caller,
    pub actor: Actor,
}

/// Accessors on async-graphql's `Context`.
pub trait ContextExt {
    fn services(&self) -> &Services;
    fn request(&self) -> &RequestCtx;
    /// The signed-in user and session, or UNAUTHENTICATED.
    fn signed_in(&self) -> Result<(&User, &Session), ApiError>;
    /// As [`ContextExt::signed_in`], for what acts on the whole account (its password, its
    /// sessions, new organizations, invitations): FORBIDDEN for a session opened through an
    /// organization's identity provider, which acts only in that organization.
    fn account_wide(&self) -> Result<(&User, &Session), ApiError>;
    /// The store without a check in hand: for what belongs to no organization (the caller's
    /// own account and sessions, tokens that are their own proof) or lookups whose result is
    /// only used to authorize. Every call says why in an `// INVARIANT:` comment.
    fn unchecked_store(&self) -> &crate::store::Store;
}

impl ContextExt for Context<'_> {
    fn services(&self) -> &Services {
        self.data_unchecked::<Services>()
    }

    fn request(&self) -> &RequestCtx {
        self.data_unchecked::<RequestCtx>()
    }

    fn signed_in(&self) -> Result<(&User, &Session), ApiError> {
        match &self.request().caller {
            Caller::User { user, session } => Ok((&**user, &**session)),
            Caller::Anonymous => Err(ApiError::unauthenticated(
                "sign in first: send `Authorization: Bearer <token>`",
            )),
            Caller::Rejected(why) => Err(ApiError::unauthenticated(*why)),
        }
    }

    #[allow(clippy::disallowed_methods)]
    fn unchecked_store(&self) -> &crate::store::Store {
        self.services().store()
    }

    fn account_wide(&self) -> Result<(&User, &Session), ApiError> {
        let (user, session) = self.signed_in()?;
        if session.organization_id.is_some() {
            return Err(ApiError::forbidden(
                "this session was opened through an organization's identity provider and acts only in that organization: sign in with your password to do this",
            ));
        }
        Ok((user, session))
    }
}

/// Reads an `ID` argument as a UUID, or BAD_USER_INPUT naming the field.
pub fn parse_id(field: &'static str, id: &ID) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id.as_str())
        .map_err(|_| ApiError::bad_input(field, format!("`{}` is not a valid id", id.as_str())))
}
