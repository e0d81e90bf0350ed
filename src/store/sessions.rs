//! Sessions: created at sign-in, looked up by the hash of their bearer token, listed for their
//! owner (and an organization's administrators), revoked at sign-out, one by one, or all at once.
//! A token is never stored, only its SHA-256. Every revocation is announced on the bus after
//! its commit, so that cached sessions stop working at once here and soon everywhere.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait, sea_query::Expr,
};
use serde_json::json;
use uuid::Uuid;

use entity::{session, user};

use super::audit::{self, Entry};
use super::{Store, StoreError};
use crate::domain::{Actor, Session, User};

/// How often `last_active_at` is written at most, so a busy client is not a write per request.
const TOUCH_EVERY: Duration = Duration::seconds(60);

impl From<session::Model> for Session {
    fn from(m: session::Model) -> Self {
        Self {
            id: m.id,
            user_id: m.user_id,
            method: m.method,
            organization_id: m.organization_id,
            ip: m.ip,
            user_agent: m.user_agent,
            created_at: m.created_at,
            last_active_at: m.last_active_at,
            expires_at: m.expires_at,
            impersonator_id: m.impersonator_id,
            impersonation_reason: m.impersonation_reason,
        }
    }
}

/// The result of presenting a token. A valid session and its user are shared, so that a cached
/// one costs no copy per request.
#[derive(Debug)]
pub enum SessionLookup {
    Valid(Arc<Session>, Arc<User>),
    Expired,
    /// Signed out, revoked, or its user deleted.
    Revoked,
    Unknown,
}

/// A session to open.
pub struct NewSession<'a> {
    pub user_id: Uuid,
    pub token_hash: String,
    /// `password`, `bootstrap`, ...
    pub method: &'a str,
    pub ttl: Duration,
    /// The audit action, e.g. `auth.sign_in`.
    pub action: &'static str,
    /// A password was just proven: the failed-attempt count starts again and a lock ends.
    pub clears_lockout: bool,
    /// The organization an SSO session was opened for (revoked when the member is removed).
    pub organization_id: Option<Uuid>,
    /// An impersonation: who acts as `user_id`, and why.
    pub impersonation: Option<(Uuid, &'a str)>,
}

