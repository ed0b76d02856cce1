//! The pure builders, from YAML fixtures: names, labels and owner
//! references, the PD founding members, restricted security everywhere,
//! disruption budgets from the quorums, network policies, and the fields
//! the apiserver forbids changing (selectors, volume claim templates).

use k8s_openapi::api::apps::v1::StatefulSet;
use serde_json::{Value, json};
use vectron_operator::build::{Desired, desired};
use vectron_operator::crd::{InternalTlsMode, IssuerRef, ServiceType};
use vectron_operator::labels;
use vectron_operator::pki::{ClusterPki, StoredCert};

use crate::fixtures;

fn json_of<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).expect("serialises")
}

/// Every object as JSON, with its kind.
fn objects(d: &Desired) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    out.extend(d.config_maps.iter().map(json_of));
    out.extend(d.secrets.iter().map(json_of));
    out.extend(d.services.iter().map(json_of));
    out.extend(d.stateful_sets.iter().map(json_of));
    out.extend(d.deployments.iter().map(json_of));
    out.extend(d.disruption_budgets.iter().map(json_of));
    out.extend(d.network_policies.iter().map(json_of));
    out.extend(d.certificates.iter().map(json_of));
    out
}

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn args(workload: &Value) -> Vec<String> {
    workload["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_owned())
        .collect()
}

fn arg_after(args: &[String], flag: &str) -> String {
    let at = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("no {flag} in {args:?}"));
    args[at + 1].clone()
}

#[test]
fn a_minimal_cluster_gets_every_object_with_labels_and_owner() {
    let input = fixtures::input("minimal.yaml");
    let all = objects(&desired(&input));
    let kinds: Vec<(String, String)> = all
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap_or_default().to_owned(),
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    for expected in [
        ("ConfigMap", "vec-config"),
        ("Secret", "vec-jwt"),
        ("Secret", "vec-admin"),
        ("Service", "vec-pd"),
        ("Service", "vec-pd-headless"),
        ("Service", "vec-worker-headless"),
        ("Service", "vec-gateway"),
        ("Service", "vec-auth"),
        ("StatefulSet", "vec-pd"),
        ("StatefulSet", "vec-worker"),
        ("Deployment", "vec-gateway"),
        ("Deployment", "vec-auth"),
        ("PodDisruptionBudget", "vec-pd"),
        ("PodDisruptionBudget", "vec-worker"),
        ("NetworkPolicy", "vec-worker"),
    ] {
        assert!(
            kinds.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "missing {expected:?} in {kinds:?}"
        );
    }
    for object in &all {
        let meta = &object["metadata"];
        assert_eq!(meta["namespace"], "search", "{meta}");
        assert_eq!(meta["labels"][labels::NAME], "vectron", "{meta}");
        assert_eq!(meta["labels"][labels::INSTANCE], "vec", "{meta}");
        assert_eq!(
            meta["labels"][labels::MANAGED_BY],
            "vectron-operator",
            "{meta}"
        );
        let owner = &meta["ownerReferences"][0];
        assert_eq!(owner["kind"], "VectronCluster");
        assert_eq!(owner["uid"], "0b9f8c1e-1111-2222-3333-444455556666");
        assert_eq!(owner["controller"], true);
    }
}

#[test]
fn pd_pods_know_the_founders_by_stable_dns_names() {
    let input = fixtures::input("minimal.yaml");
    let all = objects(&desired(&input));
    let pd = named(&all, "StatefulSet", "vec-pd");
    let args = args(pd);
    assert_eq!(
        arg_after(&args, "--initial-members"),
        "1=vec-pd-0.vec-pd-headless.search.svc:7400,\
         2=vec-pd-1.vec-pd-headless.search.svc:7400,\
         3=vec-pd-2.vec-pd-headless.search.svc:7400"
    );
    assert!(
        args.contains(&"--node-id-from-ordinal".to_owned()),
        "{args:?}"
    );
    assert_eq!(
        arg_after(&args, "--advertise-addr"),
        "$(POD_NAME).vec-pd-headless.$(POD_NAMESPACE).svc:7400"
    );
    assert_eq!(pd["spec"]["replicas"], 3);
    assert_eq!(pd["spec"]["serviceName"], "vec-pd-headless");
    assert_eq!(pd["spec"]["podManagementPolicy"], "Parallel");
    let headless = named(&all, "Service", "vec-pd-headless");
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(headless["spec"]["publishNotReadyAddresses"], true);
    let config = named(&all, "ConfigMap", "vec-config");
    assert_eq!(
        config["data"]["VECTRON_PD_ENDPOINTS"],
        "vec-pd.search.svc:7400"
    );
}

