//! API keys: bearer credentials of a member (personal, in one organization) or of a service
//! account, stored only as the SHA-256 of their secret.
//!
//! A key's state (revoked, rotated, its scopes) is organization data like a binding: every
//! change commits a revision whose change reaches the key as a principal, so an instance that
//! cached the key drops it at once (`cache/keys.rs`). What a key may do is decided with its
//! owner's facts at every request: a key never outlives its owner's standing.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use entity::{api_key, organization};

use super::audit::{self, Entry};
use super::revision::{self, Change};
use super::{Store, StoreError};
use crate::domain::change::ChangeKind;
use crate::domain::{Actor, ApiKey, KeyOwner, KeyRefusal};

/// How many distinct client IPs a key remembers.
pub const LAST_IPS: usize = 5;

impl From<api_key::Model> for ApiKey {
    fn from(m: api_key::Model) -> Self {
        let owner = match (m.service_account_id, m.user_id) {
            (Some(sa), _) => KeyOwner::ServiceAccount(sa),
            // INVARIANT: a key row names exactly one owner (written only by `create_api_key`).
            (None, user) => KeyOwner::User(user.unwrap_or_default()),
        };
        let strings = |v: Option<serde_json::Value>| -> Option<Vec<String>> {
            v.and_then(|v| serde_json::from_value(v).ok())
        };
        Self {
            id: m.id,
            organization_id: m.organization_id,
            owner,
            name: m.name,
            display_prefix: m.display_prefix,
            scopes: strings(m.scopes),
            allowed_cidrs: strings(m.allowed_cidrs)
                .map(|v| v.iter().filter_map(|c| c.parse().ok()).collect()),
            expires_at: m.expires_at,
            created_by: m.created_by,
            created_at: m.created_at,
            revoked_at: m.revoked_at,
            revoked_reason: m.revoked_reason,
            rotated_from: m.rotated_from,
            overlap_until: m.overlap_until,
            first_used_at: m.first_used_at,
            last_used_at: m.last_used_at,
            last_ips: strings(m.last_ips).unwrap_or_default(),
        }
    }
}

/// A key to store.
pub struct NewApiKey<'a> {
    pub organization_id: Uuid,
    pub owner: KeyOwner,
    pub name: &'a str,
    pub token_hash: String,
    pub display_prefix: String,
    pub scopes: Option<Vec<String>>,
    pub allowed_cidrs: Option<Vec<ipnet::IpNet>>,
    pub expires_at: DateTime<Utc>,
}

/// A key's uses seen by one instance since its last flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUse {
    pub key_id: Uuid,
    pub organization_id: Uuid,
    pub last_used_at: DateTime<Utc>,
    /// Distinct client IPs, newest first.
    pub ips: Vec<String>,
}

/// Which expiry notice a key is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryNotice {
    Week,
    Day,
}

impl ExpiryNotice {
    pub fn lead(self) -> chrono::Duration {
        match self {
            Self::Week => chrono::Duration::days(7),
            Self::Day => chrono::Duration::days(1),
        }
    }

    fn column(self) -> api_key::Column {
        match self {
            Self::Week => api_key::Column::WarnedWeekAt,
            Self::Day => api_key::Column::WarnedDayAt,
        }
    }
}

fn key_json(k: &api_key::Model) -> serde_json::Value {
    json!({
        "name": k.name,
        "prefix": k.display_prefix,
        "userId": k.user_id,
        "serviceAccountId": k.service_account_id,
        "scopes": k.scopes,
        "allowedCidrs": k.allowed_cidrs,
        "expiresAt": k.expires_at,
        "revokedAt": k.revoked_at,
        "overlapUntil": k.overlap_until,
    })
}

fn change(key: &api_key::Model, kind: ChangeKind, actor: &Actor) -> Change {
    Change {
        organization_id: key.organization_id,
        kind,
        principal_id: Some(key.id),
        node_id: None,
        role_id: None,
        actor_id: actor.user_id,
    }
}

async fn key_row<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<api_key::Model, StoreError> {
    api_key::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound("API key"))
}

