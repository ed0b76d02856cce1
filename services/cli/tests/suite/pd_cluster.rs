//! Process tests of the placement driver: real `vectron pd` processes on
//! loopback, killed with SIGKILL, wiped, restarted, scaled.

use std::collections::BTreeSet;
use std::time::Duration;

use tonic::Code;
use vectron_pd::{PdClient, PdClientError};
use vectron_proto::common::v1::{ErrorReason, Metric};
use vectron_proto::error_detail::detail_of;
use vectron_proto::pd::v1 as pb;

use crate::harness::{PdCluster, serial, wait_for};

const ELECTION: Duration = Duration::from_secs(30);

fn spec(name: &str, shards: u32, rf: u32) -> pb::CollectionSpec {
    pb::CollectionSpec {
        name: name.into(),
        dimension: 16,
        metric: Metric::Cosine.into(),
        shards,
        replication_factor: rf,
        hnsw: None,
    }
}

async fn create(
    client: &PdClient,
    spec: pb::CollectionSpec,
) -> Result<pb::Collection, PdClientError> {
    let request = pb::CreateCollectionRequest { spec: Some(spec) };
    client
        .call(|mut c| {
            let request = request.clone();
            async move { c.create_collection(request).await }
        })
        .await
        .map(|r| r.collection.expect("created collection is returned"))
}

async fn register(client: &PdClient, name: &str) -> u64 {
    let request = pb::RegisterWorkerRequest {
        name: name.into(),
        addr: "127.0.0.1:1".into(),
        zone: String::new(),
        ..Default::default()
    };
    client
        .call(|mut c| {
            let request = request.clone();
            async move { c.register_worker(request).await }
        })
        .await
        .expect("register worker")
        .worker_id
}

async fn collection_names(client: &PdClient) -> BTreeSet<String> {
    client
        .call(|mut c| async move { c.list_collections(pb::ListCollectionsRequest {}).await })
        .await
        .expect("list collections")
        .collections
        .into_iter()
        .filter_map(|c| c.spec.map(|s| s.name))
        .collect()
}

async fn worker_names(client: &PdClient) -> BTreeSet<String> {
    client
        .call(|mut c| async move { c.list_workers(pb::ListWorkersRequest {}).await })
        .await
        .expect("list workers")
        .workers
        .into_iter()
        .map(|w| w.name)
        .collect()
}

async fn routing(
    client: &PdClient,
    name: &str,
) -> Result<pb::GetRoutingTableResponse, PdClientError> {
    let request = pb::GetRoutingTableRequest {
        collection: name.into(),
    };
    client
        .call(|mut c| {
            let request = request.clone();
            async move { c.get_routing_table(request).await }
        })
        .await
}

/// Waits until the node at `position` has applied at least `index`.
async fn wait_applied(
    cluster: &PdCluster,
    position: usize,
    index: u64,
    what: &str,
) -> pb::GetMembersResponse {
    let node = &cluster.nodes[position];
    wait_for(what, ELECTION, || async {
        node.members().await.filter(|m| m.applied_index >= index)
    })
    .await
}

async fn leader_applied(cluster: &PdCluster, leader: usize) -> u64 {
    cluster.nodes[leader]
        .members()
        .await
        .expect("leader answers")
        .applied_index
}

