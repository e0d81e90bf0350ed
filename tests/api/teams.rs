//! Teams through the API: a role bound to a team is held by each member (checks, `explain`,
//! `effectivePermissions`, `accessibleNodes`), membership changes reach decisions at once and on
//! other instances, and a team is no way around the rules of changing access: whoever changes
//! its members must be able to grant its roles, nobody sheds a restriction through it, no
//! admin is lost through it, and no team reaches across organizations.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{TestApp, any_redis, assert_error, data_str};

const CHECK: &str = "query($i: CheckInput!) { check(input: $i) { allowed } }";
const CREATE: &str = "mutation($o: ID!, $n: String!) { createTeam(input: {organizationId: $o, name: $n}) { team { id name } revision } }";
const ADD: &str = "mutation($t: ID!, $p: [ID!]!) { addTeamMembers(input: {teamId: $t, principalIds: $p}) { changed revision team { name } } }";
const REMOVE: &str = "mutation($t: ID!, $p: [ID!]!) { removeTeamMembers(input: {teamId: $t, principalIds: $p}) { changed revision } }";
const DELETE: &str = "mutation($t: ID!) { deleteTeam(input: {id: $t}) { team { name } revision } }";
const REVOKE: &str = "mutation($id: ID!) { revokeRoleBinding(input: {id: $id}) { revision } }";

async fn allowed(app: &TestApp, token: &str, type_action: &str, node: &str) -> bool {
    let (t, a) = type_action.split_once(':').unwrap();
    let r = app
        .gql(
            Some(token),
            CHECK,
            json!({ "i": { "resourceType": t, "action": a, "nodeId": node } }),
        )
        .await;
    r["data"]["check"]["allowed"]
        .as_bool()
        .unwrap_or_else(|| panic!("{r}"))
}

async fn create_team(app: &TestApp, token: &str, org: &str, name: &str) -> String {
    let r = app
        .gql(Some(token), CREATE, json!({ "o": org, "n": name }))
        .await;
    data_str(&r, &["createTeam", "team", "id"])
}

async fn members_call(app: &TestApp, token: &str, q: &str, team: &str, who: &[&str]) -> Value {
    app.gql(Some(token), q, json!({ "t": team, "p": who }))
        .await
}

/// A custom role that manages teams and reads apps, nothing more.
async fn team_lead(app: &TestApp, admin: &str, org: &str) -> String {
    app.custom_role(
        admin,
        org,
        "Team lead",
        &[
            "teams:*:read",
            "teams:*:manage",
            "apps:*:read",
            "workspace:*:read",
        ],
    )
    .await
}

/// An organization with a workspace, its admin Ada, and a member Bob who holds no role.
struct Org {
    ada: String,
    org: String,
    ws: String,
    bob: String,
    bob_id: String,
}

async fn org_on(app: &TestApp) -> Org {
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    let ws = app.create_workspace(&ada, &org, "prod").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&ada, &org, "bob@example.com", &bob).await;
    Org {
        ada,
        org,
        ws,
        bob,
        bob_id,
    }
}

