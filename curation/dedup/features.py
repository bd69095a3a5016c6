"""What dedup needs to know about each sample, extracted from a table in one pass."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.dedup.config import DedupConfig
from curation.dedup.minhash import band_keys, signatures
from curation.dedup.normalize import compare_text, exact_keys
from medaug.schema import conform_table

# provenance fields whose presence makes a sample traceable; more of them wins a cluster
_TRACE_FIELDS = (
    "source",
    "template_id",
    "seed_id",
    "parent_id",
    "model",
    "sampling_params",
    "sampling_seed",
    "job_id",
    "run_id",
    "created_at",
)
_NO_TIME = np.iinfo(np.int64).max


def raw_text(instruction: str | None, input: str | None, output: str | None) -> str:
    """What clinical facts are read from: the sample's fields as written, one clause break apart."""
    return "\n".join((instruction or "", input or "", output or ""))


def label_codes(labels: list[str]) -> np.ndarray:
    return np.fromiter((zlib.crc32(lab.encode()) for lab in labels), dtype=np.int64, count=len(labels))


@dataclass
class Features:
    ids: list[str]
    labels: list[str]
    parent_ids: list[str | None]
    texts: list[str]  # normalised compare text
    exact: np.ndarray  # uint64 per row
    richness: np.ndarray  # filled provenance fields per row
    aug_steps: np.ndarray
    created_us: np.ndarray  # int64 epoch microseconds, max when unknown

    @property
    def n(self) -> int:
        return len(self.ids)

    def keys_for(self, rows: np.ndarray, cfg: DedupConfig) -> np.ndarray:
        """(len(rows), bands) LSH band keys for the given rows."""
        sub = [self.texts[i] for i in rows.tolist()]
        return band_keys(signatures(sub, cfg), label_codes([self.labels[i] for i in rows.tolist()]), cfg)


def extract(table: pa.Table, cfg: DedupConfig) -> Features:
    table = conform_table(table)
    ids = table.column("id").to_pylist()
    labels = table.column("label").to_pylist()
    texts = [
        compare_text(a, b, c, cfg.script, cfg.surface)
        for a, b, c in zip(
            table.column("instruction").to_pylist(),
            table.column("input").to_pylist(),
            table.column("output").to_pylist(),
            strict=True,
        )
    ]
    prov = table.column("provenance").combine_chunks()
    n = table.num_rows
    if prov.null_count == n:
        parents: list[str | None] = [None] * n
        richness = np.zeros(n, dtype=np.int64)
        aug = np.zeros(n, dtype=np.int64)
        created = np.full(n, _NO_TIME, dtype=np.int64)
    else:
        parents = pc.struct_field(prov, "parent_id").to_pylist()
        richness = np.zeros(n, dtype=np.int64)
        for name in _TRACE_FIELDS:
            richness += (
                pc.is_valid(pc.struct_field(prov, name)).to_numpy(zero_copy_only=False).astype(np.int64)
            )
        aug = pc.fill_null(pc.list_value_length(pc.struct_field(prov, "augmentation")), 0).to_numpy(
            zero_copy_only=False
        )
        ts = pc.struct_field(prov, "created_at").cast(pa.int64())
        created = pc.fill_null(ts, _NO_TIME).to_numpy(zero_copy_only=False)
    return Features(
        ids=ids,
        labels=labels,
        parent_ids=parents,
        texts=texts,
        exact=exact_keys(texts, labels),
        richness=np.asarray(richness, dtype=np.int64),
        aug_steps=np.asarray(aug, dtype=np.int64),
        created_us=np.asarray(created, dtype=np.int64),
    )