#[test]
fn scaling_pd_up_keeps_the_founders_so_no_pod_restarts() {
    let mut input = fixtures::input("minimal.yaml");
    input.kept.pd_founders = Some(3);
    input.spec.pd.replicas = 5;
    let all = objects(&desired(&input));
    let pd = named(&all, "StatefulSet", "vec-pd");
    assert_eq!(pd["spec"]["replicas"], 5);
    assert!(arg_after(&args(pd), "--initial-members").starts_with("1=vec-pd-0."));
    assert_eq!(
        arg_after(&args(pd), "--initial-members")
            .matches('=')
            .count(),
        3,
        "pods 3 and 4 join the founders instead"
    );
    let budget = named(&all, "PodDisruptionBudget", "vec-pd");
    assert_eq!(budget["spec"]["minAvailable"], 3, "a majority of 5");
}

#[test]
fn workers_register_under_their_pod_name_and_dial_pd_through_its_service() {
    let all = objects(&desired(&fixtures::input("minimal.yaml")));
    let worker = named(&all, "StatefulSet", "vec-worker");
    let args = args(worker);
    assert_eq!(arg_after(&args, "--name"), "$(POD_NAME)");
    assert_eq!(
        arg_after(&args, "--advertise-addr"),
        "$(POD_NAME).vec-worker-headless.$(POD_NAMESPACE).svc:7500"
    );
    let container = &worker["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["envFrom"][0]["configMapRef"]["name"],
        "vec-config"
    );
    let claim = &worker["spec"]["volumeClaimTemplates"][0];
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "10Gi");
    assert_eq!(
        named(&all, "PodDisruptionBudget", "vec-worker")["spec"]["maxUnavailable"],
        1
    );
}

#[test]
fn every_pod_runs_restricted() {
    for fixture in ["minimal.yaml", "custom.yaml"] {
        let all = objects(&desired(&fixtures::input(fixture)));
        for workload in all
            .iter()
            .filter(|o| o["kind"] == "StatefulSet" || o["kind"] == "Deployment")
        {
            let pod = &workload["spec"]["template"]["spec"];
            let name = &workload["metadata"]["name"];
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
            assert_eq!(
                pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
                "{name}"
            );
            assert_eq!(pod["automountServiceAccountToken"], false, "{name}");
            assert_eq!(
                pod["securityContext"]["fsGroupChangePolicy"], "OnRootMismatch",
                "{name}: no recursive chown of the data volume on every start"
            );
            for container in pod["containers"].as_array().expect("containers") {
                let security = &container["securityContext"];
                assert_eq!(security["allowPrivilegeEscalation"], false, "{name}");
                assert_eq!(security["readOnlyRootFilesystem"], true, "{name}");
                assert_eq!(security["capabilities"]["drop"], json!(["ALL"]), "{name}");
                assert!(container["readinessProbe"].is_object(), "{name}");
                assert!(container["livenessProbe"].is_object(), "{name}");
                let mounts = container["volumeMounts"].as_array().expect("mounts");
                assert!(
                    mounts.iter().any(|m| m["mountPath"] == "/tmp"),
                    "{name}: a writable /tmp"
                );
            }
        }
    }
}

#[test]
fn the_gateway_is_probed_over_http_and_exposed_as_asked() {
    let all = objects(&desired(&fixtures::input("custom.yaml")));
    let gateway = named(&all, "Deployment", "prod-gateway");
    let container = &gateway["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["imagePullPolicy"], "Always");
    assert!(args(gateway).contains(&"--no-auth".to_owned()));
    assert_eq!(arg_after(&args(gateway), "--http-addr"), "0.0.0.0:8080");
    let service = named(&all, "Service", "prod-gateway");
    assert_eq!(service["spec"]["type"], "LoadBalancer");
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);
    assert_eq!(service["spec"]["ports"][1]["port"], 9090);
    assert!(
        !all.iter().any(|o| o["metadata"]["name"] == "prod-auth"),
        "auth disabled: no auth objects"
    );
    assert!(
        !all.iter().any(|o| o["metadata"]["name"] == "prod-admin"),
        "auth disabled: no generated admin password"
    );
}

