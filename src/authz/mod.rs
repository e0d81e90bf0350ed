//! The decision engine: PURE and synchronous, no I/O.
//!
//! It takes facts (a principal's bindings, the compiled roles, whether the principal is an
//! active member) and a check (type, action, the checked node's path from the organization
//! down, an optional resource id, the time) and returns a decision with its reasons, following
//! SEMANTICS.md to the letter. Nothing here knows about the database, the cache or GraphQL:
//! `store/` loads the facts, `graphql/` asks the questions.
//!
//! - `catalog.rs`: resource types and actions, interned into [`TypeIx`] / [`ActionIx`];
//! - `permission.rs`: `resource:scope:action` parsed into a [`Permission`];
//! - `role.rs`: policies, compiled roles, the [`RoleSet`];
//! - `profile.rs`: a platform's catalog and built-in roles, loaded and validated
//!   ([`Profile`]);
//! - `engine.rs`: [`decide`] and [`explain`];
//! - `escalation.rs`: [`first_lacking`], whether a caller may hand out a role's policies at a
//!   node (no escalation).
//!
//! Strings are parsed once, when roles are compiled; a decision compares integers and UUIDs.

mod catalog;
mod engine;
mod escalation;
mod permission;
mod profile;
mod role;
mod service;

#[cfg(test)]
mod tests;

pub use catalog::*;
pub use engine::*;
pub use escalation::*;
pub use permission::*;
pub use profile::*;
pub use role::*;
pub use service::Authz;
