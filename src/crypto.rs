//! Secrets at rest (SSO client secrets, PKCE verifiers): AES-256-GCM with the deployment's key
//! (`IAM_SECRET_KEY`, 32 bytes in base64), a fresh random 96-bit nonce per value. The stored
//! text is `v1:` + base64(nonce ‖ ciphertext ‖ tag), so a later key or algorithm can be told
//! apart.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const PREFIX: &str = "v1:";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("`secret_key` must be 32 bytes in base64 (e.g. `openssl rand -base64 32`)")]
    BadKey,
    #[error("no `secret_key` is configured (IAM_SECRET_KEY): secrets cannot be stored encrypted")]
    NoKey,
    #[error("a stored secret cannot be decrypted with this key")]
    Undecryptable,
    #[error("the system random source failed")]
    Random,
}

/// Encrypts and decrypts secrets with the deployment's key; without a key, it refuses both.
pub struct SecretBox {
    cipher: Option<Aes256Gcm>,
}

impl SecretBox {
    pub fn new(key_base64: Option<&str>) -> Result<Self, CryptoError> {
        let cipher = key_base64
            .map(|k| {
                let key = STANDARD.decode(k.trim()).map_err(|_| CryptoError::BadKey)?;
                Aes256Gcm::new_from_slice(&key).map_err(|_| CryptoError::BadKey)
            })
            .transpose()?;
        Ok(Self { cipher })
    }

    pub fn configured(&self) -> bool {
        self.cipher.is_some()
    }

    pub fn encrypt(&self, plaintext: &str) -> Result<String, CryptoError> {
        let cipher = self.cipher.as_ref().ok_or(CryptoError::NoKey)?;
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|_| CryptoError::Random)?;
        let sealed = cipher
            .encrypt(&Nonce::from(nonce), plaintext.as_bytes())
            .map_err(|_| CryptoError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, CryptoError> {
        let cipher = self.cipher.as_ref().ok_or(CryptoError::NoKey)?;
        let raw = stored
            .strip_prefix(PREFIX)
            .and_then(|b| STANDARD.decode(b).ok())
            .ok_or(CryptoError::Undecryptable)?;
        if raw.len() < 12 {
            return Err(CryptoError::Undecryptable);
        }
        let (nonce, sealed) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| CryptoError::Undecryptable)?;
        let plain = cipher
            .decrypt(&Nonce::from(nonce), sealed)
            .map_err(|_| CryptoError::Undecryptable)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Undecryptable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn round_trip_fresh_nonces_and_tamper_detection() {
        let b = SecretBox::new(Some(KEY)).unwrap();
        let a1 = b.encrypt("client-secret").unwrap();
        let a2 = b.encrypt("client-secret").unwrap();
        assert_ne!(a1, a2, "a fresh nonce each time");
        assert!(!a1.contains("client-secret"));
        assert_eq!(b.decrypt(&a1).unwrap(), "client-secret");
        let mut tampered = a1.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(b.decrypt(&String::from_utf8(tampered).unwrap()).is_err());
        let other = SecretBox::new(Some("HxseHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=")).unwrap();
        assert!(other.decrypt(&a1).is_err(), "another key cannot read it");
        assert!(SecretBox::new(Some("short")).is_err());
        assert!(matches!(
            SecretBox::new(None).unwrap().encrypt("x"),
            Err(CryptoError::NoKey)
        ));
    }
}
