"""Dedup benchmark: quality against exact all-pairs, speed against datasketch and all-pairs, then scale.

At the first size (default 20 k) one run times three ways to find the duplicate clusters
of the same synthetic samples:
  ours        curation.dedup.dedup_table (numpy MinHash/LSH, rapidfuzz verification, union-find)
  datasketch  per-item datasketch MinHash (update_batch) + MinHashLSH + the same verification
  all-pairs   rapidfuzz process.cdist over every pair at the threshold (the ground truth)
recall    = share of all-pairs duplicate pairs (similarity >= threshold) of which at least one
            sample is dropped, i.e. that never reach the review queue together
precision = share of drops whose named kept sample is an all-pairs duplicate of it
(datasketch's verified pairs go through the same keep step, so its figures compare directly)
Then ours alone at the larger sizes, to show how time grows.

Samples are synthetic, built from real sentences (the Toyhom sample under --data): a
question title plus 2-4 answer sentences, with 25% derived from an earlier sample by an
exact copy, a width/punctuation/spacing variant, scattered character edits (up to 12%), or
a sentence added/removed. Nothing derived from the data is written anywhere.

With --baseline-tree DIR (another checkout of the code) and --baseline-sizes, those scale sizes
also run with that code in a fresh process, and the rejected rows of both are compared exactly.

Recorded on the shared 2-core dev machine (threshold 0.85, 24 bands x 3 rows; figures and the baselines
in bench/RESULTS.md):
  python bench/dedup.py --sizes 2000,1000000            (issue 20 item 4, load 15 during the 1 M run)
  questions: recall 0.902, 0 of 3,310 clusters lost, 0 wrong merges (main: 0.893, 0, 0)
  n=2000     ours 1.1 s  recall 0.9936 precision 1.0000 | datasketch 7.3 s (6.4x) | all-pairs 4.2 s
  n=1000000  843.3 s wall at load 15, 218.8 CPU-s with the fact-check processes, peak RSS 3.38 GB
  python bench/dedup.py --sizes 20000,200000,1000000 --baseline-tree /tmp/base --baseline-sizes 200000
  n=20000  ours 2.7 s  recall 0.9933 precision 0.9975 | datasketch 69 s (25.8x) | all-pairs 236 s   (before item 4)
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from curation.dedup import DedupConfig, dedup_table
from curation.dedup.cluster import keep_greedy
from curation.dedup.features import raw_text
from curation.dedup.normalize import compare_text, normalize_for_dedup
from curation.dedup.verify import same_facts

REPO = Path(__file__).resolve().parents[1]

TOYHOM = "toyhom_dialogue/样例_内科5000-6000.utf8.csv"
_SENT = re.compile(r"[^。！？!?]+[。！？!?]?")
_WIDTH = str.maketrans({"，": ",", "。": ".", "？": "?", "：": ":", "（": "(", "）": ")"})


def load_sentences(data: Path) -> tuple[list[str], list[str]]:
    with open(data / TOYHOM, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    titles = sorted({r["title"] for r in rows if r["title"].strip()})
    sents = sorted({s.strip() for r in rows for s in _SENT.findall(r["answer"]) if len(s.strip()) >= 8})
    return titles, sents


def _edit(text: str, rng: random.Random, pool: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, max(1, int(len(chars) * 0.12)))):
        op, pos = rng.random(), rng.randrange(len(chars))
        if op < 0.5:
            chars[pos] = rng.choice(pool)
        elif op < 0.75:
            chars.insert(pos, rng.choice(pool))
        elif len(chars) > 1:
            del chars[pos]
    return "".join(chars)


def derived_copy(q: str, a: str, rng: random.Random, pool: str, sents: list[str]) -> tuple[str, str]:
    """A copy of an earlier row: exact, width-folded, edited, extended or shortened (one rng draw decides)."""
    kind = rng.random()
    if kind < 0.2:
        return q, a
    if kind < 0.4:
        return q.translate(_WIDTH), " ".join(a.translate(_WIDTH).split("."))
    if kind < 0.8:
        return q, _edit(a, rng, pool)
    if kind < 0.9:
        return q, a + rng.choice(sents)
    parts = _SENT.findall(a)
    return q, "".join(parts[:-1]) if len(parts) > 1 else a


def synthesize(n: int, titles: list[str], sents: list[str], seed: int = 7) -> pa.Table:
    rng = random.Random(seed)
    pool = "".join(sorted({c for s in sents[:2000] for c in s}))
    instr: list[str] = []
    outs: list[str] = []
    for i in range(n):
        if i > 100 and rng.random() < 0.25:
            j = rng.randrange(i)
            q, a = instr[j], outs[j]
            q, a = derived_copy(q, a, rng, pool, sents)
        else:
            q = rng.choice(titles)
            a = "".join(rng.sample(sents, rng.randint(2, 4)))
        instr.append(q)
        outs.append(a)
    return pa.table(
        {
            "id": [f"s{i:07d}" for i in range(n)],
            "instruction": instr,
            "input": [""] * n,
            "output": outs,
            "task": ["medical_qa"] * n,
            "label": ["positive"] * n,
            "area": ["general"] * n,
        }
    )


def keeper_of(table: pa.Table, rejected: pa.Table) -> np.ndarray:
    """Row -> row number of the kept sample it duplicates (itself when kept), from the stage's output."""
    row_of = {sid: i for i, sid in enumerate(table.column("id").to_pylist())}
    out = np.arange(table.num_rows)
    for sid, detail in zip(
        rejected.column("id").to_pylist(), rejected.column("detail").to_pylist(), strict=True
    ):
        out[row_of[sid]] = row_of[detail.split()[0]]
    return out


