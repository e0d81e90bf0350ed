//! Profiles through the API: each shipped profile serves its own catalog and built-in roles,
//! an invitation without roles gives its default role, a database keeps its profile, roles are
//! bound only where they may be, aliases and notations mean what the profile says, and none of
//! it lets anyone hand out more than they hold.

use serde_json::{Value, json};

use crate::common::{TestApp, TestDb, assert_error, data_str};

const CHECK: &str =
    "query($i: CheckInput!) { check(input: $i) { allowed reasons { kind roleName } } }";
const CREATE: &str = "mutation($o: ID!, $n: String!, $p: [PolicyInput!]!, $k: [NodeKind!]) { createRole(input: {organizationId: $o, name: $n, policies: $p, bindableAt: $k}) { role { id name bindableAt policies { effect permission } } } }";
const INVITE_DEFAULT: &str = "mutation($o: ID!, $e: String!) { inviteMember(input: {organizationId: $o, email: $e}) { token invitation { grants { roleId nodeId } } } }";
const ACCEPT: &str =
    "mutation($t: String!) { acceptInvitation(input: {token: $t}) { organization { id } } }";

async fn start(profile: &str) -> TestApp {
    let profile = profile.to_owned();
    TestApp::start_with(move |c| c.profile = profile).await
}

/// Whether `token`'s holder may do `action` on `resource_type` at `node`.
async fn allowed(
    app: &TestApp,
    token: &str,
    resource_type: &str,
    action: &str,
    node: &str,
) -> bool {
    let r = app
        .gql(
            Some(token),
            CHECK,
            json!({ "i": { "resourceType": resource_type, "action": action, "nodeId": node } }),
        )
        .await;
    r["data"]["check"]["allowed"]
        .as_bool()
        .unwrap_or_else(|| panic!("{r}"))
}

/// Invites `email` with no `roles` field and has `member` accept: the default role's path.
async fn join_with_default(app: &TestApp, admin: &str, org: &str, email: &str, member: &str) {
    let r = app
        .gql(Some(admin), INVITE_DEFAULT, json!({ "o": org, "e": email }))
        .await;
    let token = data_str(&r, &["inviteMember", "token"]);
    let ok = app.gql(Some(member), ACCEPT, json!({ "t": token })).await;
    data_str(&ok, &["acceptInvitation", "organization", "id"]);
}

