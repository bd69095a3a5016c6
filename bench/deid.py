"""De-identification and quality-gate throughput, plus recall/precision per entity type.

ours: `deidentify_table` (every pattern runs once over the whole batch; presidio only
for texts with findings) and `quality_gate` (polars expressions).
baseline: the same recognizers and operators applied the naive way, sample by sample,
pattern by pattern, presidio called on every field; and a per-sample Python loop for
the same quality gates. Both de-id paths must produce identical text (checked).

    python bench/deid.py --data ../shared/data --n 20000
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)  # the repository first: tools/ (the labeled set's builder) is not installed

import argparse  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
import unicodedata  # noqa: E402

from presidio_anonymizer.entities import RecognizerResult  # noqa: E402

from curation.deid import DeidConfig, Deidentifier, deidentify_table  # noqa: E402
from curation.deid.recognizers import resolve  # noqa: E402
from curation.quality import QualityConfig, quality_gate  # noqa: E402
from medaug.schema import rows_to_table, sample_id  # noqa: E402
from tools.deid_labeled import (  # noqa: E402
    build_labeled_set,
    clean_lines,
    evaluate,
    format_scores,
    real_sentences,
)


def make_table(data: Path, n: int, seed: int, pii_share: float):
    """Samples whose instruction carries inserted PII (pii_share of them) and whose output is a real sentence."""
    labeled = build_labeled_set(data, n, seed, clean_share=1.0 - pii_share)
    answers = real_sentences(data, n, seed + 1)
    rng = random.Random(seed)
    rows = []
    for i, item in enumerate(labeled):
        out = answers[i % len(answers)] if answers else "建议到医院进一步检查。"
        rows.append(
            {
                "id": sample_id(item.text, "", out) + f"{i:06d}",
                "instruction": item.text,
                "input": "",
                "output": out,
                "task": "medical_qa",
                "label": "positive",
                "area": "general",
                "icd10": [rng.choice(["I10", "E11.9", "J45.0"])],
            }
        )
    return rows_to_table(rows), labeled


def baseline_deid(table, deid: Deidentifier, fields: tuple[str, ...]) -> dict[str, list[str | None]]:
    """Per sample, per field, per pattern; presidio on every field."""
    out: dict[str, list[str | None]] = {f: [] for f in fields}
    cols = {f: table.column(f).to_pylist() for f in fields}
    ids = table.column("id").to_pylist()
    for row, sid in enumerate(ids):
        for f in fields:
            text = cols[f][row]
            if text is None:
                out[f].append(None)
                continue
            spans = resolve(deid.recognizers.spans_in(text))
            results = [RecognizerResult(e, s, t, 1.0) for e, s, t in spans]
            if any(e == "DATE" for e, _, _ in spans):
                out[f].append(deid.anonymize(text, spans, sid))
            else:
                out[f].append(deid.engine.anonymize(text, results, deid._operators).text)
    return out


def baseline_quality(table, cfg: QualityConfig) -> int:
    """The same gates as a per-sample Python loop (no ICD list); returns the number rejected."""
    phrases = cfg.phrases()
    han, letter = re.compile(r"[\u4e00-\u9fff]"), re.compile(r"[^\W\d_]")
    rejected = 0
    for r in table.select(["instruction", "input", "output", "label"]).to_pylist():
        norm = {
            k: "".join(unicodedata.normalize("NFKC", r[k] or "").split())
            for k in ("instruction", "input", "output")
        }
        bad = not norm["output"] or norm["output"] in (norm["instruction"], norm["input"])
        for f, (lo, hi) in cfg.lengths.items():
            n = len((r[f] or "").strip())
            bad |= n < lo or n > hi
        for f in cfg.chinese_ratio_fields:
            letters = len(letter.findall(r[f] or ""))
            bad |= letters > 0 and len(han.findall(r[f] or "")) < letters * cfg.min_chinese_ratio
        bad |= r["label"] == "positive" and any(p in norm["output"] for p in phrases)
        rejected += bad
    return rejected


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=20000, help="samples to push through both paths")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--pii-share", type=float, default=0.8, help="share of samples given inserted PII")
    ap.add_argument("--eval-n", type=int, default=3000, help="labeled texts for recall/precision")
    ap.add_argument("--clean-n", type=int, default=5000, help="real lines per source with no inserted PII")
    args = ap.parse_args()

    table, labeled = make_table(args.data, args.n, args.seed, args.pii_share)
    n = table.num_rows
    cfg = DeidConfig()
    deid = Deidentifier(cfg)
    print(f"{n} samples ({sum(bool(x.spans) for x in labeled)} with inserted PII)")

    deidentify_table(table.slice(0, 100), cfg)  # warm the compiled patterns and presidio
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    ours = deidentify_table(table, cfg)
    ours_s, ours_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    base = baseline_deid(table, deid, cfg.fields)
    base_s, base_cpu = time.perf_counter() - t0, time.process_time() - c0
    for f in cfg.fields:
        assert ours.kept.column(f).to_pylist() == base[f], f"ours and baseline differ on {f}"
    ours_rate, base_rate = n / ours_s, n / base_s
    # One process on one core: samples per CPU-second is the per-core rate; wall time on a shared
    # machine also counts the time other processes held the core (load printed alongside).
    ours_core, base_core = n / ours_cpu, n / base_cpu
    print(
        f"deid  ours {ours_rate:,.0f} samples/s   baseline {base_rate:,.0f} samples/s   ratio {ours_rate / base_rate:.2f}"
        f"   (wall clock, load average {load:.1f} on {os.cpu_count()} cores)"
    )
    print(
        f"deid  ours {ours_core:,.0f} samples/CPU-s   baseline {base_core:,.0f} samples/CPU-s   "
        f"ratio {ours_core / base_core:.2f}   (per core)"
    )

    qcfg = QualityConfig()
    t0, c0 = time.perf_counter(), time.process_time()
    q = quality_gate(ours.kept, qcfg)
    q_s, q_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    q_base_rejected = baseline_quality(ours.kept, qcfg)
    qb_s, qb_cpu = time.perf_counter() - t0, time.process_time() - c0
    q_rate, qb_rate = n / q_s, n / qb_s
    print(
        f"quality ours {q_rate:,.0f} samples/s   baseline {qb_rate:,.0f} samples/s   ratio {q_rate / qb_rate:.2f}"
        f"   (wall clock; per CPU-s: ours {n / q_cpu:,.0f}, baseline {n / qb_cpu:,.0f}; polars may use both cores)"
    )
    print(
        f"quality rejected: ours {q.rejected.num_rows} (by reason {dict(q.stats.rejects)}), baseline {q_base_rejected}"
    )

    gold = build_labeled_set(args.data, args.eval_n, args.seed + 100)
    scores = evaluate(deid.recognizers.detect_many([x.text for x in gold]), gold)
    print(format_scores(scores))
    present = {e: s for e, s in scores.items() if s.tp + s.fn}
    items = sum(s.tp + s.fn for s in present.values())
    leaked = sum(s.fn for s in present.values())
    hard = {e: present[e].fn for e in ("ID_CARD", "PHONE", "EMAIL") if e in present}
    print(
        f"leaked {leaked} of {items} inserted items ({100 * leaked / items:.2f} %); hard identifiers leaked {hard}"
    )

    # Real lines with no inserted personal data: how many does de-identification alter?
    clean = clean_lines(args.data, args.clean_n, args.seed)
    altered: dict[str, float] = {}
    for name, lines in clean.items():
        found = deid.recognizers.detect_many(lines)
        altered[name] = 100 * sum(bool(f) for f in found) / max(1, len(lines))
        print(f"clean lines {name}: {len(lines)} lines, {altered[name]:.2f} % altered")
    all_lines = sum(len(v) for v in clean.values())
    altered_all = sum(altered[k] * len(v) for k, v in clean.items()) / max(1, all_lines)
    per_entity = " ".join(
        f"recall_{e}={s.recall:.3f} precision_{e}={s.precision:.3f}" for e, s in present.items()
    )
    print(
        f"RESULT pii_share={args.pii_share} ours_per_core_s={ours_core:.0f} baseline_per_core_s={base_core:.0f} "
        f"core_ratio={ours_core / base_core:.2f} ours_per_s={ours_rate:.0f} baseline_per_s={base_rate:.0f} "
        f"ratio={ours_rate / base_rate:.2f} load={load:.1f} "
        f"quality_per_s={q_rate:.0f} quality_baseline_per_s={qb_rate:.0f} quality_ratio={q_rate / qb_rate:.2f} "
        f"min_recall={min(s.recall for s in present.values()):.3f} "
        f"min_precision={min(s.precision for s in present.values()):.3f} leaked_pct={100 * leaked / items:.2f} "
        f"leaked_hard={sum(hard.values())} clean_altered_pct={altered_all:.2f} "
        + " ".join(f"clean_altered_{k}={v:.2f}" for k, v in altered.items())
        + f" {per_entity}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
