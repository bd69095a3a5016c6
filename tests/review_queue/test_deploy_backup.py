"""deploy/backup/medaug-backup.sh on a real PostgreSQL queue: back up, restore into an empty database, verify.

The script is what docs/deploy.md tells operators to run, so it runs here as they would run it:
a subprocess with the database URL and the audit key in its environment.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from queue_samples import make_samples

from review_queue.decisions import Decision
from review_queue.store import QueueStore

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "backup" / "medaug-backup.sh"


@pytest.fixture
def scratch_db(pg_url: str) -> Iterator[Callable[[], str]]:
    """Make empty databases on the same server (restore targets); all dropped afterwards."""
    admin = sa.create_engine(pg_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        name = f"medaug_restore_{uuid.uuid4().hex[:10]}"
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return pg_url.rsplit("/", 1)[0] + f"/{name}"

    yield make
    with admin.connect() as c:
        for name in made:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def backed_up(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str]]:
    for tool in ("pg_dump", "pg_restore", "sha256sum"):
        assert shutil.which(tool), f"{tool} not found: the backup script needs it (Debian: postgresql-client)"
    key = secrets.token_hex(32)
    monkeypatch.setenv("MEDAUG_AUDIT_KEY", key)
    store = QueueStore.open(pg_url)
    samples = make_samples(4)
    store.push(samples, run_id="backup")
    ann = store.add_user("ann", "reviewer")
    assert ann
    got = store.pull("ann", 2)
    store.submit("ann", got[0].id, Decision(decision="correct", output="更正后的回答：先做心电图。"))
    store.close()
    env = {
        **os.environ,
        "MEDAUG_QUEUE_DB": pg_url,
        "MEDAUG_AUDIT_KEY": key,
        "MEDAUG": str(Path(sys.executable).parent / "medaug"),
        "PYTHON": sys.executable,
    }
    r = _run("backup", str(tmp_path / "backups"), env=env)
    assert r.returncode == 0, r.stderr
    (folder,) = (tmp_path / "backups").iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["SHA256SUMS", "audit.jsonl", "queue.pgdump"]
    assert f"backup written to {folder}" in r.stdout
    return folder, env


def test_backup_restores_and_verifies(backed_up: tuple[Path, dict[str, str]], scratch_db) -> None:
    folder, env = backed_up
    rows = [json.loads(line) for line in (folder / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    actions = [r["action"] for r in rows]
    assert actions.count("push") == 4 and "submit" in actions and actions[-1] == "export"
    assert rows[-1]["actor"] == "backup"

    r = _run("verify", str(folder), scratch_db(), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"restore holds all {len(rows)} exported audit rows unchanged" in r.stdout
    assert "ok=True" in r.stdout and f"backup {folder} verified" in r.stdout


def test_verify_catches_a_doctored_export_a_bad_dump_and_a_wrong_key(
    backed_up: tuple[Path, dict[str, str]], scratch_db
) -> None:
    folder, env = backed_up

    # A wrong audit key: the restored chain does not verify.
    r = _run("verify", str(folder), scratch_db(), env={**env, "MEDAUG_AUDIT_KEY": secrets.token_hex(32)})
    assert r.returncode != 0 and "restored audit log does not verify" in r.stderr, r.stdout + r.stderr

    # An export edited after the fact, checksums recomputed: the restore disagrees with it.
    lines = (folder / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[1])
    row["actor"] = "mallory"
    lines[1] = json.dumps(row, ensure_ascii=False)
    (folder / "audit.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    subprocess.run("sha256sum audit.jsonl queue.pgdump > SHA256SUMS", shell=True, cwd=folder, check=True)
    r = _run("verify", str(folder), scratch_db(), env=env)
    assert r.returncode != 0 and "1 of" in r.stdout and "lacks or changed exported audit rows" in r.stderr

    # A damaged dump: the checksum catches it before anything is restored.
    dump = folder / "queue.pgdump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    never_used = "postgresql+psycopg://127.0.0.1:1/not_restored"  # a restore attempt would fail differently
    r = _run("verify", str(folder), never_used, env=env)
    assert r.returncode != 0 and "checksum mismatch" in r.stderr, r.stderr


def test_backup_refuses_a_sqlite_url(tmp_path: Path) -> None:
    env = {**os.environ, "MEDAUG_QUEUE_DB": f"sqlite:///{tmp_path / 'q.db'}"}
    r = _run("backup", str(tmp_path / "out"), env=env)
    assert r.returncode != 0 and "must be a PostgreSQL URL" in r.stderr
    assert not (tmp_path / "out").exists()
