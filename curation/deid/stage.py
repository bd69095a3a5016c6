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
    """Rewrite the configured text fields of every sample; nothing is rejected, ids are unchanged."""
    t0 = time.perf_counter()
    config = config or DeidConfig()
    deid = deidentifier_for(config)
    table = conform_table(table)
    n = table.num_rows
    ids = table.column("id").to_pylist()
    fields = list(config.fields)
    texts: list[str | None] = []
    for f in fields:
        texts.extend(table.column(f).to_pylist())
    results = deid.texts(texts, ids * len(fields))

    per_row: list[Counter[str]] = [Counter() for _ in range(n)]
    for i, f in enumerate(fields):
        chunk = results[i * n : (i + 1) * n]
        for row, (_, counts) in enumerate(chunk):
            if counts:
                per_row[row].update(counts)
        col = pa.array([t for t, _ in chunk], type=SAMPLE_SCHEMA.field(f).type)
        table = table.set_column(table.schema.get_field_index(f), f, col)

    previous = table.column("deid").to_pylist()
    deid_values = []
    totals: Counter[str] = Counter()
    for counts, prev in zip(per_row, previous, strict=True):
        totals.update(counts)
        merged = Counter({d["entity"]: d["count"] for d in prev or []})
        merged.update(counts)
        deid_values.append([{"entity": e, "count": c} for e, c in sorted(merged.items())])
    table = table.set_column(
        table.schema.get_field_index("deid"),
        "deid",
        pa.array(deid_values, type=SAMPLE_SCHEMA.field("deid").type),
    )
    stats = StageStats(STAGE_NAME, rows_in=n, rows_out=n, seconds=time.perf_counter() - t0)
    stats.extra["samples_with_pii"] = sum(1 for c in per_row if c)
    for entity, count in sorted(totals.items()):
        stats.extra[f"removed_{entity}"] = count
    return StageResult(kept=table, stats=stats)
