//! Service accounts and API keys through the API: a key acts as its owner narrowed by its
//! scopes, at every moment (the owner loses a role, the key loses it); a key is no way around
//! the rules of changing access (a scope one lacks, a service account more powerful than its
//! manager, someone else's personal key); and a key stops working at once when it is revoked,
//! rotated out, expired, used from outside its networks, or its owner leaves, also on another
//! instance.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::attack_websocket::RawWs;
use crate::common::smtp::SmtpSink;
use crate::common::{TestApp, TestDb, any_redis, assert_error, data_str, error_code};

const CHECK: &str = "query($i: CheckInput!) { check(input: $i) { allowed } }";
const EXPLAIN: &str = "query($i: CheckInput!) { explain(input: $i) { allowed reasons { kind } } }";
const CREATE_KEY: &str = "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret apiKey { id prefix state scopes ownerKind } } }";
const REVOKE_KEY: &str =
    "mutation($id: ID!) { revokeApiKey(input: {id: $id}) { apiKey { state revokedReason } } }";
const ROTATE_KEY: &str = "mutation($id: ID!, $h: Int!) { rotateApiKey(input: {id: $id, overlapHours: $h}) { secret previous { state overlapUntil } apiKey { id state } } }";
const KEYS: &str = "query($o: ID!, $mine: Boolean!, $all: Boolean!) { apiKeys(organizationId: $o, mine: $mine, includeInactive: $all) { id name state revokedReason lastUsedAt lastIps ownerKind } }";
const CREATE_SA: &str = "mutation($o: ID!, $n: String!) { createServiceAccount(input: {organizationId: $o, name: $n}) { serviceAccount { id name disabled } } }";
const UPDATE_SA: &str = "mutation($id: ID!, $d: Boolean!) { updateServiceAccount(input: {id: $id, disabled: $d}) { serviceAccount { disabled } } }";
const DELETE_SA: &str =
    "mutation($id: ID!) { deleteServiceAccount(input: {id: $id}) { deletedId } }";
const SAS: &str = "query($o: ID!) { serviceAccounts(organizationId: $o) { id name roleBindings { principalType } } }";
const REVOKE_BINDING: &str =
    "mutation($id: ID!) { revokeRoleBinding(input: {id: $id}) { revision } }";
const REMOVE_MEMBER: &str = "mutation($o: ID!, $u: ID!) { removeMember(input: {organizationId: $o, userId: $u}) { removedUserId } }";

fn in_days(app: &TestApp, days: i64) -> String {
    (app.state.services.clock().now() + chrono::Duration::days(days)).to_rfc3339()
}

async fn create_key(app: &TestApp, token: &str, input: Value) -> Value {
    app.gql(Some(token), CREATE_KEY, json!({ "i": input }))
        .await
}

/// A personal key of the caller in `org`, valid 30 days; its secret and id.
async fn personal_key(
    app: &TestApp,
    token: &str,
    org: &str,
    scopes: Option<&[&str]>,
) -> (String, String) {
    let mut input = json!({ "organizationId": org, "name": "ci", "expiresAt": in_days(app, 30) });
    if let Some(scopes) = scopes {
        input["scopes"] = json!(scopes);
    }
    let r = create_key(app, token, input).await;
    (
        data_str(&r, &["createApiKey", "secret"]),
        data_str(&r, &["createApiKey", "apiKey", "id"]),
    )
}

struct Org {
    ada: String,
    org: String,
    ws: String,
    bob: String,
    bob_id: String,
    /// Bob's Developer binding at the workspace.
    bob_binding: String,
}

/// Ada (admin) and Bob (Developer at the workspace) in an organization with one workspace.
async fn org_on(app: &TestApp) -> Org {
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    let ws = app.create_workspace(&ada, &org, "prod").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&ada, &org, "bob@example.com", &bob).await;
    let developer = app.role_id(&ada, &org, "developer").await;
    let bob_binding = app.grant(&ada, &bob_id, &developer, &ws).await;
    Org {
        ada,
        org,
        ws,
        bob,
        bob_id,
        bob_binding,
    }
}

async fn service_account(app: &TestApp, token: &str, org: &str, name: &str) -> String {
    let r = app
        .gql(Some(token), CREATE_SA, json!({ "o": org, "n": name }))
        .await;
    data_str(&r, &["createServiceAccount", "serviceAccount", "id"])
}

