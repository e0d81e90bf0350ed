//! Change events: what the store publishes after each commit that can alter a decision.
//!
//! Publishing never blocks or fails the mutation. On the instance that committed, the event is
//! applied to the cache epochs before the mutation returns (read-your-writes), then broadcast
//! in process (subscriptions listen there) and queued for Redis pub/sub, which carries it to
//! the other instances (see `redis.rs`).

pub mod redis;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use crate::cache::Epochs;
use crate::metrics::Metrics;

/// One committed change of an organization, at the revision it committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub organization_id: Uuid,
    pub revision: i64,
    /// `binding.granted`, `binding.revoked`, `role.updated`, `membership.status`, ...
    pub kind: String,
    pub principal_id: Option<Uuid>,
    pub node_id: Option<Uuid>,
    pub role_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// Whose decisions a change can alter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// One principal's (their bindings or membership changed).
    Principal(Uuid),
    /// The holders of one role (its policies changed, or it is gone).
    Role(Uuid),
    /// Anyone's in the organization (a node and the bindings on it are gone).
    Organization,
    /// No decision (a new node, a new unbound role).
    Nothing,
}

impl ChangeEvent {
    pub fn reach(&self) -> Reach {
        match (self.kind.as_str(), self.principal_id, self.role_id) {
            ("workspace.created" | "project.created" | "role.created", _, _) => Reach::Nothing,
            ("role.updated" | "role.deleted", _, Some(role)) => Reach::Role(role),
            (
                "binding.granted" | "binding.revoked" | "membership.added" | "membership.status"
                | "membership.removed",
                Some(p),
                _,
            ) => Reach::Principal(p),
            _ => Reach::Organization,
        }
    }
}

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
