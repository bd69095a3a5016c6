"""One Stage per augmenter, chained by the runner, gives the samples augment_table gives per batch."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

from augmenters.pipeline import AugmentConfig, augment_table
from augmenters.stages import (
    NegativeStage,
    ParaphraseStage,
    RefusalStage,
    augmenter_stages,
    only_originals,
)
from medaug.io import read_samples
from medaug.run import RunFolder
from medaug.runner import Runner, read_rejects
from medaug.schema import Sample, samples_to_table
from medaug.stage import REJECT_SCHEMA

BATCH = 17
CFG = AugmentConfig(variants=2, refusals=5, seed=9)


def _table(samples) -> pa.Table:
    rows = [
        Sample(instruction=f"{s.instruction}（病例{i}）", output=s.output, area=s.area, icd10=s.icd10)
        for i in range(20)
        for s in samples
    ]
    return samples_to_table(rows)


def _reference(table: pa.Table, cfg: AugmentConfig):
    """What the one AugmentStage did: augment_table per batch without refusals, refusals once."""
    per_batch = cfg.model_copy(update={"refusals": 0})
    parts = [augment_table(table.slice(o, BATCH), per_batch) for o in range(0, table.num_rows, BATCH)]
    kept = pa.concat_tables([p.kept for p in parts] + [augment_table(table.slice(0, 0), cfg).kept])
    rejected = pa.concat_tables([p.rejected for p in parts])
    return kept, rejected


def _run(tmp_path, table, cfg, run_id="r", **kw):
    stages = augmenter_stages(cfg, run_id)
    runner = Runner(RunFolder(tmp_path, run_id).prepare(), stages, batch_rows=BATCH, log=lambda m: None, **kw)
    return runner, runner.run(table)


def _key(t: pa.Table) -> Counter:
    """Every sample's content (not created_at/run_id, which differ between two calls)."""
    cols = ["id", "label", "instruction", "input", "output", "error_type", "verdict"]
    prov = t.column("provenance").combine_chunks()
    aug = [[(s["augmenter"], s["detail"]) for s in a] for a in prov.field("augmentation").to_pylist()]
    parents = prov.field("parent_id").to_pylist()
    rows = zip(*(t.column(c).to_pylist() for c in cols), parents, map(tuple, aug), strict=True)
    return Counter(tuple(r) for r in rows)


def test_the_stage_chain_gives_the_same_samples_and_rejects_as_augment_table(tmp_path, shared_data):
    """Real records (120, in 8 shards), among them one paraphrase that fails its fact check."""
    src = shared_data / "medicalgpt_sft_sample" / "medical_sft_1K_format.jsonl"
    table = samples_to_table(read_samples(src).samples[:120])
    runner, res = _run(tmp_path, table, CFG)
    assert [s.name for s in runner.stages] == ["negatives", "paraphrase", "refusals"]
    assert res.complete
    ref_kept, ref_rej = _reference(table, CFG)
    assert _key(res.output) == _key(ref_kept)
    assert res.output.num_rows > table.num_rows + 5
    got_rej = pa.concat_tables([read_rejects(runner.folder, s) for s in runner.stages])
    assert got_rej.schema == REJECT_SCHEMA
    pairs = Counter(zip(got_rej.column("id").to_pylist(), got_rej.column("reason").to_pylist(), strict=True))
    ref = Counter(zip(ref_rej.column("id").to_pylist(), ref_rej.column("reason").to_pylist(), strict=True))
    assert pairs == ref
    assert all(r["id"] in set(table.column("id").to_pylist()) for r in got_rej.to_pylist())
    files = sorted((runner.folder.path / "rejects" / "augment").glob("*.parquet"))
    assert ref_rej.num_rows > 0 and files and all(f.name.startswith("paraphrase-") for f in files)
    # every row of the run carries the run id, the originals too
    run_ids = res.output.column("provenance").combine_chunks().field("run_id").to_pylist()
    assert set(run_ids) == {"r"}


