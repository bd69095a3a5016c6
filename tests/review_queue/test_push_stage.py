"""The queue push as a Stage run by the runner: refused rows are rejects with their reason, and
the stage runs again on every attempt (its effect lives in the queue, not in the run folder)."""

from __future__ import annotations

from queue_samples import make_samples

from medaug.run import RunFolder
from medaug.runner import Runner, read_rejects, read_stage
from medaug.schema import samples_to_table
from review_queue.push_stage import QueuePushStage
from review_queue.store import QueueStore


def test_push_stage_records_refusals_and_reruns_idempotently(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'q' / 'queue.db'}"  # the parent folder does not exist yet
    good, raw = make_samples(12), make_samples(2, prefix="未脱敏", deid=False)
    table = samples_to_table(good + raw)
    folder = RunFolder(tmp_path / "runs", "r1").prepare()
    logs: list[str] = []

    def run() -> list:
        stage = QueuePushStage(url, run_id="r1", log=logs.append)
        return Runner(folder, [stage], log=lambda m: None).run(table).stats

    first = run()[0]
    assert (first.rows_out, first.extra["inserted"], first.extra["already_queued"]) == (12, 12, 0)
    rejected = read_rejects(folder, QueuePushStage)
    assert sorted(rejected.column("id").to_pylist()) == sorted(s.id for s in raw)
    assert all("deid" in d for d in rejected.column("detail").to_pylist())
    assert rejected.column("sample").null_count == 0  # the refused sample itself is kept
    assert set(read_stage(folder, "pushed").column("id").to_pylist()) == {s.id for s in good}

    again = run()[0]  # done marker present: the push still runs, and queues nothing twice
    assert (again.extra["inserted"], again.extra["already_queued"]) == (0, 12)
    assert logs[-1].startswith("[push] 0 queued, 12 already queued, 2 refused")
    store = QueueStore.open(url)
    try:
        assert store.stats()["items"] == {"open": 12}
    finally:
        store.close()


def test_push_disabled_queues_nothing(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    folder = RunFolder(tmp_path / "runs", "r2").prepare()
    st = (
        Runner(folder, [QueuePushStage(url, enabled=False, run_id="r2")], log=lambda m: None)
        .run(samples_to_table(make_samples(3)))
        .stats[0]
    )
    assert st.extra["skipped"] == "queue.push is false" and st.rows_out == 0
    assert not (tmp_path / "queue.db").exists()
