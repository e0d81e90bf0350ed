//! Rows that every installation has: the built-in roles, under ids that never change, so that
//! clients may rely on them across deployments.

use sea_orm_migration::sea_orm::prelude::Uuid;
use uuid::uuid;

/// `(id, key, name, description)` of each built-in role, in the order they are listed.
pub const BUILTIN_ROLES: [(Uuid, &str, &str, &str); 4] = [
    (
        uuid!("00000001-0000-4000-8000-000000000001"),
        "admin",
        "Admin",
        "Full control of the organization",
    ),
    (
        uuid!("00000001-0000-4000-8000-000000000002"),
        "developer",
        "Developer",
        "Builds apps, pipelines, tools, sources and endpoints; uses secrets by reference",
    ),
    (
        uuid!("00000001-0000-4000-8000-000000000003"),
        "operator",
        "Operator",
        "Runs and watches what is built: triggers endpoints, executes augmentations, reads analytics and audit",
    ),
    (
        uuid!("00000001-0000-4000-8000-000000000004"),
        "viewer",
        "Viewer",
        "Reads apps, endpoints, models, tools, sources and workspaces; views analytics",
    ),
];
