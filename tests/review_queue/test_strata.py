"""Strata: a mostly-rejected stratum is held after the configured decisions while another keeps flowing;
the pull order (test models last, unmet quotas first, then oldest); time accounting per reviewer and stratum."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from queue_samples import make_samples
from typer.testing import CliRunner

from medaug.cli import app
from medaug.schema import AugmentationStep, Sample
from review_queue.decisions import Decision
from review_queue.store import QueueStore
from review_queue.strata import HoldPolicy, PullOrder, stratum_of, wilson

APPROVE = Decision(decision="approve")
REJECT = Decision(decision="reject", reject_reason="low_quality")


def _from(samples: list[Sample], augmenter: str, model: str | None = None) -> list[Sample]:
    """The same samples as if `augmenter` (with `model`) had made them."""
    out = []
    for s in samples:
        prov = s.provenance.model_copy(
            update={"augmentation": [AugmentationStep(augmenter=augmenter)], "model": model}
        )
        out.append(s.model_copy(update={"provenance": prov, "id": f"{augmenter}-{s.id[:20]}"}))
    return out


def _statuses(store: QueueStore, stratum: str) -> dict[str, int]:
    return next(r["items"] for r in store.strata_report() if r["stratum"] == stratum)


def test_wilson_bounds() -> None:
    lo, hi = wilson(2, 10)
    assert 0.05 < lo < 0.06 and 0.50 < hi < 0.52  # 2/10 approved: the true rate is below 52 % at 95 %
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(10, 10)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="threshold"):
        HoldPolicy(threshold=0.0)


def test_a_mostly_rejected_stratum_is_held_and_another_keeps_flowing(store: QueueStore) -> None:
    store.hold = HoldPolicy(threshold=0.6, min_decisions=10)
    bad = _from(make_samples(30, prefix="坏"), "bad_augmenter")
    good = _from(make_samples(30, prefix="好"), "good_augmenter")
    store.push(bad + good, run_id="r1")
    bad_key, good_key = stratum_of(bad[0]).key, stratum_of(good[0]).key
    assert len({stratum_of(s).key for s in bad}) == 2  # every fifth sample is a negative: its own stratum
    decided = {bad_key: 0, good_key: 0}
    held_after = None
    while True:
        got = store.pull("ann", 6)
        if not got:
            break
        for item in got:
            key = stratum_of(item.sample).key
            if key not in decided:  # the negatives: a stratum of their own, approved
                store.submit("ann", item.id, APPROVE)
                continue
            n = decided[key]
            reject = n % 5 != 0 if key == bad_key else n % 10 == 9  # bad: 80 % rejected, good: 10 %
            store.submit("ann", item.id, REJECT if reject else APPROVE)
            decided[key] += 1
            if held_after is None and _statuses(store, bad_key).get("held"):
                held_after = decided[bad_key]
    report = {r["stratum"]: r for r in store.strata_report()}
    assert held_after == 10  # held at the configured number of decisions, not before
    assert report[bad_key]["held"] and report[bad_key]["hold_detail"]["decisions"] == 10
    assert report[bad_key]["hold_detail"]["upper"] < 0.6
    assert decided[bad_key] < 10 + 6  # at most the rest of the batch in hand when it was held
    assert report[bad_key]["held_items"] == 24  # its 24 positives: unreviewed or awaiting a second review
    assert (
        decided[good_key] == 24 and not report[good_key]["held"]
    )  # the good stratum was reviewed to the end
    assert report[bad_key]["items"].get("open", 0) == 0  # nothing of it is left for reviewers

    # A later push into the held stratum is held on arrival; the maintainer releases it (audited).
    late = _from(make_samples(2, prefix="坏", start=100), "bad_augmenter")
    store.push(late, run_id="r2")
    assert all(s == "held" for s in _item_status(store, [late[0].id]).values())
    n_held = _statuses(store, bad_key)["held"]
    assert store.release_stratum(bad_key, actor="mia") == n_held
    assert _statuses(store, bad_key).get("held", 0) == 0
    rows = [json.loads(line) for line in _audit(store)]
    holds = [r for r in rows if r["action"] == "hold" and r["item_id"] is None]
    assert len(holds) == 1 and holds[0]["after"]["stratum"] == bad_key
    assert any(r["action"] == "unhold" and r["actor"] == "mia" for r in rows)
    assert store.audit_verify().ok
    # Judged afresh after the release: one more rejection does not hold it again at once.
    item = next(i for i in store.pull("bob", 10) if stratum_of(i.sample).key == bad_key)
    store.submit("bob", item.id, REJECT)
    assert not next(r for r in store.strata_report() if r["stratum"] == bad_key)["held"]


def _item_status(store: QueueStore, ids: list[str]) -> dict[str, str]:
    import sqlalchemy as sa

    from review_queue.db import items

    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(items.c.id, items.c.status).where(items.c.id.in_(ids))).all())


def _audit(store: QueueStore) -> list[str]:
    import io

    buf = io.StringIO()
    store.audit_export(buf, actor="test")
    return buf.getvalue().splitlines()


def test_pull_order_test_models_last_quotas_first_then_oldest(store: QueueStore) -> None:
    t = [1000.0]
    store.clock = lambda: t[0]
    store.order = PullOrder(quotas={"area": {"oncology": 1}}, refresh_seconds=0)
    noise = _from(make_samples(2, prefix="噪"), "generate", model="var/models/medaug-test-tiny")
    store.push(noise, run_id="demo-generate", priority=5)  # first and with a higher priority, still last
    t[0] += 1
    cardio = make_samples(3, prefix="心")
    store.push(cardio, run_id="a")
    t[0] += 1
    onco = make_samples(2, prefix="瘤", area="oncology")
    store.push(onco, run_id="b")
    got = [i.id for i in store.pull("ann", 2)]
    assert set(got) == {s.id for s in onco}  # the unmet quota first, though pushed last
    for i in got:
        store.submit("ann", i, APPROVE)
    first = store.pull("bob", 1)[0]
    assert first.id in got  # still unmet (not final yet): bob gives the second review
    store.submit("bob", first.id, APPROVE)  # oncology now has one approved item: its quota is met
    rest = [i.id for i in store.pull("bob", 10)]
    assert set(rest[:-2]) == ({s.id for s in onco} - {first.id}) | {s.id for s in cardio}
    assert set(rest[-2:]) == {s.id for s in noise}  # test-model output after everything else


def test_quota_order_is_oldest_first_once_quotas_are_met(store: QueueStore) -> None:
    t = [1000.0]
    store.clock = lambda: t[0]
    store.order = PullOrder(quotas={"label": {"negative": 0}}, refresh_seconds=0)
    samples = make_samples(5)
    for s in samples:
        store.push([s], run_id="x")
        t[0] += 1
    assert [i.id for i in store.pull("ann", 5)] == [s.id for s in samples]  # met quotas: oldest first


def test_time_per_decision_and_minutes_per_approved_sample(store: QueueStore) -> None:
    t = [100.0]  # (a lease started at 0.0 would read as none)
    store.clock = lambda: t[0]
    store.lease_seconds = 3600.0
    a = _from(make_samples(3, prefix="甲"), "aug_a")
    store.push(a, run_id="r")
    got = store.pull("ann", 3)
    for at, item in zip((130.0, 150.0, 1100.0), got, strict=True):
        t[0] = at
        store.submit("ann", item.id, APPROVE)  # 30 s, 20 s, then 950 s away: counted as 300 s
    t[0] = 2000.0
    got = store.pull("bob", 3)
    for k, item in enumerate(got):
        t[0] = 2010.0 + 10 * k
        store.submit("bob", item.id, APPROVE if k < 2 else REJECT)
    tm = store.stats()["time"]
    by = {r["reviewer"]: r for r in tm["reviewers"]}
    assert by["ann"]["decisions"] == 3 and by["ann"]["mean_seconds"] == pytest.approx(350 / 3, abs=0.1)
    assert by["bob"]["mean_seconds"] == pytest.approx(10.0)
    # two items approved by both; the third went to arbitration (not approved): 380 s of review for 2
    assert tm["approved_items"] == 2 and tm["minutes_per_approved"] == pytest.approx(380 / 60 / 2, abs=1e-3)
    key = stratum_of(a[0]).key
    assert tm["strata"][key]["decisions"] == 6 and tm["strata"][key]["minutes"] == pytest.approx(
        380 / 60, abs=1e-3
    )
    assert next(r for r in store.strata_report() if r["stratum"] == key)[
        "minutes_per_approved"
    ] == pytest.approx(380 / 60 / 2, abs=1e-3)


def test_queue_strata_command_lists_and_releases(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'q.db'}"
    store = QueueStore.open(db, hold=HoldPolicy(threshold=0.9, min_decisions=3))
    bad = _from(make_samples(8, prefix="坏"), "junk_aug")
    store.push(bad, run_id="r")
    for item in store.pull("ann", 3):
        store.submit("ann", item.id, REJECT)
    key = stratum_of(bad[0]).key
    store.close()
    runner = CliRunner()
    res = runner.invoke(app, ["queue", "strata", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    rows = {json.loads(line)["stratum"]: json.loads(line) for line in res.output.splitlines()}
    assert rows[key]["held"] and rows[key]["held_items"] > 0 and rows[key]["decisions"] == 3
    res = runner.invoke(app, ["queue", "strata", "--db", db, "--release", key, "--actor", "mia"])
    assert res.exit_code == 0, res.output
    assert f"released {key}" in res.output and "HELD" not in res.output
    res = runner.invoke(app, ["queue", "strata", "--db", db, "--release", key])
    assert res.exit_code == 1 and "is not held" in res.output


def test_demo_model_and_folders_marked_as_test_models_are_pulled_last(
    store: QueueStore, tmp_path: Path
) -> None:
    import yaml

    from review_queue.strata import is_test_model

    demo = yaml.safe_load((Path(__file__).parents[2] / "configs" / "demo.yaml").read_text(encoding="utf-8"))
    assert is_test_model(demo["llm"]["engine"]["model"])  # the demo's samples carry the mark wherever they go
    marked, real = tmp_path / "my-tiny", tmp_path / "my-real"
    for folder, cfg in ((marked, {"medaug_test_model": True}), (real, {"model_type": "qwen2"})):
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    assert is_test_model(str(marked))  # a config.json as the tiny builder writes it
    assert not is_test_model(str(real))
    assert not is_test_model("Qwen/Qwen2.5-7B-Instruct") and not is_test_model(None)
    noise = _from(make_samples(2, prefix="噪"), "generate", model=str(marked))
    seeds = _from(make_samples(3, prefix="种"), "lexicon_paraphrase", model=str(real))
    store.push(noise, run_id="demo", priority=5)
    store.push(seeds, run_id="seeds")
    got = [i.id for i in store.pull("ann", 5)]
    assert set(got[:3]) == {s.id for s in seeds} and set(got[3:]) == {s.id for s in noise}
