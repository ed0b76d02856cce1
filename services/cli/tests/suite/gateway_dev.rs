//! `vectron dev` end to end through the REST API: every row of the documented REST
//! table, a kill -9 restart that keeps collections and points, and bad input
//! that is refused with the error shape and writes nothing.

use std::collections::HashSet;

use serde_json::{Value, json};
use vectron_client::{Client, HttpMethod as Method, Point};

use crate::cluster_harness::DevServer;
use crate::harness::serial;

fn vector(i: u64) -> Vec<f32> {
    let x = i as f32;
    vec![
        1.0 + (x * 0.37).sin(),
        (x * 0.11).cos(),
        (x * 0.05).sin() + 0.5,
        0.1 * (i % 7) as f32,
    ]
}

fn color(i: u64) -> &'static str {
    if i.is_multiple_of(3) { "red" } else { "blue" }
}

async fn seed(client: &Client, collection: &str, n: u64) {
    let points: Vec<Point> = (0..n)
        .map(|i| {
            Point::new(i, vector(i))
                .with_payload(json!({"color": color(i), "n": i, "meta": {"even": i % 2 == 0}}))
        })
        .collect();
    assert_eq!(client.upsert(collection, &points).await.expect("upsert"), n);
}

/// Asserts an error answer: the status and the documented error shape.
fn assert_error(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "unexpected answer {answer:?}");
    assert_eq!(answer.1["error"]["code"], code, "{answer:?}");
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error without a message: {answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_serves_every_rest_row_and_keeps_data_across_kill9() {
    let _serial = serial().await;
    let mut dev = DevServer::start().await;
    let c = dev.client();

    assert_eq!(
        c.call(Method::GET, "/healthz", None)
            .await
            .expect("healthz")
            .0,
        200
    );
    assert_eq!(
        c.call(Method::GET, "/readyz", None)
            .await
            .expect("readyz")
            .0,
        200
    );
    let openapi = c
        .call(Method::GET, "/v1/openapi.json", None)
        .await
        .expect("openapi");
    assert!(openapi.1["paths"]["/v1/collections/{name}/points/search"].is_object());

    // Collections.
    let created = c
        .call(
            Method::POST,
            "/v1/collections",
            Some(&json!({"name": "docs", "dimension": 4, "metric": "cosine", "shards": 2})),
        )
        .await
        .expect("create");
    assert_eq!(created.0, 201, "{created:?}");
    assert_eq!(created.1["collection"]["name"], "docs");
    assert_eq!(created.1["collection"]["shards"], 2);
    assert_eq!(created.1["collection"]["replication_factor"], 1);
    assert_eq!(created.1["collection"]["hnsw"]["m"], 16);
    let again = c
        .call(
            Method::POST,
            "/v1/collections",
            Some(&json!({"name": "docs", "dimension": 4, "metric": "cosine"})),
        )
        .await
        .expect("duplicate");
    assert_error(&again, 409, "already_exists");
    let listed = c.list_collections().await.expect("list");
    assert!(
        listed
            .iter()
            .any(|col| col["name"] == "docs" && col["metric"] == "cosine" && col["dimension"] == 4)
    );

    // Points.
    seed(&c, "docs", 300).await;
    c.upsert(
        "docs",
        &[Point::new("a-1", vec![0.5, 0.5, 0.5, 0.5]).with_payload(json!({"color": "green"}))],
    )
    .await
    .expect("string id");
    // Ids that are also the names of action routes are readable by GET.
    let words = ["get", "delete", "search", "scroll", "count"];
    let named: Vec<Point> = words
        .iter()
        .map(|w| Point::new(*w, vec![0.1, 0.2, 0.3, 0.4]).with_payload(json!({"word": w})))
        .collect();
    assert_eq!(c.upsert("docs", &named).await.expect("word ids"), 5);
    for word in words {
        let read = c
            .call(
                Method::GET,
                &format!("/v1/collections/docs/points/{word}"),
                None,
            )
            .await
            .expect("get word id");
        assert_eq!(read.0, 200, "GET of point {word:?}: {read:?}");
        assert_eq!(read.1["point"]["id"], word);
        assert_eq!(read.1["point"]["payload"]["word"], word);
    }
    let deleted = c
        .call(
            Method::POST,
            "/v1/collections/docs/points/delete",
            Some(&json!({"ids": words})),
        )
        .await
        .expect("delete word ids");
    assert_eq!(deleted.1["deleted"], 5, "{deleted:?}");
    let one = c
        .call(Method::GET, "/v1/collections/docs/points/7", None)
        .await
        .expect("get 7");
    assert_eq!(one.0, 200, "{one:?}");
    assert_eq!(one.1["point"]["id"], 7);
    assert_eq!(one.1["point"]["payload"]["color"], color(7));
    assert_eq!(one.1["point"]["vector"].as_array().map(Vec::len), Some(4));
    let by_string = c
        .call(
            Method::GET,
            "/v1/collections/docs/points/a-1?consistency=eventual",
            None,
        )
        .await
        .expect("get a-1");
    assert_eq!(by_string.1["point"]["id"], "a-1");
    let missing = c
        .call(Method::GET, "/v1/collections/docs/points/999999", None)
        .await
        .expect("missing");
    assert_error(&missing, 404, "not_found");

    let got = c
        .get_points(
            "docs",
            &json!({"ids": [1, 2, "nope", "a-1"], "with_vector": false}),
        )
        .await
        .expect("points/get");
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().all(|p| p.vector.is_none()));

    let info = c.get_collection("docs").await.expect("get collection");
    assert_eq!(
        info["shard_status"].as_array().map(Vec::len),
        Some(2),
        "{info}"
    );
    assert_eq!(info["shard_status"][0]["replicas"][0], "dev-worker");

    // Search: the query is point 5's own vector, so point 5 comes first.
    let hits = c
        .search(
            "docs",
            &json!({"vector": vector(5), "top_k": 5, "with_payload": true}),
        )
        .await
        .expect("search");
    assert_eq!(hits.len(), 5);
    assert_eq!(hits[0].id, 5u64.into());
    assert!(
        hits.windows(2).all(|w| w[0].score >= w[1].score),
        "best first: {hits:?}"
    );
    assert!(hits[0].payload.is_some());

    // gRPC answers the same search with the same ids and scores.
    let mut grpc =
        vectron_proto::v1::vectron_client::VectronClient::connect(format!("http://{}", dev.grpc))
            .await
            .expect("grpc connect");
    let grpc_hits = grpc
        .search_points(vectron_proto::v1::SearchPointsRequest {
            collection: "docs".into(),
            vector: vector(5),
            top_k: 5,
            ..Default::default()
        })
        .await
        .expect("grpc search")
        .into_inner()
        .results;
    assert_eq!(grpc_hits.len(), hits.len());
    for (g, r) in grpc_hits.iter().zip(&hits) {
        let id = match g.id.as_ref().and_then(|id| id.kind.clone()) {
            Some(vectron_proto::common::v1::point_id::Kind::Num(n)) => {
                vectron_client::PointId::Num(n)
            }
            Some(vectron_proto::common::v1::point_id::Kind::Str(s)) => {
                vectron_client::PointId::Str(s)
            }
            None => panic!("grpc hit without id"),
        };
        assert_eq!((id, g.score), (r.id.clone(), r.score));
    }
    let grpc_error = grpc
        .search_points(vectron_proto::v1::SearchPointsRequest {
            collection: "docs".into(),
            vector: vec![1.0],
            ..Default::default()
        })
        .await
        .expect_err("wrong dimension");
    assert_eq!(grpc_error.code(), tonic::Code::InvalidArgument);
    let rest_error = c
        .call(
            Method::POST,
            "/v1/collections/docs/points/search",
            Some(&json!({"vector": [1.0]})),
        )
        .await
        .expect("rest error");
    assert_eq!(rest_error.1["error"]["message"], grpc_error.message());
    let red = c
        .search("docs", &json!({"vector": vector(5), "top_k": 20, "with_payload": true,
            "filter": {"must": [{"key": "color", "match": {"value": "red"}}], "must_not": [{"key": "n", "range": {"lt": 30}}]}}))
        .await
        .expect("filtered search");
    assert_eq!(red.len(), 20);
    for hit in &red {
        let payload = hit.payload.as_ref().expect("payload");
        assert_eq!(payload["color"], "red");
        assert!(payload["n"].as_u64().is_some_and(|n| n >= 30));
    }

    // Batch search: each answer equals the single search of the same body,
    // in the order asked, over REST and gRPC alike.
    let bodies = [
        json!({"vector": vector(5), "top_k": 5, "with_payload": true}),
        json!({"vector": vector(9), "top_k": 3}),
        json!({"vector": vector(5), "top_k": 20, "with_payload": true,
            "filter": {"must": [{"key": "color", "match": {"value": "red"}}], "must_not": [{"key": "n", "range": {"lt": 30}}]}}),
    ];
    let batch = c.search_batch("docs", &bodies).await.expect("batch search");
    assert_eq!(batch.len(), bodies.len());
    for (answer, body) in batch.iter().zip(&bodies) {
        let single = c.search("docs", body).await.expect("single search");
        let ids = |hits: &[vectron_client::ScoredPoint]| {
            hits.iter()
                .map(|h| (h.id.clone(), h.score))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(answer), ids(&single), "{body}");
    }
    assert_eq!(batch[0][0].id, 5u64.into());
    assert_eq!(batch[1][0].id, 9u64.into());
    let grpc_batch = grpc
        .search_batch(vectron_proto::v1::SearchBatchRequest {
            collection: "docs".into(),
            searches: vec![
                vectron_proto::v1::SearchPointsRequest {
                    vector: vector(9),
                    top_k: 3,
                    ..Default::default()
                },
                vectron_proto::v1::SearchPointsRequest {
                    vector: vector(5),
                    top_k: 5,
                    ..Default::default()
                },
            ],
        })
        .await
        .expect("grpc batch search")
        .into_inner()
        .results;
    assert_eq!(grpc_batch.len(), 2);
    assert_eq!(grpc_batch[0].results.len(), 3);
    assert_eq!(grpc_batch[1].results.len(), 5);
    assert_eq!(grpc_batch[0].results[0].score, batch[1][0].score);
    // A bad search fails the batch, naming its position; so does a batch
    // over the limit.
    let bad = c
        .call(
            Method::POST,
            "/v1/collections/docs/points/search/batch",
            Some(&json!({"searches": [{"vector": vector(1)}, {"vector": vector(2), "ef": 0}]})),
        )
        .await
        .expect("bad batch");
    assert_error(&bad, 400, "invalid_argument");
    assert!(
        bad.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("searches[1].ef")),
        "{bad:?}"
    );
    let too_many: Vec<Value> = (0..101).map(|i| json!({"vector": vector(i)})).collect();
    let over = c
        .call(
            Method::POST,
            "/v1/collections/docs/points/search/batch",
            Some(&json!({ "searches": too_many })),
        )
        .await
        .expect("oversized batch");
    assert_error(&over, 400, "invalid_argument");
    let grpc_bad = grpc
        .search_batch(vectron_proto::v1::SearchBatchRequest {
            collection: "docs".into(),
            searches: vec![vectron_proto::v1::SearchPointsRequest {
                collection: "other".into(),
                vector: vector(1),
                ..Default::default()
            }],
        })
        .await
        .expect_err("a batch names one collection");
    assert_eq!(grpc_bad.code(), tonic::Code::InvalidArgument);
    assert!(
        grpc_bad.message().starts_with("searches[0].collection"),
        "{}",
        grpc_bad.message()
    );

    // Scroll every point, page by page.
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let (page, next) = c
            .scroll("docs", &json!({"limit": 64, "cursor": cursor}))
            .await
            .expect("scroll");
        assert!(page.len() <= 64);
        for p in page {
            assert!(seen.insert(format!("{:?}", p.id)), "{:?} seen twice", p.id);
        }
        cursor = next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 301);

    // Count and delete.
    assert_eq!(c.count("docs", &json!({})).await.expect("count"), 301);
    let reds = (0..300).filter(|i| color(*i) == "red").count() as u64;
    let red_filter = json!({"must": [{"key": "color", "match": {"value": "red"}}]});
    assert_eq!(
        c.count("docs", &json!({"filter": red_filter}))
            .await
            .expect("count red"),
        reds
    );
    assert_eq!(
        c.delete_points("docs", &json!({"ids": [1, 2, 123456]}))
            .await
            .expect("delete ids"),
        2
    );
    assert_eq!(
        c.delete_points("docs", &json!({"filter": red_filter}))
            .await
            .expect("delete filter"),
        reds
    );
    assert_eq!(
        c.count("docs", &json!({"consistency": "strong"}))
            .await
            .expect("count"),
        301 - 2 - reds
    );

    // Cluster rows.
    let cluster = c.cluster().await.expect("cluster");
    assert_eq!(cluster["workers"][0]["name"], "dev-worker", "{cluster}");
    assert_eq!(cluster["workers"][0]["state"], "up");
    assert!(
        cluster["pd"]["leader"]
            .as_str()
            .is_some_and(|l| !l.is_empty())
    );
    assert_eq!(cluster["pd"]["members"][0]["role"], "leader");
    let busy = c
        .call(Method::DELETE, "/v1/cluster/workers/dev-worker", None)
        .await
        .expect("remove");
    assert_error(&busy, 409, "conflict");
    let unknown = c
        .call(Method::POST, "/v1/cluster/workers/nobody/drain", None)
        .await
        .expect("drain");
    assert_error(&unknown, 404, "not_found");

    // Delete a collection.
    c.create_collection(&json!({"name": "gone", "dimension": 2, "metric": "l2"}))
        .await
        .expect("create gone");
    assert_eq!(
        c.call(Method::DELETE, "/v1/collections/gone", None)
            .await
            .expect("delete")
            .0,
        200
    );
    let after = c
        .call(Method::GET, "/v1/collections/gone", None)
        .await
        .expect("get gone");
    assert_error(&after, 404, "not_found");

    // kill -9 and restart: collections and points survive.
    let left = 301 - 2 - reds;
    dev.kill9_and_restart().await;
    let c = dev.client();
    assert!(
        c.list_collections()
            .await
            .expect("list")
            .iter()
            .any(|col| col["name"] == "docs")
    );
    assert_eq!(
        c.count("docs", &json!({}))
            .await
            .expect("count after restart"),
        left
    );
    let p = c
        .get_point("docs", &4u64.into(), "strong")
        .await
        .expect("get")
        .expect("point 4 survives");
    assert_eq!(p.vector, Some(vector(4)));
    let hits = c
        .search("docs", &json!({"vector": vector(4), "top_k": 3}))
        .await
        .expect("search after restart");
    assert_eq!(hits[0].id, 4u64.into());

    // Drain is accepted (202); with one worker nothing can move yet.
    let drain = c
        .call(Method::POST, "/v1/cluster/workers/dev-worker/drain", None)
        .await
        .expect("drain");
    assert_eq!(drain.0, 202, "{drain:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_the_error_shape_and_writes_nothing() {
    let _serial = serial().await;
    let dev = DevServer::start().await;
    let c = dev.client();
    c.create_collection(&json!({"name": "strict", "dimension": 3, "metric": "l2", "shards": 3}))
        .await
        .expect("create");
    let upsert = |body: Value| {
        let c = c.clone();
        async move {
            c.call(Method::PUT, "/v1/collections/strict/points", Some(&body))
                .await
                .expect("call")
        }
    };
    let good = |i: u64| json!({"id": i, "vector": [i as f32, 1.0, 2.0], "payload": {"i": i}});

    let wrong_dim = upsert(json!({"points": [{"id": 1, "vector": [1.0, 2.0]}]})).await;
    assert_error(&wrong_dim, 400, "invalid_argument");
    assert!(
        wrong_dim.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("points[0].vector"))
    );

    let nan = c
        .call_raw(
            Method::PUT,
            "/v1/collections/strict/points",
            br#"{"points":[{"id":1,"vector":[1.0,NaN,2.0]}]}"#.to_vec(),
        )
        .await
        .expect("nan");
    assert_error(&nan, 400, "invalid_json");
    let overflow = upsert(json!({"points": [{"id": 1, "vector": [1.0, 1e39, 2.0]}]})).await;
    assert_error(&overflow, 400, "invalid_argument");
    assert!(
        overflow.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("points[0].vector[1]"))
    );

    let no_vector = upsert(json!({"points": [{"id": 1, "payload": {}}]})).await;
    assert_error(&no_vector, 400, "invalid_argument");

    let mut batch: Vec<Value> = (0..20).map(good).collect();
    batch[13] = json!({"id": 13, "vector": [1.0, 2.0, 3.0, 4.0]});
    let mixed = upsert(json!({"points": batch})).await;
    assert_error(&mixed, 400, "invalid_argument");
    assert!(
        mixed.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("points[13]")),
        "{mixed:?}"
    );

    let bad_id = upsert(json!({"points": [{"id": -1, "vector": [1.0, 2.0, 3.0]}]})).await;
    assert_error(&bad_id, 400, "invalid_argument");
    let long_id =
        upsert(json!({"points": [{"id": "x".repeat(300), "vector": [1.0, 2.0, 3.0]}]})).await;
    assert_error(&long_id, 400, "invalid_argument");

    let malformed = c
        .call_raw(
            Method::PUT,
            "/v1/collections/strict/points",
            b"{\"points\": [".to_vec(),
        )
        .await
        .expect("malformed");
    assert_error(&malformed, 400, "invalid_json");

    // 33 MiB body: over the 32 MiB limit.
    let huge = format!(
        "{{\"points\": [{{\"id\": 1, \"vector\": [1.0, 2.0, 3.0], \"payload\": {{\"s\": \"{}\"}}}}]}}",
        "x".repeat(33 * 1024 * 1024)
    );
    let too_big = c
        .call_raw(
            Method::PUT,
            "/v1/collections/strict/points",
            huge.into_bytes(),
        )
        .await
        .expect("huge");
    assert_error(&too_big, 413, "payload_too_large");

    let search = |body: Value| {
        let c = c.clone();
        async move {
            c.call(
                Method::POST,
                "/v1/collections/strict/points/search",
                Some(&body),
            )
            .await
            .expect("call")
        }
    };
    assert_error(
        &search(json!({"vector": [1.0, 2.0, 3.0], "top_k": 0})).await,
        400,
        "invalid_argument",
    );
    assert_error(
        &search(json!({"vector": [1.0, 2.0, 3.0], "top_k": 10001})).await,
        400,
        "invalid_argument",
    );
    assert_error(
        &search(json!({"vector": [1.0, 2.0]})).await,
        400,
        "invalid_argument",
    );
    assert_error(&search(json!({"top_k": 3})).await, 400, "invalid_argument");
    assert_error(
        &search(json!({"vector": [1.0, 2.0, 3.0], "filter": {"must": [{"key": "i", "match": {"value": 1.5}}]}})).await,
        400,
        "invalid_argument",
    );

    let unknown = c
        .call(
            Method::PUT,
            "/v1/collections/nope/points",
            Some(&json!({"points": [good(1)]})),
        )
        .await
        .expect("unknown");
    assert_error(&unknown, 404, "not_found");
    let unknown_search = c
        .call(
            Method::POST,
            "/v1/collections/nope/points/search",
            Some(&json!({"vector": [1.0]})),
        )
        .await
        .expect("unknown search");
    assert_error(&unknown_search, 404, "not_found");

    let duplicate = c
        .call(
            Method::POST,
            "/v1/collections",
            Some(&json!({"name": "strict", "dimension": 3, "metric": "l2"})),
        )
        .await
        .expect("dup");
    assert_error(&duplicate, 409, "already_exists");
    let bad_metric = c
        .call(
            Method::POST,
            "/v1/collections",
            Some(&json!({"name": "m", "dimension": 3, "metric": "hamming"})),
        )
        .await
        .expect("metric");
    assert_error(&bad_metric, 400, "invalid_argument");
    assert!(
        bad_metric.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("metric"))
    );
    let bad_dim = c
        .call(
            Method::POST,
            "/v1/collections",
            Some(&json!({"name": "m", "dimension": 70000, "metric": "l2"})),
        )
        .await
        .expect("dim");
    assert_error(&bad_dim, 400, "invalid_argument");
    assert!(
        c.list_collections()
            .await
            .expect("list")
            .iter()
            .all(|col| col["name"] != "m")
    );

    // Nothing above was written.
    assert_eq!(
        c.count("strict", &json!({"consistency": "strong"}))
            .await
            .expect("count"),
        0
    );
    // The same good batch then goes through.
    let ok = upsert(json!({"points": (0..20).map(good).collect::<Vec<_>>()})).await;
    assert_eq!(ok.0, 200, "{ok:?}");
    assert_eq!(c.count("strict", &json!({})).await.expect("count"), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_rate_limit_answers_429_with_the_error_shape() {
    let _serial = serial().await;
    let dev = DevServer::start_with(&["--rate-limit", "2"]).await;
    let c = dev.client();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let answer = c
            .call(Method::GET, "/v1/collections", None)
            .await
            .expect("list");
        if answer.0 == 429 {
            assert_error(&answer, 429, "rate_limited");
        }
        statuses.push(answer.0);
    }
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(
        statuses.contains(&429),
        "a burst of 20 at 2/s must be limited: {statuses:?}"
    );
    // Probes are not rate limited.
    assert_eq!(
        c.call(Method::GET, "/healthz", None)
            .await
            .expect("healthz")
            .0,
        200
    );
}

