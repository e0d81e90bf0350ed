//! What API keys need done in the background, on every instance, each step safe to run on
//! many at once: the uses this instance saw are written in one batch per interval (never one
//! write per request); owners are warned 7 days and 1 day before a key expires (each notice
//! claimed in the database, so one instance sends it); expiries are recorded in the audit
//! trail once.

use crate::domain::{Actor, Email, KeyOwner};
use crate::mail::Mail;
use crate::services::Services;
use crate::store::ExpiryNotice;

fn system() -> Actor {
    Actor {
        user_agent: Some("iam-gateway api-key jobs".to_owned()),
        ..Actor::default()
    }
}

/// Runs the jobs every `api_key_jobs_interval` until aborted.
pub async fn run(services: Services) {
    let mut tick = tokio::time::interval(services.config.api_key_jobs_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        flush_uses(&services).await;
        if let Err(e) = notices(&services).await {
            tracing::warn!(error = ?e, "API key expiry notices");
        }
        if let Err(e) = services.store().audit_expired_keys(&system()).await {
            tracing::warn!(error = ?e, "API key expiries");
        }
    }
}

/// Writes the uses seen since the last batch; on failure they are kept for the next one.
pub async fn flush_uses(services: &Services) {
    let keys = &services.auth.keys;
    let uses = keys.take_uses();
    if uses.is_empty() {
        return;
    }
    if let Err(e) = services.store().record_key_uses(&uses, &system()).await {
        tracing::warn!(error = ?e, keys = uses.len(), "API key uses not written; retrying with the next batch");
        for u in &uses {
            keys.used_again(u, None);
            for ip in &u.ips {
                keys.used_again(u, Some(ip));
            }
        }
    }
}

/// Sends the due expiry notices: the 1-day one first (a key with less than a day left gets
/// that one only), then the 7-day one.
async fn notices(services: &Services) -> Result<(), crate::store::StoreError> {
    let store = services.store();
    for notice in [ExpiryNotice::Day, ExpiryNotice::Week] {
        for key in store.keys_due_notice(notice).await? {
            if !store.claim_key_notice(key.id, notice).await? {
                continue;
            }
            if notice == ExpiryNotice::Day {
                store.claim_key_notice(key.id, ExpiryNotice::Week).await?;
            }
            let recipient = match key.owner {
                KeyOwner::User(id) => Some(id),
                KeyOwner::ServiceAccount(_) => key.created_by,
            };
            let Some(user) = (match recipient {
                Some(id) => store.user(id).await?,
                None => None,
            }) else {
                continue;
            };
            let Ok(to) = Email::parse("email", &user.email) else {
                continue;
            };
            let org = store
                .organization(key.organization_id)
                .await?
                .map_or_else(|| key.organization_id.to_string(), |o| o.name);
            let left = match notice {
                ExpiryNotice::Week => "7 days",
                ExpiryNotice::Day => "1 day",
            };
            let whose = match key.owner {
                KeyOwner::User(_) => "Your API key",
                KeyOwner::ServiceAccount(_) => "The service account API key you created,",
            };
            let mail = Mail {
                to: &to,
                to_name: Some(&user.name),
                subject: format!("API key \"{}\" expires in {left}", key.name),
                body: format!(
                    "{whose} \"{}\" ({}…) in {org} expires on {}.\n\nRotate it before then (rotateApiKey) so that what uses it keeps working.\n",
                    key.name,
                    key.display_prefix,
                    key.expires_at.format("%Y-%m-%d %H:%M UTC"),
                ),
            };
            if let Err(e) = services.mailer.send(mail).await {
                tracing::warn!(error = %e, key = %key.id, "API key expiry notice not sent");
            }
        }
    }
    Ok(())
}
