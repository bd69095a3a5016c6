"""Prompt-plan benchmark: throughput of planning with the novelty check against plain expansion, and
how many prompts survive the project's own dedup (threshold 0.85 over the prompt texts).

In one run:
  plain     generators.expand.plan with quotas.novelty.enabled = false (every draw kept)
  novelty   the default: a draw that is a near-duplicate of one already planned is drawn again
            (generators/novelty.py, the dedup stage's normaliser, MinHash band keys and rapidfuzz)
  keep      curation.dedup.dedup_table over the planned prompt texts (question-only samples):
            the share kept is what a GPU run would not throw away for sameness
Both with the shipped defaults (108 diseases, 53 templates), and with a user table of `--user-diseases`
diseases made at run time from the ICD-10 category titles and the symptom lists under --data
(MEDAUG_SHARED_DATA): written as a CSV into a temporary folder (deleted after the run, never in the
project) and brought in the user's way, `medaug knowledge import`. Its clinical content is random (a
symptom list per ICD title), so it measures variety, not medicine.
  index     a second run with the same config against a prompt index holding the first run's plan
            (quotas.novelty.index in a generate job): its speed, and what dedup keeps over both runs
Quota misses (shares more than 5 points off target, with the disease limits that caused them) are printed.

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
import tempfile  # noqa: E402
import time  # noqa: E402

import pyarrow as pa  # noqa: E402

from curation.dedup import DedupIndex  # noqa: E402
from curation.dedup.normalize import compare_text  # noqa: E402
from generators.diversity import near_duplicate_rate  # noqa: E402
from generators.expand import AGE_BANDS, Quotas, _band, _fits, novelty_text, plan  # noqa: E402
from generators.knowledge import Disease, load_comorbidities, load_knowledge  # noqa: E402
from generators.templates import load_templates  # noqa: E402
from medaug.schema import Area  # noqa: E402

CHAPTER_AREA = {"I": Area.cardiovascular, "C": Area.oncology, "E": Area.endocrine, "G": Area.neurology,
                "O": Area.obgyn, "P": Area.pediatrics}  # fmt: skip
LABS = ["白细胞 3.0~18.0 ×10^9/L", "C反应蛋白 5~120 mg/L", "血红蛋白 70~160 g/L", "血肌酐 50~300 μmol/L",
        "丙氨酸转氨酶 10~300 U/L", "空腹血糖 3.5~20.0 mmol/L", "血钾 2.8~6.0 mmol/L", "血小板 20~450 ×10^9/L"]  # fmt: skip


def user_table_csv(data: Path, n: int, out: Path, seed: int = 3) -> Path:
    """A user's CSV table of n diseases: ICD-10 category titles, symptoms/findings drawn from the symptom
    lists (written to a temporary folder, outside the project, and deleted after the run)."""
    rng = random.Random(seed)
    rows = (data / "icd10_cn" / "disease.csv").read_text(encoding="utf-8").splitlines()[1:]
    cats = [c for c in (r.split("\t") for r in rows) if len(c) == 2 and c[0].isalnum()]
    ok = lambda t: 2 <= len(t) <= 12 and not set(t) & set('|,"')  # noqa: E731  (one CSV cell, one list item)
    symptoms = sorted(
        {
            s.strip()
            for s in (data / "dxy_symptom_norm" / "all_norm_symptoms.txt")
            .read_text(encoding="utf-8")
            .splitlines()
            if ok(s.strip())
        }
    )
    with open(data / "chpo" / "chpo_dict.csv", encoding="utf-8", newline="") as fh:
        terms = sorted(
            {r["chinese_term"].strip() for r in csv.DictReader(fh) if ok(r["chinese_term"].strip())}
        )
    drugs = sorted({x for d in load_knowledge() for x in d.drugs})
    areas = [a for a in Area if a != Area.general]
    rng.shuffle(cats)
    path = out / "user-diseases.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "area", "name", "icd10", "symptoms_clinical", "symptoms_colloquial", "findings", "labs",
                    "drugs", "sex", "age"])  # fmt: skip
        seen: set[str] = set()
        for i, (code, name) in enumerate(cats):
            if len(seen) == n:
                break
            if name in seen:
                continue
            seen.add(name)
            area = CHAPTER_AREA.get(code[0], areas[i % len(areas)])
            sex = "female" if area == Area.obgyn else ""
            # a third of the adult areas' diseases occur at any age (as many do), so those areas allow every patient
            adult = "0-95" if rng.random() < 1 / 3 else "18-90"
            age = "0-14" if area == Area.pediatrics else "14-55" if area == Area.obgyn else adult
            w.writerow([f"u-{code}", area.value, name, code, "|".join(rng.sample(terms, 5)),
                        "|".join(rng.sample(symptoms, 5)), "|".join(f"查体示{t}" for t in rng.sample(terms, 3)),
                        "|".join(rng.sample(LABS, 3)), "|".join(rng.sample(drugs, 3)), sex, age])  # fmt: skip
    return path


def import_table(src: Path, out: Path) -> Path:
    """`medaug knowledge import SRC OUT`: the user's path into a generate run (checked, then written as YAML)."""
    from typer.testing import CliRunner

    from medaug.cli import app

    res = CliRunner().invoke(app, ["knowledge", "import", str(src), str(out)])
    if res.exit_code != 0:
        raise SystemExit(f"knowledge import failed:\n{res.output}")
    print(res.output.strip().replace(str(out.parent), "<tmp>"))
    return out


