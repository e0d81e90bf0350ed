//! The only module that touches `entity` and SeaORM. It takes and returns domain types.
//!
//! Every change runs in one database transaction together with its audit event (and, when it
//! can alter a decision, the organization's revision bump and change-log row), so a change and
//! its record are committed or lost together.

mod accounts;
mod api_keys;
mod audit;
mod bindings;
mod domains;
mod email_verifications;
mod error;
mod facts;
mod invitations;
mod memberships;
mod sso;
mod sso_identities;
mod sso_signins;
pub use memberships::{MemberOverview, WantedRole};
pub use sso::{GroupMapping, NewProvider, ProviderChange, TeamMapping};
pub use sso_signins::SsoRequest;
mod nodes;
mod password_resets;
mod profile;
mod revision;
mod roles;
mod service_accounts;
mod sessions;
mod teams;
mod users;

use std::sync::Arc;
use std::time::Duration;

use migration::MigratorTrait;

use crate::authz::Profile;
use crate::clock::Clock;
use crate::domain::change::ChangeEvent;
use sea_orm::sqlx::sqlite::SqliteJournalMode;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};

pub use accounts::DeletedAccount;
pub use api_keys::{ExpiryNotice, KeyUse, LAST_IPS as KEY_LAST_IPS, NewApiKey};
pub use audit::{AuditEvent, AuditFilter, AuditPage, ChainReport};
pub use bindings::NewBinding;
pub use error::{StoreError, connect_failure, redacted};
pub use facts::PrincipalFacts;
pub use invitations::{InvitationFilter, NewInvitation};
pub use nodes::NodeChanges;
pub use password_resets::{ResetIssue, ResetLookup};
pub use roles::{RoleChanges, RoleCounts};
pub use service_accounts::ServiceAccountChange;
pub use sessions::{NewSession, SessionLookup};
pub use teams::{MAX_MEMBERS_PER_CALL, MemberSource};
pub use users::{Attempt, FailedAttempt, LockoutRule};

/// Handle on the database; cheap to clone (it wraps the connection pool).
/// Where the store announces what it committed: changes that can alter decisions, and revoked
/// sessions. Implemented by `events::Bus`; the store knows nothing of how they travel.
pub trait Publisher: Send + Sync {
    /// After commit; never blocks, never fails.
    fn changes(&self, events: &[ChangeEvent]);
    /// A user's sessions were revoked (one or all).
    fn session_revoked(&self, user: uuid::Uuid);
}

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// Where committed changes are announced (none in tools such as `migrate`).
    pub(crate) bus: Option<Arc<dyn Publisher>>,
    /// The time expiries are judged and records stamped at (the system's, but in tests).
    clock: Clock,
    /// The profile: its built-in roles, the administrator role "last admin" protects, the
    /// default role of a new member.
    profile: Arc<Profile>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`).
    ///
    /// SQLite gets one connection unless told otherwise: SQLite lets one writer in at a time, and
    /// a single connection turns would-be `database is locked` failures into a short queue.
    /// Its connections are never closed for idleness, so `sqlite::memory:` keeps its data.
    pub async fn connect(url: &str, max_connections: Option<u32>) -> Result<Self, StoreError> {
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .sqlx_logging(false)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10))
            // A ping before every query doubles the round trips; ping only connections that
            // sat idle long enough to have been dropped by the server or a proxy.
            .test_before_acquire(false)
            .test_before_acquire_if_idle_for(Duration::from_secs(30));
        if DbBackend::Sqlite.is_prefix_of(url) {
            options
                .max_connections(max_connections.unwrap_or(1))
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .map_sqlx_sqlite_opts(|o| {
                    o.foreign_keys(true)
                        .busy_timeout(Duration::from_secs(5))
                        .journal_mode(SqliteJournalMode::Wal)
                });
        } else {
            options.max_connections(max_connections.unwrap_or(10));
        }
        let db = Database::connect(options).await?;
        Ok(Self {
            db,
            bus: None,
            clock: Clock::system(),
            profile: Arc::new(Profile::mechamental()),
        })
    }

    /// The same store, announcing what it commits to `bus` (`events::Bus` in the server).
    /// The store judging time by `clock` (see `clock.rs`).
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    /// The store serving `profile` (the default profile until told otherwise); see
    /// [`Store::install_profile`].
    pub fn with_profile(self, profile: Arc<Profile>) -> Self {
        Self { profile, ..self }
    }

    /// The profile whose built-in roles this store knows.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The clock this store judges time by; everything holding the store reads it.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn with_bus(self, bus: impl Publisher + 'static) -> Self {
        Self {
            bus: Some(Arc::new(bus)),
            ..self
        }
    }

    /// Announces changes that have committed. Never blocks, never fails.
    fn publish(&self, events: &[ChangeEvent]) {
        if let Some(bus) = &self.bus {
            bus.changes(events);
        }
    }

    /// The changes of an organization after revision `since`, oldest first, at most `limit`.
    pub async fn changes_since(
        &self,
        organization_id: uuid::Uuid,
        since: i64,
        limit: u64,
    ) -> Result<Vec<ChangeEvent>, StoreError> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
        let rows = entity::change_log::Entity::find()
            .filter(entity::change_log::Column::OrganizationId.eq(organization_id))
            .filter(entity::change_log::Column::Revision.gt(since))
            .order_by_asc(entity::change_log::Column::Revision)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(ChangeEvent::try_from)
            .collect::<Result<_, _>>()?)
    }

    /// The current revision of an organization, if it exists.
    pub async fn revision(&self, organization_id: uuid::Uuid) -> Result<Option<i64>, StoreError> {
        use sea_orm::EntityTrait;
        Ok(entity::organization::Entity::find_by_id(organization_id)
            .one(&self.db)
            .await?
            .map(|o| o.revision))
    }

    /// Applies every migration not yet applied.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migration::Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// Reverts every migration (for the migration round-trip test).
    pub async fn migrate_down_all(&self) -> Result<(), StoreError> {
        migration::Migrator::down(&self.db, None).await?;
        Ok(())
    }

    /// Succeeds when the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await?;
        Ok(())
    }

    /// The names of the tables that exist now (for the migration tests).
    pub async fn table_names(&self) -> Result<Vec<String>, StoreError> {
        let sql = match self.db.get_database_backend() {
            DbBackend::Sqlite => {
                "SELECT name AS t FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            }
            _ => {
                "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name"
            }
        };
        let rows = self
            .db
            .query_all_raw(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                sql,
            ))
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String>("", "t").map_err(StoreError::from))
            .collect()
    }

    /// Runs one administrative SQL statement as given (no parameters); the test harness creates
    /// and drops its PostgreSQL databases with it.
    pub async fn execute_unprepared(&self, sql: &str) -> Result<(), StoreError> {
        self.db.execute_unprepared(sql).await?;
        Ok(())
    }

    /// Closes the pool (graceful shutdown).
    pub async fn close(self) -> Result<(), StoreError> {
        self.db.close().await?;
        Ok(())
    }
}

/// The `(workspace_id, project_id)` columns that place a binding (or a grant, or a mapping) at
/// `node`: both `None` at the organization.
pub(crate) fn node_columns(node: &crate::domain::Node) -> (Option<uuid::Uuid>, Option<uuid::Uuid>) {
    use crate::domain::Node;
    match node {
        Node::Organization(_) => (None, None),
        Node::Workspace(w) => (Some(w.id), None),
        Node::Project(p) => (Some(p.workspace_id), Some(p.id)),
    }
}
