//! Searching an organization's trail: pages newest first that cover it exactly once, filters
//! that narrow it and cannot be turned into wildcards, the account events of its members in it,
//! and nobody else's trail within reach.

use serde_json::{Value, json};

use crate::common::{PASSWORD, TestApp, assert_error, data_str};

const PAGE: &str = "query($o: ID!, $f: AuditEventFilter, $n: Int, $a: String) { auditEvents(organizationId: $o, filter: $f, first: $n, after: $a) { events { id action actorId actorEmail targetType targetId result ip device createdAt } endCursor hasNextPage } }";

async fn page(
    app: &TestApp,
    token: &str,
    org: &str,
    filter: Value,
    first: i64,
    after: Option<&str>,
) -> Value {
    app.gql(
        Some(token),
        PAGE,
        json!({ "o": org, "f": filter, "n": first, "a": after }),
    )
    .await
}

/// Every event matching `filter`, walking pages of `first`.
async fn all(app: &TestApp, token: &str, org: &str, filter: Value, first: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let r = page(app, token, org, filter.clone(), first, after.as_deref()).await;
        let p = &r["data"]["auditEvents"];
        let events = p["events"].as_array().unwrap_or_else(|| panic!("{r}"));
        assert!(events.len() as i64 <= first, "{r}");
        out.extend(events.iter().cloned());
        if p["hasNextPage"] != true {
            return out;
        }
        after = Some(p["endCursor"].as_str().expect("a cursor").to_owned());
    }
}

/// When `event` was written.
fn at(event: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(event["createdAt"].as_str().unwrap()).unwrap()
}

fn actions(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn pages_cover_the_trail_once_newest_first_and_filters_narrow_it() {
    let app = TestApp::start().await;
    let ada = app.sign_up("ada@example.com").await;
    let ada_id = app.user_id(&ada).await;
    let org = app.create_org(&ada, "acme").await;
    let mut workspaces = Vec::new();
    for slug in ["a", "b", "c", "d"] {
        workspaces.push(app.create_workspace(&ada, &org, slug).await);
    }
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&ada, &org, "bob@example.com", &bob).await;
    app.create_workspace(&ada, &org, "e").await;

    let everything = all(&app, &ada, &org, json!(null), 500).await;
    let paged = all(&app, &ada, &org, json!(null), 3).await;
    assert_eq!(
        paged, everything,
        "pages of 3 are the one page of 500, in order"
    );
    let ids: std::collections::HashSet<&str> =
        paged.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), paged.len(), "no event twice");
    let times: Vec<_> = paged.iter().map(at).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    assert_eq!(actions(&paged)[0], "workspace.create");
    assert_eq!(*actions(&paged).last().unwrap(), "organization.create");

    let creates = all(&app, &ada, &org, json!({ "action": "workspace.create" }), 2).await;
    assert_eq!(creates.len(), 5);
    let invitation = all(
        &app,
        &ada,
        &org,
        json!({ "actionPrefix": "invitation." }),
        50,
    )
    .await;
    assert_eq!(
        actions(&invitation),
        ["invitation.accept", "invitation.create"]
    );
    let by_bob = all(&app, &ada, &org, json!({ "actorId": bob_id }), 50).await;
    assert!(!by_bob.is_empty());
    assert!(
        by_bob.iter().all(|e| e["actorId"] == bob_id.as_str()),
        "{by_bob:?}"
    );
    let by_email = all(
        &app,
        &ada,
        &org,
        json!({ "actorEmail": " Ada@Example.com " }),
        50,
    )
    .await;
    assert!(by_email.iter().all(|e| e["actorId"] == ada_id.as_str()));
    assert_eq!(
        by_email.len() + by_bob.len(),
        everything.len(),
        "every event here is Ada's or Bob's"
    );
    let one = all(
        &app,
        &ada,
        &org,
        json!({ "targetType": "workspace", "targetId": workspaces[1] }),
        50,
    )
    .await;
    assert_eq!(actions(&one), ["workspace.create"]);
    // A time window: the events written from Bob's sign-up on, and those before.
    let bob_signed_up = everything
        .iter()
        .find(|e| e["actorId"] == bob_id.as_str())
        .map(|e| e["createdAt"].as_str().unwrap().to_owned())
        .unwrap();
    let before = all(&app, &ada, &org, json!({ "to": bob_signed_up }), 50).await;
    let since = all(&app, &ada, &org, json!({ "from": bob_signed_up }), 50).await;
    assert_eq!(before.len() + since.len(), everything.len());
    let cut = chrono::DateTime::parse_from_rfc3339(&bob_signed_up).unwrap();
    assert!(before.iter().all(|e| at(e) < cut));
    assert!(since.iter().all(|e| at(e) >= cut));
    // Filters together.
    let r = all(
        &app,
        &ada,
        &org,
        json!({ "actorId": ada_id, "action": "workspace.create", "from": bob_signed_up }),
        50,
    )
    .await;
    assert_eq!(r.len(), 1);
    // Wildcards are literal: `%` and `_` match only themselves.
    for prefix in ["%", "_", "workspace_", "\\"] {
        let r = all(&app, &ada, &org, json!({ "actionPrefix": prefix }), 50).await;
        assert!(r.is_empty(), "{prefix}: {r:?}");
    }
    let r = all(&app, &ada, &org, json!({ "result": "FAILURE" }), 50).await;
    assert!(r.is_empty());
}

