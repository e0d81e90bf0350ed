//! Impersonation through the API: an admin acts as a member in one organization, for a bounded
//! time, never with more than the admin holds (at the start, and at every later check), every
//! action naming both people, the member seeing it; and nobody impersonates their way to more
//! power, into another organization, or past the hour.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{TestApp, assert_error, data_str};

const START: &str = "mutation($i: StartImpersonationInput!) { startImpersonation(input: $i) { token sessionId expiresAt } }";
const END: &str = "mutation($i: EndImpersonationInput!) { endImpersonation(input: $i) { ended } }";
const EXPLAIN: &str = "query($i: CheckInput!) { explain(input: $i) { allowed reasons { kind } } }";
const MY_SESSIONS: &str = "{ mySessions { method impersonatorId impersonationReason } }";

fn start(org: &str, user: &str, minutes: i32, reason: &str) -> Value {
    json!({ "i": { "organizationId": org, "userId": user, "reason": reason, "minutes": minutes } })
}

struct Org {
    ada: String,
    ada_id: String,
    org: String,
    ws: String,
    bob: String,
    bob_id: String,
}

/// Ada (Admin) and Bob (Developer at the workspace).
async fn org_on(app: &TestApp) -> Org {
    let ada = app.sign_up("ada@example.com").await;
    let ada_id = app.user_id(&ada).await;
    let org = app.create_org(&ada, "acme").await;
    let ws = app.create_workspace(&ada, &org, "prod").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&ada, &org, "bob@example.com", &bob).await;
    let developer = app.role_id(&ada, &org, "developer").await;
    app.grant(&ada, &bob_id, &developer, &ws).await;
    Org {
        ada,
        ada_id,
        org,
        ws,
        bob,
        bob_id,
    }
}

