"""Lexicon paraphrasing benchmark: speed against a naive per-term replace loop, and IMCS-21 coverage.

Speed: real patient questions and doctor answers (the Toyhom sample under --data, read at run time,
nothing written) are rewritten colloquial → clinical with the core lexicon by
  ours   augmenters.paraphrase.normalize_line: one Aho-Corasick pass, longest match, every match through
         the guards (negation, laterality, numbers/doses/durations, drugs, ICD codes)
  naive  for each lexicon key, longest first: `if key in text: text = text.replace(key, target)`
         (no guards, so it does less work per match than ours)
on the same texts in the same run. Then the whole rule pipeline (augmenters.pipeline.augment_table:
2 lexicon paraphrases + rule negatives at the default ratios) on --size samples.

Coverage: the share of IMCS-21 dev pairs (imcs21_symptom_norm/imcs_dev.csv) that `medaug lexicon
normalize` maps exactly to the standard term with the shipped core lexicon alone, and with the IMCS-21
train pairs (imcs_train.csv) loaded as an external lexicon.

Run: python bench/paraphrase.py [--data ../shared/data] [--size 100000]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)  # bench/ has scripts named like stdlib modules; import the repo instead

import argparse  # noqa: E402
import csv  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402


def load_texts(data: Path) -> list[tuple[str, str]]:
    path = data / "toyhom_dialogue" / "样例_内科5000-6000.utf8.csv"
    with path.open(encoding="utf-8", newline="") as f:
        return [
            (r["title"] + "。" + r["ask"], r["answer"]) for r in csv.DictReader(f) if r["ask"] and r["answer"]
        ]


def naive_normalize(text: str, pairs: list[tuple[str, str]]) -> str:
    for key, target in pairs:
        if key in text:
            text = text.replace(key, target)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--size", type=int, default=100_000, help="samples for the pipeline run")
    ap.add_argument("--texts", type=int, default=20_000, help="texts for the ours-vs-naive timing")
    args = ap.parse_args()

    from augmenters.coverage import pair_coverage
    from augmenters.lexicon import MIN_MATCH_LEN, load_lexicon
    from augmenters.paraphrase import normalize_line
    from augmenters.pipeline import AugmentConfig, augment_table
    from medaug.schema import Area, Sample, samples_to_table

    qa = load_texts(args.data)
    texts = [t for pair in qa for t in pair]
    texts = (texts * (args.texts // len(texts) + 1))[: args.texts]
    lexicon = load_lexicon()
    pairs = sorted(
        ((k, v[0]) for k, v in lexicon.to_clinical.items() if len(k) >= MIN_MATCH_LEN),
        key=lambda kv: -len(kv[0]),
    )
    chars = sum(map(len, texts))
    print(f"{len(texts)} texts, {chars / len(texts):.0f} chars on average, {len(pairs)} lexicon keys")

    skipped: Counter[str] = Counter()
    t0 = time.perf_counter()
    ours = [normalize_line(t, lexicon, "to_clinical", skipped) for t in texts]
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive = [naive_normalize(t, pairs) for t in texts]
    t_naive = time.perf_counter() - t0
    changed = sum(a != b for a, b in zip(texts, ours, strict=True))
    differ = sum(a != b for a, b in zip(ours, naive, strict=True))
    ours_ps, naive_ps = len(texts) / t_ours, len(texts) / t_naive
    print(f"ours  {ours_ps:10.0f} texts/s  ({changed} texts rewritten; guard skips {dict(skipped)})")
    print(
        f"naive {naive_ps:10.0f} texts/s  ({differ} texts end up different from ours: no guards, no longest match)"
    )
    print(f"ratio {ours_ps / naive_ps:.1f}x")

    areas = list(Area)
    samples = [Sample(instruction=q, output=a, area=areas[i % len(areas)]) for i, (q, a) in enumerate(qa)]
    reps = args.size // len(samples) + 1
    # Distinct ids per copy: derive from the texts with a case number, so every sample is its own parent.
    big = [
        Sample(instruction=f"{s.instruction}（例{r}）", output=s.output, area=s.area)
        for r in range(reps)
        for s in samples
    ][: args.size]
    table = samples_to_table(big)
    t0 = time.perf_counter()
    res = augment_table(table, AugmentConfig(seed=1))
    t_pipe = time.perf_counter() - t0
    pipe_ps = table.num_rows / t_pipe
    extra = res.stats.extra
    negs = sum(v for k, v in extra.items() if k.startswith("negative_") and "not_applicable" not in k)
    print(
        f"augment_table: {table.num_rows} samples in {t_pipe:.1f} s ({pipe_ps:.0f} samples/s, one core), "
        f"{res.kept.num_rows} out: {extra.get('paraphrase_variants', 0)} paraphrases, {negs} negatives"
    )

    imcs = args.data / "imcs21_symptom_norm"
    core = pair_coverage(imcs / "imcs_dev.csv", lexicon)
    with_train = pair_coverage(imcs / "imcs_dev.csv", load_lexicon([imcs / "imcs_train.csv"]))
    print(
        f"IMCS-21 dev coverage: core {core.correct}/{core.pairs} = {core.ratio:.3f}; "
        f"core + IMCS train {with_train.correct}/{with_train.pairs} = {with_train.ratio:.3f}"
    )
    print(
        f"RESULT ours_per_s={ours_ps:.0f} naive_per_s={naive_ps:.0f} ratio={ours_ps / naive_ps:.2f} "
        f"pipeline_samples={table.num_rows} pipeline_s={t_pipe:.1f} pipeline_per_s={pipe_ps:.0f} "
        f"coverage_core={core.ratio:.4f} coverage_with_train={with_train.ratio:.4f}"
    )


if __name__ == "__main__":
    main()
