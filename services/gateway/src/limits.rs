//! Overload protection: token-bucket rate limits (429) per client address
//! before authentication, per client address on logins, and per credential
//! after authentication, and a cap on requests in flight (503), so overload
//! is refused early instead of queueing without bound. No I/O.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ApiError, ErrorKind, Result};

/// Overload settings of a gateway.
#[derive(Debug, Clone, Copy)]
pub struct OverloadConfig {
    /// Sustained requests per second allowed per credential; 0 turns it
    /// off.
    pub rate_per_second: f64,
    /// Requests a credential may make in a burst above the rate.
    pub burst: f64,
    /// Sustained requests per second allowed per client address, checked
    /// before the credential is (bursts of twice that); 0 turns it off.
    pub address_rate_per_second: f64,
    /// Sustained login attempts per second allowed per client address
    /// (bursts of [`LOGIN_BURST`]); bounds password guessing.
    pub login_rate_per_second: f64,
    /// Requests served at once by this gateway; more get 503.
    pub max_in_flight: usize,
    /// Longest time one request may take; then 503.
    pub request_timeout: Duration,
}

impl Default for OverloadConfig {
    fn default() -> Self {
        Self {
            rate_per_second: 1000.0,
            burst: 2000.0,
            address_rate_per_second: 10_000.0,
            login_rate_per_second: 2.0,
            max_in_flight: 512,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Login attempts a client address may make at once above its rate.
pub const LOGIN_BURST: f64 = 10.0;

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// Token buckets by key (a credential, a client address).
pub struct RateLimiter {
    /// What a bucket is per, for the error message ("credential").
    per: &'static str,
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Buckets idle longer than this are forgotten, bounding memory.
const IDLE_BUCKET: Duration = Duration::from_secs(300);

impl RateLimiter {
    /// A limiter allowing `rate` requests per second with bursts of `burst`
    /// to each `per` (a credential, a client address).
    pub fn new(per: &'static str, rate: f64, burst: f64) -> Self {
        Self {
            per,
            rate: rate.max(0.001),
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key` at `now`, or answers 429.
    pub fn check_at(&self, key: &str, now: Instant) -> Result<()> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| now.duration_since(b.refilled) < IDLE_BUCKET);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            refilled: now,
        });
        let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorKind::RateLimited,
                format!(
                    "rate limit of {} requests per second per {} exceeded; retry shortly",
                    self.rate, self.per
                ),
            ))
        }
    }

    /// Takes one token for `key` now.
    pub fn check(&self, key: &str) -> Result<()> {
        self.check_at(key, Instant::now())
    }
}

/// The cap on requests in flight.
pub struct InFlight {
    permits: Arc<Semaphore>,
    max: usize,
}

impl InFlight {
    /// A cap of `max` requests.
    pub fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max.max(1))),
            max,
        }
    }

    /// A permit, or 503 when `max` requests are already running.
    pub fn enter(&self) -> Result<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
            ApiError::unavailable(format!(
                "overloaded: {} requests already in flight; retry shortly",
                self.max
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_refuses_then_refills() {
        let limiter = RateLimiter::new("credential", 10.0, 3.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.check_at("k", t0).expect("within burst");
        }
        let error = limiter.check_at("k", t0).expect_err("over burst");
        assert_eq!(error.kind, ErrorKind::RateLimited);
        limiter
            .check_at("other", t0)
            .expect("separate bucket per credential");
        limiter
            .check_at("k", t0 + Duration::from_millis(150))
            .expect("one token refilled after 100 ms at 10/s");
    }

    #[test]
    fn in_flight_cap_refuses_when_full() {
        let cap = InFlight::new(1);
        let permit = cap.enter().expect("first");
        assert_eq!(
            cap.enter().expect_err("second").kind,
            ErrorKind::Unavailable
        );
        drop(permit);
        let _again = cap.enter().expect("free again");
    }
}
