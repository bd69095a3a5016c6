"""Draw the physician-style audit sample of lexicon paraphrases (see ../shared/AUDIT.md and the audit in
docs/lexicon.md): real samples the rules were not written or tuned on — the MedicalGPT SFT sample
(medicalgpt_sft_sample/medical_sft_1K_format.jsonl, patient question + doctor answer) and IMCS-21 dev
utterances of patients and doctors (imcs21_utterances/dac_dev.txt) — are paraphrased with the shipped
core lexicon through augmenters.pipeline.augment_table's paraphraser (fact check on), and N random kept
variants per direction are printed with every substitution in context, for a reader to judge. Fixed
seeds: the same command gives the same sample. Nothing is written into the repository.

--source fresh draws from toyhom rows (--rows, 5000: by default) instead (patient questions and doctor answers no rule was tuned
on; the round-8 audit of docs/lexicon.md).

Run: python bench/audit_paraphrase.py [--data ../shared/data] [--n 60] [--seed 12] [--source fresh] > /tmp/audit.txt
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
from collections import Counter  # noqa: E402


def load_fresh(data: Path, rows: str = "5000:"):
    """Toyhom rows (patient title + question, doctor answer), 5000+ by default: never read while the
    paraphrase rules of rounds 1-7 were written or tuned (those drew from the sets of load_samples)."""
    import csv

    from medaug.schema import Sample

    path = data / "toyhom_dialogue" / "样例_内科5000-6000.utf8.csv"
    with path.open(encoding="utf-8", newline="") as f:
        a, b = (int(x) if x else None for x in rows.split(":"))
        picked = list(csv.DictReader(f))[a:b]
    return [
        Sample(instruction=(r["title"] + "。" + r["ask"])[:2000], output=r["answer"][:4000])
        for r in picked
        if r["ask"].strip() and r["answer"].strip()
    ]


def load_samples(data: Path, seed: int):
    from medaug.schema import Sample

    out = []
    with (data / "medicalgpt_sft_sample" / "medical_sft_1K_format.jsonl").open(encoding="utf-8") as f:
        for line in f:
            conv = json.loads(line)["conversations"]
            q = next((c["value"] for c in conv if c["from"] == "human"), "")
            a = next((c["value"] for c in conv if c["from"] == "gpt"), "")
            if q.strip() and a.strip():
                out.append(Sample(instruction=q[:2000], output=a[:4000]))
    lines = (data / "imcs21_utterances" / "dac_dev.txt").read_text(encoding="utf-8").splitlines()
    rng = random.Random(seed)
    for line in rng.sample(lines, 3000):
        text = line.rsplit("\t", 1)[0].split("：", 1)[-1].strip()
        if len(text) >= 4:
            out.append(Sample(instruction=text, output="（待医生回复）"))
    return out


def context(text: str, start: int, length: int, width: int = 14) -> str:
    return f"…{text[max(0, start - width) : start]}【{text[start : start + length]}】{text[start + length : start + length + width]}…"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--source", choices=("tuned", "fresh"), default="tuned",
                    help="tuned: the MedicalGPT + IMCS-21 dev sets of rounds 1-7; fresh: toyhom rows 5000+")  # fmt: skip
    ap.add_argument("--rows", default="5000:", help="toyhom row range for --source fresh (start:end)")
    args = ap.parse_args()

    from augmenters.paraphrase import paraphrase_rows
    from medaug.lexicon import load_lexicon
    from medaug.schema import samples_to_table

    samples = (
        load_fresh(args.data, args.rows) if args.source == "fresh" else load_samples(args.data, args.seed)
    )
    rows = samples_to_table(samples).to_pylist()
    lexicon = load_lexicon()
    for direction in ("to_clinical", "to_colloquial"):
        stats: Counter[str] = Counter()
        rejects: list = []
        out = paraphrase_rows(rows, lexicon, variants=1, seed=args.seed, direction=direction, stats=stats,
                              rejects=rejects)  # fmt: skip
        parents = {r["id"]: r for r in rows}
        pick = random.Random(args.seed).sample(out, min(args.n, len(out)))
        print(
            f"=== {direction}: {len(rows)} samples → {len(out)} kept, {len(rejects)} rejected; {dict(stats)}"
        )
        for i, child in enumerate(pick, 1):
            parent = parents[child["provenance"]["parent_id"]]
            detail = json.loads(child["provenance"]["augmentation"][-1]["detail"])
            print(f"--- {direction} #{i}")
            for s in detail["substitutions"]:
                print(f"  {s['from']} → {s['to']}{' (' + s['relation'] + ')' if s.get('relation') else ''}: "
                      f"{context(parent[s['field']], s['start'], len(s['from']))}")  # fmt: skip


if __name__ == "__main__":
    main()
