//! Invitations into an organization: an email, optional name and message, and the roles the
//! invitee gets on acceptance; a single-use token whose hash alone is stored.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
    sea_query::Expr,
};
use serde_json::json;
use uuid::Uuid;

use entity::{invitation, invitation_grant, membership, role, role_binding};

use super::audit::{self, Entry};
use super::revision::{self, Change};
use super::{Store, StoreError};
use crate::domain::{
    Actor, Email, InvalidInput, Invitation, InvitationGrant, InvitationStatus, MemberStatus, Node,
    Organization, User,
};

/// What an admin asks for when inviting.
pub struct NewInvitation<'a> {
    pub organization_id: Uuid,
    pub email: &'a Email,
    pub name: Option<String>,
    pub message: Option<String>,
    /// Roles granted on acceptance, each at a node of the organization (checked by the caller).
    pub grants: Vec<(Uuid, &'a Node)>,
    pub token_hash: String,
    pub ttl: Duration,
}

/// Which invitations to list.
#[derive(Default)]
pub struct InvitationFilter {
    /// Only these statuses (all when empty).
    pub statuses: Vec<InvitationStatus>,
    /// Only emails containing this text (case-insensitive).
    pub email: Option<String>,
}

impl Invitation {
    fn from_model(m: invitation::Model, grants: Vec<InvitationGrant>, now: DateTime<Utc>) -> Self {
        Self {
            status: InvitationStatus::from_stored(&m.status, m.expires_at, now),
            id: m.id,
            organization_id: m.organization_id,
            email: m.email,
            name: m.name,
            message: m.message,
            invited_by: m.invited_by,
            created_at: m.created_at,
            expires_at: m.expires_at,
            accepted_at: m.accepted_at,
            revoked_at: m.revoked_at,
            sent_at: m.sent_at,
            grants,
        }
    }
}

fn grant_of(g: &invitation_grant::Model, organization_id: Uuid) -> InvitationGrant {
    InvitationGrant {
        role_id: g.role_id,
        node_id: g.project_id.or(g.workspace_id).unwrap_or(organization_id),
    }
}

/// The grants of these invitations, by invitation, in their order.
async fn grants_of<C: sea_orm::ConnectionTrait>(
    conn: &C,
    invitations: &[invitation::Model],
) -> Result<std::collections::HashMap<Uuid, Vec<InvitationGrant>>, StoreError> {
    let mut rows = invitation_grant::Entity::find()
        .filter(invitation_grant::Column::InvitationId.is_in(invitations.iter().map(|i| i.id)))
        .all(conn)
        .await?;
    rows.sort_by_key(|g| (g.invitation_id, g.position));
    let mut by: std::collections::HashMap<Uuid, Vec<InvitationGrant>> =
        std::collections::HashMap::new();
    for g in &rows {
        if let Some(i) = invitations.iter().find(|i| i.id == g.invitation_id) {
            by.entry(g.invitation_id)
                .or_default()
                .push(grant_of(g, i.organization_id));
        }
    }
    Ok(by)
}