def prompt_table(rows) -> pa.Table:
    """Prompts as question-only samples, as jobs/generate.py records a plan in the prompt index."""
    n = len(rows)
    return pa.table({"id": [r.prompt_id for r in rows], "instruction": [novelty_text(r) for r in rows],
                     "input": [""] * n, "output": [""] * n, "label": ["positive"] * n,
                     "task": [r.task.value for r in rows], "area": [r.area.value for r in rows]})  # fmt: skip


def quota_check(rows, diseases: list[Disease], rep) -> tuple[float, int, str]:
    """Largest sex or age-band share deviation from target in the areas whose diseases allow every planned
    patient (each age band x sex pair fits some disease of the area), how many such areas, and the
    areas where the diseases do not allow it (their misses are reported with the reason)."""
    q = Quotas(total=1)
    pairs = [(b, s) for b in q.age_bands for s in q.sex]
    free, forced = [], []
    for area in sorted({r.area for r in rows}, key=lambda a: a.value):
        ds = [d for d in diseases if d.area == area]
        fits = lambda b, s, ds=ds: any(all(_fits(d, s, *AGE_BANDS[b])) for d in ds)  # noqa: E731
        (free if all(fits(b, s) for b, s in pairs) else forced).append(area)
    worst = 0.0
    for area in free:
        rs = [r for r in rows if r.area == area]
        for s in q.sex:
            worst = max(worst, abs(sum(r.sex == s for r in rs) / len(rs) - 1 / len(q.sex)))
        for b in q.age_bands:
            share = sum(_band(r.age) == b for r in rs) / len(rs)
            worst = max(worst, abs(share - 1 / len(q.age_bands)))
    reported = {m["area"] for m in rep.quota_misses if m["reason"]}
    assert all(a.value in reported for a in forced if any(m["area"] == a.value for m in rep.quota_misses))
    return worst, len(free), ", ".join(a.value for a in forced)


