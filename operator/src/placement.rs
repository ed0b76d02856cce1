//! What the operator asks of a cluster's placement driver, as a trait so
//! reconcile tests can answer with a fake PD: drain, inspect and remove
//! workers, PD membership changes, and collections. The real one speaks
//! `vectron.pd.v1.PlacementDriver` over gRPC to the cluster's PD Service,
//! following NOT_LEADER hints. Does network I/O (the gRPC implementation).

use std::future::Future;
use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;
use vectron_proto::channel::{Role, internal_endpoint_with_tls};
use vectron_proto::common::v1 as common;
use vectron_proto::error_detail;
use vectron_proto::pd::v1 as pb;
use vectron_proto::pd::v1::placement_driver_client::PlacementDriverClient;

use crate::scale::{RegisteredState, RegisteredWorker};

/// Why a PD call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// PD could not be reached or had no leader.
    #[error("PD unreachable: {0}")]
    Unreachable(String),
    /// PD refused the call.
    #[error("PD refused: {0}")]
    Refused(String),
}

/// A worker as PD sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Replicas it still holds.
    pub replicas: u32,
    /// Whether it is Draining (or drained).
    pub draining: bool,
}

/// A collection as PD sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionInfo {
    /// Shards in total.
    pub shards: u32,
    /// Shards with a known leader.
    pub shards_ready: u32,
    /// Points stored.
    pub points: u64,
}

/// A collection to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCollection {
    /// Name.
    pub name: String,
    /// Vector dimension.
    pub dimension: u32,
    /// `cosine`, `l2` or `dot`.
    pub metric: String,
    /// Shards.
    pub shards: u32,
    /// Replicas per shard.
    pub replication_factor: u32,
    /// HNSW links per node.
    pub m: u32,
    /// HNSW build breadth.
    pub ef_construction: u32,
}

/// The calls the operator makes to one cluster's PD.
pub trait Placement: Send + Sync {
    /// Starts draining worker `name` (idempotent).
    fn drain_worker(&self, name: &str) -> impl Future<Output = Result<(), PlacementError>> + Send;
    /// Cancels a drain of worker `name` (idempotent; unknown names are fine).
    fn undrain_worker(&self, name: &str)
    -> impl Future<Output = Result<(), PlacementError>> + Send;
    /// Every worker PD knows.
    fn workers(&self)
    -> impl Future<Output = Result<Vec<RegisteredWorker>, PlacementError>> + Send;
    /// Worker `name`, or `None` when PD does not know it.
    fn worker(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<WorkerInfo>, PlacementError>> + Send;
    /// Forgets worker `name` (drained or down); unknown names are fine.
    fn remove_worker(&self, name: &str) -> impl Future<Output = Result<(), PlacementError>> + Send;
    /// Removes PD node `node_id` from the Raft group; unknown ids are fine.
    fn remove_member(
        &self,
        node_id: u64,
    ) -> impl Future<Output = Result<(), PlacementError>> + Send;
    /// Creates a collection; an existing one of that name is fine.
    fn create_collection(
        &self,
        spec: &NewCollection,
    ) -> impl Future<Output = Result<(), PlacementError>> + Send;
    /// Collection `name`, or `None` when PD does not have it.
    fn collection(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<CollectionInfo>, PlacementError>> + Send;
    /// Drops collection `name`; a missing one is fine.
    fn drop_collection(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<(), PlacementError>> + Send;
    /// The replication factor of every collection PD holds, whether made
    /// from a Collection resource or through the API.
    fn replication_factors(&self) -> impl Future<Output = Result<Vec<u32>, PlacementError>> + Send;
}

/// The operator's client certificate for one cluster (PEM), issued by that
/// cluster's internal CA with role `operator`.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The cluster's CA certificate: PD must present a certificate from it.
    pub ca_pem: String,
    /// The operator's certificate.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientIdentity { .. }")
    }
}

/// How to reach one cluster's PD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdAccess {
    /// The PD Service, `host:port`.
    pub endpoint: String,
    /// Whether and how the connection is secured.
    pub security: PdSecurity,
}