fn insert_model(
    new: &NewApiKey<'_>,
    id: Uuid,
    rotated_from: Option<Uuid>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> api_key::Model {
    let (user_id, service_account_id) = match new.owner {
        KeyOwner::User(u) => (Some(u), None),
        KeyOwner::ServiceAccount(sa) => (None, Some(sa)),
    };
    api_key::Model {
        id,
        organization_id: new.organization_id,
        user_id,
        service_account_id,
        name: new.name.to_owned(),
        token_hash: new.token_hash.clone(),
        display_prefix: new.display_prefix.clone(),
        scopes: new.scopes.as_ref().map(|s| json!(s)),
        allowed_cidrs: new
            .allowed_cidrs
            .as_ref()
            .map(|c| json!(c.iter().map(ToString::to_string).collect::<Vec<_>>())),
        expires_at: new.expires_at,
        created_by: actor.user_id,
        created_at: now,
        revoked_at: None,
        revoked_by: None,
        revoked_reason: None,
        rotated_from,
        overlap_until: None,
        first_used_at: None,
        last_used_at: None,
        last_ips: None,
        warned_week_at: None,
        warned_day_at: None,
        expiry_audited_at: None,
    }
}

/// Revokes the live personal keys of `user_id` in the organization, inside a removal's
/// transaction (the removal's own revision already denies them; this makes it lasting).
pub(super) async fn revoke_keys_of_member<C: ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
    user_id: Uuid,
    reason: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let revoked = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::val(now))
        .col_expr(api_key::Column::RevokedBy, Expr::val(actor.user_id))
        .col_expr(api_key::Column::RevokedReason, Expr::val(reason))
        .filter(api_key::Column::OrganizationId.eq(organization_id))
        .filter(api_key::Column::UserId.eq(user_id))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(revoked.rows_affected)
}

impl Store {
    /// Tells open WebSocket operations made with key `id` to check it again now (they listen
    /// for revoked sessions; a key is revoked like one).
    fn key_changed(&self, id: Uuid) {
        if let Some(bus) = &self.bus {
            bus.session_revoked(id);
        }
    }