async fn with_grants<C: sea_orm::ConnectionTrait>(
    conn: &C,
    m: invitation::Model,
    now: DateTime<Utc>,
) -> Result<Invitation, StoreError> {
    let mut grants = grants_of(conn, std::slice::from_ref(&m)).await?;
    let mine = grants.remove(&m.id).unwrap_or_default();
    Ok(Invitation::from_model(m, mine, now))
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
        let now = self.clock.now();
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
            name: Set(new.name.clone()),
            message: Set(new.message.clone()),
            revoked_at: Set(None),
            revoked_by: Set(None),
            sent_at: Set(None),
        })
        .exec_with_returning(&txn)
        .await?;
        for (position, (role_id, node)) in new.grants.iter().enumerate() {
            let (workspace_id, project_id) = super::node_columns(node);
            invitation_grant::Entity::insert(invitation_grant::ActiveModel {
                id: Set(Uuid::now_v7()),
                invitation_id: Set(id),
                position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
                role_id: Set(*role_id),
                workspace_id: Set(workspace_id),
                project_id: Set(project_id),
            })
            .exec_without_returning(&txn)
            .await?;
        }
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(new.organization_id),
                action: "invitation.create",
                target_type: "invitation",
                target_id: Some(id),
                before: None,
                after: Some(json!({
                    "email": created.email,
                    "name": created.name,
                    "expires_at": created.expires_at,
                    "grants": new.grants.iter().map(|(r, n)| json!({ "role_id": r, "node_id": n.id() })).collect::<Vec<_>>(),
                })),
            },
        )
        .await?;
        let invitation = with_grants(&txn, created, now).await?;
        txn.commit().await?;
        Ok(invitation)
    }

    /// The invitations of an organization, newest first.
    pub async fn invitations(
        &self,
        organization_id: Uuid,
        filter: &InvitationFilter,
    ) -> Result<Vec<Invitation>, StoreError> {
        let now = self.clock.now();
        let rows = invitation::Entity::find()
            .filter(invitation::Column::OrganizationId.eq(organization_id))
            .order_by_desc(invitation::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let needle = filter.email.as_deref().map(str::to_lowercase);
        let rows: Vec<invitation::Model> = rows
            .into_iter()
            .filter(|m| needle.as_deref().is_none_or(|n| m.email.contains(n)))
            .filter(|m| {
                filter.statuses.is_empty()
                    || filter.statuses.contains(&InvitationStatus::from_stored(
                        &m.status,
                        m.expires_at,
                        now,
                    ))
            })
            .collect();
        let mut grants = grants_of(&self.db, &rows).await?;
        Ok(rows
            .into_iter()
            .map(|m| {
                let g = grants.remove(&m.id).unwrap_or_default();
                Invitation::from_model(m, g, now)
            })
            .collect())
    }

    /// One invitation of an organization.
    pub async fn invitation(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<Option<Invitation>, StoreError> {
        let Some(m) = invitation::Entity::find_by_id(id)
            .filter(invitation::Column::OrganizationId.eq(organization_id))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(with_grants(&self.db, m, self.clock.now()).await?))
    }

    /// An invitation by id, in whatever organization (the caller checks access to it).
    pub async fn invitation_any(&self, id: Uuid) -> Result<Option<Invitation>, StoreError> {
        let Some(m) = invitation::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(None);
        };
        Ok(Some(with_grants(&self.db, m, self.clock.now()).await?))
    }

    /// The invitation a token belongs to, whatever its state (for a sign-up through the link).
    pub async fn invitation_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<Invitation>, StoreError> {
        let Some(m) = invitation::Entity::find()
            .filter(invitation::Column::TokenHash.eq(token_hash))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(with_grants(&self.db, m, self.clock.now()).await?))
    }

    /// Records that the invitation's email was handed to the SMTP server.
    pub async fn invitation_sent(
        &self,
        organization_id: Uuid,
        id: Uuid,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        invitation::Entity::update_many()
            .col_expr(invitation::Column::SentAt, Expr::value(now))
            .filter(invitation::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "invitation.sent",
                target_type: "invitation",
                target_id: Some(id),
                before: None,
                after: Some(json!({ "sent_at": now })),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Gives a pending (or expired) invitation a new token and a new expiry: the old link stops
    /// working at once.
    pub async fn resend_invitation(
        &self,
        organization_id: Uuid,
        id: Uuid,
        token_hash: String,
        ttl: Duration,
        actor: &Actor,
    ) -> Result<Invitation, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let found = invitation::Entity::find_by_id(id)
            .filter(invitation::Column::OrganizationId.eq(organization_id))
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("invitation"))?;
        if found.status != "pending" {
            return Err(StoreError::conflict(format!(
                "this invitation is {}; only a pending or expired invitation can be resent",
                found.status
            )));
        }
        let mut model: invitation::ActiveModel = found.clone().into();
        model.token_hash = Set(token_hash);
        model.expires_at = Set(now + ttl);
        model.sent_at = Set(None);
        let updated = invitation::Entity::update(model).exec(&txn).await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "invitation.resend",
                target_type: "invitation",
                target_id: Some(id),
                before: Some(json!({ "expires_at": found.expires_at })),
                after: Some(json!({ "expires_at": updated.expires_at })),
            },
        )
        .await?;
        let invitation = with_grants(&txn, updated, now).await?;
        txn.commit().await?;
        Ok(invitation)
    }

    /// Revokes a pending invitation: its link stops working.
    pub async fn revoke_invitation(
        &self,
        organization_id: Uuid,
        id: Uuid,
        actor: &Actor,
    ) -> Result<Invitation, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let found = invitation::Entity::find_by_id(id)
            .filter(invitation::Column::OrganizationId.eq(organization_id))
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("invitation"))?;
        let revoked = invitation::Entity::update_many()
            .col_expr(invitation::Column::Status, Expr::value("revoked"))
            .col_expr(invitation::Column::RevokedAt, Expr::value(now))
            .col_expr(invitation::Column::RevokedBy, Expr::value(actor.user_id))
            .filter(invitation::Column::Id.eq(id))
            .filter(invitation::Column::Status.eq("pending"))
            .exec(&txn)
            .await?;
        if revoked.rows_affected != 1 {
            return Err(StoreError::conflict(format!(
                "this invitation is {}; only a pending invitation can be revoked",
                found.status
            )));
        }
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "invitation.revoke",
                target_type: "invitation",
                target_id: Some(id),
                before: Some(json!({ "status": "pending" })),
                after: Some(json!({ "status": "revoked" })),
            },
        )
        .await?;
        let updated = invitation::Model {
            status: "revoked".to_owned(),
            revoked_at: Some(now),
            revoked_by: actor.user_id,
            ..found
        };
        let invitation = with_grants(&txn, updated, now).await?;
        txn.commit().await?;
        Ok(invitation)
    }

    /// Records a use of an expired invitation (in its own transaction: the acceptance itself
    /// fails). Never fails: a lost audit row of a refused request is logged instead.
    pub async fn audit_expired_use(
        &self,
        organization_id: Uuid,
        id: Uuid,
        expires_at: DateTime<Utc>,
        actor: &Actor,
    ) {
        let result = async {
            let txn = self.db.begin().await?;
            audit::record_failure(
                &txn,
                actor,
                Entry {
                    organization_id: Some(organization_id),
                    action: "invitation.expired_on_use",
                    target_type: "invitation",
                    target_id: Some(id),
                    before: None,
                    after: Some(json!({ "expires_at": expires_at })),
                },
            )
            .await?;
            txn.commit().await?;
            Ok::<(), StoreError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = ?e, "could not audit the use of an expired invitation");
        }
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
        let now = self.clock.now();
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
            InvitationStatus::Expired => {
                drop(txn);
                self.audit_expired_use(found.organization_id, found.id, found.expires_at, actor)
                    .await;
                return Err(invalid(
                    "this invitation has expired; ask for a new one to be sent",
                ));
            }
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
        // An emailed invitation's token proves that its holder reads the invited address (one
        // whose link was handed to the inviter proves nothing).
        if found.sent_at.is_some() {
            super::email_verifications::verify_email_on(&txn, user.id, now).await?;
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
        let grants = invitation_grant::Entity::find()
            .filter(invitation_grant::Column::InvitationId.eq(found.id))
            .all(&txn)
            .await?;
        let granted = apply_grants(&txn, &found, &grants, user.id, now).await?;
        let event = revision::bump(
            &txn,
            Change {
                organization_id: found.organization_id,
                kind: crate::domain::change::ChangeKind::MembershipAdded,
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
                after: Some(
                    json!({ "status": "accepted", "user_id": user.id, "granted": granted }),
                ),
            },
        )
        .await?;
        let org = entity::organization::Entity::find_by_id(found.organization_id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("organization"))?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        let organization_id = found.organization_id;
        let accepted = invitation::Model {
            status: "accepted".to_owned(),
            accepted_at: Some(now),
            accepted_by: Some(user.id),
            ..found
        };
        let grants = grants
            .iter()
            .map(|g| grant_of(g, organization_id))
            .collect();
        Ok((Invitation::from_model(accepted, grants, now), org.into()))
    }
}

