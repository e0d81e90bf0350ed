//! The services of one instance, as every request handler and resolver reaches them: the
//! store, sessions, the engine, the caches, the event bus and the rest. `app.rs` builds them;
//! `graphql/`, `http/` and `sso/` use them, and this module uses none of those (`sso/` takes
//! only its own part, [`crate::sso::Sso`]).

use std::sync::Arc;

use crate::auth::Auth;
use crate::authz::Authz;
use crate::cache::{FactsCache, NodeCache};
use crate::config::Config;
use crate::events::{Bus, redis::Link};
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::store::Store;

/// What resolvers and handlers share: one allocation, so a clone (every request's handler
/// state holds one) is a single reference count.
#[derive(Clone)]
pub struct Services(Arc<ServiceSet>);

impl std::ops::Deref for Services {
    type Target = ServiceSet;

    fn deref(&self) -> &ServiceSet {
        &self.0
    }
}

/// The services themselves, reached through [`Services`].
pub struct ServiceSet {
    pub config: Arc<Config>,
    /// Reached through [`ServiceSet::store`]; resolvers may not (see `graphql/access/mod.rs`).
    store: Store,
    pub auth: Auth,
    pub authz: Arc<Authz>,
    pub bus: Bus,
    pub cache: FactsCache,
    pub nodes: NodeCache,
    pub metrics: Arc<Metrics>,
    /// Outgoing email; sends nothing when no SMTP server is configured.
    pub mailer: Arc<Mailer>,
    /// Secrets at rest (SSO client secrets), with the deployment's key.
    pub secrets: Arc<crate::crypto::SecretBox>,
    /// The Redis link between instances, when configured; its tasks end with the last clone.
    pub link: Option<Arc<Link>>,
    /// DNS TXT lookups (domain verification).
    pub dns: Arc<crate::dns::TxtResolver>,
    /// Rate limits of credential checks, per client address and per account (this instance).
    pub limits: crate::auth::limits::CredentialLimits,
    /// The one HTTP client for URLs an organization admin names (SSO issuers, metadata).
    pub outbound: Arc<crate::outbound::Outbound>,
    /// The SSO flows, with the identity providers' documents fetched for them.
    pub sso: crate::sso::Sso,
}

impl ServiceSet {
    /// The services made of `parts` (the SSO flows made from them), in one allocation.
    pub fn assemble(parts: Parts) -> Services {
        let Parts {
            config,
            store,
            auth,
            authz,
            bus,
            cache,
            nodes,
            metrics,
            mailer,
            secrets,
            link,
            dns,
            limits,
            outbound,
        } = parts;
        let sso = crate::sso::Sso::new(
            store.clone(),
            auth.clone(),
            config.clone(),
            secrets.clone(),
            outbound.clone(),
        );
        Services(Arc::new(Self {
            config,
            store,
            auth,
            authz,
            bus,
            cache,
            nodes,
            metrics,
            mailer,
            secrets,
            link,
            dns,
            limits,
            outbound,
            sso,
        }))
    }

    /// The store. GraphQL resolvers do not call this: they reach organization data through
    /// the [`crate::graphql::access::Granted`] an engine check returned, or through
    /// `ContextExt::unchecked_store` with an `// INVARIANT:` saying why no check is needed
    /// (clippy's `disallowed_methods`, denied in `graphql/`, holds them to it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The instance's clock (the store's): what "now" is for every expiry.
    pub fn clock(&self) -> &crate::clock::Clock {
        self.store.clock()
    }
}

/// What [`ServiceSet::assemble`] is made of: each service as `app.rs` built it.
///
/// The field list repeats [`ServiceSet`]'s on purpose: there the store is private (resolvers
/// reach it only through [`ServiceSet::store`], which clippy fences), and a `Deref` to these
/// parts would hand the field back to every resolver.
pub struct Parts {
    pub config: Arc<Config>,
    pub store: Store,
    pub auth: Auth,
    pub authz: Arc<Authz>,
    pub bus: Bus,
    pub cache: FactsCache,
    pub nodes: NodeCache,
    pub metrics: Arc<Metrics>,
    pub mailer: Arc<Mailer>,
    pub secrets: Arc<crate::crypto::SecretBox>,
    pub link: Option<Arc<Link>>,
    pub dns: Arc<crate::dns::TxtResolver>,
    pub limits: crate::auth::limits::CredentialLimits,
    pub outbound: Arc<crate::outbound::Outbound>,
}
