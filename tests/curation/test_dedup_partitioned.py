"""The partitioned Ray dedup gives exactly the local engine's result (real local Ray, loopback only).

Real Toyhom questions and answers with copies spread over the whole input (exact, width-folded,
edited, lengthened), parents with their paraphrases, and the pairs that must never merge because
a clinical fact differs; several chunks and partitions, so duplicates cross chunk boundaries.
"""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray

from curation.dedup import DedupConfig, DedupIndex, run_dedup
from curation.dedup.partitioned import dedup_partitioned, dedup_table_partitioned
from curation.dedup.stage import LocalEngine
from medaug.schema import Provenance, Sample, samples_to_table

TOYHOM = "toyhom_dialogue/样例_内科5000-6000.utf8.csv"
ANSWER = (
    "建议完善胃镜、腹部彩超及肿瘤标志物检查，明确有无消化道肿瘤；同时查血常规、肝肾功能和甲状腺功能，"
    "饮食清淡规律，避免烟酒，检查结果出来后到消化内科复诊，由医生根据结果制定治疗方案。"
)
DOSE_NOTE = "，一日2次，温开水送服。服药期间忌食辛辣、生冷、油腻食物；孕妇慎用；如正在使用其他药品，使用前请咨询医师或药师。"
# each pair is similar enough to merge on the text alone; only the facts check keeps it apart
DIFFERENT_FACTS = [
    (
        "患者男，58岁，近三个月食欲减退，进食后上腹胀，乏力，体重减少5Kg，大便颜色正常。",
        "患者男，58岁，近三个月食欲正常，进食后上腹胀，乏力，体重无明显变化，大便颜色正常。",
    ),
    ("八珍益母片用法：口服，一次2-3片" + DOSE_NOTE, "香连化滞丸用法：口服，一次2丸" + DOSE_NOTE),
    (
        "孩子发烧38度5，吃了退烧药还是反复，需要去医院吗？",
        "孩子发烧39度5，吃了退烧药还是反复，需要去医院吗？",
    ),
]
_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})


def _samples(shared_data: Path, n: int = 2500, seed: int = 3) -> list[Sample]:
    with open(shared_data / TOYHOM, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    rng = random.Random(seed)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[Sample] = []
    for _ in range(n):
        prov = Provenance(
            created_at=t0 + timedelta(seconds=rng.randrange(10)), source=rng.choice([None, "toyhom"])
        )
        if out and rng.random() < 0.3:
            j = rng.randrange(len(out))
            base = out[j]
            kind = rng.random()
            q, a = base.instruction, base.output
            if kind < 0.25:
                pass  # an exact copy
            elif kind < 0.45:
                q = q.translate(_WIDTH)  # the same question typed in full width
            elif kind < 0.75:
                k = rng.randrange(max(1, len(a)))
                a = a[:k] + rng.choice("的了是在") + a[k + 1 :]  # one character changed
            elif kind < 0.9:
                a = a + "。"  # lengthened
                prov = Provenance(parent_id=base.id, created_at=prov.created_at)  # a paraphrase of its parent
            else:
                prov = Provenance(parent_id=base.provenance.parent_id or base.id)  # a sibling
                a = a + "谢谢"
            out.append(Sample(instruction=q, input=base.input, output=a, provenance=prov))
        else:
            row = rows[rng.randrange(len(rows))]
            out.append(
                Sample(instruction=row["title"], input=row["ask"], output=row["answer"], provenance=prov)
            )
    for a, b in DIFFERENT_FACTS:  # far apart, so they land in different chunks
        out.insert(
            rng.randrange(len(out) // 2), Sample(instruction="请根据病情给出建议。", input=a, output=ANSWER)
        )
        out.insert(
            len(out) // 2 + rng.randrange(len(out) // 2),
            Sample(instruction="请根据病情给出建议。", input=b, output=ANSWER),
        )
    return out


def _chunks(table: pa.Table, k: int) -> list[pa.Table]:
    step = -(-table.num_rows // k)
    return [table.slice(lo, step) for lo in range(0, table.num_rows, step)]


@pytest.fixture(scope="module")
def table(shared_data: Path) -> pa.Table:
    return samples_to_table(_samples(shared_data))


@pytest.mark.parametrize(("chunks", "partitions"), [(1, 1), (4, 3), (7, 5)])
def test_partitioned_matches_local(table: pa.Table, chunks: int, partitions: int, ray_local: None) -> None:
    cfg = DedupConfig()
    local = run_dedup(table, cfg, None, LocalEngine())
    result = dedup_partitioned([ray.put(c) for c in _chunks(table, chunks)], cfg, partitions=partitions)
    kept, rejected = result.tables()
    assert kept.column("id").to_pylist() == local.kept.column("id").to_pylist()
    assert rejected.to_pylist() == local.rejected.to_pylist()  # same ids, reasons, named samples, scores
    assert result.stats.rejects == local.stats.rejects
    for key in ("candidates", "verified", "facts_checked", "facts_differ"):
        assert result.stats.extra[key] == local.stats.extra[key], key
    # the data exercises every path: exact and near copies, cross-chunk, facts that differ
    assert local.stats.rejects["duplicate_exact"] > 100 and local.stats.rejects["near_duplicate"] > 100
    assert local.stats.extra["facts_differ"] >= len(DIFFERENT_FACTS)
    ids = set(kept.column("id").to_pylist())
    facts = {s["id"] for s in table.to_pylist() if s["instruction"] == "请根据病情给出建议。"}
    assert len(facts) == 2 * len(DIFFERENT_FACTS) and facts <= ids


def test_parquet_shards_and_lineage(table: pa.Table, tmp_path: Path, ray_local: None) -> None:
    """Chunks read from parquet by the tasks; paraphrases of a parent are not its duplicates."""
    paths = []
    for i, c in enumerate(_chunks(table, 3)):
        paths.append(str(tmp_path / f"part-{i}.parquet"))
        pq.write_table(c, paths[-1], row_group_size=200)  # raw texts are read by row group
    local = run_dedup(table, DedupConfig(), None, LocalEngine())
    assert sum(p["parent_id"] is not None for p in table.column("provenance").to_pylist()) > 100
    no_lineage = table.drop_columns(["provenance"])
    assert run_dedup(no_lineage, DedupConfig(), None, LocalEngine()).kept.num_rows < local.kept.num_rows
    result = dedup_partitioned(paths, DedupConfig(), partitions=4)
    kept, rejected = result.tables()
    assert kept.column("id").to_pylist() == local.kept.column("id").to_pylist()
    assert rejected.to_pylist() == local.rejected.to_pylist()


def test_index_is_refused(table: pa.Table, tmp_path: Path, ray_local: None) -> None:
    with pytest.raises(ValueError, match="DedupIndex"):
        dedup_partitioned([ray.put(table)], DedupConfig(), index=DedupIndex(tmp_path / "idx"))


def test_table_entry_point(table: pa.Table, ray_local: None) -> None:
    """A table on the driver, split into chunks of the given size; an empty table keeps nothing."""
    part = table.slice(0, 900)
    local = run_dedup(part, DedupConfig(), None, LocalEngine())
    got = dedup_table_partitioned(part, DedupConfig(), chunk_rows=250)
    assert got.stats.extra["chunks"] == 4 and got.stats.extra["engine"] == "ray-partitioned"
    assert got.kept.column("id").to_pylist() == local.kept.column("id").to_pylist()
    assert got.rejected.to_pylist() == local.rejected.to_pylist()
    empty = dedup_table_partitioned(table.slice(0, 0))
    assert empty.kept.num_rows == 0 and empty.rejected.num_rows == 0
