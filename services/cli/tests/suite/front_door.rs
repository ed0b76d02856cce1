//! The public front door under abuse, on `vectron dev --auth`: every
//! oversized request parameter is refused with a 400 naming the field, and a
//! flood of wrong-password logins from many client addresses is answered
//! with 429s while the process's memory stays bounded, clients holding
//! valid credentials are still served, and a right password still logs in
//! once the flood is over. And TLS on the public ports (`--tls-cert`).

use std::net::IpAddr;

use serde_json::{Value, json};
use vectron_client::{Client, HttpMethod as Method};

use crate::cluster_harness::{ADMIN_PASSWORD, DevServer};
use crate::harness::serial;

/// Peak resident memory the dev process may reach in these tests. Without
/// the bounds, one request could allocate gigabytes (a 4-billion `ef`
/// heap, 2,000 concurrent 19 MiB password hashes).
const PEAK_RSS_BOUND_KIB: u64 = 1024 * 1024;

fn assert_refused_naming(answer: &(u16, Value), field: &str) {
    assert_eq!(answer.0, 400, "{answer:?}");
    assert_eq!(answer.1["error"]["code"], "invalid_argument", "{answer:?}");
    let message = answer.1["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!("{field}:")),
        "the message must name {field}: {message}"
    );
}

/// `vectron dev --auth` with a 2-dimensional collection `name`; answers
/// the server, a client without credentials and one logged in as admin.
async fn dev_with_collection(name: &str) -> (DevServer, Client, Client) {
    let dev = DevServer::start_with_auth().await;
    let anonymous = dev.client();
    let admin = anonymous.with_token(
        &anonymous
            .login("admin", ADMIN_PASSWORD)
            .await
            .expect("admin login"),
    );
    admin
        .create_collection(&json!({"name": name, "dimension": 2, "metric": "l2"}))
        .await
        .expect("create");
    (dev, anonymous, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_parameters_are_refused_naming_the_field() {
    let _serial = serial().await;
    let (dev, _anonymous, admin) = dev_with_collection("f").await;
    let call = |path: &'static str, body: Value| {
        let admin = admin.clone();
        async move {
            admin
                .call(Method::POST, path, Some(&body))
                .await
                .expect("call")
        }
    };
    let search = "/v1/collections/f/points/search";
    assert_refused_naming(
        &call(
            search,
            json!({"vector": [1.0, 0.0], "ef": 4_294_967_295u64}),
        )
        .await,
        "ef",
    );
    assert_refused_naming(
        &call(search, json!({"vector": [1.0, 0.0], "top_k": 1_000_000})).await,
        "top_k",
    );
    // A 10 MB filter: one match-any condition with 10 MB of keywords.
    let keywords: Vec<String> = (0..100_000).map(|i| format!("keyword-{i:090}")).collect();
    let big_filter = json!({"must": [{"key": "tag", "match": {"any": keywords}}]});
    assert!(big_filter.to_string().len() >= 10_000_000);
    assert_refused_naming(
        &call(
            search,
            json!({"vector": [1.0, 0.0], "filter": big_filter.clone()}),
        )
        .await,
        "filter",
    );
    assert_refused_naming(
        &call(
            "/v1/collections/f/points/count",
            json!({"filter": big_filter.clone()}),
        )
        .await,
        "filter",
    );
    assert_refused_naming(
        &call(
            "/v1/collections/f/points/delete",
            json!({"filter": big_filter}),
        )
        .await,
        "filter",
    );
    assert_refused_naming(
        &call(
            "/v1/collections/f/points/scroll",
            json!({"limit": 1_000_000_000}),
        )
        .await,
        "limit",
    );
    // Nothing was written, and the process is still serving.
    assert_eq!(admin.count("f", &json!({})).await.expect("count"), 0);
    let peak = dev.peak_rss_kib().expect("VmHWM");
    println!("front door: peak RSS after the oversized requests {peak} KiB");
    assert!(peak < PEAK_RSS_BOUND_KIB, "peak RSS {peak} KiB");
}

/// One login attempt from `source`; answers the HTTP status (0 when the
/// request itself failed).
async fn login_from(http: &str, source: IpAddr, password: &str) -> u16 {
    let Ok(client) = reqwest::Client::builder().local_address(source).build() else {
        return 0;
    };
    client
        .post(format!("{http}/v1/auth/login"))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_gets_429s_while_memory_stays_bounded_and_valid_clients_are_served() {
    let _serial = serial().await;
    let (dev, anonymous, admin) = dev_with_collection("g").await;
    let (_, key) = admin
        .create_api_key("reader", "read", None)
        .await
        .expect("key");
    let reader = anonymous.with_api_key(&key);

    // 2,000 concurrent wrong-password logins from 100 loopback addresses:
    // more than each address's login burst, and far more than the password
    // hashes the server runs at once.
    let before = dev.peak_rss_kib().expect("VmHWM");
    let started = std::time::Instant::now();
    let flood: Vec<_> = (0..2000u32)
        .map(|i| {
            let http = dev.http.clone();
            let source = IpAddr::from([127, 0, 9, (i % 100 + 1) as u8]);
            tokio::spawn(async move { login_from(&http, source, "wrong-password").await })
        })
        .collect();
    // Meanwhile a client holding a valid key is served.
    let mut served = 0;
    for _ in 0..20 {
        if reader.count("g", &json!({})).await.is_ok() {
            served += 1;
        }
    }
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    for attempt in flood {
        *statuses.entry(attempt.await.expect("task")).or_default() += 1;
    }
    let peak = dev.peak_rss_kib().expect("VmHWM");
    println!(
        "front door: 2000 wrong-password logins in {:.1} s: {statuses:?}; a valid key served {served}/20; peak RSS {before} KiB before, {peak} KiB after",
        started.elapsed().as_secs_f64()
    );
    assert!(
        statuses.keys().all(|s| *s == 401 || *s == 429),
        "only 401 (checked) and 429 (refused): {statuses:?}"
    );
    assert!(
        statuses.get(&429).copied().unwrap_or(0) >= 1000,
        "most of the flood must be refused: {statuses:?}"
    );
    assert_eq!(
        served, 20,
        "a client with a valid key is served during the flood"
    );
    assert!(peak < PEAK_RSS_BOUND_KIB, "peak RSS {peak} KiB");
    // From an address that did not flood, the right password logs in.
    let status = login_from(&dev.http, IpAddr::from([127, 0, 10, 1]), ADMIN_PASSWORD).await;
    assert_eq!(status, 200);
}

/// `vectron dev --tls-cert --tls-key`: REST over https, verified against
/// the test CA for the address 127.0.0.1, serves reads and writes; gRPC
/// over TLS answers; a plaintext client is served on neither port.
#[tokio::test]
async fn the_public_api_speaks_tls_when_given_a_certificate() {
    use std::time::Duration;
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    use vectron_proto::v1 as pb;
    use vectron_proto::v1::vectron_client::VectronClient;

    let _guard = serial().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = vectron_tls::Authority::generate().expect("test CA");
    ca.issue(&vectron_tls::CertRequest {
        common_name: "api".into(),
        roles: vec![vectron_tls::Role::Gateway],
        hosts: vec!["127.0.0.1".into()],
        days: 1,
    })
    .expect("issue")
    .write(dir.path(), "api")
    .expect("write");
    let cert = dir.path().join("api.pem").display().to_string();
    let key = dir.path().join("api.key").display().to_string();
    let dev = DevServer::start_unready(dir, &["--tls-cert", &cert, "--tls-key", &key]);
    let rest = dev.http.trim_start_matches("http://").to_owned();

    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).expect("CA"))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("https client");
    crate::harness::wait_for("ready over https", Duration::from_secs(90), || async {
        let answer = https
            .get(format!("https://{rest}/readyz"))
            .send()
            .await
            .ok()?;
        (answer.status() == 200).then_some(())
    })
    .await;
    let created = https
        .post(format!("https://{rest}/v1/collections"))
        .json(&json!({"name": "secure", "dimension": 2, "metric": "l2"}))
        .send()
        .await
        .expect("create over https");
    assert!(created.status().is_success(), "{}", created.status());
    let upsert = https
        .put(format!("https://{rest}/v1/collections/secure/points"))
        .json(&json!({"points": [{"id": 1, "vector": [0.5, 0.5]}]}))
        .send()
        .await
        .expect("upsert over https");
    assert!(upsert.status().is_success(), "{}", upsert.status());

    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("plain client");
    let answered = plain.get(format!("http://{rest}/readyz")).send().await;
    assert!(
        answered.as_ref().map_or(true, |a| a.status() != 200),
        "plaintext HTTP must not be served: {answered:?}"
    );

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.cert_pem()))
        .domain_name("127.0.0.1");
    let channel = Endpoint::from_shared(format!("https://{}", dev.grpc))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls")
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("gRPC over TLS connects");
    let listed = VectronClient::new(channel)
        .list_collections(pb::ListCollectionsRequest::default())
        .await
        .expect("gRPC over TLS answers")
        .into_inner();
    assert!(
        listed.collections.iter().any(|c| c.name == "secure"),
        "{listed:?}"
    );
    let plain_grpc = async {
        let channel = Endpoint::from_shared(format!("http://{}", dev.grpc))
            .ok()?
            .timeout(Duration::from_secs(5))
            .connect()
            .await
            .ok()?;
        VectronClient::new(channel)
            .list_collections(pb::ListCollectionsRequest::default())
            .await
            .ok()
    };
    assert!(
        plain_grpc.await.is_none(),
        "plaintext gRPC must not be served"
    );
}
