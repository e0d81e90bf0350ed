//! An account administered by its owner (its name, its deletion) and, for an account an
//! organization manages, by that organization's admins (whether a reset link may be issued).

use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, TransactionTrait,
    sea_query::Expr,
};
use serde_json::json;
use uuid::Uuid;

use entity::{credential, membership, organization, session, sso_identity, user};

use super::audit::{self, Entry};
use super::{Store, StoreError};
use crate::domain::{Actor, Name, User};

/// What deleting an account took with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletedAccount {
    pub memberships_removed: u64,
    pub sessions_revoked: u64,
}

impl Store {
    /// Renames the live account `user_id`.
    pub async fn rename_user(
        &self,
        user_id: Uuid,
        name: &Name,
        actor: &Actor,
    ) -> Result<User, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let before = live(&txn, user_id).await?;
        user::Entity::update_many()
            .col_expr(user::Column::Name, Expr::value(name.as_str()))
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: None,
                action: "user.update",
                target_type: "user",
                target_id: Some(user_id),
                before: Some(json!({ "name": before.name })),
                after: Some(json!({ "name": name.as_str() })),
            },
        )
        .await?;
        txn.commit().await?;
        // Cached sessions carry the account: they are read again, with the new name.
        self.sessions_revoked(user_id, 1);
        Ok(User {
            name: name.as_str().to_owned(),
            ..before.into()
        })
    }

    /// Deletes the account `user_id`: it leaves every organization (as a removal would: its
    /// bindings, team memberships and personal keys go), every session it has or opened as
    /// an impersonator is revoked, its password and SSO links go, and its row keeps only its
    /// id (the email is freed). Audit events keep the actor's id and email as they were.
    /// Refused, with nothing changed, while it is an organization's last effective admin.
    pub async fn delete_account(
        &self,
        user_id: Uuid,
        actor: &Actor,
    ) -> Result<DeletedAccount, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let account = live(&txn, user_id).await?;
        // In one order (organization, then its chain heads), so that two of these never wait
        // on each other.
        let memberships = membership::Entity::find()
            .filter(membership::Column::UserId.eq(user_id))
            .order_by_asc(membership::Column::OrganizationId)
            .all(&txn)
            .await?;
        let mut events = Vec::with_capacity(memberships.len());
        let mut sessions_revoked = 0;
        for m in &memberships {
            let removed = match self
                .remove_member_in(
                    &txn,
                    m.organization_id,
                    user_id,
                    Some("account_deleted"),
                    actor,
                )
                .await
            {
                Ok(removed) => removed,
                Err(StoreError::Conflict(_)) => {
                    let slug = organization::Entity::find_by_id(m.organization_id)
                        .one(&txn)
                        .await?
                        .map_or_else(|| m.organization_id.to_string(), |o| o.slug);
                    return Err(StoreError::conflict(format!(
                        "you are the last effective admin of organization `{slug}`: make another member Admin there before deleting your account"
                    )));
                }
                Err(e) => return Err(e),
            };
            sessions_revoked += removed.sessions_revoked;
            events.push(removed.event);
        }
        sessions_revoked += super::sessions::revoke_sessions_of(&txn, user_id, None, now).await?;
        // Impersonations they opened end with them.
        let impersonations = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(now))
            .filter(session::Column::ImpersonatorId.eq(user_id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        credential::Entity::delete_many()
            .filter(credential::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        sso_identity::Entity::delete_many()
            .filter(sso_identity::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        super::password_resets::retire_resets(&txn, user_id, now).await?;
        super::email_verifications::retire_all_links(&txn, user_id, now).await?;
        user::Entity::update_many()
            // The address is free for a new account; `.invalid` is reserved (RFC 2606).
            .col_expr(
                user::Column::Email,
                Expr::value(format!("deleted-{user_id}@deleted.invalid")),
            )
            .col_expr(user::Column::Name, Expr::value("Deleted account"))
            .col_expr(
                user::Column::EmailVerifiedAt,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .col_expr(
                user::Column::ManagedByOrganizationId,
                Expr::value(Option::<Uuid>::None),
            )
            .col_expr(user::Column::DeletedAt, Expr::value(now))
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: None,
                action: "user.delete",
                target_type: "user",
                target_id: Some(user_id),
                before: Some(json!({
                    "email": account.email,
                    "name": account.name,
                    "organizations": memberships.iter().map(|m| m.organization_id).collect::<Vec<_>>(),
                })),
                after: Some(json!({
                    "sessions_revoked": sessions_revoked,
                    "impersonations_ended": impersonations.rows_affected,
                })),
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(&events);
        self.sessions_revoked(user_id, 1);
        Ok(DeletedAccount {
            memberships_removed: memberships.len() as u64,
            sessions_revoked,
        })
    }

    /// The live account `user_id` if `organization_id` manages it: the account was created
    /// through that organization's invitation or SSO, is a member there and of no other
    /// organization. `None` otherwise.
    pub async fn managed_account(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<User>, StoreError> {
        let Some(account) = user::Entity::find_by_id(user_id)
            .filter(user::Column::DeletedAt.is_null())
            .filter(user::Column::ManagedByOrganizationId.eq(organization_id))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let here = membership::Entity::find()
            .filter(membership::Column::UserId.eq(user_id))
            .filter(membership::Column::OrganizationId.eq(organization_id))
            .count(&self.db)
            .await?;
        let elsewhere = membership::Entity::find()
            .filter(membership::Column::UserId.eq(user_id))
            .filter(membership::Column::OrganizationId.ne(organization_id))
            .count(&self.db)
            .await?;
        Ok((here == 1 && elsewhere == 0).then(|| account.into()))
    }
}

/// Whether `user_id` is still managed by the organization that created it: a member of no
/// other organization.
pub(super) async fn still_managed(
    txn: &sea_orm::DatabaseTransaction,
    user_id: Uuid,
) -> Result<bool, StoreError> {
    let Some(org) = live(txn, user_id).await?.managed_by_organization_id else {
        return Ok(false);
    };
    let elsewhere = membership::Entity::find()
        .filter(membership::Column::UserId.eq(user_id))
        .filter(membership::Column::OrganizationId.ne(org))
        .count(txn)
        .await?;
    Ok(elsewhere == 0)
}

/// The live account `user_id`, read in `txn`; NOT_FOUND (`account`) when it is gone.
async fn live(
    txn: &sea_orm::DatabaseTransaction,
    user_id: Uuid,
) -> Result<user::Model, StoreError> {
    user::Entity::find_by_id(user_id)
        .filter(user::Column::DeletedAt.is_null())
        .one(txn)
        .await?
        .ok_or(StoreError::NotFound("account"))
}
