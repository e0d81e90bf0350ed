//! Robustness (issue 12): random GraphQL documents, randomly mutated SAML responses and random
//! OIDC callbacks against the running server. Whatever comes in, the answer is never a 5xx, a
//! GraphQL answer is JSON with `data` or `errors` and never an INTERNAL error, and the server
//! still answers afterwards. At least 100 000 inputs in all (`IAM_ROBUSTNESS_SCALE` multiplies
//! the counts, e.g. 0.1 for a quick run).
//!
//! The inputs come from proptest: each case is a vector of random choices that a deterministic
//! builder turns into a request, so a failure shrinks to a small vector and is printed with the
//! request it made.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

use crate::common::oidc_idp::{CLIENT_SECRET, Sso};
use crate::common::saml_idp::{Fixture, Idp};
use crate::common::{TestApp, data_str};

/// How many inputs each test sends, before `IAM_ROBUSTNESS_SCALE`.
const GRAPHQL_CASES: u32 = 45_000;
const SAML_CASES: u32 = 20_000;
const OIDC_CASES: u32 = 35_000;

fn cases(base: u32) -> u32 {
    let scale: f64 = std::env::var("IAM_ROBUSTNESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((f64::from(base) * scale) as u32).max(1)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..RunnerConfig::default()
    })
}

/// A multi-thread runtime: the server runs on its workers while the property blocks on one
/// request at a time.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A client that does not follow redirects (the SSO routes answer 303).
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A stream of choices: each `pick(n)` takes the next one, modulo `n` (0 when used up).
struct Choices<'a> {
    values: &'a [u32],
    at: usize,
}

impl Choices<'_> {
    fn pick(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        let v = self.values.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        v as usize % n
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.pick(n) == 0
    }

    fn of<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.pick(items.len())]
    }
}

/// Strings that break naive code.
const NASTY: &[&str] = &[
    "",
    " ",
    "x",
    "acme",
    "acme/prod",
    "acme/prod/billing",
    "../../etc/passwd",
    "apps:*:read",
    "*:*:*",
    "apps:",
    ":::",
    "eve@example.com",
    "@",
    "a@b",
    "\u{0}",
    "\u{202e}moc.elpmaxe@eve",
    "😀😀😀",
    "'; DROP TABLE users; --",
    "<script>alert(1)</script>",
    "%00%ff",
    "iam_s_0000",
    "iam_i_guess",
    "iam_v_x",
    "9999-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "2030-01-01T00:00:00+14:00",
    "not a date",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
];

const INTS: &[i64] = &[
    0,
    1,
    -1,
    2,
    5,
    20,
    100,
    500,
    501,
    10_000,
    2_147_483_647,
    -2_147_483_648,
];

/// Fields the random walk leaves out for the signed-in caller: they end its own session or
/// check a password (argon2, slow on purpose); their validation is still reached through
/// mangled documents.
const SKIPPED: &[&str] = &[
    "signOut",
    "revokeOtherSessions",
    "changePassword",
    "signIn",
    "signUp",
    "signUpWithInvitation",
    "acceptInvitation",
    "resetPassword",
];

struct Schema {
    types: std::collections::HashMap<String, Value>,
    query: String,
    mutation: String,
}

const INTROSPECT: &str = r#"{
  __schema {
    queryType { name }
    mutationType { name }
    types {
      name kind
      fields { name args { name type { ...T } } type { ...T } }
      inputFields { name type { ...T } }
      enumValues { name }
      possibleTypes { name }
    }
  }
}
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }"#;

impl Schema {
    async fn read(app: &TestApp) -> Self {
        let r = app.gql(None, INTROSPECT, json!({})).await;
        let schema = &r["data"]["__schema"];
        let types = schema["types"]
            .as_array()
            .unwrap_or_else(|| panic!("introspection failed: {r}"))
            .iter()
            .map(|t| (t["name"].as_str().unwrap().to_owned(), t.clone()))
            .collect();
        Self {
            types,
            query: schema["queryType"]["name"].as_str().unwrap().to_owned(),
            mutation: schema["mutationType"]["name"].as_str().unwrap().to_owned(),
        }
    }

