//! Authorization of the API itself, in its provisional form.
//!
//! Every resolver that reveals or changes organization data calls [`authorize`] with the node it
//! touches and the permission it needs (named as in SEMANTICS.md, e.g. `workspace:*:manage`).
//! Until the decision engine lands, the rule is: an active membership grants reading the
//! hierarchy and the member list (`workspace:*:read`, `members:*:read`), and the built-in Admin
//! role at the organization grants everything. Anything else (audit, invitations, changes)
//! needs Admin. Callers that are
//! not active members are told NOT_FOUND, so that they learn nothing of other organizations.

use async_graphql::Context;
use chrono::Utc;
use uuid::Uuid;

use super::context::ContextExt;
use super::error::ApiError;
use crate::domain::{MemberStatus, User};

/// A permission the API needs, written `resource:scope:action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission(pub &'static str);

impl Permission {
    pub const WORKSPACE_READ: Self = Self("workspace:*:read");
    pub const WORKSPACE_WRITE: Self = Self("workspace:*:write");
    pub const WORKSPACE_MANAGE: Self = Self("workspace:*:manage");
    pub const MEMBERS_READ: Self = Self("members:*:read");
    pub const MEMBERS_INVITE: Self = Self("members:*:invite");
    pub const AUDIT_READ: Self = Self("audit:*:read");

    /// What every active member holds in the provisional model.
    fn granted_to_every_member(self) -> bool {
        self == Self::WORKSPACE_READ || self == Self::MEMBERS_READ
    }
}

/// Proof that the caller passed a check in one organization.
#[derive(Debug, Clone, Copy)]
pub struct Granted {
    pub organization_id: Uuid,
    pub user_id: Uuid,
}

/// Allows the signed-in caller `permission` in organization `organization_id`, or explains why
/// not. `what` names the thing for a NOT_FOUND answer (`organization`, `workspace`, ...).
pub async fn authorize(
    ctx: &Context<'_>,
    organization_id: Uuid,
    permission: Permission,
    what: &str,
) -> Result<Granted, ApiError> {
    let (user, _) = ctx.signed_in()?;
    authorize_user(ctx, user, organization_id, permission, what).await
}

async fn authorize_user(
    ctx: &Context<'_>,
    user: &User,
    organization_id: Uuid,
    permission: Permission,
    what: &str,
) -> Result<Granted, ApiError> {
    let access = ctx
        .services()
        .store
        .org_access(organization_id, user.id, Utc::now())
        .await?;
    tracing::Span::current().record("org_id", tracing::field::display(organization_id));
    if access.status != Some(MemberStatus::Active) {
        return Err(ApiError::not_found(what));
    }
    if permission.granted_to_every_member() || access.org_admin {
        return Ok(Granted {
            organization_id,
            user_id: user.id,
        });
    }
    Err(ApiError::forbidden(format!(
        "you need the `{}` permission here to do this",
        permission.0
    )))
}
