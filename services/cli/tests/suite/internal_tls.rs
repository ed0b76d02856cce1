//! Internal ports under mutual TLS, attacked from outside: a playground
//! with `--auth` (3 PD, 2 workers, auth) and `vectron dev --auth`.
//! Every internal port refuses plaintext and certificates from another CA;
//! a worker's (or gateway's) certificate cannot call what its role may not;
//! the attacks of the security review (API-key injection through PD's KV,
//! worker-name takeover, forged AppendEntries, PD AddMember) are tried and
//! refused; membership, workers, auth records and data are unchanged after.
//! As a control, the same key injection made with the admin certificate
//! does produce a working admin key, so the refusals are the policy's.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tonic::transport::{Channel, Endpoint};
use vectron_client::Point;
use vectron_proto::auth::v1 as auth_pb;
use vectron_proto::auth::v1::auth_client::AuthClient;
use vectron_proto::pd::v1 as pd;
use vectron_proto::pd::v1::placement_driver_client::PlacementDriverClient;
use vectron_proto::raft::v1 as raft_pb;
use vectron_proto::raft::v1::raft_client::RaftClient;
use vectron_proto::worker::v1 as worker_pb;
use vectron_proto::worker::v1::worker_client::WorkerClient;
use vectron_tls::{Authority, CertRequest, Identity, Role, TlsFiles};

use crate::cluster_harness::{ADMIN_PASSWORD, DevServer, Playground};
use crate::harness::{PdCluster, serial, suite_pki};

/// A channel to `addr` (a server of role `peer`) presenting `files`.
async fn tls_channel(addr: &str, peer: Role, files: &TlsFiles) -> Result<Channel, String> {
    let identity = Identity::load(files.clone()).map_err(|e| e.to_string())?;
    Endpoint::from_shared(format!("https://{addr}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .tls_config(identity.client_config(peer))
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| e.to_string())
}

/// A plaintext HTTP/2 channel to `addr`, as any local user could open.
async fn plain_channel(addr: &str) -> Result<Channel, String> {
    Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| e.to_string())
}

/// A certificate naming every role, from a CA the cluster does not trust,
/// with the cluster's CA as the one it trusts (so it gets as far as the
/// server's own check).
fn stranger(dir: &Path) -> TlsFiles {
    let ca = Authority::generate().expect("stranger CA");
    ca.issue(&CertRequest {
        common_name: "stranger".into(),
        roles: Role::ALL.to_vec(),
        hosts: vec![],
        days: 1,
    })
    .expect("issue")
    .write(dir, "stranger")
    .expect("write");
    TlsFiles {
        ca: suite_pki().join("ca.pem"),
        cert: dir.join("stranger.pem"),
        key: dir.join("stranger.key"),
    }
}

fn suite(role: &str) -> TlsFiles {
    TlsFiles::in_dir(suite_pki(), role)
}

/// A GetMembers (PD), Count (worker) or ListUsers (auth) call through
/// `channel`: something every port answers to a permitted caller.
async fn probe(channel: Channel, peer: Role) -> Result<(), tonic::Status> {
    match peer {
        Role::Pd => PlacementDriverClient::new(channel)
            .get_members(pd::GetMembersRequest {})
            .await
            .map(drop),
        Role::Worker => RaftClient::new(channel)
            .vote(raft_pb::VoteRequest::default())
            .await
            .map(drop),
        _ => AuthClient::new(channel)
            .list_users(auth_pb::ListUsersRequest::default())
            .await
            .map(drop),
    }
}

/// Whether a call was refused at the connection (no handshake, or the
/// connection dropped), as opposed to answered by a service.
fn refused_at_connection(outcome: &Result<(), String>) -> bool {
    match outcome {
        Ok(()) => false,
        Err(message) => !message.starts_with("answered:"),
    }
}

async fn call(channel: Result<Channel, String>, peer: Role) -> Result<(), String> {
    let channel = channel?;
    match probe(channel, peer).await {
        Ok(()) => Ok(()),
        // A status made by the client's transport (connection closed, a TLS
        // alert read as HTTP/2) carries the transport error as its source;
        // one answered by a service does not.
        Err(status)
            if std::error::Error::source(&status).is_some()
                || status.code() == tonic::Code::Unavailable =>
        {
            Err(status.to_string())
        }
        Err(status) => Err(format!("answered: {status}")),
    }
}

