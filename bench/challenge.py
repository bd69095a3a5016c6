"""Challenge set for lexicon paraphrases: real patient and doctor turns with traps and clear conversions.

The labels (bench/data/paraphrase_challenge.tsv, written by the team by reading every mention in context)
point into the IMCS-V2/MedDG dialogue turns of promptcblue_toy (read at run time from --data; nothing of
the data is stored here but sample ids, offsets and the lexicon wording at that offset):
  C            a clear conversion: one of the lexicon's exact targets is right at this mention
  P:<trap>     the wording must stay: polysemy (有痰, 吐奶, 打嗝, 过敏), boundary (最高烧到, 夜尿多, 咳吐了,
               上感冒药), compound (感冒灵, 防腹泻奶粉, 过敏原), specificity (尿量多 is not polyuria,
               喝水多 in a baby is no polydipsia), repetition (腹泻拉肚子)
Besides the labelled traps, every negation cue, side word, severity/frequency word and number of every
turn is a protected span too (counted apart). A protected span is altered when a rewrite would touch it;
a conversion is made when a rewrite of exactly that mention offers an expected target.

  ours   augmenters.paraphrase.find_matches (word-aware, exact-only, guards; turns of a doctor are never
         made colloquial), per labelled direction
  naive  every lexicon wording, longest first, replaced by its first target (the plain replace loop)

Goals (issue 12): protected spans altered <= 2 %, clear conversions made >= 60 %.
Run: python bench/challenge.py [--data ../shared/data] [--show]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
from collections import Counter  # noqa: E402

LABELS = REPO / "bench" / "data" / "paraphrase_challenge.tsv"


def load_turns(data: Path) -> dict[tuple[str, int], tuple[str, str]]:
    """(sample_id, line) → (speaker, text without the speaker prefix)."""
    out = {}
    for split in ("train", "dev", "test"):
        for line in (data / "promptcblue_toy" / f"{split}.json").read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            for i, turn in enumerate(r["input"].split("\n")):
                if turn.startswith(("患者：", "医生：")):
                    out[(r["sample_id"], i)] = (turn[:2], turn[3:])
    return out


def load_labels() -> list[dict[str, str]]:
    lines = [x for x in LABELS.read_text(encoding="utf-8").splitlines() if x and not x.startswith("#")]
    head = lines[0].split("\t")
    return [dict(zip(head, x.split("\t"), strict=True)) for x in lines[1:]]


def protected_words() -> re.Pattern[str]:
    from medaug.facts import FREQUENCY, LATERALITY, NEGATION_CUES, SEVERITY

    words = sorted({*NEGATION_CUES, *LATERALITY, *SEVERITY, *FREQUENCY}, key=len, reverse=True)
    return re.compile(r"\d+(?:\.\d+)?|" + "|".join(map(re.escape, words)))


def naive_matches(text: str, lexicon, direction: str) -> list[tuple[int, int, str, tuple[str, ...]]]:
    auto = lexicon.automaton(direction)
    hits = sorted(
        (
            (end - len(k) + 1, end + 1, k, tuple(c.target for c in cs))
            for end, (k, cs) in auto.iter(text)
            if cs
        ),
        key=lambda h: (-(h[1] - h[0]), h[0]),
    )
    taken: list[tuple[int, int, str, tuple[str, ...]]] = []
    for h in hits:
        if all(h[1] <= t[0] or h[0] >= t[1] for t in taken):
            taken.append(h)
    return [(s, e, k, c[:1]) for s, e, k, c in taken]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--show", action="store_true", help="print every failure")
    args = ap.parse_args()

    from augmenters.paraphrase import find_matches
    from medaug.lexicon import load_lexicon

    lexicon = load_lexicon()
    turns = load_turns(args.data)
    labels = load_labels()
    guard = protected_words()

    def ours(text: str, speaker: str, direction: str):
        ms = find_matches(text, lexicon, direction, Counter(), colloquial_ok=speaker != "医生")
        return [(m.start, m.end, m.key, m.candidates) for m in ms]

    systems = {"ours": ours, "naive": lambda text, speaker, d: naive_matches(text, lexicon, d)}
    result: dict[str, Counter[str]] = {k: Counter() for k in systems}
    failures: dict[str, list[str]] = {k: [] for k in systems}
    seen_turns: set[tuple[str, str, str]] = set()
    for lab in labels:
        speaker, text = turns[(lab["sample_id"], int(lab["line"]))]
        start, wording, d = int(lab["start"]), lab["wording"], lab["direction"]
        assert text[start : start + len(wording)] == wording, (lab, text)
        end = start + len(wording)
        expected = {c.target for c in lexicon.candidates(d).get(wording, ()) if c.relation == "exact"}
        for name, fn in systems.items():
            ms = fn(text, speaker, d)
            res = result[name]
            where = f"{text[max(0, start - 10) : start]}【{wording}】{text[end : end + 8]}"
            if lab["label"] == "C":
                res["convert_total"] += 1
                made = any(s == start and e == end and expected & set(c) for s, e, _, c in ms)
                res["convert_made"] += made
                if not made:
                    failures[name].append(f"missed  {where}")
            else:
                kind = lab["label"].split(":", 1)[1]
                res["trap_total"] += 1
                res[f"trap_total_{kind}"] += 1
                # A boundary trap is about cutting: a longer wording rewritten as a whole (夜尿多 around 尿多)
                # does not cut it.
                hit = next(
                    (m for m in ms if m[0] < end and start < m[1]
                     and not (kind == "boundary" and m[0] <= start and end <= m[1] and m[1] - m[0] > end - start)),
                    None,
                )  # fmt: skip
                if hit is not None:
                    res["trap_altered"] += 1
                    res[f"trap_altered_{kind}"] += 1
                    failures[name].append(f"altered {lab['label']:<14} {where} → {hit[3][0]}")
            # Negation, side, severity/frequency words and numbers of the turn, once per turn and direction.
            key = (name, text, d)
            if key in seen_turns:
                continue
            seen_turns.add(key)
            for g in guard.finditer(text):
                res["guard_total"] += 1
                # A word inside a rewritten wording (消化不良, 全身无力) is part of that word, not cut.
                if any(
                    s < g.end() and g.start() < e and not (s <= g.start() and g.end() <= e)
                    for s, e, _, _ in ms
                ):
                    res["guard_altered"] += 1
                    failures[name].append(f"altered guard {g.group()} in {text[:40]}")

    def rates(r: Counter[str]) -> tuple[float, float, float]:
        protected = (r["trap_altered"] + r["guard_altered"]) / max(1, r["trap_total"] + r["guard_total"])
        return (
            protected,
            r["trap_altered"] / max(1, r["trap_total"]),
            r["convert_made"] / max(1, r["convert_total"]),
        )

    for name, r in result.items():
        protected, traps, conv = rates(r)
        kinds = {k.removeprefix("trap_altered_"): v for k, v in r.items() if k.startswith("trap_altered_")}
        print(
            f"{name:6} protected spans altered {protected:6.1%} ({r['trap_altered']}/{r['trap_total']} labelled "
            f"traps {kinds}, {r['guard_altered']}/{r['guard_total']} negation/side/severity/number words); "
            f"clear conversions made {conv:6.1%} ({r['convert_made']}/{r['convert_total']})"
        )
        if args.show:
            for f in failures[name]:
                print("   ", f)
    p, t, c = rates(result["ours"])
    np_, nt, nc = rates(result["naive"])
    print(
        f"RESULT protected_altered={p:.4f} traps_altered={t:.4f} conversions_made={c:.4f} "
        f"naive_protected_altered={np_:.4f} naive_conversions_made={nc:.4f} "
        f"traps={result['ours']['trap_total']} conversions={result['ours']['convert_total']} "
        f"guards={result['ours']['guard_total']}"
    )


if __name__ == "__main__":
    main()
