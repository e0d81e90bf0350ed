//! A scratch PostgreSQL database: created next to the one a URL names, dropped at the end. The
//! one helper behind the tests' `TestDb` and both benches' databases; it uses nothing else of
//! `tests/common`, so that the benches include this file alone (`#[path]`).

use iam_gateway::store::Store;

/// A database of its own on the server of `base`, until [`ScratchDb::remove`].
pub struct ScratchDb {
    base: String,
    pub name: String,
    /// `base` with the scratch database's name in place of its own.
    pub url: String,
}

impl ScratchDb {
    /// Creates `{prefix}_{random}` on the server `base` names.
    pub async fn create(base: &str, prefix: &str) -> Result<Self, String> {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let admin = Store::connect(base, Some(1))
            .await
            .map_err(|e| format!("connect to {}: {e:?}", iam_gateway::store::redacted(base)))?;
        let created = admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| format!("create database {name}: {e:?}"));
        let _ = admin.close().await;
        created?;
        Ok(Self {
            url: replace_db_name(base, &name),
            base: base.to_owned(),
            name,
        })
    }

    /// Drops the database, closing the connections still open to it.
    pub async fn remove(&self) -> Result<(), String> {
        let admin = Store::connect(&self.base, Some(1))
            .await
            .map_err(|e| format!("connect: {e:?}"))?;
        let dropped = admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .map_err(|e| format!("drop database {}: {e:?}", self.name));
        let _ = admin.close().await;
        dropped.map(|_| ())
    }

    /// [`ScratchDb::remove`] from synchronous code that may run inside a runtime (a `Drop`):
    /// on a thread with a runtime of its own.
    pub fn remove_blocking(&self) -> Result<(), String> {
        std::thread::scope(|s| {
            s.spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?
                    .block_on(self.remove())
            })
            .join()
            .unwrap_or_else(|_| Err("the drop thread panicked".to_owned()))
        })
    }
}

/// `url` naming the database `name` instead of its own (its query string kept).
fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let prefix = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}
