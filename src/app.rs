//! Wiring: the services a request uses (built here, defined in `services.rs`), the router,
//! and serving with graceful shutdown.
//! This is the one place things are put together; tests use the same `router`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request};
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use std::sync::OnceLock;

use crate::auth::Auth;
use crate::authz::Authz;
use crate::authz::{Catalog, Profile};
use crate::cache::{Epochs, FactsCache, NodeCache, SessionCache};
use crate::clock::Clock;
use crate::config::Config;
use crate::events::{self, Bus};
use crate::graphql::{self, ApiSchema};
use crate::http::{self, HttpState};
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::services::{Parts, ServiceSet, Services};
use crate::store::{Store, StoreError};

/// A ready application: services and the schema over them.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub schema: ApiSchema,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("email: {0}")]
    Mail(#[from] crate::mail::MailError),
    #[error("{0}")]
    Profile(String),
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("redis: {0}")]
    Redis(String),
    #[error("cannot open the database {url}: {why}")]
    Database { url: String, why: String },
    #[error("cannot migrate the database {url}: {why}")]
    Migrate { url: String, why: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

impl AppState {
    /// Connects to the database (and Redis, when configured), applies pending migrations and
    /// builds the schema.
    pub async fn init(config: Config) -> Result<Self, StartError> {
        Self::init_with_clock(config, Clock::system()).await
    }

    /// As [`AppState::init`], judging time by `clock` (tests move an adjustable one forward
    /// instead of waiting for something to expire).
    pub async fn init_with_clock(config: Config, clock: Clock) -> Result<Self, StartError> {
        config.check().map_err(StartError::Config)?;
        let mailer = Mailer::new(config.smtp_url.as_deref(), &config.smtp_from)?;
        let secrets = crate::crypto::SecretBox::new(config.secret_key.as_deref())
            .map_err(|e| StartError::Config(e.to_string()))?;
        let profile = load_profile(&config)?;
        let authz = authz_for(profile.clone()).map_err(StartError::Profile)?;
        let metrics = Arc::new(Metrics::new().map_err(|e| StartError::Metrics(e.to_string()))?);
        let epochs = Arc::new(Epochs::new());
        let (bus, outbound) = Bus::new(epochs.clone(), metrics.clone(), config.redis_url.is_some());
        let store = open_store(&config)
            .await?
            .with_clock(clock)
            .with_profile(profile);
        store.install_profile().await.map_err(StartError::Profile)?;
        let store = store.with_bus(bus.clone());
        let l2 = Arc::new(OnceLock::new());
        let link = match (&config.redis_url, outbound) {
            (Some(url), Some(outbound)) => {
                let client = redis::Client::open(url.as_str())
                    .map_err(|e| StartError::Redis(format!("bad IAM_REDIS_URL: {e}")))?;
                connect_l2(client.clone(), l2.clone());
                Some(Arc::new(events::redis::spawn(
                    client,
                    bus.clone(),
                    store.clone(),
                    outbound,
                    metrics.clone(),
                )))
            }
            _ => None,
        };
        let sessions = SessionCache::new(config.cache_max_entries, epochs.clone(), metrics.clone());
        let nodes = NodeCache::new(config.cache_max_entries, epochs.clone(), metrics.clone());
        let keys =
            crate::cache::KeyCache::new(config.cache_max_entries, epochs.clone(), metrics.clone());
        let cache = FactsCache::new(config.cache_max_entries, epochs, l2, metrics.clone());
        let auth = Auth::new(
            store.clone(),
            sessions,
            keys,
            config.allow_signup,
            config.session_ttl,
        );
        let dns = crate::dns::TxtResolver::new(config.dns_resolver).map_err(StartError::Config)?;
        let outbound = crate::outbound::Outbound::new(
            crate::outbound::AddressPolicy::from_setting(config.sso_allow_private_networks),
        )
        .map_err(StartError::Config)?;
        let services = ServiceSet::assemble(Parts {
            dns: Arc::new(dns),
            limits: crate::auth::limits::CredentialLimits::new(&config),
            outbound: Arc::new(outbound),
            config: Arc::new(config),
            store,
            auth,
            authz: Arc::new(authz),
            bus,
            cache,
            nodes,
            metrics,
            mailer: Arc::new(mailer),
            secrets: Arc::new(secrets),
            link,
        });
        let schema = graphql::build_schema(&services.config, Some(services.clone()));
        Ok(Self { services, schema })
    }
}

/// Connects the shared cache in the background: Redis may be down when the instance starts,
/// and the instance serves from its own cache and the store meanwhile.
fn connect_l2(client: redis::Client, slot: Arc<OnceLock<redis::aio::ConnectionManager>>) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(50);
        loop {
            match client.get_connection_manager().await {
                Ok(conn) => {
                    let _ = slot.set(conn);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "redis: shared cache unreachable; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    });
}

/// The database of `config`, connected and migrated; a failure says in words what is wrong,
/// with the URL (its password hidden).
pub async fn open_store(config: &Config) -> Result<Store, StartError> {
    let url = crate::store::redacted(&config.database_url);
    let store = match Store::connect(&config.database_url, config.database_max_connections).await {
        Ok(store) => store,
        Err(e) => {
            let why = crate::store::connect_failure(&config.database_url, &e).await;
            return Err(StartError::Database { url, why });
        }
    };
    if let Err(e) = store.migrate().await {
        let why = match e {
            StoreError::Db(e) => e.to_string(),
            other => format!("{other:?}"),
        };
        return Err(StartError::Migrate { url, why });
    }
    Ok(store)
}

/// The deployment's profile: `IAM_PROFILE`, or the default profile with the catalog of
/// `IAM_PERMISSION_CATALOG`.
pub fn load_profile(config: &Config) -> Result<Arc<Profile>, StartError> {
    let profile = match &config.permission_catalog {
        None => Profile::load(&config.profile).map_err(|e| StartError::Profile(e.to_string()))?,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                StartError::Profile(format!(
                    "permission catalog: cannot read `{}`: {e}",
                    path.display()
                ))
            })?;
            let types = Catalog::specs_from_toml_str(&text).map_err(|e| {
                StartError::Profile(format!("permission catalog `{}`: {e}", path.display()))
            })?;
            Profile::mechamental_with_catalog(types).map_err(|e| {
                StartError::Profile(format!(
                    "permission catalog `{}`: {}",
                    path.display(),
                    e.message
                ))
            })?
        }
    };
    Ok(Arc::new(profile))
}

