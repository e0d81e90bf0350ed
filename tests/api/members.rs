//! The member lifecycle: invitations with roles sent by email (a real SMTP server), signing up
//! through the link, resend and revoke, member statuses, role changes, removal, the members list.

use serde_json::{Value, json};

use crate::common::smtp::SmtpSink;
use crate::common::{ADMIN, DEVELOPER, TestApp, VIEWER, assert_error, data_str};

const INVITE: &str = "mutation($i: InviteMemberInput!) { inviteMember(input: $i) { emailSent emailError acceptUrl token invitation { id email name message status sentAt grants { roleId nodeId } } } }";
const SIGN_UP: &str = "mutation($t: String!, $n: String!, $p: String!) { signUpWithInvitation(input: {token: $t, name: $n, password: $p}) { token user { email name } organization { id } invitation { status } revision } }";
const CHECK: &str = "query($n: ID!, $a: String) { check(input: {resourceType: \"apps\", action: \"read\", nodeId: $n, atLeast: $a}) { allowed } }";
const MEMBERS: &str = "query($o: ID!, $f: MemberFilter, $first: Int, $after: String) { organization(id: $o) { members(filter: $f, first: $first, after: $after) { totalCount hasNextPage endCursor members { email name status user { id } lastActiveAt roles { roleId nodeId source } accessibleProjects invitation { id } } } } }";

fn token_of(url: &str) -> String {
    url.split("token=").nth(1).unwrap_or_default().to_owned()
}

async fn allowed(app: &TestApp, token: &str, node: &str) -> bool {
    let r = app.gql(Some(token), CHECK, json!({ "n": node })).await;
    r["data"]["check"]["allowed"] == true
}

#[tokio::test]
async fn an_invitation_with_roles_is_emailed_and_accepted_by_signing_up() {
    let smtp = SmtpSink::start();
    let url = smtp.url();
    let app = TestApp::start_with(|c| {
        c.smtp_url = Some(url);
        c.public_url = "https://console.example.com".to_owned();
    })
    .await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let ws = app.create_workspace(&admin, &org, "ml").await;
    let project = app.create_project(&admin, &ws, "bot").await;
    let r = app
        .gql(
            Some(&admin),
            INVITE,
            json!({ "i": {
                "organizationId": org, "email": "Bob@Example.com", "name": "Bob Builder",
                "message": "Welcome to the ML team!", "expiresInDays": 3,
                "roles": [{ "roleId": DEVELOPER, "nodeId": ws }],
            } }),
        )
        .await;
    let payload = &r["data"]["inviteMember"];
    assert_eq!(payload["emailSent"], true, "{r}");
    assert!(
        payload["acceptUrl"].is_null() && payload["token"].is_null(),
        "the link goes only to the invitee: {r}"
    );
    assert!(payload["invitation"]["sentAt"].is_string());
    assert_eq!(
        payload["invitation"]["grants"],
        json!([{ "roleId": DEVELOPER, "nodeId": ws }])
    );

    let mail = smtp.wait_for_with(1, "/invitations/accept").await.remove(0);
    assert!(
        mail.header("To").unwrap().contains("bob@example.com"),
        "{}",
        mail.raw
    );
    assert!(
        mail.header("Subject")
            .unwrap()
            .starts_with("You are invited to join"),
        "{}",
        mail.raw
    );
    assert!(
        mail.body.contains("Welcome to the ML team!"),
        "{}",
        mail.body
    );
    assert!(mail.body.contains("Hello Bob Builder"), "{}", mail.body);
    let link = mail
        .link("https://console.example.com/invitations/accept?token=")
        .expect("the email carries the link");
    let token = token_of(&link);

    // Pending: listed as a member with the roles to come.
    let list = app
        .gql(
            Some(&admin),
            MEMBERS,
            json!({ "o": org, "f": { "statuses": ["PENDING"] } }),
        )
        .await;
    let pending = &list["data"]["organization"]["members"]["members"];
    assert_eq!(pending.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(pending[0]["email"], "bob@example.com");
    assert_eq!(pending[0]["name"], "Bob Builder");
    assert!(pending[0]["user"].is_null());
    assert_eq!(
        pending[0]["roles"],
        json!([{ "roleId": DEVELOPER, "nodeId": ws, "source": "invitation" }])
    );

    // A weak password is refused and nothing is created; then the sign-up goes through.
    let weak = app
        .gql(
            None,
            SIGN_UP,
            json!({ "t": token, "n": "Bob", "p": "short" }),
        )
        .await;
    assert_error(&weak, "BAD_USER_INPUT");
    let r = app
        .gql(
            None,
            SIGN_UP,
            json!({ "t": token, "n": "Bob", "p": "a long enough password" }),
        )
        .await;
    let bob = data_str(&r, &["signUpWithInvitation", "token"]);
    assert_eq!(
        r["data"]["signUpWithInvitation"]["user"]["email"],
        "bob@example.com"
    );
    assert_eq!(
        r["data"]["signUpWithInvitation"]["invitation"]["status"],
        "ACCEPTED"
    );
    // The grants applied: Developer at the workspace reaches its project, not the organization.
    assert!(allowed(&app, &bob, &project).await);
    assert!(!allowed(&app, &bob, &org).await);
    // The link works once.
    let again = app
        .gql(
            None,
            SIGN_UP,
            json!({ "t": token, "n": "Eve", "p": "a long enough password" }),
        )
        .await;
    assert_error(&again, "BAD_USER_INPUT");

    let actions = app.audit_actions().await;
    for a in ["invitation.create", "invitation.sent", "invitation.accept"] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} missing from {actions:?}"
        );
    }
}

