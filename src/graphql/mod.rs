//! The GraphQL API: schema, request context, authorization guard, error codes, and the query,
//! mutation and subscription roots. `schema.graphql` at the repository root is this schema's
//! SDL, written by `iam-gateway export-schema`; a test fails when the two differ.

// Resolvers reach the store only through an engine check's `Granted`, or an `unchecked_store`
// whose INVARIANT says why (see clippy.toml and access.rs).
#![deny(clippy::disallowed_methods)]

pub mod access;
pub mod check;
pub mod context;
pub mod cost;
pub mod credentials;
mod domains;
pub mod error;
mod loaders;
mod members;
mod mutation;
mod query;
mod roles;
mod sessions;
mod sso;
pub mod subscription;
pub mod types;

use async_graphql::{MergedObject, Schema, ValidationMode};

use crate::app::Services;
use crate::config::Config;

pub use mutation::Mutation;
pub use subscription::Subscription;

/// The query root: the hierarchy, roles and bindings, and the authorization questions.
#[derive(MergedObject, Default)]
pub struct Query(
    query::BaseQuery,
    roles::RoleQuery,
    check::CheckQuery,
    sessions::SessionQuery,
);

pub type ApiSchema = Schema<Query, Mutation, Subscription>;

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
        .extension(cost::CostLimit {
            limit: config.graphql_max_complexity,
        })
        .limit_recursive_depth(64)
        .validation_mode(mode)
        .extension(credentials::OneCredentialField);
    if !config.graphql_introspection {
        builder = builder.disable_introspection();
    }
    if let Some(services) = services {
        builder = builder.data(loaders::nodes(&services)).data(services);
    }
    builder.finish()
}

/// The SDL of the schema, as `export-schema` prints it.
pub fn sdl() -> String {
    build_schema(&Config::default(), None).sdl()
}
