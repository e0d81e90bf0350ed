//! Machine identities (issue #15): service accounts, principals of one organization that are
//! bound to roles and teams like users, and API keys, the credentials machines (and people,
//! for their own scripts) present instead of a session. A key is stored only as a hash.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ServiceAccounts {
    Table,
    Id,
    OrganizationId,
    Name,
    /// The name folded for uniqueness within the organization.
    NameKey,
    Description,
    Disabled,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    OrganizationId,
    /// The owner of a personal key (a member of the organization).
    UserId,
    /// The owner of a service account's key.
    ServiceAccountId,
    Name,
    /// SHA-256 of the whole secret, hex.
    TokenHash,
    /// The secret's first characters, to recognise a key in lists (never enough to use it).
    DisplayPrefix,
    /// JSON array of `resource:scope:action`; null: everything its owner holds.
    Scopes,
    /// JSON array of CIDRs; null: any network.
    AllowedCidrs,
    ExpiresAt,
    CreatedBy,
    CreatedAt,
    RevokedAt,
    RevokedBy,
    /// `revoked`, `owner_removed`, `rotated`, `service_account_deleted`.
    RevokedReason,
    /// The key this one replaced by rotation.
    RotatedFrom,
    /// On a key replaced by rotation: it works until then or until its successor's first use.
    OverlapUntil,
    FirstUsedAt,
    LastUsedAt,
    /// JSON array of the last five distinct client IPs, newest first.
    LastIps,
    /// When the 7-day and 1-day expiry notices were claimed (one instance sends each).
    WarnedWeekAt,
    WarnedDayAt,
    /// When the expiry was recorded in the audit trail.
    ExpiryAuditedAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    /// `user`, `service_account`, `api_key` (null on older rows: a user or nobody).
    ActorKind,
    /// The API key (or, later, impersonation session) the actor acted through.
    ActorCredentialId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ServiceAccounts::Table)
                .col(uuid(ServiceAccounts::Id).primary_key())
                .col(uuid(ServiceAccounts::OrganizationId))
                .col(string(ServiceAccounts::Name))
                .col(string(ServiceAccounts::NameKey))
                .col(text_null(ServiceAccounts::Description))
                .col(boolean(ServiceAccounts::Disabled).default(false))
                .col(uuid_null(ServiceAccounts::CreatedBy))
                .col(timestamp_with_time_zone(ServiceAccounts::CreatedAt))
                .col(timestamp_with_time_zone(ServiceAccounts::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ServiceAccounts::Table, ServiceAccounts::OrganizationId)
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_service_accounts_org_name")
                .table(ServiceAccounts::Table)
                .col(ServiceAccounts::OrganizationId)
                .col(ServiceAccounts::NameKey)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                .col(uuid(ApiKeys::Id).primary_key())
                .col(uuid(ApiKeys::OrganizationId))
                .col(uuid_null(ApiKeys::UserId))
                .col(uuid_null(ApiKeys::ServiceAccountId))
                .col(string(ApiKeys::Name))
                .col(string(ApiKeys::TokenHash))
                .col(string(ApiKeys::DisplayPrefix))
                .col(json_null(ApiKeys::Scopes))
                .col(json_null(ApiKeys::AllowedCidrs))
                .col(timestamp_with_time_zone(ApiKeys::ExpiresAt))
                .col(uuid_null(ApiKeys::CreatedBy))
                .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                .col(uuid_null(ApiKeys::RevokedBy))
                .col(string_null(ApiKeys::RevokedReason))
                .col(uuid_null(ApiKeys::RotatedFrom))
                .col(timestamp_with_time_zone_null(ApiKeys::OverlapUntil))
                .col(timestamp_with_time_zone_null(ApiKeys::FirstUsedAt))
                .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                .col(json_null(ApiKeys::LastIps))
                .col(timestamp_with_time_zone_null(ApiKeys::WarnedWeekAt))
                .col(timestamp_with_time_zone_null(ApiKeys::WarnedDayAt))
                .col(timestamp_with_time_zone_null(ApiKeys::ExpiryAuditedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ApiKeys::Table, ApiKeys::OrganizationId)
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(ApiKeys::Table, ApiKeys::ServiceAccountId)
                        .to(ServiceAccounts::Table, ServiceAccounts::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_api_keys_token_hash")
                .table(ApiKeys::Table)
                .col(ApiKeys::TokenHash)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_api_keys_org_user")
                .table(ApiKeys::Table)
                .col(ApiKeys::OrganizationId)
                .col(ApiKeys::UserId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_api_keys_service_account")
                .table(ApiKeys::Table)
                .col(ApiKeys::ServiceAccountId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_api_keys_expires_at")
                .table(ApiKeys::Table)
                .col(ApiKeys::ExpiresAt)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(AuditEvents::Table)
                .add_column(string_null(AuditEvents::ActorKind))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(AuditEvents::Table)
                .add_column(uuid_null(AuditEvents::ActorCredentialId))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(AuditEvents::Table)
                .drop_column(AuditEvents::ActorCredentialId)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(AuditEvents::Table)
                .drop_column(AuditEvents::ActorKind)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(ApiKeys::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(ServiceAccounts::Table).to_owned())
            .await?;
        Ok(())
    }
}
