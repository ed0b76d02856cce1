"""Offline checks of the vectron-operator Helm chart.

Renders the chart with the real Helm SDK (helm_python) under its default
values and under non-default values, validates every rendered object
against the Kubernetes OpenAPI schema in strict mode (kubernetes_validate),
checks that the chart's crds/ equal the repository's crds/, and that
values.schema.json rejects bad values. Exits non-zero on the first failure
with a message naming the object or value.
"""

import filecmp
import os
import sys

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHART = os.path.join(ROOT, "charts", "vectron-operator")
KUBERNETES = "1.33.0"

NON_DEFAULT = {
    "image": {"repository": "registry.example.com/vectron-operator", "tag": "9.9.9", "pullPolicy": "Always"},
    "replicaCount": 1,
    "leaderElection": {"enabled": False},
    "serviceAccount": {"create": False, "name": "existing-sa"},
    "watchNamespaces": ["team-a", "team-b"],
    "logLevel": "debug",
    "metrics": {"port": 9090, "service": {"enabled": False}},
    "nodeSelector": {"pool": "system"},
    "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
    "priorityClassName": "system-cluster-critical",
    "podLabels": {"team": "search"},
    "test": {"gatewayUrl": "http://demo-gateway.search.svc:7333"},
}

BAD_VALUES = [
    ({"replicaCount": 0}, "replicaCount"),
    # Two operators without a Lease would both reconcile every cluster.
    ({"replicaCount": 2, "leaderElection": {"enabled": False}}, "replicaCount"),
    ({"image": {"repository": ""}}, "repository"),
    ({"image": {"repository": "x", "pullPolicy": "Sometimes"}}, "pullPolicy"),
    ({"metrics": {"port": 80}}, "port"),
    ({"watchNamespaces": ["Not_A_Namespace"]}, "watchNamespaces"),
    ({"unknownKey": True}, "unknownKey"),
    ({"test": {"gatewayUrl": "demo-gateway:7333"}}, "gatewayUrl"),
]


def fail(message):
    print(f"chart check FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def render(chart, values):
    rendered = chart.render(values, name="vectron-operator", namespace="vectron-system")
    objects = []
    for path, text in sorted(rendered.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append((path, doc))
    return objects


def validate_objects(label, objects):
    kinds = set()
    for path, obj in objects:
        kinds.add(obj.get("kind"))
        try:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as e:
            fail(f"{label}: {path} {obj.get('kind')}/{obj['metadata'].get('name')}: {e.message}")
        labels = obj["metadata"].get("labels", {})
        if labels.get("app.kubernetes.io/name") != "vectron-operator":
            fail(f"{label}: {path} lacks the app.kubernetes.io/name label")
    print(f"{label}: {len(objects)} objects valid for Kubernetes {KUBERNETES} (strict): {sorted(kinds)}")
    return kinds


def check_crds(chart):
    repo = os.path.join(ROOT, "crds")
    names = sorted(n for n in os.listdir(repo) if n.endswith(".yaml"))
    if sorted(c["filename"].split("/")[-1] for c in chart.crds) != names:
        fail(f"chart crds/ {[c['filename'] for c in chart.crds]} differ from crds/ {names}")
    for name in names:
        if not filecmp.cmp(os.path.join(repo, name), os.path.join(CHART, "crds", name), shallow=False):
            fail(f"charts/vectron-operator/crds/{name} differs from crds/{name}; copy it over")
        with open(os.path.join(repo, name)) as f:
            crd = yaml.safe_load(f)
        try:
            kubernetes_validate.validate(crd, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as e:
            fail(f"crds/{name}: {e.message}")
    print(f"crds: {names} identical in the chart and valid CustomResourceDefinitions")


def check_bad_values(chart):
    for values, field in BAD_VALUES:
        try:
            chart.validate_schema(values)
        except Exception as e:  # helm_python raises its own error type
            if field not in str(e):
                fail(f"values {values} rejected, but the error does not name {field}: {e}")
            continue
        fail(f"values.schema.json accepted bad values {values}")
    print(f"values.schema.json rejects {len(BAD_VALUES)} bad value sets, naming the field")


def main():
    lint = helm.lint(CHART, {}, strict=True, kube_version=f"v{KUBERNETES}")
    # Helm's lint severities: 1 info, 2 warning, 3 error.
    messages = [m for m in lint.get("messages", []) if int(m.get("severity", 0)) >= 2]
    if messages or lint.get("errors"):
        fail(f"helm lint --strict: {messages} {lint.get('errors')}")
    print("helm lint --strict: clean")
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema({})
        chart.validate_schema(NON_DEFAULT)
        default_kinds = validate_objects("default values", render(chart, {}))
        for kind in ("Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service", "Pod"):
            if kind not in default_kinds:
                fail(f"default values render no {kind}")
        custom = render(chart, NON_DEFAULT)
        custom_kinds = validate_objects("non-default values", custom)
        if "ServiceAccount" in custom_kinds or "Role" in custom_kinds or "Service" in custom_kinds:
            fail("non-default values still render the ServiceAccount, Role or metrics Service they turn off")
        deployment = next(o for _, o in custom if o["kind"] == "Deployment")
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        for expected in ("--namespace=team-a", "--namespace=team-b", "--metrics-addr=0.0.0.0:9090"):
            if expected not in args:
                fail(f"non-default values: {expected} missing from {args}")
        probes = [o for _, o in custom if o["kind"] == "Pod"]
        commands = [p["spec"]["containers"][0]["command"] for p in probes]
        if ["wget", "-q", "-O", "-", "http://demo-gateway.search.svc:7333/readyz"] not in commands:
            fail(f"test.gatewayUrl set, but no helm test checks the gateway: {commands}")
        if any("readyz" in " ".join(c) for _, o in render(chart, {}) if o["kind"] == "Pod" for c in [o["spec"]["containers"][0]["command"]]):
            fail("no test.gatewayUrl, yet a helm test checks a gateway")
        if "--leader-election" in args:
            fail("leader election disabled but --leader-election passed")
        check_crds(chart)
        check_bad_values(chart)
    print("chart checks passed")


if __name__ == "__main__":
    main()
