//! Organization revisions: every change that can alter a decision bumps its organization's
//! revision by one and writes a change-log row, in the change's own transaction.
//!
//! INVARIANT: the revision of an organization only grows, and change-log rows of one
//! organization have distinct revisions (a unique index holds it). On PostgreSQL the `UPDATE`
//! takes the organization row's lock, so concurrent changes of one organization commit in
//! revision order.

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use entity::{change_log, organization};

use crate::domain::change::{ChangeEvent, ChangeKind};

/// What changed, for the change log and (later) the change events.
pub(crate) struct Change {
    pub organization_id: Uuid,
    pub kind: ChangeKind,
    pub principal_id: Option<Uuid>,
    pub node_id: Option<Uuid>,
    pub role_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
}

/// Bumps the organization's revision and logs the change; returns the change as the event to
/// publish once the transaction has committed.
pub(crate) async fn bump<C: ConnectionTrait>(
    conn: &C,
    change: Change,
) -> Result<ChangeEvent, DbErr> {
    let updated = organization::Entity::update_many()
        .col_expr(
            organization::Column::Revision,
            Expr::col(organization::Column::Revision).add(1),
        )
        .filter(organization::Column::Id.eq(change.organization_id))
        .exec(conn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(DbErr::RecordNotFound(format!(
            "organization {} vanished during a change",
            change.organization_id
        )));
    }
    let revision = organization::Entity::find_by_id(change.organization_id)
        .one(conn)
        .await?
        .map(|o| o.revision)
        .ok_or_else(|| DbErr::RecordNotFound("organization".to_owned()))?;
    // The system clock: when the row was written (its UUIDv7 id is from it too), not a
    // decision about time.
    let at = Utc::now();
    change_log::Entity::insert(change_log::ActiveModel {
        organization_id: Set(change.organization_id),
        revision: Set(revision),
        kind: Set(change.kind.as_str().to_owned()),
        principal_id: Set(change.principal_id),
        node_id: Set(change.node_id),
        role_id: Set(change.role_id),
        actor_id: Set(change.actor_id),
        created_at: Set(at),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await?;
    Ok(ChangeEvent {
        organization_id: change.organization_id,
        revision,
        kind: change.kind,
        principal_id: change.principal_id,
        node_id: change.node_id,
        role_id: change.role_id,
        actor_id: change.actor_id,
        at,
    })
}

/// Takes the organization row's lock (PostgreSQL: `SELECT … FOR UPDATE`, the lock [`bump`]
/// takes) before a change reads what it decides on, so that no concurrent change of the
/// organization commits between those reads and the change. SQLite runs one writer at a
/// time and has no row locks.
pub(crate) async fn lock<C: ConnectionTrait>(conn: &C, organization_id: Uuid) -> Result<(), DbErr> {
    use sea_orm::QuerySelect;
    organization::Entity::find_by_id(organization_id)
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("organization".to_owned()))?;
    Ok(())
}

impl TryFrom<change_log::Model> for ChangeEvent {
    type Error = DbErr;

    /// A row whose kind this build does not know (a newer instance wrote it) is an error: the
    /// reader cannot tell whose decisions it altered.
    fn try_from(m: change_log::Model) -> Result<Self, DbErr> {
        let kind = ChangeKind::parse(&m.kind).ok_or_else(|| {
            DbErr::Custom(format!(
                "change log of {} at {}: unknown kind `{}`",
                m.organization_id, m.revision, m.kind
            ))
        })?;
        Ok(Self {
            organization_id: m.organization_id,
            revision: m.revision,
            kind,
            principal_id: m.principal_id,
            node_id: m.node_id,
            role_id: m.role_id,
            actor_id: m.actor_id,
            at: m.created_at,
        })
    }
}
