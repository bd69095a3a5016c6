"""Dedup across runs: a persistent index of what is queued and released."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.dedup import DedupConfig, DedupIndex, dedup_table
from curation.dedup.normalize import compare_text
from medaug.schema import Sample, samples_to_table

ANSWERS = [
    "高血压患者要控制食盐摄入，每天不超过五克，坚持规律服用降压药，定期监测血压并记录，出现头晕头痛及时复诊。",
    "孩子发热三十八度五以上可以用对乙酰氨基酚退热，注意多喝水，观察精神状态，若持续高热超过三天应到儿科就诊。",
    "胃镜检查前需要空腹六到八小时，检查后两小时内不要进食，取活检的患者当天宜吃温凉流食，避免辛辣刺激。",
    "妊娠期糖尿病首先通过饮食控制和适量运动调整血糖，监测空腹及餐后血糖，控制不佳时在医生指导下使用胰岛素。",
]


def _batch(answers: list[str], suffix: str = "") -> list[Sample]:
    return [
        Sample(instruction="请回答患者的问题。", input=f"问题{i}", output=a + suffix)
        for i, a in enumerate(answers)
    ]


def test_cross_run_queue_and_release(tmp_path: Path) -> None:
    index = DedupIndex(tmp_path / "idx")
    first = dedup_table(samples_to_table(_batch(ANSWERS[:2])), index=index)
    assert first.kept.num_rows == 2
    assert index.add(first.kept, origin="queue") == 2
    assert index.add(first.kept, origin="queue") == 0  # idempotent per origin
    released = samples_to_table(_batch(ANSWERS[2:3]))
    assert index.add(released, origin="release:v3") == 1

    # a later run, with a fresh handle on the same folder (the index persists)
    later = DedupIndex(tmp_path / "idx")
    assert len(later) == 3 and later.origins() == {"queue": 2, "release:v3": 1}
    exact_again = _batch(ANSWERS[:1])[0]
    near_release = _batch(ANSWERS[2:3], suffix="谢谢。")[0]
    new = _batch(ANSWERS[3:])[0]
    second = dedup_table(samples_to_table([exact_again, near_release, new]), index=later)
    assert second.kept.column("id").to_pylist() == [new.id]
    rows = {r["id"]: r for r in second.rejected.to_pylist()}
    assert rows[exact_again.id]["reason"] == "seen_in_queue"
    assert rows[exact_again.id]["detail"] == f"{exact_again.id} (queue) score=1.000"
    assert rows[near_release.id]["reason"] == "seen_in_release"
    assert rows[near_release.id]["detail"].startswith(
        f"{released.column('id')[0].as_py()} (release:v3) score=0.9"
    )


def test_index_settings_must_match(tmp_path: Path) -> None:
    index = DedupIndex(tmp_path / "idx", DedupConfig(bands=8, rows=2))
    index.add(samples_to_table(_batch(ANSWERS)), origin="queue")
    assert DedupIndex(tmp_path / "idx").cfg.bands == 8  # reopened with the stored settings
    with pytest.raises(ValueError, match="bands: index has 8, config has 24"):
        DedupIndex(tmp_path / "idx", DedupConfig())
    with pytest.raises(ValueError, match="does not match"):
        dedup_table(samples_to_table(_batch(ANSWERS)), DedupConfig(), index)


def test_index_bad_manifest_and_origin(tmp_path: Path) -> None:
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"manifest\.json:1: malformed JSON"):
        DedupIndex(tmp_path / "idx")
    with pytest.raises(ValueError, match="origin"):
        DedupIndex(tmp_path / "other").add(samples_to_table(_batch(ANSWERS)), origin="")


def test_lineage_holds_against_the_index(tmp_path: Path) -> None:
    index = DedupIndex(tmp_path / "idx")
    parent = _batch(ANSWERS[:1])[0]
    index.add(samples_to_table([parent]), origin="queue")
    child = Sample(
        instruction=parent.instruction,
        input=parent.input,
        output=parent.output.replace("五克", "6克"),
        provenance={"parent_id": parent.id},
    )
    stranger = Sample(
        instruction=parent.instruction, input=parent.input, output=parent.output.replace("并记录", "和记录")
    )
    other_dose = Sample(
        instruction=parent.instruction, input=parent.input, output=parent.output.replace("五克", "七克")
    )
    result = dedup_table(samples_to_table([child, stranger, other_dose]), index=index)
    # the child is kept although its cluster is kept by its queued parent; the stranger is not new;
    # one character away but another dose (七克, not 五克) is another sample, against the index too
    assert result.kept.column("id").to_pylist() == [child.id, other_dose.id]
    assert result.stats.extra["facts_differ"] >= 1
    one_char = 1 - 1 / len(compare_text(parent.instruction, parent.input, parent.output))
    assert result.rejected.select(["id", "reason", "detail"]).to_pylist() == [
        {"id": stranger.id, "reason": "seen_in_queue", "detail": f"{parent.id} (queue) score={one_char:.3f}"}
    ]


def test_index_written_before_surface_noise_keeps_its_settings(tmp_path: Path) -> None:
    """An index from before the question's surface noise was stripped keeps comparing without it."""
    import json

    index = DedupIndex(tmp_path / "idx")
    index.add(samples_to_table(_batch(ANSWERS)), origin="queue")
    manifest_path = tmp_path / "idx" / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["params"]["surface"] is True
    del manifest["params"]["surface"]
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    assert DedupIndex(tmp_path / "idx").cfg.surface is False
    with pytest.raises(ValueError, match="surface: index has False, config has True"):
        DedupIndex(tmp_path / "idx", DedupConfig())