/// Polls `check` on `app` until it answers `want` (a refusal counts as not allowed), for at
/// most 5 s; how long it took.
async fn until(app: &TestApp, token: &str, node: &str, want: bool) -> Duration {
    let started = Instant::now();
    loop {
        let got = app.check(token, "apps:write", node).await.unwrap_or(false);
        if got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never became {want}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_personal_key_acts_as_its_owner_and_loses_a_role_the_moment_its_owner_does() {
    let app = TestApp::start().await;
    let o = org_on(&app).await;
    let (key, key_id) = personal_key(&app, &o.bob, &o.org, None).await;
    assert!(key.starts_with("iam_k_") && key.len() >= 55, "{key}");
    assert_eq!(app.check(&key, "apps:write", &o.ws).await, Some(true));
    assert_eq!(app.check(&key, "members:manage", &o.ws).await, Some(false));
    // The owner loses the role: the key loses it in the same moment.
    app.gql(Some(&o.ada), REVOKE_BINDING, json!({ "id": o.bob_binding }))
        .await;
    assert_eq!(app.check(&key, "apps:write", &o.ws).await, Some(false));
    // A key acts in its organization only: nothing account-wide, no other organization.
    let r = app
        .gql(Some(&key), "{ organizations { id } }", json!({}))
        .await;
    assert_error(&r, "FORBIDDEN");
    let other = app.create_org(&o.bob, "bobs").await;
    assert_eq!(app.check(&key, "apps:read", &other).await, None);
    // A typo is refused by the checksum, a made-up key by the store; neither opens anything.
    let mut typo = key.clone().into_bytes();
    let last = typo.len() - 10;
    typo[last] = if typo[last] == b'A' { b'B' } else { b'A' };
    let typo = String::from_utf8(typo).unwrap();
    let r = app
        .gql(
            Some(&typo),
            CHECK,
            json!({ "i": { "resourceType": "apps", "action": "read", "nodeId": o.ws } }),
        )
        .await;
    assert_error(&r, "UNAUTHENTICATED");
    assert!(r.to_string().contains("checksum"), "{r}");
    // Listed for its owner, never with its secret; revoked by its owner, it stops at once.
    let r = app
        .gql(
            Some(&o.bob),
            KEYS,
            json!({ "o": o.org, "mine": true, "all": false }),
        )
        .await;
    assert_eq!(r["data"]["apiKeys"][0]["id"], key_id.as_str(), "{r}");
    assert!(
        !r.to_string().contains(&key[10..]),
        "the secret is never listed"
    );
    let r = app
        .gql(Some(&o.bob), REVOKE_KEY, json!({ "id": key_id }))
        .await;
    assert_eq!(
        r["data"]["revokeApiKey"]["apiKey"]["state"], "REVOKED",
        "{r}"
    );
    assert_eq!(app.check(&key, "apps:read", &o.ws).await, None);
    let actions = app.audit_actions().await;
    for a in ["api_key.create", "api_key.revoke", "api_key.refused"] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }
}

#[tokio::test]
async fn a_scoped_key_is_denied_outside_its_scopes_although_its_owner_is_allowed() {
    let app = TestApp::start().await;
    let o = org_on(&app).await;
    let (key, _) = personal_key(
        &app,
        &o.bob,
        &o.org,
        Some(&["apps:*:read", "workspace:*:read"]),
    )
    .await;
    assert_eq!(app.check(&key, "apps:read", &o.ws).await, Some(true));
    assert_eq!(app.check(&o.bob, "apps:write", &o.ws).await, Some(true));
    assert_eq!(app.check(&key, "apps:write", &o.ws).await, Some(false));
    let r = app
        .gql(
            Some(&key),
            EXPLAIN,
            json!({ "i": { "resourceType": "apps", "action": "write", "nodeId": o.ws } }),
        )
        .await;
    assert_eq!(
        r["data"]["explain"]["reasons"][0]["kind"], "OUTSIDE_KEY_SCOPES",
        "{r}"
    );
    // Through the API too: Ada's key scoped to reading cannot write, though Ada can.
    let (ada_key, _) = personal_key(&app, &o.ada, &o.org, Some(&["workspace:*:read"])).await;
    let r = app
        .gql(
            Some(&ada_key),
            "mutation($o: ID!) { createWorkspace(input: {organizationId: $o, slug: \"dev\", name: \"Dev\"}) { workspace { id } } }",
            json!({ "o": o.org }),
        )
        .await;
    assert!(
        matches!(error_code(&r).as_deref(), Some("FORBIDDEN")),
        "{r}"
    );
    // A personal key scoped beyond its owner still holds no more than the owner; a key
    // minted by a key is refused.
    let (wide, _) = personal_key(
        &app,
        &o.bob,
        &o.org,
        Some(&["members:*:manage", "apps:*:write"]),
    )
    .await;
    assert_eq!(app.check(&wide, "members:manage", &o.ws).await, Some(false));
    assert_eq!(app.check(&wide, "apps:write", &o.ws).await, Some(true));
    let r = create_key(
        &app,
        &key,
        json!({ "organizationId": o.org, "name": "x", "expiresAt": in_days(&app, 1) }),
    )
    .await;
    assert_error(&r, "FORBIDDEN");
    // Bad input is named, never a 500.
    for (field, input) in [
        (
            "scopes",
            json!({ "organizationId": o.org, "name": "x", "expiresAt": in_days(&app, 1), "scopes": ["nope"] }),
        ),
        (
            "expiresAt",
            json!({ "organizationId": o.org, "name": "x", "expiresAt": in_days(&app, -1) }),
        ),
        (
            "expiresAt",
            json!({ "organizationId": o.org, "name": "x", "expiresAt": in_days(&app, 400) }),
        ),
        (
            "allowedCidrs",
            json!({ "organizationId": o.org, "name": "x", "expiresAt": in_days(&app, 1), "allowedCidrs": ["10.0.0.0/99"] }),
        ),
    ] {
        let r = create_key(&app, &o.bob, input).await;
        assert_error(&r, "BAD_USER_INPUT");
        assert_eq!(r["errors"][0]["extensions"]["field"], field, "{r}");
    }
}

#[tokio::test]
async fn a_service_account_acts_through_its_keys_and_disabling_it_denies_them_at_once() {
    let app = TestApp::start().await;
    let o = org_on(&app).await;
    let sa = service_account(&app, &o.ada, &o.org, "deployer").await;
    let developer = app.role_id(&o.ada, &o.org, "developer").await;
    app.grant(&o.ada, &sa, &developer, &o.ws).await;
    let r = create_key(
        &app,
        &o.ada,
        json!({ "organizationId": o.org, "serviceAccountId": sa, "name": "deploy", "expiresAt": in_days(&app, 30) }),
    )
    .await;
    assert_eq!(
        r["data"]["createApiKey"]["apiKey"]["ownerKind"], "SERVICE_ACCOUNT",
        "{r}"
    );
    let key = data_str(&r, &["createApiKey", "secret"]);
    assert_eq!(app.check(&key, "apps:write", &o.ws).await, Some(true));
    let r = app.gql(Some(&o.ada), SAS, json!({ "o": o.org })).await;
    assert_eq!(r["data"]["serviceAccounts"][0]["name"], "deployer", "{r}");
    assert_eq!(
        r["data"]["serviceAccounts"][0]["roleBindings"][0]["principalType"],
        "SERVICE_ACCOUNT"
    );
    // Listed apart from people, and Bob (no service_accounts:read) sees none of it.
    let r = app.gql(Some(&o.bob), SAS, json!({ "o": o.org })).await;
    assert_error(&r, "FORBIDDEN");
    // Disabled: denied at once; enabled again: allowed.
    app.gql(Some(&o.ada), UPDATE_SA, json!({ "id": sa, "d": true }))
        .await;
    assert_ne!(app.check(&key, "apps:read", &o.ws).await, Some(true));
    let r = app.gql(Some(&key), SAS, json!({ "o": o.org })).await;
    assert_error(&r, "NOT_FOUND");
    app.gql(Some(&o.ada), UPDATE_SA, json!({ "id": sa, "d": false }))
        .await;
    assert_eq!(app.check(&key, "apps:write", &o.ws).await, Some(true));
    // A service account in a team holds the team's roles.
    let r = app
        .gql(
            Some(&o.ada),
            "mutation($o: ID!) { createTeam(input: {organizationId: $o, name: \"Ops\"}) { team { id } } }",
            json!({ "o": o.org }),
        )
        .await;
    let team = data_str(&r, &["createTeam", "team", "id"]);
    let r = app
        .gql(
            Some(&o.ada),
            "mutation($t: ID!, $p: [ID!]!) { addTeamMembers(input: {teamId: $t, principalIds: $p}) { changed } }",
            json!({ "t": team, "p": [sa] }),
        )
        .await;
    assert_eq!(
        r["data"]["addTeamMembers"]["changed"][0],
        sa.as_str(),
        "{r}"
    );
    let admin = app.role_id(&o.ada, &o.org, "admin").await;
    app.grant(&o.ada, &team, &admin, &o.ws).await;
    assert_eq!(app.check(&key, "members:manage", &o.ws).await, Some(true));
    // Deleted: its keys are gone with it.
    let r = app.gql(Some(&o.ada), DELETE_SA, json!({ "id": sa })).await;
    assert_eq!(
        r["data"]["deleteServiceAccount"]["deletedId"],
        sa.as_str(),
        "{r}"
    );
    let r = app
        .gql(
            Some(&key),
            CHECK,
            json!({ "i": { "resourceType": "apps", "action": "read", "nodeId": o.ws } }),
        )
        .await;
    assert_error(&r, "UNAUTHENTICATED");
}

#[tokio::test]
async fn attack_a_manager_of_service_accounts_cannot_take_their_power() {
    let app = TestApp::start().await;
    let o = org_on(&app).await;
    // Carol manages service accounts and keys, and may read apps: nothing more.
    let carol = app.sign_up("carol@example.com").await;
    let carol_id = app.join(&o.ada, &o.org, "carol@example.com", &carol).await;
    let keeper = app
        .custom_role(
            &o.ada,
            &o.org,
            "Key keeper",
            &[
                "service_accounts:*:read",
                "service_accounts:*:manage",
                "api_keys:*:read",
                "api_keys:*:manage",
                "apps:*:read",
                "workspace:*:read",
            ],
        )
        .await;
    app.grant(&o.ada, &carol_id, &keeper, &o.org).await;
    // A service account Ada made an admin.
    let sa = service_account(&app, &o.ada, &o.org, "root-bot").await;
    let admin = app.role_id(&o.ada, &o.org, "admin").await;
    app.grant(&o.ada, &sa, &admin, &o.org).await;
    let key_input = |scopes: Option<Vec<&str>>| {
        let mut i = json!({ "organizationId": o.org, "serviceAccountId": sa, "name": "mine", "expiresAt": in_days(&app, 1) });
        if let Some(s) = scopes {
            i["scopes"] = json!(s);
        }
        i
    };
    // A key with the account's whole power, or with a scope she lacks: refused.
    assert_error(
        &create_key(&app, &carol, key_input(None)).await,
        "FORBIDDEN",
    );
    assert_error(
        &create_key(&app, &carol, key_input(Some(vec!["members:*:manage"]))).await,
        "FORBIDDEN",
    );
    // Within her own permissions: fine, and the key holds no more than that scope.
    let r = create_key(&app, &carol, key_input(Some(vec!["apps:*:read"]))).await;
    let narrow = data_str(&r, &["createApiKey", "secret"]);
    assert_eq!(app.check(&narrow, "apps:read", &o.ws).await, Some(true));
    assert_eq!(
        app.check(&narrow, "members:manage", &o.ws).await,
        Some(false)
    );
    // Rotating Ada's full key of the account would hand Carol its secret: refused.
    let r = create_key(&app, &o.ada, key_input(None)).await;
    let full_id = data_str(&r, &["createApiKey", "apiKey", "id"]);
    let r = app
        .gql(Some(&carol), ROTATE_KEY, json!({ "id": full_id, "h": 0 }))
        .await;
    assert_error(&r, "FORBIDDEN");
    // Nor may she disable or delete an account more powerful than her.
    assert_error(
        &app.gql(Some(&carol), UPDATE_SA, json!({ "id": sa, "d": true }))
            .await,
        "FORBIDDEN",
    );
    assert_error(
        &app.gql(Some(&carol), DELETE_SA, json!({ "id": sa })).await,
        "FORBIDDEN",
    );
    // Bob's personal key: she may revoke it (api_keys:manage), never rotate it to get its
    // secret.
    let (_, bob_key_id) = personal_key(&app, &o.bob, &o.org, None).await;
    let r = app
        .gql(
            Some(&carol),
            ROTATE_KEY,
            json!({ "id": bob_key_id, "h": 1 }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");
    let r = app
        .gql(Some(&carol), REVOKE_KEY, json!({ "id": bob_key_id }))
        .await;
    assert_eq!(
        r["data"]["revokeApiKey"]["apiKey"]["state"], "REVOKED",
        "{r}"
    );
    // Bob, without api_keys:manage, can neither see nor revoke others' keys.
    let r = app
        .gql(Some(&o.bob), REVOKE_KEY, json!({ "id": full_id }))
        .await;
    assert!(
        error_code(&r).is_some_and(|c| c == "FORBIDDEN" || c == "NOT_FOUND"),
        "{r}"
    );
    let r = app
        .gql(
            Some(&o.bob),
            KEYS,
            json!({ "o": o.org, "mine": false, "all": true }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");
    // A member of another organization reaches none of it.
    let eve = app.sign_up("eve@example.com").await;
    app.create_org(&eve, "evil").await;
    assert_error(
        &app.gql(Some(&eve), REVOKE_KEY, json!({ "id": full_id }))
            .await,
        "NOT_FOUND",
    );
    assert_error(
        &app.gql(Some(&eve), SAS, json!({ "o": o.org })).await,
        "NOT_FOUND",
    );
    let r = create_key(
        &app,
        &eve,
        json!({ "organizationId": o.org, "serviceAccountId": sa, "name": "x", "expiresAt": in_days(&app, 1) }),
    )
    .await;
    assert_error(&r, "NOT_FOUND");
}

#[tokio::test]
async fn rotation_overlap_ends_on_first_use_of_the_new_secret() {
    let app = TestApp::start().await;
    let o = org_on(&app).await;
    let (old, old_id) = personal_key(&app, &o.bob, &o.org, None).await;
    let r = app
        .gql(Some(&o.bob), ROTATE_KEY, json!({ "id": old_id, "h": 24 }))
        .await;
    assert_eq!(
        r["data"]["rotateApiKey"]["previous"]["state"], "OVERLAPPING",
        "{r}"
    );
    let new = data_str(&r, &["rotateApiKey", "secret"]);
    // Both work during the overlap, until the new one is used.
    assert_eq!(app.check(&old, "apps:write", &o.ws).await, Some(true));
    assert_eq!(app.check(&new, "apps:write", &o.ws).await, Some(true));
    let r = app
        .gql(
            Some(&old),
            CHECK,
            json!({ "i": { "resourceType": "apps", "action": "read", "nodeId": o.ws } }),
        )
        .await;
    assert_error(&r, "UNAUTHENTICATED");
    assert!(r.to_string().contains("rotated"), "{r}");
    assert_eq!(app.check(&new, "apps:write", &o.ws).await, Some(true));
    // With no overlap the old secret stops at once.
    let new_id = {
        let r = app
            .gql(
                Some(&o.bob),
                KEYS,
                json!({ "o": o.org, "mine": true, "all": false }),
            )
            .await;
        r["data"]["apiKeys"][0]["id"].as_str().unwrap().to_owned()
    };
    let r = app
        .gql(Some(&o.bob), ROTATE_KEY, json!({ "id": new_id, "h": 0 }))
        .await;
    let newest = data_str(&r, &["rotateApiKey", "secret"]);
    assert_eq!(app.check(&new, "apps:read", &o.ws).await, None);
    assert_eq!(app.check(&newest, "apps:read", &o.ws).await, Some(true));
    // Out of range: named.
    let r = app
        .gql(Some(&o.bob), ROTATE_KEY, json!({ "id": new_id, "h": 721 }))
        .await;
    assert_error(&r, "BAD_USER_INPUT");
}

#[tokio::test]
async fn the_overlap_ends_on_every_instance_when_the_new_secret_is_first_used_on_one() {
    let (a, b) = TestApp::pair(&any_redis()).await;
    let o = org_on(&a).await;
    let (old, old_id) = personal_key(&a, &o.bob, &o.org, None).await;
    let r = a
        .gql(Some(&o.bob), ROTATE_KEY, json!({ "id": old_id, "h": 24 }))
        .await;
    let new = data_str(&r, &["rotateApiKey", "secret"]);
    // B verifies and caches the old secret, still in its overlap.
    assert_eq!(b.check(&old, "apps:write", &o.ws).await, Some(true));
    // The new one is first used on A: B refuses the old one within the bound.
    assert_eq!(a.check(&new, "apps:write", &o.ws).await, Some(true));
    let took = until(&b, &old, &o.ws, false).await;
    assert!(took < Duration::from_secs(2), "seen on B after {took:?}");
    assert_eq!(b.check(&old, "apps:write", &o.ws).await, None);
    assert_eq!(b.check(&new, "apps:write", &o.ws).await, Some(true));
}

#[tokio::test]
async fn an_expired_key_and_a_key_from_outside_its_networks_are_refused_and_audited() {
    let app = TestApp::start().await;
    let o = org_on(&app).await;
    let soon = (app.state.services.clock().now() + chrono::Duration::hours(2)).to_rfc3339();
    let r = create_key(
        &app,
        &o.bob,
        json!({ "organizationId": o.org, "name": "short", "expiresAt": soon }),
    )
    .await;
    let short = data_str(&r, &["createApiKey", "secret"]);
    let r = create_key(
        &app,
        &o.bob,
        json!({ "organizationId": o.org, "name": "office", "expiresAt": in_days(&app, 5), "allowedCidrs": ["10.0.0.0/8"] }),
    )
    .await;
    let office = data_str(&r, &["createApiKey", "secret"]);
    let r = create_key(
        &app,
        &o.bob,
        json!({ "organizationId": o.org, "name": "local", "expiresAt": in_days(&app, 5), "allowedCidrs": ["127.0.0.1"] }),
    )
    .await;
    let local = data_str(&r, &["createApiKey", "secret"]);
    assert_eq!(app.check(&short, "apps:write", &o.ws).await, Some(true));
    assert_eq!(app.check(&local, "apps:write", &o.ws).await, Some(true));
    // The tests call from 127.0.0.1: outside 10.0.0.0/8.
    let r = app
        .gql(
            Some(&office),
            CHECK,
            json!({ "i": { "resourceType": "apps", "action": "read", "nodeId": o.ws } }),
        )
        .await;
    assert_error(&r, "UNAUTHENTICATED");
    assert!(r.to_string().contains("network"), "{r}");
    app.advance(Duration::from_secs(3 * 3600));
    let r = app
        .gql(
            Some(&short),
            CHECK,
            json!({ "i": { "resourceType": "apps", "action": "read", "nodeId": o.ws } }),
        )
        .await;
    assert_error(&r, "UNAUTHENTICATED");
    assert!(r.to_string().contains("expired"), "{r}");
    // Each refusal is audited, once a minute per key and reason however often it is tried.
    for _ in 0..5 {
        app.check(&office, "apps:read", &o.ws).await;
    }
    let refused = app
        .audit_actions()
        .await
        .into_iter()
        .filter(|a| a == "api_key.refused")
        .count();
    assert_eq!(refused, 2, "one for the network, one for the expiry");
}

#[tokio::test]
async fn removal_revokes_personal_keys_on_another_instance_within_the_bound() {
    let (a, b) = TestApp::pair(&any_redis()).await;
    let o = org_on(&a).await;
    let (key, _) = personal_key(&a, &o.bob, &o.org, None).await;
    // B verifies the key and caches it and Bob's facts.
    assert_eq!(b.check(&key, "apps:write", &o.ws).await, Some(true));
    a.gql(
        Some(&o.ada),
        REMOVE_MEMBER,
        json!({ "o": o.org, "u": o.bob_id }),
    )
    .await;
    let took = until(&b, &key, &o.ws, false).await;
    assert!(took < Duration::from_secs(2), "seen on B after {took:?}");
    // Revoked for good: invited again, the old key stays dead.
    let r = a
        .gql(
            Some(&o.ada),
            KEYS,
            json!({ "o": o.org, "mine": false, "all": true }),
        )
        .await;
    let revoked = r["data"]["apiKeys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["ownerKind"] == "USER")
        .cloned()
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(revoked["state"], "REVOKED");
    assert_eq!(revoked["revokedReason"], "owner_removed");
    // A service account disabled on A is denied on B too.
    let sa = service_account(&a, &o.ada, &o.org, "bot").await;
    let developer = a.role_id(&o.ada, &o.org, "developer").await;
    a.grant(&o.ada, &sa, &developer, &o.ws).await;
    let r = create_key(
        &a,
        &o.ada,
        json!({ "organizationId": o.org, "serviceAccountId": sa, "name": "bot", "expiresAt": in_days(&a, 3) }),
    )
    .await;
    let bot = data_str(&r, &["createApiKey", "secret"]);
    until(&b, &bot, &o.ws, true).await;
    a.gql(Some(&o.ada), UPDATE_SA, json!({ "id": sa, "d": true }))
        .await;
    until(&b, &bot, &o.ws, false).await;
}

#[tokio::test]
async fn a_key_works_over_websocket_and_its_uses_are_recorded_in_batches() {
    let app = TestApp::start_with(|c| {
        c.api_key_jobs_interval = Duration::from_millis(100);
        c.trust_forwarded_for = true;
    })
    .await;
    let o = org_on(&app).await;
    let (key, _) = personal_key(&app, &o.bob, &o.org, None).await;
    let mut ws = RawWs::signed_in(&app, &key).await;
    let q = format!(
        "{{ check(input: {{resourceType: \"apps\", action: \"write\", nodeId: \"{}\"}}) {{ allowed }} }}",
        o.ws
    );
    let answer = ws.run("one", &q).await;
    assert_eq!(answer["data"]["check"]["allowed"], true, "{answer}");
    for ip in ["203.0.113.7", "198.51.100.2", "203.0.113.7"] {
        let r: Value = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(&key)
            .header("x-forwarded-for", ip)
            .json(&json!({ "query": CHECK, "variables": { "i": { "resourceType": "apps", "action": "read", "nodeId": o.ws } } }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["data"]["check"]["allowed"], true, "{r}");
    }
    let started = Instant::now();
    let listed = loop {
        let r = app
            .gql(
                Some(&o.bob),
                KEYS,
                json!({ "o": o.org, "mine": true, "all": false }),
            )
            .await;
        let k = r["data"]["apiKeys"][0].clone();
        if k["lastIps"].as_array().is_some_and(|ips| ips.len() == 3) {
            break k;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "uses never written: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        listed["lastIps"][0], "203.0.113.7",
        "newest first: {listed}"
    );
    assert!(listed["lastUsedAt"].is_string());
    let new_ips = app
        .audit_actions()
        .await
        .into_iter()
        .filter(|a| a == "api_key.new_ip")
        .count();
    assert_eq!(new_ips, 3, "each distinct address once");
}

#[tokio::test]
async fn owners_are_emailed_seven_days_and_one_day_before_expiry_once_with_two_instances() {
    let smtp = SmtpSink::start();
    let redis = any_redis();
    let tweak = |c: &mut iam_gateway::config::Config| {
        c.smtp_url = Some(smtp.url());
        c.api_key_jobs_interval = Duration::from_millis(100);
    };
    let db = TestDb::shared().await;
    let url = db.url.clone();
    let a = TestApp::start_on(Some(db), &url, Some(redis.clone()), tweak).await;
    let b = TestApp::start_on(None, &url, Some(redis), tweak).await;
    // Ada's own key (with SMTP on, invitations go out by mail and carry no token here).
    let ada = a.sign_up("ada@example.com").await;
    let org = a.create_org(&ada, "acme").await;
    let r = create_key(
        &a,
        &ada,
        json!({ "organizationId": org, "name": "nightly", "expiresAt": in_days(&a, 10) }),
    )
    .await;
    data_str(&r, &["createApiKey", "apiKey", "id"]);
    for app in [&a, &b] {
        app.advance(Duration::from_secs(4 * 86_400));
    }
    let mails = smtp.wait_for_with(1, "\"nightly\"").await;
    assert!(
        mails[0]
            .header("to")
            .is_some_and(|t| t.contains("ada@example.com"))
    );
    assert!(
        mails[0]
            .header("subject")
            .is_some_and(|s| s.contains("7 days"))
    );
    for app in [&a, &b] {
        app.advance(Duration::from_secs(5 * 86_400 + 3600));
    }
    let mails = smtp.wait_for_with(2, "\"nightly\"").await;
    assert!(
        mails[1]
            .header("subject")
            .is_some_and(|s| s.contains("1 day"))
    );
    // Both instances ran the job many times meanwhile: still one mail per threshold.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let about: Vec<_> = smtp
        .messages()
        .into_iter()
        .filter(|m| m.body.contains("\"nightly\""))
        .collect();
    assert_eq!(about.len(), 2, "one 7-day and one 1-day notice");
}
