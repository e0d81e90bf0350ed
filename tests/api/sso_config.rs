//! SSO configuration through GraphQL: providers (secrets encrypted, never returned), group
//! mappings (no escalation), enforce SSO with the admins' break-glass path.

use serde_json::{Value, json};

use crate::common::{ADMIN, DEVELOPER, PASSWORD, TestApp, VIEWER, assert_error, data_str};

pub const SECRET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

const CREATE: &str = "mutation($i: CreateSsoProviderInput!) { createSsoProvider(input: $i) { id name kind enabled hasClientSecret oidc { issuerUrl clientId scopes groupsClaim } saml { idpMetadataUrl emailAttribute } redirectUri spEntityId acsUrl metadataUrl loginUrl defaultRoleId } }";

fn oidc_input(org: &str) -> Value {
    json!({ "organizationId": org, "name": "Okta", "oidc": {
        "issuerUrl": "https://idp.example.com/", "clientId": "gateway", "clientSecret": "s3cr3t-value" } })
}

async fn app_with_key() -> TestApp {
    TestApp::start_with(|c| {
        c.secret_key = Some(SECRET_KEY.to_owned());
        c.public_url = "https://iam.example.com".to_owned();
    })
    .await
}

#[tokio::test]
async fn providers_keep_secrets_encrypted_and_never_return_them() {
    let app = app_with_key().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let r = app
        .gql(Some(&admin), CREATE, json!({ "i": oidc_input(&org) }))
        .await;
    let p = &r["data"]["createSsoProvider"];
    assert_eq!(p["kind"], "OIDC", "{r}");
    assert_eq!(p["enabled"], false, "providers start disabled");
    assert_eq!(p["hasClientSecret"], true);
    assert_eq!(p["oidc"]["issuerUrl"], "https://idp.example.com");
    assert_eq!(p["oidc"]["scopes"], json!(["openid", "profile", "email"]));
    assert_eq!(p["oidc"]["groupsClaim"], "groups");
    assert_eq!(
        p["redirectUri"],
        "https://iam.example.com/auth/oidc/callback"
    );
    let id = data_str(&r, &["createSsoProvider", "id"]);
    assert_eq!(
        p["loginUrl"],
        format!("https://iam.example.com/auth/oidc/{id}/login")
    );
    assert!(
        !r.to_string().contains("s3cr3t-value"),
        "the secret is never returned: {r}"
    );
    // At rest: ciphertext, which the deployment's key opens.
    let services = &app.state.services;
    let stored = services
        .store()
        .provider_secret(id.parse().unwrap())
        .await
        .unwrap()
        .expect("stored");
    assert!(
        stored.starts_with("v1:") && !stored.contains("s3cr3t"),
        "{stored}"
    );
    assert_eq!(services.secrets.decrypt(&stored).unwrap(), "s3cr3t-value");
    // Listing shows it, without the secret; the audit event has no secret either.
    let list = app
        .gql(Some(&admin), "query($o: ID!) { organization(id: $o) { enforceSso ssoProviders { id name hasClientSecret groupMappings { group } } } }", json!({ "o": org }))
        .await;
    assert_eq!(
        list["data"]["organization"]["ssoProviders"][0]["id"], id,
        "{list}"
    );
    assert_eq!(list["data"]["organization"]["enforceSso"], false);
    let events = services.store().audit_events(None, 100).await.unwrap();
    let created = events
        .iter()
        .find(|e| e.action == "sso.provider_create")
        .expect("audited");
    assert!(!format!("{:?}", created.after).contains("s3cr3t"));

    // A SAML provider, and the kind cannot change on update.
    let r = app
        .gql(Some(&admin), CREATE, json!({ "i": { "organizationId": org, "name": "Entra", "saml": { "idpMetadataUrl": "https://login.example.com/metadata.xml" } } }))
        .await;
    assert_eq!(
        r["data"]["createSsoProvider"]["saml"]["emailAttribute"], "email",
        "{r}"
    );
    let saml_id = data_str(&r, &["createSsoProvider", "id"]);
    assert_eq!(
        r["data"]["createSsoProvider"]["acsUrl"],
        format!("https://iam.example.com/auth/saml/{saml_id}/acs")
    );
    let r = app
        .gql(Some(&admin), "mutation($id: ID!) { updateSsoProvider(input: {id: $id, oidc: {issuerUrl: \"https://x.example.com\", clientId: \"c\"}}) { id } }", json!({ "id": saml_id }))
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    // Rotating the secret and renaming keep the rest.
    let r = app
        .gql(Some(&admin), "mutation($id: ID!) { updateSsoProvider(input: {id: $id, name: \"Okta prod\", enabled: true, oidc: {issuerUrl: \"https://idp.example.com\", clientId: \"gateway\", clientSecret: \"rotated\"}}) { name enabled hasClientSecret } }", json!({ "id": id }))
        .await;
    assert_eq!(
        r["data"]["updateSsoProvider"],
        json!({ "name": "Okta prod", "enabled": true, "hasClientSecret": true }),
        "{r}"
    );
    let stored = services
        .store()
        .provider_secret(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(services.secrets.decrypt(&stored).unwrap(), "rotated");
    let r = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { deleteSsoProvider(input: {id: $id}) { deletedId } }",
            json!({ "id": saml_id }),
        )
        .await;
    assert_eq!(r["data"]["deleteSsoProvider"]["deletedId"], saml_id, "{r}");
}

