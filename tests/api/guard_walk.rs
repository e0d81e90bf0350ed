//! Walks the live schema: every query and mutation field must refuse anonymous callers, and
//! must refuse a signed-in outsider who points it at another organization's objects. A new
//! field that forgets its authorization fails here without anyone having to list it.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::common::{ADMIN, PASSWORD, TestApp, data_str};

/// Fields anyone may call: they create or prove an identity (a password-reset token is the
/// proof for `resetPassword`).
const PUBLIC: &[&str] = &[
    "signUp",
    "verifyEmail",
    "signIn",
    "requestPasswordReset",
    "resetPassword",
    "signUpWithInvitation",
];
/// Fields that act only on the caller's own account or on what the caller presents (a token),
/// so a session is all they need; they still must refuse anonymous callers.
const SESSION_ONLY: &[&str] = &[
    "signOut",
    "changePassword",
    "updateMe",
    "changeMyEmail",
    "deleteMe",
    "mySessions",
    "revokeSession",
    "revokeOtherSessions",
    "createOrganization",
    "acceptInvitation",
    "resendEmailVerification",
    "confirmSsoLink",
    "me",
    "organizations",
    "permissionCatalog",
    "profile",
];

const INTROSPECT: &str = r#"{
  __schema {
    queryType { name }
    mutationType { name }
    types {
      name kind
      fields { name args { name type { ...T } } }
      inputFields { name type { ...T } }
      enumValues { name }
    }
  }
}
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }"#;

struct Schema {
    types: HashMap<String, Value>,
}

