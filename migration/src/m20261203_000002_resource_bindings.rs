//! A binding may name one resource (issue #14): the role then applies only to checks of that
//! very resource, at the binding's node or below. Resource ids are the application's own
//! strings, so they are text.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RoleBindings {
    Table,
    /// A type of the catalog; null for a binding on the whole node.
    ResourceType,
    /// Set exactly when `resource_type` is.
    ResourceId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [RoleBindings::ResourceType, RoleBindings::ResourceId] {
            m.alter_table(
                Table::alter()
                    .table(RoleBindings::Table)
                    .add_column(text_null(column))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [RoleBindings::ResourceId, RoleBindings::ResourceType] {
            m.alter_table(
                Table::alter()
                    .table(RoleBindings::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
