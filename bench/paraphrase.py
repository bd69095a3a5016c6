"""Lexicon paraphrasing benchmark: samples/s per core with the clinical-fact check on, against the naive
per-term replace loop, in the same run on the same texts.

Texts: real patient questions and doctor answers (the Toyhom sample under --data, read at run time,
nothing written); each text is one sample.
  ours   augmenters.paraphrase: word-aware matching (jieba boundaries), exact mappings only, the guards,
         then medaug.facts.FactExtractor.changes(original, rewrite) on every rewrite (a rewrite whose
         facts differ is rejected); both directions, one variant per text
  ours_nocheck  the same rewrite without the fact check (what the check costs)
  naive  for each lexicon key, longest first: `if key in text: text = text.replace(key, target)` (no word
         boundaries, no guards, no check: the loop the issue measured at 35.8 k texts/s)
Start-up (jieba dictionary, automata) is timed apart. One process = one core; the augment job scales out
by running the augmenter stages per batch in Ray tasks (jobs/augment.py), so the cluster rate is this × cores.
Then the whole rule pipeline (augmenters.pipeline.augment_table: 2 paraphrases + rule negatives) on
--size samples, and the rejections per reason it produced.

Run: python bench/paraphrase.py [--data ../shared/data] [--texts 20000] [--size 5000]
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
    ap.add_argument("--texts", type=int, default=20_000, help="texts for the ours-vs-naive timing")
    ap.add_argument("--size", type=int, default=5_000, help="samples for the pipeline run")
    args = ap.parse_args()

    from augmenters.paraphrase import apply, fact_extractor, find_matches
    from augmenters.pipeline import AugmentConfig, augment_table
    from medaug.lexicon import MIN_MATCH_LEN, load_lexicon
    from medaug.schema import Area, Sample, samples_to_table

    qa = load_texts(args.data)
    texts = [t for pair in qa for t in pair][: args.texts]
    t0 = time.perf_counter()
    lexicon = load_lexicon()
    extractor = fact_extractor(lexicon)
    for d in ("to_clinical", "to_colloquial"):
        lexicon.automaton(d)
    t_start = time.perf_counter() - t0
    pairs = sorted(
        ((k, v[0]) for k, v in lexicon.to_clinical.items() if len(k) >= MIN_MATCH_LEN),
        key=lambda kv: -len(kv[0]),
    )
    chars = sum(map(len, texts))
    print(f"{len(texts)} texts, {chars / len(texts):.0f} chars on average; start-up {t_start:.1f} s")

    cpu: dict[str, float] = {}  # samples per CPU-second: what one core does, whatever else the machine runs

    def ours(check: bool) -> tuple[float, Counter[str]]:
        counts: Counter[str] = Counter()
        c0 = time.process_time()
        t0 = time.perf_counter()
        for i, text in enumerate(texts):
            direction = "to_clinical" if i % 2 == 0 else "to_colloquial"
            matches = find_matches(text, lexicon, direction, counts)
            if not matches:
                continue
            rewrite = apply(text, matches, [m.candidates[0] for m in matches])
            counts["rewritten"] += 1
            if check:
                changes = extractor.changes(text, rewrite)
                if changes:
                    counts[f"rejected_{changes[0].code}"] += 1
        cpu["ours" if check else "ours_nocheck"] = len(texts) / (time.process_time() - c0)
        return len(texts) / (time.perf_counter() - t0), counts

    # The clause caches would make a second pass over the same texts free: measure each on fresh caches.
    nocheck_ps, _ = ours(False)
    extractor._clause.cache_clear()
    ours_ps, counts = ours(True)
    c0 = time.process_time()
    t0 = time.perf_counter()
    naive = [naive_normalize(t, pairs) for t in texts]
    naive_ps = len(texts) / (time.perf_counter() - t0)
    cpu["naive"] = len(texts) / (time.process_time() - c0)
    rejected = {k: v for k, v in counts.items() if k.startswith("rejected_")}
    skipped = {k: v for k, v in counts.items() if not k.startswith(("rejected_", "rewritten"))}
    print(f"ours          {ours_ps:9.0f} samples/s  fact check on: {counts['rewritten']} rewritten, "
          f"{sum(rejected.values())} rejected {rejected}; guard/word skips {skipped}")  # fmt: skip
    print(f"ours_nocheck  {nocheck_ps:9.0f} samples/s  (the check costs {nocheck_ps / ours_ps:.1f}x)")
    changed = sum(a != b for a, b in zip(texts, naive, strict=True))
    print(f"naive         {naive_ps:9.0f} samples/s  ({changed} texts changed, no boundaries/guards/check)")
    print(
        f"ratio ours/naive {ours_ps / naive_ps:.2f}; per CPU-second: "
        + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items())
    )

    areas = list(Area)
    samples = [Sample(instruction=q, output=a, area=areas[i % len(areas)]) for i, (q, a) in enumerate(qa)]
    reps = args.size // len(samples) + 1
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
    print(
        f"augment_table: {table.num_rows} samples in {t_pipe:.1f} s ({pipe_ps:.0f} samples/s, one core), "
        f"{extra.get('paraphrase_variants', 0)} paraphrases kept, rejections {dict(res.stats.rejects)}"
    )
    print(
        f"RESULT ours_per_s={ours_ps:.0f} ours_nocheck_per_s={nocheck_ps:.0f} naive_per_s={naive_ps:.0f} "
        f"ratio={ours_ps / naive_ps:.3f} rewritten={counts['rewritten']} rejected={sum(rejected.values())} "
        f"pipeline_per_s={pipe_ps:.0f} startup_s={t_start:.1f} ours_cpu_per_s={cpu['ours']:.0f} "
        f"naive_cpu_per_s={cpu['naive']:.0f}"
    )


if __name__ == "__main__":
    main()
