"""Print a physician-audit sample of rule negatives and refusals made from real data (see
../shared/AUDIT.md): negatives from medicalgpt_sft_sample (all 1000) and toyhom_dialogue rows 3000+ (rows
before 3000 were used to tune the rules), 40 picked at random with every error type present, and 20
refusals; then the per-type counts, patterns and drop reasons, and the negative report the job summary prints
(SHORTFALL and PATTERN SHARE lines).

    python scripts/audit_negatives.py --seed 11 [--exclude seen.txt] [--data ../shared/data]
        [--toyhom 0:3000 --no-medicalgpt]

--exclude: a file of question prefixes (one a line) already audited, to draw a fresh sample; --write-seen
appends this sample's prefixes to such a file.
The data are read at run time and never copied into the repository.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections import Counter
from pathlib import Path

from augmenters.negatives import negative_report, negative_rows, negative_summary
from augmenters.refusals import make_refusals
from medaug.schema import ErrorType, Sample, samples_to_table


def medicalgpt(data: Path):
    path = data / "medicalgpt_sft_sample" / "medical_sft_1K_format.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        turns = json.loads(line)["conversations"]
        q = next(t["value"] for t in turns if t["from"] == "human")
        a = next(t["value"] for t in turns if t["from"] == "gpt")
        if q.strip() and a.strip():
            yield Sample(instruction=q, output=a, provenance={"source": "medicalgpt"})


def toyhom(data: Path, rows: str = "3000:"):
    path = data / "toyhom_dialogue" / "样例_内科5000-6000.utf8.csv"
    start, _, end = rows.partition(":")
    with path.open(encoding="utf-8") as f:
        for x in list(csv.DictReader(f))[int(start or 0) : int(end) if end else None]:
            if x["ask"].strip() and x["answer"].strip():
                yield Sample(
                    instruction=x["ask"], output=x["answer"], provenance={"source": f"toyhom[{rows}]"}
                )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--exclude", type=Path)
    ap.add_argument("--negatives", type=int, default=40)
    ap.add_argument("--refusals", type=int, default=20)
    ap.add_argument("--toyhom", default="3000:", help="toyhom row range START:END (default 3000:, held out)")
    ap.add_argument("--no-medicalgpt", action="store_true")
    ap.add_argument("--write-seen", type=Path, help="append the sampled questions' prefixes (for --exclude)")
    args = ap.parse_args()
    ratios = {et: 1 / 6 for et in ErrorType if et != ErrorType.other}
    stats: Counter[str] = Counter()
    rows = []
    sources = [("toyhom", lambda d: toyhom(d, args.toyhom))]
    if not args.no_medicalgpt:
        sources.insert(0, ("medicalgpt", medicalgpt))
    for name, gen in sources:
        got = samples_to_table(list(gen(args.data))).to_pylist()
        print(f"{name}: {len(got)} rows")
        rows += got
    # one call over both sources, so the type and pattern shares hold for the whole set
    pool = negative_rows(rows, ratios, seed=args.seed, stats=stats)
    print(f"{len(rows)} rows -> {len(pool)} negatives {dict(Counter(r['error_type'] for r in pool))}")
    if args.exclude:
        seen = [x for x in args.exclude.read_text(encoding="utf-8").splitlines() if len(x.strip()) > 8]
        pool = [
            r for r in pool if not any(r["instruction"].replace("\n", " ").startswith(x[:30]) for x in seen)
        ]
    rng = random.Random(args.seed + 2026)
    by_type: dict[str, list] = {}
    for r in pool:
        by_type.setdefault(r["error_type"], []).append(r)
    pick = [r for rs in by_type.values() for r in rng.sample(rs, min(len(rs), 3))]
    rest = [r for r in pool if r not in pick]
    pick += rng.sample(rest, max(0, min(len(rest), args.negatives - len(pick))))
    rng.shuffle(pick)
    if args.write_seen:
        with args.write_seen.open("a", encoding="utf-8") as f:
            f.writelines(r["instruction"].replace("\n", " ")[:60] + "\n" for r in pick)
    for i, r in enumerate(pick, 1):
        d = json.loads(r["provenance"]["augmentation"][-1]["detail"])
        print(f"=== N{i} {r['error_type']} [{d['pattern']}] src={r['provenance']['source']}")
        print("Q:", r["instruction"][:260].replace("\n", " "))
        print("REF:", r["reference_output"][:400].replace("\n", " "))
        print("CHANGE:", repr(d["change"]["before"])[:120], "->", repr(d["change"]["after"])[:120])
        at = max(0, d["change"]["start"] - 60)
        print(
            "OUT:",
            ("…" if at else "") + r["output"][at : at + 160 + len(d["change"]["after"])].replace("\n", " "),
        )
        print("WHY:", d["reason"])
    refusals = make_refusals(20 * args.refusals, seed=args.seed)
    rng.shuffle(refusals)
    for i, s in enumerate(refusals[: args.refusals], 1):
        d = json.loads(s.provenance.augmentation[0].detail)
        print(f"=== R{i} {d['category']}\nQ: {s.input}\nA: {s.output}")
    for et, v in negative_summary(stats).items():
        drops = dict(sorted(v.get("dropped", {}).items(), key=lambda kv: -kv[1]))
        print(f"{et}: target {v.get('target')} made {v.get('made', 0)} kept {v.get('kept', 0)} "
              f"patterns {len(v.get('patterns', {}))} max_share {v['max_pattern_share']} dropped {drops}")  # fmt: skip
    print("\n".join(negative_report(stats, ratios)))  # what the job summary prints: SHORTFALL, PATTERN SHARE


if __name__ == "__main__":
    main()