#[tokio::test]
async fn without_smtp_the_link_is_returned_and_resend_and_revoke_work() {
    let app = TestApp::start().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let r = app
        .gql(
            Some(&admin),
            INVITE,
            json!({ "i": { "organizationId": org, "email": "bob@example.com" } }),
        )
        .await;
    assert_eq!(r["data"]["inviteMember"]["emailSent"], false, "{r}");
    let first = data_str(&r, &["inviteMember", "token"]);
    let id = data_str(&r, &["inviteMember", "invitation", "id"]);
    assert!(data_str(&r, &["inviteMember", "acceptUrl"]).ends_with(&first));

    // Bad input is refused with the field named.
    for (field, input) in [
        (
            "expiresInDays",
            json!({ "organizationId": org, "email": "c@example.com", "expiresInDays": 31 }),
        ),
        (
            "message",
            json!({ "organizationId": org, "email": "c@example.com", "message": "x".repeat(2001) }),
        ),
        (
            "email",
            json!({ "organizationId": org, "email": "not an email" }),
        ),
    ] {
        let r = app.gql(Some(&admin), INVITE, json!({ "i": input })).await;
        assert_error(&r, "BAD_USER_INPUT");
        assert!(
            r["errors"][0]["extensions"]["field"] == field
                || r["errors"][0]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(field),
            "{field}: {r}"
        );
    }

    // Resend: a new token; the old one is dead.
    let r = app
        .gql(Some(&admin), "mutation($id: ID!) { resendInvitation(input: {id: $id}) { token invitation { status } } }", json!({ "id": id }))
        .await;
    let second = data_str(&r, &["resendInvitation", "token"]);
    assert_ne!(first, second);
    let bob = app.sign_up("bob@example.com").await;
    let accept =
        "mutation($t: String!) { acceptInvitation(input: {token: $t}) { invitation { status } } }";
    let old = app.gql(Some(&bob), accept, json!({ "t": first })).await;
    assert_error(&old, "NOT_FOUND");

    // Revoke: the new token dies too, and the list filters by status.
    let r = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { revokeInvitation(input: {id: $id}) { status revokedAt } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(r["data"]["revokeInvitation"]["status"], "REVOKED", "{r}");
    let revoked = app.gql(Some(&bob), accept, json!({ "t": second })).await;
    assert_error(&revoked, "BAD_USER_INPUT");
    assert!(
        revoked["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let again = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { revokeInvitation(input: {id: $id}) { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_error(&again, "CONFLICT");
    let listed = app
        .gql(Some(&admin), "query($o: ID!) { organization(id: $o) { a: invitations(statuses: [REVOKED]) { email } b: invitations(statuses: [PENDING]) { email } c: invitations(email: \"BOB\") { email } } }", json!({ "o": org }))
        .await;
    assert_eq!(
        listed["data"]["organization"]["a"],
        json!([{ "email": "bob@example.com" }]),
        "{listed}"
    );
    assert_eq!(listed["data"]["organization"]["b"], json!([]));
    assert_eq!(
        listed["data"]["organization"]["c"],
        json!([{ "email": "bob@example.com" }])
    );

    // Someone without members:*:invite cannot resend or revoke.
    let viewer = app.sign_up("viewer@example.com").await;
    let viewer_id = app.join(&admin, &org, "viewer@example.com", &viewer).await;
    app.grant(&admin, &viewer_id, VIEWER, &org).await;
    let r = app
        .gql(
            Some(&viewer),
            "mutation($id: ID!) { resendInvitation(input: {id: $id}) { token } }",
            json!({ "id": id }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");
    let actions = app.audit_actions().await;
    for a in ["invitation.resend", "invitation.revoke"] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} missing from {actions:?}"
        );
    }
}

#[tokio::test]
async fn an_invitation_cannot_grant_more_than_the_inviter_holds() {
    let app = TestApp::start().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let ws = app.create_workspace(&admin, &org, "ml").await;
    // An inviter who holds members:*:invite and Viewer, not Admin.
    let r = app
        .gql(Some(&admin), "mutation($o: ID!) { createRole(input: {organizationId: $o, name: \"Inviter\", policies: [{effect: ALLOW, permission: \"members:*:invite\"}, {effect: ALLOW, permission: \"workspace:*:read\"}]}) { role { id } } }", json!({ "o": org }))
        .await;
    let inviter_role = data_str(&r, &["createRole", "role", "id"]);
    let inviter = app.sign_up("inviter@example.com").await;
    let inviter_id = app
        .join(&admin, &org, "inviter@example.com", &inviter)
        .await;
    app.grant(&admin, &inviter_id, &inviter_role, &org).await;
    let r = app
        .gql(Some(&inviter), INVITE, json!({ "i": { "organizationId": org, "email": "x@example.com", "roles": [{ "roleId": ADMIN, "nodeId": org }] } }))
        .await;
    assert_error(&r, "FORBIDDEN");
    // A node of another organization is not found.
    let other = app.sign_up("other@example.com").await;
    let other_org = app.create_org(&other, "other").await;
    let r = app
        .gql(Some(&admin), INVITE, json!({ "i": { "organizationId": org, "email": "x@example.com", "roles": [{ "roleId": VIEWER, "nodeId": other_org }] } }))
        .await;
    assert_error(&r, "NOT_FOUND");
    let r = app
        .gql(Some(&admin), INVITE, json!({ "i": { "organizationId": org, "email": "x@example.com", "roles": [{ "roleId": VIEWER, "nodeId": ws }] } }))
        .await;
    assert_eq!(
        r["data"]["inviteMember"]["invitation"]["status"], "PENDING",
        "{r}"
    );
}

#[tokio::test]
async fn suspension_and_deactivation_deny_at_once_and_are_reversible() {
    let app = TestApp::start().await;
    let admin = app.sign_up("admin@example.com").await;
    let admin_id = app.user_id(&admin).await;
    let org = app.create_org(&admin, "acme").await;
    let ws = app.create_workspace(&admin, &org, "ml").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&admin, &org, "bob@example.com", &bob).await;
    app.grant(&admin, &bob_id, DEVELOPER, &ws).await;
    assert!(allowed(&app, &bob, &ws).await);

    let r = app
        .member_call(&admin, "suspendMember", &org, &bob_id)
        .await;
    assert_eq!(r["data"]["suspendMember"]["status"], "SUSPENDED", "{r}");
    assert!(
        !allowed(&app, &bob, &ws).await,
        "a suspended member is denied at once"
    );
    let r = app
        .gql(
            Some(&bob),
            "query($o: ID!) { organization(id: $o) { slug } }",
            json!({ "o": org }),
        )
        .await;
    assert_error(&r, "NOT_FOUND");
    // Wrong transitions are conflicts.
    assert_error(
        &app.member_call(&admin, "suspendMember", &org, &bob_id)
            .await,
        "CONFLICT",
    );
    assert_error(
        &app.member_call(&admin, "reactivateMember", &org, &bob_id)
            .await,
        "CONFLICT",
    );
    let r = app
        .member_call(&admin, "unsuspendMember", &org, &bob_id)
        .await;
    assert_eq!(r["data"]["unsuspendMember"]["status"], "ACTIVE", "{r}");
    assert!(allowed(&app, &bob, &ws).await);

    let r = app
        .member_call(&admin, "deactivateMember", &org, &bob_id)
        .await;
    assert_eq!(r["data"]["deactivateMember"]["status"], "INACTIVE", "{r}");
    assert!(!allowed(&app, &bob, &ws).await);
    let r = app
        .member_call(&admin, "reactivateMember", &org, &bob_id)
        .await;
    assert_eq!(r["data"]["reactivateMember"]["status"], "ACTIVE", "{r}");
    assert!(allowed(&app, &bob, &ws).await);

    // The last active Admin cannot be suspended, deactivated or removed; a member without
    // members:*:remove cannot suspend anyone.
    for m in ["suspendMember", "deactivateMember"] {
        assert_error(
            &app.member_call(&admin, m, &org, &admin_id).await,
            "CONFLICT",
        );
    }
    let r = app
        .gql(Some(&admin), "mutation($o: ID!, $u: ID!) { removeMember(input: {organizationId: $o, userId: $u}) { removedUserId } }", json!({ "o": org, "u": admin_id }))
        .await;
    assert_error(&r, "CONFLICT");
    let r = app
        .member_call(&bob, "suspendMember", &org, &admin_id)
        .await;
    assert!(
        matches!(
            crate::common::error_code(&r).as_deref(),
            Some("FORBIDDEN" | "NOT_FOUND")
        ),
        "{r}"
    );
    let actions = app.audit_actions().await;
    assert_eq!(
        actions.iter().filter(|a| *a == "member.status").count(),
        4,
        "{actions:?}"
    );
}

#[tokio::test]
async fn roles_change_at_once_and_removal_keeps_the_account() {
    let app = TestApp::start().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let ws = app.create_workspace(&admin, &org, "ml").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&admin, &org, "bob@example.com", &bob).await;
    app.grant(&admin, &bob_id, VIEWER, &org).await;
    // Bob also belongs to another organization.
    let carol = app.sign_up("carol@example.com").await;
    let other = app.create_org(&carol, "other").await;
    app.join(&carol, &other, "bob@example.com", &bob).await;

    let set = "mutation($o: ID!, $u: ID!, $r: [RoleGrantInput!]!) { setMemberRoles(input: {organizationId: $o, userId: $u, roles: $r}) { roles { roleId nodeId } revision } }";
    let r = app
        .gql(
            Some(&admin),
            set,
            json!({ "o": org, "u": bob_id, "r": [{ "roleId": DEVELOPER, "nodeId": ws }] }),
        )
        .await;
    assert_eq!(
        r["data"]["setMemberRoles"]["roles"],
        json!([{ "roleId": DEVELOPER, "nodeId": ws }]),
        "{r}"
    );
    // Viewer at the organization is gone, Developer at the workspace is there.
    assert!(!allowed(&app, &bob, &org).await);
    assert!(allowed(&app, &bob, &ws).await);
    let events = app
        .state
        .services
        .store()
        .audit_events(None, 1000)
        .await
        .unwrap();
    let change = events
        .iter()
        .find(|e| e.action == "member.roles")
        .expect("audited");
    assert_eq!(
        change.before.as_ref().unwrap()["roles"][0]["role_id"],
        VIEWER
    );
    assert_eq!(
        change.after.as_ref().unwrap()["roles"][0]["role_id"],
        DEVELOPER
    );

    let r = app
        .gql(Some(&admin), "mutation($o: ID!, $u: ID!) { removeMember(input: {organizationId: $o, userId: $u}) { removedUserId revision } }", json!({ "o": org, "u": bob_id }))
        .await;
    assert_eq!(r["data"]["removeMember"]["removedUserId"], bob_id, "{r}");
    assert!(!allowed(&app, &bob, &ws).await);
    let r = app
        .gql(Some(&bob), "{ me { organizations { slug } } }", json!({}))
        .await;
    let orgs = r.to_string();
    assert!(orgs.contains("other") && !orgs.contains("acme"), "{r}");
    let list = app.gql(Some(&admin), MEMBERS, json!({ "o": org })).await;
    assert_eq!(
        list["data"]["organization"]["members"]["totalCount"], 1,
        "{list}"
    );
    let bindings = app
        .state
        .services
        .store()
        .bindings_of(org.parse().unwrap(), bob_id.parse().unwrap())
        .await
        .unwrap();
    assert!(bindings.is_empty());
    // Removing someone who is not a member is NOT_FOUND; re-inviting works.
    let r = app
        .gql(Some(&admin), "mutation($o: ID!, $u: ID!) { removeMember(input: {organizationId: $o, userId: $u}) { removedUserId } }", json!({ "o": org, "u": bob_id }))
        .await;
    assert_error(&r, "NOT_FOUND");
    app.join(&admin, &org, "bob@example.com", &bob).await;
    assert!(
        app.audit_actions()
            .await
            .iter()
            .any(|a| a == "member.remove")
    );
}

