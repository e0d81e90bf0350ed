//! The HTTP surface: health, readiness, GraphiQL, limits, request ids.

use serde_json::json;

use crate::common::{TestApp, VIEWER, assert_error};

const REMEMBERED: &str = r#"iam_graphql_validations_total{mode="remembered"}"#;
const PREPARED: &str = r#"iam_graphql_validations_total{mode="prepared"}"#;

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
    let remembered = || app.metric(REMEMBERED);
    let prepared = || app.metric(PREPARED);
    let (remembered_before, prepared_before) = (remembered().await, prepared().await);
    for _ in 0..2 {
        let ok = app.gql(Some(&token), CHECK, good.clone()).await;
        assert_eq!(ok["data"]["check"]["allowed"], true, "{ok}");
    }
    // The second time, as a prepared check.
    assert_eq!(prepared().await - prepared_before, 1.0);
    // Values of the remembered shape that are still wrong: the prepared path leaves them to
    // the executor, whose resolver refuses them.
    for bad in [
        json!({ "i": { "resourceType": "nope", "action": "read", "nodeId": org } }),
        json!({ "i": { "resourceType": "apps", "action": "read", "nodeId": "not-an-id" } }),
    ] {
        let refused = app.gql(Some(&token), CHECK, bad.clone()).await;
        assert_error(&refused, "BAD_USER_INPUT");
    }
    assert_eq!(remembered().await - remembered_before, 2.0);
    assert_eq!(prepared().await - prepared_before, 1.0);
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

/// One raw GraphQL exchange: the status, the content type and the body, byte for byte.
async fn exchange(
    app: &TestApp,
    token: Option<&str>,
    query: &str,
    variables: serde_json::Value,
    operation: Option<&str>,
) -> (u16, String, String) {
    let mut body = json!({ "query": query, "variables": variables });
    if let Some(name) = operation {
        body["operationName"] = json!(name);
    }
    let mut req = app.http.post(app.url("/graphql")).json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, kind, resp.text().await.unwrap())
}