#[tokio::test]
async fn bad_pages_and_filters_are_named() {
    let app = TestApp::start().await;
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    for (filter, first, after, field) in [
        (json!(null), 0, None, "first"),
        (json!(null), 501, None, "first"),
        (json!(null), 10, Some("not-a-cursor"), "after"),
        (json!({ "actionPrefix": "" }), 10, None, "actionPrefix"),
        (json!({ "action": "x".repeat(321) }), 10, None, "action"),
        (
            json!({ "from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z" }),
            10,
            None,
            "to",
        ),
        (json!({ "actorId": "nope" }), 10, None, "actorId"),
    ] {
        let r = page(&app, &ada, &org, filter, first, after).await;
        assert_error(&r, "BAD_USER_INPUT");
        assert_eq!(r["errors"][0]["extensions"]["field"], field, "{r}");
    }
}

#[tokio::test]
async fn admins_see_their_members_account_events_and_no_one_elses_trail() {
    let app = TestApp::start().await;
    let ada = app.sign_up("ada@example.com").await;
    let acme = app.create_org(&ada, "acme").await;
    let olga = app.sign_up("olga@example.com").await;
    let beta = app.create_org(&olga, "beta").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&ada, &acme, "bob@example.com", &bob).await;
    app.join(&olga, &beta, "bob@example.com", &bob).await;
    // Carol belongs to no organization of theirs.
    app.sign_up("carol@example.com").await;
    let wrong = json!({ "e": "bob@example.com", "p": "not the password" });
    let sign_in =
        "mutation($e: String!, $p: String!) { signIn(input: {email: $e, password: $p}) { token } }";
    let r = app
        .http
        .post(app.url("/graphql"))
        .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36")
        .json(&json!({ "query": sign_in, "variables": wrong }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_error(&r, "UNAUTHENTICATED");
    app.gql(
        None,
        sign_in,
        json!({ "e": "carol@example.com", "p": "not the password" }),
    )
    .await;
    data_str(
        &app.gql(
            None,
            sign_in,
            json!({ "e": "bob@example.com", "p": PASSWORD }),
        )
        .await,
        &["signIn", "token"],
    );
    // Both of Bob's organizations see his failed and his good sign-in, with address and
    // device; neither sees Carol's.
    for (admin, org) in [(&ada, &acme), (&olga, &beta)] {
        let events = all(
            &app,
            admin,
            org,
            json!({ "actionPrefix": "auth.sign_in" }),
            50,
        )
        .await;
        let failed = events
            .iter()
            .find(|e| e["action"] == "auth.sign_in_failed")
            .unwrap_or_else(|| panic!("{events:?}"));
        assert_eq!(failed["targetId"], bob_id.as_str());
        assert_eq!(failed["result"], "failure");
        assert_eq!(failed["ip"], "127.0.0.1");
        assert_eq!(failed["device"], "Chrome on Linux");
        assert!(events.iter().any(|e| e["action"] == "auth.sign_in"));
        assert!(
            !serde_json::to_string(&events).unwrap().contains("carol@"),
            "{events:?}"
        );
        let failures = all(&app, admin, org, json!({ "result": "FAILURE" }), 50).await;
        assert_eq!(actions(&failures), ["auth.sign_in_failed"]);
    }
    // Ada cannot read beta's trail, nor can Bob (no audit:read) read acme's.
    let r = page(&app, &ada, &beta, json!(null), 10, None).await;
    assert!(
        ["NOT_FOUND", "FORBIDDEN"]
            .contains(&r["errors"][0]["extensions"]["code"].as_str().unwrap_or("")),
        "{r}"
    );
    let r = page(&app, &bob, &acme, json!(null), 10, None).await;
    assert_error(&r, "FORBIDDEN");
    let r = app.gql(None, PAGE, json!({ "o": acme, "n": 10 })).await;
    assert_error(&r, "UNAUTHENTICATED");
}
