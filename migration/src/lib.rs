//! Database migrations, one file each, applied in order by `iam-gateway migrate` and at start-up.
//!
//! A migration that has landed is never edited: a change to the schema is a new file. Each one
//! runs on SQLite and on PostgreSQL, and its `down` undoes its `up` (tested on both).

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_initial;
mod m20261124_000001_member_lifecycle;
mod m20261124_000002_sso;
mod m20261201_000001_sso_trust;
mod m20261202_000001_sso_link_confirm;
mod m20261203_000001_profiles;
mod m20261203_000002_resource_bindings;
mod m20261203_000003_teams;
mod m20261203_000004_machine_identities;
mod m20261203_000005_impersonation;
mod m20261204_000001_account_administration;
mod m20261204_000002_audit_search;
mod m20261204_000003_audit_chain;
pub mod seed;

/// Every migration of the gateway, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_initial::Migration),
            Box::new(m20261124_000001_member_lifecycle::Migration),
            Box::new(m20261124_000002_sso::Migration),
            Box::new(m20261201_000001_sso_trust::Migration),
            Box::new(m20261202_000001_sso_link_confirm::Migration),
            Box::new(m20261203_000001_profiles::Migration),
            Box::new(m20261203_000002_resource_bindings::Migration),
            Box::new(m20261203_000003_teams::Migration),
            Box::new(m20261203_000004_machine_identities::Migration),
            Box::new(m20261203_000005_impersonation::Migration),
            Box::new(m20261204_000001_account_administration::Migration),
            Box::new(m20261204_000002_audit_search::Migration),
            Box::new(m20261204_000003_audit_chain::Migration),
        ]
    }
}