/// The prepared `check` and `checkMany` (`http/prepared.rs`) answer exactly what the executor
/// answers. Each
/// case is a text of its own (a comment tells them apart), sent twice with the same variables:
/// the first answer comes from the executor, under the full validation; the second from the
/// prepared path when it can answer, and from the executor again when it cannot (any
/// error). The two must agree byte for byte.
#[tokio::test]
async fn a_prepared_check_answers_what_the_executor_answers() {
    let app = TestApp::start().await;
    let admin = app.sign_up("ada@example.com").await;
    let admin_id = app.user_id(&admin).await;
    let org = app.create_org(&admin, "acme").await;
    let ws = app.create_workspace(&admin, &org, "ml").await;
    let project = app.create_project(&admin, &ws, "p").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&admin, &org, "bob@example.com", &bob).await;
    let granted = app.grant_raw(&admin, &bob_id, VIEWER, &ws, None).await;
    let revision = granted["data"]["grantRole"]["revision"]
        .as_str()
        .unwrap_or_else(|| panic!("{granted}"))
        .to_owned();
    let carol = app.sign_up("carol@example.com").await;
    let dave = app.sign_up("dave@example.com").await;
    let dave_id = app.join(&admin, &org, "dave@example.com", &dave).await;
    let suspended = app
        .member_call(&admin, "suspendMember", &org, &dave_id)
        .await;
    assert_eq!(
        suspended["data"]["suspendMember"]["status"], "SUSPENDED",
        "{suspended}"
    );

    const PLAIN: &str = "query($i: CheckInput!) { check(input: $i) { allowed } }";
    const DRESSED: &str =
        "query May($i: CheckInput!) { d: check(input: $i) { revision ok: allowed __typename } }";
    const MANY: &str = "query($i: [CheckInput!]!) { checkMany(inputs: $i) { allowed revision } }";
    const MANY_DRESSED: &str =
        "query($i: [CheckInput!]!) { all: checkMany(inputs: $i) { __typename yes: allowed } }";
    let input =
        |t: &str, a: &str, node: &str| json!({ "resourceType": t, "action": a, "nodeId": node });
    let with = |mut i: serde_json::Value, key: &str, value: &str| {
        i[key] = json!(value);
        i
    };
    let case = |who: Option<String>, text, input, route| Case {
        who,
        text,
        operation: None,
        input,
        more: None,
        route,
    };
    let by = |token: &str| Some(token.to_owned());
    let missing_node = uuid::Uuid::new_v4().to_string();
    let mut cases = vec![
        case(
            by(&bob),
            PLAIN,
            input("apps", "read", &project),
            Route::Prepared,
        ),
        case(
            by(&bob),
            PLAIN,
            input("apps", "write", &org),
            Route::Prepared,
        ),
        case(
            by(&bob),
            DRESSED,
            input("apps", "read", &ws),
            Route::Prepared,
        ),
        Case {
            who: by(&bob),
            operation: Some("May"),
            ..case(
                None,
                DRESSED,
                input("apps", "delete", &project),
                Route::Prepared,
            )
        },
        case(
            by(&bob),
            PLAIN,
            with(input("apps", "read", &project), "atLeast", &revision),
            Route::Prepared,
        ),
        case(
            by(&bob),
            PLAIN,
            with(input("apps", "read", &project), "resourceId", &missing_node),
            Route::Prepared,
        ),
        case(
            by(&bob),
            PLAIN,
            with(input("apps", "read", &ws), "principalId", &bob_id),
            Route::Prepared,
        ),
        case(
            by(&admin),
            DRESSED,
            input("sso", "manage", &org),
            Route::Prepared,
        ),
        // A suspended member is answered "deny" about themself.
        case(
            by(&dave),
            DRESSED,
            input("apps", "read", &org),
            Route::Prepared,
        ),
        // About someone else: prepared too when the caller may ask (the same authorization
        // as the executor's); refused for bob, who may not.
        case(
            by(&admin),
            DRESSED,
            with(input("apps", "read", &project), "principalId", &bob_id),
            Route::Prepared,
        ),
        case(
            by(&bob),
            PLAIN,
            with(input("apps", "read", &project), "principalId", &admin_id),
            Route::Refused,
        ),
        // `checkMany`: prepared as `check` is, about oneself and about others, mixed; any
        // input the executor would refuse sends the whole batch to it.
        case(
            by(&bob),
            MANY,
            json!([
                input("apps", "read", &project),
                input("apps", "write", &org),
                with(input("apps", "read", &ws), "principalId", &bob_id),
            ]),
            Route::Prepared,
        ),
        case(
            by(&admin),
            MANY_DRESSED,
            json!([
                with(input("apps", "read", &project), "principalId", &bob_id),
                with(input("apps", "write", &project), "principalId", &bob_id),
                input("sso", "manage", &org),
                with(input("apps", "read", &org), "principalId", &dave_id),
            ]),
            Route::Prepared,
        ),
        case(by(&bob), MANY, json!([]), Route::Prepared),
        case(
            by(&bob),
            MANY,
            json!([
                input("apps", "read", &project),
                with(input("apps", "read", &project), "principalId", &admin_id),
            ]),
            Route::Refused,
        ),
        case(
            by(&bob),
            MANY_DRESSED,
            json!([input("apps", "read", &project), input("nope", "read", &org)]),
            Route::Refused,
        ),
        case(
            by(&bob),
            MANY,
            json!([input("apps", "read", &project), null]),
            Route::Refused,
        ),
        case(
            by(&bob),
            MANY,
            serde_json::Value::Array(vec![input("apps", "read", &project); 501]),
            Route::Refused,
        ),
        // One input where a list goes: the executor reads it as a list of one.
        case(
            by(&bob),
            MANY,
            input("apps", "read", &project),
            Route::Executor,
        ),
        // Errors: not a member, no such node, unknown type, a bad token for `atLeast`.
        case(
            by(&carol),
            PLAIN,
            input("apps", "read", &org),
            Route::Refused,
        ),
        case(
            by(&bob),
            PLAIN,
            input("apps", "read", &missing_node),
            Route::Refused,
        ),
        case(
            by(&bob),
            DRESSED,
            input("nope", "read", &org),
            Route::Refused,
        ),
        case(
            by(&bob),
            PLAIN,
            with(input("apps", "read", &org), "atLeast", "bogus"),
            Route::Refused,
        ),
        // No caller, or a wrong token.
        case(None, PLAIN, input("apps", "read", &org), Route::Refused),
        case(
            by("not-a-token"),
            PLAIN,
            input("apps", "read", &org),
            Route::Refused,
        ),
        // Bodies the prepared path does not read: an unknown input field, a number for an id,
        // an operation name the text does not have, a variable more.
        case(
            by(&bob),
            PLAIN,
            with(input("apps", "read", &org), "extra", "x"),
            Route::Refused,
        ),
        case(
            by(&bob),
            PLAIN,
            json!({ "resourceType": "apps", "action": "read", "nodeId": 5 }),
            Route::Refused,
        ),
        Case {
            operation: Some("Other"),
            ..case(
                by(&bob),
                DRESSED,
                input("apps", "read", &org),
                Route::Refused,
            )
        },
        Case {
            operation: Some("May"),
            ..case(by(&bob), PLAIN, input("apps", "read", &org), Route::Refused)
        },
        Case {
            more: Some(json!(1)),
            ..case(
                by(&bob),
                PLAIN,
                input("apps", "read", &org),
                Route::Executor,
            )
        },
    ];
    for (n, c) in cases.drain(..).enumerate() {
        let text = format!("{}\n# case {n}", c.text);
        let mut variables = json!({ "i": c.input });
        if let Some(more) = c.more {
            variables["j"] = more;
        }
        let before = app.metric(PREPARED).await;
        let first = exchange(
            &app,
            c.who.as_deref(),
            &text,
            variables.clone(),
            c.operation,
        )
        .await;
        let second = exchange(
            &app,
            c.who.as_deref(),
            &text,
            variables.clone(),
            c.operation,
        )
        .await;
        let prepared = app.metric(PREPARED).await - before;
        let what = format!("case {n}: {text} with {variables} → {first:?}");
        assert_eq!(first, second, "{what}");
        assert_eq!(first.0, 200, "{what}");
        assert_eq!(
            prepared,
            f64::from(u8::from(c.route == Route::Prepared)),
            "{what}"
        );
        let body: serde_json::Value = serde_json::from_str(&first.2).unwrap();
        assert_eq!(
            body.get("errors").is_some(),
            c.route == Route::Refused,
            "{what}"
        );
    }
}

