//! Which account an SSO sign-in reaches. An identity provider speaks for the identities linked
//! to it, (provider, subject), never for an email across the installation.
//!
//! INVARIANT: a sign-in reaches an existing account only when (a) its (provider, subject) is
//! linked to it, (b) the account's email is verified and its domain is verified by the
//! provider's organization (the link is then made), or (c) the signed-in account itself asked
//! for the link by an SSO round trip. Otherwise it is refused, and no account is changed.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use entity::{sso_identity, user};

use super::audit::{self, Entry};
use super::{Store, StoreError};
use crate::domain::sso::{Identity, Provider};
use crate::domain::{Actor, Email, InvalidInput, User};

/// Why no account was reached: the message is for the person signing in.
fn refused(message: &str) -> StoreError {
    StoreError::Invalid(InvalidInput::new("email", message))
}

/// The email's domain, lowercased (emails are stored lowercased).
pub(crate) fn domain_of(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, d)| d)
}

impl Store {
    /// The account for an SSO sign-in of `identity` (whose email is `email`) through
    /// `provider`: the linked one, an existing one the rules let the provider speak for (then
    /// linked), or a new one (just in time, with no password). See the module's INVARIANT.
    pub async fn sso_account(
        &self,
        provider: &Provider,
        identity: &Identity,
        email: &Email,
        actor: &Actor,
    ) -> Result<User, StoreError> {
        let txn = self.db.begin().await?;
        if let Some(link) = sso_identity::Entity::find()
            .filter(sso_identity::Column::ProviderId.eq(provider.id))
            .filter(sso_identity::Column::Subject.eq(identity.subject.as_str()))
            .one(&txn)
            .await?
        {
            let found = user::Entity::find_by_id(link.user_id)
                .one(&txn)
                .await?
                .ok_or(StoreError::NotFound("account"))?;
            if found.deleted_at.is_some() {
                return Err(refused("this account has been deleted"));
            }
            return Ok(found.into());
        }
        let domain = domain_of(email.as_str());
        let domain_verified = self
            .domain_verified_in(&txn, provider.organization_id, domain)
            .await?;
        if let Some(found) = user::Entity::find()
            .filter(user::Column::Email.eq(email.as_str()))
            .one(&txn)
            .await?
        {
            if found.deleted_at.is_some() {
                return Err(refused("this account has been deleted"));
            }
            if found.email_verified_at.is_none() || !domain_verified {
                return Err(refused(
                    "an account with this email exists and is not linked to this identity provider: sign in to it with its password first, then link the provider from your account (`startSsoLink`)",
                ));
            }
            let user: User = found.into();
            link(
                &txn,
                provider,
                identity,
                &user,
                "domain",
                actor,
                self.clock.now(),
            )
            .await?;
            txn.commit().await?;
            return Ok(user);
        }
        if let Some(allowed) = &provider.jit_domains
            && !allowed.iter().any(|d| d == domain)
        {
            return Err(refused(
                "this identity provider may not create accounts for your email's domain; ask an administrator",
            ));
        }
        let now = self.clock.now();
        let id = Uuid::now_v7();
        let display = identity
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty() && n.chars().count() <= 200)
            .unwrap_or_else(|| email.as_str().split('@').next().unwrap_or("user"))
            .to_owned();
        let created = user::Entity::insert(user::ActiveModel {
            id: Set(id),
            email: Set(email.as_str().to_owned()),
            name: Set(display),
            failed_sign_ins: Set(0),
            locked_until: Set(None),
            deleted_at: Set(None),
            // The organization proved it owns the domain, and its IdP vouches for the person.
            email_verified_at: Set(domain_verified.then_some(now)),
            // Created by the organization's SSO: it manages the account.
            managed_by_organization_id: Set(Some(provider.organization_id)),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(&txn)
        .await
        .map_err(|e| StoreError::unique_or_db(e, || "the account was just created".to_owned()))?;
        let actor = actor.as_person(id, &created.email);
        audit::record(
            &txn,
            &actor,
            Entry {
                organization_id: Some(provider.organization_id),
                action: "user.create",
                target_type: "user",
                target_id: Some(id),
                before: None,
                after: Some(
                    json!({ "email": created.email, "source": "sso", "provider_id": provider.id }),
                ),
            },
        )
        .await?;
        let user: User = created.into();
        link(
            &txn,
            provider,
            identity,
            &user,
            "created",
            &actor,
            self.clock.now(),
        )
        .await?;
        txn.commit().await?;
        Ok(user)
    }

    /// Links `identity` of `provider` to `user`, who asked for it by an SSO round trip started
    /// from their own (password) session. CONFLICT when the identity is linked elsewhere.
    pub async fn link_sso_identity(
        &self,
        provider: &Provider,
        identity: &Identity,
        user: &User,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        link(
            &txn,
            provider,
            identity,
            user,
            "requested",
            actor,
            self.clock.now(),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// The identities linked to `user_id`: (provider, subject, email) for each.
    pub async fn sso_identities_of(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<(Uuid, String, String)>, StoreError> {
        Ok(sso_identity::Entity::find()
            .filter(sso_identity::Column::UserId.eq(user_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|l| (l.provider_id, l.subject, l.email))
            .collect())
    }
}

/// Records, on `conn`, the link of `identity` to `user` (audited as `sso.link`, `how` saying
/// why the provider may speak for the account).
async fn link<C: ConnectionTrait>(
    conn: &C,
    provider: &Provider,
    identity: &Identity,
    user: &User,
    how: &str,
    actor: &Actor,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    sso_identity::Entity::insert(sso_identity::ActiveModel {
        id: Set(Uuid::now_v7()),
        provider_id: Set(provider.id),
        subject: Set(identity.subject.clone()),
        user_id: Set(user.id),
        email: Set(identity.email.clone()),
        created_at: Set(now),
    })
    .exec_without_returning(conn)
    .await
    .map_err(|e| {
        StoreError::unique_or_db(e, || {
            "this identity of the provider is already linked to an account".to_owned()
        })
    })?;
    audit::record(
        conn,
        actor,
        Entry {
            organization_id: Some(provider.organization_id),
            action: "sso.link",
            target_type: "user",
            target_id: Some(user.id),
            before: None,
            after: Some(json!({
                "provider_id": provider.id,
                "subject": identity.subject,
                "email": identity.email,
                "how": how,
            })),
        },
    )
    .await?;
    Ok(())
}
