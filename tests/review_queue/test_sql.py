"""review_queue.sql and review_queue.audit_sql hold every statement the queue runs: each of them is used, and no
other module builds SQL.

Read from the source (ast), not by running anything: the other review_queue tests run the
statements on SQLite and PostgreSQL. The Alembic migrations are left out on purpose: they keep
their own DDL, frozen as it was shipped.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import review_queue
from review_queue import audit_sql, sql
from review_queue.db import metadata

PACKAGE = Path(review_queue.__file__).parent
SQL_MODULES = {"sql": sql, "audit_sql": audit_sql}  # the modules of named statements
SQL_FILES = {PACKAGE / f"{name}.py" for name in SQL_MODULES}
# A statement in a string: SELECT .. FROM, INSERT INTO, UPDATE <table> SET, DELETE FROM, and the
# statements without a table clause that the queue runs (ANALYZE, PRAGMA, BEGIN).
SQL_TEXT = re.compile(
    r"\bSELECT\b.*\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b|\bANALYZE\b|\bPRAGMA\b"
    r"|\bBEGIN\s+IMMEDIATE\b",
    re.IGNORECASE | re.DOTALL,
)
TABLES = {t.name for t in metadata.tables.values()} | {
    "items",
    "reviews",
    "arbitrations",
    "users",
    "strata",
    "audit_log",
    "audit_head",
    "audit_meta",
}  # the names review_queue.db gives the tables
BUILDERS = {"select", "insert", "update", "delete", "text", "union", "exists", "join"}  # sa.<builder>(...)
STATEMENT_METHODS = {
    "with_for_update",
    "on_conflict_do_nothing",
    "on_conflict_do_update",
    "returning",
    "from_select",
    "add_cte",
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p not in SQL_FILES and "migrations" not in p.parts)


def _skipped(tree: ast.AST) -> set[int]:
    """Docstrings (prose may name SQL) and the parts of f-strings."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
        if isinstance(node, ast.JoinedStr):  # its parts are read together, below
            out |= {id(v) for v in node.values}
    return out


def _sql_built_in(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _skipped(tree)
    found = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if SQL_TEXT.search(node.value):
                found.append(f"{where}: SQL text {node.value[:60]!r}")
        elif isinstance(node, ast.JoinedStr):  # an f-string: its literal parts together
            text = "".join(
                v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
            )
            if SQL_TEXT.search(text):
                found.append(f"{where}: SQL text in an f-string {text[:60]!r}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner, attr = node.func.value, node.func.attr
            if isinstance(owner, ast.Name) and owner.id in ("sa", "sqlalchemy") and attr in BUILDERS:
                found.append(f"{where}: sa.{attr}(...)")
            elif isinstance(owner, ast.Name) and owner.id in TABLES and attr in BUILDERS:
                found.append(f"{where}: {owner.id}.{attr}(...)")
            elif attr in STATEMENT_METHODS:
                found.append(f"{where}: .{attr}(...)")
        elif (
            isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sqlalchemy.dialects")
        ):
            found.append(f"{where}: imports a dialect's statement builders ({node.module})")
    return found


def test_no_module_but_sql_builds_sql() -> None:
    found = [hit for path in _modules() for hit in _sql_built_in(path)]
    assert not found, "\n".join(found)


def test_the_check_sees_sql_where_it_is(tmp_path: Path) -> None:
    """The scan is not vacuous: it flags each kind of statement building it looks for, and not prose."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        '"""A docstring may say SELECT x FROM y."""\n'
        "import sqlalchemy as sa\n"
        "from sqlalchemy.dialects.postgresql import insert\n"
        "from review_queue.db import items\n"
        'A = sa.text("SELECT id FROM queue_items")\n'
        "B = items.update()\n"
        'C = f"DELETE FROM {items.name}"\n'
        "D = sa.select(items.c.id).with_for_update()\n"
        'E = "please update the page"\n',
        encoding="utf-8",
    )
    hits = _sql_built_in(probe)
    lines = sorted(int(h.split(":")[1]) for h in hits)
    assert lines == [3, 5, 5, 6, 7, 8, 8], hits  # the import, text+SQL, update, f-string, select+for update


def _public_statements(name: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.FunctionDef):
            names.add(node.name)
    return {n for n in names if not n.startswith("_")}


def _used_names(name: str) -> set[str]:
    """What review_queue uses of module `name`: `name.X` and `from review_queue.name import X`."""
    used: set[str] = set()
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == name:
                used.add(node.attr)
            elif isinstance(node, ast.ImportFrom) and node.module == f"review_queue.{name}":
                used |= {a.name for a in node.names}
    return used


def test_every_named_statement_is_used() -> None:
    names = {name: _public_statements(name) for name in SQL_MODULES}
    assert {"LEASE_PICKED", "lease_statement", "REVIEW_INSERT"} <= names["sql"]
    assert {"FREE_HEAD", "table_page", "with_writes"} <= names["audit_sql"]
    for name, module in SQL_MODULES.items():
        assert all(hasattr(module, n) for n in names[name])
        unused = sorted(names[name] - _used_names(name))
        assert not unused, f"named in review_queue.{name} but used nowhere in review_queue: {unused}"
