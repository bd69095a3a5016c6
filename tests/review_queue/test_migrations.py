"""The Alembic migrations build exactly the tables that review_queue.db declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from review_queue.db import AUDIT_CHAINS, audit_head, metadata
from review_queue.store import QueueStore


def test_migrated_schema_matches_the_declared_tables(store: QueueStore) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"version_table": "queue_alembic_version"}), metadata
        )
        heads = conn.execute(audit_head.select().order_by(audit_head.c.id)).all()
    assert diff == []
    assert [h.id for h in heads] == list(range(1, AUDIT_CHAINS + 1)) and {h.seq for h in heads} == {0}


def test_0004_gives_existing_items_their_stratum_and_test_model_flag(tmp_path) -> None:
    """A queue database from before strata: after the upgrade every item has the stratum push would give it."""
    from importlib import resources

    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config
    from queue_samples import make_samples

    from medaug.schema import AugmentationStep
    from review_queue import audit
    from review_queue.db import items
    from review_queue.strata import stratum_of

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("review_queue") / "migrations"))
    cfg.attributes["audit_key"] = audit.key_for(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")  # the schema before strata
    a, b = make_samples(2)
    para = a.model_copy(
        update={
            "provenance": a.provenance.model_copy(
                update={
                    "augmentation": [AugmentationStep(augmenter="lexicon_paraphrase")],
                    "model": "/srv/models/qwen",
                }
            )
        }
    )
    noise = b.model_copy(
        update={
            "provenance": b.provenance.model_copy(
                update={"template_id": "qa-1", "model": "/srv/var/models/medaug-test-tiny-qwen2/"}
            )
        }
    )
    (plain,) = make_samples(1, area="oncology", start=2)
    old = sa.table(
        "queue_items",
        *(
            sa.column(n)
            for n in (
                "id",
                "run_id",
                "priority",
                "area",
                "task",
                "label",
                "status",
                "reviews_done",
                "sample_json",
                "pushed_at",
            )
        ),
    )
    with engine.begin() as conn:
        conn.execute(
            old.insert(),
            [
                {
                    "id": s.id,
                    "run_id": "old",
                    "priority": 0,
                    "area": s.area.value,
                    "task": s.task.value,
                    "label": s.label.value,
                    "status": "open",
                    "reviews_done": 0,
                    "sample_json": s.model_dump_json(),
                    "pushed_at": t,
                }
                for s, t in ((noise, 10.0), (para, 20.0), (plain, 30.0))
            ],
        )
    engine.dispose()

    store = QueueStore.open(url)  # upgrades to head
    with store.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(items.c.id, items.c.stratum, items.c.test_model))}
    want = {s.id: stratum_of(s).key for s in (para, noise, plain)}
    assert {i: r.stratum for i, r in rows.items()} == want  # the migration agrees with review_queue.strata
    assert want[para.id] == "lexicon_paraphrase|-|qwen|cardiovascular"
    assert want[noise.id] == "template:qa-1|-|medaug-test-tiny-qwen2|cardiovascular"
    assert {i for i, r in rows.items() if r.test_model} == {noise.id}
    report = {r["stratum"]: r for r in store.strata_report()}
    assert set(report) == set(want.values()) and all(r["items"] == {"open": 1} for r in report.values())
    assert [i.id for i in store.pull("ann", 3)][-1] == noise.id  # the old test-model item is pulled last
    store.close()
