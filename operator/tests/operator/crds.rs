//! The CRDs: `crds/` matches what the Rust types generate, each schema
//! obeys the apiserver's structural-schema rules, and the CEL rules accept
//! valid objects and refuse invalid ones (evaluated offline with kube's
//! CEL validator).

use serde_json::{Value, json};
use vectron_operator::crd::{Collection, VectronCluster};

fn crds_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds")
}

#[test]
fn crds_directory_matches_the_generated_output() {
    let rendered = vectron_operator::crdgen::render().expect("render");
    assert_eq!(rendered.len(), 2);
    for (file, yaml) in rendered {
        let path = crds_dir().join(&file);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == yaml,
            "{} is stale; run `cargo run -p vectron-operator -- crdgen --out crds`",
            path.display()
        );
    }
}

/// Keys the apiserver refuses inside allOf/anyOf/oneOf/not.
const FORBIDDEN_IN_JUNCTORS: [&str; 5] = [
    "type",
    "default",
    "description",
    "nullable",
    "additionalProperties",
];

/// Collects violations of the structural-schema rules under `node`.
fn structural_errors(node: &Value, path: &str, in_junctor: bool, errors: &mut Vec<String>) {
    let Some(object) = node.as_object() else {
        errors.push(format!("{path}: schema is not an object"));
        return;
    };
    let escape = object.get("x-kubernetes-int-or-string") == Some(&json!(true))
        || object.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    if in_junctor {
        for key in FORBIDDEN_IN_JUNCTORS {
            if object.contains_key(key) {
                errors.push(format!("{path}: {key:?} inside allOf/anyOf/oneOf/not"));
            }
        }
    } else if !object.contains_key("type") && !escape {
        errors.push(format!("{path}: no type"));
    }
    if object.contains_key("$ref") {
        errors.push(format!("{path}: $ref is not allowed"));
    }
    if object.contains_key("properties") && object.contains_key("additionalProperties") {
        errors.push(format!(
            "{path}: properties and additionalProperties together"
        ));
    }
    if object.get("type") == Some(&json!("array")) && !object.contains_key("items") {
        errors.push(format!("{path}: array without items"));
    }
    if let Some(properties) = object.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            structural_errors(child, &format!("{path}.{name}"), in_junctor, errors);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = object.get(key).filter(|c| c.is_object()) {
            structural_errors(child, &format!("{path}[{key}]"), in_junctor, errors);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for (i, child) in object
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            structural_errors(child, &format!("{path}.{key}[{i}]"), true, errors);
        }
    }
    if let Some(child) = object.get("not") {
        structural_errors(child, &format!("{path}.not"), true, errors);
    }
}

#[test]
fn every_crd_schema_is_structural() {
    for (file, crd) in vectron_operator::crd::all() {
        let crd = serde_json::to_value(&crd).expect("json");
        for version in crd["spec"]["versions"].as_array().expect("versions") {
            let schema = &version["schema"]["openAPIV3Schema"];
            let mut errors = Vec::new();
            structural_errors(schema, "openAPIV3Schema", false, &mut errors);
            // The root may only constrain metadata.name / generateName.
            if let Some(metadata) = schema["properties"]["metadata"]["properties"].as_object() {
                for key in metadata.keys() {
                    if key != "name" && key != "generateName" {
                        errors.push(format!("metadata.{key} may not be specified"));
                    }
                }
            }
            assert!(errors.is_empty(), "{file}: {errors:#?}");
            assert_eq!(
                version["subresources"]["status"],
                json!({}),
                "{file}: status subresource"
            );
        }
    }
}

#[test]
fn the_structural_check_catches_what_the_apiserver_refuses() {
    let bad = json!({
        "type": "object",
        "properties": {
            "untyped": {"description": "no type"},
            "choice": {"type": "string", "anyOf": [{"type": "string", "default": "x"}]},
        },
    });
    let mut errors = Vec::new();
    structural_errors(&bad, "root", false, &mut errors);
    assert!(
        errors.iter().any(|e| e.contains("untyped: no type")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("\"type\" inside")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("\"default\" inside")),
        "{errors:?}"
    );
}

