"""Merge: finalised queue items → immutable versions; dedup against earlier versions; racing merges; lineage."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from release_queue import Queue, correct, fill_queue

from medaug.schema import Sample
from review_queue import release, versions
from review_queue.release import NothingToMerge, merge_from_store
from review_queue.store import QueueStore
from review_queue.versions import ReleaseError, lineage_of, read_rows, verify

REPO = Path(__file__).resolve().parents[2]


def _by_name(q: Queue, root: Path) -> dict[str, dict]:
    """Released rows keyed by the name of the queue sample they came from (via lineage item ids)."""
    name_of = {s.id: n for n, s in q.samples.items()}
    v = versions.version_dir(root, "cardio")
    lin = {
        r["sample_id"]: r["item_id"]
        for r in versions.read_lineage(v).to_pylist()
        if r["status"] == "released"
    }
    return {name_of[lin[r["id"]]]: r for r in read_rows(v).to_pylist()}


def test_merge_releases_final_items_with_corrections_applied(queue: Queue, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    res = merge_from_store(queue.store, root=root, dataset="cardio", created_by="maint")
    assert (res.version, res.parent, res.added, res.total) == (1, None, 8, 8)
    rows = _by_name(queue, root)
    assert "reject" not in rows and set(rows) == set(queue.samples) - {"reject"}
    assert rows["correct"]["output"] == "甲：修正后的回答。"
    assert rows["correct"]["id"] != queue.samples["correct"].id  # corrected content has its own id
    assert rows["disputed_fix"]["output"] == "甲：仲裁定稿。" and rows["disputed_fix"]["icd10"] == ["O14.1"]
    assert rows["disputed"]["output"] == queue.samples["disputed"].output
    neg = rows["negative"]
    assert (neg["label"], neg["error_type"], neg["verdict"]) == ("negative", "wrong_drug", "此回答不正确")
    assert neg["reference_output"] == queue.samples["negative"].reference_output

    m = versions.read_manifest(res.path)
    assert m["counts"]["label"] == {"negative": 2, "positive": 5, "refusal": 1}
    assert m["counts"]["area"]["cardiovascular"] == 4 and m["counts"]["error_type"]["wrong_drug"] == 1
    assert m["skipped"] == {"rejected": 1}
    r = m["review"]
    assert (r["items"], r["double_reviewed"], r["agreed"], r["arbitrated"]) == (9, 9, 7, 2)
    assert r["agreement_rate"] == round(7 / 9, 4) and r["arbitrations_by_arbiter"] == {"a1": 2}
    assert r["outcomes"] == {"approved": 6, "corrected": 2, "rejected": 1}
    assert m["runs"] == {"run-甲": 8} and m["templates"]["tpl-approve"] == 2
    assert m["created_by"] == "maint" and m["parent_version"] is None
    assert verify(res.path) == []
    for name in m["files"]:
        assert not os.access(res.path / name, os.W_OK) or os.geteuid() == 0
        assert pq.read_metadata(res.path / name).num_rows == m["files"][name]["rows"]


def test_merge_is_audited_in_the_queue_log(queue: Queue, tmp_path: Path) -> None:
    merge_from_store(queue.store, root=tmp_path / "ds", dataset="cardio", created_by="maint")
    out = io.StringIO()
    queue.store.audit_export(out, actor="maint")
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    merges = [e for e in events if e["action"] == "merge"]
    assert len(merges) == 1 and merges[0]["actor"] == "maint"
    assert merges[0]["after"]["version"] == 1 and merges[0]["after"]["added"] == 8
    assert queue.store.audit_verify().ok


def test_merging_again_adds_nothing_and_writes_no_version(queue: Queue, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    merge_from_store(queue.store, root=root, dataset="cardio", created_by="m")
    with pytest.raises(NothingToMerge, match="nothing new to merge.*already_released: 9"):
        merge_from_store(queue.store, root=root, dataset="cardio", created_by="m")
    assert versions.versions(root, "cardio") == [1]
    assert not [p for p in (root / "cardio").iterdir() if p.name.startswith(".tmp")]


def test_next_version_holds_parent_rows_and_diffs_against_it(queue: Queue, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    v1 = merge_from_store(queue.store, root=root, dataset="cardio", created_by="m")
    fill_queue(queue.store, "乙")
    v2 = merge_from_store(queue.store, root=root, dataset="cardio", created_by="m")
    assert (v2.version, v2.parent, v2.added, v2.total, dict(v2.skipped)) == (
        2,
        1,
        8,
        16,
        {"already_released": 9, "rejected": 1},
    )
    old, new = read_rows(v1.path), read_rows(v2.path)
    assert set(old.column("id").to_pylist()) < set(new.column("id").to_pylist())
    assert new.num_rows == len(set(new.column("id").to_pylist()))
    # the parent's shard is shared, not copied
    shard = "data/shard-00000.parquet"
    assert (v1.path / shard).stat().st_ino == (v2.path / shard).stat().st_ino
    m2 = versions.read_manifest(v2.path)
    assert m2["files"][shard]["version"] == 1 and m2["files"]["data/shard-00001.parquet"]["version"] == 2
    assert m2["counts"]["label"] == {"negative": 4, "positive": 10, "refusal": 2}
    assert m2["added_counts"]["label"] == {"negative": 2, "positive": 5, "refusal": 1}
    assert m2["review"]["items"] == 9 and m2["runs"] == {"run-乙": 8}

    d = versions.diff(root, "cardio", 2)
    assert d.parent == 1 and d.removed == []
    assert set(d.added) == set(new.column("id").to_pylist()) - set(old.column("id").to_pylist())
    assert d.counts["label"]["positive"] == {"parent": 5, "version": 10, "delta": 5}
    assert d.counts["area"]["cardiovascular"] == {"parent": 4, "version": 8, "delta": 4}
    assert "oncology" not in d.counts["area"]  # its only sample was rejected
    first = versions.diff(root, "cardio", 1)
    assert first.parent is None and len(first.added) == 8


def test_corrected_into_released_content_is_a_duplicate(queue: Queue, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    merge_from_store(queue.store, root=root, dataset="cardio", created_by="m")
    released = queue.samples["approve"]
    variant = released.model_copy(update={"id": "", "output": "甲：一个需要修改的回答。"})
    variant = Sample.model_validate(variant.model_dump())
    fresh = Sample(instruction="乙：全新的问题？", output="乙：全新的回答。", deid=[])
    queue.store.push([variant, fresh], run_id="run-dup")
    for who in ("r1", "r2"):
        for it in queue.store.pull(who, size=10):
            dec = correct(released.output) if it.id == variant.id else correct("乙：全新的回答，已核对。")
            queue.store.submit(who, it.id, dec)
    res = merge_from_store(queue.store, root=root, dataset="cardio", created_by="m")
    assert res.added == 1 and res.skipped["duplicate"] == 1
    lin = [r for r in versions.read_lineage(res.path).to_pylist() if r["version"] == 2]
    dup = next(r for r in lin if r["item_id"] == variant.id)
    assert dup["status"] == "duplicate" and dup["duplicate_of"] == released.id
    assert read_rows(res.path).num_rows == 9


def test_verify_reports_a_changed_file(queue: Queue, tmp_path: Path) -> None:
    res = merge_from_store(queue.store, root=tmp_path / "ds", dataset="cardio", created_by="m")
    shard = res.path / "data" / "shard-00000.parquet"
    shard.chmod(0o644)
    shard.write_bytes(shard.read_bytes()[:-10] + b"0123456789")
    (res.path / "data" / "stray.parquet").write_bytes(b"x")
    problems = verify(res.path)
    assert "data/shard-00000.parquet: sha256 differs from the manifest" in problems
    assert "data/stray.parquet: not in the manifest" in problems


def test_lineage_reaches_reviews_run_template_parent_and_augmentation(queue: Queue, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    res = merge_from_store(queue.store, root=root, dataset="cardio", created_by="m")
    rows = _by_name(queue, root)
    for name, row in rows.items():
        info = lineage_of(res.path, row["id"])
        assert info["queue_item"] == queue.samples[name].id
        assert info["run_id"] == "run-甲" and info["version"] == 1
        assert [r["reviewer"] for r in info["reviews"]] == ["r1", "r2"]
        assert info["template_id"] == queue.samples[name].provenance.template_id
    child = lineage_of(res.path, rows["child"]["id"])
    assert (
        child["parent_id"] == queue.samples["approve"].id and child["parent"]["id"] == rows["approve"]["id"]
    )
    assert [s["augmenter"] for s in child["augmentation"]] == ["lexicon_paraphrase"]
    fixed = lineage_of(res.path, rows["disputed_fix"]["id"])
    assert fixed["arbitration"]["reviewer"] == "a1" and fixed["arbitration"]["decision"] == "correct"
    assert fixed["augmentation"][-1]["augmenter"] == "physician_correction"
    assert json.loads(fixed["augmentation"][-1]["detail"])["by"] == ["r1", "r2", "a1"]
    assert lineage_of(res.path, rows["approve"]["id"])["arbitration"] is None
    with pytest.raises(ReleaseError, match="no released sample"):
        lineage_of(res.path, queue.samples["reject"].id)


def test_released_rows_enter_the_dedup_index(queue: Queue, tmp_path: Path) -> None:
    from curation.dedup import DedupIndex

    merge_from_store(
        queue.store, root=tmp_path / "ds", dataset="cardio", created_by="m", dedup_index=tmp_path / "index"
    )
    assert DedupIndex(tmp_path / "index").origins() == {"release:cardio:v1": 8}


def test_publish_lets_exactly_one_of_racing_threads_create_a_version(tmp_path: Path) -> None:
    target = tmp_path / "v1"
    tmps = []
    for i in range(8):
        t = tmp_path / f".tmp-{i}"
        t.mkdir()
        (t / "manifest.json").write_text(str(i))
        tmps.append(t)
    barrier = threading.Barrier(len(tmps))
    won: list[int] = []

    def go(i: int) -> None:
        barrier.wait()
        if release.publish(tmps[i], target):
            won.append(i)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(tmps))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and (target / "manifest.json").read_text() == str(won[0])


def test_a_merge_that_loses_the_race_retries_as_the_next_version(
    queue: Queue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The competing merge really runs (from another queue) between this merge's build and its publish."""
    root = tmp_path / "ds"
    other = QueueStore.open(f"sqlite:///{tmp_path / 'other.db'}")
    fill_queue(other, "乙")
    real_publish = release.publish
    calls = []

    def late_publish(tmp: Path, target: Path) -> bool:
        if not calls:
            monkeypatch.setattr(release, "publish", real_publish)
            merge_from_store(other, root=root, dataset="cardio", created_by="rival")
            monkeypatch.setattr(release, "publish", late_publish)
        calls.append(target.name)
        return real_publish(tmp, target)

    monkeypatch.setattr(release, "publish", late_publish)
    res = merge_from_store(queue.store, root=root, dataset="cardio", created_by="m")
    other.close()
    assert calls == ["v1", "v2"] and (res.version, res.parent, res.attempts) == (2, 1, 2)
    assert versions.read_manifest(root / "cardio" / "v1")["created_by"] == "rival"
    assert read_rows(res.path).num_rows == 16 and verify(res.path) == []