#[tokio::test(flavor = "multi_thread")]
async fn three_processes_elect_one_leader_and_replicate_writes() {
    let _serial = serial().await;
    let cluster = PdCluster::start(3, &[]);
    let leader = cluster.wait_for_leader(ELECTION).await;
    let follower = (leader + 1) % 3;

    // Writes sent to a follower reach the leader through the NOT_LEADER hint.
    let via_follower = cluster.nodes[follower].client();
    for name in ["w1", "w2", "w3"] {
        register(&via_follower, name).await;
    }
    let created = create(&via_follower, spec("docs", 4, 3))
        .await
        .expect("create via follower");
    assert_eq!(created.spec.as_ref().map(|s| s.shards), Some(4));

    // Every node has applied the write, and a client of any single node reads it.
    let index = leader_applied(&cluster, leader).await;
    for position in 0..3 {
        wait_applied(&cluster, position, index, "every node to apply the create").await;
        let table = routing(&cluster.nodes[position].client(), "docs")
            .await
            .expect("routing table");
        assert_eq!(table.shards.len(), 4);
        for shard in &table.shards {
            let workers: BTreeSet<u64> = shard.replicas.iter().map(|r| r.worker_id).collect();
            assert_eq!(workers.len(), 3, "replicas on distinct workers: {shard:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn leader_kill_failover_restart_and_full_restart() {
    let _serial = serial().await;
    let mut cluster = PdCluster::start(3, &[]);
    let leader = cluster.wait_for_leader(ELECTION).await;
    let client = cluster.client();
    register(&client, "w1").await;
    create(&client, spec("before", 2, 1))
        .await
        .expect("create before the kill");

    cluster.node(leader).kill9();
    let new_leader = cluster.wait_for_leader(ELECTION).await;
    assert_ne!(new_leader, leader);
    let client = cluster.client();
    create(&client, spec("after", 2, 1))
        .await
        .unwrap_or_else(|e| panic!("create after the kill: {e}\n{}", cluster.logs()));

    // The killed node comes back and catches up.
    cluster.restart(leader);
    let index = leader_applied(&cluster, new_leader).await;
    wait_applied(&cluster, leader, index, "the restarted node to catch up").await;

    // kill -9 of every node, then restart: nothing acknowledged is lost.
    for position in 0..3 {
        cluster.node(position).kill9();
    }
    for position in 0..3 {
        cluster.restart(position);
    }
    cluster.wait_for_leader(ELECTION).await;
    let client = cluster.client();
    assert_eq!(
        collection_names(&client).await,
        BTreeSet::from(["after".to_string(), "before".to_string()])
    );
    assert_eq!(
        worker_names(&client).await,
        BTreeSet::from(["w1".to_string()])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wiped_and_new_nodes_catch_up_through_snapshots() {
    let _serial = serial().await;
    let mut cluster = PdCluster::start(3, &["--snapshot-every", "20"]);
    let leader = cluster.wait_for_leader(ELECTION).await;
    let client = cluster.client();
    for i in 0..120u32 {
        let request = pb::KvPutRequest {
            key: format!("key/{i:03}").into_bytes(),
            value: i.to_string().into_bytes(),
            expected_version: None,
        };
        client
            .call(|mut c| {
                let request = request.clone();
                async move { c.kv_put(request).await }
            })
            .await
            .expect("kv put");
    }
    // The leader's log no longer starts at the beginning, so a node without
    // data can only catch up through a snapshot.
    let leader_view = wait_for("the leader to purge its log", ELECTION, || async {
        cluster.nodes[leader]
            .members()
            .await
            .filter(|m| m.purged_index > 0)
    })
    .await;

    let follower = (leader + 1) % 3;
    cluster.node(follower).kill9();
    cluster.wipe(follower);
    cluster.restart(follower);
    let view = wait_applied(
        &cluster,
        follower,
        leader_view.applied_index,
        "the wiped node to catch up",
    )
    .await;
    assert!(
        view.snapshot_index > 0,
        "wiped node has a snapshot: {view:?}"
    );

    let via = cluster.nodes[leader].addr.clone();
    let joined = cluster.join(4, &via);
    let view = wait_applied(
        &cluster,
        joined,
        leader_view.applied_index,
        "the joined node to catch up",
    )
    .await;
    assert!(
        view.snapshot_index > 0,
        "joined node has a snapshot: {view:?}"
    );

    // The data is intact through any endpoint.
    let scan = cluster
        .client()
        .call(|mut c| async move {
            c.kv_scan(pb::KvScanRequest {
                prefix: b"key/".to_vec(),
                start_after: Vec::new(),
                limit: 0,
            })
            .await
        })
        .await
        .expect("scan");
    assert_eq!(scan.pairs.len(), 120);
    assert_eq!(scan.pairs[119].value, b"119");
}

#[tokio::test(flavor = "multi_thread")]
async fn scaling_three_to_five_and_back_keeps_state() {
    let _serial = serial().await;
    let mut cluster = PdCluster::start(3, &[]);
    cluster.wait_for_leader(ELECTION).await;
    let client = cluster.client();
    register(&client, "w1").await;
    create(&client, spec("first", 1, 1)).await.expect("create");

    let via = cluster.nodes[0].addr.clone();
    cluster.join(4, &via);
    cluster.join(5, &via);
    let voters = |m: &pb::GetMembersResponse| -> BTreeSet<u64> {
        m.members
            .iter()
            .filter(|x| x.role() != pb::MemberRole::Learner)
            .map(|x| x.node_id)
            .collect()
    };
    wait_for("five voters", ELECTION, || async {
        let view = cluster.nodes[0].members().await?;
        (voters(&view).len() == 5).then_some(())
    })
    .await;
    let client = cluster.client();
    create(&client, spec("at-five", 1, 1))
        .await
        .expect("create at five");

    for node_id in [1u64, 2] {
        let request = pb::RemoveMemberRequest { node_id };
        client
            .call(|mut c| async move { c.remove_member(request).await })
            .await
            .unwrap_or_else(|e| panic!("remove member {node_id}: {e}\n{}", cluster.logs()));
    }
    cluster.node(0).kill9();
    cluster.node(1).kill9();
    cluster.wait_for_leader(ELECTION).await;
    let view = cluster.nodes[2].members().await.expect("node 3 answers");
    assert_eq!(voters(&view), BTreeSet::from([3, 4, 5]));

    let client = cluster.client();
    create(&client, spec("at-three", 1, 1))
        .await
        .expect("create after scaling down");
    assert_eq!(
        collection_names(&client).await,
        BTreeSet::from(["at-five".into(), "at-three".into(), "first".into()])
    );
}

fn rejected(result: Result<impl std::fmt::Debug, PdClientError>) -> tonic::Status {
    match result {
        Err(PdClientError::Rejected(status)) => status,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn field(status: &tonic::Status) -> String {
    detail_of(status).map(|d| d.field).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_rejected_by_field_and_changes_nothing() {
    let _serial = serial().await;
    let cluster = PdCluster::start(3, &[]);
    cluster.wait_for_leader(ELECTION).await;
    let client = cluster.client();
    register(&client, "w1").await;
    register(&client, "w2").await;
    create(&client, spec("c", 2, 2))
        .await
        .expect("valid create");
    let before = routing(&client, "c").await.expect("routing");

    for (bad, expected_field) in [
        (
            pb::CollectionSpec {
                dimension: 0,
                ..spec("x", 1, 1)
            },
            "dimension",
        ),
        (
            pb::CollectionSpec {
                shards: 0,
                ..spec("x", 1, 1)
            },
            "shards",
        ),
        (spec("x", 1, 3), "replication_factor"),
        (
            pb::CollectionSpec {
                metric: 0,
                ..spec("x", 1, 1)
            },
            "metric",
        ),
    ] {
        let status = rejected(create(&client, bad).await);
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(field(&status), expected_field, "{status:?}");
        assert!(status.message().contains(expected_field), "{status:?}");
    }

    let status = rejected(create(&client, spec("c", 1, 1)).await);
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(status.message().contains("\"c\""), "{status:?}");

    let status = rejected(routing(&client, "missing").await);
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        detail_of(&status).map(|d| d.reason()),
        Some(ErrorReason::CollectionNotFound)
    );
    let status = rejected(
        client
            .call(|mut c| async move {
                c.drop_collection(pb::DropCollectionRequest {
                    name: "missing".into(),
                })
                .await
            })
            .await,
    );
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("missing"), "{status:?}");

    // Nothing changed.
    assert_eq!(
        collection_names(&client).await,
        BTreeSet::from(["c".to_string()])
    );
    assert_eq!(routing(&client, "c").await.expect("routing"), before);
}

async fn worker_state(client: &PdClient, name: &str) -> pb::Worker {
    let request = pb::GetWorkerRequest { name: name.into() };
    client
        .call(|mut c| {
            let request = request.clone();
            async move { c.get_worker(request).await }
        })
        .await
        .expect("get worker")
        .worker
        .expect("worker present")
}

async fn heartbeat(client: &PdClient, worker_id: u64) -> pb::HeartbeatResponse {
    let request = pb::HeartbeatRequest {
        worker_id,
        replicas: Vec::new(),
    };
    client
        .call(|mut c| {
            let request = request.clone();
            async move { c.heartbeat(request).await }
        })
        .await
        .expect("heartbeat")
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_register_heartbeat_go_down_and_drain() {
    let _serial = serial().await;
    let cluster = PdCluster::start(3, &["--heartbeat-timeout-secs", "2"]);
    cluster.wait_for_leader(ELECTION).await;
    let client = cluster.client();
    let a = register(&client, "a").await;
    let b = register(&client, "b").await;
    let c = register(&client, "c").await;
    assert_eq!(
        register(&client, "a").await,
        a,
        "re-registering keeps the id"
    );
    create(&client, spec("col", 3, 2)).await.expect("create");

    // The heartbeat reply lists exactly the replicas placed on the worker.
    let table = routing(&client, "col").await.expect("routing");
    for (name, id) in [("a", a), ("b", b), ("c", c)] {
        let reply = heartbeat(&client, id).await;
        let assigned: BTreeSet<u64> = reply
            .assignments
            .iter()
            .filter_map(|x| x.shard.as_ref().map(|s| s.shard_id))
            .collect();
        let placed: BTreeSet<u64> = table
            .shards
            .iter()
            .filter(|s| s.replicas.iter().any(|r| r.worker_id == id))
            .map(|s| s.shard_id)
            .collect();
        assert_eq!(assigned, placed, "assignments of {name}");
        assert!(reply.assignments.iter().all(|x| x.dimension == 16));
    }

    // Silent past the timeout → Down; heartbeating again → Up.
    let down = wait_for("worker a to be marked Down", ELECTION, || async {
        let w = worker_state(&client, "a").await;
        (w.state() == pb::WorkerState::Down).then_some(w)
    })
    .await;
    assert_eq!(down.id, a);
    heartbeat(&client, a).await;
    assert_eq!(
        worker_state(&client, "a").await.state(),
        pb::WorkerState::Up
    );

    // Drain marks the worker Draining; removing it is refused while it holds
    // replicas. Keep b heartbeating so it is not marked Down meanwhile.
    let endpoints = cluster.endpoints();
    let keep_alive = tokio::spawn(async move {
        let client = PdClient::new(&endpoints).expect("valid endpoints");
        loop {
            heartbeat(&client, b).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    heartbeat(&client, b).await;
    let request = pb::DrainWorkerRequest { name: "b".into() };
    let drained = client
        .call(|mut c| {
            let request = request.clone();
            async move { c.drain_worker(request).await }
        })
        .await
        .expect("drain")
        .worker
        .expect("worker");
    assert_eq!(drained.state(), pb::WorkerState::Draining);
    assert!(drained.replicas > 0 && !drained.drained);
    let status = rejected(
        client
            .call(|mut c| async move {
                c.remove_worker(pb::RemoveWorkerRequest { name: "b".into() })
                    .await
            })
            .await,
    );
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("drain"), "{status:?}");
    assert_eq!(
        worker_state(&client, "b").await.state(),
        pb::WorkerState::Draining
    );
    keep_alive.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_not_among_the_initial_members_joins_them() {
    let _serial = serial().await;
    let mut cluster = PdCluster::start(3, &[]);
    cluster.wait_for_leader(ELECTION).await;
    // As a fourth StatefulSet pod: same --initial-members, an id not in it.
    cluster.add_after_founders(4);
    let voters = |m: &pb::GetMembersResponse| -> BTreeSet<u64> {
        m.members
            .iter()
            .filter(|x| x.role() != pb::MemberRole::Learner)
            .map(|x| x.node_id)
            .collect()
    };
    wait_for("node 4 voting with the founders", ELECTION, || async {
        let view = cluster.nodes[0].members().await?;
        (voters(&view) == BTreeSet::from([1, 2, 3, 4])).then_some(())
    })
    .await;
}