/// The security of the operator's connections to one cluster's PD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PdSecurity {
    /// The cluster runs plaintext internal traffic.
    Plaintext,
    /// Mutual TLS with the operator's certificate for the cluster.
    Mutual(ClientIdentity),
    /// The cluster runs mutual TLS but the operator's certificate is not
    /// there yet (cert-manager has not issued it); every call fails with
    /// this reason.
    Missing(String),
}

/// [`Placement`] over gRPC.
#[derive(Clone)]
pub struct GrpcPlacement {
    access: PdAccess,
}

impl GrpcPlacement {
    /// A client of the PD `access` describes.
    pub fn new(access: &PdAccess) -> Self {
        Self {
            access: access.clone(),
        }
    }

    async fn client(&self, addr: &str) -> Result<PlacementDriverClient<Channel>, PlacementError> {
        let tls = match &self.access.security {
            PdSecurity::Plaintext => None,
            PdSecurity::Mutual(identity) => Some(vectron_tls::client_config_from_pem(
                &identity.ca_pem,
                &identity.cert_pem,
                &identity.key_pem,
                Role::Pd,
            )),
            PdSecurity::Missing(reason) => {
                return Err(PlacementError::Unreachable(reason.clone()));
            }
        };
        let channel = internal_endpoint_with_tls(addr, tls, Duration::from_secs(3))
            .map_err(|e| PlacementError::Unreachable(e.to_string()))?
            .timeout(Duration::from_secs(10))
            .connect()
            .await
            .map_err(|e| PlacementError::Unreachable(format!("{addr}: {e}")))?;
        Ok(PlacementDriverClient::new(channel))
    }

    /// Runs `call`, following one NOT_LEADER hint.
    async fn call<T, F, Fut>(&self, call: F) -> Result<T, tonic::Status>
    where
        F: Fn(PlacementDriverClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let client = self
            .client(&self.access.endpoint)
            .await
            .map_err(as_status)?;
        match call(client).await {
            Ok(reply) => Ok(reply.into_inner()),
            Err(status) => {
                let hint = error_detail::detail_of(&status)
                    .filter(|d| d.reason() == common::ErrorReason::NotLeader)
                    .and_then(|d| d.leader)
                    .map(|l| l.addr)
                    .filter(|a| !a.is_empty());
                let Some(leader) = hint else {
                    return Err(status);
                };
                let client = self.client(&leader).await.map_err(as_status)?;
                call(client).await.map(tonic::Response::into_inner)
            }
        }
    }
}

/// The status a local failure to reach PD stands for, keeping its reason
/// as written (so `failure` gives back the same error).
fn as_status(error: PlacementError) -> tonic::Status {
    match error {
        PlacementError::Unreachable(reason) => tonic::Status::unavailable(reason),
        PlacementError::Refused(reason) => tonic::Status::failed_precondition(reason),
    }
}

fn failure(status: tonic::Status) -> PlacementError {
    // A status carrying an underlying error was made on this side of the
    // wire (a broken connection, a TLS or HTTP/2 failure), whatever its
    // code: PD never answered.
    if std::error::Error::source(&status).is_some() {
        return PlacementError::Unreachable(status.message().to_owned());
    }
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            PlacementError::Unreachable(status.message().to_owned())
        }
        _ => PlacementError::Refused(status.message().to_owned()),
    }
}

fn ok_if(code: Code, result: Result<(), tonic::Status>) -> Result<(), PlacementError> {
    match result {
        Err(status) if status.code() != code => Err(failure(status)),
        _ => Ok(()),
    }
}

fn metric(name: &str) -> common::Metric {
    match name {
        "l2" => common::Metric::L2,
        "dot" => common::Metric::Dot,
        _ => common::Metric::Cosine,
    }
}

impl Placement for GrpcPlacement {
    async fn drain_worker(&self, name: &str) -> Result<(), PlacementError> {
        let request = pb::DrainWorkerRequest { name: name.into() };
        let result = self
            .call(|mut c| {
                let request = request.clone();
                async move { c.drain_worker(request).await }
            })
            .await
            .map(|_| ());
        ok_if(Code::NotFound, result)
    }

    async fn undrain_worker(&self, name: &str) -> Result<(), PlacementError> {
        let request = pb::UndrainWorkerRequest { name: name.into() };
        let result = self
            .call(|mut c| {
                let request = request.clone();
                async move { c.undrain_worker(request).await }
            })
            .await
            .map(|_| ());
        ok_if(Code::NotFound, result)
    }

