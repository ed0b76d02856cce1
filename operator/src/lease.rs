//! Leader election on a `coordination.k8s.io` Lease.
//!
//! Whether another replica's lease has expired is judged on this replica's
//! own monotonic clock: the time since it last saw the Lease record change
//! (its resourceVersion), never by comparing the remote `renewTime` with
//! the local wall clock, which skew between nodes would make wrong. A
//! holder that stops renewing is taken over once its record has stood
//! still for its whole `leaseDurationSeconds`; one that leaves cleanly
//! clears `holderIdentity` (see [`Elector::release`]) and is taken over at
//! the next poll. Every write is a `replace` carrying the resourceVersion
//! read, so of two replicas racing for the same record only one wins.
//!
//! [`verdict`] is the pure decision; [`Elector`] carries it out.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};

/// Name of the Lease in the operator's namespace.
pub const LEASE_NAME: &str = "vectron-operator";
/// How long a holder's lease lasts without renewal.
pub const LEASE_SECONDS: i32 = 15;
/// How often the Lease is read and renewed.
pub const POLL: Duration = Duration::from_secs(2);

/// What this replica should do about the Lease it just read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// We hold it: renew.
    Renew,
    /// Nobody holds it, or the holder stopped renewing: take it.
    Take {
        /// Why it is free, for the log.
        why: String,
    },
    /// Another replica holds it and renewed recently enough: wait.
    Wait {
        /// The holder.
        holder: String,
    },
}

/// Decides from the `holder` named in the Lease (None or empty: released),
/// its `lease_seconds`, and how long this replica has seen the record
/// unchanged (`unchanged_for`, on its own clock).
pub fn verdict(
    identity: &str,
    holder: Option<&str>,
    lease_seconds: i32,
    unchanged_for: Duration,
) -> Verdict {
    match holder.filter(|h| !h.is_empty()) {
        None => Verdict::Take {
            why: "the Lease has no holder".into(),
        },
        Some(h) if h == identity => Verdict::Renew,
        Some(h) => {
            let lease = Duration::from_secs(u64::try_from(lease_seconds.max(1)).unwrap_or(1));
            if unchanged_for > lease {
                Verdict::Take {
                    why: format!(
                        "{h} has not renewed for {}s (lease {}s)",
                        unchanged_for.as_secs(),
                        lease.as_secs()
                    ),
                }
            } else {
                Verdict::Wait {
                    holder: h.to_owned(),
                }
            }
        }
    }
}

/// One replica's side of the election.
pub struct Elector {
    api: Api<Lease>,
    identity: String,
    /// The resourceVersion last seen, and when it was first seen.
    seen: Option<(String, Instant)>,
}

impl Elector {
    /// An elector for `identity` on the Lease in `api`'s namespace.
    pub fn new(api: Api<Lease>, identity: String) -> Self {
        Elector {
            api,
            identity,
            seen: None,
        }
    }

    /// This replica's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Reads the Lease and takes or renews it when the verdict says so;
    /// answers whether this replica holds it now.
    pub async fn try_hold(&mut self) -> Result<bool, kube::Error> {
        let now = Instant::now();
        let Some(existing) = self.api.get_opt(LEASE_NAME).await? else {
            let lease = self.record(Lease::default(), true);
            self.api.create(&PostParams::default(), &lease).await?;
            return Ok(true);
        };
        let version = existing
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default();
        let since = match &self.seen {
            Some((seen, since)) if *seen == version => *since,
            _ => now,
        };
        self.seen = Some((version, since));
        let spec = existing.spec.clone().unwrap_or_default();
        match verdict(
            &self.identity,
            spec.holder_identity.as_deref(),
            spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS),
            now.duration_since(since),
        ) {
            Verdict::Wait { .. } => Ok(false),
            Verdict::Renew => {
                let lease = self.record(existing, false);
                self.api
                    .replace(LEASE_NAME, &PostParams::default(), &lease)
                    .await?;
                Ok(true)
            }
            Verdict::Take { why } => {
                tracing::info!(identity = %self.identity, why, "taking the leader Lease");
                let lease = self.record(existing, true);
                self.api
                    .replace(LEASE_NAME, &PostParams::default(), &lease)
                    .await?;
                Ok(true)
            }
        }
    }

    /// Gives the Lease up if this replica holds it, so another takes over
    /// at its next poll instead of after the lease runs out.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(LEASE_NAME).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
        self.api
            .replace(LEASE_NAME, &PostParams::default(), &lease)
            .await?;
        Ok(())
    }

    /// `lease` (with its resourceVersion) naming this replica, renewed now.
    fn record(&self, mut lease: Lease, acquired: bool) -> Lease {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        lease.metadata.name = Some(LEASE_NAME.to_owned());
        let spec = lease.spec.get_or_insert_with(Default::default);
        spec.holder_identity = Some(self.identity.clone());
        spec.lease_duration_seconds = Some(LEASE_SECONDS);
        spec.renew_time = Some(now.clone());
        if acquired {
            spec.acquire_time = Some(now);
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        lease
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_or_missing_holder_is_taken_at_once() {
        assert!(matches!(
            verdict("b", None, 15, Duration::ZERO),
            Verdict::Take { .. }
        ));
        assert!(matches!(
            verdict("b", Some(""), 15, Duration::ZERO),
            Verdict::Take { .. }
        ));
    }

    #[test]
    fn another_holder_is_waited_for_until_its_record_stood_still_a_whole_lease() {
        assert_eq!(
            verdict("b", Some("a"), 15, Duration::from_secs(14)),
            Verdict::Wait { holder: "a".into() }
        );
        match verdict("b", Some("a"), 15, Duration::from_secs(16)) {
            Verdict::Take { why } => assert!(why.contains("a has not renewed"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            verdict("a", Some("a"), 15, Duration::from_secs(100)),
            Verdict::Renew
        );
    }
}
