"""Making a derived sample from a parent row: new content, new id, the parent's provenance chain plus
one step saying exactly what was done. Randomness comes from (seed, parent id, augmenter) only, so the
result does not depend on how Ray cuts the data into batches.
"""

from __future__ import annotations

import json
import random
from typing import Any

from medaug.schema import NEGATIVE_VERDICT, Label, now_utc, sample_id


def rng_for(seed: int, parent_id: str, augmenter: str) -> random.Random:
    return random.Random(f"{seed}:{parent_id}:{augmenter}")


def detail_json(detail: dict[str, Any]) -> str:
    return json.dumps(detail, ensure_ascii=False, sort_keys=True)


def derive_row(
    parent: dict[str, Any], augmenter: str, detail: dict[str, Any], **changes: Any
) -> dict[str, Any]:
    """A row of SAMPLE_SCHEMA shape; `changes` overrides content/label fields of the parent."""
    row = dict(parent)
    row.update(changes)
    label = row["label"]
    if label == Label.negative.value:
        row["verdict"] = row.get("verdict") or NEGATIVE_VERDICT
    else:
        row["verdict"] = None
        row["error_type"] = None
        row["reference_output"] = None
    row["id"] = sample_id(row["instruction"], row["input"], row["output"], label)
    prov = dict(parent.get("provenance") or {})
    chain = list(prov.get("augmentation") or [])
    chain.append({"augmenter": augmenter, "detail": detail_json(detail)})
    prov["augmentation"] = chain
    prov["parent_id"] = parent["id"]
    prov["created_at"] = now_utc()
    row["provenance"] = prov
    return row