#[tokio::test]
async fn bad_provider_settings_are_refused_with_the_field_named() {
    let app = app_with_key().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let cases = [
        json!({ "organizationId": org, "name": "Both", "oidc": { "issuerUrl": "https://a.example.com", "clientId": "c", "clientSecret": "s" }, "saml": { "idpMetadataUrl": "https://a.example.com/m" } }),
        json!({ "organizationId": org, "name": "Neither" }),
        json!({ "organizationId": org, "name": "Bad URL", "oidc": { "issuerUrl": "ftp://x", "clientId": "c", "clientSecret": "s" } }),
        json!({ "organizationId": org, "name": "No secret", "oidc": { "issuerUrl": "https://a.example.com", "clientId": "c" } }),
        json!({ "organizationId": org, "name": "No openid", "oidc": { "issuerUrl": "https://a.example.com", "clientId": "c", "clientSecret": "s", "scopes": ["email"] } }),
        json!({ "organizationId": org, "name": "No metadata", "saml": { "idpEntityId": "urn:x" } }),
    ];
    for input in cases {
        let r = app.gql(Some(&admin), CREATE, json!({ "i": input })).await;
        assert_error(&r, "BAD_USER_INPUT");
    }
    // Without a deployment key, a secret cannot be stored.
    let keyless = TestApp::start().await;
    let admin = keyless.sign_up("admin@example.com").await;
    let org = keyless.create_org(&admin, "acme").await;
    let r = keyless
        .gql(Some(&admin), CREATE, json!({ "i": oidc_input(&org) }))
        .await;
    assert_error(&r, "BAD_USER_INPUT");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("IAM_SECRET_KEY"),
        "{r}"
    );
}

