"""augment_table inside Ray Data map_batches (real local Ray) gives exactly the local result."""

from __future__ import annotations

import pyarrow as pa

from augmenters.pipeline import AugmentConfig, augment_table
from medaug.schema import Sample, samples_to_table


def test_ray_batches_match_local(samples, ray_local):
    import ray

    rows = [
        Sample(instruction=f"{s.instruction}（病例{i}）", output=s.output, area=s.area)
        for i in range(40)
        for s in samples
    ]
    table = samples_to_table(rows)
    # Negatives are balanced per call (see test_aug_pipeline's batching test); the rest must match exactly.
    cfg = AugmentConfig(seed=4, refusals=0, negative_ratios={})

    def stage(batch: pa.Table) -> pa.Table:
        return augment_table(batch, cfg).kept

    ds = ray.data.from_arrow(table).map_batches(stage, batch_format="pyarrow", batch_size=23)
    remote = sorted(r["id"] for r in ds.take_all())
    local = augment_table(table, cfg).kept
    assert remote == sorted(local.column("id").to_pylist())
    assert len(remote) > 2 * table.num_rows
