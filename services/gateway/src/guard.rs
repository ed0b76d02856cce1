//! The front door every public request passes, REST or gRPC alike:
//! rate-limit per client address (before anything else, so unauthenticated
//! floods cost nothing), authenticate, rate-limit per credential, cap
//! requests in flight, bound the time taken, then run the operation. Logins
//! have their own, much lower, limit per client address. No I/O of its own.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use vectron_auth::Credential;

use crate::access::{Access, Caller};
use crate::api::Gateway;
use crate::error::{ApiError, Result};
use crate::limits::{InFlight, LOGIN_BURST, OverloadConfig, RateLimiter};

/// The gateway core behind its checks.
pub struct Frontdoor {
    /// The operations.
    pub gateway: Gateway,
    /// How callers are checked.
    pub access: Access,
    /// Per credential; `None` when off.
    limiter: Option<RateLimiter>,
    /// Per client address, before authentication; `None` when off.
    address_limiter: Option<RateLimiter>,
    login_limiter: RateLimiter,
    in_flight: InFlight,
    timeout: Duration,
}

impl Frontdoor {
    /// Wraps `gateway`.
    pub fn new(gateway: Gateway, access: Access, overload: OverloadConfig) -> Self {
        Self {
            gateway,
            access,
            limiter: (overload.rate_per_second > 0.0)
                .then(|| RateLimiter::new("credential", overload.rate_per_second, overload.burst)),
            address_limiter: (overload.address_rate_per_second > 0.0).then(|| {
                RateLimiter::new(
                    "client address",
                    overload.address_rate_per_second,
                    overload.address_rate_per_second * 2.0,
                )
            }),
            login_limiter: RateLimiter::new(
                "client address (logins)",
                overload.login_rate_per_second,
                LOGIN_BURST,
            ),
            in_flight: InFlight::new(overload.max_in_flight),
            timeout: overload.request_timeout,
        }
    }

    /// Admits one request from `peer` under the per-address limit, or
    /// answers 429. Runs before the credential is even read; a request
    /// whose address is unknown (in-process callers) is admitted.
    pub fn admit_address(&self, peer: Option<IpAddr>) -> Result<()> {
        match (&self.address_limiter, peer) {
            (Some(limiter), Some(ip)) => limiter.check(&ip.to_string()),
            _ => Ok(()),
        }
    }

    /// Logs in, under the per-address login limit; returns the token and
    /// its expiry in Unix seconds.
    pub async fn login(
        &self,
        peer: Option<IpAddr>,
        username: &str,
        password: &str,
    ) -> Result<(String, i64)> {
        if let Some(ip) = peer {
            self.login_limiter.check(&ip.to_string())?;
        }
        // No in-flight permit: logins are bounded by the limit above and by
        // the auth service's cap on password hashing, which answers 429.
        self.access
            .auth()?
            .login(username, password)
            .await
            .map_err(|e| ApiError::from_status(&e))
    }

    /// Runs `op` for the caller holding `credential`, after the checks.
    pub async fn serve<T, F, Fut>(&self, credential: Result<Option<Credential>>, op: F) -> Result<T>
    where
        F: FnOnce(Caller) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let principal = self.access.authenticate(credential?).await?;
        let caller = Caller { principal };
        if let Some(limiter) = &self.limiter {
            limiter.check(caller.rate_key())?;
        }
        let _permit = self.in_flight.enter()?;
        tokio::time::timeout(self.timeout, op(caller))
            .await
            .map_err(|_| {
                ApiError::unavailable(format!(
                    "the request did not finish within {:?}",
                    self.timeout
                ))
            })?
    }
}
