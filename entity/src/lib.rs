//! SeaORM models of the gateway's tables, and nothing else.
//!
//! Only `src/store/` uses these types; every other layer works with the domain types of
//! `iam_gateway::domain`. The tables are created by the `migration` crate: when a model changes,
//! a new migration file changes its table.

pub mod api_key;
pub mod audit_chain;
pub mod audit_event;
pub mod change_log;
pub mod credential;
pub mod deployment_setting;
pub mod email_verification;
pub mod invitation;
pub mod invitation_grant;
pub mod membership;
pub mod organization;
pub mod organization_domain;
pub mod password_reset;
pub mod project;
pub mod role;
pub mod role_binding;
pub mod role_policy;
pub mod service_account;
pub mod session;
pub mod sso_assertion;
pub mod sso_group_mapping;
pub mod sso_identity;
pub mod sso_provider;
pub mod sso_request;
pub mod sso_team_mapping;
pub mod team;
pub mod team_member;
pub mod user;
pub mod workspace;
