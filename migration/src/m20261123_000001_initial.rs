//! The foundation: accounts, sessions, the organization hierarchy, memberships, roles and
//! bindings, invitations, the audit trail and the per-organization change log.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::seed::BUILTIN_ROLES;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    Name,
    FailedSignIns,
    LockedUntil,
    DeletedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Credentials {
    Table,
    Id,
    UserId,
    Kind,
    SecretHash,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    TokenHash,
    Method,
    OrganizationId,
    Ip,
    UserAgent,
    CreatedAt,
    LastActiveAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Slug,
    Name,
    Revision,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Workspaces {
    Table,
    Id,
    OrganizationId,
    Slug,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
    OrganizationId,
    WorkspaceId,
    Slug,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    Id,
    OrganizationId,
    UserId,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Roles {
    Table,
    Id,
    OrganizationId,
    Key,
    Name,
    Description,
    Builtin,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RolePolicies {
    Table,
    Id,
    RoleId,
    Position,
    Effect,
    Permission,
}

#[derive(DeriveIden)]
enum RoleBindings {
    Table,
    Id,
    OrganizationId,
    WorkspaceId,
    ProjectId,
    PrincipalType,
    PrincipalId,
    RoleId,
    GrantedBy,
    GrantedAt,
    ExpiresAt,
    Source,
}

#[derive(DeriveIden)]
enum Invitations {
    Table,
    Id,
    OrganizationId,
    Email,
    TokenHash,
    Status,
    InvitedBy,
    CreatedAt,
    ExpiresAt,
    AcceptedAt,
    AcceptedBy,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    OrganizationId,
    ActorId,
    Action,
    TargetType,
    TargetId,
    Result,
    Before,
    After,
    Ip,
    UserAgent,
    RequestId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ChangeLog {
    Table,
    Id,
    OrganizationId,
    Revision,
    Kind,
    PrincipalId,
    NodeId,
    RoleId,
    ActorId,
    CreatedAt,
}

/// A foreign key from `from.col` to `to.id` that deletes the row with its parent.
fn cascade<F: IntoIden, T: IntoIden>(
    from: F,
    col: impl IntoIden,
    to: T,
    to_id: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from, col)
        .to(to, to_id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(uuid(Users::Id).primary_key())
                .col(string_uniq(Users::Email))
                .col(string(Users::Name))
                .col(integer(Users::FailedSignIns).default(0))
                .col(timestamp_with_time_zone_null(Users::LockedUntil))
                .col(timestamp_with_time_zone_null(Users::DeletedAt))
                .col(timestamp_with_time_zone(Users::CreatedAt))
                .col(timestamp_with_time_zone(Users::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Credentials::Table)
                .col(uuid(Credentials::Id).primary_key())
                .col(uuid(Credentials::UserId))
                .col(string(Credentials::Kind))
                .col(text(Credentials::SecretHash))
                .col(timestamp_with_time_zone(Credentials::CreatedAt))
                .col(timestamp_with_time_zone(Credentials::UpdatedAt))
                .foreign_key(&mut cascade(
                    Credentials::Table,
                    Credentials::UserId,
                    Users::Table,
                    Users::Id,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_credentials_user_kind")
                .table(Credentials::Table)
                .col(Credentials::UserId)
                .col(Credentials::Kind)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Organizations::Table)
                .col(uuid(Organizations::Id).primary_key())
                .col(string_uniq(Organizations::Slug))
                .col(string(Organizations::Name))
                .col(big_integer(Organizations::Revision).default(0))
                .col(uuid_null(Organizations::CreatedBy))
                .col(timestamp_with_time_zone(Organizations::CreatedAt))
                .col(timestamp_with_time_zone(Organizations::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(uuid(Sessions::Id).primary_key())
                .col(uuid(Sessions::UserId))
                .col(string_uniq(Sessions::TokenHash))
                .col(string(Sessions::Method))
                .col(uuid_null(Sessions::OrganizationId))
                .col(string_null(Sessions::Ip))
                .col(text_null(Sessions::UserAgent))
                .col(timestamp_with_time_zone(Sessions::CreatedAt))
                .col(timestamp_with_time_zone(Sessions::LastActiveAt))
                .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                .col(timestamp_with_time_zone_null(Sessions::RevokedAt))
                .foreign_key(&mut cascade(
                    Sessions::Table,
                    Sessions::UserId,
                    Users::Table,
                    Users::Id,
                ))
                .foreign_key(&mut cascade(
                    Sessions::Table,
                    Sessions::OrganizationId,
                    Organizations::Table,
                    Organizations::Id,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_sessions_user")
                .table(Sessions::Table)
                .col(Sessions::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Workspaces::Table)
                .col(uuid(Workspaces::Id).primary_key())
                .col(uuid(Workspaces::OrganizationId))
                .col(string(Workspaces::Slug))
                .col(string(Workspaces::Name))
                .col(timestamp_with_time_zone(Workspaces::CreatedAt))
                .col(timestamp_with_time_zone(Workspaces::UpdatedAt))
                .foreign_key(&mut cascade(
                    Workspaces::Table,
                    Workspaces::OrganizationId,
                    Organizations::Table,
                    Organizations::Id,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_workspaces_org_slug")
                .table(Workspaces::Table)
                .col(Workspaces::OrganizationId)
                .col(Workspaces::Slug)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Projects::Table)
                .col(uuid(Projects::Id).primary_key())
                .col(uuid(Projects::OrganizationId))
                .col(uuid(Projects::WorkspaceId))
                .col(string(Projects::Slug))
                .col(string(Projects::Name))
                .col(timestamp_with_time_zone(Projects::CreatedAt))
                .col(timestamp_with_time_zone(Projects::UpdatedAt))
                .foreign_key(&mut cascade(
                    Projects::Table,
                    Projects::OrganizationId,
                    Organizations::Table,
                    Organizations::Id,
                ))
                .foreign_key(&mut cascade(
                    Projects::Table,
                    Projects::WorkspaceId,
                    Workspaces::Table,
                    Workspaces::Id,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_projects_workspace_slug")
                .table(Projects::Table)
                .col(Projects::WorkspaceId)
                .col(Projects::Slug)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Memberships::Table)
                .col(uuid(Memberships::Id).primary_key())
                .col(uuid(Memberships::OrganizationId))
                .col(uuid(Memberships::UserId))
                .col(string(Memberships::Status))
                .col(timestamp_with_time_zone(Memberships::CreatedAt))
                .col(timestamp_with_time_zone(Memberships::UpdatedAt))
                .foreign_key(&mut cascade(
                    Memberships::Table,
                    Memberships::OrganizationId,
                    Organizations::Table,
                    Organizations::Id,
                ))
                .foreign_key(&mut cascade(
                    Memberships::Table,
                    Memberships::UserId,
                    Users::Table,
                    Users::Id,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_memberships_org_user")
                .table(Memberships::Table)
                .col(Memberships::OrganizationId)
                .col(Memberships::UserId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_memberships_user")
                .table(Memberships::Table)
                .col(Memberships::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Roles::Table)
                .col(uuid(Roles::Id).primary_key())
                .col(uuid_null(Roles::OrganizationId))
                .col(string_null(Roles::Key))
                .col(string(Roles::Name))
                .col(text(Roles::Description))
                .col(boolean(Roles::Builtin).default(false))
                .col(timestamp_with_time_zone(Roles::CreatedAt))
                .col(timestamp_with_time_zone(Roles::UpdatedAt))
                .foreign_key(&mut cascade(
                    Roles::Table,
                    Roles::OrganizationId,
                    Organizations::Table,
                    Organizations::Id,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_roles_org")
                .table(Roles::Table)
                .col(Roles::OrganizationId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RolePolicies::Table)
                .col(uuid(RolePolicies::Id).primary_key())
                .col(uuid(RolePolicies::RoleId))
                .col(integer(RolePolicies::Position))
                .col(string(RolePolicies::Effect))
                .col(string(RolePolicies::Permission))
                .foreign_key(&mut cascade(
                    RolePolicies::Table,
                    RolePolicies::RoleId,
                    Roles::Table,
                    Roles::Id,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_role_policies_role")
                .table(RolePolicies::Table)
                .col(RolePolicies::RoleId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RoleBindings::Table)
                .col(uuid(RoleBindings::Id).primary_key())
                .col(uuid(RoleBindings::OrganizationId))
                .col(uuid_null(RoleBindings::WorkspaceId))
                .col(uuid_null(RoleBindings::ProjectId))
                .col(string(RoleBindings::PrincipalType))
                .col(uuid(RoleBindings::PrincipalId))
                .col(uuid(RoleBindings::RoleId))
                .col(uuid_null(RoleBindings::GrantedBy))
                .col(timestamp_with_time_zone(RoleBindings::GrantedAt))
                .col(timestamp_with_time_zone_null(RoleBindings::ExpiresAt))
                .col(string(RoleBindings::Source))
                .foreign_key(&mut cascade(
                    RoleBindings::Table,
                    RoleBindings::OrganizationId,
                    Organizations::Table,
                    Organizations::Id,
                ))
                .foreign_key(&mut cascade(
                    RoleBindings::Table,
                    RoleBindings::WorkspaceId,
                    Workspaces::Table,
                    Workspaces::Id,
                ))
                .foreign_key(&mut cascade(
                    RoleBindings::Table,
                    RoleBindings::ProjectId,
                    Projects::Table,
                    Projects::Id,
                ))
                .foreign_key(&mut cascade(
                    RoleBindings::Table,
                    RoleBindings::RoleId,
                    Roles::Table,
                    Roles::Id,
                ))
                .to_owned(),
        )
        .await?;
        // "The bindings of principal P in organization O": the facts of every check.
        m.create_index(
            Index::create()
                .name("ix_role_bindings_principal_org")
                .table(RoleBindings::Table)
                .col(RoleBindings::PrincipalId)
                .col(RoleBindings::OrganizationId)
                .to_owned(),
        )
        .await?;
        // Listing by node, and the cascades from workspaces and projects.
        m.create_index(
            Index::create()
                .name("ix_role_bindings_node")
                .table(RoleBindings::Table)
                .col(RoleBindings::OrganizationId)
                .col(RoleBindings::WorkspaceId)
                .col(RoleBindings::ProjectId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_role_bindings_project")
                .table(RoleBindings::Table)
                .col(RoleBindings::ProjectId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_role_bindings_role")
                .table(RoleBindings::Table)
                .col(RoleBindings::RoleId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Invitations::Table)
                .col(uuid(Invitations::Id).primary_key())
                .col(uuid(Invitations::OrganizationId))
                .col(string(Invitations::Email))
                .col(string_uniq(Invitations::TokenHash))
                .col(string(Invitations::Status))
                .col(uuid_null(Invitations::InvitedBy))
                .col(timestamp_with_time_zone(Invitations::CreatedAt))
                .col(timestamp_with_time_zone(Invitations::ExpiresAt))
                .col(timestamp_with_time_zone_null(Invitations::AcceptedAt))
                .col(uuid_null(Invitations::AcceptedBy))
                .foreign_key(&mut cascade(
                    Invitations::Table,
                    Invitations::OrganizationId,
                    Organizations::Table,
                    Organizations::Id,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_invitations_org_email")
                .table(Invitations::Table)
                .col(Invitations::OrganizationId)
                .col(Invitations::Email)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuditEvents::Table)
                .col(uuid(AuditEvents::Id).primary_key())
                .col(uuid_null(AuditEvents::OrganizationId))
                .col(uuid_null(AuditEvents::ActorId))
                .col(string(AuditEvents::Action))
                .col(string(AuditEvents::TargetType))
                .col(string_null(AuditEvents::TargetId))
                .col(string(AuditEvents::Result))
                .col(json_binary_null(AuditEvents::Before))
                .col(json_binary_null(AuditEvents::After))
                .col(string_null(AuditEvents::Ip))
                .col(text_null(AuditEvents::UserAgent))
                .col(string_null(AuditEvents::RequestId))
                .col(timestamp_with_time_zone(AuditEvents::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_audit_events_org_time")
                .table(AuditEvents::Table)
                .col(AuditEvents::OrganizationId)
                .col(AuditEvents::CreatedAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ChangeLog::Table)
                .col(big_pk_auto(ChangeLog::Id))
                .col(uuid(ChangeLog::OrganizationId))
                .col(big_integer(ChangeLog::Revision))
                .col(string(ChangeLog::Kind))
                .col(uuid_null(ChangeLog::PrincipalId))
                .col(uuid_null(ChangeLog::NodeId))
                .col(uuid_null(ChangeLog::RoleId))
                .col(uuid_null(ChangeLog::ActorId))
                .col(timestamp_with_time_zone(ChangeLog::CreatedAt))
                .foreign_key(&mut cascade(
                    ChangeLog::Table,
                    ChangeLog::OrganizationId,
                    Organizations::Table,
                    Organizations::Id,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_change_log_org_revision")
                .table(ChangeLog::Table)
                .col(ChangeLog::OrganizationId)
                .col(ChangeLog::Revision)
                .unique()
                .to_owned(),
        )
        .await?;

        let now = chrono::Utc::now();
        let mut seed = Query::insert()
            .into_table(Roles::Table)
            .columns([
                Roles::Id,
                Roles::Key,
                Roles::Name,
                Roles::Description,
                Roles::Builtin,
                Roles::CreatedAt,
                Roles::UpdatedAt,
            ])
            .to_owned();
        for (id, key, name, description) in BUILTIN_ROLES {
            seed.values([
                id.into(),
                key.into(),
                name.into(),
                description.into(),
                true.into(),
                now.into(),
                now.into(),
            ])
            .map_err(|e| DbErr::Migration(format!("seeding the built-in roles: {e}")))?;
        }
        m.exec_stmt(seed).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents, so that no foreign key is left dangling.
        for table in [
            ChangeLog::Table.into_iden(),
            AuditEvents::Table.into_iden(),
            Invitations::Table.into_iden(),
            RoleBindings::Table.into_iden(),
            RolePolicies::Table.into_iden(),
            Roles::Table.into_iden(),
            Memberships::Table.into_iden(),
            Projects::Table.into_iden(),
            Workspaces::Table.into_iden(),
            Sessions::Table.into_iden(),
            Organizations::Table.into_iden(),
            Credentials::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
