//! Mutations, one file per area. Each takes an `input` object and returns a payload object;
//! each resolver's doc names the permission it needs.

mod auth;
mod members;
mod nodes;
mod verification;

use async_graphql::MergedObject;

pub(crate) use nodes::org_node;

#[derive(MergedObject, Default)]
pub struct Mutation(
    auth::AuthMutation,
    nodes::NodeMutation,
    members::MemberMutation,
    super::roles::RoleMutation,
    super::sessions::SessionMutation,
    super::sso::SsoMutation,
    super::domains::DomainMutation,
    verification::VerificationMutation,
);