    pub async fn create_api_key(
        &self,
        new: NewApiKey<'_>,
        actor: &Actor,
    ) -> Result<ApiKey, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let id = Uuid::now_v7();
        let model = insert_model(&new, id, None, actor, now);
        let event = revision::bump(&txn, change(&model, ChangeKind::ApiKeyCreated, actor)).await?;
        api_key::Entity::insert(api_key::ActiveModel::from(model.clone()))
            .exec_without_returning(&txn)
            .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(new.organization_id),
                action: "api_key.create",
                target_type: "api_key",
                target_id: Some(id),
                before: None,
                after: Some(key_json(&model)),
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(model.into())
    }

    pub async fn api_key(&self, id: Uuid) -> Result<Option<ApiKey>, StoreError> {
        Ok(api_key::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(ApiKey::from))
    }

    /// The organization's keys, newest first: of one owner, or everyone's.
    pub async fn api_keys(
        &self,
        organization_id: Uuid,
        owner: Option<KeyOwner>,
        include_revoked: bool,
    ) -> Result<Vec<ApiKey>, StoreError> {
        let mut q =
            api_key::Entity::find().filter(api_key::Column::OrganizationId.eq(organization_id));
        match owner {
            Some(KeyOwner::User(u)) => q = q.filter(api_key::Column::UserId.eq(u)),
            Some(KeyOwner::ServiceAccount(sa)) => {
                q = q.filter(api_key::Column::ServiceAccountId.eq(sa));
            }
            None => {}
        }
        if !include_revoked {
            q = q.filter(api_key::Column::RevokedAt.is_null());
        }
        Ok(q.order_by_desc(api_key::Column::CreatedAt)
            .order_by_desc(api_key::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(ApiKey::from)
            .collect())
    }

    /// The key whose secret hashes to `token_hash`, with a revision of its organization read
    /// before it: the key's state is at least as new as that revision, so an entry tagged
    /// with it is dropped by any later change of the key.
    pub async fn api_key_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<(ApiKey, i64)>, StoreError> {
        let Some(org) = api_key::Entity::find()
            .filter(api_key::Column::TokenHash.eq(token_hash))
            .one(&self.db)
            .await?
            .map(|k| k.organization_id)
        else {
            return Ok(None);
        };
        let Some(revision) = organization::Entity::find_by_id(org)
            .one(&self.db)
            .await?
            .map(|o| o.revision)
        else {
            return Ok(None);
        };
        let key = api_key::Entity::find()
            .filter(api_key::Column::TokenHash.eq(token_hash))
            .one(&self.db)
            .await?;
        Ok(key.map(|k| (ApiKey::from(k), revision)))
    }

    pub async fn revoke_api_key(&self, id: Uuid, actor: &Actor) -> Result<ApiKey, StoreError> {
        let txn = self.db.begin().await?;
        let before = key_row(&txn, id).await?;
        if before.revoked_at.is_some() {
            return Err(StoreError::conflict("the API key is already revoked"));
        }
        let event = revision::bump(&txn, change(&before, ChangeKind::ApiKeyRevoked, actor)).await?;
        let mut after = before.clone();
        after.revoked_at = Some(self.clock.now());
        after.revoked_by = actor.user_id;
        after.revoked_reason = Some("revoked".to_owned());
        api_key::Entity::update(api_key::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(id),
            revoked_at: Set(after.revoked_at),
            revoked_by: Set(after.revoked_by),
            revoked_reason: Set(after.revoked_reason.clone()),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(before.organization_id),
                action: "api_key.revoke",
                target_type: "api_key",
                target_id: Some(id),
                before: Some(key_json(&before)),
                after: Some(key_json(&after)),
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        self.key_changed(id);
        Ok(after.into())
    }

    /// Replaces key `id` with a new secret of the same owner, name, scopes and networks,
    /// valid as long as the old one was from its creation. The old key works until
    /// `overlap_until` or the first use of the new one, whichever comes first.
    pub async fn rotate_api_key(
        &self,
        id: Uuid,
        token_hash: String,
        display_prefix: String,
        overlap_until: DateTime<Utc>,
        max_expires_at: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<(ApiKey, ApiKey), StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let old = key_row(&txn, id).await?;
        let old_key = ApiKey::from(old.clone());
        if let Some(why) = old_key
            .refusal(now, None)
            .filter(|r| *r != KeyRefusal::Network)
        {
            return Err(StoreError::conflict(format!(
                "only a working key can be rotated: {}",
                why.message()
            )));
        }
        let lifetime = old.expires_at - old.created_at;
        let new = NewApiKey {
            organization_id: old.organization_id,
            owner: old_key.owner,
            name: &old.name,
            token_hash,
            display_prefix,
            scopes: old_key.scopes.clone(),
            allowed_cidrs: old_key.allowed_cidrs.clone(),
            expires_at: Ord::min(now + lifetime, max_expires_at),
        };
        let new_id = Uuid::now_v7();
        let model = insert_model(&new, new_id, Some(id), actor, now);
        let event = revision::bump(&txn, change(&old, ChangeKind::ApiKeyRotated, actor)).await?;
        api_key::Entity::insert(api_key::ActiveModel::from(model.clone()))
            .exec_without_returning(&txn)
            .await?;
        let overlap_until = Ord::min(overlap_until, old.expires_at);
        api_key::Entity::update(api_key::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(id),
            overlap_until: Set(Some(overlap_until)),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        let mut old_after = old.clone();
        old_after.overlap_until = Some(overlap_until);
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(old.organization_id),
                action: "api_key.rotate",
                target_type: "api_key",
                target_id: Some(id),
                before: Some(key_json(&old)),
                after: Some(json!({ "replacedBy": new_id, "old": key_json(&old_after), "new": key_json(&model) })),
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        self.key_changed(id);
        Ok((old_after.into(), model.into()))
    }

    /// Records the first use of a key that replaced another by rotation: the old key's overlap
    /// ends now. Only the first caller (of any instance) does it; `false` for the others.
    pub async fn first_use_of_successor(
        &self,
        key: &ApiKey,
        actor: &Actor,
    ) -> Result<bool, StoreError> {
        let Some(old_id) = key.rotated_from else {
            return Ok(false);
        };
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let claimed = api_key::Entity::update_many()
            .col_expr(api_key::Column::FirstUsedAt, Expr::val(now))
            .filter(api_key::Column::Id.eq(key.id))
            .filter(api_key::Column::FirstUsedAt.is_null())
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            return Ok(false);
        }
        let Some(old) = api_key::Entity::find_by_id(old_id).one(&txn).await? else {
            txn.commit().await?;
            return Ok(true);
        };
        if old.overlap_until.is_some_and(|at| at > now) {
            let event =
                revision::bump(&txn, change(&old, ChangeKind::ApiKeyRotated, actor)).await?;
            api_key::Entity::update(api_key::ActiveModel {
                id: sea_orm::ActiveValue::Unchanged(old_id),
                overlap_until: Set(Some(now)),
                ..Default::default()
            })
            .exec(&txn)
            .await?;
            audit::record(
                &txn,
                actor,
                Entry {
                    organization_id: Some(old.organization_id),
                    action: "api_key.overlap_end",
                    target_type: "api_key",
                    target_id: Some(old_id),
                    before: Some(json!({ "overlapUntil": old.overlap_until })),
                    after: Some(json!({ "overlapUntil": now, "successorUsed": key.id })),
                },
            )
            .await?;
            txn.commit().await?;
            self.publish(std::slice::from_ref(&event));
            self.key_changed(old_id);
        } else {
            txn.commit().await?;
        }
        Ok(true)
    }

    /// Writes the uses one instance saw (one transaction per key): the time of the last use,
    /// the first use if unset, and the last distinct IPs; an IP the key was not used from
    /// before is audited.
    pub async fn record_key_uses(&self, uses: &[KeyUse], actor: &Actor) -> Result<(), StoreError> {
        for u in uses {
            let txn = self.db.begin().await?;
            let Some(row) = api_key::Entity::find_by_id(u.key_id)
                .lock_exclusive()
                .one(&txn)
                .await?
            else {
                continue;
            };
            let known: Vec<String> = row
                .last_ips
                .clone()
                .and_then(|v| serde_json::from_value(v).ok())
                .unwrap_or_default();
            let mut ips = u.ips.clone();
            for ip in &known {
                if !ips.contains(ip) {
                    ips.push(ip.clone());
                }
            }
            ips.truncate(LAST_IPS);
            let last = row
                .last_used_at
                .map_or(u.last_used_at, |t| Ord::max(t, u.last_used_at));
            api_key::Entity::update(api_key::ActiveModel {
                id: sea_orm::ActiveValue::Unchanged(row.id),
                last_used_at: Set(Some(last)),
                first_used_at: Set(row.first_used_at.or(Some(u.last_used_at))),
                last_ips: Set(Some(json!(ips))),
                ..Default::default()
            })
            .exec(&txn)
            .await?;
            for ip in u.ips.iter().filter(|ip| !known.contains(ip)) {
                audit::record(
                    &txn,
                    &Actor {
                        ip: Some(ip.clone()),
                        ..actor.clone()
                    },
                    Entry {
                        organization_id: Some(u.organization_id),
                        action: "api_key.new_ip",
                        target_type: "api_key",
                        target_id: Some(row.id),
                        before: None,
                        after: Some(json!({ "ip": ip, "at": u.last_used_at })),
                    },
                )
                .await?;
            }
            txn.commit().await?;
        }
        Ok(())
    }

    /// Records a refused use of a key (its own transaction: nothing else happened).
    pub async fn audit_key_refusal(
        &self,
        key: &ApiKey,
        why: KeyRefusal,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        audit::record_failure(
            &txn,
            actor,
            Entry {
                organization_id: Some(key.organization_id),
                action: "api_key.refused",
                target_type: "api_key",
                target_id: Some(key.id),
                before: None,
                after: Some(json!({ "reason": why.as_str() })),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Live keys that expire within `notice.lead()` and were not warned yet.
    pub async fn keys_due_notice(&self, notice: ExpiryNotice) -> Result<Vec<ApiKey>, StoreError> {
        let now = self.clock.now();
        Ok(api_key::Entity::find()
            .filter(api_key::Column::RevokedAt.is_null())
            .filter(api_key::Column::ExpiresAt.gt(now))
            .filter(api_key::Column::ExpiresAt.lte(now + notice.lead()))
            .filter(notice.column().is_null())
            .order_by_asc(api_key::Column::ExpiresAt)
            .limit(500)
            .all(&self.db)
            .await?
            .into_iter()
            .map(ApiKey::from)
            .collect())
    }

    /// Claims the sending of a notice: `true` for exactly one caller of any instance.
    pub async fn claim_key_notice(
        &self,
        key_id: Uuid,
        notice: ExpiryNotice,
    ) -> Result<bool, StoreError> {
        let claimed = api_key::Entity::update_many()
            .col_expr(notice.column(), Expr::val(self.clock.now()))
            .filter(api_key::Column::Id.eq(key_id))
            .filter(notice.column().is_null())
            .exec(&self.db)
            .await?;
        Ok(claimed.rows_affected == 1)
    }

    /// Audits the expiry of keys that expired since the last pass (each once, claimed).
    pub async fn audit_expired_keys(&self, actor: &Actor) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let expired = api_key::Entity::find()
            .filter(api_key::Column::RevokedAt.is_null())
            .filter(api_key::Column::ExpiresAt.lte(now))
            .filter(api_key::Column::ExpiryAuditedAt.is_null())
            .limit(500)
            .all(&self.db)
            .await?;
        let mut n = 0;
        for k in expired {
            let txn = self.db.begin().await?;
            let claimed = api_key::Entity::update_many()
                .col_expr(api_key::Column::ExpiryAuditedAt, Expr::val(now))
                .filter(api_key::Column::Id.eq(k.id))
                .filter(api_key::Column::ExpiryAuditedAt.is_null())
                .exec(&txn)
                .await?;
            if claimed.rows_affected == 1 {
                audit::record(
                    &txn,
                    actor,
                    Entry {
                        organization_id: Some(k.organization_id),
                        action: "api_key.expire",
                        target_type: "api_key",
                        target_id: Some(k.id),
                        before: None,
                        after: Some(json!({ "expiresAt": k.expires_at })),
                    },
                )
                .await?;
                n += 1;
            }
            txn.commit().await?;
        }
        Ok(n)
    }
}