#[test]
fn custom_scheduling_storage_and_resources_reach_the_pods() {
    let all = objects(&desired(&fixtures::input("custom.yaml")));
    let worker = named(&all, "StatefulSet", "prod-worker");
    let pod = &worker["spec"]["template"]["spec"];
    // The workers' own placement replaces the fields it sets; the rest
    // come from the cluster-wide one.
    assert_eq!(pod["nodeSelector"]["pool"], "nvme");
    assert_eq!(pod["priorityClassName"], "vectron-data");
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    for (kind, name) in [("StatefulSet", "prod-pd"), ("Deployment", "prod-gateway")] {
        let other = &named(&all, kind, name)["spec"]["template"]["spec"];
        assert_eq!(other["nodeSelector"]["pool"], "vectors", "{name}");
        assert_eq!(other["priorityClassName"], "vectron-serving", "{name}");
        assert_eq!(other["tolerations"][0]["key"], "dedicated", "{name}");
    }
    let spread = &pod["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], "topology.kubernetes.io/zone");
    assert_eq!(
        spread["labelSelector"]["matchLabels"][labels::COMPONENT],
        "worker",
        "the operator scopes spreading to the component's pods"
    );
    assert_eq!(pod["containers"][0]["resources"]["limits"]["memory"], "8Gi");
    let claim = &worker["spec"]["volumeClaimTemplates"][0]["spec"];
    assert_eq!(claim["storageClassName"], "fast-ssd");
    assert_eq!(claim["resources"]["requests"]["storage"], "100Gi");
    assert_eq!(worker["spec"]["replicas"], 6);
}

#[test]
fn selectors_and_claim_templates_never_change_for_an_existing_cluster() {
    let mut input = fixtures::input("minimal.yaml");
    let first = desired(&input);
    let claims_of = |d: &Desired, name: &str| -> StatefulSet {
        d.stateful_sets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
            .cloned()
            .expect("stateful set")
    };
    let pd = claims_of(&first, "vec-pd");
    let worker = claims_of(&first, "vec-worker");
    input.kept.pd_claims = pd
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.clone());
    input.kept.worker_claims = worker
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.clone());
    // A user edits storage and scheduling: the apiserver would refuse new
    // claim templates or selectors, so the builders keep the old ones.
    input.spec.workers.storage.size = "500Gi".into();
    input.spec.pd.storage.storage_class_name = Some("other".into());
    input
        .spec
        .scheduling
        .node_selector
        .insert("pool".into(), "new".into());
    let second = desired(&input);
    for name in ["vec-pd", "vec-worker"] {
        let before = json_of(&claims_of(&first, name));
        let after = json_of(&claims_of(&second, name));
        assert_eq!(
            before["spec"]["volumeClaimTemplates"], after["spec"]["volumeClaimTemplates"],
            "{name}"
        );
        assert_eq!(
            before["spec"]["selector"], after["spec"]["selector"],
            "{name}"
        );
    }
    let deployments = |d: &Desired| d.deployments.iter().map(json_of).collect::<Vec<_>>();
    for (a, b) in deployments(&first).iter().zip(deployments(&second).iter()) {
        assert_eq!(a["spec"]["selector"], b["spec"]["selector"]);
    }
}

