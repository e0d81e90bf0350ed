//! Change events: what the store publishes after each commit that can alter a decision.
//!
//! Publishing never blocks or fails the mutation. On the instance that committed, the event is
//! applied to the cache epochs before the mutation returns (read-your-writes), then broadcast
//! in process (subscriptions listen there) and queued for Redis pub/sub, which carries it to
//! the other instances (see `redis.rs`).

pub mod redis;

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use crate::cache::Epochs;
use crate::metrics::Metrics;

pub use crate::domain::change::{ChangeEvent, ChangeKind, Reach};

/// How many events a slow in-process subscriber may fall behind before it is told it lagged.
const LOCAL_CAPACITY: usize = 4096;
/// How many events may wait for Redis before new ones are dropped (the others instances then
/// resynchronise from the change log when they notice the gap).
const OUTBOUND_CAPACITY: usize = 16_384;

/// What goes out to the other instances.
#[derive(Debug, Clone)]
pub enum Outbound {
    Change(ChangeEvent),
    /// A session of this user was revoked (sessions belong to no organization).
    SessionRevoked(Uuid),
}

/// What tells live connections to look at their sessions again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionSignal {
    /// A session of this user was revoked (here or on another instance).
    Revoked(Uuid),
    /// Revocations may have been missed (the event stream was lost): every session is suspect.
    AllSuspect,
}

/// The change bus of one instance; cheap to clone.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    instance: Uuid,
    local: broadcast::Sender<ChangeEvent>,
    sessions: broadcast::Sender<SessionSignal>,
    epochs: Arc<Epochs>,
    outbound: Option<mpsc::Sender<Outbound>>,
    metrics: Arc<Metrics>,
}

impl Bus {
    /// A bus for one instance; `outbound` carries events to Redis when it is configured.
    pub fn new(
        epochs: Arc<Epochs>,
        metrics: Arc<Metrics>,
        with_redis: bool,
    ) -> (Self, Option<mpsc::Receiver<Outbound>>) {
        let (local, _) = broadcast::channel(LOCAL_CAPACITY);
        let (sessions, _) = broadcast::channel(LOCAL_CAPACITY);
        let (outbound, receiver) = if with_redis {
            let (tx, rx) = mpsc::channel(OUTBOUND_CAPACITY);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let bus = Self {
            inner: Arc::new(Inner {
                instance: Uuid::new_v4(),
                local,
                sessions,
                epochs,
                outbound,
                metrics,
            }),
        };
        (bus, receiver)
    }

    /// This instance's id (to recognise its own messages on Redis).
    pub fn instance(&self) -> Uuid {
        self.inner.instance
    }

    pub fn epochs(&self) -> &Arc<Epochs> {
        &self.inner.epochs
    }

    /// Publishes committed changes: epochs first (so a check after the mutation returns sees
    /// them), then subscribers, then Redis. Never blocks, never fails.
    pub fn publish(&self, events: &[ChangeEvent]) {
        for e in events {
            self.inner.epochs.apply(e);
            let _ = self.inner.local.send(e.clone());
            self.inner.metrics.events_published.inc();
            if let Some(out) = &self.inner.outbound
                && out.try_send(Outbound::Change(e.clone())).is_err()
            {
                self.inner.metrics.events_dropped.inc();
                tracing::warn!(org = %e.organization_id, revision = e.revision, "change event not queued for Redis");
            }
        }
    }

    /// Announces that a session of `user` was revoked: at once here, soon everywhere.
    pub fn publish_session_revoked(&self, user: Uuid) {
        self.inner.epochs.session_revoked(user);
        let _ = self.inner.sessions.send(SessionSignal::Revoked(user));
        if let Some(out) = &self.inner.outbound
            && out.try_send(Outbound::SessionRevoked(user)).is_err()
        {
            self.inner.metrics.events_dropped.inc();
            tracing::warn!(%user, "session revocation not queued for Redis");
        }
    }

    /// Applies a session revocation another instance published.
    pub fn receive_session_revoked(&self, user: Uuid) {
        self.inner.epochs.session_revoked(user);
        self.inner.metrics.events_received.inc();
        let _ = self.inner.sessions.send(SessionSignal::Revoked(user));
    }

    /// After the event stream was lost: no cached session is trusted, and every live
    /// connection checks its own again (revocations have no log to replay).
    pub fn distrust_sessions(&self) {
        self.inner.epochs.reset_sessions();
        let _ = self.inner.sessions.send(SessionSignal::AllSuspect);
    }

    /// A receiver of session revocations (epochs are updated before anything is sent, so a
    /// session read after a signal reads the revoked state).
    pub fn subscribe_sessions(&self) -> broadcast::Receiver<SessionSignal> {
        self.inner.sessions.subscribe()
    }

    /// Applies a change another instance published.
    pub fn receive_remote(&self, event: ChangeEvent) {
        self.inner.epochs.apply(&event);
        self.inner.metrics.events_received.inc();
        // The system clock on both ends: the event was stamped with it when written.
        let lag = (Utc::now() - event.at).num_microseconds().unwrap_or(0);
        self.inner
            .metrics
            .propagation_lag
            .observe(lag.max(0) as f64 / 1e6);
        let _ = self.inner.local.send(event);
    }

    /// Applies a change replayed from the change log (missed while disconnected).
    pub fn receive_replayed(&self, event: ChangeEvent) {
        self.inner.epochs.apply(&event);
        let _ = self.inner.local.send(event);
    }

    /// A receiver of every change this instance publishes or hears of.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.inner.local.subscribe()
    }
}

