"""The augment job for real: local Ray, real data from ../shared/data, SQLite queue, persistent dedup index."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from jobs.augment import AugmentJobConfig, main, run_augment
from medaug.io import read_samples
from review_queue.store import QueueStore


def _cfg(tmp_path, inputs, **over) -> AugmentJobConfig:
    data = {
        "run": {"output_dir": str(tmp_path / "runs"), "seed": 2},
        "inputs": [str(p) for p in inputs],
        "augment": {"variants": 2, "refusals": 5, "seed": 2},
        "curate": {
            "dedup_index": str(tmp_path / "index"),
            "queue": {"url": f"sqlite:///{tmp_path / 'queue.db'}"},
        },
    }
    for k, v in over.items():
        data[k] = v
    return AugmentJobConfig.model_validate(data)


def _stage(manifest, name):
    return next(s for s in manifest["stages"] if s["name"] == name)


@pytest.fixture(scope="module")
def medicalgpt_run(shared_data, ray_local, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("aug")
    src = shared_data / "medicalgpt_sft_sample" / "medical_sft_1K_format.jsonl"
    cfg = _cfg(tmp, [src], limit=300)
    cfg.run.run_id = "a1"
    return tmp, cfg, run_augment(cfg, log=lambda m: None)


def test_every_accepted_sample_is_accounted_for(medicalgpt_run):
    tmp, cfg, manifest = medicalgpt_run
    read, neg = _stage(manifest, "read"), _stage(manifest, "negatives")
    para, last = _stage(manifest, "paraphrase"), _stage(manifest, "refusals")  # one stage per augmenter
    assert read["rows_out"] == 300 == neg["rows_in"]
    assert neg["rows_out"] == para["rows_in"] and para["rows_out"] == last["rows_in"]
    assert last["rows_out"] == last["rows_in"] + 5 and last["extra"]["label_refusal"] == 5
    assert (
        neg["rows_out"] > 300 and para["extra"]["paraphrase_variants"] == para["rows_out"] - para["rows_in"]
    )
    run = tmp / "runs" / "a1"
    assert manifest["outputs"]["augmented"] == str(run / "refusals")
    augmented = {s.id for p in (run / "refusals").glob("shard-*.parquet") for s in read_samples(p).samples}
    curated = {s.id for p in (run / "curated").glob("shard-*.parquet") for s in read_samples(p).samples}
    rejected = set()
    for p in (run / "rejects").glob("*.parquet"):
        rejected |= set(pq.read_table(p).column("id").to_pylist())
    assert curated | rejected == augmented and not curated & rejected  # nothing lost, nothing twice
    for name in ("deid", "quality", "dedup", "queue_push"):
        st = _stage(manifest, name)
        assert st["rows_in"] - st["rows_out"] == sum(st["rejects"].values())


def test_the_job_summary_prints_the_negative_report(medicalgpt_run, capsys):
    """Per error type target/made/kept/drops/patterns, and a SHORTFALL line for each type under its share."""
    from jobs.augment import print_summary

    _, _, manifest = medicalgpt_run
    report = _stage(manifest, "negatives")["extra"]["report"]
    kinds = [et for et in ("wrong_diagnosis", "wrong_drug", "wrong_dose", "contradicts_findings",
                           "missing_referral", "overclaiming")]  # fmt: skip
    assert all(any(x.startswith(f"  {et}: target ") for x in report) for et in kinds)
    kept = {
        et: int(next(x for x in report if x.startswith(f"  {et}:")).split(" kept ")[1].split()[0])
        for et in kinds
    }
    total = sum(kept.values())
    short = {x.split()[1].rstrip(":") for x in report if x.startswith("SHORTFALL")}
    assert short == {et for et, n in kept.items() if n < 0.8 * total / len(kinds)}
    print_summary(manifest)
    out = capsys.readouterr().out
    assert "[negatives]" in out and all(line in out.splitlines() for line in report)


def test_queue_holds_the_curated_samples_once(medicalgpt_run):
    tmp, cfg, manifest = medicalgpt_run
    store = QueueStore.open(cfg.curate.queue.url)
    try:
        run = tmp / "runs" / "a1"
        curated = [s for p in (run / "curated").glob("shard-*.parquet") for s in read_samples(p).samples]
        assert store.queued_ids([s.id for s in curated]) == {s.id for s in curated}
        assert all(s.deid is not None for s in curated)
        assert all(s.provenance.run_id == "a1" for s in curated)  # every sample records its run
        assert _stage(manifest, "queue_push")["rows_out"] == len(curated)
    finally:
        store.close()


def test_rerun_same_id_resumes_and_queues_nothing_twice(medicalgpt_run):
    tmp, cfg, first = medicalgpt_run
    again = run_augment(cfg, log=lambda m: None)
    push = _stage(again, "queue_push")
    assert (
        push["extra"]["inserted"] == 0
        and push["extra"]["already_queued"] == _stage(first, "queue_push")["rows_out"]
    )
    assert len(again["attempts"]) == 2


def test_new_run_on_same_data_is_deduplicated_against_the_queue(medicalgpt_run):
    tmp, cfg, first = medicalgpt_run
    cfg2 = cfg.model_copy(deep=True)
    cfg2.run.run_id = "a2"
    second = run_augment(cfg2, log=lambda m: None)
    dedup = _stage(second, "dedup")
    assert dedup["rejects"].get("seen_in_queue", 0) >= _stage(first, "queue_push")["rows_out"] * 0.9
    assert _stage(second, "queue_push")["extra"]["inserted"] <= 5  # at most a few refusals differ


def test_bad_records_are_reported_with_file_and_line(tmp_path, ray_local, capsys):
    src = tmp_path / "in.jsonl"
    good = {
        "instruction": "孩子发烧39度怎么办？",
        "input": "",
        "output": "多喝水，体温超过38.5℃可按说明使用退热药，精神差请就医。",
    }
    src.write_text(
        json.dumps(good, ensure_ascii=False)
        + "\n{broken\n"
        + json.dumps({"instruction": "缺答案"}, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    cfg_path = tmp_path / "c.yaml"
    import yaml

    cfg_path.write_text(
        yaml.safe_dump(_cfg(tmp_path, [src]).model_dump(mode="json"), allow_unicode=True), encoding="utf-8"
    )
    assert main(["--config", str(cfg_path), "--run-id", "bad"]) == 0
    out = capsys.readouterr().out
    assert "in.jsonl:2: record: malformed JSON" in out and "in.jsonl:3: output: missing" in out
    errors = [
        json.loads(x) for x in (tmp_path / "runs" / "bad" / "input_errors.jsonl").read_text().splitlines()
    ]
    assert [(e["line"], e["field"]) for e in errors] == [(2, "record"), (3, "output")]
    assert "bad_record:output" in out


def test_missing_input_file_is_a_clear_error(tmp_path, capsys):
    cfg_path = tmp_path / "c.yaml"
    import yaml

    cfg_path.write_text(
        yaml.safe_dump(_cfg(tmp_path, [tmp_path / "nope.jsonl"]).model_dump(mode="json")), encoding="utf-8"
    )
    assert main(["--config", str(cfg_path)]) == 2
    assert "nope.jsonl: no such input file" in capsys.readouterr().err


def test_llm_augmenters_run_through_the_engine_actors(tmp_path, ray_local, tiny_model):
    import os

    for k, v in {
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "OMP_NUM_THREADS": "1",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    }.items():
        os.environ.setdefault(k, v)
    src = tmp_path / "in.jsonl"
    rows = [
        {
            "instruction": "孩子发烧39度怎么办？",
            "input": "",
            "output": "体温超过38.5℃可按说明使用布洛芬，精神差请就医。",
        },
        {
            "instruction": "胸口疼是怎么回事？",
            "input": "男性，56岁",
            "output": "需警惕心肌梗死，请立即拨打120。",
        },
        {
            "instruction": "空腹血糖9.8是糖尿病吗？",
            "input": "",
            "output": "提示血糖偏高，需复查并到内分泌科就诊。",
        },
    ]
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    cfg = _cfg(tmp_path, [src])
    cfg = AugmentJobConfig.model_validate(
        cfg.model_dump(mode="json")
        | {
            "augment": {"variants": 0, "refusals": 0, "negative_ratios": {}, "llm_paraphrase_modes": ["patient_question"], "seed": 1},
            "llm": {"engine": {"model": str(tiny_model), "max_model_len": 2048}, "output_mode": "json",
                    "sampling": {"max_tokens": 96, "seed": 1}, "field_max_chars": 40, "max_retries": 0},
            "run": {"output_dir": str(tmp_path / "runs"), "run_id": "llm", "shard_size": 2},
        }
    )  # fmt: skip
    manifest = run_augment(cfg, log=lambda m: None)
    assert [s["name"] for s in manifest["stages"][1:3]] == ["llm_paraphrase", "deid"]
    aug = _stage(manifest, "llm_paraphrase")
    derived = aug["rows_out"] - 3
    # every request became a derived sample or a counted rejection (random weights: mostly rejections)
    assert derived + sum(aug["rejects"].values()) == 3
    shards = sorted((tmp_path / "runs" / "llm" / "llm_paraphrase").glob("shard-*.parquet"))
    assert len(shards) == 2  # 3 rows in shards of 2
    for p in shards:
        for s in read_samples(p).samples:
            if s.provenance.parent_id:
                assert s.provenance.augmentation[-1].augmenter == "llm_paraphrase" and s.provenance.model


def test_llm_augmenters_without_llm_section_is_a_config_error(tmp_path, ray_local, shared_data):
    from jobs.config import ConfigError

    cfg = _cfg(tmp_path, [shared_data / "medicalgpt_sft_sample" / "medical_sft_1K_format.jsonl"])
    cfg.augment = cfg.augment.model_copy(update={"llm_paraphrase_modes": ("patient_question",)})
    with pytest.raises(ConfigError, match="need an `llm` section"):
        run_augment(cfg, log=lambda m: None)
