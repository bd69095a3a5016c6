"""How often the shared negative verifier (augmenters.negative_verify) lets an answer through that is not
actually wrong, on real answers: the kinds of rewrite an LLM asked for a negative writes but that a physician
would accept — a drug swapped for one of the same class, a dose changed by half, a promise under a negation, a
denial of a finding the question never states, a differential the question does not rule out — and how many of
the rule constructors' candidates (those passing their own fact check) it keeps.

    python bench/negative_verifier.py [--data ../shared/data]

Data are read at run time (medicalgpt_sft_sample, toyhom_dialogue rows 3000+) and never copied.
Closing line: RESULT acceptable=N passed=N pass_rate=X rule_negatives=N kept=N
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from audit_negatives import medicalgpt, toyhom  # noqa: E402

from augmenters.derive import rng_for  # noqa: E402
from augmenters.negative_kb import entity_extractor, load_negative_knowledge  # noqa: E402
from augmenters.negative_verify import check_wrong  # noqa: E402
from augmenters.negatives import AUGMENTER, CONSTRUCTORS, Candidate, verify, whole_drug  # noqa: E402
from medaug.schema import ErrorType, samples_to_table  # noqa: E402


def acceptable_rewrites(row, kb):
    """(error type claimed, rewritten answer, what it is) for rewrites that are not wrong for this case."""
    text, ext = row["output"], entity_extractor()
    facts = ext.extract(text)
    out = []
    for f in facts.of_kind("drug"):
        if f.surface in kb.drugs and whole_drug(text, f.span):
            mates = sorted(
                d for d, v in kb.drugs.items() if v.cls == kb.drugs[f.surface].cls and d != f.surface
            )
            if mates and mates[0] not in text:
                out.append((ErrorType.wrong_drug, text.replace(f.surface, mates[0]), "same_class_drug"))
            break
    for n in facts.of_kind("number"):
        if n.unit in ("mg", "g") and re.fullmatch(r"[1-9]\d*", n.value or ""):
            new = str(int(n.value) * 3 // 2) if int(n.value) > 1 else None
            if new and n.surface.startswith(n.value):
                out.append((ErrorType.wrong_dose, text[: n.span[0]] + new + text[n.span[0] + len(n.value) :],
                            "dose_times_1.5"))  # fmt: skip
            break
    m = re.search(r"[，。]", text)
    if m:
        out.append(
            (
                ErrorType.overclaiming,
                text[: m.start()] + "，但不能保证根治" + text[m.start() :],
                "negated_promise",
            )
        )
        out.append((ErrorType.contradicts_findings, text[: m.start() + 1] + "并没有发热，" + text[m.start() + 1 :],
                    "deny_unstated_finding"))  # fmt: skip
    for f in facts.of_kind("disease"):
        d = kb.diseases_by_name.get(kb.disease_surfaces.get(f.surface, ""))
        if d:
            for diff in d.differentials:
                if diff.name not in text and kb.ruled_out_by(d.name, diff.name, row["instruction"]) is None:
                    out.append(
                        (
                            ErrorType.wrong_diagnosis,
                            text.replace(f.surface, diff.name),
                            "unruled_differential",
                        )
                    )
                    break
            break
    fever = ext.extract("发热").terms()
    stated = ext.extract(row["instruction"] + text).terms()
    return [
        (et, w, k) for et, w, k in out if w != text and not (k == "deny_unstated_finding" and fever & stated)
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args()
    kb = load_negative_knowledge()
    rows = []
    for gen in (medicalgpt, toyhom):
        rows += samples_to_table(list(gen(args.data))).to_pylist()
    tried, passed, why = Counter(), Counter(), Counter()
    examples = []
    for row in rows:
        for et, wrong, kind in acceptable_rewrites(row, kb):
            tried[kind] += 1
            proof = check_wrong(row, et, wrong, kb)
            if isinstance(proof, str):
                why[f"{kind}:{proof}"] += 1
            else:
                passed[kind] += 1
                examples.append((kind, row["instruction"][:60], proof.before, proof.after, proof.reason[:80]))
    # the rule constructors' candidates that pass their own fact check: how many the verifier keeps
    rule, kept, dropped = 0, 0, Counter()
    for row in rows:
        for et, make in CONSTRUCTORS.items():
            made = make(row, kb, rng_for(3, row["id"], f"{AUGMENTER}:{et.value}"))
            if (
                isinstance(made, Candidate)
                and made.output != row["output"]
                and verify(et, row["output"], made) is None
            ):
                rule += 1
                proof = check_wrong(row, et, made.output, kb)
                kept += not isinstance(proof, str)
                if isinstance(proof, str):
                    dropped[f"{et.value}:{proof}"] += 1
    print("rule candidates dropped by the verifier:", dict(dropped.most_common()))
    for k in sorted(tried):
        print(f"{k}: {tried[k]} rewrites, verifier passed {passed[k]}")
    for k, n in why.most_common(12):
        print(f"  rejected {k}: {n}")
    for e in examples[:12]:
        print("  PASSED", *e)
    total, ok = sum(tried.values()), sum(passed.values())
    print(
        f"RESULT acceptable={total} passed={ok} pass_rate={ok / max(total, 1):.4f} rule_negatives={rule} kept={kept}"
    )


if __name__ == "__main__":
    main()