def all_pairs(texts: list[str], threshold: float) -> np.ndarray:
    from rapidfuzz import process
    from rapidfuzz.distance import Levenshtein

    found = []
    block = 2000
    for lo in range(0, len(texts), block):
        sims = process.cdist(
            texts[lo : lo + block],
            texts,
            scorer=Levenshtein.normalized_similarity,
            score_cutoff=threshold,
            workers=-1,
            dtype=np.float32,
        )
        a, b = np.nonzero(sims >= threshold)
        a = a + lo
        keep = a < b
        found.append(np.stack((a[keep], b[keep]), axis=1))
    return np.concatenate(found)


def datasketch_keepers(texts: list[str], raw: list[str], cfg: DedupConfig) -> np.ndarray:
    from datasketch import MinHash, MinHashLSH

    from curation.dedup.verify import same_facts, verify_pairs

    n = cfg.shingle

    lsh = MinHashLSH(threshold=0.3, num_perm=128)
    hashes = []
    for i, t in enumerate(texts):
        m = MinHash(num_perm=128)
        m.update_batch([t[k : k + n].encode() for k in range(max(1, len(t) - n + 1))])
        lsh.insert(i, m)
        hashes.append(m)
    cand = {(min(i, j), max(i, j)) for i, m in enumerate(hashes) for j in lsh.query(m) if i != j}
    pairs = np.asarray(sorted(cand), dtype=np.int64).reshape(-1, 2)
    edges, scores = verify_pairs(pairs, texts, cfg)
    agree = same_facts(edges, raw)
    return keep_greedy(np.arange(len(texts)), edges[agree], scores[agree])[0]


def quality(truth: np.ndarray, keeper: np.ndarray) -> tuple[float, float]:
    """(recall, precision) of a row -> keeper assignment against the all-pairs duplicate pairs."""
    kept = keeper == np.arange(keeper.size)
    recall = float((~(kept[truth[:, 0]] & kept[truth[:, 1]])).mean()) if len(truth) else 1.0
    truth_set = {(int(a), int(b)) for a, b in truth.tolist()}
    dropped = np.flatnonzero(~kept)
    ok = sum((min(i, int(keeper[i])), max(i, int(keeper[i]))) in truth_set for i in dropped.tolist())
    return recall, (ok / dropped.size if dropped.size else 1.0)


