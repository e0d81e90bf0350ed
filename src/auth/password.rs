//! Password hashing with argon2id (the crate's defaults: m=19 MiB, t=2, p=1, OWASP's minimum).
//!
//! Hashing is slow on purpose, so it runs on the blocking pool, never on the async workers.
//! Verification compares in constant time (inside the argon2 crate).

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("hashing failed: {0}")]
    Hash(String),
    #[error("the hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Hashes `password` into a PHC string with a fresh random salt.
pub async fn hash(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    })
    .await?
}

/// Whether `password` matches `phc`. When there is no stored hash (unknown user), a dummy hash
/// is verified instead, so that the answer takes as long either way.
pub async fn verify(password: String, phc: Option<String>) -> Result<bool, PasswordError> {
    tokio::task::spawn_blocking(move || {
        let stored = phc.as_deref().unwrap_or(DUMMY_HASH);
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && phc.is_some()
    })
    .await
    .map_err(PasswordError::from)
}

/// The argon2id hash (default parameters) of a random string nobody knows.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Hk0T0bbSLWt5+U4vuESqGkH1L84lQkMV/lGSaVxy3Xk";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let phc = hash("correct horse battery".to_owned()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(
            verify("correct horse battery".to_owned(), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify("wrong horse battery".to_owned(), Some(phc))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn unknown_user_never_verifies() {
        assert!(!verify("anything".to_owned(), None).await.unwrap());
        assert!(
            PasswordHash::new(DUMMY_HASH).is_ok(),
            "the dummy hash must parse"
        );
    }
}
