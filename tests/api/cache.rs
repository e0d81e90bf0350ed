//! The decision cache across instances: read-your-writes, propagation of revocations,
//! `atLeast`, Redis failure and recovery, and a churn of concurrent changes.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{ADMIN, DEVELOPER, Proxy, TestApp, VIEWER, any_redis, data_str};

const CHECK: &str = "query($i: CheckInput!) { check(input: $i) { allowed revision } }";
const REVOKE: &str = "mutation($id: ID!) { revokeRoleBinding(input: {id: $id}) { revision } }";

/// An organization with a workspace, an admin and a member `bob` (no role yet), made on `app`.
struct Org {
    admin: String,
    org: String,
    ws: String,
    bob: String,
    bob_id: String,
}

async fn org_on(app: &TestApp) -> Org {
    let admin = app.sign_up("admin@example.com").await;
    let org = app.create_org(&admin, "acme").await;
    let ws = app.create_workspace(&admin, &org, "prod").await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = app.join(&admin, &org, "bob@example.com", &bob).await;
    Org {
        admin,
        org,
        ws,
        bob,
        bob_id,
    }
}

async fn allowed(app: &TestApp, token: &str, node: &str, at_least: Option<&str>) -> bool {
    let r = app
        .gql(Some(token), CHECK, json!({ "i": { "resourceType": "apps", "action": "read", "nodeId": node, "atLeast": at_least } }))
        .await;
    r["data"]["check"]["allowed"]
        .as_bool()
        .unwrap_or_else(|| panic!("check failed: {r}"))
}