impl Store {
    /// Opens a session, audited as its `action`.
    pub async fn create_session(
        &self,
        new: NewSession<'_>,
        actor: &Actor,
    ) -> Result<Session, StoreError> {
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let id = Uuid::now_v7();
        let created = session::Entity::insert(session::ActiveModel {
            id: Set(id),
            user_id: Set(new.user_id),
            token_hash: Set(new.token_hash),
            method: Set(new.method.to_owned()),
            organization_id: Set(new.organization_id),
            ip: Set(actor.ip.clone()),
            user_agent: Set(actor.user_agent.clone()),
            created_at: Set(now),
            last_active_at: Set(now),
            expires_at: Set(now + new.ttl),
            revoked_at: Set(None),
            impersonator_id: Set(new.impersonation.map(|(by, _)| by)),
            impersonation_reason: Set(new.impersonation.map(|(_, why)| why.to_owned())),
        })
        .exec_with_returning(&txn)
        .await?;
        if new.clears_lockout {
            super::users::clear_lockout(&txn, new.user_id, now).await?;
        }
        // An impersonation is the impersonator's act, in the organization; a sign-in, the
        // user's own, in the organization of its SSO (a password sign-in is of the account:
        // each of its organizations sees it).
        let (audit_actor, audit_org) = match new.impersonation {
            Some(_) => (actor.clone(), new.organization_id),
            None => (
                Actor {
                    user_id: Some(new.user_id),
                    ..actor.clone()
                },
                new.organization_id,
            ),
        };
        audit::record(
            &txn,
            &audit_actor,
            Entry {
                organization_id: audit_org,
                action: new.action,
                target_type: "session",
                target_id: Some(id),
                before: None,
                after: Some(json!({
                    "method": new.method,
                    "expires_at": created.expires_at,
                    "user_id": new.user_id,
                    "reason": new.impersonation.map(|(_, why)| why),
                })),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(created.into())
    }

    /// Finds the session whose token hashes to `token_hash`, with its (live) user.
    pub async fn session_by_token_hash(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<SessionLookup, StoreError> {
        // The token is 256 random bits and only its SHA-256 is stored and looked up, so the
        // index lookup's timing tells an attacker nothing usable about any valid token.
        let Some(found) = session::Entity::find()
            .filter(session::Column::TokenHash.eq(token_hash))
            .one(&self.db)
            .await?
        else {
            return Ok(SessionLookup::Unknown);
        };
        if found.revoked_at.is_some() {
            return Ok(SessionLookup::Revoked);
        }
        if found.expires_at <= now {
            return Ok(SessionLookup::Expired);
        }
        let owner = user::Entity::find_by_id(found.user_id)
            .one(&self.db)
            .await?;
        match owner {
            Some(u) if u.deleted_at.is_none() => Ok(SessionLookup::Valid(
                Arc::new(found.into()),
                Arc::new(u.into()),
            )),
            _ => Ok(SessionLookup::Revoked),
        }
    }

    /// Records activity on a session, at most once a minute.
    pub async fn touch_session(
        &self,
        session: &Session,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if now - session.last_active_at < TOUCH_EVERY {
            return Ok(());
        }
        session::Entity::update_many()
            .col_expr(session::Column::LastActiveAt, Expr::value(now))
            .filter(session::Column::Id.eq(session.id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The live sessions of `user_id` (neither revoked nor expired), most recently active
    /// first.
    pub async fn live_sessions(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        Ok(session::Entity::find()
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now))
            .order_by_desc(session::Column::LastActiveAt)
            .order_by_desc(session::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Session::from)
            .collect())
    }

    /// The live sessions of a member of `organization_id` that the organization owns: all of
    /// them when it manages the account (see `Store::manages_account`), else those opened
    /// through its SSO. NOT_FOUND (`member`) for anyone else.
    pub async fn member_sessions(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        super::users::ensure_member(&self.db, organization_id, user_id).await?;
        let mut sessions = self.live_sessions(user_id, now).await?;
        if !self
            .manages_account(&self.db, organization_id, user_id)
            .await?
        {
            sessions.retain(|s| s.organization_id == Some(organization_id));
        }
        Ok(sessions)
    }

    /// Ends the session a request was made with (sign-out). Ending an already revoked session
    /// changes nothing.
    pub async fn sign_out(&self, session: &Session, actor: &Actor) -> Result<(), StoreError> {
        self.revoke_one(session.id, session.user_id, "auth.sign_out", actor)
            .await?;
        Ok(())
    }

    /// Revokes one live session of `owner`; NOT_FOUND (`session`) when `owner` has no such live
    /// session (someone else's, revoked or expired).
    pub async fn revoke_own_session(
        &self,
        owner: Uuid,
        session_id: Uuid,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        if self
            .revoke_one(session_id, owner, "session.revoke", actor)
            .await?
        {
            Ok(())
        } else {
            Err(StoreError::NotFound("session"))
        }
    }

    /// Revokes every live session of `user_id` but `keep` (the caller's own). Returns how many.
    pub async fn revoke_other_sessions(
        &self,
        user_id: Uuid,
        keep: Uuid,
        actor: &Actor,
    ) -> Result<u64, StoreError> {
        let txn = self.db.begin().await?;
        let revoked = revoke_sessions_of(&txn, user_id, Some(keep), self.clock.now()).await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: None,
                action: "session.revoke_others",
                target_type: "user",
                target_id: Some(user_id),
                before: None,
                after: Some(json!({ "kept": keep, "revoked": revoked })),
            },
        )
        .await?;
        txn.commit().await?;
        self.sessions_revoked(user_id, revoked);
        Ok(revoked)
    }

    /// Revokes the live sessions of a member of `organization_id` that the organization owns
    /// (an administrator signing them out): every one when it manages the account, else those
    /// opened through its SSO. NOT_FOUND (`member`) for anyone else. Returns how many.
    pub async fn revoke_member_sessions(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        actor: &Actor,
    ) -> Result<u64, StoreError> {
        let txn = self.db.begin().await?;
        super::users::ensure_member(&txn, organization_id, user_id).await?;
        let now = self.clock.now();
        let revoked = if self.manages_account(&txn, organization_id, user_id).await? {
            revoke_sessions_of(&txn, user_id, None, now).await?
        } else {
            session::Entity::update_many()
                .col_expr(session::Column::RevokedAt, Expr::value(now))
                .filter(session::Column::UserId.eq(user_id))
                .filter(session::Column::OrganizationId.eq(organization_id))
                .filter(session::Column::RevokedAt.is_null())
                .filter(session::Column::ExpiresAt.gt(now))
                .exec(&txn)
                .await?
                .rows_affected
        };
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "session.revoke_all",
                target_type: "user",
                target_id: Some(user_id),
                before: None,
                after: Some(json!({ "revoked": revoked })),
            },
        )
        .await?;
        txn.commit().await?;
        self.sessions_revoked(user_id, revoked);
        Ok(revoked)
    }