def test_per_stage_stats_report_and_label_counts(tmp_path, samples):
    table = _table(samples)
    runner, res = _run(tmp_path, table, CFG)
    st = {s.name: s for s in res.stats}
    ref = augment_table(table, CFG.model_copy(update={"refusals": 0}))  # counts summed over batches differ
    assert st["negatives"].rows_in == table.num_rows
    assert st["paraphrase"].rows_in == st["negatives"].rows_out
    neg_made = st["negatives"].rows_out - table.num_rows
    assert neg_made > 0 and st["negatives"].extra["label_negative"] == neg_made
    assert (
        st["paraphrase"].extra["paraphrase_variants"] == st["paraphrase"].rows_out - st["negatives"].rows_out
    )
    assert "report" in st["negatives"].extra and "report" not in st["paraphrase"].extra
    assert any(line.startswith("  overclaiming: target ") for line in st["negatives"].extra["report"])
    last = st["refusals"]
    assert last.extra["refusals"] == 5 and last.extra["label_refusal"] == 5
    labels = Counter(res.output.column("label").to_pylist())
    assert {k: last.extra[f"label_{k}"] for k in labels} == dict(labels)
    assert ref.stats.extra["paraphrase_variants"] == st["paraphrase"].extra["paraphrase_variants"]  # per row


def test_a_negative_is_never_built_from_a_paraphrase(tmp_path, samples):
    """Whatever the order, an augmenter sees only the rows no augmenter made."""
    table = _table(samples)
    para = ParaphraseStage(CFG, "r").process(table).kept
    assert only_originals(para).num_rows == table.num_rows
    neg = NegativeStage(CFG, "r").process(para)
    derived = neg.kept.slice(para.num_rows)
    assert derived.num_rows > 0
    parents = set(derived.column("provenance").combine_chunks().field("parent_id").to_pylist())
    assert parents <= set(table.column("id").to_pylist())
    assert _key(neg.kept.slice(0, para.num_rows)) == _key(para)  # every input row passes through


def test_resume_after_a_stop_gives_the_same_output(tmp_path, samples):
    table = _table(samples)
    _, full = _run(tmp_path / "a", table, CFG)
    _, part = _run(tmp_path / "b", table, CFG, max_shards=5)
    assert not part.complete and part.stopped_at == "paraphrase"
    _, rest = _run(tmp_path / "b", table, CFG)
    assert rest.complete and _key(rest.output) == _key(full.output)


@pytest.mark.parametrize(
    ("update", "names"),
    [
        ({"paraphrase": False, "refusals": 0}, ["negatives"]),
        ({"negative_ratios": {}, "refusals": 0}, ["paraphrase"]),
        ({"negative_ratios": {}, "variants": 0, "refusals": 0}, ["refusals"]),  # still stamps the run
    ],
)
def test_the_job_declares_only_the_enabled_augmenters(update, names):
    stages = augmenter_stages(CFG.model_copy(update=update), "r")
    assert [s.name for s in stages] == names
    assert all(s.mode == "batch" for s in stages)


def test_llm_augmenters_need_an_engine_and_run_on_actors():
    from medaug.llm.engine import EngineConfig, SamplingConfig

    cfg = CFG.model_copy(
        update={"llm_paraphrase_modes": ("plain_answer",), "llm_negative_ratios": {"wrong_dose": 1.0}}
    )
    with pytest.raises(ValueError, match="no engine"):
        augmenter_stages(cfg, "r")
    llm = {"engine_config": EngineConfig(model="m", kind="openai"), "sampling": SamplingConfig()}
    stages = augmenter_stages(cfg, "r", llm)
    assert [(s.name, s.mode) for s in stages] == [
        ("negatives", "batch"), ("paraphrase", "batch"), ("llm_paraphrase", "actors"),
        ("llm_negatives", "actors"), ("refusals", "batch"),
    ]  # fmt: skip
    assert isinstance(stages[-1], RefusalStage)
