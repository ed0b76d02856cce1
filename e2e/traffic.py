"""Data round-trip and scaling check for the kind end-to-end suite.

Logs in as admin, upserts points into the collection, reads them back and
searches; then scales the workers 3 -> 5 -> 3 through the VectronCluster
while a writer keeps upserting and searching, and finally checks that every
acknowledged point is readable. Standard library only.
"""

import argparse
import json
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


class Gateway:
    def __init__(self, url):
        self.url = url.rstrip("/")
        self.token = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        if self.token:
            request.add_header("authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return json.loads(text) if text else None


def vector(seed, dimension):
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(dimension)]


def upsert(gateway, collection, ids, dimension):
    points = [{"id": i, "vector": vector(i, dimension), "payload": {"i": i}} for i in ids]
    gateway.call("PUT", f"/v1/collections/{collection}/points", {"points": points})


def all_readable(gateway, collection, upto):
    for start in range(0, upto, 500):
        ids = list(range(start, min(start + 500, upto)))
        found = gateway.call("POST", f"/v1/collections/{collection}/points/get",
                             {"ids": ids, "with_vector": False, "consistency": "strong"})
        if len(found["points"]) != len(ids):
            return f"ids {start}..: {len(found['points'])} of {len(ids)} found"
    return None


def settled_at(cluster, statefulset, workers, replicas):
    """Why the cluster is not yet settled at `replicas` workers, or None.

    Each check can fail: the operator has seen this generation, the
    StatefulSet runs exactly that many pods, nothing is draining, the
    phase is Running, and PD lists exactly that many workers up.
    """
    generation = cluster["metadata"]["generation"]
    status = cluster.get("status", {})
    if status.get("observedGeneration") != generation:
        return f"observedGeneration {status.get('observedGeneration')} != generation {generation}"
    if statefulset["spec"]["replicas"] != replicas:
        return f"StatefulSet at {statefulset['spec']['replicas']} replicas"
    if status.get("workers", {}).get("draining"):
        return f"still draining {status['workers']['draining']}"
    if status.get("phase") != "Running":
        return f"phase {status.get('phase')}"
    up = [w["name"] for w in workers if w["state"] == "up"]
    if len(up) != replicas:
        return f"PD lists {len(up)} workers up: {up}"
    return None


def scale(args, gateway, replicas):
    patch = json.dumps({"spec": {"workers": {"replicas": replicas}}})
    subprocess.run(args.scale_cmd.split() + [patch], check=True)
    deadline = time.time() + 900
    why = "not looked yet"
    while time.time() < deadline:
        time.sleep(5)
        try:
            cluster = json.loads(subprocess.run(args.cluster_cmd.split(), capture_output=True,
                                                text=True, check=True).stdout)
            statefulset = json.loads(subprocess.run(args.statefulset_cmd.split(), capture_output=True,
                                                    text=True, check=True).stdout)
            workers = gateway.call("GET", "/v1/cluster")["workers"]
        except (subprocess.CalledProcessError, ValueError, urllib.error.URLError, OSError) as e:
            why = f"cannot look: {e}"
            continue
        why = settled_at(cluster, statefulset, workers, replicas)
        if why is None:
            return
    sys.exit(f"e2e: FAILED: workers did not settle at {replicas} replicas: {why}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--collection", required=True)
    parser.add_argument("--dimension", type=int, required=True)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--scale-cmd", required=True)
    parser.add_argument("--cluster-cmd", required=True, help="prints the VectronCluster as JSON")
    parser.add_argument("--statefulset-cmd", required=True, help="prints the worker StatefulSet as JSON")
    args = parser.parse_args()

    gateway = Gateway(args.url)
    gateway.token = gateway.call("POST", "/v1/auth/login",
                                 {"username": "admin", "password": args.password})["token"]
    for start in range(0, args.points, 200):
        upsert(gateway, args.collection, range(start, min(start + 200, args.points)), args.dimension)
    missing = all_readable(gateway, args.collection, args.points)
    if missing:
        sys.exit(f"e2e: FAILED: round-trip: {missing}")
    hits = gateway.call("POST", f"/v1/collections/{args.collection}/points/search",
                        {"vector": vector(7, args.dimension), "top_k": 5})
    if not hits["results"] or hits["results"][0]["id"] != 7:
        sys.exit(f"e2e: FAILED: search for point 7 returned {hits}")
    print(f"e2e: {args.points} points written, read back and searched")

    acknowledged = [args.points]
    failures = []
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            start = acknowledged[0]
            try:
                upsert(gateway, args.collection, range(start, start + 50), args.dimension)
                acknowledged[0] = start + 50
                gateway.call("POST", f"/v1/collections/{args.collection}/points/search",
                             {"vector": vector(start, args.dimension), "top_k": 5})
            except (urllib.error.URLError, OSError) as e:
                failures.append(str(e))
                time.sleep(1)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    for replicas in (5, 3):
        scale(args, gateway, replicas)
        print(f"e2e: workers at {replicas}; acknowledged up to id {acknowledged[0]}")
    stop.set()
    thread.join(60)
    missing = all_readable(gateway, args.collection, acknowledged[0])
    if missing:
        sys.exit(f"e2e: FAILED: after scaling: {missing}")
    print(f"e2e: every acknowledged point ({acknowledged[0]}) readable after 3 -> 5 -> 3; "
          f"{len(failures)} failed attempts were retried")


if __name__ == "__main__":
    main()