#[tokio::test]
async fn each_profile_serves_its_roles_and_gives_its_default_role_to_an_invitee() {
    // (profile, default role key, role names in order, allowed to the default role, denied)
    type Row<'a> = (
        &'a str,
        &'a str,
        &'a [&'a str],
        Option<(&'a str, &'a str)>,
        (&'a str, &'a str),
    );
    let table: [Row<'_>; 5] = [
        (
            "mechamental",
            "viewer",
            &["Admin", "Developer", "Operator", "Viewer"],
            Some(("apps", "read")),
            ("apps", "write"),
        ),
        (
            "mar",
            "viewer",
            &["Platform Admin", "Operator", "Developer", "Viewer"],
            Some(("clusters", "read")),
            ("clusters", "delete"),
        ),
        (
            "mentiko",
            "viewer",
            &["Admin", "Chain Builder", "Operator", "Viewer"],
            Some(("results", "view")),
            ("chains", "delete"),
        ),
        (
            "inkeep",
            "member",
            &[
                "Admin",
                "Member",
                "Project Viewer",
                "Project Member",
                "Project Admin",
            ],
            None,
            ("agents", "view"),
        ),
        (
            "m3forge",
            "member",
            &[
                "Administrator",
                "Editor",
                "Member",
                "Workflow Editor",
                "Deployment Editor",
                "Document Editor",
            ],
            Some(("credentials", "list")),
            ("credentials", "read"),
        ),
    ];
    for (profile, default_key, names, allow, deny) in table {
        let app = start(profile).await;
        let ada = app.sign_up("ada@example.com").await;
        let org = app.create_org(&ada, "acme").await;
        let info = app
            .gql(
                Some(&ada),
                "{ profile { name defaultRoleId adminRoleId } }",
                json!({}),
            )
            .await;
        assert_eq!(info["data"]["profile"]["name"], profile, "{info}");
        let roles = app
            .gql(
                Some(&ada),
                "query($o: ID!) { roles(organizationId: $o) { id key name builtin } }",
                json!({ "o": org }),
            )
            .await;
        let listed: Vec<&str> = roles["data"]["roles"]
            .as_array()
            .unwrap_or_else(|| panic!("{roles}"))
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(listed, names, "{profile}");
        let default = app.role_id(&ada, &org, default_key).await;
        assert_eq!(info["data"]["profile"]["defaultRoleId"], default.as_str());
        // The creator holds the administrator role.
        let admin = info["data"]["profile"]["adminRoleId"].as_str().unwrap();
        let mine = app
            .gql(
                Some(&ada),
                "query($o: ID!, $p: ID!) { roleBindings(organizationId: $o, principalId: $p) { roleId } }",
                json!({ "o": org, "p": app.user_id(&ada).await }),
            )
            .await;
        assert_eq!(
            mine["data"]["roleBindings"],
            json!([{ "roleId": admin }]),
            "{profile}: {mine}"
        );

        let bob = app.sign_up("bob@example.com").await;
        join_with_default(&app, &ada, &org, "bob@example.com", &bob).await;
        let held = app
            .gql(
                Some(&ada),
                "query($o: ID!, $p: ID!) { roleBindings(organizationId: $o, principalId: $p) { roleId nodeId } }",
                json!({ "o": org, "p": app.user_id(&bob).await }),
            )
            .await;
        assert_eq!(
            held["data"]["roleBindings"],
            json!([{ "roleId": default, "nodeId": org }]),
            "{profile}: {held}"
        );
        if let Some((t, a)) = allow {
            assert!(allowed(&app, &bob, t, a, &org).await, "{profile}: {t}:{a}");
        }
        assert!(
            !allowed(&app, &bob, deny.0, deny.1, &org).await,
            "{profile}: {deny:?}"
        );
    }
}

