//! Impersonation (issue #15): a session of one organization that acts as its subject, opened
//! by an admin for a bounded time with a reason; every audit event it writes names both.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sessions {
    Table,
    /// Who opened this session to act as its user (null: the user signed in).
    ImpersonatorId,
    ImpersonationReason,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    /// The person acting as `actor_id` through an impersonation session.
    ImpersonatorId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Sessions::Table)
                .add_column(uuid_null(Sessions::ImpersonatorId))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Sessions::Table)
                .add_column(text_null(Sessions::ImpersonationReason))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(AuditEvents::Table)
                .add_column(uuid_null(AuditEvents::ImpersonatorId))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(AuditEvents::Table)
                .drop_column(AuditEvents::ImpersonatorId)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Sessions::Table)
                .drop_column(Sessions::ImpersonationReason)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Sessions::Table)
                .drop_column(Sessions::ImpersonatorId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