/// Binds the invitation's roles to the new member. A grant whose role or node has been
/// deleted since the invitation was made is skipped (the audit event lists what was granted).
async fn apply_grants<C: sea_orm::ConnectionTrait>(
    txn: &C,
    found: &invitation::Model,
    grants: &[invitation_grant::Model],
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<serde_json::Value>, StoreError> {
    let mut granted = Vec::new();
    for g in grants {
        let role_usable = role::Entity::find_by_id(g.role_id)
            .one(txn)
            .await?
            .is_some_and(|r| r.builtin || r.organization_id == Some(found.organization_id));
        let node_exists = match (g.workspace_id, g.project_id) {
            (_, Some(p)) => entity::project::Entity::find_by_id(p)
                .one(txn)
                .await?
                .is_some(),
            (Some(w), None) => entity::workspace::Entity::find_by_id(w)
                .one(txn)
                .await?
                .is_some(),
            (None, None) => true,
        };
        if !role_usable || !node_exists {
            continue;
        }
        role_binding::Entity::insert(role_binding::ActiveModel {
            id: Set(Uuid::now_v7()),
            organization_id: Set(found.organization_id),
            workspace_id: Set(g.workspace_id),
            project_id: Set(g.project_id),
            principal_type: Set("user".to_owned()),
            principal_id: Set(user_id),
            role_id: Set(g.role_id),
            granted_by: Set(found.invited_by),
            granted_at: Set(now),
            expires_at: Set(None),
            source: Set("invitation".to_owned()),
            sso_provider_id: Set(None),
            resource_type: Set(None),
            resource_id: Set(None),
        })
        .exec_without_returning(txn)
        .await?;
        granted.push(json!({
            "role_id": g.role_id,
            "node_id": g.project_id.or(g.workspace_id).unwrap_or(found.organization_id),
        }));
    }
    Ok(granted)
}