/// The engine over `profile`: its catalog must hold what the API needs (every profile gets
/// the gateway's types, so this fails only for a profile built by hand).
pub fn authz_for(profile: Arc<Profile>) -> Result<Authz, String> {
    graphql::access::require_api_permissions(&profile.catalog)?;
    Authz::new(profile)
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let body_limit = state.services.config.max_body_bytes;
    let schema_for_validated = graphql::build_schema_with(
        &state.services.config,
        Some(state.services.clone()),
        async_graphql::ValidationMode::Fast,
    );
    let documents = http::Documents::new(state.services.config.prepared_check);
    http::routes(HttpState::new(http::Shared {
        services: state.services,
        schema: state.schema,
        schema_for_validated,
        documents,
    }))
    .layer(RequestBodyLimitLayer::new(body_limit))
    .layer(TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        Duration::from_secs(30),
    ))
    .layer(PropagateRequestIdLayer::new(REQUEST_ID))
    .layer(
        TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let request_id = req
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!(
                "request",
                method = %req.method(),
                path = %req.uri().path(),
                request_id,
                user_id = tracing::field::Empty,
                org_id = tracing::field::Empty,
            )
        }),
    )
    .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
    .layer(axum::middleware::map_request(drop_unfit_request_id))
}

/// Drops a client's `x-request-id` that is not a plain identifier (it goes into logs and
/// audit rows): at most 128 characters of letters, digits and `-_.:`. A fresh one is then
/// made, as for a request that sent none.
async fn drop_unfit_request_id<B>(mut request: Request<B>) -> Request<B> {
    let fit = request.headers().get(&REQUEST_ID).is_none_or(|v| {
        let v = v.as_bytes();
        !v.is_empty()
            && v.len() <= 128
            && v.iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
    });
    if !fit {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

/// Serves `state` on `listener` until `shutdown` completes, then finishes the requests under
/// way and closes the database pool.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let store = state.services.store().clone();
    let metrics = match state.services.config.metrics_listen {
        Some(addr) => {
            let listener = bind(addr).await?;
            let routes = http::metrics_routes(state.services.clone());
            Some(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, routes).await {
                    tracing::error!(error = %e, "the metrics address stopped serving");
                }
            }))
        }
        None => None,
    };
    let services = state.services.clone();
    let jobs = tokio::spawn(crate::auth::api_key_jobs::run(services.clone()));
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(StartError::Serve);
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    jobs.abort();
    // The uses seen since the last batch are written before the pool closes.
    crate::auth::api_key_jobs::flush_uses(&services).await;
    served?;
    if let Err(e) = store.close().await {
        tracing::warn!(error = ?e, "closing the database pool");
    }
    Ok(())
}

/// Binds `config.listen`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })
}
