//! The GraphQL API: schema, request context, authorization guard, error codes, and the query,
//! mutation and subscription roots. `schema.graphql` at the repository root is this schema's
//! SDL, written by `iam-gateway export-schema`; a test fails when the two differ.

// Resolvers reach the store only through an engine check's `Granted`, or an `unchecked_store`
// whose INVARIANT says why (see clippy.toml and access/mod.rs).
#![deny(clippy::disallowed_methods)]

pub mod access;
mod account_admin;
mod accounts;
mod audit;
pub mod check;
pub mod context;
pub mod cost;
pub mod credentials;
pub mod error;
mod impersonation;
mod invitations;
mod loaders;
mod machines;
mod members;
mod nodes;
mod roles;
mod sessions;
mod sso;
pub mod subscription;
mod teams;

use std::future::ready;
use std::sync::{Arc, OnceLock};

use async_graphql::{Data, Executor, MergedObject, Request, Response, Schema, ValidationMode};
use futures_util::stream::{self, BoxStream, StreamExt};

use crate::config::Config;
use crate::services::Services;

pub use subscription::Subscription;

/// The query root: the caller, the hierarchy, roles and bindings, sessions, and the
/// authorization questions. (Merged from each area's queries.)
#[derive(MergedObject, Default)]
pub struct Query(
    accounts::AccountQuery,
    nodes::NodeQuery,
    roles::RoleQuery,
    check::CheckQuery,
    sessions::SessionQuery,
    teams::TeamQuery,
    machines::MachineQuery,
    audit::AuditQuery,
);

/// The mutation root. Each mutation takes an `input` object and returns a payload object;
/// each one's description names the permission it needs. (Merged from each area's mutations.)
#[derive(MergedObject, Default)]
pub struct Mutation(
    accounts::AuthMutation,
    nodes::NodeMutation,
    invitations::InvitationMutation,
    members::MemberMutation,
    roles::RoleMutation,
    sessions::SessionMutation,
    members::MemberAccessMutation,
    sso::SsoMutation,
    sso::DomainMutation,
    accounts::VerificationMutation,
    teams::TeamMutation,
    machines::MachineMutation,
    impersonation::ImpersonationMutation,
    account_admin::AccountAdminMutation,
);

type Inner = Schema<Query, Mutation, Subscription>;

/// The schema as every transport runs it: async-graphql's executor behind the two request
/// rules it has no setting for, applied here so that HTTP and WebSocket cannot differ:
///
/// - at most one credential field per request (`credentials.rs`), on the parsed document;
/// - a query over `graphql_max_complexity` is refused by async-graphql's own limit before
///   anything runs, and the refusal is then priced (`cost.rs`): its cost and the limit.
///
/// No schema extension is installed on purpose: with any extension, async-graphql routes every
/// field of every answer through the extension chain, which costs a list-heavy answer
/// (`checkMany`) a tenth of its speed (BENCHMARKS.md, issue 12).
#[derive(Clone)]
pub struct ApiSchema {
    inner: Inner,
    max_complexity: usize,
    /// The schema that prices refused queries (`cost.rs`), built on the first refusal.
    pricing: Arc<OnceLock<Inner>>,
}

impl ApiSchema {
    /// Runs one query or mutation.
    pub async fn execute(&self, mut request: Request) -> Response {
        if let Err(refusal) = credentials::admit(&mut request) {
            return Response::from_errors(vec![refusal]);
        }
        let pricing = cost::Pricing::take(&mut request, self.max_complexity);
        let response = self.inner.execute(request).await;
        pricing.explain(response, &self.pricing).await
    }

    /// Runs one operation as a stream of answers (a subscription's events; one answer for a
    /// query or mutation).
    pub fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        if let Err(refusal) = credentials::admit(&mut request) {
            return stream::once(ready(Response::from_errors(vec![refusal]))).boxed();
        }
        let pricing = Arc::new(cost::Pricing::take(&mut request, self.max_complexity));
        let schema = self.pricing.clone();
        Executor::execute_stream(&self.inner, request, session_data)
            .then(move |response| {
                let (pricing, schema) = (pricing.clone(), schema.clone());
                async move { pricing.explain(response, &schema).await }
            })
            .boxed()
    }

    pub fn sdl(&self) -> String {
        self.inner.sdl()
    }
}

/// The schema with its limits from `config`, serving with `services`.
pub fn build_schema(config: &Config, services: Option<Services>) -> ApiSchema {
    build_schema_with(config, services, ValidationMode::Strict)
}

/// As [`build_schema`], validating queries in `mode`. `Fast` applies the depth, cost and
/// recursion limits and the structural rules only: it is for query texts already known to pass
/// the full validation (see `http/documents.rs`). The cost (`cost.rs`) is computed from each
/// request's variables in either mode.
pub fn build_schema_with(
    config: &Config,
    services: Option<Services>,
    mode: ValidationMode,
) -> ApiSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), Subscription)
        .limit_depth(config.graphql_max_depth)
        .limit_complexity(config.graphql_max_complexity)
        .limit_recursive_depth(RECURSIVE_DEPTH)
        .validation_mode(mode);
    if !config.graphql_introspection {
        builder = builder.disable_introspection();
    }
    if let Some(services) = services {
        builder = builder.data(loaders::nodes(&services)).data(services);
    }
    ApiSchema {
        inner: builder.finish(),
        max_complexity: config.graphql_max_complexity,
        pricing: Arc::default(),
    }
}

/// How deeply the parser may nest a document's selections.
const RECURSIVE_DEPTH: usize = 64;

/// The SDL of the schema, as `export-schema` prints it.
pub fn sdl() -> String {
    build_schema(&Config::default(), None).sdl()
}
