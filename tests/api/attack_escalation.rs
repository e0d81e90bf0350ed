//! Attacks on "Changing access (no escalation)" (SEMANTICS.md): a role writer who makes
//! themselves Admin, a granter handing out more than they hold, a member lifting their own
//! restriction, an inviter locking the organization out with a deny, and last-admin counts that
//! trust an expiring binding. Each attack stands next to the legitimate change it imitates.

use serde_json::json;

use crate::common::{ADMIN, TestApp, assert_error, data_str};

const CREATE: &str = "mutation($o: ID!, $n: String!, $p: [PolicyInput!]!) { createRole(input: {organizationId: $o, name: $n, policies: $p}) { role { id policies { effect permission } } } }";
const UPDATE: &str = "mutation($id: ID!, $p: [PolicyInput!]!) { updateRole(input: {id: $id, policies: $p}) { role { id policies { effect permission } } } }";
const REVOKE: &str =
    "mutation($id: ID!) { revokeRoleBinding(input: {id: $id}) { binding { id } revision } }";

fn allow(p: &str) -> serde_json::Value {
    json!({ "effect": "ALLOW", "permission": p })
}

fn deny(p: &str) -> serde_json::Value {
    json!({ "effect": "DENY", "permission": p })
}

/// An organization `acme` of ada (its Admin) and bob, a member holding a custom role with
/// `policies` at the organization. Returns (app, ada, org, bob, bob's id).
async fn org_with_member(policies: serde_json::Value) -> (TestApp, String, String, String, String) {
    let app = TestApp::start().await;
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    let r = app
        .gql(
            Some(&ada),
            CREATE,
            json!({ "o": org, "n": "Helper", "p": policies }),
        )
        .await;
    let role = data_str(&r, &["createRole", "role", "id"]);
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&ada, &org, "bob@example.com", &bob).await;
    app.grant(&ada, &bob_id, &role, &org).await;
    (app, ada, org, bob, bob_id)
}

