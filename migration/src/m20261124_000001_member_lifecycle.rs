//! The member and account lifecycle: invitations carry a name, a message and role grants and
//! can be revoked; password resets; sign-in lockout uses the existing `users` columns.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Invitations {
    Table,
    Id,
    Name,
    Message,
    RevokedAt,
    RevokedBy,
    SentAt,
}

/// One role an invitation grants on acceptance, at a node (the organization when both node
/// columns are null), like a binding.
#[derive(DeriveIden)]
enum InvitationGrants {
    Table,
    Id,
    InvitationId,
    Position,
    RoleId,
    WorkspaceId,
    ProjectId,
}

/// A password reset: only the SHA-256 of the token is stored; single use.
#[derive(DeriveIden)]
enum PasswordResets {
    Table,
    Id,
    UserId,
    TokenHash,
    Ip,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            text_null(Invitations::Name),
            text_null(Invitations::Message),
            timestamp_with_time_zone_null(Invitations::RevokedAt),
            uuid_null(Invitations::RevokedBy),
            timestamp_with_time_zone_null(Invitations::SentAt),
        ] {
            let mut column = column;
            m.alter_table(
                Table::alter()
                    .table(Invitations::Table)
                    .add_column(&mut column)
                    .to_owned(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table(InvitationGrants::Table)
                .col(uuid(InvitationGrants::Id).primary_key())
                .col(uuid(InvitationGrants::InvitationId))
                .col(integer(InvitationGrants::Position))
                .col(uuid(InvitationGrants::RoleId))
                .col(uuid_null(InvitationGrants::WorkspaceId))
                .col(uuid_null(InvitationGrants::ProjectId))
                .foreign_key(
                    ForeignKey::create()
                        .from(InvitationGrants::Table, InvitationGrants::InvitationId)
                        .to(Invitations::Table, Invitations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_invitation_grants_invitation")
                .table(InvitationGrants::Table)
                .col(InvitationGrants::InvitationId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PasswordResets::Table)
                .col(uuid(PasswordResets::Id).primary_key())
                .col(uuid(PasswordResets::UserId))
                .col(string_uniq(PasswordResets::TokenHash))
                .col(string_null(PasswordResets::Ip))
                .col(timestamp_with_time_zone(PasswordResets::CreatedAt))
                .col(timestamp_with_time_zone(PasswordResets::ExpiresAt))
                .col(timestamp_with_time_zone_null(PasswordResets::UsedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(PasswordResets::Table, PasswordResets::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_password_resets_user")
                .table(PasswordResets::Table)
                .col(PasswordResets::UserId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(PasswordResets::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(InvitationGrants::Table).to_owned())
            .await?;
        for column in [
            Invitations::SentAt,
            Invitations::RevokedBy,
            Invitations::RevokedAt,
            Invitations::Message,
            Invitations::Name,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Invitations::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
