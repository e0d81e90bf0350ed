//! `myPermissionChanges` told a member of other members' role changes: `member.roles` and
//! `sso.sync` fell through the change reach to the whole organization (issue 12, hole 11). The
//! change kinds are now an enum with an exhaustive reach (`events::ChangeKind`); this is the
//! attack through the API.

use std::time::Duration;

use serde_json::json;

use crate::attack_websocket::{Got, RawWs};
use crate::common::{ADMIN, TestApp, VIEWER, data_str};

const MY_CHANGES: &str = "subscription { myPermissionChanges { organizationId kind principalId } }";

#[tokio::test]
async fn my_permission_changes_do_not_show_another_members_role_changes() {
    let app = TestApp::start().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let alice = app.sign_up("alice@example.com").await;
    let alice_id = app.join(&admin, &org, "alice@example.com", &alice).await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&admin, &org, "bob@example.com", &bob).await;

    let mut ws = RawWs::signed_in(&app, &alice).await;
    ws.subscribe("mine", MY_CHANGES).await;
    // The subscription is live once a query behind it on the connection answered.
    let me = ws.run("q", "{ me { email } }").await;
    assert_eq!(me["data"]["me"]["email"], "alice@example.com", "{me}");

    // Bob's roles change: none of Alice's business.
    let set = app
        .gql(
            Some(&admin),
            "mutation($o: ID!, $u: ID!, $r: ID!) { setMemberRoles(input: { organizationId: $o, userId: $u, roles: [{ roleId: $r, nodeId: $o }] }) { revision } }",
            json!({ "o": org, "u": bob_id, "r": ADMIN }),
        )
        .await;
    data_str(&set, &["setMemberRoles", "revision"]);
    // Then Alice's own: this one she must hear of, and it must be the first thing she hears.
    app.grant(&admin, &alice_id, VIEWER, &org).await;

    let first = match ws.got(Duration::from_secs(10)).await {
        Got::Json(m) if m["type"] == "next" && m["id"] == "mine" => m["payload"].clone(),
        other => panic!("expected Alice's change, got {other:?}"),
    };
    let change = &first["data"]["myPermissionChanges"];
    assert_eq!(
        change["principalId"], alice_id,
        "Alice heard of someone else's change first: {first}"
    );
    assert_eq!(change["kind"], "binding.granted", "{first}");
}
