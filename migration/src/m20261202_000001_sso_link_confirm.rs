//! A link of an SSO identity to an account waits for that account to confirm it (issue #12):
//! the round trip proves the person at the IdP, the confirmation (by the account's own session)
//! proves the person at the gateway is the same one, so nobody can have someone else's browser
//! link their identity to the wrong account.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SsoRequests {
    Table,
    /// JSON of the identity an IdP proved for a link round trip, until the account confirms it
    /// (the row's id is then the hash of the confirmation code).
    PendingIdentity,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(SsoRequests::Table)
                .add_column(text_null(SsoRequests::PendingIdentity))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(SsoRequests::Table)
                .drop_column(SsoRequests::PendingIdentity)
                .to_owned(),
        )
        .await
    }
}
