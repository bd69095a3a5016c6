"""Normalisation benchmark: `medaug lexicon normalize` accuracy on IMCS-21 dev (colloquial mention →
IMCS-21 standard symptom), with the shipped core lexicon alone and with the IMCS-21 train pairs loaded,
against the exact lookup of the same pairs (the baseline the issue measured: 0.08 / 0.37 on test).

Files are read at run time from --data (imcs21_symptom_norm/imcs_train.csv, imcs_dev.csv); dev is never
loaded into a lexicon. A mention the normaliser leaves alone counts as right only if it already is the
standard term.

Run: python bench/normalize.py [--data ../shared/data]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

import argparse  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args()

    from augmenters.normalize import Normaliser, accuracy
    from medaug.lexicon import load_lexicon, read_pairs

    imcs = args.data / "imcs21_symptom_norm"
    train, dev = imcs / "imcs_train.csv", read_pairs(imcs / "imcs_dev.csv")
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for m, s in read_pairs(train):
        table[m][s] += 1
    lookup = sum(m in table and table[m].most_common(1)[0][0] == s for m, s in dev) / len(dev)
    out = {}
    for name, paths in (("core", []), ("with_train", [train])):
        t0 = time.perf_counter()
        norm = Normaliser(load_lexicon(paths))
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        acc = accuracy(norm, dev)
        per_s = len(dev) / (time.perf_counter() - t0)
        out[name] = acc["accuracy"]
        how = {k[2:]: v for k, v in acc.items() if k.startswith("n_")}
        print(
            f"{name:10s} accuracy {acc['accuracy']:.4f} on {len(dev)} dev pairs ({how}); built in {built:.1f} s, {per_s:.0f} mentions/s"
        )
    print(f"baseline: exact lookup of the train pairs {lookup:.4f}")
    print(
        f"RESULT accuracy_core={out['core']:.4f} accuracy_with_train={out['with_train']:.4f} "
        f"exact_lookup_baseline={lookup:.4f} ratio_with_train={out['with_train'] / lookup:.2f}"
    )


if __name__ == "__main__":
    main()
