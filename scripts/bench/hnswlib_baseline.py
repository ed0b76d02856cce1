#!/usr/bin/env python3
"""The hnswlib baseline for `vectron bench`: builds an hnswlib index over a
dataset directory written by make_dataset.py and prints the same figures as
`vectron bench` (build vectors/s; recall@k, QPS and latency percentiles per ef
and client-thread count), one query per call as a client would send them.

Usage: hnswlib_baseline.py DATASET_DIR [--k 10] [--m 16] [--ef-construction 200]
       [--ef 16,32,64,128] [--threads 1,2] [--build-threads 2] [--min-searches 2000]
       [--json OUT]
"""

import argparse
import json
import os
import threading
import time

import hnswlib
import numpy as np


def load(path):
    with open(os.path.join(path, "meta.json")) as f:
        meta = json.load(f)
    dim = meta["dimension"]
    base = np.fromfile(os.path.join(path, "base.f32"), dtype="<f4").reshape(-1, dim)
    queries = np.fromfile(os.path.join(path, "queries.f32"), dtype="<f4").reshape(-1, dim)
    truth = np.fromfile(os.path.join(path, "truth.u32"), dtype="<u4").reshape(len(queries), -1)
    return meta, base, queries, truth


def percentile(sorted_ms, p):
    if not sorted_ms:
        return 0.0
    rank = min(len(sorted_ms) - 1, max(0, int(round(p / 100.0 * len(sorted_ms) + 0.5)) - 1))
    return sorted_ms[rank]


def search_cell(index, queries, truth, k, ef, threads, min_searches):
    index.set_ef(max(ef, k))
    total = max(min_searches, len(queries))
    latencies = [[] for _ in range(threads)]
    found = [[0, 0] for _ in range(threads)]

    def worker(t):
        i = t
        while i < total:
            q = i % len(queries)
            start = time.perf_counter()
            labels, _ = index.knn_query(queries[q], k=k, num_threads=1)
            latencies[t].append((time.perf_counter() - start) * 1000.0)
            hits = set(int(x) for x in labels[0])
            found[t][0] += len(hits.intersection(int(x) for x in truth[q][:k]))
            found[t][1] += k
            i += threads

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for p in pool:
        p.start()
    for p in pool:
        p.join()
    elapsed = time.perf_counter() - started
    all_ms = sorted(x for per in latencies for x in per)
    hit = sum(f[0] for f in found)
    asked = sum(f[1] for f in found)
    return {
        "recall": hit / asked,
        "qps": len(all_ms) / elapsed,
        "p50_ms": percentile(all_ms, 50),
        "p95_ms": percentile(all_ms, 95),
        "p99_ms": percentile(all_ms, 99),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef", default="16,32,64,128")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--min-searches", type=int, default=2000)
    parser.add_argument("--max-queries", type=int, default=1000)
    parser.add_argument("--json")
    args = parser.parse_args()

    meta, base, queries, truth = load(args.dataset)
    queries, truth = queries[: args.max_queries], truth[: args.max_queries]
    space = {"cosine": "cosine", "l2": "l2", "dot": "ip"}[meta["metric"]]
    index = hnswlib.Index(space=space, dim=base.shape[1])
    index.init_index(max_elements=len(base), M=args.m, ef_construction=args.ef_construction, random_seed=13)
    started = time.perf_counter()
    step = 10_000
    for lo in range(0, len(base), step):
        hi = min(len(base), lo + step)
        index.add_items(base[lo:hi], np.arange(lo, hi), num_threads=args.build_threads)
        rate = hi / (time.perf_counter() - started)
        print(f"hnswlib: built {hi}/{len(base)} ({rate:.0f} vectors/s)", flush=True)
    build_rate = len(base) / (time.perf_counter() - started)

    label = f"{meta.get('model', 'dataset')} {len(base)} x {base.shape[1]} {meta['metric']}"
    print(f"\ndataset: {label}; k {args.k}, m {args.m}, ef_construction {args.ef_construction}")
    print(f"\n{'load':<10}  {'points/s':>10}  {'threads':>7}")
    print(f"{'hnswlib':<10}  {build_rate:>10.0f}  {args.build_threads:>7}")
    print(f"\n{'search':<10}  {'ef':>5}  {'threads':>7}  {'recall@k':>9}  {'QPS':>9}  {'p50 ms':>8}  {'p95 ms':>8}  {'p99 ms':>8}")
    rows = []
    for ef in [int(x) for x in args.ef.split(",")]:
        for threads in [int(x) for x in args.threads.split(",")]:
            f = search_cell(index, queries, truth, args.k, ef, threads, args.min_searches)
            rows.append({"ef": ef, "threads": threads, **f})
            print(f"{'hnswlib':<10}  {ef:>5}  {threads:>7}  {f['recall']:>9.3f}  {f['qps']:>9.0f}  "
                  f"{f['p50_ms']:>8.3f}  {f['p95_ms']:>8.3f}  {f['p99_ms']:>8.3f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"dataset": label, "build_vectors_per_s": build_rate, "searches": rows}, f, indent=2)


if __name__ == "__main__":
    main()
