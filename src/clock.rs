//! The time the gateway acts at: when a session, an invitation, a reset link, a lock or a
//! binding runs out, and the time written on what it records. One clock per instance, held by
//! its store and services; nothing else reads the system clock for such a decision (a test,
//! `tests/api/docs.rs`, finds any other `Utc::now()` in `src/`).
//!
//! In production it is the system clock. A test starts the application with an adjustable one
//! and moves it forward instead of sleeping until something expires.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// A cheap handle (a clone reads the same time).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// How far ahead of the system clock this one is, in milliseconds; `None`: the system's.
    ahead_ms: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock at the system's time that [`Clock::advance`] moves forward (for tests).
    pub fn adjustable() -> Self {
        Self {
            ahead_ms: Some(Arc::new(AtomicI64::new(0))),
        }
    }

    /// Now, by this clock.
    pub fn now(&self) -> DateTime<Utc> {
        // The one place the system clock is read.
        let system = Utc::now();
        match &self.ahead_ms {
            None => system,
            Some(ahead) => system + chrono::Duration::milliseconds(ahead.load(Ordering::Relaxed)),
        }
    }

    /// Moves an adjustable clock forward by `by` (every clone with it); `false`, and nothing
    /// moves, on the system clock.
    #[must_use]
    pub fn advance(&self, by: std::time::Duration) -> bool {
        let Some(ahead) = &self.ahead_ms else {
            return false;
        };
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        ahead.fetch_add(ms, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adjustable_clock_moves_forward_and_its_clones_with_it() {
        let clock = Clock::adjustable();
        let copy = clock.clone();
        let before = copy.now();
        assert!(clock.advance(std::time::Duration::from_secs(3600)));
        let moved = copy.now() - before;
        assert!(
            moved >= chrono::Duration::seconds(3600) && moved < chrono::Duration::seconds(3660),
            "moved by {moved}"
        );
    }

    /// Every `Utc::now()` in `src/` is here, in a unit test's module, or under a comment that
    /// says it means the system clock (a record's written time): expiries are judged by the
    /// instance's clock, so that a test can move it.
    #[test]
    fn nothing_else_judges_time_by_the_system_clock() {
        fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    sources(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&root, &mut files);
        let mut stray = Vec::new();
        for file in files.iter().filter(|f| !f.ends_with("clock.rs")) {
            let text = std::fs::read_to_string(file).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            let tests_from = lines
                .iter()
                .position(|l| l.trim() == "#[cfg(test)]")
                .unwrap_or(lines.len());
            for (i, line) in lines.iter().enumerate().take(tests_from) {
                let said = lines[..i]
                    .iter()
                    .rev()
                    .take_while(|l| l.trim_start().starts_with("//"))
                    .any(|l| l.contains("system clock"));
                if line.contains("Utc::now()") && !said {
                    stray.push(format!("{}:{}", file.display(), i + 1));
                }
            }
        }
        assert!(
            stray.is_empty(),
            "read the instance's clock instead: {stray:?}"
        );
        assert!(files.len() > 50, "the sources were found");
    }

    #[test]
    fn the_system_clock_does_not_move() {
        let clock = Clock::system();
        assert!(!clock.advance(std::time::Duration::from_secs(3600)));
        assert!(clock.now() - Utc::now() < chrono::Duration::seconds(60));
    }
}
