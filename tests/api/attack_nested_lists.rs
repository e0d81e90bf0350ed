//! Attacks that multiply work through nested lists (issue #12, hole 7): `workspace { projects {
//! workspace { projects { … } } } }` asks for (list size)^depth resolver calls while counting a
//! handful of fields. With 30 projects, the seven levels the depth limit accepts took the
//! server past 1.5 GB of memory without an answer. A query is now priced by its page sizes
//! and refused before it runs; siblings' node lookups are batched.

use serde_json::{Value, json};

use crate::common::{TestApp, assert_error};

/// An organization with one workspace of 30 projects, made through the API; its admin's
/// token, the organization's id and the workspace's id.
async fn thirty_projects(app: &TestApp) -> (String, String, String) {
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let ws = app.create_workspace(&admin, &org, "prod").await;
    for i in 0..30 {
        app.create_project(&admin, &ws, &format!("p{i:02}")).await;
    }
    (admin, org, ws)
}

/// `projects { workspace { projects { … id } } }`, `levels` lists deep.
fn nested_projects(levels: usize) -> String {
    let mut selection = "id".to_owned();
    for level in 0..levels {
        selection = if level == 0 {
            format!("projects {{ {selection} }}")
        } else {
            format!("projects {{ workspace {{ {selection} }} }}")
        };
    }
    selection
}

/// Asserts that `r` is the over-budget refusal, and returns the cost it names.
fn refused_for_cost(r: &Value) -> u64 {
    assert_error(r, "BAD_USER_INPUT");
    let error = &r["errors"][0];
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("graphql_max_complexity"),
        "the message names the setting: {r}"
    );
    let cost = error["extensions"]["cost"].as_u64().expect("the cost");
    let limit = error["extensions"]["limit"].as_u64().expect("the limit");
    assert!(cost > limit, "{r}");
    assert!(message.contains(&cost.to_string()) && message.contains(&limit.to_string()));
    cost
}

#[tokio::test]
async fn seven_levels_of_nested_projects_are_refused_before_they_run() {
    let app = TestApp::start().await;
    let (admin, _org, ws) = thirty_projects(&app).await;
    let lookups_before = app.metric("iam_node_lookups_total").await;
    let query = format!(
        "query($w: ID!) {{ workspace(id: $w) {{ {} }} }}",
        nested_projects(7)
    );
    let r = app.gql(Some(&admin), &query, json!({ "w": ws })).await;
    refused_for_cost(&r);
    // Nothing ran: not even the root's lookups.
    assert_eq!(app.metric("iam_node_lookups_total").await, lookups_before);
    // Sent again (a remembered text, in the fast validation mode), it is refused again.
    let r = app.gql(Some(&admin), &query, json!({ "w": ws })).await;
    refused_for_cost(&r);
}

#[tokio::test]
async fn a_page_size_given_by_a_variable_is_priced_by_its_value_every_time() {
    let app = TestApp::start().await;
    let (admin, org, _ws) = thirty_projects(&app).await;
    let query = format!(
        "query($o: ID!, $n: Int!) {{ accessibleNodes(organizationId: $o, resourceType: \"workspace\", action: \"read\", first: $n) {{ nodes {{ ... on Workspace {{ {} }} }} }} }}",
        nested_projects(2)
    );
    // With a page of one, the text runs cleanly, and is remembered as validated.
    let small = app
        .gql(Some(&admin), &query, json!({ "o": org, "n": 1 }))
        .await;
    assert!(small["errors"].is_null(), "{small}");
    assert_eq!(
        small["data"]["accessibleNodes"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The same text and variables' shape with the largest page: the remembered (fast) path
    // prices it again, with the new value, and refuses it.
    let remembered = app
        .metric("iam_graphql_validations_total{mode=\"remembered\"}")
        .await;
    let large = app
        .gql(Some(&admin), &query, json!({ "o": org, "n": 200 }))
        .await;
    let cost = refused_for_cost(&large);
    assert_eq!(
        app.metric("iam_graphql_validations_total{mode=\"remembered\"}")
            .await,
        remembered + 1.0,
        "the second request took the remembered path"
    );
    // Priced per item of the page: 200 items of several hundred each.
    assert!(cost > 200 * 400, "cost {cost}");
}

#[tokio::test]
async fn a_reasonable_nested_query_still_answers() {
    let app = TestApp::start().await;
    let (admin, org, ws) = thirty_projects(&app).await;
    let r = app
        .gql(
            Some(&admin),
            "query($w: ID!, $o: ID!) {
                workspace(id: $w) { projects { slug workspace { slug projects { slug } } } }
                organization(id: $o) { workspaces { slug projects { slug } } members(first: 5) { members { email } totalCount } }
            }",
            json!({ "w": ws, "o": org }),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let projects = r["data"]["workspace"]["projects"].as_array().unwrap();
    assert_eq!(projects.len(), 30);
    for (i, p) in projects.iter().enumerate() {
        assert_eq!(p["slug"], format!("p{i:02}"));
        assert_eq!(p["workspace"]["slug"], "prod");
        let inner = p["workspace"]["projects"].as_array().unwrap();
        assert_eq!(inner.len(), 30);
        assert_eq!(inner[29]["slug"], "p29");
    }
    let org = &r["data"]["organization"];
    assert_eq!(
        org["workspaces"][0]["projects"].as_array().unwrap().len(),
        30
    );
    assert_eq!(org["members"]["members"][0]["email"], "admin@example.com");
    assert_eq!(org["members"]["totalCount"], 1);
}

#[tokio::test]
async fn siblings_share_one_store_query() {
    let app = TestApp::start().await;
    let (admin, _org, ws) = thirty_projects(&app).await;
    let lookups = app.metric("iam_node_lookups_total").await;
    let batches = app.metric("iam_node_batches_total").await;
    let r = app
        .gql(
            Some(&admin),
            "query($w: ID!) { workspace(id: $w) { projects { workspace { id organization { slug } } } } }",
            json!({ "w": ws }),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    assert_eq!(
        r["data"]["workspace"]["projects"].as_array().unwrap().len(),
        30
    );
    let lookups = app.metric("iam_node_lookups_total").await - lookups;
    let batches = app.metric("iam_node_batches_total").await - batches;
    // 30 projects ask for their workspace, 30 workspaces for their organization: 60 lookups
    // at least, in a batch per level (plus the root's few).
    assert!(lookups >= 60.0, "{lookups} lookups");
    assert!(
        batches <= 6.0,
        "{lookups} lookups took {batches} store queries"
    );
}
