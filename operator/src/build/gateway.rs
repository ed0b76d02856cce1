//! The stateless roles: gateways (a Deployment and the user-facing Service
//! of the type the spec asks for, probed on `/healthz` and `/readyz`, with
//! its public certificate mounted when `gateway.tls` names one) and,
//! when auth is on, the auth service (a Deployment and a Service only
//! gateways reach, with the JWT key and admin password mounted read-only).
//! Pure.

use serde_json::{Value, json};

use super::config::{ADMIN_PASSWORD_KEY, JWT_KEY};
use super::pd::client_service;
use super::{BuildInput, Desired, pod, ports, typed};
use crate::labels::{self, Component};

/// Where the gateway's public certificate Secret is mounted.
pub const PUBLIC_TLS_PATH: &str = "/etc/vectron/public-tls";

/// Auth pods when auth is on: two, so one may be drained at a time.
pub const AUTH_REPLICAS: i32 = 2;

fn deployment(input: &BuildInput, component: Component, replicas: i32, template: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": pod::metadata(input, &labels::object_name(&input.name, component), Some(component)),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels::selector(&input.name, component)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": template,
        },
    })
}

/// The auth Service address gateways dial.
pub fn auth_endpoint(input: &BuildInput) -> String {
    format!(
        "{}.{}.svc:{}",
        labels::object_name(&input.name, Component::Auth),
        input.namespace,
        ports::AUTH
    )
}

fn gateway(input: &BuildInput, desired: &mut Desired) {
    let component = Component::Gateway;
    let service = &input.spec.gateway.service;
    let (http, grpc) = (service.http_port, service.grpc_port);
    let mut args: Vec<String> = vec![
        "gateway".into(),
        "--http-addr".into(),
        format!("0.0.0.0:{http}"),
        "--grpc-addr".into(),
        format!("0.0.0.0:{grpc}"),
        "--metrics-addr".into(),
        format!("0.0.0.0:{}", ports::GATEWAY_METRICS),
    ];
    if input.spec.auth.enabled {
        args.extend(["--auth-endpoint".into(), auth_endpoint(input)]);
    } else {
        args.push("--no-auth".into());
    }
    let public_tls = input.spec.gateway.tls.as_ref();
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    if let Some(tls) = public_tls {
        args.extend([
            "--tls-cert".into(),
            format!("{PUBLIC_TLS_PATH}/tls.crt"),
            "--tls-key".into(),
            format!("{PUBLIC_TLS_PATH}/tls.key"),
        ]);
        volumes.push(json!({
            "name": "public-tls",
            "secret": {"secretName": tls.secret_name, "defaultMode": 0o440},
        }));
        mounts.push(json!({"name": "public-tls", "mountPath": PUBLIC_TLS_PATH, "readOnly": true}));
    }
    let scheme = if public_tls.is_some() {
        "HTTPS"
    } else {
        "HTTP"
    };
    let probe = |path: &str| json!({"path": path, "port": "http", "scheme": scheme});
    let probes = json!({
        "startupProbe": {"httpGet": probe("/healthz"), "periodSeconds": 2, "failureThreshold": 60},
        "livenessProbe": {"httpGet": probe("/healthz"), "periodSeconds": 10, "failureThreshold": 6},
        "readinessProbe": {"httpGet": probe("/readyz"), "periodSeconds": 5},
    });
    let (tmp, tmp_mount) = pod::tmp_volume();
    volumes.insert(0, tmp);
    mounts.insert(0, tmp_mount);
    let container = pod::container(
        input,
        component,
        args,
        json!([
            {"name": "http", "containerPort": http, "protocol": "TCP"},
            {"name": "grpc", "containerPort": grpc, "protocol": "TCP"},
            {"name": "metrics", "containerPort": ports::GATEWAY_METRICS, "protocol": "TCP"},
        ]),
        probes,
        mounts,
        input.spec.gateway.resources.as_ref(),
    );
    let template = pod::template(input, component, container, volumes);
    desired.deployments.push(typed(deployment(
        input,
        component,
        input.spec.gateway.replicas,
        template,
    )));
    let mut svc = client_service(
        input,
        component,
        json!([
            {"name": "http", "port": http, "targetPort": "http", "protocol": "TCP"},
            {"name": "grpc", "port": grpc, "targetPort": "grpc", "protocol": "TCP"},
        ]),
    );
    svc["spec"]["type"] = json!(service.type_.as_str());
    desired.services.push(typed(svc));
}

fn auth(input: &BuildInput, desired: &mut Desired) {
    let component = Component::Auth;
    let (password_secret, password_key) = match &input.spec.auth.admin_password_secret_ref {
        Some(r) => (r.name.clone(), r.key.clone()),
        None => (
            labels::admin_secret_name(&input.name),
            ADMIN_PASSWORD_KEY.to_owned(),
        ),
    };
    let args: Vec<String> = vec![
        "auth".into(),
        "--addr".into(),
        format!("0.0.0.0:{}", ports::AUTH),
        "--jwt-secret-file".into(),
        format!("/secrets/jwt/{JWT_KEY}"),
        "--admin-password-file".into(),
        "/secrets/admin/password".into(),
    ];
    let (tmp, tmp_mount) = pod::tmp_volume();
    let container = pod::container(
        input,
        component,
        args,
        json!([{"name": "grpc", "containerPort": ports::AUTH, "protocol": "TCP"}]),
        pod::tcp_probes(ports::AUTH),
        vec![
            tmp_mount,
            json!({"name": "jwt", "mountPath": "/secrets/jwt", "readOnly": true}),
            json!({"name": "admin", "mountPath": "/secrets/admin", "readOnly": true}),
        ],
        None,
    );
    let volumes = vec![
        tmp,
        json!({"name": "jwt", "secret": {"secretName": labels::jwt_secret_name(&input.name), "defaultMode": 0o440}}),
        json!({"name": "admin", "secret": {
            "secretName": password_secret,
            "defaultMode": 0o440,
            "items": [{"key": password_key, "path": "password"}],
        }}),
    ];
    let template = pod::template(input, component, container, volumes);
    desired
        .deployments
        .push(typed(deployment(input, component, AUTH_REPLICAS, template)));
    desired.services.push(typed(client_service(
        input,
        component,
        json!([{"name": "grpc", "port": ports::AUTH, "targetPort": ports::AUTH, "protocol": "TCP"}]),
    )));
}

pub(super) fn build(input: &BuildInput, desired: &mut Desired) {
    gateway(input, desired);
    if input.spec.auth.enabled {
        auth(input, desired);
    }
}