fn message(r: &serde_json::Value) -> String {
    r["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn escalation_role_writer_cannot_update_a_role_to_full_control() {
    let (app, ada, org, bob, _) =
        org_with_member(json!([allow("roles:*:write"), allow("roles:*:read")])).await;
    let r = app
        .gql(
            Some(&ada),
            CREATE,
            json!({ "o": org, "n": "Reader", "p": [allow("apps:*:read")] }),
        )
        .await;
    let reader = data_str(&r, &["createRole", "role", "id"]);
    let r = app
        .gql(
            Some(&bob),
            UPDATE,
            json!({ "id": reader, "p": [allow("*:*:*")] }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");
    assert!(message(&r).contains("`workspace:*:read`"), "{r}");
    // The admin may.
    let r = app
        .gql(
            Some(&ada),
            UPDATE,
            json!({ "id": reader, "p": [allow("*:*:*")] }),
        )
        .await;
    assert_eq!(
        r["data"]["updateRole"]["role"]["policies"],
        json!([{ "effect": "ALLOW", "permission": "*:*:*" }]),
        "{r}"
    );
}

#[tokio::test]
async fn escalation_role_writer_cannot_create_a_role_with_policies_they_lack() {
    let (app, ada, org, bob, _) =
        org_with_member(json!([allow("roles:*:write"), allow("apps:*:read")])).await;
    for p in [
        json!([allow("*:*:*")]),
        json!([allow("apps:*:read"), allow("secrets:*:read")]),
        json!([deny("secrets:*:read")]),
    ] {
        let r = app
            .gql(Some(&bob), CREATE, json!({ "o": org, "n": "Mine", "p": p }))
            .await;
        assert_error(&r, "FORBIDDEN");
        assert!(message(&r).contains("which you do not hold"), "{r}");
    }
    // Within his own permissions he may, allows and denies alike.
    let r = app
        .gql(
            Some(&bob),
            CREATE,
            json!({ "o": org, "n": "Mine", "p": [allow("apps:*:read"), deny("apps:*:read")] }),
        )
        .await;
    data_str(&r, &["createRole", "role", "id"]);
    let r = app
        .gql(
            Some(&ada),
            CREATE,
            json!({ "o": org, "n": "All", "p": [allow("*:*:*"), deny("secrets:*:read")] }),
        )
        .await;
    data_str(&r, &["createRole", "role", "id"]);
}

#[tokio::test]
async fn escalation_granter_narrowed_by_a_deny_cannot_grant_admin() {
    // Ada's admin stands, but a deny of secrets bound to her at a workspace narrows what she
    // holds: granting Admin at the organization would hand out secrets she cannot read.
    let app = TestApp::start().await;
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    let ws = app.create_workspace(&ada, &org, "prod").await;
    let r = app
        .gql(
            Some(&ada),
            CREATE,
            json!({ "o": org, "n": "NoSecrets", "p": [deny("secrets:*:read")] }),
        )
        .await;
    let no_secrets = data_str(&r, &["createRole", "role", "id"]);
    let carol = app.sign_up("carol@example.com").await;
    let carol_id = app.join(&ada, &org, "carol@example.com", &carol).await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&ada, &org, "bob@example.com", &bob).await;
    app.grant(&ada, &carol_id, ADMIN, &org).await;
    let r = app
        .grant_raw(&carol, &ada_id(&app, &ada).await, &no_secrets, &ws, None)
        .await;
    data_str(&r, &["grantRole", "binding", "id"]);
    let r = app.grant_raw(&ada, &bob_id, ADMIN, &org, None).await;
    assert_error(&r, "FORBIDDEN");
    assert!(message(&r).contains("`secrets:*:read`"), "{r}");
    // Carol, not narrowed, may.
    let r = app.grant_raw(&carol, &bob_id, ADMIN, &org, None).await;
    data_str(&r, &["grantRole", "binding", "id"]);
}

async fn ada_id(app: &TestApp, ada: &str) -> String {
    app.user_id(ada).await
}

#[tokio::test]
async fn escalation_member_cannot_revoke_the_deny_that_restricts_them() {
    let (app, ada, org, bob, bob_id) = org_with_member(json!([
        allow("members:*:invite"),
        allow("members:*:read"),
        allow("apps:*:read"),
    ]))
    .await;
    let r = app
        .gql(
            Some(&ada),
            CREATE,
            json!({ "o": org, "n": "NoApps", "p": [deny("apps:*:read")] }),
        )
        .await;
    let no_apps = data_str(&r, &["createRole", "role", "id"]);
    let binding = app.grant(&ada, &bob_id, &no_apps, &org).await;
    let r = app.gql(Some(&bob), REVOKE, json!({ "id": binding })).await;
    assert_error(&r, "FORBIDDEN");
    assert!(message(&r).contains("`NoApps`"), "{r}");
    // The admin may lift it.
    let r = app.gql(Some(&ada), REVOKE, json!({ "id": binding })).await;
    assert_eq!(
        r["data"]["revokeRoleBinding"]["binding"]["id"], binding,
        "{r}"
    );
}

#[tokio::test]
async fn escalation_inviter_cannot_bind_deny_all_to_the_only_admin() {
    let (app, ada, org, bob, _) =
        org_with_member(json!([allow("members:*:invite"), allow("members:*:read")])).await;
    let r = app
        .gql(
            Some(&ada),
            CREATE,
            json!({ "o": org, "n": "Lockout", "p": [deny("*:*:*")] }),
        )
        .await;
    let lockout = data_str(&r, &["createRole", "role", "id"]);
    let ada_id = app.user_id(&ada).await;
    let r = app.grant_raw(&bob, &ada_id, &lockout, &org, None).await;
    assert_error(&r, "FORBIDDEN");
    // Not even the admin may lock the organization's last admin out...
    let r = app.grant_raw(&ada, &ada_id, &lockout, &org, None).await;
    assert_error(&r, "CONFLICT");
    // ...but she may restrict bob.
    let bob_id = app.user_id(&bob).await;
    let r = app.grant_raw(&ada, &bob_id, &lockout, &org, None).await;
    data_str(&r, &["grantRole", "binding", "id"]);
}

#[tokio::test]
async fn escalation_an_expiring_admin_binding_is_no_last_admin() {
    let app = TestApp::start().await;
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&ada, &org, "bob@example.com", &bob).await;
    let until = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let r = app
        .grant_raw(&ada, &bob_id, ADMIN, &org, Some(&until))
        .await;
    data_str(&r, &["grantRole", "binding", "id"]);
    let ada_id = app.user_id(&ada).await;
    let r = app
        .gql(
            Some(&ada),
            "query($o: ID!, $p: ID!) { roleBindings(organizationId: $o, principalId: $p) { id roleId } }",
            json!({ "o": org, "p": ada_id }),
        )
        .await;
    let own = r["data"]["roleBindings"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app.gql(Some(&ada), REVOKE, json!({ "id": own })).await;
    assert_error(&r, "CONFLICT");
    let r = app.member_call(&ada, "suspendMember", &org, &ada_id).await;
    assert_error(&r, "CONFLICT");
    // A second admin for good (a user of her own) lets her step down.
    let carol = app.sign_up("carol@example.com").await;
    let carol_id = app.join(&ada, &org, "carol@example.com", &carol).await;
    app.grant(&ada, &carol_id, ADMIN, &org).await;
    let r = app.gql(Some(&ada), REVOKE, json!({ "id": own })).await;
    assert_eq!(r["data"]["revokeRoleBinding"]["binding"]["id"], own, "{r}");
}

/// An invitation's roles are granted when it is accepted, by its inviter: an inviter who lost
/// the power to grant them since cannot have them granted through an invitation sent earlier.
#[tokio::test]
async fn escalation_an_invitation_does_not_outlive_its_inviters_power() {
    let app = TestApp::start().await;
    let owner = app.sign_up("owner@example.com").await;
    let org = app.create_org(&owner, "acme").await;
    let mallory = app.sign_up("mallory@example.com").await;
    let mallory_id = app
        .join(&owner, &org, "mallory@example.com", &mallory)
        .await;
    let admin_binding = app.grant(&owner, &mallory_id, ADMIN, &org).await;

    // While an Admin, Mallory invites an accomplice as Admin...
    let invite = app
        .gql(
            Some(&mallory),
            "mutation($o: ID!, $r: ID!) { inviteMember(input: { organizationId: $o, email: \"sock@example.com\", roles: [{ roleId: $r, nodeId: $o }] }) { token } }",
            json!({ "o": org, "r": ADMIN }),
        )
        .await;
    let token = data_str(&invite, &["inviteMember", "token"]);
    // ...then loses Admin.
    let r = app
        .gql(
            Some(&owner),
            "mutation($b: ID!) { revokeRoleBinding(input: { id: $b }) { revision } }",
            json!({ "b": admin_binding }),
        )
        .await;
    data_str(&r, &["revokeRoleBinding", "revision"]);

    // The accomplice, with an account or without, gets nothing from that invitation.
    let sock = app.sign_up("sock@example.com").await;
    let accept = app
        .gql(
            Some(&sock),
            "mutation($t: String!) { acceptInvitation(input: { token: $t }) { organization { id } } }",
            json!({ "t": token }),
        )
        .await;
    assert_error(&accept, "FORBIDDEN");
    let orgs = app
        .gql(Some(&sock), "{ me { organizations { id } } }", json!({}))
        .await;
    assert_eq!(orgs["data"]["me"]["organizations"], json!([]), "{orgs}");

    let invite = app
        .gql(
            Some(&owner),
            "mutation($o: ID!, $r: ID!) { inviteMember(input: { organizationId: $o, email: \"new@example.com\", roles: [{ roleId: $r, nodeId: $o }] }) { token } }",
            json!({ "o": org, "r": ADMIN }),
        )
        .await;
    let owners_token = data_str(&invite, &["inviteMember", "token"]);
    // An invitation whose inviter still holds the power works.
    let fresh = app
        .gql(
            None,
            "mutation($t: String!) { signUpWithInvitation(input: { token: $t, name: \"New\", password: \"correct horse battery\" }) { organization { id } } }",
            json!({ "t": owners_token }),
        )
        .await;
    assert_eq!(
        data_str(&fresh, &["signUpWithInvitation", "organization", "id"]),
        org
    );
}
