//! Whom an identity provider may sign in (issue #12): SSO identities linked by (provider,
//! subject), an organization's verified email domains (DNS TXT), whether an account's email
//! is proven (and the emailed links that prove it), the domains a provider may create accounts
//! for, whether it accepts IdP-initiated SAML, and the account an SSO round trip links to.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    /// When the email was proven (an emailed link, an emailed invitation, a password reset);
    /// SSO never reaches an account without it.
    EmailVerifiedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum SsoProviders {
    Table,
    Id,
    /// JSON list of email domains the provider may create accounts for; null: any.
    JitDomains,
    /// Whether unsolicited (IdP-initiated) SAML responses are accepted.
    AllowIdpInitiated,
}

#[derive(DeriveIden)]
enum SsoRequests {
    Table,
    /// The signed-in account this round trip links the IdP identity to (not a sign-in).
    LinkUserId,
}

/// An IdP identity linked to an account: (provider, subject) is the key, never the email.
#[derive(DeriveIden)]
enum SsoIdentities {
    Table,
    Id,
    ProviderId,
    Subject,
    UserId,
    /// The email the IdP sent when the link was made (for display).
    Email,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OrganizationDomains {
    Table,
    Id,
    OrganizationId,
    Domain,
    /// The value of the TXT record that proves the domain.
    Token,
    VerifiedAt,
    /// The domain again while verified, else null: unique, so one organization at a time.
    VerifiedDomain,
    CreatedAt,
}

#[derive(DeriveIden)]
enum EmailVerifications {
    Table,
    Id,
    UserId,
    Email,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .add_column(timestamp_with_time_zone_null(Users::EmailVerifiedAt))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(SsoProviders::Table)
                .add_column(json_null(SsoProviders::JitDomains))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(SsoProviders::Table)
                .add_column(boolean(SsoProviders::AllowIdpInitiated).default(false))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(SsoRequests::Table)
                .add_column(uuid_null(SsoRequests::LinkUserId))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SsoIdentities::Table)
                .col(uuid(SsoIdentities::Id).primary_key())
                .col(uuid(SsoIdentities::ProviderId))
                .col(string(SsoIdentities::Subject))
                .col(uuid(SsoIdentities::UserId))
                .col(string(SsoIdentities::Email))
                .col(timestamp_with_time_zone(SsoIdentities::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(SsoIdentities::Table, SsoIdentities::ProviderId)
                        .to(SsoProviders::Table, SsoProviders::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(SsoIdentities::Table, SsoIdentities::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_sso_identities_subject")
                .table(SsoIdentities::Table)
                .col(SsoIdentities::ProviderId)
                .col(SsoIdentities::Subject)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_sso_identities_user")
                .table(SsoIdentities::Table)
                .col(SsoIdentities::UserId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(OrganizationDomains::Table)
                .col(uuid(OrganizationDomains::Id).primary_key())
                .col(uuid(OrganizationDomains::OrganizationId))
                .col(string(OrganizationDomains::Domain))
                .col(string(OrganizationDomains::Token))
                .col(timestamp_with_time_zone_null(
                    OrganizationDomains::VerifiedAt,
                ))
                .col(string_null(OrganizationDomains::VerifiedDomain))
                .col(timestamp_with_time_zone(OrganizationDomains::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(
                            OrganizationDomains::Table,
                            OrganizationDomains::OrganizationId,
                        )
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_organization_domains_org_domain")
                .table(OrganizationDomains::Table)
                .col(OrganizationDomains::OrganizationId)
                .col(OrganizationDomains::Domain)
                .unique()
                .to_owned(),
        )
        .await?;
        // INVARIANT: a domain is verified by one organization at a time (nulls do not clash).
        m.create_index(
            Index::create()
                .name("ux_organization_domains_verified")
                .table(OrganizationDomains::Table)
                .col(OrganizationDomains::VerifiedDomain)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(EmailVerifications::Table)
                .col(uuid(EmailVerifications::Id).primary_key())
                .col(uuid(EmailVerifications::UserId))
                .col(string(EmailVerifications::Email))
                .col(string(EmailVerifications::TokenHash).unique_key())
                .col(timestamp_with_time_zone(EmailVerifications::CreatedAt))
                .col(timestamp_with_time_zone(EmailVerifications::ExpiresAt))
                .col(timestamp_with_time_zone_null(EmailVerifications::UsedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(EmailVerifications::Table, EmailVerifications::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            EmailVerifications::Table.into_iden(),
            OrganizationDomains::Table.into_iden(),
            SsoIdentities::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        m.alter_table(
            Table::alter()
                .table(SsoRequests::Table)
                .drop_column(SsoRequests::LinkUserId)
                .to_owned(),
        )
        .await?;
        for column in [
            SsoProviders::AllowIdpInitiated.into_iden(),
            SsoProviders::JitDomains.into_iden(),
        ] {
            m.alter_table(
                Table::alter()
                    .table(SsoProviders::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .drop_column(Users::EmailVerifiedAt)
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
