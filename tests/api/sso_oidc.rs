//! OIDC single sign-on against a real OpenID Provider: node-oidc-provider (certified), run by
//! `tests/idp/oidc/provider.mjs` on an ephemeral port. The tests install its npm packages
//! themselves when they are missing, like the WebSocket client's.
//!
//! A test plays the browser: it follows the redirects by hand (the cookies of the IdP in a jar
//! of its own), fills the IdP's development login and consent forms, and reads the outcome
//! from the fragment of the gateway's last redirect.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use iam_gateway::domain::Actor;
use iam_gateway::sso::{OidcSettings, Provider, ProviderSettings, SamlSettings};
use iam_gateway::store::{NewProvider, ProviderChange};
use openidconnect::url::{Url, form_urlencoded};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{ADMIN, DEVELOPER, OPERATOR, TestApp, VIEWER, data_str};

/// 32 bytes in base64: the gateway's key for secrets at rest.
const SECRET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const CLIENT_ID: &str = "iam-gateway-test";
pub(crate) const CLIENT_SECRET: &str = "a-client-secret-of-the-test-idp";

fn idp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/idp/oidc")
}

/// The OpenID Provider; killed when dropped.
struct Idp {
    child: Child,
    // Held open: the provider exits when it closes.
    _stdin: ChildStdin,
    issuer: String,
    http: reqwest::Client,
}

