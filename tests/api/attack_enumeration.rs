//! Attacks that probe what exists in another tenant (issue #12, hole 11): a missing node and
//! one the caller may not see must get one answer, byte for byte.

use serde_json::json;

use crate::common::{TestApp, assert_error};

#[tokio::test]
async fn node_by_path_does_not_tell_a_hidden_node_from_a_missing_one() {
    let app = TestApp::start().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let ws = app.create_workspace(&admin, &org, "secret-ws").await;
    app.create_project(&admin, &ws, "launch").await;
    let outsider = app.sign_up("eve@example.com").await;
    app.create_org(&outsider, "evil").await;

    let ask = |path: &'static str| {
        let app = &app;
        let outsider = &outsider;
        async move {
            let r = app
                .gql(
                    Some(outsider),
                    "query($p: String!) { node(path: $p) { __typename } }",
                    json!({ "p": path }),
                )
                .await;
            assert_error(&r, "NOT_FOUND");
            // The same words, with the path the caller gave in place of the one they probed.
            r["errors"][0]["message"]
                .as_str()
                .unwrap()
                .replace(path, "<path>")
        }
    };
    let hidden = [
        ask("acme").await,
        ask("acme/secret-ws").await,
        ask("acme/secret-ws/launch").await,
    ];
    let missing = [
        ask("acmf").await,
        ask("acme/no-such-ws").await,
        ask("acme/secret-ws/no-such").await,
    ];
    assert_eq!(hidden, missing);
}