/// Polls `allowed` on `app` until it equals `want`, for at most 5 s; returns how long it took.
async fn until(app: &TestApp, token: &str, node: &str, want: bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if allowed(app, token, node, None).await == want {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the decision did not become {want} within 5 s");
}

#[tokio::test]
async fn read_your_writes_on_one_instance() {
    let app = TestApp::start().await;
    let o = org_on(&app).await;
    for _ in 0..5 {
        assert!(!allowed(&app, &o.bob, &o.ws, None).await);
        let r = app
            .grant_raw(&o.admin, &o.bob_id, VIEWER, &o.ws, None)
            .await;
        let binding = data_str(&r, &["grantRole", "binding", "id"]);
        assert!(
            allowed(&app, &o.bob, &o.ws, None).await,
            "a grant is seen by the next check"
        );
        assert!(allowed(&app, &o.bob, &o.ws, None).await);
        app.gql(Some(&o.admin), REVOKE, json!({ "id": binding }))
            .await;
        assert!(
            !allowed(&app, &o.bob, &o.ws, None).await,
            "a revocation is seen by the next check"
        );
    }
    assert!(
        app.metric("iam_cache_hits_total").await >= 1.0,
        "repeated checks come from the cache"
    );
}

#[tokio::test]
async fn a_revocation_on_one_instance_is_seen_on_another() {
    let (a, b) = TestApp::pair(&any_redis()).await;
    let o = org_on(&a).await;
    let binding = a.grant(&o.admin, &o.bob_id, VIEWER, &o.org).await;
    a.wait_trusted().await;
    b.wait_trusted().await;
    until(&b, &o.bob, &o.ws, true).await;
    let hits = b.metric("iam_cache_hits_total").await;
    assert!(allowed(&b, &o.bob, &o.ws, None).await);
    assert!(
        b.metric("iam_cache_hits_total").await > hits,
        "B answers from its cache"
    );

    a.gql(Some(&o.admin), REVOKE, json!({ "id": binding }))
        .await;
    assert!(
        !allowed(&a, &o.bob, &o.ws, None).await,
        "read-your-writes on A"
    );
    let took = until(&b, &o.bob, &o.ws, false).await;
    println!("revocation seen on the other instance after {took:?}");
    assert!(b.metric("iam_events_received_total").await >= 1.0);
}

#[tokio::test]
async fn at_least_overrides_whatever_the_cache_holds() {
    let (a, b) = TestApp::pair(&any_redis()).await;
    let o = org_on(&a).await;
    a.wait_trusted().await;
    b.wait_trusted().await;
    assert!(!allowed(&b, &o.bob, &o.ws, None).await, "B caches a deny");
    let r = a
        .grant_raw(&o.admin, &o.bob_id, DEVELOPER, &o.ws, None)
        .await;
    let token = data_str(&r, &["grantRole", "revision"]);
    assert!(
        allowed(&b, &o.bob, &o.ws, Some(&token)).await,
        "atLeast forces state at least as new"
    );
    let d = b
        .gql(Some(&o.bob), CHECK, json!({ "i": { "resourceType": "apps", "action": "read", "nodeId": o.ws, "atLeast": token } }))
        .await;
    assert!(d["data"]["check"]["revision"].as_str().is_some());

    let bad = b
        .gql(Some(&o.bob), CHECK, json!({ "i": { "resourceType": "apps", "action": "read", "nodeId": o.ws, "atLeast": "garbage" } }))
        .await;
    crate::common::assert_error(&bad, "BAD_USER_INPUT");
    // A token of another organization is refused too.
    let other = a.create_org(&o.admin, "other").await;
    let r = a.grant_raw(&o.admin, &o.bob_id, VIEWER, &other, None).await;
    assert_eq!(
        crate::common::error_code(&r).as_deref(),
        Some("BAD_USER_INPUT"),
        "bob is no member there"
    );
    let foreign =
        iam_gateway::graphql::check::revision_token(uuid::Uuid::parse_str(&other).unwrap(), 1);
    let bad = b
        .gql(Some(&o.bob), CHECK, json!({ "i": { "resourceType": "apps", "action": "read", "nodeId": o.ws, "atLeast": foreign } }))
        .await;
    crate::common::assert_error(&bad, "BAD_USER_INPUT");
}

#[tokio::test]
async fn with_redis_unreachable_answers_stay_correct() {
    let app = TestApp::start_with(|c| c.redis_url = Some("redis://127.0.0.1:1".to_owned())).await;
    let o = org_on(&app).await;
    let r = app
        .grant_raw(&o.admin, &o.bob_id, VIEWER, &o.ws, None)
        .await;
    let binding = data_str(&r, &["grantRole", "binding", "id"]);
    assert!(allowed(&app, &o.bob, &o.ws, None).await);
    app.gql(Some(&o.admin), REVOKE, json!({ "id": binding }))
        .await;
    assert!(!allowed(&app, &o.bob, &o.ws, None).await);
    assert!(
        !app.state.services.bus.epochs().trusted(),
        "without pub/sub the caches are not trusted"
    );
    assert!(
        app.metric("iam_cache_bypassed_total").await >= 2.0,
        "answers came from the store"
    );
}

#[tokio::test]
async fn an_instance_cut_off_from_redis_recovers_and_catches_up() {
    let redis = any_redis();
    let upstream = redis
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    let proxy = Proxy::start(&upstream).await;
    let (a, b_direct) = TestApp::pair(&redis).await;
    drop(b_direct);
    let b = a.sibling(&proxy.url()).await;
    let o = org_on(&a).await;
    a.wait_trusted().await;
    b.wait_trusted().await;
    let binding = a.grant(&o.admin, &o.bob_id, VIEWER, &o.org).await;
    until(&b, &o.bob, &o.ws, true).await;

    proxy.cut();
    // B notices within about a second and stops trusting its cache...
    let start = Instant::now();
    while b.state.services.bus.epochs().trusted() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "B never noticed the cut"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...so a revocation it cannot hear of is still honoured, from the store.
    a.gql(Some(&o.admin), REVOKE, json!({ "id": binding }))
        .await;
    assert!(
        !allowed(&b, &o.bob, &o.ws, None).await,
        "cut off, B answers from the store"
    );

    proxy.restore();
    b.wait_trusted().await;
    assert!(
        !allowed(&b, &o.bob, &o.ws, None).await,
        "after recovery the cache holds nothing stale"
    );
    a.grant(&o.admin, &o.bob_id, VIEWER, &o.ws).await;
    until(&b, &o.bob, &o.ws, true).await;
    assert!(b.metric("iam_pubsub_reconnects_total").await >= 2.0);
}

#[tokio::test]
async fn churn_never_allows_after_a_revocation_and_ends_consistent() {
    let (a, b) = TestApp::pair(&any_redis()).await;
    let o = org_on(&a).await;
    let p1 = a.create_project(&o.admin, &o.ws, "one").await;
    let p2 = a.create_project(&o.admin, &o.ws, "two").await;
    let nodes = [o.org.clone(), o.ws.clone(), p1, p2];
    let roles = [VIEWER, DEVELOPER, ADMIN];
    a.wait_trusted().await;
    b.wait_trusted().await;

    // Checks run on B all along, concurrently with the changes made on A.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = {
        let stop = stop.clone();
        let nodes = nodes.clone();
        let bob = o.bob.clone();
        let b_url = b.url("/graphql");
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let node = &nodes[(n as usize) % nodes.len()];
                let _ = http
                    .post(&b_url)
                    .bearer_auth(&bob)
                    .json(&json!({ "query": CHECK, "variables": { "i": { "resourceType": "apps", "action": "read", "nodeId": node } } }))
                    .send()
                    .await;
                n += 1;
            }
            n
        })
    };

    let mut live: Vec<String> = Vec::new();
    for step in 0..30usize {
        let node = &nodes[(step * 7) % nodes.len()];
        if step % 3 == 2 && !live.is_empty() {
            let id = live.remove((step * 5) % live.len());
            let r = a.gql(Some(&o.admin), REVOKE, json!({ "id": id })).await;
            let token = data_str(&r, &["revokeRoleBinding", "revision"]);
            if live.is_empty() {
                // Nothing else grants anything: every check started now must deny, on A at
                // once and on B with the token.
                for n in &nodes {
                    assert!(
                        !allowed(&a, &o.bob, n, None).await,
                        "A allowed after the revocation returned"
                    );
                    assert!(
                        !allowed(&b, &o.bob, n, Some(&token)).await,
                        "B allowed with atLeast after the revocation"
                    );
                }
            }
        } else {
            let role = roles[step % roles.len()];
            let r = a.grant_raw(&o.admin, &o.bob_id, role, node, None).await;
            if let Some(id) = r["data"]["grantRole"]["binding"]["id"].as_str() {
                live.push(id.to_owned());
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let checks = checker.await.unwrap();
    assert!(checks > 0);

    // Quiet now: B's cached answers equal a cold instance's, once B has heard everything.
    let cold = a.sibling(&any_redis()).await;
    for n in &nodes {
        let truth = allowed(&cold, &o.bob, n, None).await;
        until(&b, &o.bob, n, truth).await;
        assert_eq!(allowed(&a, &o.bob, n, None).await, truth);
    }
}

#[tokio::test]
async fn a_revoked_session_is_refused_by_another_instance() {
    let (a, b) = TestApp::pair(&any_redis()).await;
    let token = a.sign_up("ada@example.com").await;
    a.wait_trusted().await;
    b.wait_trusted().await;
    let me = "{ me { email } }";
    for _ in 0..3 {
        let r = b.gql(Some(&token), me, json!({})).await;
        assert_eq!(data_str(&r, &["me", "email"]), "ada@example.com");
    }
    assert!(
        b.metric("iam_cache_hits_total").await >= 2.0,
        "B authenticates from its session cache"
    );
    a.gql(
        Some(&token),
        "mutation { signOut { signedOut } }",
        json!({}),
    )
    .await;
    crate::common::assert_error(&a.gql(Some(&token), me, json!({})).await, "UNAUTHENTICATED");
    let start = Instant::now();
    loop {
        let r = b.gql(Some(&token), me, json!({})).await;
        if crate::common::error_code(&r).as_deref() == Some("UNAUTHENTICATED") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "B kept accepting a revoked session"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    println!(
        "revoked session refused on the other instance after {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_cold_instance_takes_facts_from_the_shared_cache() {
    let (a, b) = TestApp::pair(&any_redis()).await;
    let o = org_on(&a).await;
    a.grant(&o.admin, &o.bob_id, VIEWER, &o.ws).await;
    a.wait_trusted().await;
    b.wait_trusted().await;
    assert!(
        allowed(&a, &o.bob, &o.ws, None).await,
        "A reads the store and fills Redis"
    );
    // B's first look: its L1 is cold, Redis has the facts (same revision, still valid).
    let l2_hits = |text: String| -> f64 {
        text.lines()
            .filter(|l| l.starts_with("iam_cache_hits_total{layer=\"l2\"}"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let before = l2_hits(
        b.http
            .get(b.url("/metrics"))
            .bearer_auth(crate::common::METRICS_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let mut served = false;
    for _ in 0..50 {
        assert!(allowed(&b, &o.bob, &o.ws, None).await);
        let after = l2_hits(
            b.http
                .get(b.url("/metrics"))
                .bearer_auth(crate::common::METRICS_TOKEN)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
        if after > before {
            served = true;
            break;
        }
        // The L2 connection is made in the background at start; give it a moment.
        b.state.services.cache.clear().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "B never took the facts from Redis");
}

#[tokio::test]
async fn every_decision_changing_mutation_returns_a_growing_revision() {
    let app = TestApp::start().await;
    let t = app.sign_up("ada@example.com").await;
    let r = app
        .gql(Some(&t), "mutation { createOrganization(input: {slug: \"acme\", name: \"Acme\"}) { organization { id } revision } }", json!({}))
        .await;
    let org = data_str(&r, &["createOrganization", "organization", "id"]);
    let org_id = uuid::Uuid::parse_str(&org).unwrap();
    let rev =
        |token: &str| iam_gateway::graphql::check::read_revision_token(token, org_id).unwrap();
    let mut last = rev(&data_str(&r, &["createOrganization", "revision"]));
    let r = app
        .gql(Some(&t), "mutation($o: ID!) { createWorkspace(input: {organizationId: $o, slug: \"prod\", name: \"P\"}) { workspace { id } revision } }", json!({ "o": org }))
        .await;
    let ws = data_str(&r, &["createWorkspace", "workspace", "id"]);
    let next = rev(&data_str(&r, &["createWorkspace", "revision"]));
    assert!(next > last);
    last = next;
    let r = app
        .gql(Some(&t), "mutation($w: ID!) { createProject(input: {workspaceId: $w, slug: \"p\", name: \"P\"}) { project { id } revision } }", json!({ "w": ws }))
        .await;
    let p = data_str(&r, &["createProject", "project", "id"]);
    let next = rev(&data_str(&r, &["createProject", "revision"]));
    assert!(next > last);
    last = next;
    let invite = app.invite(&t, &org, "bob@example.com").await;
    let bob = app.sign_up("bob@example.com").await;
    let r = app
        .gql(
            Some(&bob),
            "mutation($t: String!) { acceptInvitation(input: {token: $t}) { revision } }",
            json!({ "t": invite }),
        )
        .await;
    let next = rev(&data_str(&r, &["acceptInvitation", "revision"]));
    assert!(next > last);
    last = next;
    let r = app
        .gql(
            Some(&t),
            "mutation($p: ID!) { deleteProject(input: {id: $p}) { revision } }",
            json!({ "p": p }),
        )
        .await;
    let token = data_str(&r, &["deleteProject", "revision"]);
    assert!(rev(&token) > last);
    // The token is accepted as `atLeast`.
    let d = app
        .gql(Some(&t), CHECK, json!({ "i": { "resourceType": "apps", "action": "read", "nodeId": ws, "atLeast": token } }))
        .await;
    assert_eq!(d["data"]["check"]["allowed"], true, "{d}");
}

#[tokio::test]
async fn concurrent_misses_of_one_key_are_loaded_once() {
    let app = TestApp::start().await;
    let o = org_on(&app).await;
    let services = &app.state.services;
    let org = uuid::Uuid::parse_str(&o.org).unwrap();
    let bob = uuid::Uuid::parse_str(&o.bob_id).unwrap();
    let loads = || services.metrics.store_loads.get();
    let before = loads();
    let lookups = (0..50).map(|_| services.cache.facts(services.store(), org, bob, 0));
    let results = futures::future::join_all(lookups).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(Some(f)) if f.principal_id == bob))
    );
    assert_eq!(
        loads() - before,
        1,
        "fifty concurrent misses, one load from the store"
    );
}

#[tokio::test]
async fn a_deleted_node_is_not_answered_from_a_cached_path() {
    let app = TestApp::start().await;
    let o = org_on(&app).await;
    let p = app.create_project(&o.admin, &o.ws, "doomed").await;
    app.grant(&o.admin, &o.bob_id, VIEWER, &o.ws).await;
    assert!(allowed(&app, &o.bob, &p, None).await);
    assert!(
        allowed(&app, &o.bob, &p, None).await,
        "the path now comes from the cache"
    );
    assert!(app.metric("iam_cache_hits_total").await >= 1.0);
    app.gql(
        Some(&o.admin),
        "mutation($p: ID!) { deleteProject(input: {id: $p}) { deletedId } }",
        json!({ "p": p }),
    )
    .await;
    let r = app
        .gql(
            Some(&o.bob),
            CHECK,
            json!({ "i": { "resourceType": "apps", "action": "read", "nodeId": p } }),
        )
        .await;
    crate::common::assert_error(&r, "NOT_FOUND");
}
