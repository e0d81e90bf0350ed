//! The audit hash chain (issue #16): each organization's events (and apart, those of no
//! organization) carry their place in the chain, the hash of the event before and their own;
//! `audit_chains` holds each chain's head, which the writer of the next event locks.
//! Events written before this migration stay outside the chain.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    /// The organization, or the nil UUID for events of no organization.
    ChainId,
    Seq,
    PrevHash,
    Hash,
}

#[derive(DeriveIden)]
enum AuditChains {
    Table,
    ChainId,
    /// The last event's seq and hash.
    Seq,
    Hash,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            uuid_null(AuditEvents::ChainId),
            big_integer_null(AuditEvents::Seq),
            string_null(AuditEvents::PrevHash),
            string_null(AuditEvents::Hash),
        ] {
            let mut column = column;
            m.alter_table(
                Table::alter()
                    .table(AuditEvents::Table)
                    .add_column(&mut column)
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(
            Index::create()
                .name("ux_audit_events_chain_seq")
                .table(AuditEvents::Table)
                .col(AuditEvents::ChainId)
                .col(AuditEvents::Seq)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AuditChains::Table)
                .col(uuid(AuditChains::ChainId).primary_key())
                .col(big_integer(AuditChains::Seq))
                .col(string(AuditChains::Hash))
                .col(timestamp_with_time_zone(AuditChains::UpdatedAt))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AuditChains::Table).to_owned())
            .await?;
        m.drop_index(
            Index::drop()
                .name("ux_audit_events_chain_seq")
                .table(AuditEvents::Table)
                .to_owned(),
        )
        .await?;
        for column in [
            AuditEvents::Hash,
            AuditEvents::PrevHash,
            AuditEvents::Seq,
            AuditEvents::ChainId,
        ] {
            m.alter_table(
                Table::alter()
                    .table(AuditEvents::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
