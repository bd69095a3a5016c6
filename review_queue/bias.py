"""The bias report of a release: demographic balance against the configured quotas, stereotyped generalisations.

The seed asks that sex, region, ethnicity and occupation never change the advice (避免偏见与刻板印象).
Two things a release can show without a model: whether the released rows follow the quotas the
generation was configured with (sex × age band × area; review may reject one group more often), and
whether any text states a stereotyped generalisation about a group (team-written rules,
data/stereotypes.yaml). The counterfactual check needs generation and lives in generators/counterfactual.py.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml
from pydantic import ValidationError

from generators.expand import AGE_BANDS, Quotas, expand
from generators.knowledge import load_comorbidities, load_knowledge
from generators.templates import load_templates

DEFAULT_STEREOTYPES = Path(__file__).parent / "data" / "stereotypes.yaml"
PLAN_CAP = 5_000  # prompts expanded to estimate a run's planned shares (the shares, not the count, matter)
TEXT_FIELDS = ("instruction", "input", "output", "reference_output")
EXAMPLES = 5  # per category
CONTEXT = 16  # characters shown either side of a hit

Cell = tuple[str, str, str]  # sex, age band, area


class BiasConfigError(ValueError):
    """A quotas source or a stereotype list that cannot be used (names the file and what is wrong)."""


def band_of(age: int | None) -> str:
    """The generator's age band (generators.expand.AGE_BANDS); ages past the last band count in it."""
    if age is None:
        return "unknown"
    for name, (lo, hi) in AGE_BANDS.items():
        if lo <= age <= hi:
            return name
    return next(reversed(AGE_BANDS))


# ---------------------------------------------------------------- quotas


@dataclass(frozen=True)
class QuotaSource:
    """The quotas of one generate run (or config), with what its expansion needs."""

    name: str
    quotas: Quotas
    seed: int = 0
    templates: str | None = None
    knowledge: str | None = None


def _resolve(path: str | None, base: Path) -> str | None:
    if path is None or Path(path).is_absolute() or Path(path).exists():
        return path
    return str(base / path) if (base / path).exists() else path


def quota_source(path: str | Path) -> QuotaSource:
    """From a generate job config (YAML) or a generate run's manifest.json (its `config`)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise BiasConfigError(f"{path}: cannot read quotas: {e}") from e
    cfg = data.get("config", data) if isinstance(data, dict) else None
    if not isinstance(cfg, dict) or "quotas" not in cfg:
        raise BiasConfigError(f"{path}: no `quotas` (expected a generate job config or run manifest)")
    try:
        quotas = Quotas.model_validate(cfg["quotas"])
    except ValidationError as e:
        err = e.errors()[0]
        raise BiasConfigError(f"{path}: quotas.{'.'.join(map(str, err['loc']))}: {err['msg']}") from e
    run = cfg.get("run") or {}
    return QuotaSource(
        str(path),
        quotas,
        int(run.get("seed", 0) or 0),
        _resolve(cfg.get("templates"), path.parent),
        _resolve(cfg.get("knowledge"), path.parent),
    )


def run_sources(runs_dir: str | Path, run_ids: set[str]) -> list[QuotaSource]:
    """The quotas of every generate run among `run_ids` whose manifest is under `runs_dir`."""
    out = []
    for rid in sorted(run_ids):
        manifest = Path(runs_dir) / rid / "manifest.json"
        if manifest.is_file() and _job_of(manifest) == "generate":
            out.append(quota_source(manifest))
    return out


def _job_of(manifest: Path) -> str | None:
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BiasConfigError(f"{manifest}: cannot read run manifest: {e}") from e
    return data.get("job") if isinstance(data, dict) else None


def counterfactual_summaries(runs_dir: str | Path, run_ids: set[str]) -> list[dict[str, Any]]:
    """The counterfactual sex-swap summaries generation runs wrote (generators/counterfactual.py)."""
    out = []
    for rid in sorted(run_ids):
        path = Path(runs_dir) / rid / "bias" / "counterfactual.json"
        if path.is_file():
            try:
                out.append({"run_id": rid, **json.loads(path.read_text(encoding="utf-8"))})
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise BiasConfigError(f"{path}: cannot read counterfactual summary: {e}") from e
    return out


def planned_shares(sources: list[QuotaSource]) -> dict[Cell, float]:
    """Share of each (sex, band, area) cell the generation planned, from the generator's own expansion
    (so sex-specific diseases and age ranges a band cannot fill count as the generator fills them);
    several runs are weighted by their quotas.total."""
    if not sources:
        return {}
    total = sum(s.quotas.total for s in sources)
    shares: Counter[Cell] = Counter()
    for s in sources:
        q = s.quotas.model_copy(update={"total": min(s.quotas.total, PLAN_CAP)})
        try:
            prompts = expand(
                load_templates(s.templates),
                load_knowledge(s.knowledge),
                load_comorbidities(s.knowledge),
                q,
                s.seed,
            )
        except (ValueError, OSError) as e:
            raise BiasConfigError(f"{s.name}: cannot expand its quotas: {e}") from e
        weight = s.quotas.total / total / len(prompts)
        for p in prompts:
            shares[(p.sex.value, band_of(p.age), p.area.value)] += weight
    return dict(shares)


@dataclass
class CellRow:
    cell: Cell
    released: int
    released_share: float
    planned_share: float | None

    @property
    def deviation(self) -> float | None:
        """Released share minus planned share, in percentage points."""
        return None if self.planned_share is None else 100 * (self.released_share - self.planned_share)


def released_cells(table: pa.Table) -> tuple[Counter[Cell], int]:
    """Rows per (sex, band, area) where sex and age are known, and the rows where they are not."""
    cells: Counter[Cell] = Counter()
    unknown = 0
    for demo, area in zip(
        table.column("demographics").to_pylist(), table.column("area").to_pylist(), strict=True
    ):
        demo = demo or {}
        if demo.get("sex") is None or demo.get("age") is None:
            unknown += 1
            continue
        cells[(demo["sex"], band_of(demo["age"]), area)] += 1
    return cells, unknown


def compare(released: Counter[Cell], planned: dict[Cell, float]) -> list[CellRow]:
    """Every cell released or planned, largest absolute deviation first (unplanned cells: no deviation)."""
    known = sum(released.values())
    rows = [
        CellRow(
            c,
            released.get(c, 0),
            released.get(c, 0) / known if known else 0.0,
            planned.get(c) if planned else None,
        )
        for c in set(released) | set(planned)
    ]
    return sorted(rows, key=lambda r: (-(abs(r.deviation) if r.deviation is not None else -1), r.cell))


def marginal(rows: list[CellRow], axis: int) -> list[CellRow]:
    """The same comparison summed over the other two axes (axis 0 sex, 1 band, 2 area)."""
    acc: dict[str, list[float]] = {}
    has_plan = any(r.planned_share is not None for r in rows)
    for r in rows:
        a = acc.setdefault(r.cell[axis], [0, 0.0, 0.0])
        a[0] += r.released
        a[1] += r.released_share
        a[2] += r.planned_share or 0.0
    return sorted(
        (CellRow((k, "", ""), int(v[0]), v[1], v[2] if has_plan else None) for k, v in acc.items()),
        key=lambda r: r.cell[0],
    )


# ---------------------------------------------------------------- stereotyped generalisations


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    regex: re.Pattern[str]


@cache
def load_stereotypes(path: str | Path = DEFAULT_STEREOTYPES) -> tuple[Rule, ...]:
    """Compile the team's list: per category, group + generaliser and group + degree + trait, plus patterns."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        groups: dict[str, list[str]] = raw["groups"]
        not_after = re.escape(raw.get("not_after", ""))
        guard = f"(?<![{not_after}])" if not_after else ""
        gen = "|".join(raw["generalisers"])
        traits = "|".join(raw["traits"])
        suffix, degree = raw.get("suffix", ""), raw.get("degree", "")
        rules = []
        for cat, terms in groups.items():
            g = f"{guard}(?:{'|'.join(terms)}){suffix}"
            rules.append(Rule(f"{cat}-generalisation", cat, re.compile(f"{g}(?:{gen})")))
            rules.append(Rule(f"{cat}-trait", cat, re.compile(f"{g}{degree}(?:{traits})")))
        for p in raw.get("patterns", []):
            rules.append(Rule(p["id"], p["category"], re.compile(p["pattern"])))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, re.error) as e:
        raise BiasConfigError(f"{path}: cannot load the stereotype list: {type(e).__name__}: {e}") from e
    return tuple(rules)