def test_two_merge_processes_racing(tmp_path: Path) -> None:
    """`python -m jobs.merge` twice at once: on two queues both land (v1, v2); on one queue only one does."""
    root = tmp_path / "ds"
    urls = []
    for tag in ("丙", "丁"):
        s = QueueStore.open(f"sqlite:///{tmp_path / tag}.db")
        fill_queue(s, tag)
        s.close()
        urls.append(f"sqlite:///{tmp_path / tag}.db")

    def race(dataset: str, dbs: list[str]) -> list[int]:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jobs.merge",
                    "--dataset",
                    dataset,
                    "--db",
                    db,
                    "--root",
                    str(root),
                    "--by",
                    f"m{i}",
                ],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i, db in enumerate(dbs)
        ]
        codes = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode in (0, 3), err
            codes.append(p.returncode)
        return sorted(codes)

    assert race("two", urls) == [0, 0]
    assert versions.versions(root, "two") == [1, 2]
    v2 = versions.version_dir(root, "two", 2)
    assert versions.read_manifest(v2)["parent_version"] == 1 and read_rows(v2).num_rows == 16

    assert race("one", [urls[0], urls[0]]) == [0, 3]
    assert versions.versions(root, "one") == [1] and read_rows(root / "one" / "v1").num_rows == 8


def test_bad_names_and_versions_are_named(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="dataset name"):
        versions.dataset_dir(tmp_path, "../x")
    with pytest.raises(ReleaseError, match="has no versions"):
        versions.version_dir(tmp_path, "cardio")
    (tmp_path / "cardio" / "v1").mkdir(parents=True)
    (tmp_path / "cardio" / "v1" / "manifest.json").write_text("{}")
    with pytest.raises(ReleaseError, match="no version 7 \\(have 1\\)"):
        versions.version_dir(tmp_path, "cardio", 7)