/// Every port refuses a plaintext client and a certificate from another
/// CA at the connection, while the suite's admin certificate is answered.
async fn strangers_are_refused(ports: &[(String, Role)], stranger: &TlsFiles) {
    for (addr, peer) in ports {
        let admin = call(tls_channel(addr, *peer, &suite("admin")).await, *peer).await;
        assert!(
            !refused_at_connection(&admin),
            "{addr} ({peer}) did not answer the admin certificate: {admin:?}"
        );
        let plain = call(plain_channel(addr).await, *peer).await;
        assert!(
            refused_at_connection(&plain),
            "{addr} ({peer}) answered a plaintext client: {plain:?}"
        );
        let foreign = call(tls_channel(addr, *peer, stranger).await, *peer).await;
        assert!(
            refused_at_connection(&foreign),
            "{addr} ({peer}) answered a certificate from another CA: {foreign:?}"
        );
    }
}

fn assert_denied<T: std::fmt::Debug>(what: &str, outcome: Result<T, tonic::Status>) {
    match outcome {
        Err(status) if status.code() == tonic::Code::PermissionDenied => {}
        other => panic!("{what}: expected PERMISSION_DENIED, got {other:?}"),
    }
}

/// An API-key record granting admin, as an attacker would write it into
/// PD's KV; returns the key the attacker would then present.
fn forged_admin_key() -> (pd::KvPutRequest, String) {
    let new = vectron_auth::api_key::generate().expect("key");
    let record = vectron_auth::store::ApiKeyRecord {
        id: new.id.clone(),
        name: "injected".into(),
        secret_sha256: new.secret_sha256.clone(),
        role: vectron_auth::Role::Admin,
        collections: None,
        created_at_unix: 0,
    };
    let put = pd::KvPutRequest {
        key: vectron_auth::store::api_key_key(&new.id),
        value: vectron_auth::store::encode(&record).expect("encode"),
        expected_version: None,
    };
    (put, new.key)
}