#[tokio::test]
async fn the_members_list_filters_pages_and_shows_access() {
    let app = TestApp::start().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let ws = app.create_workspace(&admin, &org, "ml").await;
    let p1 = app.create_project(&admin, &ws, "one").await;
    let ws2 = app.create_workspace(&admin, &org, "ops").await;
    let _p2 = app.create_project(&admin, &ws2, "two").await;
    for name in ["bob", "carol", "dave"] {
        let t = app.sign_up(&format!("{name}@example.com")).await;
        let id = app
            .join(&admin, &org, &format!("{name}@example.com"), &t)
            .await;
        if name == "bob" {
            app.grant(&admin, &id, DEVELOPER, &ws).await;
        }
        if name == "dave" {
            app.member_call(&admin, "suspendMember", &org, &id).await;
        }
    }
    app.invite(&admin, &org, "erin@example.com").await;

    let all = app.gql(Some(&admin), MEMBERS, json!({ "o": org })).await;
    let page = &all["data"]["organization"]["members"];
    assert_eq!(page["totalCount"], 5, "{all}");
    let emails: Vec<&str> = page["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        [
            "admin@example.com",
            "bob@example.com",
            "carol@example.com",
            "dave@example.com",
            "erin@example.com"
        ]
    );
    let bob = &page["members"][1];
    assert_eq!(
        bob["accessibleProjects"],
        json!([p1]),
        "Developer at ml reaches its project only: {bob}"
    );
    assert!(bob["lastActiveAt"].is_string());
    assert_eq!(page["members"][3]["status"], "SUSPENDED");
    assert_eq!(page["members"][3]["accessibleProjects"], json!([]));
    assert_eq!(page["members"][4]["status"], "PENDING");

    // Filters.
    let f = |filter: Value| app.gql(Some(&admin), MEMBERS, json!({ "o": org, "f": filter }));
    let r = f(json!({ "statuses": ["SUSPENDED", "PENDING"] })).await;
    assert_eq!(r["data"]["organization"]["members"]["totalCount"], 2, "{r}");
    let r = f(json!({ "search": "CAR" })).await;
    assert_eq!(
        r["data"]["organization"]["members"]["members"][0]["email"], "carol@example.com",
        "{r}"
    );
    assert_eq!(r["data"]["organization"]["members"]["totalCount"], 1);
    let r = f(json!({ "roleId": DEVELOPER })).await;
    assert_eq!(
        r["data"]["organization"]["members"]["members"][0]["email"], "bob@example.com",
        "{r}"
    );

    // Pages of two, following the cursor.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let r = app
            .gql(
                Some(&admin),
                MEMBERS,
                json!({ "o": org, "first": 2, "after": after }),
            )
            .await;
        let page = &r["data"]["organization"]["members"];
        for m in page["members"].as_array().unwrap() {
            seen.push(m["email"].as_str().unwrap().to_owned());
        }
        if page["hasNextPage"] != true {
            break;
        }
        after = page["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, emails);
    let r = app
        .gql(Some(&admin), MEMBERS, json!({ "o": org, "first": 0 }))
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    // Someone without members:*:read sees nothing.
    let stranger = app.sign_up("stranger@example.com").await;
    let r = app.gql(Some(&stranger), MEMBERS, json!({ "o": org })).await;
    assert_error(&r, "NOT_FOUND");
}
