//! Sessions: created at sign-in, looked up by the hash of their bearer token, revoked at
//! sign-out. A token is never stored, only its SHA-256.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait, sea_query::Expr,
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
            ip: m.ip,
            user_agent: m.user_agent,
            created_at: m.created_at,
            last_active_at: m.last_active_at,
            expires_at: m.expires_at,
        }
    }
}

/// The result of presenting a token.
// Returned once per request and consumed at once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum SessionLookup {
    Valid(Session, User),
    Expired,
    /// Signed out, revoked, or its user deleted.
    Revoked,
    Unknown,
}

impl Store {
    /// Opens a session for `user_id`, audited as `action` (e.g. `auth.sign_in`).
    pub async fn create_session(
        &self,
        user_id: Uuid,
        token_hash: String,
        method: &str,
        ttl: Duration,
        action: &'static str,
        actor: &Actor,
    ) -> Result<Session, StoreError> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let id = Uuid::now_v7();
        let created = session::Entity::insert(session::ActiveModel {
            id: Set(id),
            user_id: Set(user_id),
            token_hash: Set(token_hash),
            method: Set(method.to_owned()),
            organization_id: Set(None),
            ip: Set(actor.ip.clone()),
            user_agent: Set(actor.user_agent.clone()),
            created_at: Set(now),
            last_active_at: Set(now),
            expires_at: Set(now + ttl),
            revoked_at: Set(None),
        })
        .exec_with_returning(&txn)
        .await?;
        audit::record(
            &txn,
            &Actor {
                user_id: Some(user_id),
                ..actor.clone()
            },
            Entry {
                organization_id: None,
                action,
                target_type: "session",
                target_id: Some(id),
                before: None,
                after: Some(json!({ "method": method, "expires_at": created.expires_at })),
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
            Some(u) if u.deleted_at.is_none() => Ok(SessionLookup::Valid(found.into(), u.into())),
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

    /// Revokes one session (sign-out). Revoking an already revoked session changes nothing.
    pub async fn revoke_session(&self, session_id: Uuid, actor: &Actor) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        let now = Utc::now();
        let revoked = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(now))
            .filter(session::Column::Id.eq(session_id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        let revoked_user = if revoked.rows_affected == 1 {
            session::Entity::find_by_id(session_id)
                .one(&txn)
                .await?
                .map(|s| s.user_id)
        } else {
            None
        };
        if revoked.rows_affected == 1 {
            audit::record(
                &txn,
                actor,
                Entry {
                    organization_id: None,
                    action: "auth.sign_out",
                    target_type: "session",
                    target_id: Some(session_id),
                    before: None,
                    after: Some(json!({ "revoked_at": now })),
                },
            )
            .await?;
        }
        txn.commit().await?;
        if let (Some(user), Some(bus)) = (revoked_user, &self.bus) {
            bus.publish_session_revoked(user);
        }
        Ok(())
    }
}
