//! The HTTP surface: health, readiness, GraphiQL, limits, request ids.

use serde_json::json;

use crate::common::{TestApp, assert_error};

#[tokio::test]
async fn health_readiness_and_graphiql() {
    let app = TestApp::start().await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    let graphiql = app.http.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(graphiql.status(), 200);
    assert!(
        graphiql
            .text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("graphiql")
    );
}

#[tokio::test]
async fn request_ids_are_returned_and_propagated() {
    let app = TestApp::start().await;
    let fresh = app.http.get(app.url("/healthz")).send().await.unwrap();
    let id = fresh
        .headers()
        .get("x-request-id")
        .expect("a request id is assigned");
    assert!(uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok());
    let given = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-me-123");
}

#[tokio::test]
async fn oversized_bodies_and_deep_queries_are_refused() {
    let app = TestApp::start_with(|c| {
        c.max_body_bytes = 4096;
        c.graphql_max_depth = 4;
    })
    .await;
    let big = "x".repeat(10_000);
    let resp = app
        .http
        .post(app.url("/graphql"))
        .json(&json!({ "query": format!("{{ me {{ id }} }} # {big}") }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    let token = app.sign_up("ada@example.com").await;
    let deep = app
        .gql(
            Some(&token),
            "{ me { organizations { workspaces { projects { workspace { id } } } } } }",
            json!({}),
        )
        .await;
    assert_error(&deep, "BAD_USER_INPUT");
    let syntax = app.gql(Some(&token), "{ me { ", json!({})).await;
    assert_error(&syntax, "BAD_USER_INPUT");
}

#[tokio::test]
async fn introspection_can_be_turned_off() {
    let on = TestApp::start().await;
    let q = "{ __schema { queryType { name } } }";
    let r = on.gql(None, q, json!({})).await;
    assert_eq!(r["data"]["__schema"]["queryType"]["name"], "Query");
    let off = TestApp::start_with(|c| c.graphql_introspection = false).await;
    let r = off.gql(None, q, json!({})).await;
    assert!(
        r["data"]["__schema"].is_null(),
        "introspection must answer nothing: {r}"
    );
}

#[tokio::test]
async fn a_body_that_is_not_one_graphql_request_is_refused_with_a_code() {
    let app = TestApp::start().await;
    for body in [
        "not json",
        r#"[{"query": "{ __typename }"}]"#,
        r#"{"query": 3}"#,
    ] {
        let resp = app
            .http
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let json: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(
            json["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}: {json}"
        );
    }
    // The same query text twice (the second is taken already parsed) answers the same.
    for _ in 0..2 {
        let r = app.gql(None, "{ __typename }", serde_json::json!({})).await;
        assert_eq!(r["data"]["__typename"], "Query", "{r}");
    }
}

/// A query text that ran cleanly once is validated in the fast mode afterwards (see
/// `http/documents.rs`): the same text with variables of the wrong shape, or with a field it
/// does not select, must still be refused as the client's error, never answered.
#[tokio::test]
async fn a_known_query_text_is_still_checked_against_its_variables() {
    let app = TestApp::start().await;
    let token = app.sign_up("ada@example.com").await;
    let org = app.create_org(&token, "acme").await;
    const CHECK: &str = "query($i: CheckInput!) { check(input: $i) { allowed } }";
    let good = json!({ "i": { "resourceType": "apps", "action": "read", "nodeId": org } });
    const REMEMBERED: &str = r#"iam_graphql_validations_total{mode="remembered"}"#;
    let before = app.metric(REMEMBERED).await;
    for _ in 0..2 {
        let ok = app.gql(Some(&token), CHECK, good.clone()).await;
        assert_eq!(ok["data"]["check"]["allowed"], true, "{ok}");
    }
    assert_eq!(app.metric(REMEMBERED).await - before, 1.0);
    // Values of the remembered shape that are still wrong: refused by the resolver.
    for bad in [
        json!({ "i": { "resourceType": "nope", "action": "read", "nodeId": org } }),
        json!({ "i": { "resourceType": "apps", "action": "read", "nodeId": "not-an-id" } }),
    ] {
        let refused = app.gql(Some(&token), CHECK, bad.clone()).await;
        assert_error(&refused, "BAD_USER_INPUT");
    }
    assert_eq!(app.metric(REMEMBERED).await - before, 3.0);
    // Other shapes: the full validation refuses them (an unknown field above all, which reading
    // the argument alone would ignore).
    for bad in [
        json!({ "i": { "resourceType": 5, "action": "read", "nodeId": org } }),
        json!({ "i": { "action": "read", "nodeId": org } }),
        json!({ "i": null }),
        json!({}),
        json!({ "i": { "resourceType": "apps", "action": "read", "nodeId": org, "extra": 1 } }),
    ] {
        let refused = app.gql(Some(&token), CHECK, bad.clone()).await;
        assert_error(&refused, "BAD_USER_INPUT");
        assert!(
            refused["data"].is_null() || refused["data"]["check"].is_null(),
            "{bad} → {refused}"
        );
    }
    // And the text still answers rightly afterwards.
    let ok = app.gql(Some(&token), CHECK, good).await;
    assert_eq!(ok["data"]["check"]["allowed"], true, "{ok}");
}
