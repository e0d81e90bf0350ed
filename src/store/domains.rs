//! An organization's email domains: claimed, then verified by a DNS TXT record (looked up by
//! `crate::dns`), so that its identity providers may speak for accounts in them.
//!
//! INVARIANT: a domain is verified by one organization at a time: `verified_domain` is unique
//! and set only while verified, so two organizations verifying at once cannot both win.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait, sea_query::Expr,
};
use serde_json::json;
use uuid::Uuid;

use entity::organization_domain;

use super::audit::{self, Entry};
use super::{Store, StoreError};
use crate::domain::{Actor, OrganizationDomain};

impl From<organization_domain::Model> for OrganizationDomain {
    fn from(m: organization_domain::Model) -> Self {
        Self {
            id: m.id,
            organization_id: m.organization_id,
            domain: m.domain,
            token: m.token,
            verified_at: m.verified_at,
            created_at: m.created_at,
        }
    }
}

impl Store {
    /// Claims `domain` for the organization (unverified), with the TXT value that will prove
    /// it. CONFLICT when the organization already claimed it.
    pub async fn add_domain(
        &self,
        organization_id: Uuid,
        domain: &str,
        token: String,
        actor: &Actor,
    ) -> Result<OrganizationDomain, StoreError> {
        let txn = self.db.begin().await?;
        let id = Uuid::now_v7();
        let created = organization_domain::Entity::insert(organization_domain::ActiveModel {
            id: Set(id),
            organization_id: Set(organization_id),
            domain: Set(domain.to_owned()),
            token: Set(token),
            verified_at: Set(None),
            verified_domain: Set(None),
            created_at: Set(self.clock.now()),
        })
        .exec_with_returning(&txn)
        .await
        .map_err(|e| {
            StoreError::unique_or_db(e, || {
                format!("the organization has already added `{domain}`")
            })
        })?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "domain.add",
                target_type: "domain",
                target_id: Some(id),
                before: None,
                after: Some(json!({ "domain": domain })),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(created.into())
    }

    /// Marks the domain verified (its TXT record was found). CONFLICT when another
    /// organization holds it verified.
    pub async fn mark_domain_verified(
        &self,
        domain: &OrganizationDomain,
        actor: &Actor,
    ) -> Result<OrganizationDomain, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        organization_domain::Entity::update_many()
            .col_expr(organization_domain::Column::VerifiedAt, Expr::value(now))
            .col_expr(
                organization_domain::Column::VerifiedDomain,
                Expr::value(domain.domain.clone()),
            )
            .filter(organization_domain::Column::Id.eq(domain.id))
            .exec(&txn)
            .await
            .map_err(|e| {
                StoreError::unique_or_db(e, || {
                    format!(
                        "`{}` is verified by another organization; it must remove it first",
                        domain.domain
                    )
                })
            })?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(domain.organization_id),
                action: "domain.verify",
                target_type: "domain",
                target_id: Some(domain.id),
                before: None,
                after: Some(json!({ "domain": domain.domain })),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(OrganizationDomain {
            verified_at: Some(now),
            ..domain.clone()
        })
    }

    /// Removes a domain of the organization; its providers no longer speak for accounts in it
    /// (links already made stay).
    pub async fn remove_domain(
        &self,
        domain: &OrganizationDomain,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        organization_domain::Entity::delete_by_id(domain.id)
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(domain.organization_id),
                action: "domain.remove",
                target_type: "domain",
                target_id: Some(domain.id),
                before: Some(
                    json!({ "domain": domain.domain, "verified": domain.verified_at.is_some() }),
                ),
                after: None,
            },
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// One domain record by id.
    pub async fn domain(&self, id: Uuid) -> Result<Option<OrganizationDomain>, StoreError> {
        Ok(organization_domain::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(Into::into))
    }

    /// The organization's domains, in the order they were added.
    pub async fn domains(
        &self,
        organization_id: Uuid,
    ) -> Result<Vec<OrganizationDomain>, StoreError> {
        Ok(organization_domain::Entity::find()
            .filter(organization_domain::Column::OrganizationId.eq(organization_id))
            .order_by_asc(organization_domain::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Whether `organization_id` manages the account `user_id`: its email lies in a domain the
    /// organization verified. Account-wide actions of its administrators (a member's every
    /// session, their lockout) need it; otherwise they reach only what the organization owns.
    pub(crate) async fn manages_account<C: ConnectionTrait>(
        &self,
        conn: &C,
        organization_id: Uuid,
        user_id: Uuid,
    ) -> Result<bool, StoreError> {
        let Some(account) = entity::user::Entity::find_by_id(user_id).one(conn).await? else {
            return Ok(false);
        };
        let domain = super::sso_identities::domain_of(&account.email);
        self.domain_verified_in(conn, organization_id, domain).await
    }

    /// Whether `organization_id` holds `domain` verified, read on `conn`.
    pub(super) async fn domain_verified_in<C: ConnectionTrait>(
        &self,
        conn: &C,
        organization_id: Uuid,
        domain: &str,
    ) -> Result<bool, StoreError> {
        Ok(organization_domain::Entity::find()
            .filter(organization_domain::Column::OrganizationId.eq(organization_id))
            .filter(organization_domain::Column::VerifiedDomain.eq(domain))
            .one(conn)
            .await?
            .is_some())
    }
}
