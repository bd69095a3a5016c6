"""Prompt-plan benchmark: throughput of planning with the novelty check against plain expansion, and
how many prompts survive the project's own dedup (threshold 0.85 over the prompt texts).

In one run:
  plain     generators.expand.plan with quotas.novelty.enabled = false (every draw kept)
  novelty   the default: a draw that is a near-duplicate of one already planned is drawn again
            (generators/novelty.py, the dedup stage's normaliser, MinHash band keys and rapidfuzz)
  keep      curation.dedup.dedup_table over the planned prompt texts (question-only samples):
            the share kept is what a GPU run would not throw away for sameness
Both with the shipped defaults (108 diseases, 53 templates), and with a synthetic user table of
`--user-diseases` diseases built at run time from the ICD-10 category list and symptom lists
under --data (in memory only; nothing derived from the data is written). The synthetic table's
clinical content is random (a symptom list per ICD title), so it measures variety, not medicine.

The normaliser's one-time table build (curation/dedup/normalize.py, ~10 s) is done before timing.

  python bench/prompt_plan.py                       # 100 k plan, 20 k keep with defaults, 100 k user table
  python bench/prompt_plan.py --n 20000 --user-n 0  # quicker
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)  # bench/ holds scripts named like stdlib modules: the repo first

import argparse  # noqa: E402
import csv  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402

from curation.dedup.normalize import compare_text  # noqa: E402
from generators.diversity import near_duplicate_rate  # noqa: E402
from generators.expand import Quotas, plan  # noqa: E402
from generators.knowledge import Disease, load_comorbidities, load_knowledge  # noqa: E402
from generators.templates import load_templates  # noqa: E402
from medaug.schema import Area  # noqa: E402

CHAPTER_AREA = {"I": Area.cardiovascular, "C": Area.oncology, "E": Area.endocrine, "G": Area.neurology,
                "O": Area.obgyn, "P": Area.pediatrics}  # fmt: skip
LABS = ["白细胞 3.0~18.0 ×10^9/L", "C反应蛋白 5~120 mg/L", "血红蛋白 70~160 g/L", "血肌酐 50~300 μmol/L",
        "丙氨酸转氨酶 10~300 U/L", "空腹血糖 3.5~20.0 mmol/L", "血钾 2.8~6.0 mmol/L", "血小板 20~450 ×10^9/L"]  # fmt: skip


def user_table(data: Path, n: int, seed: int = 3) -> list[Disease]:
    """n diseases from the ICD-10 category titles, symptoms/findings drawn from the symptom lists."""
    rng = random.Random(seed)
    rows = (data / "icd10_cn" / "disease.csv").read_text(encoding="utf-8").splitlines()[1:]
    cats = [c for c in (r.split("\t") for r in rows) if len(c) == 2 and c[0].isalnum()]
    symptoms = sorted(
        {
            s.strip()
            for s in (data / "dxy_symptom_norm" / "all_norm_symptoms.txt")
            .read_text(encoding="utf-8")
            .splitlines()
            if s.strip()
        }
    )
    with open(data / "chpo" / "chpo_dict.csv", encoding="utf-8", newline="") as fh:
        terms = sorted(
            {
                r["chinese_term"].strip()
                for r in csv.DictReader(fh)
                if 2 <= len(r["chinese_term"].strip()) <= 12
            }
        )
    drugs = sorted({x for d in load_knowledge() for x in d.drugs})
    areas = [a for a in Area if a != Area.general]
    rng.shuffle(cats)
    out = []
    for i, (code, name) in enumerate(cats[:n]):
        area = CHAPTER_AREA.get(code[0], areas[i % len(areas)])
        sex = "female" if area == Area.obgyn else None
        age = (0, 14) if area == Area.pediatrics else (18, 45) if area == Area.obgyn else (18, 90)
        out.append(Disease(
            id=f"u-{code}", area=area, name=name, icd10=[code], sex=sex, age=age,
            symptoms_clinical=rng.sample(terms, 5), symptoms_colloquial=rng.sample(symptoms, 5),
            findings=[f"查体示{t}" for t in rng.sample(terms, 3)], labs=rng.sample(LABS, 3), drugs=rng.sample(drugs, 3),
        ))  # fmt: skip
    return out


def timed_plan(n: int, diseases: list[Disease], novelty: bool, seed: int = 7):
    t0 = time.perf_counter()
    rows, rep = plan(
        load_templates(), diseases, load_comorbidities(), Quotas(total=n, novelty={"enabled": novelty}), seed
    )
    return rows, rep, time.perf_counter() - t0


def keep(rows, cap: int) -> float:
    r = near_duplicate_rate([p.user for p in rows], cap=cap)
    return r["kept"] / r["checked"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="prompts planned for the throughput figures")
    ap.add_argument(
        "--keep-n", type=int, default=20_000, help="prompts planned with the defaults for the keep rate"
    )
    ap.add_argument(
        "--user-n", type=int, default=100_000, help="prompts planned with the synthetic user table (0: skip)"
    )
    ap.add_argument("--user-diseases", type=int, default=600)
    ap.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("MEDAUG_SHARED_DATA", REPO.parent / "shared" / "data")),
    )
    args = ap.parse_args()

    t0 = time.perf_counter()
    compare_text("预热", "", "")
    print(f"normaliser table build (one-time): {time.perf_counter() - t0:.1f} s")
    defaults = load_knowledge()

    _, _, t_plain = timed_plan(args.n, defaults, novelty=False)
    rows, rep, t_nov = timed_plan(args.n, defaults, novelty=True)
    plain_ps, nov_ps = args.n / t_plain, args.n / t_nov
    print(f"plan {args.n} prompts, shipped defaults: plain {t_plain:.1f} s ({plain_ps:,.0f}/s), "
          f"novelty {t_nov:.1f} s ({nov_ps:,.0f}/s); novelty planned {rep.planned}, redrew {rep.redrawn}, "
          f"skipped {rep.skipped} in {len(rep.out_of_variety)} cells")  # fmt: skip

    k_rows_plain, _, _ = timed_plan(args.keep_n, defaults, novelty=False)
    k_rows_nov, k_rep, _ = timed_plan(args.keep_n, defaults, novelty=True)
    t = time.perf_counter()
    keep_plain = keep(k_rows_plain, args.keep_n)
    keep_nov = keep(k_rows_nov, args.keep_n)
    keep_nov_of_requested = keep_nov * k_rep.planned / args.keep_n
    print(f"dedup over {args.keep_n} prompts (defaults): plain keeps {keep_plain:.1%}, novelty keeps {keep_nov:.1%} "
          f"of {k_rep.planned} planned = {keep_nov_of_requested:.1%} of those requested  ({time.perf_counter() - t:.0f} s)")  # fmt: skip

    result = {
        "n": args.n, "plain_per_s": round(plain_ps), "novelty_per_s": round(nov_ps),
        "novelty_cost": round(t_nov / t_plain, 2), "keep_defaults_plain": round(keep_plain, 3),
        "keep_defaults_novelty": round(keep_nov, 3), "keep_defaults_novelty_of_requested": round(keep_nov_of_requested, 3),
        "skipped_defaults": k_rep.skipped,
    }  # fmt: skip
    if args.user_n:
        table = user_table(args.data, args.user_diseases)
        u_plain, _, _ = timed_plan(args.user_n, table, novelty=False)
        u_rows, u_rep, t_u = timed_plan(args.user_n, table, novelty=True)
        t = time.perf_counter()
        ku_plain, ku = keep(u_plain, args.user_n), keep(u_rows, args.user_n)
        print(f"user table {len(table)} diseases, {args.user_n} prompts: plain keeps {ku_plain:.1%}, novelty "
              f"({t_u:.0f} s plan) keeps {ku:.1%} of {u_rep.planned} planned ({time.perf_counter() - t:.0f} s dedup)")  # fmt: skip
        result |= {"user_diseases": len(table), "user_n": args.user_n, "keep_user_plain": round(ku_plain, 3),
                   "keep_user_novelty": round(ku, 3), "user_planned": u_rep.planned}  # fmt: skip
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
