//! The reconcile of each resource kind, and what they share: the context
//! (Kubernetes client, a way to reach a cluster's PD, a clock) and the
//! error type. Each reconcile is callable directly, which is how the tests
//! drive it against an in-memory API.

pub mod cluster;
pub mod collection;
pub mod pki;

use std::time::Duration;

use kube::Client;

use crate::apply::ApplyError;
use crate::placement::{PdAccess, Placement, PlacementError};

/// What a reconcile needs.
pub struct Context<P: Placement> {
    /// The Kubernetes API.
    pub client: Client,
    /// A PD client for one cluster's PD.
    pub placement: Box<dyn Fn(&PdAccess) -> P + Send + Sync>,
    /// The current time as RFC 3339 (a parameter so tests pin it).
    pub now: fn() -> String,
    /// Publishes Kubernetes Events on phase changes; `None` publishes none.
    pub events: Option<kube::runtime::events::Recorder>,
    /// The namespace the operator runs in: the only one whose operator pods
    /// the clusters' NetworkPolicies admit to PD.
    pub operator_namespace: String,
}

impl<P: Placement> Context<P> {
    /// Publishes an Event about `object` (best effort: a failure is logged,
    /// never fails the reconcile).
    pub async fn event<K>(&self, object: &K, warning: bool, reason: &str, note: String)
    where
        K: kube::Resource<DynamicType = ()>,
    {
        let Some(recorder) = &self.events else {
            return;
        };
        let event = kube::runtime::events::Event {
            type_: if warning {
                kube::runtime::events::EventType::Warning
            } else {
                kube::runtime::events::EventType::Normal
            },
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&event, &object.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "cannot publish an event");
        }
    }
}

/// Why a reconcile failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Writing cluster objects failed.
    #[error(transparent)]
    Apply(#[from] Box<ApplyError>),
    /// Reading or patching a resource failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// PD failed.
    #[error(transparent)]
    Placement(#[from] PlacementError),
    /// The object lacks a name, namespace or uid.
    #[error("object without {0}")]
    Incomplete(&'static str),
    /// No randomness for a generated secret.
    #[error("cannot generate a secret: {0}")]
    Random(String),
    /// The cluster's internal CA or a certificate could not be made.
    #[error("internal TLS: {0}")]
    Pki(#[from] vectron_tls::TlsError),
    /// A status could not be encoded as JSON.
    #[error("cannot encode a status: {0}")]
    Encode(String),
}

impl From<ApplyError> for ReconcileError {
    fn from(error: ApplyError) -> Self {
        ReconcileError::Apply(Box::new(error))
    }
}

/// When to look at a resource again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requeue(pub Duration);

/// Unix seconds of an RFC 3339 time from [`Context::now`]; the system
/// clock's when it does not parse.
pub fn unix_seconds(rfc3339: &str) -> i64 {
    rfc3339
        .parse::<k8s_openapi::jiff::Timestamp>()
        .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now())
        .as_second()
}

/// Now, as RFC 3339 with seconds, from the system clock.
pub fn system_now() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

/// The merge patch from the stored status to `new`, clearing what `new`
/// no longer has (a finished drain, a gone endpoint).
pub(crate) fn status_patch<S: serde::Serialize>(
    old: Option<&S>,
    new: &S,
) -> Result<serde_json::Value, ReconcileError> {
    let encode = |s| serde_json::to_value(s).map_err(|e| ReconcileError::Encode(e.to_string()));
    let old = match old {
        Some(old) => encode(old)?,
        None => serde_json::Value::Null,
    };
    Ok(crate::patch::merge_patch(&old, &encode(new)?))
}
