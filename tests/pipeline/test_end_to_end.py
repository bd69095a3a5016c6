"""Data in to dataset out: augment real data → queue → physicians over the real HTTP API → merge → export → load.

Simulated reviewers work through the queue service exactly as the web page does (pull, submit,
arbitrate with bearer tokens); merge and export run through the `medaug` CLI; each export is loaded
by the library that consumes it.
"""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

from jobs.augment import AugmentJobConfig, run_augment
from medaug.cli import app
from review_queue.store import QueueStore
from review_queue.versions import lineage_of, read_rows, version_dir

EDIT = "（经医师修订：请结合面诊结果。）"
APPROVE = {"decision": "approve"}
REJECT = {"decision": "reject", "reject_reason": "low_quality", "reject_text": "表述不清"}


def _correct(item: dict) -> dict:
    return {"decision": "correct", "output": item["sample"]["output"] + EDIT, "comment": "补充面诊提示"}


def _api(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _ok(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def world(shared_data, ray_local, tmp_path_factory, queue_service):
    tmp = tmp_path_factory.mktemp("e2e")
    db = f"sqlite:///{tmp / 'queue.db'}"
    cfg = AugmentJobConfig.model_validate(
        {
            "run": {"output_dir": str(tmp / "runs"), "run_id": "e2e", "seed": 5},
            "inputs": [str(shared_data / "medicalgpt_sft_sample" / "medical_sft_1K_format.jsonl")],
            "limit": 25,
            "augment": {"variants": 1, "refusals": 3, "seed": 5,
                        "negative_ratios": {"overclaiming": 0.5, "wrong_diagnosis": 0.3, "missing_referral": 0.3}},
            "curate": {"dedup_index": str(tmp / "index"), "queue": {"url": db}},
        }
    )  # fmt: skip
    run_augment(cfg, log=lambda m: None)
    store = QueueStore.open(db)
    roles = [("r1", "reviewer"), ("r2", "reviewer"), ("arb", "arbiter"), ("maint", "maintainer")]
    tokens = {name: store.add_user(name, role) for name, role in roles}
    store.close()
    svc = queue_service(db)
    r1, r2, arb = (_api(svc.url, tokens[n]) for n in ("r1", "r2", "arb"))

    # Reviewer 1 pulls everything and decides; then reviewer 2 gets the same items (one lease at a time),
    # blind: the item shows no earlier review.
    items1 = _ok(r1.post("/api/pull", json={"size": 500}))["items"]
    assert items1 and all(it["reviews"] == [] for it in items1)
    plan: dict[str, str] = {}
    kinds = ["agree_approve", "agree_correct", "agree_reject", "approve_vs_reject", "approve_vs_correct"]
    for i, it in enumerate(sorted(items1, key=lambda x: x["id"])):
        plan[it["id"]] = kinds[i % 5]
        first = {"agree_approve": APPROVE, "agree_correct": _correct(it), "agree_reject": REJECT}.get(
            plan[it["id"]], APPROVE
        )
        _ok(r1.post(f"/api/items/{it['id']}/submit", json=first))
    assert _ok(r1.post("/api/pull", json={"size": 500}))["items"] == []  # never the same item twice
    items2 = _ok(r2.post("/api/pull", json={"size": 500}))["items"]
    assert {it["id"] for it in items2} == set(plan) and all(it["reviews"] == [] for it in items2)
    for it in items2:
        kind = plan[it["id"]]
        second = {"agree_approve": APPROVE, "agree_correct": _correct(it), "agree_reject": REJECT,
                  "approve_vs_reject": REJECT, "approve_vs_correct": _correct(it)}[kind]  # fmt: skip
        _ok(r2.post(f"/api/items/{it['id']}/submit", json=second))
    disputed = _ok(arb.post("/api/arbitration/pull", json={"size": 500}))["items"]
    assert {d["id"] for d in disputed} == {k for k, v in plan.items() if v.startswith("approve_vs")}
    for d in disputed:
        assert len(d["reviews"]) == 2  # the arbiter sees both reviews side by side
        decision = APPROVE if plan[d["id"]] == "approve_vs_reject" else _correct(d)
        _ok(arb.post(f"/api/items/{d['id']}/arbitrate", json=decision))
    for c in (r1, r2, arb):
        c.close()
    return tmp, db, plan


def _cli(*args: str):
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res


def test_merge_takes_finalised_items_with_corrections_applied(world):
    tmp, db, plan = world
    root = str(tmp / "datasets")
    _cli("merge", "--dataset", "demo", "--db", db, "--root", root, "--by", "maint")
    vdir = version_dir(root, "demo", 1)
    rows = read_rows(vdir).to_pylist()
    manifest = json.loads((vdir / "manifest.json").read_text(encoding="utf-8"))
    expected = sum(1 for k in plan.values() if k != "agree_reject")
    assert (
        len(rows) == expected == manifest["counts"]["total"]
        if "total" in manifest["counts"]
        else len(rows) == expected
    )
    corrected = [r for r in rows if r["output"].endswith(EDIT)]
    assert len(corrected) == sum(1 for k in plan.values() if k in ("agree_correct", "approve_vs_correct"))
    assert any(r["label"] == "negative" and r["error_type"] for r in rows)  # negatives kept with their labels
    # lineage: any row → reviews, run, parent/template, augmentation chain
    for r in rows:
        lin = lineage_of(vdir, r["id"])
        assert lin["run_id"] == "e2e" and len(lin["reviews"]) == 2
        if r["provenance"]["parent_id"]:
            assert lin["augmentation"]
    # merging the same items again makes no new version
    res = CliRunner().invoke(app, ["merge", "--dataset", "demo", "--db", db, "--root", root])
    assert "nothing new" in res.output.lower()
    assert not version_dir(root, "demo", 1).parent.joinpath("v2").exists()


def _files(folder):
    """The data files an export wrote, from its export.json record."""
    record = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    return [folder / name for name in record["files"]]


def test_exports_load_with_their_consumers(world):
    import datasets

    tmp, db, _ = world
    root = str(tmp / "datasets")
    if not (tmp / "datasets" / "demo" / "v1").exists():
        _cli("merge", "--dataset", "demo", "--db", db, "--root", root)
    n = read_rows(version_dir(root, "demo", 1)).num_rows
    out = tmp / "exports"

    _cli("export", "--dataset", "demo", "--format", "alpaca", "--root", root, "--out", str(out / "alpaca"))
    [alp] = _files(out / "alpaca")
    ds = datasets.load_dataset("json", data_files=str(alp), split="train")
    assert ds.num_rows == n and set(ds.column_names) >= {"instruction", "input", "output"}

    _cli(
        "export", "--dataset", "demo", "--format", "sharegpt", "--root", root, "--out", str(out / "sharegpt")
    )
    [sg] = _files(out / "sharegpt")
    ds = datasets.load_dataset("json", data_files=str(sg), split="train")
    assert ds.num_rows == n and ds[0]["conversations"][0]["from"] == "human"

    _cli("export", "--dataset", "demo", "--format", "hf", "--root", root, "--out", str(out / "hf"))
    ds = datasets.load_dataset("parquet", data_dir=str(out / "hf"), split="train")
    assert ds.num_rows == n

    _cli("export", "--dataset", "demo", "--format", "llamafactory", "--split", "preference", "--root", root,
         "--out", str(out / "lf"))  # fmt: skip
    info = json.loads((out / "lf" / "dataset_info.json").read_text(encoding="utf-8"))
    ranking = [e for e in info.values() if e.get("ranking")]
    assert ranking, "negatives become a preference dataset"
    for entry in info.values():
        path = out / "lf" / entry["file_name"]
        assert path.exists()
        ds = datasets.load_dataset("json", data_files=str(path), split="train")
        for col in entry.get("columns", {}).values():
            assert col in ds.column_names
    pref = next(e for e in ranking)
    rows = datasets.load_dataset("json", data_files=str(out / "lf" / pref["file_name"]), split="train")
    chosen, rejected = pref["columns"]["chosen"], pref["columns"]["rejected"]
    assert all(r[chosen] != r[rejected] for r in rows)
    assert (out / "lf").glob("*.md") and any(
        p.suffix == ".md" for p in (out / "lf").iterdir()
    )  # the datasheet
