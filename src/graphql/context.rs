//! What a resolver knows about the request: the caller, the actor recorded in audit events,
//! and the shared services.

use async_graphql::{Context, ID};
use uuid::Uuid;

use super::error::ApiError;
use crate::auth::Caller;
use crate::cache::KeyEntry;
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
    /// Who acts: a person through a session, or an owner through an API key; or
    /// UNAUTHENTICATED.
    fn acting(&self) -> Result<Acting<'_>, ApiError>;
    /// UNAUTHENTICATED unless a session or an API key acts.
    fn authenticated(&self) -> Result<(), ApiError> {
        self.acting().map(|_| ())
    }
    /// The signed-in user and session, or UNAUTHENTICATED; FORBIDDEN for an API key, which
    /// acts in its organization only (what needs a person's account needs a session).
    fn signed_in(&self) -> Result<(&User, &Session), ApiError>;
    /// FORBIDDEN for an impersonation session: what is the subject's own (their sessions)
    /// stays theirs.
    fn not_impersonating(&self) -> Result<(), ApiError> {
        match self.acting()?.impersonator() {
            Some(_) => Err(ApiError::forbidden(
                "an impersonation session cannot do this: it is the person's own",
            )),
            None => Ok(()),
        }
    }
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

    fn acting(&self) -> Result<Acting<'_>, ApiError> {
        acting_of(&self.request().caller)
    }

    fn signed_in(&self) -> Result<(&User, &Session), ApiError> {
        match self.acting()? {
            Acting::Person { user, session } => Ok((user, session)),
            Acting::Key(_) => Err(ApiError::forbidden(
                "an API key acts only in its organization (checks, members, roles, teams, keys): this needs a person's session",
            )),
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

/// Who acts in a request.
#[derive(Clone, Copy)]
pub enum Acting<'a> {
    Person {
        user: &'a User,
        session: &'a Session,
    },
    /// The key's owner, narrowed by the key's scopes, in the key's organization only.
    Key(&'a KeyEntry),
}

impl Acting<'_> {
    /// The principal whose bindings decide: the person, or the key's owner.
    pub fn principal_id(&self) -> Uuid {
        match self {
            Self::Person { user, .. } => user.id,
            Self::Key(key) => key.key.owner.principal_id(),
        }
    }

    /// The one organization the credential acts in, if it is bound to one (an SSO session,
    /// an API key).
    pub fn bound_to(&self) -> Option<Uuid> {
        match self {
            Self::Person { session, .. } => session.organization_id,
            Self::Key(key) => Some(key.key.organization_id),
        }
    }

    /// Who acts as the session's user through an impersonation session, if anyone.
    pub fn impersonator(&self) -> Option<Uuid> {
        match self {
            Self::Person { session, .. } => session.impersonator_id,
            Self::Key(_) => None,
        }
    }

    pub fn reaches(&self, organization_id: Uuid) -> bool {
        self.bound_to().is_none_or(|own| own == organization_id)
    }

    /// The key's scopes, compiled against `catalog` (`None`: no narrowing).
    pub fn scopes(
        &self,
        catalog: &crate::authz::Catalog,
    ) -> Option<std::sync::Arc<[crate::authz::Permission]>> {
        match self {
            Self::Person { .. } => None,
            Self::Key(key) => key.scopes(catalog),
        }
    }
}

/// Who acts for `caller`, or UNAUTHENTICATED.
pub fn acting_of(caller: &Caller) -> Result<Acting<'_>, ApiError> {
    match caller {
        Caller::User { user, session } => Ok(Acting::Person { user, session }),
        Caller::Key(key) => Ok(Acting::Key(key)),
        Caller::Anonymous => Err(ApiError::unauthenticated(
            "sign in first: send `Authorization: Bearer <token>`",
        )),
        Caller::Rejected(why) => Err(ApiError::unauthenticated(*why)),
    }
}

/// Reads an `ID` argument as a UUID, or BAD_USER_INPUT naming the field.
pub fn parse_id(field: &'static str, id: &ID) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id.as_str())
        .map_err(|_| ApiError::bad_input(field, format!("`{}` is not a valid id", id.as_str())))
}