#[test]
fn network_policies_admit_only_the_traffic_the_design_needs() {
    let all = objects(&desired(&fixtures::input("minimal.yaml")));
    let from_components = |policy: &Value, rule: usize| -> Vec<String> {
        policy["spec"]["ingress"][rule]["from"][0]["podSelector"]["matchExpressions"][0]["values"]
            .as_array()
            .expect("component list")
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let worker = named(&all, "NetworkPolicy", "vec-worker");
    assert_eq!(from_components(worker, 0), ["worker", "gateway"]);
    assert_eq!(
        worker["spec"]["ingress"][0]["ports"],
        json!([{"protocol": "TCP", "port": 7500}])
    );
    let auth = named(&all, "NetworkPolicy", "vec-auth");
    assert_eq!(from_components(auth, 0), ["gateway"]);
    let pd = named(&all, "NetworkPolicy", "vec-pd");
    assert_eq!(from_components(pd, 0), ["pd", "worker", "gateway", "auth"]);
    assert_eq!(
        pd["spec"]["ingress"][0]["from"][1]["podSelector"]["matchLabels"][labels::NAME],
        "vectron-operator"
    );
    // The operator rule is pinned to the operator's namespace: a pod with
    // the operator's label in any other namespace is not admitted.
    assert_eq!(
        pd["spec"]["ingress"][0]["from"][1]["namespaceSelector"],
        json!({"matchLabels": {"kubernetes.io/metadata.name": "vectron-system"}})
    );
    for policy in all.iter().filter(|o| o["kind"] == "NetworkPolicy") {
        assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress"]));
    }
    // Behind a ClusterIP Service the gateway admits pods only.
    let gateway = named(&all, "NetworkPolicy", "vec-gateway");
    assert_eq!(
        gateway["spec"]["ingress"][0]["from"],
        json!([{"namespaceSelector": {}}])
    );
}

#[test]
fn a_gateway_behind_a_load_balancer_or_node_port_admits_clients_outside_the_cluster() {
    for service_type in [ServiceType::LoadBalancer, ServiceType::NodePort] {
        let mut input = fixtures::input("minimal.yaml");
        input.spec.gateway.service.type_ = service_type;
        let all = objects(&desired(&input));
        let gateway = named(&all, "NetworkPolicy", "vec-gateway");
        let api = &gateway["spec"]["ingress"][0];
        // No `from`: every source, including addresses outside the cluster.
        assert!(api.get("from").is_none(), "{service_type:?}: {api}");
        assert_eq!(
            api["ports"],
            json!([{"protocol": "TCP", "port": input.spec.gateway.service.http_port},
                   {"protocol": "TCP", "port": input.spec.gateway.service.grpc_port}])
        );
        // Metrics stay limited to pods.
        assert_eq!(
            gateway["spec"]["ingress"][1]["from"],
            json!([{"namespaceSelector": {}}])
        );
    }
}

#[test]
fn an_invalid_fixture_is_refused_naming_the_field() {
    let input = fixtures::input("invalid.yaml");
    let error = vectron_operator::validate::cluster(&input.name, &input.spec)
        .expect_err("even PD replicas");
    assert_eq!(error.field, "spec.pd.replicas");
    assert!(error.message.contains("odd"), "{error}");
    let good = fixtures::input("custom.yaml");
    vectron_operator::validate::cluster(&good.name, &good.spec).expect("custom is valid");
    let mut clash = fixtures::input("minimal.yaml");
    clash.spec.gateway.service.grpc_port = vectron_operator::build::ports::GATEWAY_METRICS;
    let error = vectron_operator::validate::cluster(&clash.name, &clash.spec)
        .expect_err("the metrics port is taken");
    assert_eq!(error.field, "spec.gateway.service.grpcPort");
}

#[test]
fn the_worker_budget_follows_the_smallest_replication_factor() {
    let mut input = fixtures::input("minimal.yaml");
    let max_unavailable = |input: &vectron_operator::build::BuildInput| {
        let all = objects(&desired(input));
        named(&all, "PodDisruptionBudget", "vec-worker")["spec"]["maxUnavailable"].clone()
    };
    assert_eq!(max_unavailable(&input), 1, "no collections: one at a time");
    for (rf, allowed) in [(1, 0), (2, 0), (3, 1), (4, 1), (5, 2), (7, 3)] {
        input.smallest_replication_factor = Some(rf);
        assert_eq!(max_unavailable(&input), allowed, "rf {rf}");
    }
}

#[test]
fn workers_take_their_zone_from_their_node_label() {
    let all = objects(&desired(&fixtures::input("minimal.yaml")));
    let worker = named(&all, "StatefulSet", "vec-worker");
    let container = &worker["spec"]["template"]["spec"]["containers"][0];
    let zone = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "VECTRON_ZONE")
        .expect("VECTRON_ZONE");
    assert_eq!(
        zone["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.labels['topology.kubernetes.io/zone']"
    );
    let pd = named(&all, "StatefulSet", "vec-pd");
    assert!(
        pd["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .expect("env")
            .iter()
            .all(|e| e["name"] != "VECTRON_ZONE"),
        "only workers have a zone"
    );
}

#[test]
fn a_single_pd_member_gets_no_budget_that_would_block_every_drain() {
    let mut input = fixtures::input("minimal.yaml");
    input.spec.pd.replicas = 1;
    let all = objects(&desired(&input));
    let budgets: Vec<&Value> = all
        .iter()
        .filter(|o| o["kind"] == "PodDisruptionBudget")
        .collect();
    assert!(
        !budgets.iter().any(|b| b["metadata"]["name"] == "vec-pd"),
        "{budgets:?}"
    );
    assert!(
        budgets
            .iter()
            .any(|b| b["metadata"]["name"] == "vec-worker")
    );
    input.spec.pd.replicas = 3;
    let all = objects(&desired(&input));
    assert_eq!(
        named(&all, "PodDisruptionBudget", "vec-pd")["spec"]["minAvailable"],
        2
    );
}

#[test]
fn quantities_are_recognised() {
    use vectron_operator::validate::is_quantity;
    for ok in ["10Gi", "1.5Gi", "500M", "100", "2Ti"] {
        assert!(is_quantity(ok), "{ok}");
    }
    for bad in ["", "Gi", "ten", "1..5Gi", "10 Gi", "-1Gi"] {
        assert!(!is_quantity(bad), "{bad}");
    }
}

/// A stand-in for what the reconcile step issues (the builders copy it).
fn issued_pki() -> ClusterPki {
    ClusterPki {
        ca_cert_pem: "CA-CERT".into(),
        ca_key_pem: "CA-KEY".into(),
        certs: vectron_operator::pki::CERT_ROLES
            .iter()
            .map(|role| {
                (
                    *role,
                    StoredCert {
                        ca_pem: "CA-CERT".into(),
                        cert_pem: format!("{}-CERT", role.as_str()),
                        key_pem: format!("{}-KEY", role.as_str()),
                        not_after: Some(1_900_000_000),
                        roles: Some(role.as_str().into()),
                    },
                )
            })
            .collect(),
    }
}

fn workloads(all: &[Value]) -> Vec<&Value> {
    all.iter()
        .filter(|o| o["kind"] == "StatefulSet" || o["kind"] == "Deployment")
        .collect()
}

fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| &e["value"])
}

