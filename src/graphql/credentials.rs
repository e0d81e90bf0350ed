//! Credential fields: the mutations that verify or set a password or redeem a secret token.
//! Two rules keep them from becoming a guessing machine:
//!
//! - **One per request.** An operation that names two or more of them (aliases of one, or
//!   different ones, directly or through fragments) is refused before anything runs. The rule
//!   ([`admit`]) reads the parsed document in `ApiSchema::execute` and `execute_stream`, the
//!   only ways into the executor, so it holds on every path: a new text, a remembered one
//!   (`http/documents.rs` hands over its parsed document), and GraphQL over WebSocket.
//! - **Rate limits.** Each such resolver first calls [`throttle`], before any hashing or
//!   token lookup: per client address and per account (`auth/limits.rs`); RATE_LIMITED with
//!   `extensions.retryAfter` (whole seconds) when over.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Context, ErrorExtensions, Pos, ServerError};

use crate::domain::Email;
use crate::graphql::context::ContextExt;
use crate::graphql::error::{ApiError, Code};

/// The Mutation fields that check a credential. Each one's resolver calls [`throttle`] first.
// INVARIANT: a new mutation that verifies or sets a password or redeems a secret token is
// added here, and calls `throttle` before any work (tests/api/attack_credentials.rs walks the
// list).
pub const CREDENTIAL_FIELDS: &[&str] = &[
    "signIn",
    "signUp",
    "requestPasswordReset",
    "resetPassword",
    "changePassword",
    "acceptInvitation",
    "signUpWithInvitation",
    "verifyEmail",
    "changeMyEmail",
    "deleteMe",
];

/// Parses `request`'s document (kept in the request for the executor) and refuses it when
/// one of its mutations names more than one credential field. A text that does not parse
/// gets the parser's error, as the executor would give it.
pub fn admit(request: &mut async_graphql::Request) -> Result<(), ServerError> {
    let doc = request.parsed_query()?;
    match refusal(doc) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// The refusal of `doc`, when one of its mutations names two credential fields or more.
/// Every operation is looked at (a request runs one of them, and which one is not known
/// here); `@skip`/`@include` are not: a field that names a credential counts.
fn refusal(doc: &ExecutableDocument) -> Option<ServerError> {
    for (_, operation) in doc.operations.iter() {
        if operation.node.ty != OperationType::Mutation {
            continue;
        }
        let found = credential_fields(doc, &operation.node.selection_set.node);
        if let [_, second, ..] = &found[..] {
            let names: BTreeSet<&str> = found.iter().map(|(name, _)| *name).collect();
            let message = format!(
                "at most one credential field ({}) may be sent per request, and this operation has {} ({}); send each in a request of its own",
                CREDENTIAL_FIELDS
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                found.len(),
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            let error: async_graphql::Error = ApiError::bad_input("query", message).into();
            return Some(error.into_server_error(second.1));
        }
    }
    None
}

/// The credential fields a mutation's root selection names, with where, through inline
/// fragments and fragment spreads (each fragment once: spreading it again merges into the
/// same fields, and a cycle, refused later by validation, cannot loop here).
fn credential_fields<'d>(
    doc: &'d ExecutableDocument,
    root: &'d SelectionSet,
) -> Vec<(&'d str, Pos)> {
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    let mut pending = vec![root];
    while let Some(set) = pending.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    if let Some(known) = CREDENTIAL_FIELDS.iter().find(|n| **n == name) {
                        found.push((*known, field.pos));
                    }
                }
                Selection::InlineFragment(inline) => {
                    pending.push(&inline.node.selection_set.node);
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if seen.insert(name)
                        && let Some(fragment) = doc.fragments.get(name)
                    {
                        pending.push(&fragment.node.selection_set.node);
                    }
                }
            }
        }
    }
    found.sort_by_key(|(_, pos)| (pos.line, pos.column));
    found
}

/// Spends one credential check of the caller's address and, when given, of the account
/// `email` names (a malformed email names none); RATE_LIMITED with `retryAfter` when over.
/// Call it first in a credential field's resolver, before any lookup or hashing.
pub fn throttle(ctx: &Context<'_>, email: Option<&str>) -> async_graphql::Result<()> {
    let ip = ctx
        .request()
        .actor
        .ip
        .as_deref()
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    let account = email.and_then(|e| Email::parse("email", e).ok());
    match ctx.services().limits.check(ip, account.as_ref()) {
        Ok(()) => Ok(()),
        Err(limited) => {
            let seconds = limited.retry_after_secs();
            let error: async_graphql::Error = ApiError::new(
                Code::RateLimited,
                format!(
                    "too many sign-in, sign-up or token attempts from this address or for this account; try again in {seconds} s"
                ),
            )
            .into();
            Err(error.extend_with(|_, ext| ext.set("retryAfter", seconds)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(text: &str) -> usize {
        let doc = async_graphql::parser::parse_query(text).unwrap();
        doc.operations
            .iter()
            .map(|(_, op)| credential_fields(&doc, &op.node.selection_set.node).len())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn credential_fields_are_counted_through_aliases_and_fragments() {
        assert_eq!(count("mutation { signIn(input: {}) { token } }"), 1);
        assert_eq!(count("mutation { a: signIn { t } b: signIn { t } }"), 2);
        assert_eq!(count("mutation { signIn { t } verifyEmail { u } }"), 2);
        assert_eq!(
            count("mutation { ...F ...F } fragment F on Mutation { signIn { t } }"),
            1
        );
        assert_eq!(
            count(
                "mutation { ... on Mutation { ...F } } fragment F on Mutation { a: signUp { t } ...G } fragment G on Mutation { ...F b: signUp { t } }"
            ),
            2
        );
        // Nested fields of the same name are other types' fields, not mutations.
        assert_eq!(count("mutation { createWorkspace { signIn } }"), 0);
        // One per operation: a document may hold several operations.
        assert_eq!(
            count("mutation A { signIn { t } } mutation B { signUp { t } }"),
            1
        );
    }

    #[test]
    fn every_credential_field_is_a_mutation_of_the_schema() {
        let sdl = crate::graphql::sdl();
        let mutation = sdl
            .split("type Mutation {")
            .nth(1)
            .and_then(|rest| rest.split("\n}").next())
            .unwrap_or_default();
        for name in CREDENTIAL_FIELDS {
            assert!(
                mutation.contains(&format!("\t{name}(")),
                "`{name}` is not a mutation"
            );
        }
    }
}
