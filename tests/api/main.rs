//! The integration suite: every test runs the real application over HTTP on an ephemeral port,
//! with a database of its own (see `tests/common`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

#[path = "../common/mod.rs"]
mod common;

mod account_admin;
mod accounts;
mod attack_credentials;
mod attack_enumeration;
mod attack_escalation;
mod attack_exposure;
mod attack_login_csrf;
mod attack_nested_lists;
mod attack_permission_feed;
mod attack_sso;
mod attack_ssrf;
mod attack_stale_cache;
mod attack_websocket;
mod audit;
mod audit_chain;
mod audit_search;
mod auth;
mod cache;
mod cli;
mod decisions;
mod docs;
mod guard_walk;
mod http;
mod impersonation;
mod invitations;
mod isolation;
mod machines;
mod members;
mod migrations;
mod nodes;
mod profiles;
mod robustness;
mod roles;
mod schema;
mod sessions;
mod sharing;
mod sso_config;
mod sso_oidc;
mod sso_saml;
mod subscriptions;
mod teams;