#[tokio::test]
async fn mappings_need_what_granting_needs_and_only_sso_managers_configure() {
    let app = app_with_key().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let ws = app.create_workspace(&admin, &org, "ml").await;
    let r = app
        .gql(Some(&admin), CREATE, json!({ "i": oidc_input(&org) }))
        .await;
    let provider = data_str(&r, &["createSsoProvider", "id"]);
    let add = "mutation($p: ID!, $g: String!, $r: ID!, $n: ID!) { addSsoGroupMapping(input: {providerId: $p, group: $g, roleId: $r, nodeId: $n}) { id group roleId nodeId } }";
    let r = app
        .gql(
            Some(&admin),
            add,
            json!({ "p": provider, "g": "ml-engineers", "r": DEVELOPER, "n": ws }),
        )
        .await;
    assert_eq!(
        r["data"]["addSsoGroupMapping"]["group"], "ml-engineers",
        "{r}"
    );
    let mapping = data_str(&r, &["addSsoGroupMapping", "id"]);

    // An SSO manager who is not an Admin cannot map a group to Admin.
    let r = app
        .gql(Some(&admin), "mutation($o: ID!) { createRole(input: {organizationId: $o, name: \"SSO manager\", policies: [{effect: ALLOW, permission: \"sso:*:manage\"}, {effect: ALLOW, permission: \"workspace:*:read\"}]}) { role { id } } }", json!({ "o": org }))
        .await;
    let manager_role = data_str(&r, &["createRole", "role", "id"]);
    let manager = app.sign_up("manager@example.com").await;
    let manager_id = app
        .join(&admin, &org, "manager@example.com", &manager)
        .await;
    app.grant(&admin, &manager_id, &manager_role, &org).await;
    let r = app
        .gql(
            Some(&manager),
            add,
            json!({ "p": provider, "g": "admins", "r": ADMIN, "n": org }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");
    // A viewer cannot see or change providers.
    let viewer = app.sign_up("viewer@example.com").await;
    let viewer_id = app.join(&admin, &org, "viewer@example.com", &viewer).await;
    app.grant(&admin, &viewer_id, VIEWER, &org).await;
    let r = app
        .gql(
            Some(&viewer),
            "query($o: ID!) { organization(id: $o) { ssoProviders { id } } }",
            json!({ "o": org }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");
    let r = app
        .gql(
            Some(&viewer),
            add,
            json!({ "p": provider, "g": "x", "r": VIEWER, "n": org }),
        )
        .await;
    assert_error(&r, "FORBIDDEN");

    let r = app
        .gql(Some(&admin), "query($o: ID!) { organization(id: $o) { ssoProviders { groupMappings { id group roleId nodeId } } } }", json!({ "o": org }))
        .await;
    assert_eq!(
        r["data"]["organization"]["ssoProviders"][0]["groupMappings"],
        json!([{ "id": mapping, "group": "ml-engineers", "roleId": DEVELOPER, "nodeId": ws }]),
        "{r}"
    );
    let r = app
        .gql(Some(&admin), "mutation($p: ID!, $id: ID!) { removeSsoGroupMapping(input: {providerId: $p, id: $id}) { deletedId } }", json!({ "p": provider, "id": mapping }))
        .await;
    assert_eq!(
        r["data"]["removeSsoGroupMapping"]["deletedId"], mapping,
        "{r}"
    );
    let actions = app.audit_actions().await;
    for a in [
        "sso.provider_create",
        "sso.mapping_add",
        "sso.mapping_remove",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} missing: {actions:?}");
    }
}

#[tokio::test]
async fn enforced_sso_blocks_password_sign_in_except_for_admins() {
    let app = app_with_key().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let bob = app.sign_up("bob@example.com").await;
    app.join(&admin, &org, "bob@example.com", &bob).await;
    let enforce = "mutation($o: ID!, $e: Boolean!) { setEnforceSso(input: {organizationId: $o, enforce: $e}) { enforceSso } }";
    // Not before a provider is enabled.
    let r = app
        .gql(Some(&admin), enforce, json!({ "o": org, "e": true }))
        .await;
    assert_error(&r, "CONFLICT");
    let mut input = oidc_input(&org);
    input["enabled"] = json!(true);
    app.gql(Some(&admin), CREATE, json!({ "i": input })).await;
    let r = app
        .gql(Some(&admin), enforce, json!({ "o": org, "e": true }))
        .await;
    assert_eq!(r["data"]["setEnforceSso"]["enforceSso"], true, "{r}");

    let sign_in = |email: &'static str| {
        app.gql(None, "mutation($e: String!, $p: String!) { signIn(input: {email: $e, password: $p}) { token } }", json!({ "e": email, "p": PASSWORD }))
    };
    let r = sign_in("bob@example.com").await;
    assert_error(&r, "FORBIDDEN");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("single sign-on"),
        "{r}"
    );
    // The break-glass path: the organization's Admin still signs in with a password.
    let r = sign_in("admin@example.com").await;
    assert!(r["data"]["signIn"]["token"].is_string(), "{r}");
    // Turned off again, Bob signs in.
    app.gql(Some(&admin), enforce, json!({ "o": org, "e": false }))
        .await;
    let r = sign_in("bob@example.com").await;
    assert!(r["data"]["signIn"]["token"].is_string(), "{r}");
    let actions = app.audit_actions().await;
    assert_eq!(
        actions.iter().filter(|a| *a == "sso.enforce").count(),
        2,
        "{actions:?}"
    );
}

#[tokio::test]
async fn testing_a_connection_says_what_is_wrong() {
    let app = app_with_key().await;
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    // Nothing listens on port 9 of loopback.
    let input = json!({ "organizationId": org, "name": "Down", "oidc": {
        "issuerUrl": "http://127.0.0.1:9", "clientId": "c", "clientSecret": "s" } });
    let r = app.gql(Some(&admin), CREATE, json!({ "i": input })).await;
    let id = data_str(&r, &["createSsoProvider", "id"]);
    let r = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { testSsoConnection(input: {id: $id}) { ok message } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(r["data"]["testSsoConnection"]["ok"], false, "{r}");
    let message = r["data"]["testSsoConnection"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("127.0.0.1:9"),
        "names what it tried: {message}"
    );
}