def quota_line(rows, diseases, rep) -> tuple[str, dict]:
    worst, n_free, forced = quota_check(rows, diseases, rep)
    misses = [m for m in rep.quota_misses if m["area"] != "all"]
    in_free = [m for m in misses if m["area"] not in forced.split(", ")]
    text = (f"  quotas: in the {n_free} areas whose diseases allow every patient the largest sex/age-band "
            f"deviation is {worst:.1%}; misses reported with a reason: {len(misses)} in the areas the diseases "
            f"limit ({forced or 'none'}), {len(in_free)} elsewhere")  # fmt: skip
    return text, {"quota_max_dev_free": round(worst, 3), "quota_misses_forced": len(misses) - len(in_free),
                  "quota_misses_free": len(in_free)}  # fmt: skip


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
        "--index-runs", type=int, default=1, help="second runs planned against a prompt index (0: skip)"
    )
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
    k_rows_nov, k_rep, t_k_nov = timed_plan(args.keep_n, defaults, novelty=True)
    t = time.perf_counter()
    keep_plain = keep(k_rows_plain, args.keep_n)
    keep_nov = keep(k_rows_nov, args.keep_n)
    keep_nov_of_requested = keep_nov * k_rep.planned / args.keep_n
    print(f"dedup over {args.keep_n} prompts (defaults): plain keeps {keep_plain:.1%}, novelty keeps {keep_nov:.1%} "
          f"of {k_rep.planned} planned = {keep_nov_of_requested:.1%} of those requested  ({time.perf_counter() - t:.0f} s)")  # fmt: skip
    q_text, q_res = quota_line(k_rows_nov, defaults, k_rep)
    print(q_text)

    result = {
        "n": args.n, "plain_per_s": round(plain_ps), "novelty_per_s": round(nov_ps),
        "novelty_cost": round(t_nov / t_plain, 2), "keep_defaults_plain": round(keep_plain, 3),
        "keep_defaults_novelty": round(keep_nov, 3), "keep_defaults_novelty_of_requested": round(keep_nov_of_requested, 3),
        "skipped_defaults": k_rep.skipped,
    }  # fmt: skip
    result |= {f"{k}_defaults": v for k, v in q_res.items()}
    if args.index_runs:
        # what the generate job does with quotas.novelty.index: the first run's plan is recorded in a prompt
        # index; a second run with the same config (same seed: the same first draws) plans away from it
        with tempfile.TemporaryDirectory() as tmp:
            index = DedupIndex(Path(tmp) / "prompt-index")
            t = time.perf_counter()
            index.add(prompt_table(k_rows_nov), origin="plan:first")
            t_add = time.perf_counter() - t
            t = time.perf_counter()
            second, s_rep = plan(load_templates(), defaults, load_comorbidities(), Quotas(total=args.keep_n), 7,
                                 index=DedupIndex(index.path))  # fmt: skip
            t_second = time.perf_counter() - t
        both = keep(k_rows_nov + second, 2 * args.keep_n)
        print(f"second run of {args.keep_n} against a prompt index of the first's {len(k_rows_nov)}: index add "
              f"{t_add:.0f} s, plan {t_second:.0f} s ({args.keep_n / t_second:,.0f}/s, {t_second / t_k_nov:.2f}x "
              f"the novelty plan without index); {s_rep.index_hits} index entries pulled, {s_rep.planned} planned; "
              f"dedup over both runs keeps {both:.1%}")  # fmt: skip
        result |= {"index_plan_cost": round(t_second / t_k_nov, 2), "index_plan_per_s": round(args.keep_n / t_second), "keep_two_runs_with_index": round(both, 3),
                   "second_run_planned": s_rep.planned}  # fmt: skip
    if args.user_n:
        with tempfile.TemporaryDirectory() as tmp:
            src = user_table_csv(args.data, args.user_diseases, Path(tmp))
            table = load_knowledge(import_table(src, Path(tmp) / "kb.yaml"))
        u_plain, _, _ = timed_plan(args.user_n, table, novelty=False)
        u_rows, u_rep, t_u = timed_plan(args.user_n, table, novelty=True)
        t = time.perf_counter()
        ku_plain, ku = keep(u_plain, args.user_n), keep(u_rows, args.user_n)
        ku_req = ku * u_rep.planned / args.user_n
        print(f"user table {len(table)} diseases, {args.user_n} prompts: plain keeps {ku_plain:.1%}, novelty "
              f"({t_u:.0f} s plan) keeps {ku:.1%} of {u_rep.planned} planned = {ku_req:.1%} of those requested "
              f"({time.perf_counter() - t:.0f} s dedup)")  # fmt: skip
        q_text, q_res = quota_line(u_rows, table, u_rep)
        print(q_text)
        result |= {"user_diseases": len(table), "user_n": args.user_n, "keep_user_plain": round(ku_plain, 3),
                   "keep_user_novelty": round(ku, 3), "keep_user_novelty_of_requested": round(ku_req, 3),
                   "user_planned": u_rep.planned} | {f"{k}_user": v for k, v in q_res.items()}  # fmt: skip
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
