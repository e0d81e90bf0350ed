//! Invitations into an organization (the basic form: email in, single-use token out).

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
    sea_query::Expr,
};
use serde_json::json;
use uuid::Uuid;

use entity::{invitation, membership};

use super::audit::{self, Entry};
use super::revision::{self, Change};
use super::{Store, StoreError};
use crate::domain::{
    Actor, Email, InvalidInput, Invitation, InvitationStatus, MemberStatus, Organization, User,
};

/// What an admin asks for when inviting.
pub struct NewInvitation<'a> {
    pub organization_id: Uuid,
    pub email: &'a Email,
    pub token_hash: String,
    pub ttl: Duration,
}

impl Invitation {
    fn from_model(m: invitation::Model, now: DateTime<Utc>) -> Self {
        Self {
            status: InvitationStatus::from_stored(&m.status, m.expires_at, now),
            id: m.id,
            organization_id: m.organization_id,
            email: m.email,
            invited_by: m.invited_by,
            created_at: m.created_at,
            expires_at: m.expires_at,
            accepted_at: m.accepted_at,
        }
    }
}

impl Store {
    /// Creates a pending invitation. Earlier pending invitations of the same email into the
    /// same organization are revoked, so that only the newest link works.
    pub async fn create_invitation(
        &self,
        new: NewInvitation<'_>,
        actor: &Actor,
    ) -> Result<Invitation, StoreError> {
        let txn = self.db.begin().await?;
        let now = Utc::now();
        if let Some(existing) = super::users::user_id_by_email(&txn, new.email).await? {
            let member = membership::Entity::find()
                .filter(membership::Column::OrganizationId.eq(new.organization_id))
                .filter(membership::Column::UserId.eq(existing))
                .one(&txn)
                .await?;
            if member.is_some() {
                return Err(StoreError::conflict(format!(
                    "`{}` is already a member of this organization",
                    new.email.as_str()
                )));
            }
        }
        invitation::Entity::update_many()
            .col_expr(invitation::Column::Status, Expr::value("revoked"))
            .filter(invitation::Column::OrganizationId.eq(new.organization_id))
            .filter(invitation::Column::Email.eq(new.email.as_str()))
            .filter(invitation::Column::Status.eq("pending"))
            .exec(&txn)
            .await?;
        let id = Uuid::now_v7();
        let created = invitation::Entity::insert(invitation::ActiveModel {
            id: Set(id),
            organization_id: Set(new.organization_id),
            email: Set(new.email.as_str().to_owned()),
            token_hash: Set(new.token_hash),
            status: Set("pending".to_owned()),
            invited_by: Set(actor.user_id),
            created_at: Set(now),
            expires_at: Set(now + new.ttl),
            accepted_at: Set(None),
            accepted_by: Set(None),
            ..Default::default()
        })
        .exec_with_returning(&txn)
        .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(new.organization_id),
                action: "invitation.create",
                target_type: "invitation",
                target_id: Some(id),
                before: None,
                after: Some(json!({ "email": created.email, "expires_at": created.expires_at })),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(Invitation::from_model(created, now))
    }

    /// The invitations of an organization, newest first.
    pub async fn invitations(&self, organization_id: Uuid) -> Result<Vec<Invitation>, StoreError> {
        let now = Utc::now();
        Ok(invitation::Entity::find()
            .filter(invitation::Column::OrganizationId.eq(organization_id))
            .order_by_desc(invitation::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| Invitation::from_model(m, now))
            .collect())
    }

    /// Accepts the invitation whose token hashes to `token_hash` on behalf of `user`, who must
    /// be signed in with the invited email. The user becomes an active member.
    ///
    /// INVARIANT: a token is accepted at most once, even by concurrent requests: the status
    /// moves from `pending` to `accepted` by a conditional update that only one can win.
    pub async fn accept_invitation(
        &self,
        token_hash: &str,
        user: &User,
        actor: &Actor,
    ) -> Result<(Invitation, Organization), StoreError> {
        let txn = self.db.begin().await?;
        let now = Utc::now();
        let found = invitation::Entity::find()
            .filter(invitation::Column::TokenHash.eq(token_hash))
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("invitation"))?;
        let invalid = |m: &str| StoreError::Invalid(InvalidInput::new("token", m));
        match InvitationStatus::from_stored(&found.status, found.expires_at, now) {
            InvitationStatus::Pending => {}
            InvitationStatus::Accepted => {
                return Err(invalid("this invitation has already been used"));
            }
            InvitationStatus::Revoked => return Err(invalid("this invitation has been revoked")),
            InvitationStatus::Expired => return Err(invalid("this invitation has expired")),
        }
        if found.email != user.email {
            return Err(invalid(
                "this invitation was sent to another email address; sign in with that address to accept it",
            ));
        }
        let existing = membership::Entity::find()
            .filter(membership::Column::OrganizationId.eq(found.organization_id))
            .filter(membership::Column::UserId.eq(user.id))
            .one(&txn)
            .await?;
        if existing.is_some() {
            return Err(StoreError::conflict(
                "you are already a member of this organization",
            ));
        }
        let claimed = invitation::Entity::update_many()
            .col_expr(invitation::Column::Status, Expr::value("accepted"))
            .col_expr(invitation::Column::AcceptedAt, Expr::value(now))
            .col_expr(invitation::Column::AcceptedBy, Expr::value(user.id))
            .filter(invitation::Column::Id.eq(found.id))
            .filter(invitation::Column::Status.eq("pending"))
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            return Err(invalid("this invitation has already been used"));
        }
        membership::Entity::insert(membership::ActiveModel {
            id: Set(Uuid::now_v7()),
            organization_id: Set(found.organization_id),
            user_id: Set(user.id),
            status: Set(MemberStatus::Active.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(|e| {
            StoreError::unique_or_db(e, || {
                "you are already a member of this organization".to_owned()
            })
        })?;
        let event = revision::bump(
            &txn,
            Change {
                organization_id: found.organization_id,
                kind: "membership.added",
                principal_id: Some(user.id),
                node_id: Some(found.organization_id),
                role_id: None,
                actor_id: Some(user.id),
            },
        )
        .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(found.organization_id),
                action: "invitation.accept",
                target_type: "invitation",
                target_id: Some(found.id),
                before: Some(json!({ "status": "pending" })),
                after: Some(json!({ "status": "accepted", "user_id": user.id })),
            },
        )
        .await?;
        let org = entity::organization::Entity::find_by_id(found.organization_id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("organization"))?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        let accepted = invitation::Model {
            status: "accepted".to_owned(),
            accepted_at: Some(now),
            accepted_by: Some(user.id),
            ..found
        };
        Ok((Invitation::from_model(accepted, now), org.into()))
    }
}
