//! # iam-gateway
//!
//! Identity and access management for organization → workspace → project hierarchies, served
//! over GraphQL. Decisions follow the contract in `SEMANTICS.md` (shared with the team).
//!
//! ## Architecture map
//!
//! ```text
//! main.rs       clap: serve | migrate | export-schema | bootstrap
//! config.rs     typed config: defaults -> TOML file -> IAM_* env -> flags; unknown IAM_* reported
//! app.rs        Services, AppState, router(), serve() with graceful shutdown; all wiring
//! domain.rs     validated values (Slug, Email, Name, NewPassword) and records; no I/O
//! authz/        the decision engine, PURE (no I/O): catalog, permissions, roles, decide/explain
//! auth/         who is calling: argon2id passwords, opaque tokens (SHA-256 at rest), sessions;
//!               accounts.rs: lockout, password reset and change (+ accounts/verification.rs)
//!               limits.rs: credential-check rate limits per address and per account
//! store/        the only module that touches entity/ and SeaORM; each change, its audit event
//!               and its organization revision bump commit in one transaction; facts.rs reads
//!               a principal's facts for the engine in one statement (one snapshot);
//!               sso_identities.rs: which account an SSO sign-in reaches
//! cache/        epochs (validity by revision), facts cache (moka L1 + Redis L2), sessions
//! events/       change events: in-process bus + Redis pub/sub (heartbeat, change-log replay)
//! dns.rs        DNS TXT lookups (hickory) that verify an organization's email domains
//! crypto.rs     secrets at rest (AES-256-GCM with IAM_SECRET_KEY): SSO client secrets
//! sso/          single sign-on: provider settings, complete_login (JIT, group sync), oidc, saml
//! mail.rs       outgoing email (invitations, password resets) through SMTP (lettre)
//! metrics.rs    Prometheus metrics of one instance (/metrics)
//! outbound.rs   the one HTTP client for URLs an admin names (SSO issuers, metadata): no
//!               private addresses after DNS (every hop), capped bodies, timeouts
//! graphql/      schema, request context, access.rs (the API's own authorization, by the
//!               engine), error codes, credentials.rs (one credential field per request,
//!               throttle), query.rs, check.rs (check, checkMany, explain,
//!               effectivePermissions, accessibleNodes), roles.rs (roles and bindings),
//!               members.rs (members list), sessions.rs (sessions), domains.rs (verified
//!               email domains), mutation/ (auth, nodes, members: invitations, statuses,
//!               removal; verification: email proofs), types.rs, cost.rs (query cost: lists
//!               priced by page size, refused over budget before running), loaders.rs (batched
//!               node lookups), subscription.rs (+ feed.rs:
//!               permission changes, replayed from the change log, then live)
//! http/         axum routes: /graphql (POST API; GET: WebSocket upgrade or GraphiQL),
//!               /healthz, /readyz, /metrics; documents.rs: body → request, parsed queries kept;
//!               prepared.rs: a plain `check` of the caller answered without the executor
//! ../entity     SeaORM models only
//! ../migration  one file per migration (never edited after landing) + built-in role seed
//! ```
//!
//! A request flows: `http` (bearer token → `auth::Caller`, client IP, request id) →
//! `graphql` resolver (or, for a prepared `check`, `http::prepared` → `graphql::check`) → `graphql::access` (facts from `cache`, else `store`; decided by
//! `authz`) → `store` (change, audit, revision in one transaction) → `events` after commit.

// The store is for everyone but GraphQL resolvers (denied in `graphql/`; see clippy.toml).
#![allow(clippy::disallowed_methods)]

pub mod app;
pub mod auth;
pub mod authz;
pub mod cache;
pub mod config;
pub mod crypto;
pub mod dns;
pub mod domain;
pub mod events;
pub mod graphql;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod outbound;
pub mod sso;
pub mod store;