#[tokio::test]
async fn internal_ports_of_a_playground_refuse_strangers_and_other_roles() {
    let _serial = serial().await;
    let password_dir = tempfile::tempdir().expect("tempdir");
    let password_file = password_dir.path().join("admin-password");
    std::fs::write(&password_file, ADMIN_PASSWORD).expect("password file");
    let pg = Playground::start_with(
        3,
        2,
        &[
            "--auth",
            "--admin-password-file",
            &password_file.display().to_string(),
        ],
    );
    let admin = {
        let anonymous = pg.client();
        let token = anonymous
            .login("admin", ADMIN_PASSWORD)
            .await
            .expect("login");
        anonymous.with_token(&token)
    };
    admin
        .create_collection(&json!({"name": "kept", "dimension": 4, "metric": "cosine", "shards": 2, "replication_factor": 2}))
        .await
        .expect("create");
    let points: Vec<Point> = (0..50u64)
        .map(|i| Point::new(i, vec![i as f32, 1.0, 0.5, -1.0]))
        .collect();
    admin.upsert("kept", &points).await.expect("upsert");

    let pd_addrs = pg.pd_endpoints();
    let auth_addr = pg.child("auth").addr.clone();
    // The suite's admin identity, following the PD leader.
    suite_pki();
    let pd_admin = vectron_pd::PdClient::new(&pd_addrs).expect("pd client");
    let members_before = pd_admin
        .call(|mut c| {
            let request = pd::GetMembersRequest {};
            async move { c.get_members(request).await }
        })
        .await
        .expect("members");
    let workers_before = pd_admin
        .call(|mut c| {
            let request = pd::ListWorkersRequest {};
            async move { c.list_workers(request).await }
        })
        .await
        .expect("workers")
        .workers;
    let keys_before = pd_admin
        .call(|mut c| {
            let request = pd::KvScanRequest {
                prefix: b"auth/".to_vec(),
                ..Default::default()
            };
            async move { c.kv_scan(request).await }
        })
        .await
        .expect("scan")
        .pairs;
    let mut ports: Vec<(String, Role)> = pd_addrs.iter().map(|a| (a.clone(), Role::Pd)).collect();
    ports.extend(
        workers_before
            .iter()
            .map(|w| (w.addr.clone(), Role::Worker)),
    );
    ports.push((auth_addr.clone(), Role::Auth));
    assert_eq!(ports.len(), 6, "3 PD, 2 workers, auth: {ports:?}");

    // No certificate, or one from another CA: refused on every port.
    let stranger_dir = tempfile::tempdir().expect("tempdir");
    strangers_are_refused(&ports, &stranger(stranger_dir.path())).await;

    // A worker's certificate: no KV writes (the API-key injection), no
    // AddMember, no auth administration.
    let (forged, forged_key) = forged_admin_key();
    for addr in &pd_addrs {
        let as_worker = PlacementDriverClient::new(
            tls_channel(addr, Role::Pd, &suite("worker"))
                .await
                .expect("a worker reaches PD"),
        );
        assert_denied(
            "KvPut as a worker",
            as_worker.clone().kv_put(forged.clone()).await,
        );
        assert_denied(
            "AddMember as a worker",
            as_worker
                .clone()
                .add_member(pd::AddMemberRequest {
                    node_id: 99,
                    addr: "127.0.0.1:1".into(),
                    learner_only: false,
                })
                .await,
        );
        // A gateway may not pose as a worker either: the name takeover.
        let as_gateway = PlacementDriverClient::new(
            tls_channel(addr, Role::Pd, &suite("gateway"))
                .await
                .expect("a gateway reaches PD"),
        );
        assert_denied(
            "RegisterWorker as a gateway",
            as_gateway
                .clone()
                .register_worker(pd::RegisterWorkerRequest {
                    name: workers_before[0].name.clone(),
                    addr: "127.0.0.1:1".into(),
                    ..Default::default()
                })
                .await,
        );
        assert_denied(
            "KvPut as a gateway",
            as_gateway.clone().kv_put(forged.clone()).await,
        );
        assert_denied(
            "AddMember as a gateway",
            as_gateway
                .clone()
                .add_member(pd::AddMemberRequest {
                    node_id: 99,
                    addr: "127.0.0.1:1".into(),
                    learner_only: false,
                })
                .await,
        );
    }
    // Worker-name takeover with a real worker certificate: the name is
    // heartbeated from another address, so PD refuses it.
    let as_worker = PlacementDriverClient::new(
        tls_channel(&pd_addrs[0], Role::Pd, &suite("worker"))
            .await
            .expect("a worker reaches PD"),
    );
    let mut tries = 0;
    let takeover = loop {
        let outcome = as_worker
            .clone()
            .register_worker(pd::RegisterWorkerRequest {
                name: workers_before[0].name.clone(),
                addr: "127.0.0.1:1".into(),
                ..Default::default()
            })
            .await;
        match &outcome {
            // Only the leader decides; follow until one does.
            Err(s) if s.code() == tonic::Code::Unavailable && tries < 20 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ => break outcome,
        }
    };
    assert!(
        takeover.is_err(),
        "a live worker's name was taken over: {takeover:?}"
    );

    let auth_as_worker = AuthClient::new(
        tls_channel(&auth_addr, Role::Auth, &suite("worker"))
            .await
            .expect("a worker reaches auth"),
    );
    assert_denied(
        "CreateApiKey as a worker",
        auth_as_worker
            .clone()
            .create_api_key(auth_pb::CreateApiKeyRequest {
                name: "x".into(),
                role: auth_pb::Role::Admin as i32,
                collections: None,
            })
            .await,
    );
    assert_denied(
        "CreateUser as a worker",
        auth_as_worker
            .clone()
            .create_user(auth_pb::CreateUserRequest::default())
            .await,
    );

    // Forged AppendEntries with a huge term to each replica: refused for
    // every role but worker (PD, gateway, auth, admin).
    let routing = pd_admin
        .call(|mut c| {
            let request = pd::GetRoutingTableRequest {
                collection: "kept".into(),
            };
            async move { c.get_routing_table(request).await }
        })
        .await
        .expect("routing");
    for shard in &routing.shards {
        for replica in &shard.replicas {
            for role in ["pd", "gateway", "auth", "admin"] {
                let raft = RaftClient::new(
                    tls_channel(&replica.addr, Role::Worker, &suite(role))
                        .await
                        .expect("reaches the worker"),
                );
                assert_denied(
                    &format!("AppendEntries as {role}"),
                    raft.clone()
                        .append_entries(raft_pb::AppendEntriesRequest {
                            group_id: shard.shard_id,
                            vote: Some(raft_pb::Vote {
                                term: 1_000_000,
                                node_id: 77,
                                committed: true,
                            }),
                            target_node_id: replica.worker_id,
                            ..Default::default()
                        })
                        .await,
                );
            }
        }
        // Nor may a worker talk to PD's Raft.
        let pd_raft = RaftClient::new(
            tls_channel(&pd_addrs[0], Role::Pd, &suite("worker"))
                .await
                .expect("reaches PD"),
        );
        assert_denied(
            "PD Vote as a worker",
            pd_raft
                .clone()
                .vote(raft_pb::VoteRequest {
                    group_id: 0,
                    vote: Some(raft_pb::Vote {
                        term: 1_000_000,
                        node_id: 77,
                        committed: false,
                    }),
                    ..Default::default()
                })
                .await,
        );
        // A worker's data API accepts only the gateway (and admins).
        let as_pd = WorkerClient::new(
            tls_channel(&shard.replicas[0].addr, Role::Worker, &suite("pd"))
                .await
                .expect("reaches the worker"),
        );
        assert_denied(
            "worker Delete as PD",
            as_pd
                .clone()
                .delete(worker_pb::DeleteRequest::default())
                .await,
        );
    }

    // Nothing changed: membership, workers, auth records, data.
    let members_after = pd_admin
        .call(|mut c| {
            let request = pd::GetMembersRequest {};
            async move { c.get_members(request).await }
        })
        .await
        .expect("members");
    let ids = |m: &pd::GetMembersResponse| {
        let mut v: Vec<(u64, String)> = m
            .members
            .iter()
            .map(|m| (m.node_id, m.addr.clone()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&members_after), ids(&members_before));
    let workers_after = pd_admin
        .call(|mut c| {
            let request = pd::ListWorkersRequest {};
            async move { c.list_workers(request).await }
        })
        .await
        .expect("workers")
        .workers;
    let roster = |w: &[pd::Worker]| {
        let mut v: Vec<(u64, String, String)> = w
            .iter()
            .map(|w| (w.id, w.name.clone(), w.addr.clone()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(roster(&workers_after), roster(&workers_before));
    let keys_after = pd_admin
        .call(|mut c| {
            let request = pd::KvScanRequest {
                prefix: b"auth/".to_vec(),
                ..Default::default()
            };
            async move { c.kv_scan(request).await }
        })
        .await
        .expect("scan")
        .pairs;
    assert_eq!(keys_after, keys_before, "auth records unchanged");
    assert_eq!(
        admin.count("kept", &json!({})).await.expect("count"),
        50,
        "data unchanged"
    );
    let injected = pg.client().with_api_key(&forged_key);
    let refused = injected
        .list_collections()
        .await
        .expect_err("the forged key");
    assert_eq!(refused.status(), Some(401), "{refused}");

    // Control: the same injection with the admin certificate works, so the
    // refusals above are the policy's, not a malformed attack.
    pd_admin
        .call(|mut c| {
            let request = forged.clone();
            async move { c.kv_put(request).await }
        })
        .await
        .expect("an admin certificate may write PD's KV");
    let mut served = false;
    for _ in 0..40 {
        if injected.list_collections().await.is_ok() {
            served = true;
            break;
        }
        // The auth service caches an absent key for a moment.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        served,
        "the injected key works once written with admin rights"
    );
}

#[tokio::test]
async fn internal_ports_of_vectron_dev_refuse_strangers_and_other_roles() {
    let _serial = serial().await;
    let dev = DevServer::start_with_auth().await;
    let ports: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dev.data_dir().join("dev-ports.json")).expect("ports"),
    )
    .expect("json");
    let pd_addr = format!("127.0.0.1:{}", ports["pd"]);
    let worker_addr = format!("127.0.0.1:{}", ports["worker"]);
    let stranger_dir = tempfile::tempdir().expect("tempdir");
    strangers_are_refused(
        &[
            (pd_addr.clone(), Role::Pd),
            (worker_addr.clone(), Role::Worker),
        ],
        &stranger(stranger_dir.path()),
    )
    .await;
    let as_worker = PlacementDriverClient::new(
        tls_channel(&pd_addr, Role::Pd, &suite("worker"))
            .await
            .expect("a worker reaches PD"),
    );
    let (forged, forged_key) = forged_admin_key();
    assert_denied("KvPut as a worker", as_worker.clone().kv_put(forged).await);
    assert_denied(
        "AddMember as a worker",
        as_worker
            .clone()
            .add_member(pd::AddMemberRequest {
                node_id: 9,
                addr: "127.0.0.1:1".into(),
                learner_only: false,
            })
            .await,
    );
    let raft_as_gateway = RaftClient::new(
        tls_channel(&worker_addr, Role::Worker, &suite("gateway"))
            .await
            .expect("reaches the worker"),
    );
    assert_denied(
        "AppendEntries as a gateway",
        raft_as_gateway
            .clone()
            .append_entries(raft_pb::AppendEntriesRequest {
                group_id: 1,
                vote: Some(raft_pb::Vote {
                    term: 1_000_000,
                    node_id: 77,
                    committed: true,
                }),
                ..Default::default()
            })
            .await,
    );
    let members = PlacementDriverClient::new(
        tls_channel(&pd_addr, Role::Pd, &suite("admin"))
            .await
            .expect("admin reaches PD"),
    )
    .get_members(pd::GetMembersRequest {})
    .await
    .expect("members")
    .into_inner();
    assert_eq!(members.members.len(), 1, "{members:?}");
    let refused = dev
        .client()
        .with_api_key(&forged_key)
        .list_collections()
        .await
        .expect_err("the forged key");
    assert_eq!(refused.status(), Some(401), "{refused}");
}

/// The operator's PD client, as the operator runs it against a cluster
/// whose certificates it issued: a certificate naming `operator` from the
/// cluster's CA may read, drain and remove workers and read collections on
/// a real PD; a certificate from another CA is refused at the handshake; a
/// worker's certificate is refused by the policy; and without its
/// certificate the client says so instead of trying plaintext.
#[tokio::test]
async fn the_operators_pd_client_speaks_mutual_tls_as_role_operator() {
    use vectron_operator::placement::{
        ClientIdentity, GrpcPlacement, PdAccess, PdSecurity, Placement, PlacementError,
    };
    let _guard = serial().await;
    let pki = suite_pki();
    let cluster = PdCluster::start(1, &[]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let endpoint = cluster.endpoints()[0].clone();
    let issue = |ca: &Authority, role: Role| {
        let cert = ca
            .issue(&CertRequest {
                common_name: format!("test-{}", role.as_str()),
                roles: vec![role],
                hosts: Vec::new(),
                days: 1,
            })
            .expect("issue");
        ClientIdentity {
            ca_pem: ca.cert_pem().to_owned(),
            cert_pem: cert.cert_pem,
            key_pem: cert.key_pem,
        }
    };
    let client = |security: PdSecurity| {
        GrpcPlacement::new(&PdAccess {
            endpoint: endpoint.clone(),
            security,
        })
    };
    let cluster_ca = Authority::load(&pki.join("ca.pem"), &pki.join("ca.key")).expect("suite CA");

    let operator = client(PdSecurity::Mutual(issue(&cluster_ca, Role::Operator)));
    assert_eq!(operator.worker("nobody").await, Ok(None));
    assert_eq!(operator.collection("nothing").await, Ok(None));
    assert_eq!(operator.drain_worker("nobody").await, Ok(()));
    assert_eq!(operator.remove_worker("nobody").await, Ok(()));

    let worker = client(PdSecurity::Mutual(issue(&cluster_ca, Role::Worker)));
    match worker.drain_worker("nobody").await {
        Err(PlacementError::Refused(reason)) => {
            assert!(reason.contains("DrainWorker"), "{reason}");
        }
        other => panic!("a worker certificate may not drain workers: {other:?}"),
    }

    let stranger_ca = Authority::generate().expect("another CA");
    let mut stranger = issue(&stranger_ca, Role::Operator);
    // It trusts the cluster's CA, so the refusal is the server's.
    stranger.ca_pem = cluster_ca.cert_pem().to_owned();
    assert!(
        matches!(
            client(PdSecurity::Mutual(stranger)).worker("nobody").await,
            Err(PlacementError::Unreachable(_))
        ),
        "a certificate from another CA is refused"
    );
    match client(PdSecurity::Missing("not issued yet".into()))
        .worker("nobody")
        .await
    {
        Err(PlacementError::Unreachable(reason)) => assert_eq!(reason, "not issued yet"),
        other => panic!("no certificate, no call: {other:?}"),
    }
    match client(PdSecurity::Plaintext).worker("nobody").await {
        Err(PlacementError::Unreachable(_)) => {}
        other => panic!("plaintext reaches no TLS port: {other:?}"),
    }
}