#[tokio::test]
async fn a_database_keeps_the_profile_it_was_first_served_with() {
    let db = TestDb::shared().await;
    let url = db.url.clone();
    let app = TestApp::start_on(Some(db), &url, None, |c| c.profile = "mar".to_owned()).await;
    let ada = app.sign_up("ada@example.com").await;
    app.create_org(&ada, "acme").await;

    let config = iam_gateway::config::Config {
        database_url: url.clone(),
        profile: "mentiko".to_owned(),
        ..Default::default()
    };
    let err = iam_gateway::app::AppState::init(config)
        .await
        .err()
        .expect("another profile must be refused");
    let message = err.to_string();
    assert!(
        message.contains("`mar`")
            && message.contains("`mentiko`")
            && message.contains("IAM_PROFILE=mar"),
        "{message}"
    );
    // The same profile starts again, and its roles are the ones the organization has.
    let org = app
        .gql(Some(&ada), "{ organizations { id } }", json!({}))
        .await["data"]["organizations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let again = TestApp::start_on(None, &url, None, |c| c.profile = "mar".to_owned()).await;
    assert_eq!(again.role_id(&ada, &org, "platform-admin").await.len(), 36);
    drop(again);

    // A name that is neither shipped nor a file is refused with the list of shipped ones.
    let config = iam_gateway::config::Config {
        database_url: "sqlite::memory:".to_owned(),
        profile: "marr".to_owned(),
        ..Default::default()
    };
    let err = iam_gateway::app::AppState::init(config)
        .await
        .err()
        .expect("must refuse");
    assert!(
        err.to_string()
            .contains("mechamental, mar, mentiko, inkeep, m3forge"),
        "{err}"
    );
}

#[tokio::test]
async fn a_profile_file_is_validated_at_start_with_the_part_at_fault() {
    let dir = std::env::temp_dir().join(format!("iam-profile-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("acme.toml");
    std::fs::write(
        &good,
        r#"
name = "acme"
notations = ["type:action"]
admin_role = "owner"
default_role = "reader"

[[types]]
name = "reports"
actions = ["read", "publish"]

[[roles]]
key = "owner"
name = "Owner"
bindable_at = ["organization"]
allow = ["*:*:*"]

[[roles]]
key = "reader"
name = "Reader"
allow = ["reports:read", "workspace:read"]
"#,
    )
    .unwrap();
    let path = good.display().to_string();
    let app = TestApp::start_with(move |c| c.profile = path).await;
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    let reader = app.role_id(&ada, &org, "reader").await;
    let r = app
        .gql(
            Some(&ada),
            "query($o: ID!, $id: ID!) { role(organizationId: $o, id: $id) { name policies { permission } } }",
            json!({ "o": org, "id": reader }),
        )
        .await;
    assert_eq!(
        r["data"]["role"],
        json!({ "name": "Reader", "policies": [{ "permission": "reports:*:read" }, { "permission": "workspace:*:read" }] })
    );

    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"acme\"\nadmin_role = \"owner\"\ndefault_role = \"owner\"\n\n[[roles]]\nkey = \"owner\"\nname = \"Owner\"\nallow = [\"reports:*:read\"]\n",
    )
    .unwrap();
    let config = iam_gateway::config::Config {
        database_url: "sqlite::memory:".to_owned(),
        profile: bad.display().to_string(),
        ..Default::default()
    };
    let err = iam_gateway::app::AppState::init(config)
        .await
        .err()
        .expect("must refuse");
    let message = err.to_string();
    assert!(
        message.contains("bad.toml")
            && message.contains("role `owner`")
            && message.contains("unknown resource type `reports`"),
        "{message}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_role_is_bound_only_where_it_may_be() {
    let app = start("mar").await;
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    let ws = app.create_workspace(&ada, &org, "prod").await;
    let project = app.create_project(&ada, &ws, "edge").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&ada, &org, "bob@example.com", &bob).await;

    // MAR's Operator is a project role: refused at the organization and at a workspace.
    let operator = app.role_id(&ada, &org, "operator").await;
    for node in [&org, &ws] {
        let r = app.grant_raw(&ada, &bob_id, &operator, node, None).await;
        assert_error(&r, "BAD_USER_INPUT");
        let message = r["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("can be bound only at a project"),
            "{message}"
        );
    }
    let r = app
        .grant_raw(&ada, &bob_id, &operator, &project, None)
        .await;
    assert_eq!(
        r["data"]["grantRole"]["binding"]["roleName"], "Operator",
        "{r}"
    );
    // Platform Admin only at the organization.
    let platform_admin = app.role_id(&ada, &org, "platform-admin").await;
    let r = app
        .grant_raw(&ada, &bob_id, &platform_admin, &project, None)
        .await;
    assert_error(&r, "BAD_USER_INPUT");

    // A custom role says where it may be bound; an invitation and an SSO mapping are held to it.
    let r = app
        .gql(
            Some(&ada),
            CREATE,
            json!({ "o": org, "n": "Starter", "p": [{ "effect": "ALLOW", "permission": "instances:start" }], "k": ["PROJECT"] }),
        )
        .await;
    assert_eq!(
        r["data"]["createRole"]["role"]["bindableAt"],
        json!(["PROJECT"]),
        "{r}"
    );
    let starter = data_str(&r, &["createRole", "role", "id"]);
    let r = app
        .gql(
            Some(&ada),
            "mutation($o: ID!, $r: ID!, $n: ID!) { inviteMember(input: {organizationId: $o, email: \"carol@example.com\", roles: [{roleId: $r, nodeId: $n}]}) { token } }",
            json!({ "o": org, "r": starter, "n": ws }),
        )
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    let r = app.grant_raw(&ada, &bob_id, &starter, &project, None).await;
    assert!(r["data"]["grantRole"]["binding"]["id"].is_string(), "{r}");
    // Narrowing it while it is bound at a project is a conflict; widening is fine.
    let update = "mutation($id: ID!, $k: [NodeKind!]) { updateRole(input: {id: $id, bindableAt: $k}) { role { bindableAt } } }";
    let r = app
        .gql(
            Some(&ada),
            update,
            json!({ "id": starter, "k": ["WORKSPACE"] }),
        )
        .await;
    assert_error(&r, "CONFLICT");
    let r = app
        .gql(
            Some(&ada),
            update,
            json!({ "id": starter, "k": ["PROJECT", "WORKSPACE"] }),
        )
        .await;
    assert_eq!(
        r["data"]["updateRole"]["role"]["bindableAt"],
        json!(["WORKSPACE", "PROJECT"]),
        "{r}"
    );
    let r = app
        .gql(Some(&ada), update, json!({ "id": starter, "k": [] }))
        .await;
    assert_error(&r, "BAD_USER_INPUT");
}

#[tokio::test]
async fn member_count_counts_distinct_principals_with_a_live_binding() {
    let app = TestApp::start().await;
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    let ws = app.create_workspace(&ada, &org, "dev").await;
    let viewer = app.role_id(&ada, &org, "viewer").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&ada, &org, "bob@example.com", &bob).await;
    let carol = app.sign_up("carol@example.com").await;
    let carol_id = app.join(&ada, &org, "carol@example.com", &carol).await;
    // Bob holds Viewer twice, Carol once until tomorrow.
    app.grant(&ada, &bob_id, &viewer, &org).await;
    app.grant(&ada, &bob_id, &viewer, &ws).await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let r = app
        .grant_raw(&ada, &carol_id, &viewer, &org, Some(&tomorrow))
        .await;
    assert!(r["data"]["grantRole"]["binding"]["id"].is_string(), "{r}");
    let counts = || async {
        let r = app
            .gql(
                Some(&ada),
                "query($o: ID!) { roles(organizationId: $o) { key bindingCount memberCount } }",
                json!({ "o": org }),
            )
            .await;
        let v: Value = r["data"]["roles"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .find(|x| x["key"] == "viewer")
            .unwrap()
            .clone();
        (
            v["bindingCount"].as_i64().unwrap(),
            v["memberCount"].as_i64().unwrap(),
        )
    };
    assert_eq!(counts().await, (3, 2));
    app.advance(std::time::Duration::from_secs(2 * 24 * 3600));
    assert_eq!(counts().await, (3, 1), "Carol's binding has expired");
}

#[tokio::test]
async fn a_platform_permission_means_the_gateway_permissions_it_aliases() {
    let app = start("mar").await;
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    let carol = app.sign_up("carol@example.com").await;
    let carol_id = app.join(&ada, &org, "carol@example.com", &carol).await;
    let create = |name: &str, policies: Value| {
        let (org, name) = (org.clone(), name.to_owned());
        let app = &app;
        let ada = ada.clone();
        async move {
            let r = app
                .gql(
                    Some(&ada),
                    CREATE,
                    json!({ "o": org, "n": name, "p": policies, "k": null }),
                )
                .await;
            data_str(&r, &["createRole", "role", "id"])
        }
    };
    // `access:manage` lets Carol invite: MAR's documentation governs members with it.
    let access_admin = create(
        "Access admin",
        json!([{ "effect": "ALLOW", "permission": "access:manage" }, { "effect": "ALLOW", "permission": "workspace:read" }]),
    )
    .await;
    let binding = app.grant(&ada, &carol_id, &access_admin, &org).await;
    let r = app
        .gql(
            Some(&carol),
            "mutation($o: ID!) { inviteMember(input: {organizationId: $o, email: \"dan@example.com\", roles: []}) { token } }",
            json!({ "o": org }),
        )
        .await;
    assert!(r["data"]["inviteMember"]["token"].is_string(), "{r}");
    // ... but not read clusters, which `access:manage` does not mean.
    assert!(!allowed(&app, &carol, "clusters", "read", &org).await);

    // A deny of `access:manage` denies what it aliases too (deny wins).
    let no_access = create(
        "No access",
        json!([{ "effect": "DENY", "permission": "access:*:manage" }]),
    )
    .await;
    app.grant(&ada, &carol_id, &no_access, &org).await;
    let r = app
        .gql(
            Some(&carol),
            "mutation($o: ID!) { inviteMember(input: {organizationId: $o, email: \"erin@example.com\", roles: []}) { token } }",
            json!({ "o": org }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");
    let _ = binding;

    // Abuse: a role writer who holds `roles:*:write` (and reads) cannot write a role carrying
    // `access:manage`, which would hand out member management they lack.
    let writer = create(
        "Role writer",
        json!([{ "effect": "ALLOW", "permission": "roles:*:write" }, { "effect": "ALLOW", "permission": "roles:*:read" }, { "effect": "ALLOW", "permission": "workspace:*:read" }]),
    )
    .await;
    let dave = app.sign_up("dave@example.com").await;
    let dave_id = app.join(&ada, &org, "dave@example.com", &dave).await;
    app.grant(&ada, &dave_id, &writer, &org).await;
    let r = app
        .gql(
            Some(&dave),
            CREATE,
            json!({ "o": org, "n": "Sneaky", "p": [{ "effect": "ALLOW", "permission": "access:manage" }], "k": null }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");

    // The catalog says what the alias means.
    let cat = app
        .gql(
            Some(&ada),
            "{ permissionCatalog { resourceType actionDetails { action permission alsoMeans } } }",
            json!({}),
        )
        .await;
    let access = cat["data"]["permissionCatalog"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["resourceType"] == "access")
        .unwrap_or_else(|| panic!("{cat}"))
        .clone();
    let manage = access["actionDetails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "manage")
        .unwrap()
        .clone();
    assert!(
        manage["alsoMeans"]
            .as_array()
            .unwrap()
            .contains(&json!("members:*:invite")),
        "{manage}"
    );
}

#[tokio::test]
async fn shorthand_notations_are_read_only_where_the_profile_accepts_them() {
    let mar = start("mar").await;
    let ada = mar.sign_up("ada@example.com").await;
    let org = mar.create_org(&ada, "acme").await;
    let r = mar
        .gql(
            Some(&ada),
            CREATE,
            json!({ "o": org, "n": "Reader", "p": [{ "effect": "ALLOW", "permission": "clusters:read" }], "k": null }),
        )
        .await;
    assert_eq!(
        r["data"]["createRole"]["role"]["policies"],
        json!([{ "effect": "ALLOW", "permission": "clusters:*:read" }]),
        "{r}"
    );

    let m3 = start("m3forge").await;
    let ada = m3.sign_up("ada@example.com").await;
    let org = m3.create_org(&ada, "acme").await;
    let r = m3
        .gql(
            Some(&ada),
            CREATE,
            json!({ "o": org, "n": "Viewer", "p": [{ "effect": "ALLOW", "permission": "workflows.view" }], "k": null }),
        )
        .await;
    assert_eq!(
        r["data"]["createRole"]["role"]["policies"],
        json!([{ "effect": "ALLOW", "permission": "workflows:*:view" }]),
        "{r}"
    );

    let default = TestApp::start().await;
    let ada = default.sign_up("ada@example.com").await;
    let org = default.create_org(&ada, "acme").await;
    for shorthand in ["apps:read", "apps.read"] {
        let r = default
            .gql(
                Some(&ada),
                CREATE,
                json!({ "o": org, "n": "Reader", "p": [{ "effect": "ALLOW", "permission": shorthand }], "k": null }),
            )
            .await;
        assert_error(&r, "BAD_USER_INPUT");
    }
}

#[tokio::test]
async fn an_invitation_without_roles_needs_the_power_to_hand_out_the_default_role() {
    let app = TestApp::start().await;
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    let r = app
        .gql(
            Some(&ada),
            CREATE,
            json!({ "o": org, "n": "Inviter", "p": [{ "effect": "ALLOW", "permission": "members:*:invite" }, { "effect": "ALLOW", "permission": "workspace:*:read" }], "k": null }),
        )
        .await;
    let inviter = data_str(&r, &["createRole", "role", "id"]);
    let carol = app.sign_up("carol@example.com").await;
    let carol_id = app.join(&ada, &org, "carol@example.com", &carol).await;
    app.grant(&ada, &carol_id, &inviter, &org).await;

    // Viewer (the default) allows reading apps, which Carol does not hold: refused, saying so.
    let r = app
        .gql(
            Some(&carol),
            INVITE_DEFAULT,
            json!({ "o": org, "e": "dan@example.com" }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");
    let message = r["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("default role `Viewer`"), "{message}");
    // With an explicit empty list she invites someone with no role at all.
    let r = app
        .gql(
            Some(&carol),
            "mutation($o: ID!) { inviteMember(input: {organizationId: $o, email: \"dan@example.com\", roles: []}) { invitation { grants { roleId } } } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(
        r["data"]["inviteMember"]["invitation"]["grants"],
        json!([]),
        "{r}"
    );
}
