//! The test peers' packages (npm for node clients and IdPs, PyPI for Python servers), installed
//! into the repository the first time a test process needs them, once per process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// A folder of the repository (`tests/...`).
pub fn repo_dir(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Runs `install` unless `ready` exists, at most once per process for each `ready` path;
/// panics with the installer's output when it fails.
fn once(ready: PathBuf, what: &str, install: impl FnOnce() -> Result<(), String>) {
    static DONE: Mutex<Option<HashMap<PathBuf, Result<(), String>>>> = Mutex::new(None);
    let mut done = DONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let map = done.get_or_insert_with(HashMap::new);
    let outcome = map
        .entry(ready.clone())
        .or_insert_with(|| if ready.exists() { Ok(()) } else { install() });
    if let Err(e) = outcome {
        panic!("{what} failed: {e}");
    }
}

fn run(command: &mut Command, tool: &str) -> Result<(), String> {
    let out = command
        .output()
        .map_err(|e| format!("cannot run {tool}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `npm ci` in the repository folder `relative` (package-lock.json committed), when its
/// node_modules is missing.
pub fn npm_ci(relative: &str) {
    let dir = repo_dir(relative);
    once(
        dir.join("node_modules"),
        &format!("`npm ci --prefix {relative}`"),
        || {
            run(
                Command::new("npm")
                    .arg("ci")
                    .arg("--prefix")
                    .arg(&dir)
                    .args(["--no-audit", "--no-fund"]),
                "npm",
            )
        },
    );
}

/// `pip install --target <relative>/pydeps <requirement>`, when `<relative>/pydeps/<module>`
/// is missing. Returns the folder to put on PYTHONPATH.
pub fn pip_install(relative: &str, requirement: &str, module: &str) -> PathBuf {
    let deps = repo_dir(relative).join("pydeps");
    let target = deps.clone();
    once(
        deps.join(module),
        &format!("installing {requirement} into {relative}/pydeps"),
        || {
            run(
                Command::new("python3")
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                    ])
                    .arg("--target")
                    .arg(&target)
                    .arg(requirement),
                "pip",
            )
        },
    );
    deps
}