    /// Revokes session `session_id` of `owner` unless it is already revoked or has expired,
    /// audited as `action`. Returns whether it was revoked now.
    async fn revoke_one(
        &self,
        session_id: Uuid,
        owner: Uuid,
        action: &'static str,
        actor: &Actor,
    ) -> Result<bool, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let revoked = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(now))
            .filter(session::Column::Id.eq(session_id))
            .filter(session::Column::UserId.eq(owner))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        if revoked.rows_affected == 0 {
            return Ok(false);
        }
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: None,
                action,
                target_type: "session",
                target_id: Some(session_id),
                before: None,
                after: Some(json!({ "revoked_at": now })),
            },
        )
        .await?;
        txn.commit().await?;
        self.sessions_revoked(owner, 1);
        Ok(true)
    }

    /// Ends a live impersonation session that `impersonator` opened; `false` when there is no
    /// such session (someone else's, an ordinary one, already ended or expired).
    pub async fn end_impersonation(
        &self,
        impersonator: Uuid,
        session_id: Uuid,
        actor: &Actor,
    ) -> Result<bool, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let Some(found) = session::Entity::find_by_id(session_id)
            .filter(session::Column::ImpersonatorId.eq(impersonator))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now))
            .one(&txn)
            .await?
        else {
            return Ok(false);
        };
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(now))
            .filter(session::Column::Id.eq(session_id))
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: found.organization_id,
                action: "impersonation.end",
                target_type: "session",
                target_id: Some(session_id),
                before: None,
                after: Some(json!({ "revoked_at": now, "user_id": found.user_id })),
            },
        )
        .await?;
        txn.commit().await?;
        self.sessions_revoked(found.user_id, 1);
        Ok(true)
    }

    /// Announces, after their commit, that `count` sessions of `user_id` were revoked.
    pub(super) fn sessions_revoked(&self, user_id: Uuid, count: u64) {
        if let (true, Some(bus)) = (count > 0, &self.bus) {
            bus.session_revoked(user_id);
        }
    }
}

/// Revokes, on `conn` (the change's transaction), every live session of `user_id` except
/// `keep`. Returns how many. The caller announces it after the commit
/// ([`Store::sessions_revoked`]).
pub(super) async fn revoke_sessions_of<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    keep: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut update = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now));
    if let Some(keep) = keep {
        update = update.filter(session::Column::Id.ne(keep));
    }
    Ok(update.exec(conn).await?.rows_affected)
}