fn secret_text(secret: &Value, key: &str) -> String {
    use base64::Engine;
    let encoded = secret["data"][key].as_str().unwrap_or_default();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64"),
    )
    .expect("utf-8")
}

#[test]
fn operator_issued_certificates_are_written_as_secrets_and_each_pod_mounts_its_role() {
    let mut input = fixtures::input("minimal.yaml");
    input.kept.internal_pki = Some(issued_pki());
    let all = objects(&desired(&input));

    let ca = named(&all, "Secret", "vec-internal-ca");
    assert_eq!(secret_text(ca, "tls.crt"), "CA-CERT");
    assert_eq!(secret_text(ca, "tls.key"), "CA-KEY");
    for role in ["pd", "worker", "auth", "gateway", "operator"] {
        let secret = named(&all, "Secret", &format!("vec-internal-tls-{role}"));
        assert_eq!(secret["type"], "kubernetes.io/tls");
        assert_eq!(secret_text(secret, "ca.crt"), "CA-CERT");
        assert_eq!(secret_text(secret, "tls.crt"), format!("{role}-CERT"));
        assert_eq!(secret_text(secret, "tls.key"), format!("{role}-KEY"));
        let annotations = &secret["metadata"]["annotations"];
        assert_eq!(annotations["vectron.io/not-after"], "1900000000");
        assert_eq!(annotations["vectron.io/roles"], role);
    }
    let config = named(&all, "ConfigMap", "vec-config");
    assert!(
        config["data"].get("VECTRON_INSECURE_INTERNAL").is_none(),
        "no plaintext switch in the shared settings"
    );

    let workloads = workloads(&all);
    assert_eq!(workloads.len(), 4, "pd, worker, gateway, auth");
    for workload in workloads {
        let component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
            .as_str()
            .expect("component");
        let pod = &workload["spec"]["template"]["spec"];
        let volume = pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == "internal-tls")
            .unwrap_or_else(|| panic!("{component}: no internal-tls volume"));
        assert_eq!(
            volume["secret"]["secretName"],
            format!("vec-internal-tls-{component}"),
            "{component} mounts its own role's certificate"
        );
        assert_eq!(volume["secret"]["defaultMode"], 0o440);
        let container = &pod["containers"][0];
        let mount = container["volumeMounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .find(|m| m["name"] == "internal-tls")
            .unwrap_or_else(|| panic!("{component}: not mounted"));
        assert_eq!(mount["readOnly"], true);
        let dir = mount["mountPath"].as_str().expect("path");
        assert_eq!(
            env_value(container, "VECTRON_INTERNAL_CA"),
            Some(&json!(format!("{dir}/ca.crt")))
        );
        assert_eq!(
            env_value(container, "VECTRON_INTERNAL_CERT"),
            Some(&json!(format!("{dir}/tls.crt")))
        );
        assert_eq!(
            env_value(container, "VECTRON_INTERNAL_KEY"),
            Some(&json!(format!("{dir}/tls.key")))
        );
        assert_eq!(env_value(container, "VECTRON_INSECURE_INTERNAL"), None);
    }
}

