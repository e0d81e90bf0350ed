//! Single sign-on: identity providers per organization (OIDC or SAML), IdP group → role
//! mappings, pending sign-in requests (state, nonce, PKCE), SAML assertions already used
//! (replay), "enforce SSO" per organization, and the provider that made an SSO binding.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    EnforceSso,
}

#[derive(DeriveIden)]
enum RoleBindings {
    Table,
    SsoProviderId,
}

#[derive(DeriveIden)]
enum SsoProviders {
    Table,
    Id,
    OrganizationId,
    Kind,
    Name,
    Enabled,
    /// Non-secret settings (issuer, client id, scopes, claim and attribute names, IdP metadata).
    Settings,
    /// The OIDC client secret, encrypted (AES-256-GCM) with the deployment's key.
    SecretCiphertext,
    DefaultRoleId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SsoGroupMappings {
    Table,
    Id,
    ProviderId,
    GroupName,
    RoleId,
    WorkspaceId,
    ProjectId,
    CreatedAt,
}

/// A sign-in started at the gateway and not yet finished: single use, short-lived.
#[derive(DeriveIden)]
enum SsoRequests {
    Table,
    /// The OIDC `state` or the SAML request id (random, unguessable).
    Id,
    ProviderId,
    Nonce,
    /// The PKCE verifier, encrypted.
    VerifierCiphertext,
    ReturnTo,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

/// SAML assertion ids already accepted, kept until they would have expired anyway.
#[derive(DeriveIden)]
enum SsoAssertions {
    Table,
    Id,
    ProviderId,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Organizations::Table)
                .add_column(boolean(Organizations::EnforceSso).default(false))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(RoleBindings::Table)
                .add_column(uuid_null(RoleBindings::SsoProviderId))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SsoProviders::Table)
                .col(uuid(SsoProviders::Id).primary_key())
                .col(uuid(SsoProviders::OrganizationId))
                .col(string(SsoProviders::Kind))
                .col(string(SsoProviders::Name))
                .col(boolean(SsoProviders::Enabled))
                .col(json(SsoProviders::Settings))
                .col(text_null(SsoProviders::SecretCiphertext))
                .col(uuid_null(SsoProviders::DefaultRoleId))
                .col(timestamp_with_time_zone(SsoProviders::CreatedAt))
                .col(timestamp_with_time_zone(SsoProviders::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(SsoProviders::Table, SsoProviders::OrganizationId)
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_sso_providers_org")
                .table(SsoProviders::Table)
                .col(SsoProviders::OrganizationId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SsoGroupMappings::Table)
                .col(uuid(SsoGroupMappings::Id).primary_key())
                .col(uuid(SsoGroupMappings::ProviderId))
                .col(string(SsoGroupMappings::GroupName))
                .col(uuid(SsoGroupMappings::RoleId))
                .col(uuid_null(SsoGroupMappings::WorkspaceId))
                .col(uuid_null(SsoGroupMappings::ProjectId))
                .col(timestamp_with_time_zone(SsoGroupMappings::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(SsoGroupMappings::Table, SsoGroupMappings::ProviderId)
                        .to(SsoProviders::Table, SsoProviders::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_sso_group_mappings_provider")
                .table(SsoGroupMappings::Table)
                .col(SsoGroupMappings::ProviderId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SsoRequests::Table)
                .col(string(SsoRequests::Id).primary_key())
                .col(uuid(SsoRequests::ProviderId))
                .col(string_null(SsoRequests::Nonce))
                .col(text_null(SsoRequests::VerifierCiphertext))
                .col(text_null(SsoRequests::ReturnTo))
                .col(timestamp_with_time_zone(SsoRequests::CreatedAt))
                .col(timestamp_with_time_zone(SsoRequests::ExpiresAt))
                .col(timestamp_with_time_zone_null(SsoRequests::UsedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(SsoRequests::Table, SsoRequests::ProviderId)
                        .to(SsoProviders::Table, SsoProviders::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SsoAssertions::Table)
                .col(string(SsoAssertions::Id))
                .col(uuid(SsoAssertions::ProviderId))
                .col(timestamp_with_time_zone(SsoAssertions::ExpiresAt))
                .primary_key(
                    Index::create()
                        .col(SsoAssertions::ProviderId)
                        .col(SsoAssertions::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(SsoAssertions::Table, SsoAssertions::ProviderId)
                        .to(SsoProviders::Table, SsoProviders::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SsoAssertions::Table.into_iden(),
            SsoRequests::Table.into_iden(),
            SsoGroupMappings::Table.into_iden(),
            SsoProviders::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        m.alter_table(
            Table::alter()
                .table(RoleBindings::Table)
                .drop_column(RoleBindings::SsoProviderId)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Organizations::Table)
                .drop_column(Organizations::EnforceSso)
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