/// `GET path` on `addr` over plain HTTP/1.0; the whole answer as text.
pub(crate) fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_and_status_on_their_own_port() {
    let _serial = serial().await;
    let metrics_addr = format!("127.0.0.1:{}", crate::harness::free_port());
    let dev = DevServer::start_with(&["--metrics-addr", &metrics_addr]).await;
    let c = dev.client();
    c.create_collection(&json!({"name": "m", "dimension": 2, "metric": "l2"}))
        .await
        .expect("create");
    for _ in 0..3 {
        c.search("m", &json!({"vector": [0.0, 1.0]}))
            .await
            .expect("search");
    }
    let bad = c
        .call(
            Method::POST,
            "/v1/collections/m/points/search",
            Some(&json!({"vector": [1.0]})),
        )
        .await
        .expect("bad");
    assert_eq!(bad.0, 400);

    let text = tokio::task::spawn_blocking(move || http_get(&metrics_addr, "/metrics"))
        .await
        .expect("join");
    assert!(
        text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
        "{text}"
    );
    let route = "route=\"/v1/collections/{name}/points/search\"";
    assert!(
        text.contains(&format!(
            "vectron_gateway_requests_total{{{route},method=\"POST\",status=\"200\"}} 3"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("{{{route},method=\"POST\",status=\"400\"}} 1")),
        "{text}"
    );
    assert!(
        text.contains("vectron_gateway_request_seconds_count{route=\"/v1/collections\"} 1"),
        "{text}"
    );
    // Creation answered once every shard had a leader, so the searches
    // made right after it went straight to them: no shard call retried.
    assert!(
        text.contains("vectron_gateway_shard_retries_total 0"),
        "{text}"
    );
    // The public port does not serve metrics.
    assert_eq!(
        c.call(Method::GET, "/metrics", None)
            .await
            .expect("public")
            .0,
        404
    );
}

/// The state machine writes without an fsync of its own (the Raft log's
/// covers it): every upsert acknowledged before a kill -9 in the middle of
/// an ingest is found after the restart, by id, with its payload, and the
/// search answers with the id of each point's own vector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upserts_acknowledged_before_a_kill9_during_ingest_survive_it() {
    use std::sync::{Arc, Mutex};

    let _serial = serial().await;
    let mut dev = DevServer::start().await;
    let c = dev.client();
    c.create_collection(&json!({"name": "ingest", "dimension": 8, "metric": "l2"}))
        .await
        .expect("create");
    let point = |i: u64| {
        let v: Vec<f32> = (0..8)
            .map(|d| ((i * 8 + d) as f32 * 0.618).sin() * 10.0)
            .collect();
        Point::new(i, v).with_payload(json!({"i": i}))
    };
    let acknowledged = Arc::new(Mutex::new(Vec::<u64>::new()));
    let writer = {
        let (c, acknowledged) = (dev.client(), acknowledged.clone());
        tokio::spawn(async move {
            for batch in 0u64.. {
                let points: Vec<Point> = (batch * 250..(batch + 1) * 250).map(point).collect();
                // Once the process is killed, upserts fail: stop there.
                if c.upsert("ingest", &points).await.is_err() {
                    return batch;
                }
                acknowledged
                    .lock()
                    .expect("lock")
                    .extend(batch * 250..(batch + 1) * 250);
            }
            unreachable!("the loop ends when the server is killed")
        })
    };
    // Let a few thousand points land, then kill in the middle of the stream.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while acknowledged.lock().expect("lock").len() < 3_000 {
        assert!(std::time::Instant::now() < deadline, "ingest too slow");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    dev.kill9_and_restart().await;
    let batches = tokio::time::timeout(std::time::Duration::from_secs(30), writer)
        .await
        .expect("the writer stops")
        .expect("writer task");
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(acknowledged.len() >= 3_000 && batches as usize * 250 >= acknowledged.len());
    let c = dev.client();
    let stored = c.count("ingest", &json!({})).await.expect("count");
    assert!(
        stored >= acknowledged.len() as u64,
        "{stored} points after the restart, {} acknowledged",
        acknowledged.len()
    );
    for chunk in acknowledged.chunks(1_000) {
        let found = c
            .get_points("ingest", &json!({"ids": chunk, "with_vector": false}))
            .await
            .expect("get");
        assert_eq!(found.len(), chunk.len(), "acknowledged points lost");
        for p in &found {
            let payload = p.payload.as_ref().expect("payload kept");
            assert_eq!(
                vectron_client::PointId::Num(payload["i"].as_u64().expect("i")),
                p.id
            );
        }
    }
    for &i in acknowledged.iter().step_by(97) {
        let hits = c
            .search(
                "ingest",
                &json!({"vector": point(i).vector.expect("vector"), "top_k": 1}),
            )
            .await
            .expect("search");
        assert_eq!(hits[0].id, i.into(), "point {i} finds itself");
    }
}
