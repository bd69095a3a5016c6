"""Optional dependencies load where they are used: `pip install -e .` without extras gives a
working CLI for everything that runs on SQLite and locally (issue: the README's first command
failed on a fresh clone because psycopg was imported at module level).

The extras are made unimportable in a subprocess (a meta-path blocker, as if not installed),
so these tests hold even in the test virtualenv where every extra is installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXTRAS = ("psycopg", "vllm", "torch", "playwright", "transformers")

BLOCKER = textwrap.dedent(
    f"""
    import sys
    class _Missing:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {EXTRAS!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None
    sys.meta_path.insert(0, _Missing())
    """
)


def _run(code: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_module_imports_without_the_extras():
    r = _run(
        """
        import importlib, pkgutil
        bad = []
        for pkg in ["medaug", "jobs", "generators", "augmenters", "curation", "review_queue"]:
            for m in pkgutil.walk_packages(importlib.import_module(pkg).__path__, pkg + "."):
                if ".migrations" in m.name:
                    continue  # Alembic scripts, loaded by Alembic
                try:
                    importlib.import_module(m.name)
                except ModuleNotFoundError as e:
                    bad.append(f"{m.name}: {e}")
        print("\\n".join(bad))
        """
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "", "modules that need an extra at import time:\n" + r.stdout


def _cli(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    return _run(
        """
        import sys
        from medaug.cli import app
        sys.argv = ["medaug", *sys.argv[1:]]
        app()
        """,
        *argv,
        cwd=tmp_path,
    )


def test_local_sqlite_commands_work_without_the_extras(tmp_path):
    seeds = REPO / "configs" / "seeds" / "demo-seeds.jsonl"
    assert _cli(tmp_path, "--help").returncode == 0
    r = _cli(tmp_path, "augment-file", str(seeds), str(tmp_path / "aug.jsonl"))
    assert r.returncode == 0, r.stderr[-2000:]
    fields = ["-f", "instruction", "-f", "input", "-f", "output"]
    r = _cli(tmp_path, "deid", str(tmp_path / "aug.jsonl"), str(tmp_path / "deid.jsonl"), *fields)
    assert r.returncode == 0, r.stderr[-2000:]
    r = _cli(tmp_path, "dedup", str(tmp_path / "deid.jsonl"), str(tmp_path / "dedup.jsonl"))
    assert r.returncode == 0, r.stderr[-2000:]
    db = f"sqlite:///{tmp_path / 'q.db'}"
    r = _cli(tmp_path, "queue", "push", str(tmp_path / "dedup.jsonl"), "--db", db, "--run-id", "r1")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    r = _cli(tmp_path, "queue", "user", "add", "alice", "--role", "reviewer", "--db", db)
    assert r.returncode == 0, r.stderr[-2000:]
    r = _cli(tmp_path, "queue", "audit", "verify", "--db", db)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    n_in = sum(1 for line in (tmp_path / "dedup.jsonl").read_text(encoding="utf-8").splitlines() if line)
    assert n_in > len(seeds.read_text(encoding="utf-8").splitlines())  # the augmenters added samples


def test_a_postgresql_url_without_the_driver_names_the_extra():
    r = _run(
        """
        from review_queue.db import make_engine
        try:
            make_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
        except RuntimeError as e:
            print(e)
        """
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "pip install 'medaug[postgres]'" in r.stdout, r.stdout


def test_the_blocker_really_blocks():
    # Guards the tests above: if the blocker let the extras through they would prove nothing.
    r = _run(
        "import json\ntry:\n    import psycopg\nexcept ModuleNotFoundError:\n    print(json.dumps('blocked'))"
    )
    assert json.loads(r.stdout) == "blocked", r.stderr