#[tokio::test]
async fn a_teams_roles_reach_its_members_and_explain_names_the_team() {
    let app = TestApp::start().await;
    let Org {
        ada,
        org,
        ws,
        bob,
        bob_id,
    } = org_on(&app).await;
    let other_ws = app.create_workspace(&ada, &org, "dev").await;
    let developer = app.role_id(&ada, &org, "developer").await;
    let team = create_team(&app, &ada, &org, "Platform").await;
    let binding = app.grant(&ada, &team, &developer, &ws).await;
    assert!(!allowed(&app, &bob, "apps:write", &ws).await);

    let r = members_call(&app, &ada, ADD, &team, &[&bob_id]).await;
    assert_eq!(
        r["data"]["addTeamMembers"]["changed"],
        json!([bob_id]),
        "{r}"
    );
    // Read-your-writes: the next check sees the membership.
    assert!(allowed(&app, &bob, "apps:write", &ws).await);
    assert!(!allowed(&app, &bob, "apps:write", &other_ws).await);
    // Adding again changes nothing.
    let r = members_call(&app, &ada, ADD, &team, &[&bob_id]).await;
    assert_eq!(r["data"]["addTeamMembers"]["changed"], json!([]), "{r}");

    let e = app
        .gql(
            Some(&bob),
            "query($i: CheckInput!) { explain(input: $i) { allowed bindings { roleName status teamId teamName } } }",
            json!({ "i": { "resourceType": "apps", "action": "write", "nodeId": ws } }),
        )
        .await;
    assert_eq!(
        e["data"]["explain"],
        json!({ "allowed": true, "bindings": [{ "roleName": "Developer", "status": "APPLIES", "teamId": team, "teamName": "Platform" }] }),
        "{e}"
    );
    let p = app
        .gql(
            Some(&bob),
            "query($n: ID!) { effectivePermissions(nodeId: $n) { permission } }",
            json!({ "n": ws }),
        )
        .await;
    let perms: Vec<&str> = p["data"]["effectivePermissions"]
        .as_array()
        .unwrap_or_else(|| panic!("{p}"))
        .iter()
        .filter_map(|x| x["permission"].as_str())
        .collect();
    assert!(perms.contains(&"apps:*:write"), "{p}");
    let n = app
        .gql(
            Some(&bob),
            "query($o: ID!) { accessibleNodes(organizationId: $o, resourceType: \"apps\", action: \"write\") { nodes { ... on Workspace { id } } } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(
        n["data"]["accessibleNodes"]["nodes"],
        json!([{ "id": ws }]),
        "{n}"
    );

    // What admins see: the team, its members and roles, the member's teams, the binding's
    // principal type.
    let t = app
        .gql(
            Some(&ada),
            "query($o: ID!) { teams(organizationId: $o) { name members { principalId user { email } source } roleBindings { roleName principalType } } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(
        t["data"]["teams"],
        json!([{ "name": "Platform", "members": [{ "principalId": bob_id, "user": { "email": "bob@example.com" }, "source": "manual" }], "roleBindings": [{ "roleName": "Developer", "principalType": "TEAM" }] }]),
        "{t}"
    );
    let m = app
        .gql(
            Some(&ada),
            "query($o: ID!) { organization(id: $o) { members(filter: {search: \"bob\"}) { members { teams { name } } } } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(
        m["data"]["organization"]["members"]["members"][0]["teams"],
        json!([{ "name": "Platform" }]),
        "{m}"
    );

    // Leaving the team, revoking its role, deleting it: each takes the access away at once.
    let r = members_call(&app, &ada, REMOVE, &team, &[&bob_id]).await;
    assert_eq!(
        r["data"]["removeTeamMembers"]["changed"],
        json!([bob_id]),
        "{r}"
    );
    assert!(!allowed(&app, &bob, "apps:write", &ws).await);
    members_call(&app, &ada, ADD, &team, &[&bob_id]).await;
    assert!(allowed(&app, &bob, "apps:write", &ws).await);
    let r = app.gql(Some(&ada), REVOKE, json!({ "id": binding })).await;
    assert!(r["errors"].is_null(), "{r}");
    assert!(!allowed(&app, &bob, "apps:write", &ws).await);
    app.grant(&ada, &team, &developer, &ws).await;
    assert!(allowed(&app, &bob, "apps:write", &ws).await);
    let r = app.gql(Some(&ada), DELETE, json!({ "t": team })).await;
    assert_eq!(r["data"]["deleteTeam"]["team"]["name"], "Platform", "{r}");
    assert!(!allowed(&app, &bob, "apps:write", &ws).await);
    let t = app
        .gql(
            Some(&ada),
            "query($o: ID!) { teams(organizationId: $o) { name } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(t["data"]["teams"], json!([]), "{t}");
    let actions = app.audit_actions().await;
    for action in [
        "team.create",
        "team.members_add",
        "team.members_remove",
        "team.delete",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
}

#[tokio::test]
async fn team_names_are_unique_per_organization_and_inputs_are_checked() {
    let app = TestApp::start().await;
    let Org { ada, org, .. } = org_on(&app).await;
    create_team(&app, &ada, &org, "Platform").await;
    let r = app
        .gql(Some(&ada), CREATE, json!({ "o": org, "n": " platform " }))
        .await;
    assert_error(&r, "CONFLICT");
    let r = app
        .gql(Some(&ada), CREATE, json!({ "o": org, "n": "  " }))
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    // Another organization may use the name.
    let other = app.create_org(&ada, "globex").await;
    create_team(&app, &ada, &other, "Platform").await;
    let team = create_team(&app, &ada, &org, "Data").await;
    let r = members_call(&app, &ada, ADD, &team, &[]).await;
    assert_error(&r, "BAD_USER_INPUT");
    let r = members_call(&app, &ada, ADD, &team, &["not-an-id"]).await;
    assert_error(&r, "BAD_USER_INPUT");
    let r = app
        .gql(
            Some(&ada),
            "mutation($t: ID!) { updateTeam(input: {id: $t, name: \"Platform\"}) { team { name } } }",
            json!({ "t": team }),
        )
        .await;
    assert_error(&r, "CONFLICT");
    let r = app
        .gql(
            Some(&ada),
            "mutation($t: ID!) { updateTeam(input: {id: $t, name: \"Data science\", description: \"models\"}) { team { name description } } }",
            json!({ "t": team }),
        )
        .await;
    assert_eq!(
        r["data"]["updateTeam"]["team"],
        json!({ "name": "Data science", "description": "models" }),
        "{r}"
    );
}

#[tokio::test]
async fn attack_changing_a_teams_members_hands_out_only_what_the_caller_holds() {
    let app = TestApp::start().await;
    let Org {
        ada,
        org,
        ws,
        bob,
        bob_id,
    } = org_on(&app).await;
    let carol = app.sign_up("carol@example.com").await;
    let carol_id = app.join(&ada, &org, "carol@example.com", &carol).await;
    // Carol may manage teams and read apps, nothing more.
    let lead = team_lead(&app, &ada, &org).await;
    app.grant(&ada, &carol_id, &lead, &org).await;
    let readers = app
        .custom_role(&ada, &org, "App readers", &["apps:*:read"])
        .await;
    let developer = app.role_id(&ada, &org, "developer").await;
    let devs = create_team(&app, &ada, &org, "Developers").await;
    app.grant(&ada, &devs, &developer, &ws).await;
    let reading = create_team(&app, &ada, &org, "Readers").await;
    app.grant(&ada, &reading, &readers, &ws).await;

    // Putting Bob (or herself) into the Developers team would hand out apps:write.
    for who in [&bob_id, &carol_id] {
        let r = members_call(&app, &carol, ADD, &devs, &[who]).await;
        assert_error(&r, "FORBIDDEN");
        let msg = r["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("Developer"), "{r}");
    }
    assert!(!allowed(&app, &bob, "apps:write", &ws).await);
    assert!(!allowed(&app, &carol, "apps:write", &ws).await);
    // Within her own powers she may.
    let r = members_call(&app, &carol, ADD, &reading, &[&bob_id]).await;
    assert!(r["errors"].is_null(), "{r}");
    assert!(allowed(&app, &bob, "apps:read", &ws).await);
    // Nor may she take a developer out, or delete the team (revoking what she cannot grant).
    members_call(&app, &ada, ADD, &devs, &[&bob_id]).await;
    let r = members_call(&app, &carol, REMOVE, &devs, &[&bob_id]).await;
    assert_error(&r, "FORBIDDEN");
    let r = app.gql(Some(&carol), DELETE, json!({ "t": devs })).await;
    assert_error(&r, "FORBIDDEN");
    assert!(allowed(&app, &bob, "apps:write", &ws).await);
    // Binding a role to a team is granting it: the same rule.
    let r = app.grant_raw(&carol, &reading, &developer, &ws, None).await;
    assert!(r["errors"].is_array(), "{r}");
    // A member without teams:manage cannot make or change teams, nor read them without
    // teams:read.
    let r = app
        .gql(Some(&bob), CREATE, json!({ "o": org, "n": "Mine" }))
        .await;
    assert_error(&r, "FORBIDDEN");
    let r = members_call(&app, &bob, ADD, &reading, &[&bob_id]).await;
    assert_error(&r, "FORBIDDEN");
    let r = app
        .gql(
            Some(&bob),
            "query($o: ID!) { teams(organizationId: $o) { name } }",
            json!({ "o": org }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");
    // Reading members is not reading teams: the members list does not tell whose team is whose.
    let developer_at_org = app.grant(&ada, &bob_id, &developer, &org).await;
    let r = app
        .gql(
            Some(&bob),
            "query($o: ID!) { organization(id: $o) { members { members { email teams { name } } } } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(
        crate::common::error_code(&r).as_deref(),
        Some("FORBIDDEN"),
        "{r}"
    );
    assert!(!r["data"].to_string().contains("Readers"), "{r}");
    let r = app
        .gql(
            Some(&bob),
            "query($o: ID!) { organization(id: $o) { members { members { email } } } }",
            json!({ "o": org }),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    app.gql(Some(&ada), REVOKE, json!({ "id": developer_at_org }))
        .await;
}

#[tokio::test]
async fn attack_nobody_sheds_a_restriction_or_the_last_admin_through_a_team() {
    let app = TestApp::start().await;
    let Org {
        ada,
        org,
        ws,
        bob,
        bob_id,
    } = org_on(&app).await;
    // Bob may manage teams and read apps, but his team forbids him the workspace's apps.
    let lead = team_lead(&app, &ada, &org).await;
    app.grant(&ada, &bob_id, &lead, &org).await;
    let no_apps = app
        .custom_role(&ada, &org, "No apps", &["!apps:*:read"])
        .await;
    let contractors = create_team(&app, &ada, &org, "Contractors").await;
    let binding = app.grant(&ada, &contractors, &no_apps, &ws).await;
    members_call(&app, &ada, ADD, &contractors, &[&bob_id]).await;
    assert!(!allowed(&app, &bob, "apps:read", &ws).await);

    let r = members_call(&app, &bob, REMOVE, &contractors, &[&bob_id]).await;
    assert_error(&r, "FORBIDDEN");
    let r = app
        .gql(Some(&bob), DELETE, json!({ "t": contractors }))
        .await;
    assert_error(&r, "FORBIDDEN");
    let r = app.gql(Some(&bob), REVOKE, json!({ "id": binding })).await;
    assert_error(&r, "FORBIDDEN");
    assert!(!allowed(&app, &bob, "apps:read", &ws).await);

    // A team with a deny at the organization: adding the only admin would leave no effective
    // admin.
    let no_audit = app
        .custom_role(&ada, &org, "No audit", &["!audit:*:read"])
        .await;
    let auditors = create_team(&app, &ada, &org, "Restricted").await;
    app.grant(&ada, &auditors, &no_audit, &org).await;
    let ada_id = app.user_id(&ada).await;
    let r = members_call(&app, &ada, ADD, &auditors, &[&ada_id]).await;
    assert_error(&r, "CONFLICT");
    let t = app
        .gql(
            Some(&ada),
            "query($t: ID!) { team(id: $t) { members { principalId } } }",
            json!({ "t": auditors }),
        )
        .await;
    assert_eq!(t["data"]["team"]["members"], json!([]), "{t}");
    // ...and so would binding a deny at the organization to a team the admin is in.
    let admins = create_team(&app, &ada, &org, "Admins").await;
    members_call(&app, &ada, ADD, &admins, &[&ada_id]).await;
    let r = app.grant_raw(&ada, &admins, &no_audit, &org, None).await;
    assert_error(&r, "CONFLICT");
    // Admin held through a team does not make anyone an effective admin: Ada stays the last.
    let admin = app.role_id(&ada, &org, "admin").await;
    app.grant(&ada, &admins, &admin, &org).await;
    members_call(&app, &ada, ADD, &admins, &[&bob_id]).await;
    let ada_admin = app
        .gql(
            Some(&ada),
            "query($o: ID!) { roleBindings(nodeId: $o) { id roleName principalType principalId } }",
            json!({ "o": org }),
        )
        .await;
    let direct = ada_admin["data"]["roleBindings"]
        .as_array()
        .unwrap_or_else(|| panic!("{ada_admin}"))
        .iter()
        .find(|b| {
            b["roleName"] == "Admin" && b["principalType"] == "USER" && b["principalId"] == ada_id
        })
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("{ada_admin}"));
    let r = app.gql(Some(&ada), REVOKE, json!({ "id": direct })).await;
    assert_error(&r, "CONFLICT");
}

#[tokio::test]
async fn attack_teams_do_not_reach_across_organizations() {
    let app = TestApp::start().await;
    let Org { ada, org, ws, .. } = org_on(&app).await;
    let team = create_team(&app, &ada, &org, "Platform").await;
    let eve = app.sign_up("eve@example.com").await;
    let eve_org = app.create_org(&eve, "evil").await;
    let eve_id = app.user_id(&eve).await;
    let eve_team = create_team(&app, &eve, &eve_org, "Crew").await;

    // Eve, admin of her own organization, cannot see, change or join Ada's team.
    let r = app
        .gql(
            Some(&eve),
            "query($t: ID!) { team(id: $t) { name } }",
            json!({ "t": team }),
        )
        .await;
    assert_error(&r, "NOT_FOUND");
    let r = app
        .gql(
            Some(&eve),
            "query($o: ID!) { teams(organizationId: $o) { name } }",
            json!({ "o": org }),
        )
        .await;
    assert_error(&r, "NOT_FOUND");
    for q in [ADD, REMOVE] {
        let r = members_call(&app, &eve, q, &team, &[&eve_id]).await;
        assert_error(&r, "NOT_FOUND");
    }
    let r = app.gql(Some(&eve), DELETE, json!({ "t": team })).await;
    assert_error(&r, "NOT_FOUND");
    // Ada cannot put a stranger into her team, nor bind her roles to Eve's team; Eve cannot
    // bind hers to Ada's team.
    let r = members_call(&app, &ada, ADD, &team, &[&eve_id]).await;
    assert_error(&r, "BAD_USER_INPUT");
    let developer = app.role_id(&ada, &org, "developer").await;
    let r = app.grant_raw(&ada, &eve_team, &developer, &ws, None).await;
    assert_error(&r, "BAD_USER_INPUT");
    let r = app.grant_raw(&eve, &team, &developer, &eve_org, None).await;
    assert_error(&r, "BAD_USER_INPUT");
    // Eve's team in her org holding Developer gives nothing in Ada's.
    app.grant(&eve, &eve_team, &developer, &eve_org).await;
    let r = members_call(&app, &eve, ADD, &eve_team, &[&eve_id]).await;
    assert!(r["errors"].is_null(), "{r}");
    let r = app
        .gql(
            Some(&eve),
            CHECK,
            json!({ "i": { "resourceType": "apps", "action": "write", "nodeId": ws } }),
        )
        .await;
    assert!(r["data"]["check"].is_null(), "{r}");
}

#[tokio::test]
async fn a_members_removal_takes_them_out_of_its_teams() {
    let app = TestApp::start().await;
    let Org {
        ada,
        org,
        ws,
        bob,
        bob_id,
    } = org_on(&app).await;
    let developer = app.role_id(&ada, &org, "developer").await;
    let team = create_team(&app, &ada, &org, "Platform").await;
    app.grant(&ada, &team, &developer, &ws).await;
    members_call(&app, &ada, ADD, &team, &[&bob_id]).await;
    let r = app
        .gql(
            Some(&ada),
            "mutation($o: ID!, $u: ID!) { removeMember(input: {organizationId: $o, userId: $u}) { removedUserId } }",
            json!({ "o": org, "u": bob_id }),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    // Invited back, Bob holds nothing through his old team.
    app.join(&ada, &org, "bob@example.com", &bob).await;
    assert!(!allowed(&app, &bob, "apps:write", &ws).await);
    let t = app
        .gql(
            Some(&ada),
            "query($t: ID!) { team(id: $t) { members { principalId } } }",
            json!({ "t": team }),
        )
        .await;
    assert_eq!(t["data"]["team"]["members"], json!([]), "{t}");
}

/// Polls a check on `app` until it equals `want`, for at most 5 s.
async fn until(app: &TestApp, token: &str, node: &str, want: bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if allowed(app, token, "apps:write", node).await == want {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the decision did not become {want} within 5 s");
}

#[tokio::test]
async fn team_changes_reach_members_on_another_instance() {
    let (a, b) = TestApp::pair(&any_redis()).await;
    let Org {
        ada,
        org,
        ws,
        bob,
        bob_id,
    } = org_on(&a).await;
    let carol = a.sign_up("carol@example.com").await;
    let carol_id = a.join(&ada, &org, "carol@example.com", &carol).await;
    let developer = a.role_id(&ada, &org, "developer").await;
    let team = create_team(&a, &ada, &org, "Platform").await;
    members_call(&a, &ada, ADD, &team, &[&bob_id, &carol_id]).await;
    // B caches Bob's and Carol's facts (no access yet).
    assert!(!allowed(&b, &bob, "apps:write", &ws).await);
    assert!(!allowed(&b, &carol, "apps:write", &ws).await);
    // A team binding granted on A reaches both members on B.
    let binding = a.grant(&ada, &team, &developer, &ws).await;
    until(&b, &bob, &ws, true).await;
    until(&b, &carol, &ws, true).await;
    // Bob leaves the team on A: B drops his access, and keeps Carol's.
    members_call(&a, &ada, REMOVE, &team, &[&bob_id]).await;
    until(&b, &bob, &ws, false).await;
    assert!(allowed(&b, &carol, "apps:write", &ws).await);
    // The team's binding revoked on A: Carol's goes too.
    a.gql(Some(&ada), REVOKE, json!({ "id": binding })).await;
    until(&b, &carol, &ws, false).await;
}

#[tokio::test]
async fn my_permission_changes_tell_a_member_of_their_teams_changes_only() {
    use crate::attack_websocket::{Got, RawWs};
    let app = TestApp::start().await;
    let Org {
        ada,
        org,
        ws: workspace,
        bob_id,
        ..
    } = org_on(&app).await;
    let alice = app.sign_up("alice@example.com").await;
    let alice_id = app.join(&ada, &org, "alice@example.com", &alice).await;
    let viewer = app.role_id(&ada, &org, "viewer").await;
    let mine = create_team(&app, &ada, &org, "Mine").await;
    let theirs = create_team(&app, &ada, &org, "Theirs").await;

    let mut ws = RawWs::signed_in(&app, &alice).await;
    ws.subscribe(
        "mine",
        "subscription { myPermissionChanges { kind principalId } }",
    )
    .await;
    let me = ws.run("q", "{ me { email } }").await;
    assert_eq!(me["data"]["me"]["email"], "alice@example.com", "{me}");

    // Bob joins the other team, which gets a role: none of Alice's business.
    members_call(&app, &ada, ADD, &theirs, &[&bob_id]).await;
    app.grant(&ada, &theirs, &viewer, &workspace).await;
    // Alice joins her team, which then gets a role: both reach her.
    members_call(&app, &ada, ADD, &mine, &[&alice_id]).await;
    app.grant(&ada, &mine, &viewer, &workspace).await;
    // Her team deleted: that too.
    app.gql(Some(&ada), DELETE, json!({ "t": mine })).await;

    let mut heard = Vec::new();
    while heard.len() < 3 {
        match ws.got(Duration::from_secs(10)).await {
            Got::Json(m) if m["type"] == "next" && m["id"] == "mine" => {
                let c = &m["payload"]["data"]["myPermissionChanges"];
                heard.push((
                    c["kind"].as_str().unwrap_or_default().to_owned(),
                    c["principalId"].as_str().unwrap_or_default().to_owned(),
                ));
            }
            other => panic!("expected Alice's changes, got {other:?} after {heard:?}"),
        }
    }
    assert_eq!(
        heard,
        vec![
            ("team.members".to_owned(), alice_id.clone()),
            ("binding.granted".to_owned(), mine.clone()),
            ("team.deleted".to_owned(), mine.clone()),
        ]
    );
}
