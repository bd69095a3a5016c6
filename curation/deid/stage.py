"""The de-identification batch stage and the plain-text API the CLI uses.

Sample ids are kept: they were assigned at creation and children point to them
(provenance.parent_id), so recomputing them from the rewritten text would break
lineage. Each sample's `deid` lists what was removed (types and counts, never
values); an empty list means "checked, nothing found".
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from functools import lru_cache

import pyarrow as pa

from curation.deid.config import DeidConfig
from curation.deid.engine import Deidentifier
from medaug.run import StageStats
from medaug.schema import SAMPLE_SCHEMA, conform_table
from medaug.stage import StageResult

STAGE_NAME = "deid"


@lru_cache(maxsize=8)
def _cached(config_json: str) -> Deidentifier:
    return Deidentifier(DeidConfig.model_validate_json(config_json))


def deidentifier_for(config: DeidConfig) -> Deidentifier:
    """One Deidentifier per distinct config in a process (Ray workers call the stage once per batch)."""
    dump = config.model_dump(mode="json")
    for name in ("salt", "key"):  # SecretStr dumps masked; the cache key must carry the real value
        secret = getattr(config, name)
        dump[name] = secret.get_secret_value() if secret is not None else None
    return _cached(json.dumps(dump, sort_keys=True))


def deidentify_text(text: str, config: DeidConfig | None = None) -> tuple[str, Counter[str]]:
    """One text → (de-identified text, removed entity counts); dates shift by an offset tied to the text."""
    deid = deidentifier_for(config or DeidConfig())
    key = hashlib.sha256(text.encode("utf-8")).hexdigest()
    new, counts = deid.texts([text], [key])[0]
    return new or "", counts


def deidentify_texts(texts: list[str], config: DeidConfig | None = None) -> list[tuple[str, Counter[str]]]:
    """Many independent texts (lines of a file) in one detection pass."""
    deid = deidentifier_for(config or DeidConfig())
    keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
    return [(t or "", c) for t, c in deid.texts(texts, keys)]


def deidentify_table(table: pa.Table, config: DeidConfig | None = None) -> StageResult:
    """Rewrite the configured text fields of every sample; nothing is rejected, ids are unchanged.

    Samples whose `deid` is already set pass through untouched: a second pass would shift their
    dates again.
    """
    t0 = time.perf_counter()
    config = config or DeidConfig()
    deid = deidentifier_for(config)
    table = conform_table(table)
    n = table.num_rows
    todo = [i for i, d in enumerate(table.column("deid").to_pylist()) if d is None]
    ids = table.column("id").to_pylist()
    todo_ids = [ids[i] for i in todo]
    fields = list(config.fields)
    texts: list[str | None] = []
    columns = {f: table.column(f).to_pylist() for f in fields}
    for f in fields:
        texts.extend(columns[f][i] for i in todo)
    results = deid.texts(texts, todo_ids * len(fields))

    per_row: dict[int, Counter[str]] = {}  # only rows where something was found
    m = len(todo)
    for k, f in enumerate(fields):
        values = columns[f]
        for row, (text, counts) in zip(todo, results[k * m : (k + 1) * m], strict=True):
            values[row] = text
            if counts:
                per_row.setdefault(row, Counter()).update(counts)
        col = pa.array(values, type=SAMPLE_SCHEMA.field(f).type)
        table = table.set_column(table.schema.get_field_index(f), f, col)

    deid_values = table.column("deid").to_pylist()
    for row in todo:
        deid_values[row] = []
    totals: Counter[str] = Counter()
    for row, counts in per_row.items():
        totals.update(counts)
        deid_values[row] = [{"entity": e, "count": c} for e, c in sorted(counts.items())]
    table = table.set_column(
        table.schema.get_field_index("deid"),
        "deid",
        pa.array(deid_values, type=SAMPLE_SCHEMA.field("deid").type),
    )
    stats = StageStats(STAGE_NAME, rows_in=n, rows_out=n, seconds=time.perf_counter() - t0)
    stats.extra["samples_with_pii"] = len(per_row)
    stats.extra["already_deidentified"] = n - m
    for entity, count in sorted(totals.items()):
        stats.extra[f"removed_{entity}"] = count
    return StageResult(kept=table, stats=stats)
