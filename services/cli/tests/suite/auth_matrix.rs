//! Authentication and authorisation end to end on `vectron dev --auth`: every
//! route × {no credential, read key, write key, admin, key limited to another
//! collection, expired JWT, tampered JWT} gets exactly the expected status,
//! through REST, with spot checks through gRPC.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use vectron_client::{Client, HttpMethod as Method, Point};

use crate::cluster_harness::{ADMIN_PASSWORD, DevServer};
use crate::harness::serial;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    Read,
    Write,
    Admin,
    OtherScope,
    Expired,
    Tampered,
}

const EVERYONE: [Who; 7] = [
    Who::Nobody,
    Who::Read,
    Who::Write,
    Who::Admin,
    Who::OtherScope,
    Who::Expired,
    Who::Tampered,
];

/// Which rights a route needs.
#[derive(Debug, Clone, Copy)]
enum Needs {
    /// Any valid credential (listing collections).
    Any,
    /// Read on collection "a".
    Read,
    /// Write on collection "a".
    Write,
    /// Admin.
    Admin,
}

fn expected(who: Who, needs: Needs, success: u16) -> u16 {
    match who {
        Who::Nobody | Who::Expired | Who::Tampered => 401,
        Who::Admin => success,
        Who::Read => match needs {
            Needs::Any | Needs::Read => success,
            _ => 403,
        },
        Who::Write => match needs {
            Needs::Any | Needs::Read | Needs::Write => success,
            Needs::Admin => 403,
        },
        // A write key limited to collection "b": lists, but nothing on "a".
        Who::OtherScope => match needs {
            Needs::Any => success,
            _ => 403,
        },
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_credential_exactly() {
    let _serial = serial().await;
    let dev = DevServer::start_with_auth().await;
    let anonymous = dev.client();

    // Login: wrong password 401, right one a token.
    let wrong = anonymous
        .call(
            Method::POST,
            "/v1/auth/login",
            Some(&json!({"username": "admin", "password": "nope-nope"})),
        )
        .await
        .expect("login");
    assert_eq!(wrong.0, 401, "{wrong:?}");
    let token = anonymous
        .login("admin", ADMIN_PASSWORD)
        .await
        .expect("admin login");
    let admin = anonymous.with_token(&token);

    admin
        .create_collection(&json!({"name": "a", "dimension": 2, "metric": "dot"}))
        .await
        .expect("create a");
    admin
        .create_collection(&json!({"name": "b", "dimension": 2, "metric": "dot"}))
        .await
        .expect("create b");
    admin
        .upsert("a", &[Point::new(1, vec![1.0, 0.0])])
        .await
        .expect("seed a");
    let (_, read_key) = admin
        .create_api_key("reader", "read", None)
        .await
        .expect("read key");
    let (_, write_key) = admin
        .create_api_key("writer", "write", None)
        .await
        .expect("write key");
    let (_, scoped_key) = admin
        .create_api_key("b-writer", "write", Some(&["b"]))
        .await
        .expect("scoped key");

    let secret = std::fs::read(dev.data_dir().join("auth").join("jwt-secret")).expect("jwt secret");
    let expired = vectron_auth::sign_claims(
        &secret,
        &vectron_auth::Claims {
            sub: "user:admin".into(),
            role: vectron_auth::Role::Admin,
            collections: None,
            iat: now() - 7200,
            exp: now() - 3600,
            ver: 0,
        },
    )
    .expect("sign expired token");
    let mut tampered = token.clone();
    let last = tampered.pop().expect("non-empty token");
    tampered.push(if last == 'A' { 'B' } else { 'A' });

    let client_for = |who: Who| -> Client {
        match who {
            Who::Nobody => anonymous.clone(),
            Who::Read => anonymous.with_api_key(&read_key),
            Who::Write => anonymous.with_api_key(&write_key),
            Who::Admin => admin.clone(),
            Who::OtherScope => anonymous.with_api_key(&scoped_key),
            Who::Expired => anonymous.with_token(&expired),
            Who::Tampered => anonymous.with_token(&tampered),
        }
    };

    // Open routes.
    for who in EVERYONE {
        let c = client_for(who);
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
    }

    let mut failures = Vec::new();
    let mut serial_number = 0;
    for who in EVERYONE {
        let c = client_for(who);
        serial_number += 1;
        // Fresh objects for the routes that create or delete, so a wrongly
        // allowed call shows up as a status mismatch rather than a cascade.
        let throwaway_key = admin
            .create_api_key(&format!("tmp{serial_number}"), "read", None)
            .await
            .expect("tmp key")
            .0;
        let throwaway_user = format!("gone{serial_number}");
        admin
            .call(
                Method::POST,
                "/v1/auth/users",
                Some(&json!({"username": throwaway_user, "password": "long-enough-pw", "role": "read"})),
            )
            .await
            .expect("tmp user");
        admin
            .create_collection(
                &json!({"name": format!("tmp{serial_number}"), "dimension": 2, "metric": "dot"}),
            )
            .await
            .expect("tmp collection");
        let routes: Vec<(Method, String, Option<Value>, Needs, u16)> = vec![
            (Method::GET, "/v1/collections".into(), None, Needs::Any, 200),
            (
                Method::POST,
                "/v1/collections".into(),
                Some(
                    json!({"name": format!("new{serial_number}"), "dimension": 2, "metric": "l2"}),
                ),
                Needs::Admin,
                201,
            ),
            (
                Method::GET,
                "/v1/collections/a".into(),
                None,
                Needs::Read,
                200,
            ),
            (
                Method::PUT,
                "/v1/collections/a/points".into(),
                Some(json!({"points": [{"id": 2, "vector": [0.0, 1.0]}]})),
                Needs::Write,
                200,
            ),
            (
                Method::GET,
                "/v1/collections/a/points/1".into(),
                None,
                Needs::Read,
                200,
            ),
            (
                Method::POST,
                "/v1/collections/a/points/get".into(),
                Some(json!({"ids": [1]})),
                Needs::Read,
                200,
            ),
            (
                Method::POST,
                "/v1/collections/a/points/search".into(),
                Some(json!({"vector": [1.0, 0.0]})),
                Needs::Read,
                200,
            ),
            (
                Method::POST,
                "/v1/collections/a/points/scroll".into(),
                Some(json!({})),
                Needs::Read,
                200,
            ),
            (
                Method::POST,
                "/v1/collections/a/points/count".into(),
                Some(json!({})),
                Needs::Read,
                200,
            ),
            (
                Method::POST,
                "/v1/collections/a/points/delete".into(),
                Some(json!({"ids": [999]})),
                Needs::Write,
                200,
            ),
            (
                Method::POST,
                "/v1/auth/users".into(),
                Some(
                    json!({"username": format!("user{serial_number}"), "password": "long-enough-pw", "role": "read"}),
                ),
                Needs::Admin,
                201,
            ),
            (
                Method::GET,
                "/v1/auth/users".into(),
                None,
                Needs::Admin,
                200,
            ),
            (
                Method::PUT,
                format!("/v1/auth/users/{throwaway_user}/password"),
                Some(json!({"password": "another-long-pw"})),
                Needs::Admin,
                200,
            ),
            (
                Method::DELETE,
                format!("/v1/auth/users/{throwaway_user}"),
                None,
                Needs::Admin,
                200,
            ),
            (
                Method::POST,
                "/v1/auth/api-keys".into(),
                Some(json!({"name": "k", "role": "read"})),
                Needs::Admin,
                201,
            ),
            (
                Method::GET,
                "/v1/auth/api-keys".into(),
                None,
                Needs::Admin,
                200,
            ),
            (
                Method::DELETE,
                format!("/v1/auth/api-keys/{throwaway_key}"),
                None,
                Needs::Admin,
                200,
            ),
            (Method::GET, "/v1/cluster".into(), None, Needs::Admin, 200),
            // An unknown worker: admins get past the check and find nothing.
            (
                Method::POST,
                "/v1/cluster/workers/nobody/drain".into(),
                None,
                Needs::Admin,
                404,
            ),
            (
                Method::DELETE,
                "/v1/cluster/workers/nobody".into(),
                None,
                Needs::Admin,
                404,
            ),
            (
                Method::DELETE,
                format!("/v1/collections/tmp{serial_number}"),
                None,
                Needs::Admin,
                200,
            ),
        ];
        for (method, path, body, needs, success) in routes {
            let want = expected(who, needs, success);
            let (got, answer) = c
                .call(method.clone(), &path, body.as_ref())
                .await
                .expect("call");
            if got != want {
                failures.push(format!(
                    "{who:?} {method} {path}: expected {want}, got {got} {answer}"
                ));
            } else if got >= 400 {
                assert!(
                    answer["error"]["code"].is_string(),
                    "{who:?} {method} {path}: {answer}"
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "auth matrix mismatches:\n{}",
        failures.join("\n")
    );

    // The scoped key can write to its own collection, and sees only it.
    let scoped = client_for(Who::OtherScope);
    scoped
        .upsert("b", &[Point::new(1, vec![0.5, 0.5])])
        .await
        .expect("scoped write to b");
    let visible: Vec<String> = scoped
        .list_collections()
        .await
        .expect("list")
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(visible, ["b"]);

    // The user the admin created above can log in and read.
    let admin_round = EVERYONE
        .iter()
        .position(|w| *w == Who::Admin)
        .expect("admin round")
        + 1;
    let user_token = anonymous
        .login(&format!("user{admin_round}"), "long-enough-pw")
        .await
        .expect("user login");
    let user = anonymous.with_token(&user_token);
    assert_eq!(
        user.call(Method::GET, "/v1/collections/a", None)
            .await
            .expect("read")
            .0,
        200
    );
    assert_eq!(
        user.call(Method::DELETE, "/v1/collections/a", None)
            .await
            .expect("delete")
            .0,
        403
    );

    // A user may change their own password; their earlier token is refused
    // at once, the new password works, and the old one does not.
    let own = user
        .call(
            Method::PUT,
            &format!("/v1/auth/users/user{admin_round}/password"),
            Some(&json!({"password": "a-newer-long-pw"})),
        )
        .await
        .expect("own password");
    assert_eq!(own.0, 200, "{own:?}");
    let revoked = user
        .call(Method::GET, "/v1/collections/a", None)
        .await
        .expect("read");
    assert_eq!(
        revoked.0, 401,
        "a token from before the change: {revoked:?}"
    );
    assert!(
        anonymous
            .login(&format!("user{admin_round}"), "long-enough-pw")
            .await
            .is_err()
    );
    let user = anonymous.with_token(
        &anonymous
            .login(&format!("user{admin_round}"), "a-newer-long-pw")
            .await
            .expect("login with the new password"),
    );
    // Another user's password is the admin's business.
    let other = user
        .call(
            Method::PUT,
            "/v1/auth/users/admin/password",
            Some(&json!({"password": "hijacked-password"})),
        )
        .await
        .expect("other password");
    assert_eq!(other.0, 403, "{other:?}");
    // A deleted user's token is refused at once.
    let listed = admin
        .call(Method::GET, "/v1/auth/users", None)
        .await
        .expect("list users")
        .1;
    let users = listed["users"].as_array().expect("users");
    assert!(
        users
            .iter()
            .any(|u| u["username"] == format!("user{admin_round}").as_str() && u["role"] == "read"),
        "{listed}"
    );
    assert!(users.iter().all(|u| u.get("password_hash").is_none()));
    let deleted = admin
        .call(
            Method::DELETE,
            &format!("/v1/auth/users/user{admin_round}"),
            None,
        )
        .await
        .expect("delete user");
    assert_eq!(deleted.0, 200);
    assert_eq!(
        user.call(Method::GET, "/v1/collections/a", None)
            .await
            .expect("read")
            .0,
        401,
        "a deleted user's token is refused at once"
    );

    // A deleted key stops working.
    let (id, key) = admin
        .create_api_key("short-lived", "read", None)
        .await
        .expect("key");
    let short_lived = anonymous.with_api_key(&key);
    assert_eq!(
        short_lived
            .call(Method::GET, "/v1/collections", None)
            .await
            .expect("list")
            .0,
        200
    );
    let deleted = admin
        .call(Method::DELETE, &format!("/v1/auth/api-keys/{id}"), None)
        .await
        .expect("delete key");
    assert_eq!(deleted.0, 200);
    assert_eq!(
        short_lived
            .call(Method::GET, "/v1/collections", None)
            .await
            .expect("list")
            .0,
        401
    );
    let listed = admin
        .call(Method::GET, "/v1/auth/api-keys", None)
        .await
        .expect("list keys")
        .1;
    let keys = listed["api_keys"].as_array().expect("api_keys");
    assert!(keys.iter().all(|k| k["id"] != id.as_str()));
    assert!(keys.iter().any(|k| k["name"] == "b-writer"
        && k["collections"] == json!(["b"])
        && k["role"] == "write"));
    assert!(
        keys.iter()
            .all(|k| k.get("key").is_none() && !k.to_string().contains(&read_key))
    );

    // gRPC: same answers.
    let mut grpc =
        vectron_proto::v1::vectron_client::VectronClient::connect(format!("http://{}", dev.grpc))
            .await
            .expect("grpc connect");
    let denied = grpc
        .count_points(vectron_proto::v1::CountPointsRequest {
            collection: "a".into(),
            ..Default::default()
        })
        .await
        .expect_err("no credential");
    assert_eq!(denied.code(), tonic::Code::Unauthenticated);
    let mut request =
        tonic::Request::new(vectron_proto::v1::DeleteCollectionRequest { name: "a".into() });
    request
        .metadata_mut()
        .insert("api-key", read_key.parse().expect("ascii key"));
    assert_eq!(
        grpc.delete_collection(request)
            .await
            .expect_err("read key")
            .code(),
        tonic::Code::PermissionDenied
    );
    let mut request = tonic::Request::new(vectron_proto::v1::CountPointsRequest {
        collection: "a".into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("api-key", read_key.parse().expect("ascii key"));
    let count = grpc
        .count_points(request)
        .await
        .expect("read key counts")
        .into_inner()
        .count;
    let rest_count = client_for(Who::Read)
        .count("a", &json!({}))
        .await
        .expect("rest count");
    assert_eq!(count, rest_count);

    // The user routes over gRPC: a reader is refused, an admin lists the
    // same users REST does, and a deleted user's token is refused.
    let mut request = tonic::Request::new(vectron_proto::v1::ListUsersRequest {});
    request
        .metadata_mut()
        .insert("api-key", read_key.parse().expect("ascii key"));
    assert_eq!(
        grpc.list_users(request).await.expect_err("reader").code(),
        tonic::Code::PermissionDenied
    );
    let admin_metadata = format!("Bearer {token}");
    let mut request = tonic::Request::new(vectron_proto::v1::ListUsersRequest {});
    request.metadata_mut().insert(
        "authorization",
        admin_metadata.parse().expect("ascii token"),
    );
    let grpc_users: Vec<String> = grpc
        .list_users(request)
        .await
        .expect("admin lists users")
        .into_inner()
        .users
        .into_iter()
        .map(|u| u.username)
        .collect();
    let rest_users: Vec<String> = admin
        .list_users()
        .await
        .expect("rest users")
        .iter()
        .filter_map(|u| u["username"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(grpc_users, rest_users);
    assert!(grpc_users.contains(&"admin".to_owned()));
}
