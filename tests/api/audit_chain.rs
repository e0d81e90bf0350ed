//! The audit trail's hash chain, checked by `iam-gateway audit verify --org` (the real binary)
//! against the database after each kind of tampering, made directly in its tables.

use std::process::Command;

use crate::common::{TestApp, TestDb, suite_redis};

const BIN: &str = env!("CARGO_BIN_EXE_iam-gateway");

/// `audit verify --org acme` on `url`: whether it passed, and what it said.
fn verify(url: &str) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["audit", "verify", "--org", "acme"])
        .env("IAM_DATABASE_URL", url)
        .env("RUST_LOG", "off")
        .output()
        .expect("run iam-gateway");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// An organization with eight events in its chain, on a database another process can open.
async fn trail() -> (TestApp, String, bool) {
    let db = TestDb::shared().await;
    let postgres = db.is_postgres();
    let url = db.url.clone();
    let app = TestApp::start_on(Some(db), &url, suite_redis(), |_| {}).await;
    let ada = app.sign_up("ada@example.com").await;
    let org = app.create_org(&ada, "acme").await;
    for slug in ["a", "b", "c", "d", "e", "f", "g"] {
        app.create_workspace(&ada, &org, slug).await;
    }
    (app, url, postgres)
}

/// A kind of tampering: its name, the SQL that does it (on PostgreSQL or not), and what the
/// verifier must name.
type Tampering = (&'static str, fn(bool) -> Vec<String>, &'static str);

/// The rows of acme's chain (its events carry their organization as chain).
const CHAIN: &str = "chain_id = organization_id";

#[tokio::test]
async fn an_intact_chain_verifies() {
    let (app, url, _) = trail().await;
    let (ok, said) = verify(&url);
    assert!(ok, "{said}");
    assert!(said.contains("acme: 8 events verify"), "{said}");
    // Another organization's events are not acme's: still 8.
    let olga = app.sign_up("olga@example.com").await;
    app.create_org(&olga, "beta").await;
    let (ok, said) = verify(&url);
    assert!(ok && said.contains("acme: 8 events verify"), "{said}");
    let out = Command::new(BIN)
        .args(["audit", "verify", "--org", "nope"])
        .env("IAM_DATABASE_URL", &url)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no organization has the slug `nope`"));
}

#[tokio::test]
async fn each_kind_of_tampering_in_the_database_is_named() {
    let cases: [Tampering; 5] = [
        (
            "modified",
            |_| {
                vec![format!(
                    "UPDATE audit_events SET action = 'workspace.delete' WHERE {CHAIN} AND seq = 3"
                )]
            },
            "event 3 (",
        ),
        (
            "deleted",
            |_| {
                vec![format!(
                    "DELETE FROM audit_events WHERE {CHAIN} AND seq = 3"
                )]
            },
            "events before event 4",
        ),
        (
            "inserted",
            |postgres| {
                let id = if postgres {
                    "'ffffffff-ffff-4fff-bfff-ffffffffffff'::uuid"
                } else {
                    "X'ffffffffffff4fffbfffffffffffffff'"
                };
                vec![format!(
                    "INSERT INTO audit_events (id, organization_id, actor_id, actor_email, actor_kind, action, target_type, target_id, result, ip, created_at) \
                     SELECT {id}, organization_id, actor_id, actor_email, actor_kind, 'role.create', target_type, target_id, result, ip, created_at \
                     FROM audit_events WHERE {CHAIN} AND seq = 2"
                )]
            },
            "was inserted",
        ),
        (
            "reordered",
            |_| {
                vec![
                    format!("UPDATE audit_events SET seq = -1 WHERE {CHAIN} AND seq = 4"),
                    format!("UPDATE audit_events SET seq = 4 WHERE {CHAIN} AND seq = 5"),
                    format!("UPDATE audit_events SET seq = 5 WHERE {CHAIN} AND seq = -1"),
                ]
            },
            "event 4 (",
        ),
        (
            "truncated",
            |_| {
                vec![format!(
                    "DELETE FROM audit_events WHERE {CHAIN} AND seq = 8"
                )]
            },
            "events after event 7 were deleted",
        ),
    ];
    for (kind, statements, named) in cases {
        let (app, url, postgres) = trail().await;
        assert!(verify(&url).0, "{kind}: intact first");
        for sql in statements(postgres) {
            app.state
                .services
                .store()
                .execute_unprepared(&sql)
                .await
                .unwrap_or_else(|e| panic!("{kind}: {sql}: {e:?}"));
        }
        let (ok, said) = verify(&url);
        assert!(!ok, "{kind}: {said}");
        assert!(said.contains("the audit chain is broken"), "{kind}: {said}");
        assert!(said.contains(named), "{kind}: {said}");
        if kind == "reordered" {
            assert!(said.contains("was moved"), "{said}");
        }
        if kind == "modified" {
            assert!(
                said.contains("was modified") && said.contains("2 events before it verify"),
                "{said}"
            );
        }
    }
}

#[tokio::test]
async fn concurrent_writers_on_two_instances_keep_one_chain() {
    let (a, b) = TestApp::pair(&crate::common::any_redis()).await;
    let url = a.state.services.config.database_url.clone();
    let ada = a.sign_up("ada@example.com").await;
    let org = a.create_org(&ada, "acme").await;
    let writes = (0..24).map(|i| {
        let (app, ada, org) = (if i % 2 == 0 { &a } else { &b }, &ada, &org);
        async move { app.create_workspace(ada, org, &format!("w{i}")).await }
    });
    futures::future::join_all(writes).await;
    let (ok, said) = verify(&url);
    assert!(ok, "{said}");
    assert!(said.contains("acme: 25 events verify"), "{said}");
}
