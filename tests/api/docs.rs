//! The docs stay true: the architecture map in README.md and in `src/lib.rs` (rustdoc) is one
//! text, and it names every source file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The README's map: the text block after `## Architecture`.
fn readme_map() -> String {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let after = readme
        .split("## Architecture\n\n```text\n")
        .nth(1)
        .expect("README has an `## Architecture` map");
    after.split("\n```").next().unwrap_or_default().to_owned()
}

/// lib.rs's map: its `//!` text block, without the comment marks.
fn lib_map() -> String {
    let lib = std::fs::read_to_string(Path::new(ROOT).join("src/lib.rs")).unwrap();
    let docs: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    let start = docs.iter().position(|l| *l == "```text").expect("a map") + 1;
    let end = start
        + docs[start..]
            .iter()
            .position(|l| *l == "```")
            .expect("its end");
    docs[start..end].join("\n")
}

/// The map's `src/` entries: each top-level name (`main.rs`, `graphql/`) with its whole text.
fn src_entries(map: &str) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut in_src = false;
    for line in map.lines() {
        if !line.starts_with(' ') {
            in_src = line.starts_with("src/");
            current = None;
            continue;
        }
        if !in_src {
            continue;
        }
        if let Some(rest) = line.strip_prefix("  ")
            && !rest.starts_with(' ')
        {
            let name = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            entries.insert(name.clone(), String::new());
            current = Some(name);
        }
        if let Some(name) = &current {
            let text = entries.get_mut(name).expect("entry");
            text.push_str(line);
            text.push('\n');
        }
    }
    entries
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_architecture_map_is_one_text() {
    assert_eq!(
        lib_map(),
        readme_map(),
        "src/lib.rs and README.md must carry the same architecture map"
    );
}

/// Each source file is named in its top-level entry: a file of `src/` as the entry itself, a
/// file further down by its name (`lookups.rs`) and each directory on its way (`access/`),
/// `mod.rs` by its directory alone. Test modules (`tests/`, `tests.rs`) need no line.
#[test]
fn the_architecture_map_names_every_source_file() {
    let entries = src_entries(&readme_map());
    let src = Path::new(ROOT).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut missing = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let parts: Vec<String> = relative
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if parts.iter().any(|p| p == "tests" || p == "tests.rs") {
            continue;
        }
        let shown = relative.display().to_string();
        let (top, rest) = parts.split_first().unwrap();
        if rest.is_empty() {
            if !entries.contains_key(top.as_str()) {
                missing.push(shown);
            }
            continue;
        }
        let Some(text) = entries.get(&format!("{top}/")) else {
            missing.push(shown);
            continue;
        };
        let (leaf, dirs) = rest.split_last().unwrap();
        let mut named: Vec<String> = dirs.iter().map(|d| format!("{d}/")).collect();
        if leaf != "mod.rs" {
            named.push(leaf.clone());
        }
        if named.iter().any(|n| !text.contains(n.as_str())) {
            missing.push(shown);
        }
    }
    assert!(
        missing.is_empty(),
        "the architecture map (README.md and src/lib.rs) does not name: {missing:?}"
    );
    // And names nothing that is not there.
    for name in entries.keys() {
        assert!(
            src.join(name).exists(),
            "the map names src/{name}, which does not exist"
        );
    }
}