@dataclass
class StereotypeHit:
    sample_id: str
    field: str
    rule: str
    category: str
    match: str
    context: str


@dataclass
class StereotypeReport:
    rows_scanned: int = 0
    rows_flagged: int = 0
    by_category: Counter[str] = field(default_factory=Counter)  # hits
    by_rule: Counter[str] = field(default_factory=Counter)
    by_label: Counter[str] = field(default_factory=Counter)  # flagged rows
    examples: dict[str, list[StereotypeHit]] = field(default_factory=dict)


def find_stereotypes(text: str, rules: tuple[Rule, ...] | None = None) -> list[tuple[Rule, re.Match[str]]]:
    """Every rule hit in one text; overlapping hits of one category count once (the longest)."""
    hits = sorted(
        ((r, m) for r in (rules or load_stereotypes()) for m in r.regex.finditer(text)),
        key=lambda h: (h[0].category, h[1].start(), -h[1].end()),
    )
    out: list[tuple[Rule, re.Match[str]]] = []
    for r, m in hits:
        if out and out[-1][0].category == r.category and m.start() < out[-1][1].end():
            continue
        out.append((r, m))
    return out


def scan_stereotypes(table: pa.Table, rules: tuple[Rule, ...] | None = None) -> StereotypeReport:
    """Hits in every text field of every row, counted per category, rule and label, with a few examples."""
    rules = rules or load_stereotypes()
    rep = StereotypeReport(rows_scanned=table.num_rows)
    cols = {f: table.column(f).to_pylist() for f in TEXT_FIELDS if f in table.column_names}
    ids, labels = table.column("id").to_pylist(), table.column("label").to_pylist()
    for i, sid in enumerate(ids):
        flagged = False
        for fname, values in cols.items():
            text = values[i]
            if not text:
                continue
            for rule, m in find_stereotypes(text, rules):
                flagged = True
                rep.by_category[rule.category] += 1
                rep.by_rule[rule.id] += 1
                ex = rep.examples.setdefault(rule.category, [])
                if len(ex) < EXAMPLES:
                    lo, hi = max(0, m.start() - CONTEXT), m.end() + CONTEXT
                    ex.append(
                        StereotypeHit(
                            sid,
                            fname,
                            rule.id,
                            rule.category,
                            m.group(0),
                            text[lo:hi].replace("\n", " ").replace("|", "\\|"),
                        )
                    )
        if flagged:
            rep.rows_flagged += 1
            rep.by_label[labels[i]] += 1
    return rep


def bias_report(
    table: pa.Table, sources: list[QuotaSource], counterfactual: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Everything the datasheet's bias section shows."""
    released, unknown = released_cells(table)
    rows = compare(released, planned_shares(sources))
    return {
        "cells": rows,
        "unknown_demographics": unknown,
        "sources": [s.name for s in sources],
        "stereotypes": scan_stereotypes(table),
        "counterfactual": counterfactual or [],
    }
