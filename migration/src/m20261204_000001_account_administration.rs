//! Account administration (issue #15): the organization that manages an account (it was
//! created through that organization's invitation or SSO), links that change an account's
//! email, and the actor's email kept on every audit event so that it outlives the account.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    /// The organization whose invitation or SSO created the account (null: signed up).
    ManagedByOrganizationId,
}

#[derive(DeriveIden)]
enum EmailVerifications {
    Table,
    /// `verify` (prove the account's email) or `change` (make `email` the account's email).
    Purpose,
}

#[derive(DeriveIden)]
enum PasswordResets {
    Table,
    /// The admin a link was handed to instead of being emailed: using it proves nothing
    /// about the account's email.
    HandedTo,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    /// The acting person's email when the event was written.
    ActorEmail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .add_column(uuid_null(Users::ManagedByOrganizationId))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(EmailVerifications::Table)
                .add_column(string(EmailVerifications::Purpose).default("verify"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(PasswordResets::Table)
                .add_column(uuid_null(PasswordResets::HandedTo))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(AuditEvents::Table)
                .add_column(string_null(AuditEvents::ActorEmail))
                .to_owned(),
        )
        .await?;
        // Older events name their actor by id only: give them the email the account has now,
        // the best that is known, before any account can change it or go.
        m.get_connection()
            .execute_unprepared(
                "UPDATE audit_events SET actor_email = \
                 (SELECT users.email FROM users WHERE users.id = audit_events.actor_id) \
                 WHERE actor_email IS NULL AND actor_id IS NOT NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(AuditEvents::Table)
                .drop_column(AuditEvents::ActorEmail)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(PasswordResets::Table)
                .drop_column(PasswordResets::HandedTo)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(EmailVerifications::Table)
                .drop_column(EmailVerifications::Purpose)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .drop_column(Users::ManagedByOrganizationId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