    fn named<'a>(&'a self, ty: &'a Value) -> &'a Value {
        match ty["kind"].as_str() {
            Some("NON_NULL" | "LIST") => self.named(&ty["ofType"]),
            _ => &self.types[ty["name"].as_str().unwrap()],
        }
    }
}

/// Builds one GraphQL request from choices: mostly schema-shaped (real fields, arguments of
/// the right or the wrong type, aliases, fragments, variables), sometimes mangled text.
struct DocBuilder<'a, 'c> {
    schema: &'a Schema,
    c: Choices<'c>,
    ids: &'a [String],
    variables: Map<String, Value>,
    declared: Vec<String>,
    fields: usize,
}

impl DocBuilder<'_, '_> {
    fn literal(&mut self, name: &str, ty: &Value, depth: usize) -> String {
        if self.c.one_in(12) {
            // The wrong type, or something odd.
            return self
                .c
                .of(&[
                    "null",
                    "\"\"",
                    "0",
                    "-1",
                    "1e400",
                    "true",
                    "[]",
                    "{}",
                    "\"x\"",
                    "ENUM_X",
                    "$undeclared",
                ])
                .to_string();
        }
        if self.c.one_in(10) && depth == 0 {
            // Through a variable, with a value that may not fit its declared type.
            let var = format!("v{}", self.declared.len());
            self.declared.push(format!("${var}: {}", type_text(ty)));
            let value = self.json_value(name, ty, depth);
            self.variables.insert(var.clone(), value);
            return format!("${var}");
        }
        match ty["kind"].as_str().unwrap_or_default() {
            "NON_NULL" => self.literal(name, &ty["ofType"], depth),
            "LIST" => {
                let n = self.c.pick(4);
                let items: Vec<String> = (0..n)
                    .map(|_| self.literal(name, &ty["ofType"], depth + 1))
                    .collect();
                format!("[{}]", items.join(", "))
            }
            "ENUM" => {
                let t = self.schema.named(ty);
                let values = t["enumValues"].as_array().unwrap();
                values[self.c.pick(values.len())]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }
            "INPUT_OBJECT" => {
                let t = self.schema.named(ty).clone();
                let mut parts = Vec::new();
                if depth < 4 {
                    for f in t["inputFields"].as_array().unwrap() {
                        let required = f["type"]["kind"] == "NON_NULL";
                        if required || self.c.one_in(2) {
                            let n = f["name"].as_str().unwrap();
                            parts.push(format!("{n}: {}", self.literal(n, &f["type"], depth + 1)));
                        }
                    }
                }
                format!("{{ {} }}", parts.join(", "))
            }
            _ => match ty["name"].as_str().unwrap_or_default() {
                "ID" => format!("{:?}", self.id()),
                "Int" => self.c.of(INTS).to_string(),
                "Boolean" => self.c.of(&["true", "false"]).to_string(),
                _ => format!("{:?}", self.string(name)),
            },
        }
    }

    fn json_value(&mut self, name: &str, ty: &Value, depth: usize) -> Value {
        match ty["kind"].as_str().unwrap_or_default() {
            "NON_NULL" => self.json_value(name, &ty["ofType"], depth),
            "LIST" => Value::Array(
                (0..self.c.pick(3))
                    .map(|_| self.json_value(name, &ty["ofType"], depth + 1))
                    .collect(),
            ),
            "INPUT_OBJECT" if depth < 4 => {
                let t = self.schema.named(ty).clone();
                let mut obj = Map::new();
                for f in t["inputFields"].as_array().unwrap() {
                    if f["type"]["kind"] == "NON_NULL" || self.c.one_in(2) {
                        let n = f["name"].as_str().unwrap();
                        obj.insert(n.to_owned(), self.json_value(n, &f["type"], depth + 1));
                    }
                }
                Value::Object(obj)
            }
            _ => match self.c.pick(8) {
                0 => json!(self.c.of(INTS)),
                1 => json!(null),
                2 => json!(true),
                3 => json!({ "nested": [1, "x"] }),
                _ => json!(if ty["name"] == "ID" {
                    self.id()
                } else {
                    self.string(name)
                }),
            },
        }
    }

    fn id(&mut self) -> String {
        if self.c.one_in(6) {
            return self.c.of(NASTY).to_string();
        }
        self.ids[self.c.pick(self.ids.len())].clone()
    }

