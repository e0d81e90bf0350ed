//! Audit search (issue #16): pages of an organization's trail, newest first by id (a UUIDv7,
//! so by time), narrowed by actor, action or target. Each filter has an index that starts
//! with the organization and ends with the id, so that a page is one index range however
//! large the trail.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum AuditEvents {
    Table,
    Id,
    OrganizationId,
    ActorId,
    ActorEmail,
    Action,
    TargetType,
    TargetId,
    CreatedAt,
}

/// The new indexes: name and columns after the organization (the id comes last in each).
const INDEXES: [(&str, &[AuditEvents]); 5] = [
    ("ix_audit_events_org_id", &[]),
    ("ix_audit_events_org_actor", &[AuditEvents::ActorId]),
    ("ix_audit_events_org_email", &[AuditEvents::ActorEmail]),
    ("ix_audit_events_org_action", &[AuditEvents::Action]),
    (
        "ix_audit_events_org_target",
        &[AuditEvents::TargetType, AuditEvents::TargetId],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, columns) in INDEXES {
            let mut index = Index::create();
            index
                .name(name)
                .table(AuditEvents::Table)
                .col(AuditEvents::OrganizationId);
            for column in columns {
                index.col(*column);
            }
            m.create_index(index.col(AuditEvents::Id).to_owned())
                .await?;
        }
        // Pages go by id now: (organization, id) replaces (organization, time).
        m.drop_index(
            Index::drop()
                .name("ix_audit_events_org_time")
                .table(AuditEvents::Table)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("ix_audit_events_org_time")
                .table(AuditEvents::Table)
                .col(AuditEvents::OrganizationId)
                .col(AuditEvents::CreatedAt)
                .to_owned(),
        )
        .await?;
        for (name, _) in INDEXES {
            m.drop_index(
                Index::drop()
                    .name(name)
                    .table(AuditEvents::Table)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
