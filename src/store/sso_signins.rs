//! The state of SSO sign-ins: pending requests (and the link round trips parked for
//! `confirmSsoLink`), SAML assertion ids seen (replay protection), and the just-in-time
//! account and binding synchronisation that ends a sign-in.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait,
    sea_query::Expr,
};
use serde_json::json;
use uuid::Uuid;

use entity::{
    membership, role, role_binding, sso_assertion, sso_group_mapping, sso_request,
    sso_team_mapping, team_member,
};

use super::audit::{self, Entry};
use super::revision::{self, Change};
use super::{Store, StoreError};
use crate::domain::sso::{Identity, Provider};
use crate::domain::{Actor, InvalidInput, MemberStatus, User};

/// A sign-in sent to an IdP, waiting for its answer.
pub struct SsoRequest {
    pub id: String,
    pub provider_id: Uuid,
    pub nonce: Option<String>,
    pub verifier_ciphertext: Option<String>,
    pub return_to: Option<String>,
    /// The signed-in account this round trip links the identity to, instead of signing in.
    pub link_user_id: Option<Uuid>,
}

impl Store {
    /// Remembers a sign-in sent to an IdP for `ttl`.
    pub async fn create_sso_request(
        &self,
        request: SsoRequest,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.insert_sso_request(request, None, ttl).await
    }