    fn string(&mut self, name: &str) -> String {
        let plausible = match name {
            "slug" => "acme",
            "email" => "victim@example.com",
            "path" => "acme/prod",
            "permission" => "apps:*:read",
            "name" => "Name",
            "domain" => "example.com",
            "issuerUrl" | "metadataUrl" | "ssoUrl" => "http://127.0.0.1:9/",
            _ => "x",
        };
        if self.c.one_in(2) {
            plausible.to_owned()
        } else if self.c.one_in(20) {
            "y".repeat(self.c.of(&[256usize, 4096, 70_000]).to_owned())
        } else {
            self.c.of(NASTY).to_string()
        }
    }

    /// A selection of `ty`'s fields, or nothing for a leaf.
    fn selection(&mut self, ty: &Value, depth: usize) -> String {
        let t = self.schema.named(ty).clone();
        match t["kind"].as_str().unwrap_or_default() {
            "OBJECT" | "INTERFACE" | "UNION" => {}
            _ => return String::new(),
        }
        let fields = t["fields"].as_array().cloned().unwrap_or_default();
        if fields.is_empty() || depth > 7 || self.fields > 60 {
            let spread = t["possibleTypes"]
                .as_array()
                .and_then(|p| p.first())
                .and_then(|p| p["name"].as_str())
                .map(|name| format!(" ... on {name} {{ __typename }}"))
                .unwrap_or_default();
            return format!("{{ __typename{spread} }}");
        }
        let n = 1 + self.c.pick(3);
        let mut parts = Vec::new();
        for i in 0..n {
            let f = &fields[self.c.pick(fields.len())];
            parts.push(self.field(f, depth, i));
        }
        if self.c.one_in(8) {
            parts.push("__typename".to_owned());
        }
        format!("{{ {} }}", parts.join(" "))
    }

    fn field(&mut self, f: &Value, depth: usize, i: usize) -> String {
        self.fields += 1;
        let name = f["name"].as_str().unwrap();
        let alias = if self.c.one_in(5) {
            format!("a{depth}_{i}: ")
        } else {
            String::new()
        };
        let mut args = Vec::new();
        for a in f["args"].as_array().unwrap() {
            let required = a["type"]["kind"] == "NON_NULL";
            if (required && !self.c.one_in(20)) || self.c.one_in(3) {
                let n = a["name"].as_str().unwrap();
                args.push(format!("{n}: {}", self.literal(n, &a["type"], 0)));
            }
        }
        if self.c.one_in(30) {
            args.push("notAnArgument: 1".to_owned());
        }
        let args = if args.is_empty() {
            String::new()
        } else {
            format!("({})", args.join(", "))
        };
        let selection = self.selection(&f["type"], depth + 1);
        format!("{alias}{name}{args} {selection}")
    }

    /// The request body.
    fn body(mut self, signed_in: bool) -> Vec<u8> {
        if self.c.one_in(40) {
            // Not even JSON, or JSON of the wrong shape.
            let junk: &[&[u8]] = &[
                b"",
                b"{",
                b"[]",
                b"null",
                b"{\"query\": 1}",
                b"{\"query\": \"{ me { id } }\", \"variables\": []}",
                b"{\"query\": \"{ me { id } }\", \"operationName\": 5}",
                b"\xff\xfe\x00",
                b"[{\"query\": \"{ __typename }\"}, {\"query\": \"{ __typename }\"}]",
            ];
            return self.c.of(junk).to_vec();
        }
        let mutation = self.c.one_in(2);
        let root = if mutation {
            &self.schema.mutation
        } else {
            &self.schema.query
        };
        let fields: Vec<Value> = self.schema.types[root]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| !(signed_in && SKIPPED.contains(&f["name"].as_str().unwrap())))
            .cloned()
            .collect();
        let n = 1 + self.c.pick(2);
        let mut parts = Vec::new();
        for i in 0..n {
            let f = fields[self.c.pick(fields.len())].clone();
            parts.push(self.field(&f, 0, i));
        }
        let body = parts.join(" ");
        let decl = if self.declared.is_empty() {
            String::new()
        } else {
            format!("({})", self.declared.join(", "))
        };
        let keyword = if mutation { "mutation" } else { "query" };
        let mut text = match self.c.pick(6) {
            0 => format!("{keyword} Op{decl} {{ ...F }} fragment F on {root} {{ {body} }}"),
            1 => format!("{keyword} A{decl} {{ {body} }} {keyword} B {{ __typename }}"),
            _ => format!("{keyword} Op{decl} {{ {body} }}"),
        };
        if self.c.one_in(5) {
            mangle(&mut self.c, &mut text);
        }
        let mut request = json!({ "query": text, "variables": self.variables });
        match self.c.pick(10) {
            0 => request["operationName"] = json!("B"),
            1 => request["operationName"] = json!("Nope"),
            2 => request["variables"] = json!("not an object"),
            _ => {}
        }
        serde_json::to_vec(&request).unwrap()
    }
}

