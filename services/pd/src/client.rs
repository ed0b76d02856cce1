//! A PD client for workers, gateways, auth and the operator: give it every PD
//! endpoint; it tracks the leader, follows NOT_LEADER hints, and retries
//! unavailable nodes with bounded exponential backoff until a deadline.
//! Does network I/O.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Status};
use vectron_proto::channel::{Role, internal_endpoint};
use vectron_proto::common::v1::ErrorReason;
use vectron_proto::error_detail;
use vectron_proto::pd::v1::placement_driver_client::PlacementDriverClient;

/// A PD call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum PdClientError {
    /// No endpoints were given.
    #[error("no PD endpoints configured")]
    NoEndpoints,
    /// An endpoint is not a valid address.
    #[error("bad PD endpoint {0:?}")]
    BadEndpoint(String),
    /// PD answered with an error that retrying does not fix.
    #[error("{0}")]
    Rejected(Status),
    /// No PD node answered successfully before the deadline.
    #[error("PD unavailable after {attempts} attempts over {elapsed:?}: {last}")]
    Unavailable {
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last error seen.
        last: Status,
    },
}

impl PdClientError {
    /// The gRPC status behind the error, for callers that pass it on.
    pub fn status(&self) -> Status {
        match self {
            PdClientError::Rejected(status) => status.clone(),
            PdClientError::Unavailable { last, .. } => {
                Status::unavailable(last.message().to_owned())
            }
            other => Status::unavailable(other.to_string()),
        }
    }
}

/// Timeouts and retry limits of a [`PdClient`].
#[derive(Debug, Clone, Copy)]
pub struct PdClientOptions {
    /// Per-attempt timeout.
    pub request_timeout: Duration,
    /// Give up after this long.
    pub deadline: Duration,
    /// First backoff; doubled per failed round up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Largest backoff.
    pub max_backoff: Duration,
}

impl Default for PdClientOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(15),
            initial_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_millis(250),
        }
    }
}

struct Target {
    addr: String,
    channel: Channel,
}

/// A client of the PD cluster.
pub struct PdClient {
    endpoints: Vec<Target>,
    /// Index into `endpoints` (or an extra hinted address) to try first.
    leader: Mutex<Option<String>>,
    options: PdClientOptions,
}

fn channel(addr: &str) -> Result<Channel, PdClientError> {
    internal_endpoint(addr, Role::Pd, Duration::from_secs(2))
        .map_err(|_| PdClientError::BadEndpoint(addr.to_owned()))
        .map(|e| e.connect_lazy())
}

/// Whether trying another node may succeed.
fn retryable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
    ) || error_detail::detail_of(status)
        .is_some_and(|d| matches!(d.reason(), ErrorReason::NotLeader | ErrorReason::NoQuorum))
}

impl PdClient {
    /// A client over `endpoints` ("host:port") with default options.
    pub fn new(endpoints: &[String]) -> Result<Self, PdClientError> {
        Self::with_options(endpoints, PdClientOptions::default())
    }

    /// A client with explicit timeouts.
    pub fn with_options(
        endpoints: &[String],
        options: PdClientOptions,
    ) -> Result<Self, PdClientError> {
        if endpoints.is_empty() {
            return Err(PdClientError::NoEndpoints);
        }
        let endpoints = endpoints
            .iter()
            .map(|addr| {
                Ok(Target {
                    addr: addr.clone(),
                    channel: channel(addr)?,
                })
            })
            .collect::<Result<_, PdClientError>>()?;
        Ok(Self {
            endpoints,
            leader: Mutex::new(None),
            options,
        })
    }

    fn leader_hint(&self) -> Option<String> {
        self.leader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_leader(&self, addr: Option<String>) {
        *self.leader.lock().unwrap_or_else(|p| p.into_inner()) = addr;
    }

    /// The order in which to try nodes: the known leader, then the rest.
    fn candidates(&self) -> Vec<(String, Channel)> {
        let hint = self.leader_hint();
        let mut order: Vec<(String, Channel)> = Vec::new();
        if let Some(hint) = &hint {
            match self.endpoints.iter().find(|t| &t.addr == hint) {
                Some(t) => order.push((t.addr.clone(), t.channel.clone())),
                None => {
                    if let Ok(ch) = channel(hint) {
                        order.push((hint.clone(), ch));
                    }
                }
            }
        }
        order.extend(
            self.endpoints
                .iter()
                .filter(|t| Some(&t.addr) != hint.as_ref())
                .map(|t| (t.addr.clone(), t.channel.clone())),
        );
        order
    }

    /// Runs `call` against the PD leader, following hints and retrying as
    /// described on the type.
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, PdClientError>
    where
        F: Fn(PlacementDriverClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let start = Instant::now();
        let mut backoff = self.options.initial_backoff;
        let mut attempts = 0;
        loop {
            let mut last = Status::unavailable("no PD node tried");
            for (addr, channel) in self.candidates() {
                attempts += 1;
                let client =
                    PlacementDriverClient::new(channel).max_decoding_message_size(64 * 1024 * 1024);
                let result = tokio::time::timeout(self.options.request_timeout, call(client)).await;
                let status = match result {
                    Ok(Ok(response)) => {
                        self.set_leader(Some(addr));
                        return Ok(response.into_inner());
                    }
                    Ok(Err(status)) => status,
                    Err(_) => {
                        Status::deadline_exceeded(format!("PD {addr} did not answer in time"))
                    }
                };
                if !retryable(&status) {
                    return Err(PdClientError::Rejected(status));
                }
                let hint = error_detail::detail_of(&status)
                    .and_then(|d| d.leader)
                    .map(|l| l.addr)
                    .filter(|a| !a.is_empty() && *a != addr);
                last = status;
                if let Some(hint) = hint {
                    // Follow the hint right away, ahead of the other endpoints.
                    self.set_leader(Some(hint));
                    break;
                }
                self.set_leader(None);
            }
            if start.elapsed() + backoff > self.options.deadline {
                return Err(PdClientError::Unavailable {
                    attempts,
                    elapsed: start.elapsed(),
                    last,
                });
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.options.max_backoff);
        }
    }
}
