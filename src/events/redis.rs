//! Change events between instances, over Redis pub/sub.
//!
//! Each instance publishes its committed changes and, every 200 ms, a heartbeat on one channel,
//! and listens to it. While it listens it trusts its caches; the moment it may have missed
//! something (the connection dropped, nothing arrived for a second although heartbeats flow
//! every 200 ms, or a revision was skipped) it stops trusting them — every answer then comes
//! from the store — reconnects, replays the change log since the newest revision it had heard
//! of for each organization, and only then trusts its caches again. So the worst case is
//! bounded by about a second, never unbounded.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{Bus, ChangeEvent, Outbound};
use crate::metrics::Metrics;
use crate::store::Store;

/// The channel every instance publishes on and listens to.
pub const CHANNEL: &str = "iam:changes";
const HEARTBEAT_EVERY: Duration = Duration::from_millis(200);
/// Silence longer than this means the subscription is dead, whatever the socket says.
const SILENCE: Duration = Duration::from_secs(1);
/// Most change-log rows replayed per organization before it is simply invalidated as a whole.
const REPLAY_LIMIT: u64 = 10_000;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t")]
enum Wire {
    #[serde(rename = "change")]
    Change { from: Uuid, event: ChangeEvent },
    #[serde(rename = "heartbeat")]
    Heartbeat { from: Uuid },
    #[serde(rename = "session_revoked")]
    SessionRevoked { from: Uuid, user: Uuid },
}

/// The running link; its tasks stop when it is dropped.
pub struct Link {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Link {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts publishing `outbound` and listening for other instances' changes. Until the first
/// subscription has replayed the change log, the instance does not trust its caches.
pub fn spawn(
    client: redis::Client,
    bus: Bus,
    store: Store,
    outbound: mpsc::Receiver<Outbound>,
    metrics: Arc<Metrics>,
) -> Link {
    bus.epochs().set_trusted(false);
    let publisher = tokio::spawn(publish_loop(client.clone(), bus.instance(), outbound));
    let subscriber = tokio::spawn(subscribe_loop(client, bus, store, metrics));
    Link {
        tasks: vec![publisher, subscriber],
    }
}

async fn publish_loop(client: redis::Client, me: Uuid, mut outbound: mpsc::Receiver<Outbound>) {
    let mut backoff = Duration::from_millis(50);
    let mut conn = loop {
        match client.get_connection_manager().await {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(error = %e, "redis: cannot connect the publisher; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    };
    let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        let wire = tokio::select! {
            next = outbound.recv() => match next {
                Some(Outbound::Change(event)) => Wire::Change { from: me, event },
                Some(Outbound::SessionRevoked(user)) => Wire::SessionRevoked { from: me, user },
                None => return,
            },
            _ = beat.tick() => Wire::Heartbeat { from: me },
        };
        let Ok(payload) = serde_json::to_string(&wire) else {
            continue;
        };
        // A change that cannot be sent is retried; a heartbeat is not (the next one follows).
        let mut tries = 0;
        loop {
            match conn.publish::<_, _, ()>(CHANNEL, &payload).await {
                Ok(()) => break,
                Err(e) => {
                    tries += 1;
                    if matches!(wire, Wire::Heartbeat { .. }) || tries > 50 {
                        tracing::warn!(error = %e, "redis: publish failed; giving up on this message");
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn subscribe_loop(client: redis::Client, bus: Bus, store: Store, metrics: Arc<Metrics>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        bus.epochs().set_trusted(false);
        match listen(&client, &bus, &store, &metrics).await {
            Ok(()) => tracing::warn!("redis: subscription went silent; reconnecting"),
            Err(e) => tracing::warn!(error = %e, "redis: subscription lost; reconnecting"),
        }
        bus.epochs().set_trusted(false);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// One subscription, until it fails or goes silent.
async fn listen(
    client: &redis::Client,
    bus: &Bus,
    store: &Store,
    metrics: &Metrics,
) -> redis::RedisResult<()> {
    let mut pubsub = tokio::time::timeout(SILENCE, client.get_async_pubsub())
        .await
        .map_err(|_| timeout_error())??;
    tokio::time::timeout(SILENCE, pubsub.subscribe(CHANNEL))
        .await
        .map_err(|_| timeout_error())??;
    metrics.pubsub_reconnects.inc();
    // Subscribed: whatever happens from now on arrives on the stream; what happened before is
    // in the change log. Without the replay, trust cannot come back.
    if !replay(bus, store).await {
        return Err(timeout_error());
    }
    // Session revocations have no log to replay: distrust every cached session instead.
    bus.distrust_sessions();
    let mut stream = pubsub.into_on_message();
    let mut trusted_after_beat = false;
    loop {
        let Ok(next) = tokio::time::timeout(SILENCE, stream.next()).await else {
            return Ok(());
        };
        let Some(msg) = next else {
            return Err(timeout_error());
        };
        let Ok(text) = msg.get_payload::<String>() else {
            continue;
        };
        match serde_json::from_str::<Wire>(&text) {
            Ok(Wire::Heartbeat { from }) if from == bus.instance() => {
                // Our own heartbeat came back: publishing and listening both work.
                if !trusted_after_beat {
                    bus.epochs().set_trusted(true);
                    trusted_after_beat = true;
                }
            }
            Ok(Wire::Heartbeat { .. }) => {}
            Ok(Wire::Change { from, .. } | Wire::SessionRevoked { from, .. })
                if from == bus.instance() => {}
            Ok(Wire::SessionRevoked { user, .. }) => bus.receive_session_revoked(user),
            Ok(Wire::Change { event, .. }) => {
                let heard = bus.epochs().heard(event.organization_id);
                if let Some(heard) = heard
                    && event.revision > heard + 1
                    && !replay_org(bus, store, event.organization_id, heard).await
                {
                    // Something in between was missed and cannot be replayed now.
                    return Err(timeout_error());
                }
                bus.receive_remote(event);
            }
            Err(e) => tracing::debug!(error = %e, "redis: ignoring a message that is not ours"),
        }
    }
}

fn timeout_error() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "redis did not answer in time",
    ))
}

/// Replays the change log of every organization this instance knows; false when the store
/// could not be read.
async fn replay(bus: &Bus, store: &Store) -> bool {
    for (org, heard) in bus.epochs().seen() {
        if !replay_org(bus, store, org, heard).await {
            return false;
        }
    }
    true
}

async fn replay_org(bus: &Bus, store: &Store, org: Uuid, heard: i64) -> bool {
    match store.changes_since(org, heard, REPLAY_LIMIT).await {
        Ok(events) if (events.len() as u64) < REPLAY_LIMIT => {
            for e in events {
                bus.receive_replayed(e);
            }
            true
        }
        Ok(_) => {
            // Too much to replay: forget everything cached of the organization instead.
            match store.revision(org).await {
                Ok(Some(current)) => {
                    bus.epochs().bump_organization(org, current);
                    true
                }
                Ok(None) => true,
                Err(_) => false,
            }
        }
        Err(e) => {
            tracing::warn!(error = ?e, %org, "redis: cannot replay the change log");
            false
        }
    }
}