#[test]
fn cert_manager_mode_asks_cert_manager_for_the_same_secrets() {
    let mut input = fixtures::input("minimal.yaml");
    input.spec.internal_tls.mode = InternalTlsMode::CertManager;
    input.spec.internal_tls.issuer_ref = Some(IssuerRef {
        name: "vectron-ca".into(),
        kind: "ClusterIssuer".into(),
        group: "cert-manager.io".into(),
    });
    input.kept.internal_pki = Some(issued_pki());
    let all = objects(&desired(&input));
    assert!(
        all.iter()
            .all(|o| !(o["kind"] == "Secret" && o["metadata"]["name"] == "vec-internal-ca")),
        "no operator CA in cert-manager mode"
    );
    for role in ["pd", "worker", "auth", "gateway", "operator"] {
        let name = format!("vec-internal-tls-{role}");
        let cert = named(&all, "Certificate", &name);
        assert_eq!(cert["apiVersion"], "cert-manager.io/v1");
        assert_eq!(cert["spec"]["secretName"], name.as_str());
        assert_eq!(
            cert["spec"]["dnsNames"],
            json!([format!("{role}.role.vectron")])
        );
        assert_eq!(cert["spec"]["issuerRef"]["name"], "vectron-ca");
        assert_eq!(cert["spec"]["issuerRef"]["kind"], "ClusterIssuer");
        assert_eq!(cert["spec"]["duration"], "2160h");
        assert_eq!(cert["spec"]["renewBefore"], "720h");
        let usages = cert["spec"]["usages"].as_array().expect("usages");
        assert!(usages.contains(&json!("server auth")) && usages.contains(&json!("client auth")));
        assert_eq!(
            cert["metadata"]["ownerReferences"][0]["kind"],
            "VectronCluster"
        );
    }
    for workload in workloads(&all) {
        let container = &workload["spec"]["template"]["spec"]["containers"][0];
        assert!(env_value(container, "VECTRON_INTERNAL_CERT").is_some());
    }
}

#[test]
fn disabled_internal_tls_is_an_explicit_plaintext_switch_with_nothing_mounted() {
    let mut input = fixtures::input("minimal.yaml");
    input.spec.internal_tls.mode = InternalTlsMode::Disabled;
    let all = objects(&desired(&input));
    assert!(
        all.iter().all(|o| o["kind"] != "Certificate"
            && !(o["kind"] == "Secret"
                && o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.contains("internal")))),
        "no certificates in plaintext mode"
    );
    for workload in workloads(&all) {
        let pod = &workload["spec"]["template"]["spec"];
        assert!(
            pod["volumes"]
                .as_array()
                .expect("volumes")
                .iter()
                .all(|v| v["name"] != "internal-tls")
        );
        let container = &pod["containers"][0];
        assert_eq!(
            env_value(container, "VECTRON_INSECURE_INTERNAL"),
            Some(&json!("true"))
        );
        assert_eq!(env_value(container, "VECTRON_INTERNAL_CERT"), None);
    }
}

#[test]
fn a_gateway_with_a_certificate_serves_tls_and_is_probed_over_https() {
    let mut input = fixtures::input("minimal.yaml");
    input.spec.gateway.tls = Some(vectron_operator::crd::GatewayTlsSpec {
        secret_name: "api-cert".into(),
    });
    let all = objects(&desired(&input));
    let gateway = named(&all, "Deployment", "vec-gateway");
    let args = args(gateway);
    let cert = arg_after(&args, "--tls-cert");
    let key = arg_after(&args, "--tls-key");
    let pod = &gateway["spec"]["template"]["spec"];
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["secret"]["secretName"] == "api-cert")
        .expect("the certificate Secret is a volume");
    let container = &pod["containers"][0];
    let mount = container["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("mounted");
    let dir = mount["mountPath"].as_str().expect("path");
    assert_eq!(cert, format!("{dir}/tls.crt"));
    assert_eq!(key, format!("{dir}/tls.key"));
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        assert_eq!(container[probe]["httpGet"]["scheme"], "HTTPS", "{probe}");
    }

    let plain = objects(&desired(&fixtures::input("minimal.yaml")));
    let gateway = named(&plain, "Deployment", "vec-gateway");
    assert!(!args_of_contains(gateway, "--tls-cert"));
    assert_eq!(
        gateway["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["scheme"],
        "HTTP"
    );
}

fn args_of_contains(workload: &Value, flag: &str) -> bool {
    args(workload).iter().any(|a| a == flag)
}