impl Idp {
    /// Starts the provider with one client whose redirect URI is `redirect_uri` and `accounts`
    /// (`{"<id>": {"email", "name", "groups"}}`). With `conform`, the profile, email and groups
    /// claims are only at the userinfo endpoint, not in the ID token.
    fn start(redirect_uri: &str, accounts: Value, conform: bool) -> Self {
        crate::common::peers::npm_ci("tests/idp/oidc");
        let options = json!({
            "clientId": CLIENT_ID,
            "clientSecret": CLIENT_SECRET,
            "redirectUri": redirect_uri,
            "accounts": accounts,
            "conformIdTokenClaims": conform,
        });
        let mut child = Command::new("node")
            .arg(idp_dir().join("provider.mjs"))
            .arg(options.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start node (node 20 must be installed)");
        let stdin = child.stdin.take().unwrap();
        // Its errors are worth seeing; its warnings about development settings are not.
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !line.starts_with("oidc-provider WARNING") {
                    eprintln!("{line}");
                }
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads on after the first line: the provider logs to stdout too, and must not
        // find the pipe closed.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the IdP printed its port");
        let started: Value = serde_json::from_str(&line).expect("the IdP prints JSON");
        Self {
            child,
            _stdin: stdin,
            issuer: started["issuer"].as_str().unwrap().to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Creates or replaces an account at the IdP.
    async fn set_account(&self, id: &str, account: Value) {
        let r = self
            .http
            .put(format!("{}/__test/accounts/{id}", self.issuer))
            .header("content-type", "application/json")
            .body(account.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "the IdP took the account");
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser, as far as the tests need one: no automatic redirects, and the cookies each site
/// sets sent back to it.
pub(crate) struct Browser {
    http: reqwest::Client,
    jar: HashMap<String, HashMap<String, String>>,
}

/// One answer: status, absolute `Location` (if any) and body.
pub(crate) struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Browser {
    pub(crate) fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            jar: HashMap::new(),
        }
    }

    fn site(url: &Url) -> String {
        format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(0)
        )
    }

    pub(crate) async fn get(&mut self, url: &str) -> Answer {
        self.send(url, None).await
    }

    async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Answer {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send(url, Some(body)).await
    }

    async fn send(&mut self, url: &str, form: Option<String>) -> Answer {
        let parsed = Url::parse(url).unwrap_or_else(|e| panic!("not a URL `{url}`: {e}"));
        let site = Self::site(&parsed);
        let mut request = match form {
            Some(body) => self
                .http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
            None => self.http.get(url),
        };
        if let Some(cookies) = self.jar.get(&site).filter(|c| !c.is_empty()) {
            let header = cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header("cookie", header);
        }
        let response = request.send().await.unwrap();
        let jar = self.jar.entry(site).or_default();
        for set in response.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let mut parts = set.split(';');
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let expired = parts.any(|p| {
                let p = p.trim().to_ascii_lowercase();
                p == "max-age=0" || p.starts_with("expires=thu, 01 jan 1970")
            });
            if expired || value.is_empty() {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|l| parsed.join(l.to_str().unwrap()).unwrap().to_string());
        let body = response.text().await.unwrap();
        Answer {
            status,
            location,
            body,
        }
    }
}

/// The gateway with SSO configured (its key, its own public URL, a landing page), an IdP
/// whose client redirects to it, and an organization with its admin.
pub(crate) struct Sso {
    pub(crate) app: TestApp,
    idp: Idp,
    admin: String,
    org: String,
    landing: String,
}

impl Sso {
    pub(crate) async fn start(accounts: Value) -> Self {
        Self::start_with(accounts, false).await
    }

    async fn start_with(accounts: Value, conform: bool) -> Self {
        let app = TestApp::start_bound(|c, addr| {
            c.secret_key = Some(SECRET_KEY.to_owned());
            c.public_url = format!("http://{addr}");
            c.sso_redirect_url = Some(format!("http://{addr}/signed-in"));
        })
        .await;
        let idp = Idp::start(&app.url("/auth/oidc/callback"), accounts, conform);
        let admin = app.sign_up("admin@example.com").await;
        let org = app.create_org(&admin, "acme").await;
        let landing = app.url("/signed-in");
        Self {
            app,
            idp,
            admin,
            org,
            landing,
        }
    }

    fn settings(&self) -> OidcSettings {
        OidcSettings {
            issuer_url: self.idp.issuer.clone(),
            client_id: CLIENT_ID.to_owned(),
            scopes: ["openid", "profile", "email", "groups"]
                .map(str::to_owned)
                .to_vec(),
            groups_claim: "groups".to_owned(),
        }
    }

    /// An OIDC provider of the organization, created directly in the store.
    pub(crate) async fn provider(
        &self,
        secret: &str,
        enabled: bool,
        default_role: Option<&str>,
    ) -> Provider {
        self.provider_with(
            ProviderSettings::Oidc(self.settings()),
            secret,
            enabled,
            default_role,
        )
        .await
    }

    async fn provider_with(
        &self,
        settings: ProviderSettings,
        secret: &str,
        enabled: bool,
        default_role: Option<&str>,
    ) -> Provider {
        let services = &self.app.state.services;
        services
            .store()
            .create_provider(
                NewProvider {
                    organization_id: self.org.parse().unwrap(),
                    name: "Test IdP".to_owned(),
                    enabled,
                    settings,
                    secret_ciphertext: Some(services.secrets.encrypt(secret).unwrap()),
                    default_role_id: default_role.map(|r| r.parse().unwrap()),
                    jit_domains: None,
                    allow_idp_initiated: false,
                },
                &Actor::default(),
            )
            .await
            .unwrap()
    }

    /// Maps IdP `group` to `role` at node `node`.
    async fn map_group(&self, provider: &Provider, group: &str, role: &str, node: &str) {
        let store = &self.app.state.services.store();
        let node = store.node(node.parse().unwrap()).await.unwrap().unwrap();
        store
            .add_group_mapping(
                provider,
                group,
                role.parse().unwrap(),
                &node,
                &Actor::default(),
            )
            .await
            .unwrap();
    }

    fn login_url(&self, provider: &Provider) -> String {
        self.app.url(&format!(
            "/auth/oidc/{}/login?return_to=%2Fprojects%3Ftab%3D1",
            provider.id
        ))
    }

    /// Starts signing in with `provider` and signs in at the IdP as `account`: the URL the
    /// IdP sends the browser back to (the gateway's callback), not yet visited.
    pub(crate) async fn authorize(
        &self,
        browser: &mut Browser,
        provider: &Provider,
        account: &str,
    ) -> String {
        let start = browser.get(&self.login_url(provider)).await;
        assert_eq!(
            start.status, 303,
            "login redirects to the IdP: {}",
            start.body
        );
        let mut next = start.location.unwrap();
        assert!(
            next.starts_with(&self.idp.issuer),
            "login sends the browser to the IdP, not to {next}"
        );
        let callback = self.app.url("/auth/oidc/callback");
        for _ in 0..20 {
            if next.starts_with(&callback) {
                return next;
            }
            assert!(
                next.starts_with(&self.idp.issuer),
                "left the IdP for {next}"
            );
            let page = browser.get(&next).await;
            if let Some(location) = page.location {
                next = location;
                continue;
            }
            assert_eq!(page.status, 200, "the IdP answered: {}", page.body);
            let action = between(&page.body, "action=\"", "\"")
                .unwrap_or_else(|| panic!("an IdP page without a form: {}", page.body));
            let prompt = between(&page.body, "name=\"prompt\" value=\"", "\"").unwrap();
            let form: Vec<(&str, &str)> = match prompt.as_str() {
                "login" => vec![("prompt", "login"), ("login", account), ("password", "any")],
                "consent" => vec![("prompt", "consent")],
                other => panic!("unexpected IdP prompt {other}"),
            };
            let submitted = browser.post_form(&action, &form).await;
            next = submitted
                .location
                .unwrap_or_else(|| panic!("the IdP form did not redirect: {}", submitted.body));
        }
        panic!("the IdP never sent the browser back");
    }

    /// Visits the callback; the landing page's fragment, as pairs.
    pub(crate) async fn callback(
        &self,
        browser: &mut Browser,
        url: &str,
    ) -> HashMap<String, String> {
        let answer = browser.get(url).await;
        self.landed(answer)
    }

    fn landed(&self, answer: Answer) -> HashMap<String, String> {
        assert_eq!(answer.status, 303, "the gateway redirects: {}", answer.body);
        let location = answer.location.unwrap();
        let (base, fragment) = location
            .split_once('#')
            .unwrap_or_else(|| panic!("no fragment in {location}"));
        assert_eq!(
            base, self.landing,
            "the browser lands on the configured page"
        );
        form_urlencoded::parse(fragment.as_bytes())
            .into_owned()
            .collect()
    }

    /// A whole sign-in as `account`; the landing fragment.
    async fn sign_in(&self, provider: &Provider, account: &str) -> HashMap<String, String> {
        let mut browser = Browser::new();
        let callback = self.authorize(&mut browser, provider, account).await;
        self.callback(&mut browser, &callback).await
    }

    /// A sign-in that must succeed; the session token.
    async fn signed_in(&self, provider: &Provider, account: &str) -> String {
        let landed = self.sign_in(provider, account).await;
        assert!(!landed.contains_key("error"), "sign-in failed: {landed:?}");
        landed
            .get("token")
            .unwrap_or_else(|| panic!("no token: {landed:?}"))
            .clone()
    }

    /// The (role, node, source) bindings of `user` in the organization, sorted.
    async fn bindings(&self, user: &str) -> Vec<(String, String, String)> {
        let r = self
            .app
            .gql(
                Some(&self.admin),
                "query($o: ID!, $p: ID!) { roleBindings(organizationId: $o, principalId: $p) { roleId nodeId source } }",
                json!({ "o": self.org, "p": user }),
            )
            .await;
        let mut out: Vec<(String, String, String)> = r["data"]["roleBindings"]
            .as_array()
            .unwrap_or_else(|| panic!("roleBindings failed: {r}"))
            .iter()
            .map(|b| {
                (
                    b["roleId"].as_str().unwrap().to_owned(),
                    b["nodeId"].as_str().unwrap().to_owned(),
                    b["source"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(text[from..from + len].replace("&amp;", "&"))
}

fn sorted(mut v: Vec<(String, String, String)>) -> Vec<(String, String, String)> {
    v.sort();
    v
}

fn binding(role: &str, node: &str, source: &str) -> (String, String, String) {
    (role.to_owned(), node.to_owned(), source.to_owned())
}

/// Replaces the query parameter `key` of `url` with `value`.
fn with_param(url: &str, key: &str, value: &str) -> String {
    let mut parsed = Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == key {
                (k, value.to_owned())
            } else {
                (k, v)
            }
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

fn param(url: &str, key: &str) -> String {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no `{key}` in {url}"))
}

#[tokio::test]
async fn full_login_creates_the_user_and_follows_groups_across_logins() {
    let sso = Sso::start(json!({
        "alice": { "email": "alice@example.com", "name": "Alice Liddell", "groups": ["engineering", "unmapped"] }
    }))
    .await;
    let ws = sso.app.create_workspace(&sso.admin, &sso.org, "prod").await;
    let provider = sso.provider(CLIENT_SECRET, true, Some(VIEWER)).await;
    sso.map_group(&provider, "engineering", DEVELOPER, &ws)
        .await;

    // The IdP is asked for PKCE (S256), a nonce, our scopes and our redirect URI.
    let mut browser = Browser::new();
    let to_idp = browser.get(&sso.login_url(&provider)).await;
    assert_eq!(to_idp.status, 303);
    let authorize = to_idp.location.unwrap();
    assert_eq!(param(&authorize, "code_challenge_method"), "S256");
    assert_eq!(param(&authorize, "client_id"), CLIENT_ID);
    assert_eq!(param(&authorize, "response_type"), "code");
    assert_eq!(
        param(&authorize, "redirect_uri"),
        sso.app.url("/auth/oidc/callback")
    );
    assert_eq!(param(&authorize, "scope"), "openid profile email groups");
    assert!(!param(&authorize, "nonce").is_empty());
    assert!(!param(&authorize, "state").is_empty());

    // First sign-in: the account is created just in time, joins, gets the mapped role.
    let landed = sso.sign_in(&provider, "alice").await;
    assert!(!landed.contains_key("error"), "sign-in failed: {landed:?}");
    let token = landed["token"].clone();
    assert_eq!(landed["return_to"], "/projects?tab=1");
    let expires = chrono::DateTime::parse_from_rfc3339(&landed["expires_at"]).unwrap();
    assert!(expires > chrono::Utc::now());
    let me = sso
        .app
        .gql(
            Some(&token),
            "{ me { id email name organizations { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(me["data"]["me"]["email"], "alice@example.com", "{me}");
    assert_eq!(me["data"]["me"]["name"], "Alice Liddell");
    assert_eq!(me["data"]["me"]["organizations"][0]["id"], sso.org.as_str());
    let alice = data_str(&me, &["me", "id"]);
    assert_eq!(
        sso.bindings(&alice).await,
        vec![binding(DEVELOPER, &ws, "sso")],
        "the mapped group's role, and no default role (a group mapped)"
    );
    assert!(
        sso.app
            .audit_actions()
            .await
            .contains(&"sso.sync".to_owned())
    );

    // An admin grants a role by hand; SSO never touches it.
    sso.app.grant(&sso.admin, &alice, OPERATOR, &sso.org).await;

    // Second sign-in, no longer in the group: the SSO binding goes, the default role comes,
    // the binding made by hand stays. Same account.
    sso.idp
        .set_account("alice", json!({ "email": "alice@example.com", "name": "Alice Liddell", "groups": ["unmapped"] }))
        .await;
    let token2 = sso.signed_in(&provider, "alice").await;
    assert_ne!(token, token2, "a new session");
    assert_eq!(sso.app.user_id(&token2).await, alice, "the same account");
    assert_eq!(
        sso.bindings(&alice).await,
        sorted(vec![
            binding(OPERATOR, &sso.org, "manual"),
            binding(VIEWER, &sso.org, "sso"),
        ])
    );

    // Back in the group: the mapped role again, and the default role gone.
    sso.idp
        .set_account(
            "alice",
            json!({ "email": "alice@example.com", "groups": ["engineering"] }),
        )
        .await;
    sso.signed_in(&provider, "alice").await;
    assert_eq!(
        sso.bindings(&alice).await,
        sorted(vec![
            binding(DEVELOPER, &ws, "sso"),
            binding(OPERATOR, &sso.org, "manual"),
        ])
    );
    // Both sessions still work.
    for t in [&token, &token2] {
        let r = sso.app.gql(Some(t), "{ me { email } }", json!({})).await;
        assert_eq!(r["data"]["me"]["email"], "alice@example.com", "{r}");
    }
}

#[tokio::test]
async fn default_role_when_no_group_maps_and_groups_from_userinfo() {
    // With conforming ID tokens the IdP puts email, name and groups only at userinfo.
    let sso = Sso::start_with(
        json!({
            "bob": { "email": "bob@example.com", "name": "Bob", "groups": ["ops"] },
            "carol": { "email": "carol@example.com", "groups": ["nothing-mapped"] },
        }),
        true,
    )
    .await;
    let provider = sso.provider(CLIENT_SECRET, true, Some(VIEWER)).await;
    sso.map_group(&provider, "ops", ADMIN, &sso.org).await;

    let bob = sso.signed_in(&provider, "bob").await;
    let me = sso
        .app
        .gql(Some(&bob), "{ me { id email name } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["email"], "bob@example.com", "{me}");
    assert_eq!(me["data"]["me"]["name"], "Bob");
    let bob_id = data_str(&me, &["me", "id"]);
    assert_eq!(
        sso.bindings(&bob_id).await,
        vec![binding(ADMIN, &sso.org, "sso")]
    );

    let carol = sso.signed_in(&provider, "carol").await;
    let carol_id = sso.app.user_id(&carol).await;
    assert_eq!(
        sso.bindings(&carol_id).await,
        vec![binding(VIEWER, &sso.org, "sso")],
        "no group maps: the provider's default role"
    );
}

#[tokio::test]
async fn state_mismatch_and_replayed_callbacks_are_refused() {
    let sso = Sso::start(json!({ "dave": { "email": "dave@example.com", "groups": [] } })).await;
    let provider = sso.provider(CLIENT_SECRET, true, None).await;
    let mut browser = Browser::new();
    let callback = sso.authorize(&mut browser, &provider, "dave").await;

    // A state the gateway never issued.
    let forged = with_param(&callback, "state", "not-a-state-we-issued");
    let landed = sso.callback(&mut browser, &forged).await;
    assert!(!landed.contains_key("token"));
    assert!(landed["error"].contains("state"), "{landed:?}");
    // No state at all.
    let landed = sso
        .callback(
            &mut browser,
            &format!("{}?code=abc", sso.app.url("/auth/oidc/callback")),
        )
        .await;
    assert!(landed["error"].contains("state"), "{landed:?}");

    // The real one works once...
    let landed = sso.callback(&mut browser, &callback).await;
    assert!(landed.contains_key("token"), "{landed:?}");
    // ...and a replay of the same callback is refused.
    let replay = sso.callback(&mut browser, &callback).await;
    assert!(!replay.contains_key("token"));
    assert!(replay["error"].contains("state"), "{replay:?}");
}

#[tokio::test]
async fn a_nonce_that_does_not_match_is_refused() {
    let sso = Sso::start(json!({ "erin": { "email": "erin@example.com" } })).await;
    let provider = sso.provider(CLIENT_SECRET, true, None).await;
    let mut browser = Browser::new();
    let callback = sso.authorize(&mut browser, &provider, "erin").await;
    // The ID token carries the nonce sent to the IdP; the pending sign-in now expects another
    // (as if the code had been obtained for somebody else's sign-in).
    let state = param(&callback, "state");
    sso.app
        .state
        .services
        .store()
        .execute_unprepared(&format!(
            "UPDATE sso_requests SET nonce = 'another-nonce' WHERE id = '{state}'"
        ))
        .await
        .unwrap();
    let landed = sso.callback(&mut browser, &callback).await;
    assert!(!landed.contains_key("token"));
    assert!(landed["error"].contains("nonce"), "{landed:?}");
    let r = sso.app.gql(None, "{ me { id } }", json!({})).await;
    assert!(r["data"]["me"].is_null(), "nobody signed in: {r}");
}

#[tokio::test]
async fn unknown_disabled_and_non_oidc_providers_are_refused() {
    let sso = Sso::start(json!({ "frank": { "email": "frank@example.com" } })).await;
    let mut browser = Browser::new();

    let disabled = sso.provider(CLIENT_SECRET, false, None).await;
    let r = browser.get(&sso.login_url(&disabled)).await;
    assert_eq!(r.status, 404, "a disabled provider: {}", r.body);
    assert!(r.location.is_none());

    let r = browser
        .get(&sso.app.url(&format!("/auth/oidc/{}/login", Uuid::new_v4())))
        .await;
    assert_eq!(r.status, 404, "an unknown provider");
    let r = browser
        .get(&sso.app.url("/auth/oidc/not-an-id/login"))
        .await;
    assert_eq!(r.status, 404, "not a provider id");

    let saml = sso
        .provider_with(
            ProviderSettings::Saml(SamlSettings {
                idp_metadata_url: None,
                idp_metadata_xml: None,
                idp_entity_id: Some("https://idp.example.com".to_owned()),
                idp_sso_url: Some("https://idp.example.com/sso".to_owned()),
                idp_certificate: None,
                email_attribute: "email".to_owned(),
                name_attribute: "name".to_owned(),
                groups_attribute: "groups".to_owned(),
            }),
            "unused",
            true,
            None,
        )
        .await;
    let r = browser.get(&sso.login_url(&saml)).await;
    assert_eq!(r.status, 404, "a SAML provider has no OIDC login");

    // Turned off while a sign-in was under way: refused at the callback.
    let provider = sso.provider(CLIENT_SECRET, true, None).await;
    let callback = sso.authorize(&mut browser, &provider, "frank").await;
    sso.app
        .state
        .services
        .store()
        .update_provider(
            provider.id,
            ProviderChange {
                enabled: Some(false),
                ..ProviderChange::default()
            },
            &Actor::default(),
        )
        .await
        .unwrap();
    let landed = sso.callback(&mut browser, &callback).await;
    assert!(!landed.contains_key("token"));
    assert!(landed["error"].contains("turned off"), "{landed:?}");
}

#[tokio::test]
async fn a_wrong_client_secret_ends_in_a_clean_error() {
    let sso = Sso::start(json!({ "grace": { "email": "grace@example.com" } })).await;
    let provider = sso.provider("not-the-secret", true, None).await;
    let landed = sso.sign_in(&provider, "grace").await;
    assert!(!landed.contains_key("token"));
    let error = &landed["error"];
    assert!(error.contains("client id or secret"), "{landed:?}");
    assert!(
        !error.contains("invalid_client") && !error.contains("http://"),
        "plain words, no detail: {error}"
    );
}

#[tokio::test]
async fn the_idp_refusing_or_sending_no_email_ends_in_an_error() {
    let sso = Sso::start(json!({ "heidi": { "name": "Heidi", "groups": [] } })).await;
    let provider = sso.provider(CLIENT_SECRET, true, None).await;
    let landed = sso.sign_in(&provider, "heidi").await;
    assert!(!landed.contains_key("token"));
    assert!(landed["error"].contains("no email address"), "{landed:?}");

    // The IdP answers with an error (the user cancelled): the state is used up too.
    let mut browser = Browser::new();
    let start = browser.get(&sso.login_url(&provider)).await;
    let state = param(&start.location.unwrap(), "state");
    let cancelled = format!(
        "{}?error=access_denied&error_description=End-User+aborted+%3Cb%3Einteraction%3C%2Fb%3E&state={state}",
        sso.app.url("/auth/oidc/callback")
    );
    let landed = sso.callback(&mut browser, &cancelled).await;
    assert_eq!(
        landed["error"],
        "the sign-in was cancelled or refused at the identity provider"
    );
    let again = sso
        .callback(
            &mut browser,
            &with_param(&cancelled, "error", "server_error"),
        )
        .await;
    assert!(again["error"].contains("server_error"), "{again:?}");
}

#[tokio::test]
async fn test_connection_says_what_is_wrong() {
    let sso = Sso::start(json!({})).await;
    let services = &sso.app.state.services;
    let ok = iam_gateway::sso::oidc::test_connection(services, &sso.settings())
        .await
        .unwrap();
    assert!(ok.starts_with("OK"), "{ok}");
    assert!(ok.contains("userinfo"), "{ok}");

    let mut wrong = sso.settings();
    wrong.issuer_url = format!("{}/", sso.idp.issuer);
    let e = iam_gateway::sso::oidc::test_connection(services, &wrong)
        .await
        .unwrap_err();
    assert!(e.contains("names the issuer"), "{e}");

    // Not an issuer: nothing at its discovery address, or a web page there.
    wrong.issuer_url = sso.app.url("/healthz");
    let e = iam_gateway::sso::oidc::test_connection(services, &wrong)
        .await
        .unwrap_err();
    assert!(e.contains("HTTP 404"), "{e}");
    wrong.issuer_url = format!("{}/__test/html", sso.idp.issuer);
    let e = iam_gateway::sso::oidc::test_connection(services, &wrong)
        .await
        .unwrap_err();
    assert!(e.contains("did not answer JSON"), "{e}");

    // Nothing listens there (a port just bound and released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    wrong.issuer_url = format!("http://127.0.0.1:{port}");
    let e = iam_gateway::sso::oidc::test_connection(services, &wrong)
        .await
        .unwrap_err();
    assert!(e.contains("could not fetch"), "{e}");
    // A sign-in with such a provider lands on the error, in plain words.
    let dead = sso
        .provider_with(
            ProviderSettings::Oidc(wrong.clone()),
            CLIENT_SECRET,
            true,
            None,
        )
        .await;
    let landed = sso.landed(Browser::new().get(&sso.login_url(&dead)).await);
    assert!(
        landed["error"].contains("could not be reached") && !landed["error"].contains("127.0.0.1"),
        "{landed:?}"
    );

    wrong.issuer_url = "not a url".to_owned();
    let e = iam_gateway::sso::oidc::test_connection(services, &wrong)
        .await
        .unwrap_err();
    assert!(e.contains("is not a URL"), "{e}");
}
