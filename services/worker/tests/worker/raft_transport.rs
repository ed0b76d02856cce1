//! The Raft transport between workers, over real gRPC on loopback: a request
//! names the node it is meant for, and a node refuses requests meant for
//! another (a stale address that now belongs to a different worker id).

use std::sync::Arc;

use tonic::transport::server::TcpIncoming;
use vectron_proto::pd::v1 as pd;
use vectron_proto::raft::v1 as pb;
use vectron_proto::raft::v1::raft_client::RaftClient;
use vectron_raft::network::ChannelPool;
use vectron_raft::open_db;
use vectron_raft::service::{GroupRegistry, RaftService};
use vectron_worker::replica::Replica;
use vectron_worker::shard::ShardTypeConfig;
use vectron_worker::storage::DATA_CFS;

const SHARD: u64 = 5;
const NODE: u64 = 7;

fn vote(target_node_id: u64) -> pb::VoteRequest {
    pb::VoteRequest {
        group_id: SHARD,
        vote: Some(pb::Vote {
            term: 1,
            node_id: 9,
            committed: false,
        }),
        last_log_id: None,
        target_node_id,
    }
}

#[tokio::test]
async fn a_node_refuses_raft_requests_meant_for_another_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open_db(&dir.path().join("db"), DATA_CFS).expect("db");
    let assignment = pd::ReplicaAssignment {
        shard: Some(pd::Shard {
            shard_id: SHARD,
            collection: "c".into(),
            range_end: u64::MAX,
            epoch: 1,
            ..Default::default()
        }),
        dimension: 2,
        ..Default::default()
    };
    let config = Arc::new(
        openraft::Config::default()
            .validate()
            .expect("default raft config"),
    );
    let replica = Replica::open(
        db,
        &dir.path().join("index"),
        NODE,
        &assignment,
        config,
        ChannelPool::new(vectron_proto::channel::Role::Worker),
    )
    .await
    .expect("open replica");
    let registry = Arc::new(GroupRegistry::<ShardTypeConfig>::default());
    registry.insert(SHARD, replica.raft.clone());
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let addr = incoming.local_addr().expect("local addr");
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(RaftService::server(registry))
            .serve_with_incoming(incoming),
    );
    let mut client = RaftClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");

    let refused = client
        .vote(vote(NODE + 1))
        .await
        .expect_err("a vote meant for node 8 must not be answered by node 7");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(refused.message().contains("not node 8"), "{refused:?}");

    let answered = client.vote(vote(NODE)).await.expect("meant for this node");
    assert!(answered.into_inner().vote.is_some());
    // Senders that predate the field name no target.
    client.vote(vote(0)).await.expect("no target named");

    let trigger = client
        .trigger_election(pb::TriggerElectionRequest {
            group_id: SHARD,
            target_node_id: NODE + 1,
        })
        .await
        .expect_err("an election meant for node 8");
    assert_eq!(trigger.code(), tonic::Code::FailedPrecondition);

    server.abort();
    let _ = replica.raft.shutdown().await;
}