impl crate::store::Publisher for Bus {
    fn changes(&self, events: &[ChangeEvent]) {
        self.publish(events);
    }

    fn session_revoked(&self, user: Uuid) {
        self.publish_session_revoked(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: ChangeKind, principal: Uuid, role: Uuid) -> ChangeEvent {
        ChangeEvent {
            organization_id: Uuid::new_v4(),
            revision: 1,
            kind,
            principal_id: Some(principal),
            node_id: Some(Uuid::new_v4()),
            role_id: Some(role),
            actor_id: None,
            at: Utc::now(),
        }
    }

    /// The narrowest correct reach of every kind: widening one empties caches needlessly and
    /// tells `myPermissionChanges` subscribers of other members' changes; narrowing one leaves
    /// stale allows.
    #[test]
    fn every_kind_reaches_exactly_whom_it_can_affect() {
        let (p, r) = (Uuid::new_v4(), Uuid::new_v4());
        for kind in ChangeKind::ALL {
            let expected = match kind {
                ChangeKind::WorkspaceCreated
                | ChangeKind::ProjectCreated
                | ChangeKind::RoleCreated
                | ChangeKind::TeamCreated
                | ChangeKind::TeamUpdated
                | ChangeKind::ServiceAccountCreated
                | ChangeKind::ApiKeyCreated => Reach::Nothing,
                ChangeKind::OrganizationCreated
                | ChangeKind::BindingGranted
                | ChangeKind::BindingRevoked
                | ChangeKind::MemberRoles
                | ChangeKind::MembershipAdded
                | ChangeKind::MembershipStatus
                | ChangeKind::MembershipRemoved
                | ChangeKind::SsoSync
                | ChangeKind::TeamDeleted
                | ChangeKind::TeamMembers
                | ChangeKind::ServiceAccountUpdated
                | ChangeKind::ServiceAccountDeleted
                | ChangeKind::ApiKeyRevoked
                | ChangeKind::ApiKeyRotated => Reach::Principal(p),
                ChangeKind::RoleUpdated | ChangeKind::RoleDeleted => Reach::Role(r),
                ChangeKind::WorkspaceDeleted | ChangeKind::ProjectDeleted => Reach::Organization,
            };
            assert_eq!(event(kind, p, r).reach(), expected, "{kind:?}");
        }
    }

    #[test]
    fn an_event_missing_its_subject_reaches_the_whole_organization() {
        let mut e = event(ChangeKind::MemberRoles, Uuid::new_v4(), Uuid::new_v4());
        e.principal_id = None;
        assert_eq!(e.reach(), Reach::Organization);
        let mut e = event(ChangeKind::RoleUpdated, Uuid::new_v4(), Uuid::new_v4());
        e.role_id = None;
        assert_eq!(e.reach(), Reach::Organization);
    }

    #[test]
    fn kinds_keep_their_names_on_the_wire_and_in_the_log() {
        for kind in ChangeKind::ALL {
            let wire = serde_json::to_value(kind).unwrap();
            assert_eq!(wire, serde_json::json!(kind.as_str()));
            assert_eq!(ChangeKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::from_value::<ChangeKind>(wire).unwrap(), kind);
        }
        assert_eq!(ChangeKind::parse("member.everything"), None);
        assert!(serde_json::from_value::<ChangeKind>(serde_json::json!("x.y")).is_err());
    }
}
