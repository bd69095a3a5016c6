"""The augment job without an LLM stage: N input samples through augment → de-id → quality → dedup → queue push.

    python bench/pipeline.py                 # 100 k input samples (the issue's goal: ≤ 5 minutes on 2 cores)
    python bench/pipeline.py --n 20000       # quick

Input: synthetic SFT samples built at run time from real Chinese medical questions and answers in
../shared/data (Toyhom QA rows, CHIP-STS and KUAKE-QQR questions), paired so that every sample is
distinct. Ours: the real job (`jobs.augment.run_augment`: local Ray, Ray Data map_batches, SQLite
queue, persistent dedup index). Baseline: the same stage functions called one after another in one
process, no Ray. Prints time per stage for both and ends with one RESULT line.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build_inputs(data: Path, n: int, out: Path, seed: int = 0) -> Path:
    questions: list[str] = []
    answers: list[str] = []
    with open(data / "toyhom_dialogue" / "样例_内科5000-6000.utf8.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["ask"].strip() and row["answer"].strip():
                questions.append(row["ask"].strip()[:300])
                answers.append(row["answer"].strip()[:600])
    for rec in json.loads((data / "cblue_pairs" / "CHIP-STS_train.json").read_text(encoding="utf-8")):
        questions += [rec["text1"], rec["text2"]]
    for rec in json.loads((data / "cblue_pairs" / "KUAKE-QQR_train.json").read_text(encoding="utf-8")):
        questions += [rec["query1"], rec["query2"]]
    questions = sorted(set(questions))
    rng = random.Random(seed)
    areas = ["cardiovascular", "oncology", "endocrine", "neurology", "obgyn", "pediatrics", "general"]
    seen: set[tuple[int, int, int]] = set()
    with open(out, "w", encoding="utf-8") as fh:
        while len(seen) < n:
            # Two answers per output: enough distinct outputs that no pair of samples is a near-duplicate by construction.
            qi, ai, aj = (
                rng.randrange(len(questions)),
                rng.randrange(len(answers)),
                rng.randrange(len(answers)),
            )
            if (qi, ai, aj) in seen or ai == aj:
                continue
            seen.add((qi, ai, aj))
            output = answers[ai] + "\n" + answers[aj]
            fh.write(json.dumps({"instruction": questions[qi], "input": "", "output": output,
                                 "task": "medical_qa", "area": rng.choice(areas)}, ensure_ascii=False) + "\n")  # fmt: skip
    return out


def baseline(path: Path, work: Path, cfg) -> dict[str, float]:
    """The same stages, one after another, in this process."""
    from augmenters.pipeline import augment_table
    from curation.dedup.index import DedupIndex
    from curation.dedup.stage import dedup_table
    from curation.deid.stage import deidentify_table
    from curation.quality import quality_gate
    from medaug.io import read_samples
    from medaug.schema import samples_to_table
    from review_queue.store import QueueStore

    t: dict[str, float] = {}
    t0 = time.perf_counter()
    table = samples_to_table(read_samples(path).samples)
    t["read"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    aug = augment_table(table, cfg.augment).kept
    t["augment"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    clean = deidentify_table(aug, cfg.curate.deid).kept
    t["deid"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    gated = quality_gate(clean, cfg.curate.quality).kept
    t["quality"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = DedupIndex(work / "baseline-index", cfg.curate.dedup)
    kept = dedup_table(gated, cfg.curate.dedup, index).kept
    t["dedup"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    store = QueueStore.open(f"sqlite:///{work / 'baseline-queue.db'}")
    store.push(kept, run_id="baseline")
    store.close()
    index.add(kept, origin="queue")
    t["queue_push"] = time.perf_counter() - t0
    t["rows_pushed"] = kept.num_rows
    return t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    ap.add_argument("--variants", type=int, default=1)
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()

    from jobs.augment import AugmentJobConfig, run_augment
    from medaug.ray_env import init_ray

    work = Path(tempfile.mkdtemp(prefix="medaug-bench-pipeline-"))
    path = build_inputs(args.data, args.n, work / "input.jsonl")
    cfg = AugmentJobConfig.model_validate(
        {
            "run": {"output_dir": str(work / "runs"), "run_id": "bench", "seed": 1},
            "inputs": [str(path)],
            "augment": {"variants": args.variants, "seed": 1},
            "curate": {
                "dedup_index": str(work / "index"),
                "queue": {"url": f"sqlite:///{work / 'queue.db'}"},
            },
        }
    )
    init_ray(num_cpus=2)
    t0 = time.perf_counter()
    manifest = run_augment(cfg, log=lambda m: print(m, flush=True))
    ours_total = time.perf_counter() - t0
    ours = {s["name"]: s["seconds"] for s in manifest["stages"] if s["name"] != "total"}
    pushed = next(s["rows_out"] for s in manifest["stages"] if s["name"] == "queue_push")
    print(
        f"ours: {args.n} inputs, {pushed} pushed, {ours_total:.1f}s total — "
        + ", ".join(f"{k} {v:.1f}s" for k, v in ours.items())
    )
    if args.skip_baseline:
        print(f"RESULT n={args.n} ours_s={ours_total:.1f} pushed={pushed}")
        return 0
    t0 = time.perf_counter()
    base = baseline(path, work, cfg)
    base_total = time.perf_counter() - t0
    print(
        f"baseline (one process, no Ray): {base_total:.1f}s — "
        + ", ".join(f"{k} {v:.1f}" for k, v in base.items())
    )
    print(f"ratio baseline/ours = {base_total / ours_total:.2f}")
    print(
        f"RESULT n={args.n} ours_s={ours_total:.1f} baseline_s={base_total:.1f} ratio={base_total / ours_total:.2f} "
        f"pushed={pushed} baseline_pushed={int(base['rows_pushed'])} per_s={args.n / ours_total:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
