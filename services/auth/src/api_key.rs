//! API keys: `vk_<id>_<secret>` with a 16-hex-digit id and a 64-hex-digit
//! (32-byte) secret from the OS RNG. Only the SHA-256 of the secret is stored;
//! verification is constant-time. No I/O beyond reading the OS RNG.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{AuthError, Result};

/// Prefix of every key.
pub const KEY_PREFIX: &str = "vk_";
/// Length of the id, in hex digits.
pub const ID_HEX_LEN: usize = 16;
/// Length of the secret, in bytes.
pub const SECRET_LEN: usize = 32;

/// A freshly generated key: what to show the caller once, and what to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// The public id (16 hex digits).
    pub id: String,
    /// The full key, `vk_<id>_<secret>`; shown once and never stored.
    pub key: String,
    /// Hex SHA-256 of the secret bytes; what is stored.
    pub secret_sha256: String,
}

/// A key split into its parts, as presented by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedApiKey {
    /// The public id.
    pub id: String,
    /// The secret bytes.
    pub secret: Vec<u8>,
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            };
            Some((digit(pair[0])? << 4) | digit(pair[1])?)
        })
        .collect()
}

/// Fills `buf` from the OS random number generator.
pub fn random_bytes(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| AuthError::Internal(format!("OS RNG: {e}")))
}

/// Hex SHA-256 of `secret`.
pub fn digest(secret: &[u8]) -> String {
    hex(&Sha256::digest(secret))
}

/// Generates a new random key.
pub fn generate() -> Result<NewApiKey> {
    let mut id = [0u8; ID_HEX_LEN / 2];
    let mut secret = [0u8; SECRET_LEN];
    random_bytes(&mut id)?;
    random_bytes(&mut secret)?;
    let id = hex(&id);
    Ok(NewApiKey {
        key: format!("{KEY_PREFIX}{id}_{}", hex(&secret)),
        secret_sha256: digest(&secret),
        id,
    })
}

/// Whether `id` has the shape of a key id (16 lower-case hex digits).
pub fn is_valid_id(id: &str) -> bool {
    id.len() == ID_HEX_LEN && id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Splits a presented key into id and secret; anything malformed is
/// [`AuthError::Unauthenticated`].
pub fn parse(key: &str) -> Result<ParsedApiKey> {
    let malformed = || AuthError::Unauthenticated("malformed API key".into());
    let rest = key.strip_prefix(KEY_PREFIX).ok_or_else(malformed)?;
    let (id, secret) = rest.split_once('_').ok_or_else(malformed)?;
    if !is_valid_id(id) {
        return Err(malformed());
    }
    let secret = unhex(secret)
        .filter(|s| s.len() == SECRET_LEN)
        .ok_or_else(malformed)?;
    Ok(ParsedApiKey {
        id: id.to_owned(),
        secret,
    })
}

/// Whether `secret` hashes to the stored hex digest, compared in constant
/// time.
pub fn verify(secret: &[u8], stored_sha256: &str) -> bool {
    let Some(stored) = unhex(stored_sha256) else {
        return false;
    };
    let actual: [u8; 32] = Sha256::digest(secret).into();
    stored.len() == actual.len() && bool::from(actual[..].ct_eq(&stored[..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_parses_and_verifies() {
        let new = generate().unwrap();
        assert!(new.key.starts_with("vk_"));
        assert!(is_valid_id(&new.id), "{}", new.id);
        assert_eq!(new.key.len(), 3 + 16 + 1 + 64);
        let parsed = parse(&new.key).unwrap();
        assert_eq!(parsed.id, new.id);
        assert!(verify(&parsed.secret, &new.secret_sha256));
        assert!(!new.key.contains(&new.secret_sha256));
    }

    #[test]
    fn wrong_secret_is_rejected() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a.id, b.id);
        let parsed_b = parse(&b.key).unwrap();
        assert!(!verify(&parsed_b.secret, &a.secret_sha256));
        assert!(!verify(&parsed_b.secret, "zz"));
        assert!(!verify(&parsed_b.secret, ""));
    }

    #[test]
    fn malformed_keys_are_rejected() {
        let good = generate().unwrap().key;
        let bad = [
            String::new(),
            "vk_".into(),
            "vk_0123456789abcdef".into(),
            "vk_0123456789abcdef_".into(),
            good.replacen("vk_", "xk_", 1),
            good[..good.len() - 2].to_owned(),
            format!("{good}00"),
            good.to_uppercase(),
            "vk_0123456789abcdeg_".to_owned() + &"00".repeat(32),
            "vk_0123456789abcde_".to_owned() + &"00".repeat(32),
        ];
        for key in bad {
            assert!(
                matches!(parse(&key), Err(AuthError::Unauthenticated(_))),
                "{key:?} parsed"
            );
        }
        assert!(parse(&("vk_0123456789abcdef_".to_owned() + &"00".repeat(32))).is_ok());
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
        assert_eq!(unhex("000fff"), Some(vec![0, 15, 255]));
        assert_eq!(unhex("0"), None);
    }
}
