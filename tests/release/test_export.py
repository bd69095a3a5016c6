"""Exports loaded back with the libraries that consume them; datasheets beside each."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import yaml
from llamafactory_rules import check_dataset_dir
from release_queue import Queue, fill_queue

from medaug.alpaca import CRITIQUE_INSTRUCTION
from review_queue import versions
from review_queue.export import export_version
from review_queue.release import merge_from_store
from review_queue.store import QueueStore
from review_queue.versions import ReleaseError

datasets.disable_progress_bars()


@pytest.fixture
def released(queue: Queue, tmp_path: Path) -> tuple[Queue, Path]:
    root = tmp_path / "ds"
    merge_from_store(queue.store, root=root, dataset="cardio", created_by="m")
    return queue, root


def _rows(root: Path) -> dict[str, dict]:
    return {r["id"]: r for r in versions.read_rows(versions.version_dir(root, "cardio")).to_pylist()}


def _check_datasheet(folder: Path, rows: int) -> None:
    text = (folder / "DATASHEET.md").read_text(encoding="utf-8")
    assert (
        f"Rows: {rows}" in text and "agreement rate: 0.7778" in text and "| cardiovascular (心血管) |" in text
    )
    for png in ("balance.png", "demographics.png"):
        data = (folder / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    record = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    assert all(len(h) == 64 for h in record["sha256"].values())


def test_alpaca_json_loads_with_datasets(released: tuple[Queue, Path]) -> None:
    q, root = released
    res = export_version(root, "cardio", 1, "alpaca")
    assert res.path == root / "cardio" / "v1" / "exports" / "alpaca"
    ds = datasets.load_dataset("json", data_files=str(res.path / "cardio_v1.json"), split="train")
    stored = _rows(root)
    assert sorted(ds["id"]) == sorted(stored)
    for row in ds:
        s = stored[row["id"]]
        if s["label"] == "negative":  # never a wrong answer to imitate: a critique of it
            assert row["instruction"] == CRITIQUE_INSTRUCTION
            assert s["output"] in row["input"] and s["instruction"] in row["input"]
            assert row["output"].startswith("此回答不正确。错误类型：")
            continue
        assert (row["instruction"], row["input"], row["output"], row["label"]) == (
            s["instruction"],
            s["input"],
            s["output"],
            s["label"],
        )
    neg = next(r for r in ds if r["label"] == "negative" and r["error_type"] == "wrong_drug")
    assert neg["reference_output"] == q.samples["negative"].reference_output
    assert "用药错误" in neg["output"] and neg["output"].endswith(q.samples["negative"].reference_output)
    _check_datasheet(res.path, 8)


def test_sharegpt_jsonl_split_by_label(released: tuple[Queue, Path]) -> None:
    _, root = released
    res = export_version(root, "cardio", None, "sharegpt", split="label")
    assert res.files == {
        "cardio_v1_positive.jsonl": 5,
        "cardio_v1_refusal.jsonl": 1,
        "cardio_v1_negative.jsonl": 2,
    }
    stored = _rows(root)
    for fname, n in res.files.items():
        ds = datasets.load_dataset("json", data_files=str(res.path / fname), split="train")
        assert len(ds) == n and set(ds["label"]) == {fname.split("_")[-1].removesuffix(".jsonl")}
        for row in ds:
            s = stored[row["id"]]
            human, gpt = row["conversations"]
            if s["label"] == "negative":
                assert human["value"].startswith(CRITIQUE_INSTRUCTION) and s["output"] in human["value"]
                assert gpt["from"] == "gpt" and gpt["value"].startswith("此回答不正确")
                continue
            assert human["from"] == "human" and human["value"].startswith(s["instruction"])
            assert gpt == {"from": "gpt", "value": s["output"]}


@pytest.mark.parametrize("style", ["alpaca", "sharegpt"])
def test_llamafactory_folder_follows_its_rules(released: tuple[Queue, Path], style: str) -> None:
    q, root = released
    res = export_version(root, "cardio", 1, "llamafactory", split="preference", style=style)
    loaded = check_dataset_dir(res.path)
    assert set(loaded) == {"cardio_v1_sft", "cardio_v1_preference"}
    assert len(loaded["cardio_v1_sft"]) == 6  # positives and refusals only
    (pair,) = loaded["cardio_v1_preference"]
    neg = q.samples["negative"]
    chosen, rejected = pair["chosen"], pair["rejected"]
    if style == "sharegpt":
        chosen, rejected = chosen["value"], rejected["value"]
    assert (chosen, rejected) == (neg.reference_output, neg.output)
    assert res.negatives_without_reference == 1
    assert "1 negative rows have no reference output" in (res.path / "DATASHEET.md").read_text(
        encoding="utf-8"
    )
    info = json.loads((res.path / "dataset_info.json").read_text(encoding="utf-8"))
    assert info["cardio_v1_preference"]["ranking"] is True


def test_hf_folders_load_with_load_dataset(released: tuple[Queue, Path]) -> None:
    _, root = released
    plain = export_version(root, "cardio", 1, "hf")
    ds = datasets.load_dataset("parquet", data_dir=str(plain.path))
    assert list(ds) == ["train"] and sorted(ds["train"]["id"]) == sorted(_rows(root))
    by_label = export_version(root, "cardio", 1, "hf", split="label")
    ds = datasets.load_dataset("parquet", data_dir=str(by_label.path))
    assert {k: len(v) for k, v in ds.items()} == {"positive": 5, "negative": 2, "refusal": 1}
    assert ds["negative"][0]["verdict"] == "此回答不正确"
    pref = export_version(root, "cardio", 1, "hf", split="preference")
    pairs = datasets.load_dataset("parquet", data_dir=str(pref.path / "preference"), split="train")
    assert len(pairs) == 1 and set(pairs.column_names) >= {"instruction", "chosen", "rejected"}
    sft = datasets.load_dataset("parquet", data_dir=str(pref.path / "sft"), split="train")
    assert set(sft["label"]) == {"positive", "refusal"}
    # the version folder itself is load_dataset-ready too
    whole = datasets.load_dataset("parquet", data_dir=str(root / "cardio" / "v1" / "data"), split="train")
    assert len(whole) == 8


def test_export_of_a_later_version_holds_everything_released(released: tuple[Queue, Path]) -> None:
    q, root = released
    fill_queue(q.store, "乙")
    merge_from_store(q.store, root=root, dataset="cardio", created_by="m")
    res = export_version(root, "cardio", 2, "alpaca", out=root.parent / "out")
    rows = json.loads((res.path / "cardio_v2.json").read_text(encoding="utf-8"))
    tags = {
        (r["input"].removeprefix("问题：") if r["label"] == "negative" else r["instruction"])[0] for r in rows
    }
    assert len(rows) == 16 and tags == {"甲", "乙"}
    _check_datasheet(res.path, 16)
    again = export_version(root, "cardio", 2, "alpaca", out=root.parent / "out")  # replaces, never mixes
    assert sorted(p.name for p in again.path.iterdir()) == sorted(
        ["cardio_v2.json", "DATASHEET.md", "balance.png", "demographics.png", "export.json"]
    )


def test_bad_export_requests_are_named(released: tuple[Queue, Path]) -> None:
    _, root = released
    with pytest.raises(ReleaseError, match="--format must be one of"):
        export_version(root, "cardio", 1, "csv")
    with pytest.raises(ReleaseError, match="--split must be one of"):
        export_version(root, "cardio", 1, "hf", split="area")
    with pytest.raises(ReleaseError, match="no version 3"):
        export_version(root, "cardio", 3, "hf")


def test_llamafactory_rules_catch_a_broken_entry(released: tuple[Queue, Path]) -> None:
    _, root = released
    res = export_version(root, "cardio", 1, "llamafactory", split="preference", style="sharegpt")
    info_path = res.path / "dataset_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info["cardio_v1_preference"].pop("ranking")  # pairs read as SFT: the prompt would end with the user
    info_path.write_text(json.dumps(info), encoding="utf-8")
    with pytest.raises(AssertionError, match="an SFT conversation ends with the assistant"):
        check_dataset_dir(res.path)


def test_llamafactory_exports_of_other_splits_keep_each_others_entries(released: tuple[Queue, Path]) -> None:
    _, root = released
    plain = export_version(root, "cardio", 1, "llamafactory")
    assert json.loads((plain.path / "dataset_info.json").read_text(encoding="utf-8")).keys() == {"cardio_v1"}
    assert plain.training_configs == ["train_lora.yaml"]  # no pairs: no DPO config
    pref = export_version(root, "cardio", 1, "llamafactory", split="preference", base_model="/models/qwen")
    assert pref.path == plain.path and pref.kept == {"cardio_v1.json": 8}
    loaded = check_dataset_dir(pref.path)  # every entry loads, old and new
    assert {k: len(v) for k, v in loaded.items()} == {
        "cardio_v1": 8,
        "cardio_v1_sft": 6,
        "cardio_v1_preference": 1,
    }
    assert pref.training_configs == ["train_lora.yaml", "train_dpo.yaml"]
    sft = yaml.safe_load((pref.path / "train_lora.yaml").read_text(encoding="utf-8"))
    dpo = yaml.safe_load((pref.path / "train_dpo.yaml").read_text(encoding="utf-8"))
    assert (sft["dataset"], sft["stage"], dpo["dataset"], dpo["stage"]) == (
        "cardio_v1_sft",
        "sft",
        "cardio_v1_preference",
        "dpo",
    )
    assert sft["model_name_or_path"] == dpo["model_name_or_path"] == "/models/qwen"
    assert (sft["lora_rank"], sft["lora_alpha"], sft["lora_dropout"], sft["lora_target"]) == (
        8,
        16,
        0.1,
        "q_proj,v_proj",
    )
    assert isinstance(dpo["learning_rate"], float) and Path(sft["dataset_dir"]) == pref.path.resolve()
    record = json.loads((pref.path / "export.json").read_text(encoding="utf-8"))
    assert set(record["sha256"]) >= {
        "cardio_v1.json",
        "cardio_v1_sft.json",
        "train_lora.yaml",
        "train_dpo.yaml",
    }
    assert "cardio_v1.json (earlier export, split kept) | 8" in (pref.path / "DATASHEET.md").read_text(
        encoding="utf-8"
    )
    # the same split again, in the other style: its entries are replaced (no stale .json beside the .jsonl)
    again = export_version(root, "cardio", 1, "llamafactory", style="sharegpt")
    names = sorted(p.name for p in again.path.iterdir() if p.suffix in (".json", ".jsonl"))
    assert names == [
        "cardio_v1.jsonl",
        "cardio_v1_preference.json",
        "cardio_v1_sft.json",
        "dataset_info.json",
        "export.json",
    ]
    assert {k: len(v) for k, v in check_dataset_dir(again.path).items()} == {
        "cardio_v1": 8,
        "cardio_v1_sft": 6,
        "cardio_v1_preference": 1,
    }
    assert (
        yaml.safe_load((again.path / "train_lora.yaml").read_text(encoding="utf-8"))["dataset"] == "cardio_v1"
    )


def test_llamafactory_merge_refuses_a_broken_dataset_info(released: tuple[Queue, Path]) -> None:
    _, root = released
    res = export_version(root, "cardio", 1, "llamafactory")
    (res.path / "dataset_info.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ReleaseError, match=r"dataset_info.json: cannot merge into it, not valid JSON"):
        export_version(root, "cardio", 1, "llamafactory", split="preference")
    (res.path / "dataset_info.json").write_text(
        json.dumps({"x": {"file_name": "../../manifest.json"}}), encoding="utf-8"
    )
    with pytest.raises(ReleaseError, match=r"entry 'x': file_name must be a file in this folder"):
        export_version(root, "cardio", 1, "llamafactory", split="preference")
    assert (res.path / "cardio_v1.json").is_file()  # a refused export leaves the folder as it was


def test_datasheet_gives_physician_minutes_per_approved_sample(
    sqlite_store: QueueStore, tmp_path: Path
) -> None:
    from release_queue import APPROVE, REJECT, correct, make_samples

    store = sqlite_store
    t = [100.0]
    store.clock = lambda: t[0]
    samples = make_samples("丙")
    order = ["approve", "reject", "correct"]
    store.push([samples[n] for n in order], run_id="run-丙")
    name_of = {samples[n].id: n for n in order}
    fix = correct("丙：修正后的回答。")
    for who, lease_at, submits in (
        ("r1", 100.0, (130.0, 150.0, 170.0)),
        ("r2", 200.0, (210.0, 220.0, 230.0)),
    ):
        t[0] = lease_at
        leased = sorted(store.pull(who, size=10), key=lambda it: order.index(name_of[it.id]))
        for it, at in zip(leased, submits, strict=True):
            t[0] = at
            name = name_of[it.id]
            store.submit(who, it.id, APPROVE if name == "approve" else REJECT if name == "reject" else fix)
    root = tmp_path / "ds"
    merge_from_store(store, root=root, dataset="cardio", created_by="m")
    tm = versions.read_manifest(versions.version_dir(root, "cardio"))["review"]["time"]
    # r1: 30 + 20 + 20 s, r2: 10 + 10 + 10 s = 100 s on three items, two of them approved (the rejected
    # item's review time counts too: it is part of what the approved samples cost)
    assert tm["approved_items"] == 2 and tm["total_minutes"] == pytest.approx(100 / 60, abs=1e-3)
    assert tm["minutes_per_approved"] == pytest.approx(100 / 60 / 2, abs=1e-3)
    res = export_version(root, "cardio", 1, "alpaca")
    text = (res.path / "DATASHEET.md").read_text(encoding="utf-8")
    assert "1.7 review minutes" in text and "**0.83 physician minutes per approved sample**" in text
