"""A generate run's plan: saved with the run, planned away from the prompt index, resumed as it was.

Only the plan is made (jobs.generate.plan_run): no engine, no Ray.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.dedup import DedupIndex
from generators.diversity import near_duplicate_rate
from generators.expand import novelty_text
from generators.knowledge import load_knowledge
from generators.novelty import NoveltyFilter
from generators.templates import load_templates
from jobs.config import ConfigError, GenerateConfig
from jobs.generate import PLAN_DIR, load_plan, plan_run
from medaug.io import write_parquet
from medaug.run import RunFolder
from medaug.schema import Label, Provenance, Sample, samples_to_table


@pytest.fixture(name="make_cfg")
def make_cfg_fixture(small_config, tmp_path):
    def make(index: Path | None, total: int = 240, **extra) -> GenerateConfig:
        raw = small_config(Path("unused-model"), tmp_path / "runs", total=total)
        if index:
            raw["quotas"]["novelty"] = {"index": str(index)}
        return GenerateConfig.model_validate(raw | extra)

    return make


def _plan(cfg: GenerateConfig, run_id: str, previous: dict | None = None):
    folder = RunFolder(cfg.run.output_dir, run_id).prepare()
    return plan_run(cfg, folder, previous or {}, load_templates(), load_knowledge())


def test_a_second_run_with_the_same_index_plans_no_near_duplicate_of_the_first(make_cfg, tmp_path):
    index = tmp_path / "prompt-index"
    cfg = make_cfg(index)
    first, rep1 = _plan(cfg, "a")
    second, rep2 = _plan(cfg, "b")
    assert rep1.index_hits == 0 and rep2.index_hits > 0 and rep2.redrawn >= len(first) // 24
    texts1, texts2 = [novelty_text(p) for p in first], [novelty_text(p) for p in second]
    f = NoveltyFilter(0.85)
    f.add(texts1)
    assert all(v is None for v in f.check(texts2))
    # and the dedup stage itself finds nothing to drop across the two runs
    assert near_duplicate_rate(texts1 + texts2)["rate"] == 0.0
    assert DedupIndex(index).origins() == {"plan:a": len(first), "plan:b": len(second)}
    # without the index the same config plans the same prompts again: dedup would drop half
    again, _ = _plan(make_cfg(None), "c")
    assert [p.user for p in again] == [p.user for p in first]
    assert near_duplicate_rate(texts1 + [novelty_text(p) for p in again])["rate"] >= 0.5


def test_a_resume_runs_the_saved_plan_though_the_index_grew(make_cfg, tmp_path):
    index = tmp_path / "prompt-index"
    cfg = make_cfg(index, total=96)
    first, rep = _plan(cfg, "a")
    _plan(cfg, "b")  # another run records its prompts meanwhile
    resumed, rep_r = _plan(cfg, "a")
    assert [p.prompt_id for p in resumed] == [p.prompt_id for p in first]
    assert [p.slots for p in resumed] == [p.slots for p in first] and resumed[0].task == first[0].task
    assert rep_r.to_dict() == rep.to_dict()
    assert DedupIndex(index).origins()["plan:a"] == len(first)  # recorded once


def _finished_shard(folder: RunFolder, prompt_ids: list[str]) -> None:
    samples = [
        Sample(instruction="问", output="答", task="medical_qa", label=Label.positive, area="cardiovascular",
               provenance=Provenance(source="template", prompt_id=pid, template_id="t", seed_id="cv-htn"))
        for pid in prompt_ids
    ]  # fmt: skip
    write_parquet(samples_to_table(samples), folder.shard_path("generate", 0))


def _old_manifest(cfg: GenerateConfig, **changed) -> dict:
    """A manifest as written before quotas had the novelty and seeded settings."""
    quotas = cfg.model_dump(mode="json")["quotas"] | changed
    return {"config": {"quotas": {k: v for k, v in quotas.items() if k not in ("novelty", "seeded")}}}


def test_resuming_an_older_run_says_what_changed_and_what_to_do(make_cfg):
    cfg = make_cfg(None, total=48)
    folder = RunFolder(cfg.run.output_dir, "old").prepare()
    _finished_shard(folder, ["an-older-expanders-prompt"] * 3)
    with pytest.raises(ConfigError) as e:
        _plan(cfg, "old", _old_manifest(cfg))
    msg = str(e.value)
    assert "run old exists with different quotas: quotas.novelty: not in the run's quotas" in msg
    assert "quotas.seeded: not in the run's quotas" in msg and "Start a new run (another --run-id" in msg
    assert not (folder.path / PLAN_DIR / "prompts.parquet").exists()
    with pytest.raises(
        ConfigError, match=r"quotas\.total: 24 in the run, 48 here"
    ):  # a change names both values
        _plan(cfg, "old", _old_manifest(cfg, total=24))


def test_an_older_run_whose_finished_shards_match_the_new_plan_resumes(make_cfg):
    cfg = make_cfg(None, total=48)
    expected, _ = _plan(cfg, "reference")
    folder = RunFolder(cfg.run.output_dir, "old").prepare()
    _finished_shard(folder, [p.prompt_id for p in expected[: cfg.run.shard_size]])
    prompts, _ = _plan(cfg, "old", _old_manifest(cfg))
    assert [p.prompt_id for p in prompts] == [p.prompt_id for p in expected]
    assert load_plan(folder) is not None  # saved now: later resumes need no check


def test_the_prompt_index_needs_a_folder_of_its_own(make_cfg, tmp_path):
    cfg = make_cfg(tmp_path / "idx", total=24, curate={"dedup_index": str(tmp_path / "idx")})
    with pytest.raises(ConfigError, match="needs a folder of its own"):
        _plan(cfg, "x")


def test_a_first_attempt_that_failed_early_keeps_its_quotas_with_the_plan(make_cfg):
    # no manifest yet (written at the end of an attempt): the quotas saved with the plan are compared
    first, _ = _plan(make_cfg(None, total=48), "early")
    bigger, _ = _plan(make_cfg(None, total=96), "early")  # nothing finished: the new quotas are planned
    assert len(bigger) == 96 and len(first) == 48
    folder = RunFolder(make_cfg(None).run.output_dir, "early")
    _finished_shard(folder, [p.prompt_id for p in bigger[:8]])
    with pytest.raises(ConfigError, match=r"quotas\.total: 96 in the run, 48 here.*plan/quotas\.json"):
        _plan(make_cfg(None, total=48), "early")