/// Damages a text: cuts, inserted punctuation, repeats.
fn mangle(c: &mut Choices<'_>, text: &mut String) {
    for _ in 0..1 + c.pick(3) {
        let chars: Vec<char> = text.chars().collect();
        if chars.is_empty() {
            return;
        }
        let at = c.pick(chars.len());
        let len = 1 + c.pick(8);
        let end = (at + len).min(chars.len());
        let replaced: String = match c.pick(4) {
            0 => String::new(),
            1 => c
                .of(&[
                    "{",
                    "}",
                    "(",
                    ")",
                    "$",
                    ":",
                    "!",
                    "@skip(if: true)",
                    "...",
                    "\"",
                    "#",
                    "\\u0000",
                    "[",
                    "]",
                ])
                .to_string(),
            2 => chars[at..end]
                .iter()
                .collect::<String>()
                .repeat(1 + c.pick(4)),
            _ => "{".repeat(1 + c.pick(200)),
        };
        *text = chars[..at]
            .iter()
            .chain(replaced.chars().collect::<Vec<_>>().iter())
            .chain(chars[end..].iter())
            .collect();
    }
}

fn type_text(ty: &Value) -> String {
    match ty["kind"].as_str().unwrap_or_default() {
        "NON_NULL" => format!("{}!", type_text(&ty["ofType"])),
        "LIST" => format!("[{}]", type_text(&ty["ofType"])),
        _ => ty["name"].as_str().unwrap_or("String").to_owned(),
    }
}

/// What every answer must be: no 5xx; a GraphQL answer is JSON with `data` or `errors`, and no
/// error is INTERNAL.
fn judge(status: u16, body: &str, graphql: bool) -> Result<(), String> {
    if status >= 500 {
        return Err(format!("status {status}: {body}"));
    }
    if !graphql || status == 413 {
        return Ok(());
    }
    let value: Value = serde_json::from_str(body)
        .map_err(|e| format!("status {status}, not JSON ({e}): {body}"))?;
    if value.get("data").is_none() && value.get("errors").is_none() {
        return Err(format!("neither data nor errors: {body}"));
    }
    let internal = value["errors"]
        .as_array()
        .is_some_and(|errors| errors.iter().any(|e| e["extensions"]["code"] == "INTERNAL"));
    if internal {
        return Err(format!("an INTERNAL error: {body}"));
    }
    Ok(())
}

