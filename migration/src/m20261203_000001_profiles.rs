//! Profiles (issue #14): the database records which profile first served it, so that an
//! instance started with another one refuses to run on it, and a role says where it may be
//! bound.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeploymentSettings {
    Table,
    /// e.g. `profile`.
    Key,
    Value,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Roles {
    Table,
    /// The kinds of node the role may be bound at (`organization,workspace`), in tree order;
    /// null for every kind.
    BindableAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(DeploymentSettings::Table)
                .col(string(DeploymentSettings::Key).primary_key())
                .col(text(DeploymentSettings::Value))
                .col(timestamp_with_time_zone(DeploymentSettings::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Roles::Table)
                .add_column(text_null(Roles::BindableAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Roles::Table)
                .drop_column(Roles::BindableAt)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(DeploymentSettings::Table).to_owned())
            .await
    }
}
