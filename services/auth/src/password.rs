//! Password hashing with Argon2id in PHC string format, random salt per
//! hash. CPU-bound (tens of milliseconds per call); no I/O.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::error::{AuthError, Result};

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Longest password accepted; bounds the work an attacker can make us do.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Checks that `password` is acceptable for a new account.
pub fn validate(password: &str) -> Result<()> {
    if password.is_empty() {
        return Err(AuthError::invalid("password", "must not be empty"));
    }
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AuthError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(AuthError::invalid(
            "password",
            format!("must be at most {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    Ok(())
}

/// Validates `password` and hashes it to an `$argon2id$...` PHC string.
pub fn hash(password: &str) -> Result<String> {
    validate(password)?;
    let hash: PasswordHash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| AuthError::Internal(format!("hashing password: {e}")))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`. A malformed stored hash
/// never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_and_rejects_wrong_password() {
        let phc = hash("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify("correct horse", &phc));
        assert!(!verify("correct horsf", &phc));
        assert!(!verify("", &phc));
    }

    #[test]
    fn salts_differ() {
        assert_ne!(hash("password1").unwrap(), hash("password1").unwrap());
    }

    #[test]
    fn short_and_empty_passwords_are_rejected() {
        for bad in ["", "1234567"] {
            match hash(bad) {
                Err(AuthError::Invalid { field, .. }) => assert_eq!(field, "password"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert!(hash("12345678").is_ok());
    }

    #[test]
    fn garbage_hash_never_matches() {
        assert!(!verify("whatever1", "not a phc string"));
    }
}
