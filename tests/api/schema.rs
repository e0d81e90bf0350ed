//! `schema.graphql` is a contract: it must be exactly what the server serves.

#[test]
fn schema_file_matches_the_running_schema() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let on_disk = std::fs::read_to_string(path).expect("schema.graphql at the repository root");
    let live = iam_gateway::graphql::sdl();
    assert!(
        on_disk == live,
        "schema.graphql is stale: run `cargo run -- export-schema > schema.graphql` and commit it"
    );
}