    async fn insert_sso_request(
        &self,
        request: SsoRequest,
        pending_identity: Option<String>,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        sso_request::Entity::insert(sso_request::ActiveModel {
            id: Set(request.id),
            provider_id: Set(request.provider_id),
            nonce: Set(request.nonce),
            verifier_ciphertext: Set(request.verifier_ciphertext),
            return_to: Set(request.return_to),
            link_user_id: Set(request.link_user_id),
            pending_identity: Set(pending_identity),
            created_at: Set(now),
            expires_at: Set(now + ttl),
            used_at: Set(None),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// Parks the identity a link round trip proved until account `user_id` confirms it with
    /// the code whose hash is `code_hash` (see [`Store::take_sso_link`]).
    pub async fn park_sso_link(
        &self,
        provider_id: Uuid,
        user_id: Uuid,
        code_hash: String,
        identity_json: String,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let request = SsoRequest {
            id: code_hash,
            provider_id,
            nonce: None,
            verifier_ciphertext: None,
            return_to: None,
            link_user_id: Some(user_id),
        };
        self.insert_sso_request(request, Some(identity_json), ttl)
            .await
    }

    /// Takes a parked link for account `user_id` by its code's hash, once: the provider and the
    /// identity (JSON). `None` for an unknown, used or expired code, or another account's.
    pub async fn take_sso_link(
        &self,
        code_hash: &str,
        user_id: Uuid,
    ) -> Result<Option<(Uuid, String)>, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let taken = sso_request::Entity::update_many()
            .col_expr(sso_request::Column::UsedAt, Expr::value(now))
            .filter(sso_request::Column::Id.eq(code_hash))
            .filter(sso_request::Column::UsedAt.is_null())
            .filter(sso_request::Column::PendingIdentity.is_not_null())
            .filter(sso_request::Column::LinkUserId.eq(user_id))
            .filter(sso_request::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        if taken.rows_affected != 1 {
            return Ok(None);
        }
        let row = sso_request::Entity::find_by_id(code_hash.to_owned())
            .one(&txn)
            .await?;
        txn.commit().await?;
        Ok(row.and_then(|r| Some((r.provider_id, r.pending_identity?))))
    }

    /// Whether the pending (unused, unexpired) request `id` was started to link an identity
    /// to an account (`startSsoLink`) rather than to sign in.
    pub async fn sso_request_links(&self, id: &str) -> Result<bool, StoreError> {
        let row = sso_request::Entity::find_by_id(id.to_owned())
            .filter(sso_request::Column::UsedAt.is_null())
            .filter(sso_request::Column::PendingIdentity.is_null())
            .filter(sso_request::Column::ExpiresAt.gt(self.clock.now()))
            .one(&self.db)
            .await?;
        Ok(row.is_some_and(|r| r.link_user_id.is_some()))
    }

    /// Takes a pending sign-in of `provider_id` (any provider when `None`): it is marked used,
    /// so a second take of the same id, like an expired or unknown one, gives `None`. One
    /// conditional update decides, so concurrent callbacks cannot both win.
    pub async fn take_sso_request(
        &self,
        id: &str,
        provider_id: Option<Uuid>,
    ) -> Result<Option<SsoRequest>, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let mut q = sso_request::Entity::update_many()
            .col_expr(sso_request::Column::UsedAt, Expr::value(now))
            .filter(sso_request::Column::Id.eq(id))
            .filter(sso_request::Column::UsedAt.is_null())
            .filter(sso_request::Column::PendingIdentity.is_null())
            .filter(sso_request::Column::ExpiresAt.gt(now));
        if let Some(p) = provider_id {
            q = q.filter(sso_request::Column::ProviderId.eq(p));
        }
        let taken = q.exec(&txn).await?;
        if taken.rows_affected != 1 {
            return Ok(None);
        }
        let row = sso_request::Entity::find_by_id(id.to_owned())
            .one(&txn)
            .await?;
        txn.commit().await?;
        Ok(row.map(|r| SsoRequest {
            id: r.id,
            provider_id: r.provider_id,
            nonce: r.nonce,
            verifier_ciphertext: r.verifier_ciphertext,
            return_to: r.return_to,
            link_user_id: r.link_user_id,
        }))
    }

    /// Records a SAML assertion id as used; `false` when it was already (a replay). Ids whose
    /// assertions have expired are forgotten on the way.
    pub async fn remember_assertion(
        &self,
        provider_id: Uuid,
        assertion_id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        sso_assertion::Entity::delete_many()
            .filter(sso_assertion::Column::ExpiresAt.lt(now))
            .exec(&self.db)
            .await?;
        let inserted = sso_assertion::Entity::insert(sso_assertion::ActiveModel {
            provider_id: Set(provider_id),
            id: Set(assertion_id.to_owned()),
            expires_at: Set(expires_at),
        })
        .exec_without_returning(&self.db)
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(e) => match StoreError::unique_or_db(e, String::new) {
                StoreError::Conflict(_) => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Makes `user` an active member of the provider's organization (refusing a suspended or
    /// inactive one) and synchronises their SSO bindings from this provider with the mapped
    /// groups in `identity`. Changes are audited and bump the organization revision.
    pub async fn sso_sync(
        &self,
        provider: &Provider,
        user: &User,
        identity: &Identity,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let organization_id = provider.organization_id;
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        // The revision bump locks the organization row first, as every change does.
        let event = revision::bump(
            &txn,
            Change {
                organization_id,
                kind: crate::domain::change::ChangeKind::SsoSync,
                principal_id: Some(user.id),
                node_id: Some(organization_id),
                role_id: None,
                actor_id: Some(user.id),
            },
        )
        .await?;
        let membership = membership::Entity::find()
            .filter(membership::Column::OrganizationId.eq(organization_id))
            .filter(membership::Column::UserId.eq(user.id))
            .one(&txn)
            .await?;
        let joined = match membership {
            Some(m) => match MemberStatus::from_stored(&m.status) {
                MemberStatus::Active => false,
                status => {
                    return Err(StoreError::Invalid(InvalidInput::new(
                        "membership",
                        format!(
                            "your membership of this organization is {}; ask an administrator",
                            status.as_str()
                        ),
                    )));
                }
            },
            None => {
                membership::Entity::insert(membership::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    organization_id: Set(organization_id),
                    user_id: Set(user.id),
                    status: Set(MemberStatus::Active.as_str().to_owned()),
                    created_at: Set(now),
                    updated_at: Set(now),
                })
                .exec_without_returning(&txn)
                .await?;
                true
            }
        };
        let groups: HashSet<&str> = identity.groups.iter().map(String::as_str).collect();
        let mappings = sso_group_mapping::Entity::find()
            .filter(sso_group_mapping::Column::ProviderId.eq(provider.id))
            .all(&txn)
            .await?;
        // (role, workspace, project) the member should hold through this provider.
        let mut wanted: Vec<(Uuid, Option<Uuid>, Option<Uuid>)> = mappings
            .iter()
            .filter(|m| groups.contains(m.group_name.as_str()))
            .map(|m| (m.role_id, m.workspace_id, m.project_id))
            .collect();
        if wanted.is_empty()
            && let Some(default) = provider.default_role_id
        {
            wanted.push((default, None, None));
        }
        wanted.sort();
        wanted.dedup();
        // A mapped role or node deleted since is skipped.
        let mut usable = Vec::with_capacity(wanted.len());
        for w in wanted {
            let role_ok = role::Entity::find_by_id(w.0)
                .one(&txn)
                .await?
                .is_some_and(|r| r.builtin || r.organization_id == Some(organization_id));
            if role_ok {
                usable.push(w);
            }
        }
        let held = role_binding::Entity::find()
            .filter(role_binding::Column::OrganizationId.eq(organization_id))
            .filter(role_binding::Column::PrincipalId.eq(user.id))
            .filter(role_binding::Column::Source.eq("sso"))
            .filter(role_binding::Column::SsoProviderId.eq(provider.id))
            .all(&txn)
            .await?;
        let key = |b: &role_binding::Model| (b.role_id, b.workspace_id, b.project_id);
        let revoke: Vec<&role_binding::Model> =
            held.iter().filter(|b| !usable.contains(&key(b))).collect();
        let grant: Vec<_> = usable
            .iter()
            .filter(|w| !held.iter().any(|b| key(b) == **w))
            .collect();
        let (teams_joined, teams_left) = sync_teams(&txn, provider, user.id, &groups).await?;
        if !joined
            && revoke.is_empty()
            && grant.is_empty()
            && teams_joined.is_empty()
            && teams_left.is_empty()
        {
            // Nothing changed: no revision, no event (the bump is rolled back).
            txn.rollback().await?;
            return Ok(());
        }
        if !revoke.is_empty() {
            role_binding::Entity::delete_many()
                .filter(role_binding::Column::Id.is_in(revoke.iter().map(|b| b.id)))
                .exec(&txn)
                .await?;
        }
        for (role_id, workspace_id, project_id) in &grant {
            role_binding::Entity::insert(role_binding::ActiveModel {
                id: Set(Uuid::now_v7()),
                organization_id: Set(organization_id),
                workspace_id: Set(*workspace_id),
                project_id: Set(*project_id),
                principal_type: Set("user".to_owned()),
                principal_id: Set(user.id),
                role_id: Set(*role_id),
                granted_by: Set(None),
                granted_at: Set(now),
                expires_at: Set(None),
                source: Set("sso".to_owned()),
                sso_provider_id: Set(Some(provider.id)),
                resource_type: Set(None),
                resource_id: Set(None),
            })
            .exec_without_returning(&txn)
            .await?;
        }
        for team_id in &teams_joined {
            team_member::Entity::insert(team_member::ActiveModel {
                id: Set(Uuid::now_v7()),
                team_id: Set(*team_id),
                organization_id: Set(organization_id),
                principal_type: Set("user".to_owned()),
                principal_id: Set(user.id),
                source: Set("sso".to_owned()),
                sso_provider_id: Set(Some(provider.id)),
                added_by: Set(None),
                added_at: Set(now),
            })
            .exec_without_returning(&txn)
            .await?;
        }
        if !teams_left.is_empty() {
            team_member::Entity::delete_many()
                .filter(team_member::Column::PrincipalId.eq(user.id))
                .filter(team_member::Column::TeamId.is_in(teams_left.iter().copied()))
                .exec(&txn)
                .await?;
        }
        // A team's deny at the organization, or losing a directly mapped Admin, could leave
        // no effective admin: the sign-in is refused rather than the organization lost.
        let admin = self.profile.admin_role().id;
        let loses_admin = revoke
            .iter()
            .any(|b| b.role_id == admin && b.workspace_id.is_none() && b.project_id.is_none());
        if (!teams_joined.is_empty() || loses_admin)
            && !super::bindings::another_admin_remains(
                &txn,
                self.profile.admin_role().id,
                organization_id,
                None,
                None,
                now,
            )
            .await?
        {
            return Err(super::bindings::last_admin_error());
        }
        let describe = |r: &Uuid, w: &Option<Uuid>, p: &Option<Uuid>| json!({ "role_id": r, "node_id": p.or(*w).unwrap_or(organization_id) });
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "sso.sync",
                target_type: "user",
                target_id: Some(user.id),
                before: None,
                after: Some(json!({
                    "source": "sso",
                    "provider_id": provider.id,
                    "groups_seen": identity.groups,
                    "joined": joined,
                    "granted": grant.iter().map(|(r, w, p)| describe(r, w, p)).collect::<Vec<_>>(),
                    "revoked": revoke.iter().map(|b| describe(&b.role_id, &b.workspace_id, &b.project_id)).collect::<Vec<_>>(),
                    "teams_joined": teams_joined,
                    "teams_left": teams_left,
                })),
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(())
    }
}

/// The teams `user` must join and leave so that their teams from `provider` are those its
/// team mappings give `groups`: `(join, leave)`. Memberships added by hand, or by another
/// provider, are left alone.
async fn sync_teams<C: ConnectionTrait>(
    conn: &C,
    provider: &Provider,
    user: Uuid,
    groups: &HashSet<&str>,
) -> Result<(Vec<Uuid>, Vec<Uuid>), StoreError> {
    let mut wanted: Vec<Uuid> = sso_team_mapping::Entity::find()
        .filter(sso_team_mapping::Column::ProviderId.eq(provider.id))
        .all(conn)
        .await?
        .into_iter()
        .filter(|m| groups.contains(m.group_name.as_str()))
        .map(|m| m.team_id)
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let memberships = team_member::Entity::find()
        .filter(team_member::Column::OrganizationId.eq(provider.organization_id))
        .filter(team_member::Column::PrincipalId.eq(user))
        .all(conn)
        .await?;
    let join = wanted
        .iter()
        .copied()
        .filter(|t| !memberships.iter().any(|m| m.team_id == *t))
        .collect();
    let leave = memberships
        .iter()
        .filter(|m| m.source == "sso" && m.sso_provider_id == Some(provider.id))
        .filter(|m| !wanted.contains(&m.team_id))
        .map(|m| m.team_id)
        .collect();
    Ok((join, leave))
}