CBLUE = "cblue_pairs"
_GREETINGS = [
    "医生您好，",
    "你好，",
    "您好医生，",
    "医生你好 ",
    "请问",
    "你好，请问一下",
    "大夫您好！",
    "医生，你好，",
]
_THANKS = ["谢谢", "，谢谢！", "谢谢医生", "。麻烦了", "，在线等", "?谢谢您了", "，急急急", "！！"]
_FULL = str.maketrans({**{chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}, " ": "\u3000"})


def load_questions(data: Path) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Distinct real questions (KUAKE-QQR and CHIP-STS train) and their labelled pairs (q1, q2, label)."""
    pairs: list[tuple[str, str, str]] = []
    for name, a, b in (
        ("KUAKE-QQR_train.json", "query1", "query2"),
        ("CHIP-STS_train.json", "text1", "text2"),
    ):
        for rec in json.loads((data / CBLUE / name).read_text(encoding="utf-8")):
            tag = f"{name.split('_')[0]}:{rec['label']}"
            pairs.append((rec[a].strip(), rec[b].strip(), tag))
    seen: dict[str, str] = {}
    for q1, q2, _ in pairs:
        for q in (q1, q2):
            if len(q) >= 4:
                seen.setdefault(compare_text(q, "", "", surface=True), q)
    return sorted(seen.values()), pairs


def surface_variant(q: str, rng: random.Random, pool: str) -> str:
    """What users do to one question: greetings, thanks, punctuation, width, spaces, repeats, 1-3 typos."""
    ops = rng.sample(["greet", "thanks", "punct", "width", "space", "repeat", "typo"], rng.randint(1, 3))
    chars = list(q)
    if "typo" in ops:  # at most one typo per 5 characters, 3 at most
        for _ in range(rng.randint(1, max(1, min(3, len(chars) // 5)))):
            pos = rng.randrange(len(chars))
            if chars[pos].isdigit():
                continue  # a changed number is another question, not a typo
            op = rng.random()
            if op < 0.6:
                chars[pos] = rng.choice(pool)
            elif op < 0.8 and len(chars) > 4:
                del chars[pos]
            elif pos + 1 < len(chars):
                chars[pos], chars[pos + 1] = chars[pos + 1], chars[pos]
    if "repeat" in ops:
        pos = rng.randrange(len(chars))
        if not chars[pos].isdigit():
            chars.insert(pos, chars[pos] * rng.randint(1, 2))
    if "space" in ops:
        for _ in range(rng.randint(1, 3)):
            chars.insert(rng.randrange(len(chars) + 1), " " * rng.randint(1, 2))
    if "punct" in ops:
        chars.insert(rng.randrange(len(chars) + 1), rng.choice("，。？！、 ,?"))
    out = "".join(chars)
    if "width" in ops:
        out = out.translate(_FULL) if rng.random() < 0.5 else out.translate(_WIDTH)
    if "greet" in ops:
        out = rng.choice(_GREETINGS) + out
    if "thanks" in ops:
        out = out.rstrip("？?。") + rng.choice(["？", ""]) + rng.choice(_THANKS)
    return out


def distinct(questions: list[str], threshold: float) -> list[str]:
    """Questions no two of which are near each other on the text (similarity below `threshold`,
    more than 2 edits apart), so that each is its own cluster: real question sets hold
    rewordings of one another (糖尿病人能喝牛奶 / 糖尿病人能否喝牛奶) that dedup may rightly merge."""
    from rapidfuzz import process
    from rapidfuzz.distance import Levenshtein

    norm = [compare_text(q, "", "", surface=True) for q in questions]
    sims = process.cdist(norm, norm, scorer=Levenshtein.normalized_similarity, workers=-1, dtype=np.float32)
    dists = process.cdist(norm, norm, scorer=Levenshtein.distance, score_cutoff=2, workers=-1, dtype=np.int32)
    near = (sims >= threshold) | (dists <= 2)
    keep: list[int] = []
    for i in range(len(questions)):
        if not any(near[i, j] for j in keep):
            keep.append(i)
    return [questions[i] for i in keep]


def question_table(bases: list[str], rng: random.Random, pool: str) -> tuple[pa.Table, np.ndarray]:
    """Question-only samples: every base question plus 0-3 surface variants; cluster number per row."""
    texts, cluster = [], []
    for c, q in enumerate(bases):
        texts.append(q)
        cluster.append(c)
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            texts.append(surface_variant(q, rng, pool))
            cluster.append(c)
    order = list(range(len(texts)))
    rng.shuffle(order)
    table = pa.table(
        {
            "id": [f"q{i:07d}" for i in range(len(texts))],
            "instruction": [texts[i] for i in order],
            "input": [""] * len(texts),
            "output": [""] * len(texts),
            "task": ["medical_qa"] * len(texts),
            "label": ["positive"] * len(texts),
            "area": ["general"] * len(texts),
        }
    )
    return table, np.asarray([cluster[i] for i in order])


def cluster_quality(cluster: np.ndarray, keeper: np.ndarray) -> dict[str, float]:
    """recall: share of surface variants dropped as a duplicate of their own question; lost: questions
    none of whose samples is kept; wrong: drops naming a sample of another question."""
    kept = keeper == np.arange(keeper.size)
    first = {}
    for i, c in enumerate(cluster.tolist()):
        first.setdefault(c, i)
    variants = np.asarray([first[c] != i for i, c in enumerate(cluster.tolist())])
    same = cluster[keeper] == cluster
    extra = np.bincount(cluster, minlength=cluster.max() + 1) - 1
    merged_variants = int((~kept & same).sum())
    lost = len(set(cluster.tolist()) - set(cluster[kept].tolist()))
    return {
        "recall": merged_variants / max(1, int(extra.sum())),
        "lost": lost,
        "clusters": int(cluster.max()) + 1,
        "wrong": int((~kept & ~same).sum()),
        "variants": int(variants.sum()),
    }


def pair_merges(pairs: list[tuple[str, str, str]], cfg: DedupConfig) -> dict[str, float]:
    """Share of real labelled question pairs that dedup merges, per dataset:label."""
    out: dict[str, float] = {}
    for tag in sorted({t for _, _, t in pairs}):
        sel = [(a, b) for a, b, t in pairs if t == tag]
        qs = [x for ab in sel for x in ab]
        table = pa.table(
            {
                "id": [f"p{i:07d}" for i in range(len(qs))],
                "instruction": qs,
                "input": [""] * len(qs),
                "output": [""] * len(qs),
                "task": ["medical_qa"] * len(qs),
                "label": ["positive"] * len(qs),
                "area": ["general"] * len(qs),
            }
        )
        # a question recurs across pairs: identical members of a pair merge trivially, count them apart
        res = dedup_table(table, cfg)
        k = keeper_of(table, res.rejected)
        root = k[k]
        out[tag] = float(np.mean([root[2 * i] == root[2 * i + 1] for i in range(len(sel))]))
    return out


def rejected_digest(rejected: pa.Table) -> str:
    """One hash of every rejected row (id, reason, detail), to compare two runs exactly."""
    rows = zip(*(rejected.column(c).to_pylist() for c in ("id", "reason", "detail")), strict=True)
    return hashlib.sha256("\n".join("\t".join(r) for r in rows).encode()).hexdigest()


def scale_run(table: pa.Table, cfg: DedupConfig):
    """dedup_table on `table`: (result, wall s, CPU s of this process and its finished children)."""
    t0, c0 = time.perf_counter(), _cpu()
    res = dedup_table(table, cfg)
    return res, time.perf_counter() - t0, _cpu() - c0


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def baseline_run(tree: Path, size: int, threshold: float) -> dict:
    """The same scale step with another checkout of the code (PYTHONPATH=tree), in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--scale-only",
        str(size),
        "--threshold",
        str(threshold),
    ]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def scale_only(size: int, args: argparse.Namespace) -> None:
    """Child side of baseline_run: one scale step, one JSON line (this file's synthetic data)."""
    titles, sents = load_sentences(args.data)
    table = synthesize(size, titles, sents)
    normalize_for_dedup("", "none")
    res, t, cpu = scale_run(table, DedupConfig(threshold=args.threshold))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"s": t, "cpu": cpu, "peak_gb": peak, "rejected_sha": rejected_digest(res.rejected)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--sizes", default="20000,100000", help="first: full comparison; rest: ours only")
    ap.add_argument("--questions", type=int, default=4000, help="real questions given surface variants")
    ap.add_argument("--threshold", type=float, default=0.85)
    ap.add_argument(
        "--baseline-tree",
        type=Path,
        help="a checkout of the code to compare against at scale (git archive <commit> | tar -x -C DIR)",
    )
    ap.add_argument("--baseline-sizes", default="", help="scale sizes also run with --baseline-tree")
    ap.add_argument("--scale-only", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scale_only:
        scale_only(args.scale_only, args)
        return
    baseline_sizes = {int(x) for x in args.baseline_sizes.split(",") if x}
    sizes = [int(s) for s in args.sizes.split(",")]
    cfg = DedupConfig(threshold=args.threshold)
    before = DedupConfig(threshold=args.threshold, surface=False, typos=0, check_facts=False)
    titles, sents = load_sentences(args.data)
    result: dict[str, str] = {"load": f"{os.getloadavg()[0]:.1f}"}
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (the machine is shared)")

    # 1. real questions with user-style surface variants: ours vs the settings before (text only)
    bases, qpairs = load_questions(args.data)
    rng = random.Random(11)
    pool = "".join(sorted({c for q in bases[:3000] for c in q if "\u4e00" <= c <= "\u9fff"}))
    picked = distinct(rng.sample(bases, min(args.questions, len(bases))), 0.7)
    qtable, cluster = question_table(picked, rng, pool)
    print(
        f"questions: {int(cluster.max()) + 1} real questions (none within similarity 0.7 or 2 edits of another), "
        f"{qtable.num_rows} samples with variants"
    )
    for name, c in (("ours", cfg), ("before", before)):
        t0 = time.perf_counter()
        res = dedup_table(qtable, c)
        t = time.perf_counter() - t0
        q = cluster_quality(cluster, keeper_of(qtable, res.rejected))
        print(
            f"  {name:7s} recall {q['recall']:.3f}  clusters lost {q['lost']} of {q['clusters']}  "
            f"wrong merges {q['wrong']}  facts_differ {res.stats.extra.get('facts_differ', 0)}  {t:.1f} s"
        )
        result.update(
            {
                f"{name}_q_recall": f"{q['recall']:.3f}",
                f"{name}_q_lost": str(q["lost"]),
                f"{name}_q_wrong": str(q["wrong"]),
            }
        )
    result["q_clusters"] = str(int(cluster.max()) + 1)
    merges, merges_before = pair_merges(qpairs, cfg), pair_merges(qpairs, before)
    print("  real labelled pairs merged (KUAKE-QQR 2 = same meaning, 0/1 = different; CHIP-STS 1 = same):")
    for tag, share in merges.items():
        print(f"    {tag:12s} ours {share:.3f}   before {merges_before[tag]:.3f}")
        result[f"merged_{tag.replace(':', '_')}"] = f"{share:.3f}"
        result[f"before_merged_{tag.replace(':', '_')}"] = f"{merges_before[tag]:.3f}"

    # 2. synthetic answers: quality against all-pairs (same text, same facts), speed against datasketch
    n = sizes[0]
    table = synthesize(n, titles, sents)
    t0 = time.perf_counter()
    normalize_for_dedup("", cfg.script)  # builds the per-process translate table once
    print(
        f"normalisation table built once per process in {time.perf_counter() - t0:.1f} s (not in the timings)"
    )
    t0 = time.perf_counter()
    ours = dedup_table(table, cfg)
    t_ours = time.perf_counter() - t0
    cols = [table.column(k).to_pylist() for k in ("instruction", "input", "output")]
    texts = [compare_text(a, b, c, surface=True) for a, b, c in zip(*cols, strict=True)]
    raw = [raw_text(a, b, c) for a, b, c in zip(*cols, strict=True)]
    t0 = time.perf_counter()
    truth = all_pairs(texts, cfg.threshold)
    # the stage's definition: equal normalised texts are duplicates; others also need the same facts
    equal = np.fromiter((texts[a] == texts[b] for a, b in truth.tolist()), dtype=bool, count=len(truth))
    truth = truth[equal | same_facts(truth, raw)]
    t_all = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds_keeper = datasketch_keepers(texts, raw, cfg)
    t_ds = time.perf_counter() - t0

    recall, precision = quality(truth, keeper_of(table, ours.rejected))
    ds_recall, ds_precision = quality(truth, ds_keeper)
    print(
        f"n={n}: {len(truth)} duplicate pairs by all-pairs at threshold {cfg.threshold} with the same facts"
    )
    print(
        f"  ours        {t_ours:7.1f} s  recall {recall:.4f}  precision {precision:.4f}  dropped {ours.rejected.num_rows}"
    )
    print(
        f"  datasketch  {t_ds:7.1f} s  recall {ds_recall:.4f}  precision {ds_precision:.4f}  ratio {t_ds / t_ours:.1f}x"
    )
    print(f"  all-pairs   {t_all:7.1f} s  (ground truth)                      ratio {t_all / t_ours:.1f}x")
    result.update(
        n=str(n),
        recall=f"{recall:.4f}",
        precision=f"{precision:.4f}",
        ours_s=f"{t_ours:.2f}",
        datasketch_s=f"{t_ds:.2f}",
        allpairs_s=f"{t_all:.2f}",
        speedup_vs_datasketch=f"{t_ds / t_ours:.1f}",
        speedup_vs_allpairs=f"{t_all / t_ours:.1f}",
        datasketch_recall=f"{ds_recall:.4f}",
    )

    # 3. scale: ours alone, with every check on; peak memory of this process so far
    for size in sizes[1:]:
        t0 = time.perf_counter()
        big = synthesize(size, titles, sents)
        t_gen = time.perf_counter() - t0
        res, t, cpu = scale_run(big, cfg)
        del big
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        print(
            f"  ours n={size}: {t:.1f} s wall, {cpu:.1f} s CPU with the fact-check processes "
            f"({size / t:,.0f} samples/s; synth {t_gen:.0f} s) "
            f"kept {res.kept.num_rows} rejects {dict(res.stats.rejects)} candidates {res.stats.extra['candidates']} "
            f"verified {res.stats.extra['verified']} facts_checked {res.stats.extra.get('facts_checked', '-')} "
            f"facts_differ {res.stats.extra['facts_differ']} "
            f"peak RSS {peak:.2f} GB (largest child {child:.2f} GB), load {os.getloadavg()[0]:.1f}"
        )
        result[f"ours_s_{size}"] = f"{t:.1f}"
        result[f"ours_cpu_s_{size}"] = f"{cpu:.1f}"
        result[f"peak_gb_{size}"] = f"{peak:.2f}"
        if args.baseline_tree and size in baseline_sizes:
            base = baseline_run(args.baseline_tree, size, args.threshold)
            same = base["rejected_sha"] == rejected_digest(res.rejected)
            print(
                f"  baseline {args.baseline_tree} n={size}: {base['s']:.1f} s wall, {base['cpu']:.1f} s CPU, "
                f"peak RSS {base['peak_gb']:.2f} GB; ours/baseline wall {t / base['s']:.2f}, "
                f"CPU {cpu / base['cpu']:.2f}; identical rejected rows: {same}"
            )
            result[f"baseline_s_{size}"] = f"{base['s']:.1f}"
            result[f"baseline_cpu_s_{size}"] = f"{base['cpu']:.1f}"
            result[f"baseline_peak_gb_{size}"] = f"{base['peak_gb']:.2f}"
            result[f"speedup_vs_baseline_{size}"] = f"{base['s'] / t:.2f}"
            result[f"same_as_baseline_{size}"] = str(same)
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
