//! Opaque bearer tokens: 256 random bits, shown once, stored only as their SHA-256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// What a token is for; the prefix lets a leaked token be recognised (e.g. by secret scanners).
#[derive(Debug, Clone, Copy)]
pub enum TokenKind {
    Session,
    Invitation,
    PasswordReset,
    EmailVerification,
    /// Confirms the link of an SSO identity to the account that started it.
    SsoLink,
    /// Not a credential: the value an organization publishes in DNS to prove a domain.
    DomainChallenge,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Session => "iam_s_",
            Self::Invitation => "iam_i_",
            Self::PasswordReset => "iam_r_",
            Self::EmailVerification => "iam_v_",
            Self::SsoLink => "iam_l_",
            Self::DomainChallenge => "iam_d_",
        }
    }
}

/// A freshly minted token: the plaintext to hand out once, and the hash to store.
pub struct Minted {
    pub plaintext: String,
    pub hash: String,
}

/// Mints a token of `kind` from the operating system's random source.
pub fn mint(kind: TokenKind) -> Result<Minted, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let plaintext = format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash(&plaintext);
    Ok(Minted { plaintext, hash })
}

/// The stored form of a token: lowercase hex SHA-256.
pub fn hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A random password for headless installs (`bootstrap`): 24 URL-safe characters.
pub fn random_password() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_prefixed_and_hashed() {
        let a = mint(TokenKind::Session).unwrap();
        let b = mint(TokenKind::Session).unwrap();
        assert_ne!(a.plaintext, b.plaintext);
        assert!(a.plaintext.starts_with("iam_s_"));
        assert_eq!(a.hash, hash(&a.plaintext));
        assert_eq!(a.hash.len(), 64);
        assert!(!a.hash.contains(&a.plaintext));
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
