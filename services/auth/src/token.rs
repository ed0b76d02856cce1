//! JWT issue and verification: HS256 only, `exp` required, a few seconds of
//! leeway. The secret comes from the caller. CPU only; no I/O.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{AuthError, Result};
use crate::principal::{Principal, Role};
use crate::time::now_unix;

/// Shortest HMAC secret accepted, in bytes (the HS256 output size).
pub const MIN_SECRET_LEN: usize = 32;

/// How long an issued token is valid unless configured otherwise.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// Clock skew tolerated when checking `exp`, in seconds.
pub const LEEWAY_SECS: u64 = 5;

/// The claims Vectron puts in a JWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// `user:<name>`.
    pub sub: String,
    /// The user's role at login time.
    pub role: Role,
    /// The collections the user is limited to; absent means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections: Option<Vec<String>>,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: u64,
    /// The user's token version at login; the token is refused once the
    /// user's version moves on (password changed) or the user is gone.
    /// Absent in tokens of earlier versions, which then carry 0.
    #[serde(default)]
    pub ver: u64,
}

impl Claims {
    /// The principal these claims name.
    pub fn principal(&self) -> Principal {
        Principal {
            subject: self.sub.clone(),
            role: self.role,
            collections: self.collections.clone(),
        }
    }
}

fn check_secret(secret: &[u8]) -> Result<()> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(AuthError::WeakSecret(format!(
            "is {} bytes; at least {MIN_SECRET_LEN} are required",
            secret.len()
        )));
    }
    Ok(())
}

/// Signs `claims` with HS256 under `secret` (at least [`MIN_SECRET_LEN`]
/// bytes). Exposed so tests can mint tokens with arbitrary claims.
pub fn sign_claims(secret: &[u8], claims: &Claims) -> Result<String> {
    check_secret(secret)?;
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| AuthError::Internal(format!("signing token: {e}")))
}

/// The signing and verification keys derived from one HMAC secret.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys { .. }")
    }
}

impl JwtKeys {
    /// Keys for `secret`, which must be at least [`MIN_SECRET_LEN`] bytes.
    pub fn new(secret: &[u8]) -> Result<Self> {
        check_secret(secret)?;
        // Pinning the algorithm list rejects `none`, HS512 and any
        // asymmetric algorithm whatever the token's header says.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = true;
        validation.leeway = LEEWAY_SECS;
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        })
    }

    /// Issues a token for `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| AuthError::Internal(format!("signing token: {e}")))
    }

    /// Issues a token for `sub` at token version `ver`, valid for `ttl`
    /// from now; returns it with its claims.
    pub fn issue(
        &self,
        sub: String,
        role: Role,
        collections: Option<Vec<String>>,
        ver: u64,
        ttl: Duration,
    ) -> Result<(String, Claims)> {
        let iat = now_unix();
        let claims = Claims {
            sub,
            role,
            collections,
            iat,
            exp: iat.saturating_add(ttl.as_secs().max(1)),
            ver,
        };
        Ok((self.sign(&claims)?, claims))
    }

    /// Verifies `token`'s signature, algorithm and expiry and returns its
    /// claims; every failure is [`AuthError::Unauthenticated`].
    pub fn verify(&self, token: &str) -> Result<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                AuthError::Unauthenticated(match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired".to_owned(),
                    _ => "invalid token".to_owned(),
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "user:alice".into(),
            role: Role::Write,
            collections: Some(vec!["docs".into()]),
            iat: now_unix(),
            exp,
            ver: 0,
        }
    }

    fn assert_rejected(keys: &JwtKeys, token: &str, what: &str) {
        match keys.verify(token) {
            Err(AuthError::Unauthenticated(_)) => {}
            other => panic!("{what}: expected Unauthenticated, got {other:?}"),
        }
    }

    #[test]
    fn round_trip() {
        let keys = JwtKeys::new(SECRET).unwrap();
        let (token, issued) = keys
            .issue("user:bob".into(), Role::Admin, None, 0, DEFAULT_TOKEN_TTL)
            .unwrap();
        let verified = keys.verify(&token).unwrap();
        assert_eq!(verified, issued);
        assert_eq!(verified.exp - verified.iat, 3600);
        assert_eq!(verified.principal().role, Role::Admin);
        assert_eq!(verified.principal().collections, None);

        let scoped = sign_claims(SECRET, &claims(now_unix() + 60)).unwrap();
        assert_eq!(
            keys.verify(&scoped).unwrap().collections,
            Some(vec!["docs".to_owned()])
        );
    }

    #[test]
    fn short_secret_is_refused() {
        assert!(matches!(
            JwtKeys::new(b"short"),
            Err(AuthError::WeakSecret(_))
        ));
        assert!(sign_claims(b"short", &claims(1)).is_err());
    }

    #[test]
    fn expired_token_is_rejected() {
        let keys = JwtKeys::new(SECRET).unwrap();
        let token = sign_claims(SECRET, &claims(now_unix() - 60)).unwrap();
        match keys.verify(&token) {
            Err(AuthError::Unauthenticated(m)) => assert_eq!(m, "token expired"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_secret_and_tampered_signature_are_rejected() {
        let keys = JwtKeys::new(SECRET).unwrap();
        let other = sign_claims(&[7u8; 32], &claims(now_unix() + 60)).unwrap();
        assert_rejected(&keys, &other, "other secret");

        let token = sign_claims(SECRET, &claims(now_unix() + 60)).unwrap();
        let mut bytes = token.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_rejected(&keys, &tampered, "tampered signature");

        // Same signature, escalated payload.
        let good = sign_claims(SECRET, &claims(now_unix() + 60)).unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        let mut escalated = claims(now_unix() + 60);
        escalated.role = Role::Admin;
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&escalated).unwrap());
        assert_rejected(
            &keys,
            &format!("{}.{payload}.{}", parts[0], parts[2]),
            "tampered payload",
        );
    }

    #[test]
    fn alg_none_and_hs512_are_rejected() {
        let keys = JwtKeys::new(SECRET).unwrap();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(now_unix() + 60)).unwrap());
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert_rejected(&keys, &format!("{none_header}.{payload}."), "alg none");

        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims(now_unix() + 60),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_rejected(&keys, &hs512, "HS512");
    }

    #[test]
    fn missing_exp_is_rejected() {
        #[derive(Serialize)]
        struct NoExp {
            sub: &'static str,
            role: Role,
            iat: u64,
        }
        let keys = JwtKeys::new(SECRET).unwrap();
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &NoExp {
                sub: "user:alice",
                role: Role::Admin,
                iat: now_unix(),
            },
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_rejected(&keys, &token, "missing exp");
        assert_rejected(&keys, "not.a.jwt", "garbage");
        assert_rejected(&keys, "", "empty");
    }
}
