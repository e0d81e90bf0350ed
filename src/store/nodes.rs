//! The hierarchy: organizations, their workspaces and the workspaces' projects.
//!
//! Deleting a node deletes what is under it and every binding on it: the foreign keys cascade
//! (workspace → projects, and any node → its role bindings), inside the deleting transaction.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use entity::{membership, organization, project, role_binding, workspace};

use super::audit::{self, Entry};
use super::revision::{self, Change};
use super::{Store, StoreError};
use crate::domain::{Actor, MemberStatus, Name, Node, Organization, Project, Slug, Workspace};

impl From<organization::Model> for Organization {
    fn from(m: organization::Model) -> Self {
        Self {
            id: m.id,
            slug: m.slug,
            name: m.name,
            revision: m.revision,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

impl From<workspace::Model> for Workspace {
    fn from(m: workspace::Model) -> Self {
        Self {
            id: m.id,
            organization_id: m.organization_id,
            slug: m.slug,
            name: m.name,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

impl From<project::Model> for Project {
    fn from(m: project::Model) -> Self {
        Self {
            id: m.id,
            organization_id: m.organization_id,
            workspace_id: m.workspace_id,
            slug: m.slug,
            name: m.name,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// A rename: the new slug and/or name; `None` keeps the current one.
#[derive(Debug, Default)]
pub struct NodeChanges {
    pub slug: Option<Slug>,
    pub name: Option<Name>,
}

impl Store {
    /// Creates an organization. Its creator becomes its first active member and holds the
    /// built-in Admin role at the organization node.
    pub async fn create_organization(
        &self,
        creator: Uuid,
        slug: &Slug,
        name: &Name,
        actor: &Actor,
    ) -> Result<Organization, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let id = Uuid::now_v7();
        let created = organization::Entity::insert(organization::ActiveModel {
            id: Set(id),
            slug: Set(slug.as_str().to_owned()),
            name: Set(name.as_str().to_owned()),
            revision: Set(0),
            created_by: Set(Some(creator)),
            created_at: Set(now),
            updated_at: Set(now),
            enforce_sso: Set(false),
        })
        .exec_with_returning(&txn)
        .await
        .map_err(|e| {
            StoreError::unique_or_db(e, || {
                format!(
                    "an organization with slug `{}` already exists",
                    slug.as_str()
                )
            })
        })?;
        membership::Entity::insert(membership::ActiveModel {
            id: Set(Uuid::now_v7()),
            organization_id: Set(id),
            user_id: Set(creator),
            status: Set(MemberStatus::Active.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        let admin = self.profile.admin_role().id;
        role_binding::Entity::insert(role_binding::ActiveModel {
            id: Set(Uuid::now_v7()),
            organization_id: Set(id),
            workspace_id: Set(None),
            project_id: Set(None),
            principal_type: Set("user".to_owned()),
            principal_id: Set(creator),
            role_id: Set(admin),
            granted_by: Set(actor.user_id),
            granted_at: Set(now),
            expires_at: Set(None),
            source: Set("creator".to_owned()),
            sso_provider_id: Set(None),
            resource_type: Set(None),
            resource_id: Set(None),
        })
        .exec_without_returning(&txn)
        .await?;
        let event = revision::bump(
            &txn,
            Change {
                organization_id: id,
                kind: crate::domain::change::ChangeKind::OrganizationCreated,
                principal_id: Some(creator),
                node_id: Some(id),
                role_id: Some(admin),
                actor_id: actor.user_id,
            },
        )
        .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(id),
                action: "organization.create",
                target_type: "organization",
                target_id: Some(id),
                before: None,
                after: Some(json!({ "slug": created.slug, "name": created.name })),
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(Organization {
            revision: event.revision,
            ..created.into()
        })
    }

    pub async fn organization(&self, id: Uuid) -> Result<Option<Organization>, StoreError> {
        Ok(organization::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(Organization::from))
    }

    /// The organizations where `user_id` is an active member, by slug.
    pub async fn organizations_of(&self, user_id: Uuid) -> Result<Vec<Organization>, StoreError> {
        let org_ids: Vec<Uuid> = membership::Entity::find()
            .filter(membership::Column::UserId.eq(user_id))
            .filter(membership::Column::Status.eq(MemberStatus::Active.as_str()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| m.organization_id)
            .collect();
        Ok(organization::Entity::find()
            .filter(organization::Column::Id.is_in(org_ids))
            .order_by_asc(organization::Column::Slug)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Organization::from)
            .collect())
    }

    pub async fn create_workspace(
        &self,
        organization_id: Uuid,
        slug: &Slug,
        name: &Name,
        actor: &Actor,
    ) -> Result<Workspace, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let id = Uuid::now_v7();
        let created = workspace::Entity::insert(workspace::ActiveModel {
            id: Set(id),
            organization_id: Set(organization_id),
            slug: Set(slug.as_str().to_owned()),
            name: Set(name.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(&txn)
        .await
        .map_err(|e| StoreError::unique_or_db(e, || workspace_slug_taken(slug)))?;
        let event = revision::bump(
            &txn,
            Change {
                organization_id,
                kind: crate::domain::change::ChangeKind::WorkspaceCreated,
                principal_id: None,
                node_id: Some(id),
                role_id: None,
                actor_id: actor.user_id,
            },
        )
        .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "workspace.create",
                target_type: "workspace",
                target_id: Some(id),
                before: None,
                after: Some(json!({ "slug": created.slug, "name": created.name })),
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(created.into())
    }

    pub async fn update_workspace(
        &self,
        id: Uuid,
        changes: NodeChanges,
        actor: &Actor,
    ) -> Result<Workspace, StoreError> {
        let txn = self.db.begin().await?;
        let current = workspace::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("workspace"))?;
        let before = json!({ "slug": current.slug, "name": current.name });
        let organization_id = current.organization_id;
        let mut model: workspace::ActiveModel = current.into();
        if let Some(slug) = &changes.slug {
            model.slug = Set(slug.as_str().to_owned());
        }
        if let Some(name) = &changes.name {
            model.name = Set(name.as_str().to_owned());
        }
        model.updated_at = Set(self.clock.now());
        let updated = model.update(&txn).await.map_err(|e| {
            StoreError::unique_or_db(e, || match &changes.slug {
                Some(slug) => workspace_slug_taken(slug),
                None => "the workspace changed at the same time; try again".to_owned(),
            })
        })?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "workspace.update",
                target_type: "workspace",
                target_id: Some(id),
                before: Some(before),
                after: Some(json!({ "slug": updated.slug, "name": updated.name })),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(updated.into())
    }

    /// Deletes a workspace, its projects and every binding on them.
    pub async fn delete_workspace(&self, id: Uuid, actor: &Actor) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        let current = workspace::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("workspace"))?;
        let projects = project::Entity::find()
            .filter(project::Column::WorkspaceId.eq(id))
            .count(&txn)
            .await?;
        workspace::Entity::delete_by_id(id).exec(&txn).await?;
        let event = revision::bump(
            &txn,
            Change {
                organization_id: current.organization_id,
                kind: crate::domain::change::ChangeKind::WorkspaceDeleted,
                principal_id: None,
                node_id: Some(id),
                role_id: None,
                actor_id: actor.user_id,
            },
        )
        .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(current.organization_id),
                action: "workspace.delete",
                target_type: "workspace",
                target_id: Some(id),
                before: Some(json!({
                    "slug": current.slug,
                    "name": current.name,
                    "projects": projects,
                })),
                after: None,
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(())
    }

    pub async fn workspace(&self, id: Uuid) -> Result<Option<Workspace>, StoreError> {
        Ok(workspace::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(Workspace::from))
    }

    /// The workspaces of an organization, by slug.
    pub async fn workspaces(&self, organization_id: Uuid) -> Result<Vec<Workspace>, StoreError> {
        Ok(workspace::Entity::find()
            .filter(workspace::Column::OrganizationId.eq(organization_id))
            .order_by_asc(workspace::Column::Slug)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Workspace::from)
            .collect())
    }

    pub async fn create_project(
        &self,
        workspace: &Workspace,
        slug: &Slug,
        name: &Name,
        actor: &Actor,
    ) -> Result<Project, StoreError> {
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let id = Uuid::now_v7();
        let created = project::Entity::insert(project::ActiveModel {
            id: Set(id),
            organization_id: Set(workspace.organization_id),
            workspace_id: Set(workspace.id),
            slug: Set(slug.as_str().to_owned()),
            name: Set(name.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(&txn)
        .await
        .map_err(|e| StoreError::unique_or_db(e, || project_slug_taken(slug)))?;
        let event = revision::bump(
            &txn,
            Change {
                organization_id: workspace.organization_id,
                kind: crate::domain::change::ChangeKind::ProjectCreated,
                principal_id: None,
                node_id: Some(id),
                role_id: None,
                actor_id: actor.user_id,
            },
        )
        .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(workspace.organization_id),
                action: "project.create",
                target_type: "project",
                target_id: Some(id),
                before: None,
                after: Some(json!({
                    "workspace_id": workspace.id,
                    "slug": created.slug,
                    "name": created.name,
                })),
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(created.into())
    }

    pub async fn update_project(
        &self,
        id: Uuid,
        changes: NodeChanges,
        actor: &Actor,
    ) -> Result<Project, StoreError> {
        let txn = self.db.begin().await?;
        let current = project::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("project"))?;
        let before = json!({ "slug": current.slug, "name": current.name });
        let organization_id = current.organization_id;
        let mut model: project::ActiveModel = current.into();
        if let Some(slug) = &changes.slug {
            model.slug = Set(slug.as_str().to_owned());
        }
        if let Some(name) = &changes.name {
            model.name = Set(name.as_str().to_owned());
        }
        model.updated_at = Set(self.clock.now());
        let updated = model.update(&txn).await.map_err(|e| {
            StoreError::unique_or_db(e, || match &changes.slug {
                Some(slug) => project_slug_taken(slug),
                None => "the project changed at the same time; try again".to_owned(),
            })
        })?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(organization_id),
                action: "project.update",
                target_type: "project",
                target_id: Some(id),
                before: Some(before),
                after: Some(json!({ "slug": updated.slug, "name": updated.name })),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(updated.into())
    }

    /// Deletes a project and every binding on it.
    pub async fn delete_project(&self, id: Uuid, actor: &Actor) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        let current = project::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("project"))?;
        project::Entity::delete_by_id(id).exec(&txn).await?;
        let event = revision::bump(
            &txn,
            Change {
                organization_id: current.organization_id,
                kind: crate::domain::change::ChangeKind::ProjectDeleted,
                principal_id: None,
                node_id: Some(id),
                role_id: None,
                actor_id: actor.user_id,
            },
        )
        .await?;
        audit::record(
            &txn,
            actor,
            Entry {
                organization_id: Some(current.organization_id),
                action: "project.delete",
                target_type: "project",
                target_id: Some(id),
                before: Some(json!({
                    "workspace_id": current.workspace_id,
                    "slug": current.slug,
                    "name": current.name,
                })),
                after: None,
            },
        )
        .await?;
        txn.commit().await?;
        self.publish(std::slice::from_ref(&event));
        Ok(())
    }

    pub async fn project(&self, id: Uuid) -> Result<Option<Project>, StoreError> {
        Ok(project::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(Project::from))
    }

    /// The projects of a workspace, by slug.
    pub async fn projects(&self, workspace_id: Uuid) -> Result<Vec<Project>, StoreError> {
        Ok(project::Entity::find()
            .filter(project::Column::WorkspaceId.eq(workspace_id))
            .order_by_asc(project::Column::Slug)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Project::from)
            .collect())
    }

    /// Every project of an organization, by slug.
    pub async fn projects_of_org(&self, organization_id: Uuid) -> Result<Vec<Project>, StoreError> {
        Ok(project::Entity::find()
            .filter(project::Column::OrganizationId.eq(organization_id))
            .order_by_asc(project::Column::Slug)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Project::from)
            .collect())
    }

    /// The organizations with these ids (one query: the GraphQL loaders batch their lookups).
    pub async fn organizations_by_ids(
        &self,
        ids: &[Uuid],
    ) -> Result<Vec<Organization>, StoreError> {
        Ok(organization::Entity::find()
            .filter(organization::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(Organization::from)
            .collect())
    }

    /// The workspaces with these ids (one query).
    pub async fn workspaces_by_ids(&self, ids: &[Uuid]) -> Result<Vec<Workspace>, StoreError> {
        Ok(workspace::Entity::find()
            .filter(workspace::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(Workspace::from)
            .collect())
    }

    /// The workspaces of these organizations, by slug (one query).
    pub async fn workspaces_of_orgs(&self, ids: &[Uuid]) -> Result<Vec<Workspace>, StoreError> {
        Ok(workspace::Entity::find()
            .filter(workspace::Column::OrganizationId.is_in(ids.iter().copied()))
            .order_by_asc(workspace::Column::Slug)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Workspace::from)
            .collect())
    }

    /// The projects of these workspaces, by slug (one query).
    pub async fn projects_of_workspaces(&self, ids: &[Uuid]) -> Result<Vec<Project>, StoreError> {
        Ok(project::Entity::find()
            .filter(project::Column::WorkspaceId.is_in(ids.iter().copied()))
            .order_by_asc(project::Column::Slug)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Project::from)
            .collect())
    }

    /// The projects of these organizations, by slug (one query).
    pub async fn projects_of_orgs(&self, ids: &[Uuid]) -> Result<Vec<Project>, StoreError> {
        Ok(project::Entity::find()
            .filter(project::Column::OrganizationId.is_in(ids.iter().copied()))
            .order_by_asc(project::Column::Slug)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Project::from)
            .collect())
    }

    /// Any node by id.
    pub async fn node(&self, id: Uuid) -> Result<Option<Node>, StoreError> {
        node_by_id(&self.db, id).await
    }

    /// The node at a slug path: `org`, `org/workspace` or `org/workspace/project`.
    pub async fn node_by_path(&self, segments: &[Slug]) -> Result<Option<Node>, StoreError> {
        let (org_slug, rest) = match segments {
            [org, rest @ ..] if rest.len() <= 2 => (org, rest),
            _ => return Ok(None),
        };
        let Some(org) = organization::Entity::find()
            .filter(organization::Column::Slug.eq(org_slug.as_str()))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let Some(ws_slug) = rest.first() else {
            return Ok(Some(Node::Organization(org.into())));
        };
        let Some(ws) = workspace::Entity::find()
            .filter(workspace::Column::OrganizationId.eq(org.id))
            .filter(workspace::Column::Slug.eq(ws_slug.as_str()))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let Some(project_slug) = rest.get(1) else {
            return Ok(Some(Node::Workspace(ws.into())));
        };
        Ok(project::Entity::find()
            .filter(project::Column::WorkspaceId.eq(ws.id))
            .filter(project::Column::Slug.eq(project_slug.as_str()))
            .one(&self.db)
            .await?
            .map(|p| Node::Project(p.into())))
    }
}

async fn node_by_id<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Option<Node>, StoreError> {
    if let Some(p) = project::Entity::find_by_id(id).one(conn).await? {
        return Ok(Some(Node::Project(p.into())));
    }
    if let Some(w) = workspace::Entity::find_by_id(id).one(conn).await? {
        return Ok(Some(Node::Workspace(w.into())));
    }
    Ok(organization::Entity::find_by_id(id)
        .one(conn)
        .await?
        .map(|o| Node::Organization(o.into())))
}

fn workspace_slug_taken(slug: &Slug) -> String {
    format!(
        "a workspace with slug `{}` already exists in this organization",
        slug.as_str()
    )
}

fn project_slug_taken(slug: &Slug) -> String {
    format!(
        "a project with slug `{}` already exists in this workspace",
        slug.as_str()
    )
}