/// A case of `a_prepared_check_answers_what_the_executor_answers`.
struct Case {
    who: Option<String>,
    text: &'static str,
    operation: Option<&'static str>,
    input: serde_json::Value,
    /// A second variable, which the text does not declare.
    more: Option<serde_json::Value>,
    route: Route,
}

/// Who answers a case the second time, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Prepared,
    /// The executor, with data.
    Executor,
    /// The executor, with an error.
    Refused,
}

/// `IAM_PREPARED_CHECK=false`: no request is answered by the prepared path or validated in the
/// fast mode, however often its text comes back; the answers stay the same.
#[tokio::test]
async fn the_fast_path_can_be_turned_off() {
    const FULL: &str = r#"iam_graphql_validations_total{mode="full"}"#;
    for fast_path in [true, false] {
        let app = TestApp::start_with(|c| c.prepared_check = fast_path).await;
        let token = app.sign_up("ada@example.com").await;
        let org = app.create_org(&token, "acme").await;
        const CHECK: &str = "query($i: CheckInput!) { check(input: $i) { allowed } }";
        let input = json!({ "i": { "resourceType": "apps", "action": "read", "nodeId": org } });
        let before = [
            app.metric(FULL).await,
            app.metric(REMEMBERED).await,
            app.metric(PREPARED).await,
        ];
        for _ in 0..3 {
            let r = app.gql(Some(&token), CHECK, input.clone()).await;
            assert_eq!(r["data"]["check"]["allowed"], true, "{r}");
        }
        let after = [
            app.metric(FULL).await,
            app.metric(REMEMBERED).await,
            app.metric(PREPARED).await,
        ];
        let counted: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
        let expected = if fast_path {
            [1.0, 0.0, 2.0]
        } else {
            [3.0, 0.0, 0.0]
        };
        assert_eq!(
            counted, expected,
            "fast path {fast_path}: full, remembered, prepared"
        );
    }
}