impl Schema {
    /// The live schema's types, by introspection.
    async fn read(app: &TestApp) -> Self {
        let intro = app.gql(None, INTROSPECT, json!({})).await;
        let types = intro["data"]["__schema"]["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["name"].as_str().unwrap().to_owned(), t.clone()))
            .collect();
        Self { types }
    }

    /// A value for a field or argument called `name` of type `ty`, with IDs set to `id`.
    fn value(&self, name: &str, ty: &Value, id: &str, depth: usize) -> Value {
        match ty["kind"].as_str().unwrap_or_default() {
            "NON_NULL" => self.value(name, &ty["ofType"], id, depth),
            "LIST" => json!([self.value(name, &ty["ofType"], id, depth)]),
            "ENUM" => {
                let t = &self.types[ty["name"].as_str().unwrap()];
                t["enumValues"][0]["name"].clone()
            }
            "INPUT_OBJECT" => {
                let t = &self.types[ty["name"].as_str().unwrap()];
                let mut obj = Map::new();
                if depth < 4 {
                    for f in t["inputFields"].as_array().unwrap() {
                        let fname = f["name"].as_str().unwrap();
                        obj.insert(
                            fname.to_owned(),
                            self.value(fname, &f["type"], id, depth + 1),
                        );
                    }
                }
                Value::Object(obj)
            }
            _ => match ty["name"].as_str().unwrap_or_default() {
                "ID" => json!(id),
                "Boolean" => json!(true),
                "Int" => json!(10),
                "DateTime" => json!((chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339()),
                _ => json!(match name {
                    "slug" => "hacked",
                    "email" => "eve2@example.com",
                    "path" => "acme/prod",
                    "permission" => "apps:*:read",
                    "token" => "iam_i_guess",
                    "action" => "read",
                    "resourceType" => "apps",
                    "password" => PASSWORD,
                    _ => "Hacked",
                }),
            },
        }
    }

    /// Argument sets to try: no optional argument, each optional one alone, and all of them.
    fn arg_variants(&self, field: &Value, id: &str) -> Vec<Map<String, Value>> {
        let args = field["args"].as_array().unwrap();
        let required: Vec<&Value> = args
            .iter()
            .filter(|a| a["type"]["kind"] == "NON_NULL")
            .collect();
        let optional: Vec<&Value> = args
            .iter()
            .filter(|a| a["type"]["kind"] != "NON_NULL")
            .collect();
        let base: Map<String, Value> = required
            .iter()
            .map(|a| {
                let n = a["name"].as_str().unwrap();
                (n.to_owned(), self.value(n, &a["type"], id, 0))
            })
            .collect();
        let mut variants = vec![base.clone()];
        for a in &optional {
            let n = a["name"].as_str().unwrap();
            let mut v = base.clone();
            v.insert(n.to_owned(), self.value(n, &a["type"], id, 0));
            variants.push(v);
        }
        if optional.len() > 1 {
            let mut all = base;
            for a in &optional {
                let n = a["name"].as_str().unwrap();
                all.insert(n.to_owned(), self.value(n, &a["type"], id, 0));
            }
            variants.push(all);
        }
        variants
    }
}

/// The GraphQL type text of an introspected type, e.g. `[PolicyInput!]!`.
fn type_text(ty: &Value) -> String {
    match ty["kind"].as_str().unwrap() {
        "NON_NULL" => format!("{}!", type_text(&ty["ofType"])),
        "LIST" => format!("[{}]", type_text(&ty["ofType"])),
        _ => ty["name"].as_str().unwrap().to_owned(),
    }
}

/// A selection that asks for `__typename` of whatever the field returns.
fn call(op: &str, field: &Value, args: &Map<String, Value>) -> String {
    let decl: Vec<String> = field["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| args.contains_key(a["name"].as_str().unwrap()))
        .map(|a| {
            format!(
                "${}: {}",
                a["name"].as_str().unwrap(),
                type_text(&a["type"])
            )
        })
        .collect();
    let pass: Vec<String> = args.keys().map(|k| format!("{k}: ${k}")).collect();
    let decl = if decl.is_empty() {
        String::new()
    } else {
        format!("({})", decl.join(", "))
    };
    let pass = if pass.is_empty() {
        String::new()
    } else {
        format!("({})", pass.join(", "))
    };
    format!(
        "{op} Walk{decl} {{ {}{pass} {{ __typename }} }}",
        field["name"].as_str().unwrap()
    )
}

#[tokio::test]
async fn every_field_is_authorized() {
    let app = TestApp::start().await;
    // The victim's organization, with one of everything.
    let victim = app.sign_up("victim@example.com").await;
    let org = app.create_org(&victim, "acme").await;
    let ws = app.create_workspace(&victim, &org, "prod").await;
    let project = app.create_project(&victim, &ws, "billing").await;
    let r = app
        .gql(Some(&victim), "mutation($o: ID!) { createRole(input: {organizationId: $o, name: \"Custom\", policies: [{effect: ALLOW, permission: \"apps:*:read\"}]}) { role { id } } }", json!({ "o": org }))
        .await;
    let role = data_str(&r, &["createRole", "role", "id"]);
    let victim_id = app.user_id(&victim).await;
    let bindings = app
        .gql(
            Some(&victim),
            "query($o: ID!, $p: ID!) { roleBindings(organizationId: $o, principalId: $p) { id } }",
            json!({ "o": org, "p": victim_id }),
        )
        .await;
    let binding = bindings["data"]["roleBindings"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ids = [org, ws, project, role, binding, victim_id, ADMIN.to_owned()];

    // The outsider: signed in, admin of an organization of her own.
    let eve = app.sign_up("eve@example.com").await;
    app.create_org(&eve, "evil").await;

    let schema = Schema::read(&app).await;
    let mut walked = 0;
    for (op, root) in [("query", "Query"), ("mutation", "Mutation")] {
        for field in schema.types[root]["fields"].as_array().unwrap() {
            let name = field["name"].as_str().unwrap();
            if PUBLIC.contains(&name) {
                continue;
            }
            walked += 1;
            let mut barriers = 0;
            for id in &ids {
                for args in schema.arg_variants(field, id) {
                    let q = call(op, field, &args);
                    let vars = Value::Object(args.clone());
                    let anon = app.gql(None, &q, vars.clone()).await;
                    let anon_code = anon["errors"][0]["extensions"]["code"].as_str();
                    assert!(
                        matches!(anon_code, Some("UNAUTHENTICATED" | "BAD_USER_INPUT")),
                        "{name} must refuse anonymous callers: {q} {vars} -> {anon}"
                    );
                    if SESSION_ONLY.contains(&name) {
                        continue;
                    }
                    let r = app.gql(Some(&eve), &q, vars.clone()).await;
                    assert!(
                        r["data"].is_null() || r["data"][name].is_null(),
                        "{name} answered an outsider with data: {q} {vars} -> {r}"
                    );
                    let code = r["errors"][0]["extensions"]["code"].as_str();
                    assert!(
                        matches!(code, Some("NOT_FOUND" | "FORBIDDEN" | "BAD_USER_INPUT")),
                        "{name}: unexpected answer to an outsider: {r}"
                    );
                    if matches!(code, Some("NOT_FOUND" | "FORBIDDEN")) {
                        barriers += 1;
                    }
                }
            }
            assert!(
                SESSION_ONLY.contains(&name) || barriers > 0,
                "{name} was never stopped by authorization (only by input validation): add its check"
            );
        }
    }
    assert!(
        walked >= 30,
        "the walk must cover the schema, it covered {walked} fields"
    );
    // The victim's organization is unchanged.
    let tree = app
        .gql(
            Some(&victim),
            "{ node(path: \"acme/prod/billing\") { ... on Project { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(data_str(&tree, &["node", "name"]), "Project");
}

/// Nested fields of an organization that only some roles may read, with the permission each
/// needs; a member without roles and a Viewer hold none of them.
const GUARDED_ORGANIZATION_FIELDS: &[(&str, &str)] = &[
    (
        "members",
        "members { totalCount members { email user { id email } roles { roleId } } }",
    ),
    ("invitations", "invitations { id email }"),
    ("auditEvents", "auditEvents { id action ip }"),
    ("ssoProviders", "ssoProviders { id name }"),
    ("domains", "domains { domain }"),
];

#[tokio::test]
async fn members_without_roles_and_viewers_change_nothing_and_read_no_one_else() {
    let app = TestApp::start().await;
    let victim = app.sign_up("victim@example.com").await;
    let org = app.create_org(&victim, "acme").await;
    let ws = app.create_workspace(&victim, &org, "prod").await;
    let project = app.create_project(&victim, &ws, "billing").await;
    let victim_id = app.user_id(&victim).await;
    let bindings = app
        .gql(
            Some(&victim),
            "query($o: ID!, $p: ID!) { roleBindings(organizationId: $o, principalId: $p) { id } }",
            json!({ "o": org, "p": victim_id }),
        )
        .await;
    let binding = bindings["data"]["roleBindings"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A member who holds no role, and one who holds Viewer at the organization.
    let nobody = app.sign_up("nobody@example.com").await;
    let nobody_id = app.join(&victim, &org, "nobody@example.com", &nobody).await;
    let viewer = app.sign_up("viewer@example.com").await;
    let viewer_id = app.join(&victim, &org, "viewer@example.com", &viewer).await;
    app.grant(&victim, &viewer_id, crate::common::VIEWER, &org)
        .await;
    let ids = [
        org.clone(),
        ws,
        project,
        binding,
        victim_id.clone(),
        nobody_id,
        viewer_id,
        ADMIN.to_owned(),
    ];

    let schema = Schema::read(&app).await;

    // No mutation of the organization succeeds for either of them.
    let mut walked = 0;
    for field in schema.types["Mutation"]["fields"].as_array().unwrap() {
        let name = field["name"].as_str().unwrap();
        if PUBLIC.contains(&name) || SESSION_ONLY.contains(&name) {
            continue;
        }
        walked += 1;
        let mut barriers = 0;
        for id in &ids {
            for args in schema.arg_variants(field, id) {
                let q = call("mutation", field, &args);
                let vars = Value::Object(args.clone());
                for (who, token) in [("a member without roles", &nobody), ("a Viewer", &viewer)] {
                    let r = app.gql(Some(token), &q, vars.clone()).await;
                    assert!(
                        r["data"].is_null() || r["data"][name].is_null(),
                        "{name} let {who} change something: {q} {vars} -> {r}"
                    );
                    let code = r["errors"][0]["extensions"]["code"].as_str();
                    assert!(
                        matches!(code, Some("NOT_FOUND" | "FORBIDDEN" | "BAD_USER_INPUT")),
                        "{name}: unexpected answer to {who}: {r}"
                    );
                    if matches!(code, Some("NOT_FOUND" | "FORBIDDEN")) {
                        barriers += 1;
                    }
                }
            }
        }
        assert!(
            barriers > 0,
            "{name} never stopped a member by authorization (only by input validation)"
        );
    }
    assert!(walked >= 25, "the walk covered only {walked} mutations");

    // Nested fields: the organization itself answers, its guarded lists do not.
    for (who, token) in [("a member without roles", &nobody), ("a Viewer", &viewer)] {
        for (field, selection) in GUARDED_ORGANIZATION_FIELDS {
            let q = format!("query($o: ID!) {{ organization(id: $o) {{ id {selection} }} }}");
            let r = app.gql(Some(token), &q, json!({ "o": org })).await;
            assert_eq!(r["data"]["organization"]["id"], org.as_str(), "{who}: {r}");
            assert!(
                r["data"]["organization"][field].is_null(),
                "{who} read Organization.{field}: {r}"
            );
            assert_eq!(
                r["errors"][0]["extensions"]["code"], "FORBIDDEN",
                "{who}, Organization.{field}: {r}"
            );
            assert_eq!(r["errors"][0]["path"][1], *field, "{r}");
        }
        // About someone else: refused; about themselves: answered.
        let about_victim = [
            (
                "check",
                "query($o: ID!, $p: ID!) { check(input: { principalId: $p, action: \"read\", resourceType: \"apps\", nodeId: $o }) { allowed } }",
            ),
            (
                "explain",
                "query($o: ID!, $p: ID!) { explain(input: { principalId: $p, action: \"read\", resourceType: \"apps\", nodeId: $o }) { allowed } }",
            ),
            (
                "roleBindings",
                "query($o: ID!, $p: ID!) { roleBindings(organizationId: $o, principalId: $p) { id } }",
            ),
            (
                "memberSessions",
                "query($o: ID!, $p: ID!) { memberSessions(organizationId: $o, userId: $p) { id } }",
            ),
        ];
        for (field, q) in about_victim {
            let r = app
                .gql(Some(token), q, json!({ "o": org, "p": victim_id }))
                .await;
            assert!(
                r["data"].is_null() || r["data"][field].is_null(),
                "{who}, {field}: {r}"
            );
            assert_eq!(
                r["errors"][0]["extensions"]["code"], "FORBIDDEN",
                "{who}, {field}: {r}"
            );
        }
        let roles = app
            .gql(
                Some(token),
                "query($o: ID!) { roles(organizationId: $o) { id } }",
                json!({ "o": org }),
            )
            .await;
        assert_eq!(
            roles["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{who}: {roles}"
        );
        let own = app
            .gql(
                Some(token),
                "query($o: ID!) { check(input: { action: \"read\", resourceType: \"apps\", nodeId: $o }) { allowed } }",
                json!({ "o": org }),
            )
            .await;
        assert!(own["data"]["check"]["allowed"].is_boolean(), "{who}: {own}");
    }

    // The organization is as the victim left it.
    let tree = app
        .gql(
            Some(&victim),
            "{ node(path: \"acme/prod/billing\") { ... on Project { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(data_str(&tree, &["node", "name"]), "Project");
}