#[test]
fn random_graphql_documents_never_get_a_server_error() {
    let rt = runtime();
    let (app, schema, ids, token) = rt.block_on(async {
        let app = TestApp::start().await;
        let admin = app.sign_up("admin@example.com").await;
        let org = app.create_org(&admin, "acme").await;
        let ws = app.create_workspace(&admin, &org, "prod").await;
        let project = app.create_project(&admin, &ws, "billing").await;
        let member = app.sign_up("member@example.com").await;
        let member_id = app.join(&admin, &org, "member@example.com", &member).await;
        let role = app
            .gql(
                Some(&admin),
                r#"mutation($o: ID!) { createRole(input: { organizationId: $o, name: "Custom", policies: [{ effect: ALLOW, permission: "apps:*:read" }] }) { role { id } } }"#,
                json!({ "o": org }),
            )
            .await;
        let role = data_str(&role, &["createRole", "role", "id"]);
        let binding = app.grant(&admin, &member_id, &role, &ws).await;
        let schema = Schema::read(&app).await;
        let ids = vec![
            org,
            ws,
            project,
            member_id,
            app.user_id(&admin).await,
            role,
            binding,
            crate::common::ADMIN.to_owned(),
            uuid::Uuid::new_v4().to_string(),
        ];
        (app, schema, ids, admin)
    });
    let http = no_redirects();
    let url = app.url("/graphql");
    // How many documents ran to an answer with data and no error: the walk must reach the
    // resolvers, not only the parser.
    let answered = std::cell::Cell::new(0u32);
    let total = cases(GRAPHQL_CASES);
    let mut runner = runner(total);
    let result = runner.run(&vec(any::<u32>(), 4..160), |values| {
        let signed_in = values.first().is_some_and(|v| v % 3 != 0);
        let builder = DocBuilder {
            schema: &schema,
            c: Choices {
                values: &values[1..],
                at: 0,
            },
            ids: &ids,
            variables: Map::new(),
            declared: Vec::new(),
            fields: 0,
        };
        let body = builder.body(signed_in);
        let (status, text) = rt
            .block_on(async {
                let mut request = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                if signed_in {
                    request = request.bearer_auth(&token);
                }
                let response = request.send().await.map_err(|e| e.to_string())?;
                let status = response.status().as_u16();
                let text = response.text().await.map_err(|e| e.to_string())?;
                Ok::<_, String>((status, text))
            })
            .map_err(TestCaseError::fail)?;
        if text.starts_with("{\"data\":{") && !text.contains("\"errors\"") {
            answered.set(answered.get() + 1);
        }
        judge(status, &text, true).map_err(|why| {
            TestCaseError::fail(format!(
                "{why}\nrequest: {}",
                String::from_utf8_lossy(&body)
            ))
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(
        answered.get() >= total / 50,
        "only {} of {total} documents were answered without an error",
        answered.get()
    );
    rt.block_on(async {
        let r = app.gql(Some(&token), "{ me { email } }", json!({})).await;
        assert_eq!(r["data"]["me"]["email"], "admin@example.com", "{r}");
    });
}

#[test]
fn mutated_saml_responses_never_get_a_server_error() {
    let rt = runtime();
    let (fixture, provider, originals) = rt.block_on(async {
        let fixture = Fixture::new().await;
        let provider = fixture.provider().await;
        let sp_metadata = fixture.sp_metadata(&provider).await;
        let mut originals = Vec::new();
        for i in 0..4 {
            let to_idp = fixture.login(&provider, None).await;
            let email = format!("user{i}@example.com");
            let answer = Idp::new().respond(
                &sp_metadata,
                json!({
                    "request_url": to_idp.as_str(),
                    "name_id": email,
                    "attributes": { "email": [email], "displayName": ["Ada"], "groups": ["g"] },
                }),
            );
            let xml = base64::engine::general_purpose::STANDARD
                .decode(answer["saml_response"].as_str().unwrap())
                .unwrap();
            originals.push((xml, answer["relay_state"].as_str().map(str::to_owned)));
        }
        (fixture, provider, Arc::new(originals))
    });
    let http = no_redirects();
    let url = fixture.app.url(&format!("/auth/saml/{}/acs", provider.id));
    let mut runner = runner(cases(SAML_CASES));
    let result = runner.run(&vec(any::<u32>(), 2..40), |values| {
        let mut c = Choices {
            values: &values,
            at: 0,
        };
        let (xml, relay) = &originals[c.pick(originals.len())];
        let mut xml = xml.clone();
        for _ in 0..1 + c.pick(4) {
            if xml.is_empty() {
                break;
            }
            let at = c.pick(xml.len());
            match c.pick(6) {
                0 => xml[at] ^= 1 << c.pick(8),
                1 => {
                    let end = (at + 1 + c.pick(64)).min(xml.len());
                    xml.drain(at..end);
                }
                2 => {
                    let end = (at + 1 + c.pick(200)).min(xml.len());
                    let copy = xml[at..end].to_vec();
                    xml.splice(at..at, copy);
                }
                3 => {
                    let junk: &[&[u8]] = &[
                        b"<",
                        b">",
                        b"\"",
                        b"&",
                        b"<!--",
                        b"]]>",
                        b"<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>",
                        b"&e;",
                        b"\x00",
                        b"\xff",
                    ];
                    xml.splice(at..at, c.of(junk).iter().copied());
                }
                4 => xml.truncate(at),
                _ => {}
            }
        }
        let mut saml_response = base64::engine::general_purpose::STANDARD.encode(&xml);
        if c.one_in(10) {
            // Broken base64 too.
            saml_response.insert(c.pick(saml_response.len().max(1)), '!');
        }
        let mut form = vec![("SAMLResponse", saml_response)];
        match (c.pick(4), relay) {
            (0, _) => {}
            (1, _) => form.push(("RelayState", c.of(NASTY).to_string())),
            (_, Some(relay)) => form.push(("RelayState", relay.clone())),
            (_, None) => {}
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let (status, text) = rt
            .block_on(async {
                let response = http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = response.status().as_u16();
                Ok::<_, String>((status, response.text().await.map_err(|e| e.to_string())?))
            })
            .map_err(TestCaseError::fail)?;
        judge(status, &text, false).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(async {
        let r = fixture
            .app
            .http
            .get(fixture.app.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    });
}

#[test]
fn random_oidc_callbacks_never_get_a_server_error() {
    let rt = runtime();
    let (sso, states) = rt.block_on(async {
        let sso =
            Sso::start(json!({ "dave": { "email": "dave@example.com", "groups": [] } })).await;
        let provider = sso.provider(CLIENT_SECRET, true, None).await;
        // Real pending sign-ins, so that some callbacks reach the code exchange.
        let client = no_redirects();
        let mut states = Vec::new();
        for _ in 0..20 {
            let r = client
                .get(sso.app.url(&format!("/auth/oidc/{}/login", provider.id)))
                .send()
                .await
                .unwrap();
            let location = r.headers()["location"].to_str().unwrap().to_owned();
            let state = url::Url::parse(&location)
                .unwrap()
                .query_pairs()
                .find(|(k, _)| k == "state")
                .map(|(_, v)| v.into_owned())
                .unwrap();
            states.push(state);
        }
        (sso, states)
    });
    let http = no_redirects();
    let base = sso.app.url("/auth/oidc/callback");
    let mut runner = runner(cases(OIDC_CASES));
    let result = runner.run(&vec(any::<u32>(), 2..24), |values| {
        let mut c = Choices {
            values: &values,
            at: 0,
        };
        let mut pairs: Vec<(String, String)> = Vec::new();
        let state = if c.one_in(3) {
            states[c.pick(states.len())].clone()
        } else {
            c.of(NASTY).to_string()
        };
        for _ in 0..c.pick(6) {
            let key = c
                .of(&[
                    "state",
                    "code",
                    "error",
                    "error_description",
                    "iss",
                    "session_state",
                    "x",
                    "",
                ])
                .to_string();
            let value = match key.as_str() {
                "state" => state.clone(),
                "error" => c
                    .of(&["access_denied", "login_required", "server_error", "", "a b"])
                    .to_string(),
                _ => c.of(NASTY).to_string(),
            };
            pairs.push((key, value));
        }
        let mut query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        if c.one_in(8) {
            let tail: &[&str] = &["&state", "&&&", "%", "%zz", "&code=%00", "=x"];
            let extra: &&str = c.of(tail);
            query.push_str(extra);
        }
        let cookie = match c.pick(4) {
            0 => Some(format!("iam_oidc_state={state}")),
            1 => Some(format!("iam_oidc_state={}; iam_oidc_state=x", c.of(NASTY))),
            _ => None,
        };
        let (status, text) = rt
            .block_on(async {
                let mut request = http.get(format!("{base}?{query}"));
                if let Some(cookie) =
                    cookie.filter(|c| reqwest::header::HeaderValue::from_str(c).is_ok())
                {
                    request = request.header("cookie", cookie);
                }
                let response = request.send().await.map_err(|e| e.to_string())?;
                let status = response.status().as_u16();
                Ok::<_, String>((status, response.text().await.map_err(|e| e.to_string())?))
            })
            .map_err(TestCaseError::fail)?;
        judge(status, &text, false)
            .map_err(|why| TestCaseError::fail(format!("{why}\nquery: {query}")))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