#[tokio::test]
async fn an_admin_acts_as_a_member_in_one_organization_and_both_are_named() {
    let app = TestApp::start().await;
    let o = org_on(&app).await;
    for (bad, field) in [
        (start(&o.org, &o.bob_id, 61, "ticket 42"), "minutes"),
        (start(&o.org, &o.bob_id, 0, "ticket 42"), "minutes"),
        (start(&o.org, &o.bob_id, 30, "  "), "reason"),
        (start(&o.org, &o.ada_id, 30, "me"), "userId"),
    ] {
        let r = app.gql(Some(&o.ada), START, bad).await;
        assert_error(&r, "BAD_USER_INPUT");
        assert_eq!(r["errors"][0]["extensions"]["field"], field, "{r}");
    }
    let r = app
        .gql(
            Some(&o.ada),
            START,
            start(&o.org, &o.bob_id, 30, "ticket 42"),
        )
        .await;
    let token = data_str(&r, &["startImpersonation", "token"]);
    let session = data_str(&r, &["startImpersonation", "sessionId"]);
    // Bob's permissions, not Ada's.
    assert_eq!(app.check(&token, "apps:write", &o.ws).await, Some(true));
    assert_eq!(
        app.check(&token, "members:manage", &o.ws).await,
        Some(false)
    );
    let r = app.gql(Some(&token), "{ me { email } }", json!({})).await;
    assert_eq!(r["data"]["me"]["email"], "bob@example.com", "{r}");
    // In this organization only: another of Bob's is out of reach.
    let other = app.create_org(&o.bob, "bobs").await;
    assert_eq!(app.check(&token, "apps:read", &other).await, None);
    // What is Bob's own stays his: his sessions, his keys, a nested impersonation.
    assert_error(
        &app.gql(Some(&token), MY_SESSIONS, json!({})).await,
        "FORBIDDEN",
    );
    let r = app
        .gql(
            Some(&token),
            "mutation($o: ID!, $e: DateTime!) { createApiKey(input: {organizationId: $o, name: \"x\", expiresAt: $e}) { secret } }",
            json!({ "o": o.org, "e": (app.state.services.clock().now() + chrono::Duration::days(1)).to_rfc3339() }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");
    let r = app
        .gql(Some(&token), START, start(&o.org, &o.ada_id, 5, "again"))
        .await;
    assert_error(&r, "FORBIDDEN");
    // Bob sees it, with who and why.
    let r = app.gql(Some(&o.bob), MY_SESSIONS, json!({})).await;
    let listed: Vec<&Value> = r["data"]["mySessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["method"] == "impersonation")
        .collect();
    assert_eq!(listed.len(), 1, "{r}");
    assert_eq!(listed[0]["impersonatorId"], o.ada_id.as_str());
    assert_eq!(listed[0]["impersonationReason"], "ticket 42");
    // Ended by the impersonation itself; every event names both people.
    let r = app.gql(Some(&token), END, json!({ "i": {} })).await;
    assert_eq!(r["data"]["endImpersonation"]["ended"], true, "{r}");
    assert_eq!(app.check(&token, "apps:read", &o.ws).await, None);
    let events = app
        .state
        .services
        .store()
        .audit_events(None, 1000)
        .await
        .unwrap();
    let started = events
        .iter()
        .find(|e| e.action == "impersonation.start")
        .expect("start audited");
    assert_eq!(
        started.actor_id.map(|u| u.to_string()),
        Some(o.ada_id.clone())
    );
    assert_eq!(started.target_id.as_deref(), Some(session.as_str()));
    let ended = events
        .iter()
        .find(|e| e.action == "impersonation.end")
        .expect("end audited");
    assert_eq!(
        ended.actor_id.map(|u| u.to_string()),
        Some(o.bob_id.clone())
    );
    assert_eq!(
        ended.impersonator_id.map(|u| u.to_string()),
        Some(o.ada_id.clone())
    );
    assert_eq!(ended.actor_kind.as_deref(), Some("impersonation"));
}

#[tokio::test]
async fn attack_an_impersonation_never_exceeds_the_impersonator() {
    let app = TestApp::start().await;
    let o = org_on(&app).await;
    // Carol may impersonate and read, nothing more: Bob's Developer role is beyond her.
    let carol = app.sign_up("carol@example.com").await;
    let carol_id = app.join(&o.ada, &o.org, "carol@example.com", &carol).await;
    let r = app
        .gql(
            Some(&o.ada),
            "mutation($o: ID!) { createRole(input: {organizationId: $o, name: \"Support\", policies: [{effect: ALLOW, permission: \"members:*:impersonate\"}, {effect: ALLOW, permission: \"members:*:read\"}, {effect: ALLOW, permission: \"workspace:*:read\"}]}) { role { id } } }",
            json!({ "o": o.org }),
        )
        .await;
    let support = data_str(&r, &["createRole", "role", "id"]);
    app.grant(&o.ada, &carol_id, &support, &o.org).await;
    let r = app
        .gql(Some(&carol), START, start(&o.org, &o.bob_id, 10, "help"))
        .await;
    assert_error(&r, "FORBIDDEN");
    let r = app
        .gql(Some(&carol), START, start(&o.org, &o.ada_id, 10, "help"))
        .await;
    assert_error(&r, "FORBIDDEN");
    // Bob (no members:impersonate) may not impersonate at all; an outsider sees nothing.
    let r = app
        .gql(Some(&o.bob), START, start(&o.org, &carol_id, 10, "x"))
        .await;
    assert_error(&r, "FORBIDDEN");
    let eve = app.sign_up("eve@example.com").await;
    let r = app
        .gql(Some(&eve), START, start(&o.org, &o.bob_id, 10, "x"))
        .await;
    assert_error(&r, "NOT_FOUND");
    // Carol made Admin impersonates Bob; once she loses Admin, so does the impersonation,
    // at the next check.
    let admin = app.role_id(&o.ada, &o.org, "admin").await;
    let carols_admin = app.grant(&o.ada, &carol_id, &admin, &o.org).await;
    let r = app
        .gql(Some(&carol), START, start(&o.org, &o.bob_id, 10, "help"))
        .await;
    let token = data_str(&r, &["startImpersonation", "token"]);
    assert_eq!(app.check(&token, "apps:write", &o.ws).await, Some(true));
    app.gql(
        Some(&o.ada),
        "mutation($id: ID!) { revokeRoleBinding(input: {id: $id}) { revision } }",
        json!({ "id": carols_admin }),
    )
    .await;
    assert_eq!(app.check(&token, "apps:write", &o.ws).await, Some(false));
    let r = app
        .gql(
            Some(&token),
            EXPLAIN,
            json!({ "i": { "resourceType": "apps", "action": "write", "nodeId": o.ws } }),
        )
        .await;
    assert_eq!(
        r["data"]["explain"]["reasons"][0]["kind"], "IMPERSONATOR_LACKS",
        "{r}"
    );
}

#[tokio::test]
async fn an_impersonation_ends_with_its_minutes_or_by_its_impersonator() {
    let app = TestApp::start().await;
    let o = org_on(&app).await;
    let r = app
        .gql(
            Some(&o.ada),
            START,
            start(&o.org, &o.bob_id, 15, "debugging"),
        )
        .await;
    let token = data_str(&r, &["startImpersonation", "token"]);
    assert_eq!(app.check(&token, "apps:write", &o.ws).await, Some(true));
    app.advance(Duration::from_secs(16 * 60));
    let r = app.gql(Some(&token), "{ me { email } }", json!({})).await;
    assert_error(&r, "UNAUTHENTICATED");
    // Another one, ended from Ada's own session; Bob cannot end what Ada opened.
    let r = app
        .gql(Some(&o.ada), START, start(&o.org, &o.bob_id, 15, "again"))
        .await;
    let token = data_str(&r, &["startImpersonation", "token"]);
    let session = data_str(&r, &["startImpersonation", "sessionId"]);
    let r = app
        .gql(Some(&o.bob), END, json!({ "i": { "sessionId": session } }))
        .await;
    assert_error(&r, "NOT_FOUND");
    let r = app
        .gql(Some(&o.ada), END, json!({ "i": { "sessionId": session } }))
        .await;
    assert_eq!(r["data"]["endImpersonation"]["ended"], true, "{r}");
    assert_eq!(app.check(&token, "apps:read", &o.ws).await, None);
}
