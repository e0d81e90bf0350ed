//! Teams (issue #14): named sets of an organization's users (and, later, service accounts).
//! A binding names a team as its principal (`principal_type = 'team'`); every member holds it.
//! An SSO group may map to a team, whose membership each sign-in then synchronises.

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
enum SsoProviders {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
    OrganizationId,
    Name,
    /// The name folded for uniqueness within the organization.
    NameKey,
    Description,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TeamMembers {
    Table,
    Id,
    TeamId,
    /// The team's organization, copied so that a principal's teams are one index lookup.
    OrganizationId,
    /// `user` (later `service_account`).
    PrincipalType,
    PrincipalId,
    /// `manual` or `sso`.
    Source,
    /// For `source = 'sso'`: the provider whose group mapping added the member.
    SsoProviderId,
    AddedBy,
    AddedAt,
}

/// An IdP group of a provider mapped to a team.
#[derive(DeriveIden)]
enum SsoTeamMappings {
    Table,
    Id,
    ProviderId,
    GroupName,
    TeamId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Teams::Table)
                .col(uuid(Teams::Id).primary_key())
                .col(uuid(Teams::OrganizationId))
                .col(string(Teams::Name))
                .col(string(Teams::NameKey))
                .col(text_null(Teams::Description))
                .col(timestamp_with_time_zone(Teams::CreatedAt))
                .col(timestamp_with_time_zone(Teams::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Teams::Table, Teams::OrganizationId)
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_teams_org_name")
                .table(Teams::Table)
                .col(Teams::OrganizationId)
                .col(Teams::NameKey)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(TeamMembers::Table)
                .col(uuid(TeamMembers::Id).primary_key())
                .col(uuid(TeamMembers::TeamId))
                .col(uuid(TeamMembers::OrganizationId))
                .col(string(TeamMembers::PrincipalType))
                .col(uuid(TeamMembers::PrincipalId))
                .col(string(TeamMembers::Source))
                .col(uuid_null(TeamMembers::SsoProviderId))
                .col(uuid_null(TeamMembers::AddedBy))
                .col(timestamp_with_time_zone(TeamMembers::AddedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(TeamMembers::Table, TeamMembers::TeamId)
                        .to(Teams::Table, Teams::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_team_members_team_principal")
                .table(TeamMembers::Table)
                .col(TeamMembers::TeamId)
                .col(TeamMembers::PrincipalId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_team_members_org_principal")
                .table(TeamMembers::Table)
                .col(TeamMembers::OrganizationId)
                .col(TeamMembers::PrincipalId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SsoTeamMappings::Table)
                .col(uuid(SsoTeamMappings::Id).primary_key())
                .col(uuid(SsoTeamMappings::ProviderId))
                .col(string(SsoTeamMappings::GroupName))
                .col(uuid(SsoTeamMappings::TeamId))
                .col(timestamp_with_time_zone(SsoTeamMappings::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(SsoTeamMappings::Table, SsoTeamMappings::ProviderId)
                        .to(SsoProviders::Table, SsoProviders::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(SsoTeamMappings::Table, SsoTeamMappings::TeamId)
                        .to(Teams::Table, Teams::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_sso_team_mappings")
                .table(SsoTeamMappings::Table)
                .col(SsoTeamMappings::ProviderId)
                .col(SsoTeamMappings::GroupName)
                .col(SsoTeamMappings::TeamId)
                .unique()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SsoTeamMappings::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(TeamMembers::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Teams::Table).to_owned())
            .await?;
        Ok(())
    }
}
