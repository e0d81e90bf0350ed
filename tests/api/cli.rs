//! The command line: `export-schema`, `migrate` and `bootstrap` through the real binary.

use std::process::Command;

use serde_json::json;

use crate::common::{TestApp, data_str};

const BIN: &str = env!("CARGO_BIN_EXE_iam-gateway");

fn temp_sqlite() -> (String, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("iam-cli-{}.db", uuid::Uuid::new_v4().simple()));
    (format!("sqlite://{}?mode=rwc", path.display()), path)
}

fn run(args: &[&str], database_url: &str) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("IAM_DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run iam-gateway")
}

#[test]
fn export_schema_prints_the_schema_file() {
    let out = run(&["export-schema"], "sqlite::memory:");
    assert!(out.status.success());
    let on_disk =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), on_disk);
}

#[tokio::test]
async fn bootstrap_creates_a_user_and_org_that_can_sign_in() {
    let (url, path) = temp_sqlite();
    let out = run(
        &[
            "bootstrap",
            "--email",
            "root@example.com",
            "--org",
            "acme",
            "--org-name",
            "Acme Inc",
        ],
        &url,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
    };
    let password = field("password:");
    let token = field("session token:");

    // A second bootstrap with the same email fails cleanly.
    let again = run(
        &["bootstrap", "--email", "root@example.com", "--org", "other"],
        &url,
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let app = TestApp::start_with(|c| c.database_url = url.clone()).await;
    let me = app
        .gql(
            Some(&token),
            "{ me { email organizations { slug name } } }",
            json!({}),
        )
        .await;
    assert_eq!(data_str(&me, &["me", "email"]), "root@example.com");
    assert_eq!(
        me["data"]["me"]["organizations"],
        json!([{ "slug": "acme", "name": "Acme Inc" }])
    );
    let signed_in = app
        .gql(None, "mutation($p: String!) { signIn(input: {email: \"root@example.com\", password: $p}) { token } }", json!({ "p": password }))
        .await;
    let fresh = data_str(&signed_in, &["signIn", "token"]);
    // The bootstrapped user is the organization's admin.
    let org = app
        .gql(
            Some(&fresh),
            "{ organization(slug: \"acme\") { id } }",
            json!({}),
        )
        .await;
    let org_id = data_str(&org, &["organization", "id"]);
    app.create_workspace(&fresh, &org_id, "prod").await;
    drop(app);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn bad_configuration_is_reported_not_panicked() {
    let out = Command::new(BIN)
        .args(["migrate"])
        .env("IAM_SESSION_TTL", "forever")
        .output()
        .expect("run iam-gateway");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        r#"iam-gateway: configuration error: IAM_SESSION_TTL="forever": expected a duration such as 30s, 15m, 12h or 14d"#
    );

    let (url, path) = temp_sqlite();
    let migrated = run(&["migrate"], &url);
    assert!(migrated.status.success());
    assert!(String::from_utf8_lossy(&migrated.stdout).contains("migrations applied"));
    let _ = std::fs::remove_file(&path);
}

/// A database that cannot be opened is named (its password hidden) with the cause in words,
/// not as a debug dump of the driver's error.
#[test]
fn an_unreachable_database_is_explained() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let out = run(
        &["migrate"],
        &format!("postgres://bob:hunter2@127.0.0.1:{port}/iam"),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        format!(
            "iam-gateway: cannot open the database postgres://bob:***@127.0.0.1:{port}/iam: no connection could be made: nothing listens at 127.0.0.1:{port} (connection refused): is PostgreSQL running there?"
        )
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let out = run(&["migrate"], "sqlite:///no/such/directory/iam.db?mode=rwc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().last().unwrap_or_default().starts_with(
            "iam-gateway: cannot open the database sqlite:///no/such/directory/iam.db?mode=rwc: unable to open database file (does its directory exist"
        ),
        "{stderr}"
    );
}
