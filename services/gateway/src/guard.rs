//! The front door every public request passes, REST or gRPC alike:
//! authenticate, rate-limit per credential, cap requests in flight, bound the
//! time taken, then run the operation. No I/O of its own.

use std::future::Future;
use std::time::Duration;

use vectron_auth::Credential;

use crate::access::{Access, Caller};
use crate::api::Gateway;
use crate::error::{ApiError, Result};
use crate::limits::{InFlight, OverloadConfig, RateLimiter};

/// The gateway core behind its checks.
pub struct Frontdoor {
    /// The operations.
    pub gateway: Gateway,
    /// How callers are checked.
    pub access: Access,
    limiter: RateLimiter,
    in_flight: InFlight,
    timeout: Duration,
}

impl Frontdoor {
    /// Wraps `gateway`.
    pub fn new(gateway: Gateway, access: Access, overload: OverloadConfig) -> Self {
        Self {
            gateway,
            access,
            limiter: RateLimiter::new(overload.rate_per_second, overload.burst),
            in_flight: InFlight::new(overload.max_in_flight),
            timeout: overload.request_timeout,
        }
    }

    /// Runs `op` for the caller holding `credential`, after the checks.
    pub async fn serve<T, F, Fut>(&self, credential: Result<Option<Credential>>, op: F) -> Result<T>
    where
        F: FnOnce(Caller) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let principal = self.access.authenticate(credential?).await?;
        let caller = Caller { principal };
        self.limiter.check(caller.rate_key())?;
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