#[test]
fn printer_columns_and_short_names_are_as_documented() {
    let cluster = serde_json::to_value(vectron_operator::crd::all()[0].1.clone()).expect("json");
    assert_eq!(cluster["spec"]["names"]["shortNames"], json!(["vc"]));
    let columns: Vec<&str> = cluster["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(columns, ["Phase", "PD", "Workers", "Gateway", "Age"]);
    let collection = serde_json::to_value(vectron_operator::crd::all()[1].1.clone()).expect("json");
    assert_eq!(collection["spec"]["names"]["shortNames"], json!(["vcol"]));
}

fn cluster(spec: Value) -> VectronCluster {
    serde_json::from_value(json!({
        "apiVersion": "vectron.io/v1alpha1",
        "kind": "VectronCluster",
        "metadata": {"name": "c"},
        "spec": spec,
    }))
    .expect("a VectronCluster")
}

fn collection(spec: Value) -> Collection {
    serde_json::from_value(json!({
        "apiVersion": "vectron.io/v1alpha1",
        "kind": "Collection",
        "metadata": {"name": "docs"},
        "spec": spec,
    }))
    .expect("a Collection")
}

fn refusal(result: Result<(), impl std::fmt::Display>) -> String {
    match result {
        Ok(()) => panic!("the CEL rules accepted an invalid object"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn cluster_cel_rules_refuse_even_pd_and_zero_workers() {
    let good = cluster(json!({"image": "v:1", "pd": {"replicas": 3}, "workers": {"replicas": 1}}));
    kube::core::cel::validate_cel(&good).expect("a valid cluster passes");
    let even = cluster(json!({"image": "v:1", "pd": {"replicas": 4}}));
    assert!(refusal(kube::core::cel::validate_cel(&even)).contains("odd"));
    let no_workers = cluster(json!({"image": "v:1", "workers": {"replicas": 0}}));
    assert!(refusal(kube::core::cel::validate_cel(&no_workers)).contains("workers.replicas"));
    let no_image = cluster(json!({"image": ""}));
    assert!(refusal(kube::core::cel::validate_cel(&no_image)).contains("image"));
}

#[test]
fn cluster_cel_rules_guard_internal_and_gateway_tls() {
    let cert_manager = cluster(json!({"image": "v:1", "internalTls": {
        "mode": "CertManager", "issuerRef": {"name": "ca"}}}));
    kube::core::cel::validate_cel(&cert_manager).expect("cert-manager with an issuer passes");
    let no_issuer = cluster(json!({"image": "v:1", "internalTls": {"mode": "CertManager"}}));
    assert!(refusal(kube::core::cel::validate_cel(&no_issuer)).contains("issuerRef"));
    let short = cluster(json!({"image": "v:1", "internalTls": {"certificateDays": 1}}));
    assert!(refusal(kube::core::cel::validate_cel(&short)).contains("certificateDays"));
    let no_secret = cluster(json!({"image": "v:1", "gateway": {"tls": {"secretName": ""}}}));
    assert!(refusal(kube::core::cel::validate_cel(&no_secret)).contains("secretName"));
    let invalid = |spec: Value| {
        vectron_operator::validate::cluster("c", &cluster(spec).spec)
            .expect_err("refused")
            .field
    };
    assert_eq!(
        invalid(json!({"image": "v:1", "internalTls": {"mode": "CertManager"}})),
        "spec.internalTls.issuerRef"
    );
    assert_eq!(
        invalid(json!({"image": "v:1", "internalTls": {"certificateDays": 2000}})),
        "spec.internalTls.certificateDays"
    );
    assert_eq!(
        invalid(json!({"image": "v:1", "gateway": {"tls": {"secretName": ""}}})),
        "spec.gateway.tls.secretName"
    );
}

#[test]
fn collection_cel_rules_keep_every_pd_side_setting_immutable() {
    let old =
        collection(json!({"cluster": "c", "dimension": 384, "metric": "cosine", "shards": 4}));
    kube::core::cel::validate_cel(&old).expect("a valid collection passes");
    let more_replicas = collection(
        json!({"cluster": "c", "dimension": 384, "metric": "cosine", "shards": 4, "replicationFactor": 5}),
    );
    assert!(
        refusal(kube::core::cel::validate_cel_update(&more_replicas, &old))
            .contains("replicationFactor is immutable")
    );
    for (field, changed) in [
        (
            "hnsw",
            json!({"cluster": "c", "dimension": 384, "metric": "cosine", "shards": 4, "hnsw": {"m": 32}}),
        ),
        (
            "dimension",
            json!({"cluster": "c", "dimension": 768, "metric": "cosine", "shards": 4}),
        ),
        (
            "metric",
            json!({"cluster": "c", "dimension": 384, "metric": "l2", "shards": 4}),
        ),
        (
            "shards",
            json!({"cluster": "c", "dimension": 384, "metric": "cosine", "shards": 8}),
        ),
    ] {
        let message = refusal(kube::core::cel::validate_cel_update(
            &collection(changed),
            &old,
        ));
        assert!(
            message.contains(&format!("{field} is immutable")),
            "{message}"
        );
    }
    let zero = collection(json!({"cluster": "c", "dimension": 0}));
    assert!(refusal(kube::core::cel::validate_cel(&zero)).contains("dimension"));
}
