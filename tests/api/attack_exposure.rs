//! What the gateway shows of itself to whoever reaches its port (issue 12, hole 11): `/metrics`
//! was open to anyone, and a client's `x-request-id` went unchecked into logs and audit rows.

use std::time::Duration;

use serde_json::json;

use crate::common::dns::free_port;
use crate::common::{METRICS_TOKEN, TestApp};

#[tokio::test]
async fn metrics_on_the_api_port_need_the_metrics_token() {
    let app = TestApp::start().await;
    let url = app.url("/metrics");
    let anonymous = app.http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(!anonymous.text().await.unwrap().contains("iam_"));

    // A signed-in user's session token is not the metrics token.
    let admin = app.sign_up("admin@example.com").await;
    let session = app.http.get(&url).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(session.status(), 401);
    let almost = &METRICS_TOKEN[..METRICS_TOKEN.len() - 1];
    let wrong = app.http.get(&url).bearer_auth(almost).send().await.unwrap();
    assert_eq!(wrong.status(), 401);

    let right = app
        .http
        .get(&url)
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert!(right.text().await.unwrap().contains("iam_"));
}

#[tokio::test]
async fn without_a_token_or_an_address_of_their_own_metrics_are_not_served() {
    let app = TestApp::start_with(|c| c.metrics_token = None).await;
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(!r.text().await.unwrap().contains("iam_"));
}

#[tokio::test]
async fn metrics_on_their_own_address_leave_the_api_port() {
    let addr = free_port();
    let app = TestApp::start_with(|c| c.metrics_listen = Some(addr)).await;
    // The token opens nothing on the API's port once metrics have their own address.
    let api = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404);

    let mut own = None;
    for _ in 0..100 {
        match app.http.get(format!("http://{addr}/metrics")).send().await {
            Ok(r) => {
                own = Some(r);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let own = own.expect("the metrics address answers");
    assert_eq!(own.status(), 200);
    assert!(own.text().await.unwrap().contains("iam_"));
}

#[tokio::test]
async fn a_forged_request_id_does_not_reach_the_audit_trail() {
    let app = TestApp::start().await;
    let admin = app.sign_up("admin@example.com").await;
    let forged = [
        "<script>alert(1)</script>".to_owned(),
        "a".repeat(500),
        "id with spaces".to_owned(),
        "\"quoted\",{json}".to_owned(),
    ];
    for (i, id) in forged.iter().enumerate() {
        let r = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(&admin)
            .header("x-request-id", id)
            .json(&json!({
                "query": "mutation($n: String!, $s: String!) { createOrganization(input: { name: $n, slug: $s }) { organization { id } } }",
                "variables": { "n": format!("Org {i}"), "s": format!("org-{i}") },
            }))
            .send()
            .await
            .unwrap();
        let echoed = r
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_ne!(&echoed, id, "the forged id came back");
        assert!(!echoed.is_empty(), "a fresh id replaces the forged one");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body["errors"].is_null(), "{body}");
    }
    // A plain identifier from an upstream proxy is kept, for correlation.
    let r = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&admin)
        .header("x-request-id", "edge-7f3a:42")
        .json(&json!({ "query": r#"mutation { createOrganization(input: { name: "Kept", slug: "kept" }) { organization { id } } }"# }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "edge-7f3a:42");

    let events = app
        .state
        .services
        .store()
        .audit_events(None, 1000)
        .await
        .unwrap();
    let ids: Vec<_> = events.iter().filter_map(|e| e.request_id.clone()).collect();
    assert!(ids.iter().any(|id| id == "edge-7f3a:42"), "{ids:?}");
    for id in &forged {
        assert!(
            !ids.contains(id),
            "a forged id reached the audit trail: {id}"
        );
    }
}
