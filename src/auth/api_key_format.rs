//! The API key format: `iam_k_`, 43 random base62 characters (256 bits) and a 6-character
//! base62 CRC32 of them. The fixed prefix lets secret scanners recognise a leaked key; the
//! checksum refuses a mistyped or truncated key without reading the database (it is no
//! defence against forgery: only the stored hash opens anything).

use super::token;

pub const PREFIX: &str = "iam_k_";
const RANDOM_CHARS: usize = 43;
const CHECK_CHARS: usize = 6;
/// How many characters of the secret lists show (`iam_k_` and 8 of the random ones).
const SHOWN_CHARS: usize = 8;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new key: the secret to show once, its hash to store, and the part lists show.
pub struct MintedKey {
    pub secret: String,
    pub hash: String,
    pub display_prefix: String,
}

pub fn mint() -> Result<MintedKey, getrandom::Error> {
    let mut random = String::with_capacity(RANDOM_CHARS);
    let mut buf = [0u8; 64];
    while random.len() < RANDOM_CHARS {
        getrandom::fill(&mut buf)?;
        // Rejection sampling: 248 = 4 × 62, so every character is equally likely.
        for b in buf.iter().filter(|b| **b < 248) {
            if random.len() == RANDOM_CHARS {
                break;
            }
            random.push(char::from(ALPHABET[usize::from(*b % 62)]));
        }
    }
    let secret = format!("{PREFIX}{random}{}", checksum(&random));
    Ok(MintedKey {
        hash: token::hash(&secret),
        display_prefix: secret[..PREFIX.len() + SHOWN_CHARS].to_owned(),
        secret,
    })
}

/// Whether `s` has the shape of an API key (a credential other than a session's).
pub fn looks_like_key(s: &str) -> bool {
    s.starts_with(PREFIX)
}

/// Whether `s` is a whole, untyped-over key: prefix, length, alphabet and checksum.
pub fn well_formed(s: &str) -> bool {
    let Some(rest) = s.strip_prefix(PREFIX) else {
        return false;
    };
    if rest.len() != RANDOM_CHARS + CHECK_CHARS || !rest.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return false;
    }
    let (random, check) = rest.split_at(RANDOM_CHARS);
    checksum(random) == check
}

fn checksum(random: &str) -> String {
    let mut n = crc32fast::hash(random.as_bytes());
    let mut out = [b'0'; CHECK_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|b| char::from(*b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_are_well_formed_and_a_changed_character_is_caught() {
        let a = mint().unwrap();
        let b = mint().unwrap();
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.len(), PREFIX.len() + RANDOM_CHARS + CHECK_CHARS);
        assert!(well_formed(&a.secret), "{}", a.secret);
        assert!(a.secret.starts_with(&a.display_prefix));
        assert_eq!(a.hash, token::hash(&a.secret));
        // Every single-character typo in the random part is refused by the checksum.
        let bytes = a.secret.as_bytes();
        for i in PREFIX.len()..PREFIX.len() + RANDOM_CHARS {
            let mut typo = bytes.to_vec();
            typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
            assert!(
                !well_formed(std::str::from_utf8(&typo).unwrap()),
                "typo at {i}"
            );
        }
        assert!(!well_formed(&a.secret[..a.secret.len() - 1]), "truncated");
        assert!(!well_formed(&format!("{}x", a.secret)), "too long");
        assert!(
            !well_formed(&a.secret.replace(PREFIX, "iam_s_")),
            "other kind"
        );
    }
}