    async fn workers(&self) -> Result<Vec<RegisteredWorker>, PlacementError> {
        let reply = self
            .call(|mut c| async move { c.list_workers(pb::ListWorkersRequest {}).await })
            .await
            .map_err(failure)?;
        Ok(reply
            .workers
            .into_iter()
            .map(|w| RegisteredWorker {
                state: match w.state() {
                    pb::WorkerState::Draining => RegisteredState::Draining,
                    pb::WorkerState::Down => RegisteredState::Down,
                    pb::WorkerState::Removed => RegisteredState::Removed,
                    pb::WorkerState::Up | pb::WorkerState::Unspecified => RegisteredState::Up,
                },
                replicas: w.replicas,
                name: w.name,
            })
            .collect())
    }

    async fn worker(&self, name: &str) -> Result<Option<WorkerInfo>, PlacementError> {
        let request = pb::GetWorkerRequest { name: name.into() };
        match self
            .call(|mut c| {
                let request = request.clone();
                async move { c.get_worker(request).await }
            })
            .await
        {
            Ok(reply) => Ok(reply.worker.map(|w| WorkerInfo {
                replicas: w.replicas,
                draining: w.state() == pb::WorkerState::Draining || w.drained,
            })),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(failure(status)),
        }
    }

    async fn remove_worker(&self, name: &str) -> Result<(), PlacementError> {
        let request = pb::RemoveWorkerRequest { name: name.into() };
        let result = self
            .call(|mut c| {
                let request = request.clone();
                async move { c.remove_worker(request).await }
            })
            .await
            .map(|_| ());
        ok_if(Code::NotFound, result)
    }

    async fn remove_member(&self, node_id: u64) -> Result<(), PlacementError> {
        let request = pb::RemoveMemberRequest { node_id };
        let result = self
            .call(|mut c| async move { c.remove_member(request).await })
            .await
            .map(|_| ());
        ok_if(Code::NotFound, result)
    }

    async fn create_collection(&self, spec: &NewCollection) -> Result<(), PlacementError> {
        let request = pb::CreateCollectionRequest {
            spec: Some(pb::CollectionSpec {
                name: spec.name.clone(),
                dimension: spec.dimension,
                metric: metric(&spec.metric).into(),
                shards: spec.shards,
                replication_factor: spec.replication_factor,
                hnsw: Some(common::HnswParams {
                    m: spec.m,
                    ef_construction: spec.ef_construction,
                    ..Default::default()
                }),
            }),
        };
        let result = self
            .call(|mut c| {
                let request = request.clone();
                async move { c.create_collection(request).await }
            })
            .await
            .map(|_| ());
        ok_if(Code::AlreadyExists, result)
    }

    async fn collection(&self, name: &str) -> Result<Option<CollectionInfo>, PlacementError> {
        let request = pb::GetCollectionStatusRequest { name: name.into() };
        match self
            .call(|mut c| {
                let request = request.clone();
                async move { c.get_collection_status(request).await }
            })
            .await
        {
            Ok(reply) => Ok(Some(CollectionInfo {
                shards: reply.shards.len() as u32,
                shards_ready: reply
                    .shards
                    .iter()
                    .filter(|s| s.shard.as_ref().is_some_and(|s| s.leader_worker_id != 0))
                    .count() as u32,
                points: reply.points,
            })),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(failure(status)),
        }
    }

    async fn replication_factors(&self) -> Result<Vec<u32>, PlacementError> {
        let reply = self
            .call(|mut c| async move { c.list_collections(pb::ListCollectionsRequest {}).await })
            .await
            .map_err(failure)?;
        Ok(reply
            .collections
            .iter()
            .filter_map(|c| c.spec.as_ref().map(|s| s.replication_factor))
            .collect())
    }

    async fn drop_collection(&self, name: &str) -> Result<(), PlacementError> {
        let request = pb::DropCollectionRequest { name: name.into() };
        let result = self
            .call(|mut c| {
                let request = request.clone();
                async move { c.drop_collection(request).await }
            })
            .await
            .map(|_| ());
        ok_if(Code::NotFound, result)
    }
}
