//! Process tests of workers: a PD and three `vectron worker` processes on
//! loopback hosting a 3-replica shard, with kill -9 and restart, a wiped data
//! dir (a new incarnation) and a second process under a live worker's name.

use std::time::Duration;

use vectron_proto::common::v1::{self as common, Consistency, Metric};
use vectron_proto::error_detail::detail_of;
use vectron_proto::pd::v1 as pd;
use vectron_proto::worker::v1 as pb;

use crate::harness::{PdCluster, WorkerProc, free_port, serial, wait_for, worker_client};

const WAIT: Duration = Duration::from_secs(60);

fn point(i: u64) -> pb::Point {
    let x = i as f32;
    pb::Point {
        id: Some(common::PointId {
            kind: Some(common::point_id::Kind::Num(i)),
        }),
        vector: vec![x.sin(), x.cos(), (x * 0.1).sin(), 1.0],
        payload_json: format!(r#"{{"i": {i}}}"#).into_bytes(),
    }
}

/// The shard's current routing entry from PD (its epoch moves with every
/// membership change).
async fn current_shard(pd_client: &vectron_pd::PdClient) -> pd::Shard {
    let request = pd::GetRoutingTableRequest {
        collection: "c".into(),
    };
    pd_client
        .call(|mut c| {
            let request = request.clone();
            async move { c.get_routing_table(request).await }
        })
        .await
        .expect("routing table")
        .shards
        .remove(0)
}

/// Finds the worker that answers a strong count, following NOT_LEADER hints.
async fn strong_count(addrs: &[String], shard: &pd::Shard) -> Option<(String, u64)> {
    for addr in addrs {
        let Some(mut c) = worker_client(addr).await else {
            continue;
        };
        let request = pb::CountRequest {
            shard: Some(pb::ShardRef {
                shard_id: shard.shard_id,
                epoch: shard.epoch,
            }),
            filter: None,
            consistency: Consistency::Strong.into(),
        };
        match c.count(request).await {
            Ok(reply) => return Some((addr.clone(), reply.into_inner().count)),
            Err(status) => {
                let _ = detail_of(&status);
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_upserts_survive_kill_and_restart_of_any_worker() {
    let _serial = serial().await;
    let cluster = PdCluster::start(1, &[]);
    cluster.wait_for_leader(WAIT).await;
    let endpoints = cluster.endpoints();
    let mut workers: Vec<WorkerProc> = (0..3)
        .map(|i| WorkerProc::new(cluster.dir(), &format!("w{i}"), &endpoints))
        .collect();
    for w in &mut workers {
        // Snapshot often so the log is purged and a wiped replica has to
        // catch up through a snapshot.
        w.extra = vec!["--snapshot-every".into(), "5".into()];
        w.spawn();
    }
    let pd_client = cluster.client();
    wait_for("three workers up", WAIT, || async {
        let reply = pd_client
            .call(|mut c| async move { c.list_workers(pd::ListWorkersRequest {}).await })
            .await
            .ok()?;
        (reply
            .workers
            .iter()
            .filter(|w| w.state() == pd::WorkerState::Up)
            .count()
            == 3)
            .then_some(())
    })
    .await;
    let request = pd::CreateCollectionRequest {
        spec: Some(pd::CollectionSpec {
            name: "c".into(),
            dimension: 4,
            metric: Metric::L2.into(),
            shards: 1,
            replication_factor: 3,
            hnsw: None,
        }),
    };
    pd_client
        .call(|mut c| {
            let request = request.clone();
            async move { c.create_collection(request).await }
        })
        .await
        .expect("create collection");
    let shard = current_shard(&pd_client).await;
    let mut addrs: Vec<String> = workers.iter().map(|w| w.addr.clone()).collect();
    let find_leader = || async {
        wait_for("the shard group to elect a leader", WAIT, || async {
            strong_count(&addrs, &shard).await
        })
        .await
        .0
    };
    let mut leader_addr = find_leader().await;

    // 10,000 upserts acknowledged by the leader. Right after the group forms
    // leadership may still move once; an upsert is idempotent, so a batch
    // refused with NOT_LEADER is resent to the new leader (as the gateway does).
    for batch in 0..20u64 {
        let request = pb::UpsertRequest {
            shard: Some(pb::ShardRef {
                shard_id: shard.shard_id,
                epoch: shard.epoch,
            }),
            points: (batch * 500..(batch + 1) * 500).map(point).collect(),
            // One id for every attempt of the batch, as the gateway sends.
            request_id: (u128::from(batch) + 1).to_be_bytes().to_vec(),
        };
        let mut attempts = 0;
        let reply = loop {
            let mut leader = worker_client(&leader_addr).await.expect("leader reachable");
            match leader.upsert(request.clone()).await {
                Ok(reply) => break reply,
                Err(status) if status.code() == tonic::Code::FailedPrecondition && attempts < 5 => {
                    attempts += 1;
                    leader_addr = find_leader().await;
                }
                Err(status) => panic!("upsert not acknowledged: {status:?}"),
            }
        };
        assert_eq!(reply.into_inner().upserted, 500);
    }
    let mut leader = worker_client(&leader_addr).await.expect("leader reachable");

    // Bad input writes nothing: one NaN in a batch rejects the batch.
    let mut bad = point(10_001);
    bad.vector[2] = f32::NAN;
    let status = leader
        .upsert(pb::UpsertRequest {
            shard: Some(pb::ShardRef {
                shard_id: shard.shard_id,
                epoch: shard.epoch,
            }),
            points: vec![point(10_000), bad],
            ..Default::default()
        })
        .await
        .expect_err("NaN rejected");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        detail_of(&status).map(|d| d.field),
        Some("points[1].vector[2]".to_string())
    );

    // Kill each worker in turn (the leader first), restart it, and read every
    // acknowledged point back with strong consistency.
    let leader_position = addrs
        .iter()
        .position(|a| *a == leader_addr)
        .expect("leader is ours");
    for position in [leader_position, (leader_position + 1) % 3] {
        workers[position].kill9();
        let (_, count) = wait_for("a strong count from the survivors", WAIT, || async {
            strong_count(&addrs, &shard).await
        })
        .await;
        assert_eq!(count, 10_000, "after killing {}", workers[position].name);
        workers[position].spawn();
    }
    let (answering, count) = wait_for("a strong count after restarts", WAIT, || async {
        strong_count(&addrs, &shard).await
    })
    .await;
    assert_eq!(count, 10_000);
    let mut c = worker_client(&answering).await.expect("reachable");
    let got = c
        .get(pb::GetRequest {
            shard: Some(pb::ShardRef {
                shard_id: shard.shard_id,
                epoch: shard.epoch,
            }),
            ids: [0u64, 4_321, 9_999, 10_000]
                .iter()
                .map(|i| common::PointId {
                    kind: Some(common::point_id::Kind::Num(*i)),
                })
                .collect(),
            with_vector: true,
            with_payload: true,
            consistency: Consistency::Strong.into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.points.len(), 3, "10,000 was never acknowledged");
    assert_eq!(got.points[1].vector, point(4_321).vector);
    assert_eq!(got.points[1].payload_json, point(4_321).payload_json);

    // Every worker restarted at a new address (rescheduled pods with new
    // IPs): the group's membership still holds the old addresses, so the
    // replicas can reach each other only through the addresses PD knows now.
    for w in workers.iter_mut() {
        w.kill9();
    }
    for (position, w) in workers.iter_mut().enumerate() {
        w.addr = format!("127.0.0.1:{}", free_port());
        addrs[position] = w.addr.clone();
        w.spawn();
    }
    let (_, count) = wait_for("a strong count after every worker moved", WAIT, || async {
        strong_count(&addrs, &shard).await
    })
    .await;
    assert_eq!(count, 10_000);

    // A worker whose data dir is wiped rejoins under a new worker id (its
    // Raft votes and log are gone, so the old node id must not vote again);
    // the old id is removed, PD re-creates its replica on the new one, and
    // that replica catches up through a snapshot.
    let (leader_now, _) = strong_count(&addrs, &shard).await.expect("a leader");
    let wiped = (addrs.iter().position(|a| *a == leader_now).expect("ours") + 1) % 3;
    let old_id = workers_named(&pd_client, &workers[wiped].name).await[0].id;
    workers[wiped].kill9();
    std::fs::remove_dir_all(&workers[wiped].data_dir).expect("wipe data dir");
    workers[wiped].spawn();
    let new_id = wait_for(
        "the wiped worker to rejoin under a new id",
        WAIT,
        || async {
            let named = workers_named(&pd_client, &workers[wiped].name).await;
            let up = named.iter().find(|w| w.state() == pd::WorkerState::Up)?;
            (up.id != old_id).then_some(up.id)
        },
    )
    .await;
    let old = workers_named(&pd_client, &workers[wiped].name).await;
    assert!(
        old.iter()
            .any(|w| w.id == old_id && w.state() == pd::WorkerState::Removed),
        "the old incarnation must be removed: {old:?}"
    );

    // Every replica, including the restarted and wiped ones, converges to
    // 10,000 points, and the new id votes in place of the old one.
    wait_for(
        "the new incarnation to replace the old voter",
        WAIT,
        || async {
            let voters: Vec<u64> = current_shard(&pd_client)
                .await
                .replicas
                .iter()
                .filter(|r| r.kind() == pd::ReplicaKind::Voter)
                .map(|r| r.worker_id)
                .collect();
            (voters.contains(&new_id) && !voters.contains(&old_id)).then_some(())
        },
    )
    .await;
    for w in &workers {
        wait_for("every replica to hold every point", WAIT, || async {
            let shard = current_shard(&pd_client).await;
            // A restarted worker registers with PD before it listens.
            let mut c = worker_client(&w.addr).await?;
            let reply = c
                .count(pb::CountRequest {
                    shard: Some(pb::ShardRef {
                        shard_id: shard.shard_id,
                        epoch: shard.epoch,
                    }),
                    filter: None,
                    consistency: Consistency::Eventual.into(),
                })
                .await
                .ok()?;
            (reply.into_inner().count == 10_000).then_some(())
        })
        .await;
    }
    assert!(
        workers[wiped]
            .log()
            .contains("installed a snapshot from the leader"),
        "the wiped replica caught up without a snapshot:\n{}",
        workers[wiped].log_tail()
    );

    // A second process under a live worker's name is refused: it would share
    // that worker's id. It keeps retrying (the name may be free soon, as when
    // a pod moves) and never registers.
    let live_named = |name: String| {
        let pd_client = &pd_client;
        async move {
            let mut named = workers_named(pd_client, &name).await;
            named.retain(|w| w.state() != pd::WorkerState::Removed);
            named
        }
    };
    let holder = live_named(workers[0].name.clone()).await[0].clone();
    let mut impostor =
        WorkerProc::labelled(cluster.dir(), &workers[0].name, "impostor", &endpoints);
    impostor.spawn();
    wait_for("the impostor to be refused", WAIT, || async {
        impostor.log().contains("worker name in use").then_some(())
    })
    .await;
    let named = live_named(workers[0].name.clone()).await;
    assert_eq!(named.len(), 1, "{named:?}");
    assert_eq!((named[0].id, &named[0].addr), (holder.id, &holder.addr));
    assert!(
        !impostor.log().contains("worker registered with PD"),
        "{}",
        impostor.log_tail()
    );
    impostor.kill9();
}

/// Every worker record PD holds under `name`, current and removed.
async fn workers_named(pd_client: &vectron_pd::PdClient, name: &str) -> Vec<pd::Worker> {
    pd_client
        .call(|mut c| async move { c.list_workers(pd::ListWorkersRequest {}).await })
        .await
        .expect("list workers")
        .workers
        .into_iter()
        .filter(|w| w.name == name)
        .collect()
}
