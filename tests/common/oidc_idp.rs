//! A real OpenID Provider for the tests: node-oidc-provider (certified), run by
//! `tests/idp/oidc/provider.mjs` on an ephemeral port; it installs its npm packages when they
//! are missing. [`Browser`] follows redirects by hand; [`Sso`] is the gateway with SSO
//! configured, the IdP and an organization.
use super::TestApp;
use iam_gateway::domain::Actor;
use iam_gateway::sso::{OidcSettings, Provider, ProviderSettings};
use iam_gateway::store::NewProvider;
use openidconnect::url::{Url, form_urlencoded};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

/// 32 bytes in base64: the gateway's key for secrets at rest.
pub const SECRET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const CLIENT_ID: &str = "iam-gateway-test";
pub const CLIENT_SECRET: &str = "a-client-secret-of-the-test-idp";

pub fn idp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/idp/oidc")
}

/// The OpenID Provider; killed when dropped.
pub struct Idp {
    pub child: Child,
    // Held open: the provider exits when it closes.
    _stdin: ChildStdin,
    pub issuer: String,
    pub http: reqwest::Client,
}

impl Idp {
    /// Starts the provider with one client whose redirect URI is `redirect_uri` and `accounts`
    /// (`{"<id>": {"email", "name", "groups"}}`). With `conform`, the profile, email and groups
    /// claims are only at the userinfo endpoint, not in the ID token.
    pub fn start(redirect_uri: &str, accounts: Value, conform: bool) -> Self {
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
    pub async fn set_account(&self, id: &str, account: Value) {
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
pub struct Browser {
    pub http: reqwest::Client,
    pub jar: HashMap<String, HashMap<String, String>>,
}

/// One answer: status, absolute `Location` (if any) and body.
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Browser {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            jar: HashMap::new(),
        }
    }

    pub fn site(url: &Url) -> String {
        format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(0)
        )
    }

    pub async fn get(&mut self, url: &str) -> Answer {
        self.send(url, None).await
    }

    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Answer {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send(url, Some(body)).await
    }

    pub async fn send(&mut self, url: &str, form: Option<String>) -> Answer {
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
pub struct Sso {
    pub app: TestApp,
    pub idp: Idp,
    pub admin: String,
    pub org: String,
    pub landing: String,
}

impl Sso {
    pub async fn start(accounts: Value) -> Self {
        Self::start_with(accounts, false).await
    }

    pub async fn start_with(accounts: Value, conform: bool) -> Self {
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

    pub fn settings(&self) -> OidcSettings {
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
    pub async fn provider(
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

    pub async fn provider_with(
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
    pub async fn map_group(&self, provider: &Provider, group: &str, role: &str, node: &str) {
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

    pub fn login_url(&self, provider: &Provider) -> String {
        self.app.url(&format!(
            "/auth/oidc/{}/login?return_to=%2Fprojects%3Ftab%3D1",
            provider.id
        ))
    }

    /// Starts signing in with `provider` and signs in at the IdP as `account`: the URL the
    /// IdP sends the browser back to (the gateway's callback), not yet visited.
    pub async fn authorize(
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
    pub async fn callback(&self, browser: &mut Browser, url: &str) -> HashMap<String, String> {
        let answer = browser.get(url).await;
        self.landed(answer)
    }

    pub fn landed(&self, answer: Answer) -> HashMap<String, String> {
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
    pub async fn sign_in(&self, provider: &Provider, account: &str) -> HashMap<String, String> {
        let mut browser = Browser::new();
        let callback = self.authorize(&mut browser, provider, account).await;
        self.callback(&mut browser, &callback).await
    }

    /// A sign-in that must succeed; the session token.
    pub async fn signed_in(&self, provider: &Provider, account: &str) -> String {
        let landed = self.sign_in(provider, account).await;
        assert!(!landed.contains_key("error"), "sign-in failed: {landed:?}");
        landed
            .get("token")
            .unwrap_or_else(|| panic!("no token: {landed:?}"))
            .clone()
    }

    /// The (role, node, source) bindings of `user` in the organization, sorted.
    pub async fn bindings(&self, user: &str) -> Vec<(String, String, String)> {
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

pub fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(text[from..from + len].replace("&amp;", "&"))
}
