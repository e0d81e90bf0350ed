//! Migrations run up, down and up again, on SQLite and (with IAM_TEST_DATABASE_URL) PostgreSQL.

use iam_gateway::store::Store;

use crate::common::TestDb;

#[tokio::test]
async fn migrations_go_up_down_and_up_again() {
    let db = TestDb::new().await;
    let wants_postgres =
        std::env::var("IAM_TEST_DATABASE_URL").is_ok_and(|u| u.starts_with("postgres"));
    assert_eq!(
        db.is_postgres(),
        wants_postgres,
        "the suite runs on the database it was given"
    );
    assert_eq!(db.url.starts_with("postgres"), wants_postgres);
    let store = Store::connect(&db.url, None).await.expect("connect");
    store.migrate().await.expect("up");
    let tables = store.table_names().await.expect("tables");
    for t in [
        "users",
        "credentials",
        "sessions",
        "organizations",
        "workspaces",
        "projects",
        "memberships",
        "roles",
        "role_policies",
        "role_bindings",
        "invitations",
        "audit_events",
        "change_log",
    ] {
        assert!(
            tables.iter().any(|x| x == t),
            "{t} missing after up: {tables:?}"
        );
    }
    store.migrate_down_all().await.expect("down");
    let left = store.table_names().await.expect("tables");
    assert!(
        left.iter().all(|t| t == "seaql_migrations"),
        "down must drop every table it created: {left:?}"
    );
    store.migrate().await.expect("up again");
    assert_eq!(
        store.table_names().await.expect("tables").len(),
        tables.len()
    );
    store.close().await.expect("close");
}
