"""What the review page shows beside a candidate: what changed, why, and the automatic checks' evidence.

A reviewer should never hunt for the change by eye. For a derived sample this module gives

- the parent: the queued parent (stored with the item at push), else rebuilt from the sample's own
  provenance (a negative keeps its parent's answer as `reference_output`; a lexicon paraphrase
  records every substitution with its position, so it can be undone exactly);
- a word-level diff of each field (jieba, with the clinical vocabulary as its dictionary);
- the change its augmenter recorded: for a negative the error type, the changed span before → after,
  why it is wrong and the verdict (此回答不正确); for a paraphrase each mapping and its relation;
- the clinical facts of parent and candidate and what changed between them (medaug.facts);
- checks: the fact check, the quality gates re-run on the sample, de-identification placeholders,
  a test model's output;
- the nearest neighbours among recently queued items of the same area and task, and among the
  released rows (latest version of each dataset under the service's datasets root), with similarity.

Everything is computed when the page asks, from what is stored; nothing here writes. Neighbours show
text similarity and status only, never another item's reviews (blind review).
"""

from __future__ import annotations

import difflib
import json
import re
import threading
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from medaug.schema import NEGATIVE_VERDICT, Label, Sample
from review_queue import sql
from review_queue.strata import is_test_model, stratum_of

FIELDS = ("instruction", "input", "output")
MAX_DIFF_CHARS = 20_000  # longer texts are diffed by line: a word diff's cost grows with the product
NEIGHBOUR_POOL = 400  # recently queued items of the same area and task compared with the candidate
NEIGHBOURS = 3
RELEASED_POOL = 5000  # latest released rows of the same area and task compared, per dataset
PLACEHOLDER = re.compile(r"〈[^〈〉\s]{1,24}〉|<[A-Z_]{2,24}>|\[[A-Z_]{2,24}\]")
NEGATIVE_AUGMENTERS = ("rule_negative", "llm_negative")
PARAPHRASE_AUGMENTERS = ("lexicon_paraphrase", "llm_paraphrase")


def _tokens(text: str) -> list[str]:
    if len(text) > MAX_DIFF_CHARS:
        return text.splitlines(keepends=True)
    from medaug.facts import segmenter

    return segmenter().cut(text)


def word_diff(before: str, after: str) -> list[list[str]]:
    """[op, text] runs, op "=" (same), "-" (only in before), "+" (only in after); words never split."""
    a, b = _tokens(before), _tokens(after)
    out: list[list[str]] = []

    def add(op: str, text: str) -> None:
        if not text:
            return
        if out and out[-1][0] == op:
            out[-1][1] += text
        else:
            out.append([op, text])

    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            add("=", "".join(a[i1:i2]))
        else:
            add("-", "".join(a[i1:i2]))
            add("+", "".join(b[j1:j2]))
    return out


def _detail(sample: Sample) -> tuple[str | None, dict[str, Any]]:
    chain = sample.provenance.augmentation
    if not chain:
        return None, {}
    step = chain[-1]
    try:
        detail = json.loads(step.detail) if step.detail else {}
    except ValueError:
        detail = {"text": step.detail}
    return step.augmenter, detail if isinstance(detail, dict) else {"value": detail}


def undo_substitutions(text: str, subs: list[dict[str, Any]], field: str) -> str | None:
    """The text before a lexicon paraphrase's substitutions (positions are in the parent); None if they do not fit."""
    mine = sorted((s for s in subs if s.get("field") == field), key=lambda s: int(s.get("start", 0)))
    parts, pos, shift = [], 0, 0
    for s in mine:
        src, dst = str(s.get("from", "")), str(s.get("to", ""))
        at = int(s.get("start", 0)) + shift
        if at < pos or text[at : at + len(dst)] != dst:
            return None
        parts += [text[pos:at], src]
        pos = at + len(dst)
        shift += len(dst) - len(src)
    parts.append(text[pos:])
    return "".join(parts)


def parent_of(sample: Sample, queued: dict[str, Any] | None) -> tuple[dict[str, str] | None, str]:
    """The parent's fields and where they came from: "queue", "provenance", or (None, "none")."""
    if queued:
        return {f: str(queued.get(f) or "") for f in FIELDS}, "queue"
    augmenter, detail = _detail(sample)
    if sample.label == Label.negative and sample.reference_output:
        return {
            "instruction": sample.instruction,
            "input": sample.input,
            "output": sample.reference_output,
        }, "provenance"
    if augmenter == "lexicon_paraphrase" and isinstance(detail.get("substitutions"), list):
        subs = [s for s in detail["substitutions"] if isinstance(s, dict)]
        rebuilt = {f: undo_substitutions(getattr(sample, f), subs, f) for f in FIELDS}
        if all(v is not None for v in rebuilt.values()):
            return rebuilt, "provenance"  # type: ignore[return-value]
    return None, "none"


def change_of(sample: Sample) -> dict[str, Any] | None:
    """What the sample's last augmentation step says it changed, in the page's terms."""
    augmenter, detail = _detail(sample)
    if augmenter is None:
        return None
    if sample.label == Label.negative or augmenter in NEGATIVE_AUGMENTERS:
        ch = detail.get("change") if isinstance(detail.get("change"), dict) else {}
        return {
            "kind": "negative",
            "augmenter": augmenter,
            "error_type": sample.error_type.value if sample.error_type else detail.get("error_type"),
            "before": ch.get("before"),
            "after": ch.get("after"),
            "reason": detail.get("reason"),
            "strategy": detail.get("strategy"),
            "verdict": NEGATIVE_VERDICT,
            "verdict_full": sample.verdict or NEGATIVE_VERDICT,
        }
    if augmenter in PARAPHRASE_AUGMENTERS:
        maps = [
            {
                "field": s.get("field"),
                "from": s.get("from"),
                "to": s.get("to"),
                "relation": s.get("relation") or "exact",
                "context": s.get("context"),
            }
            for s in detail.get("substitutions") or []
            if isinstance(s, dict)
        ]
        return {
            "kind": "paraphrase",
            "augmenter": augmenter,
            "direction": detail.get("direction"),
            "mode": detail.get("mode"),
            "mappings": maps,
        }
    shown = {
        k: v for k, v in detail.items() if k not in ("system", "prompt") and isinstance(v, str | int | float)
    }
    return {"kind": "other", "augmenter": augmenter, "detail": shown}


def _facts(parent: dict[str, str] | None, sample: Sample) -> dict[str, Any]:
    from medaug.facts import extract_facts, fact_changes

    out: dict[str, Any] = {"fields": {}}
    for f in FIELDS:
        cand = getattr(sample, f)
        before = parent[f] if parent else None
        entry: dict[str, Any] = {"candidate": extract_facts(cand).to_list() if cand else []}
        if before is not None:
            entry["parent"] = extract_facts(before).to_list() if before else []
            entry["changes"] = [{**c.to_dict(), "text": str(c)} for c in fact_changes(before, cand)]
        out["fields"][f] = entry
    return out


def _checks(
    sample: Sample, change: dict[str, Any] | None, facts: dict[str, Any], has_parent: bool
) -> list[dict[str, str]]:
    checks: list[dict[str, str]] = []
    changes = [c["text"] for e in facts["fields"].values() for c in e.get("changes", [])]
    kind = change["kind"] if change else None
    if has_parent and kind == "paraphrase":
        checks.append(
            {
                "name": "facts",
                "status": "pass" if not changes else "flag",
                "detail": "与父样本的临床事实一致" if not changes else "事实变化：" + "；".join(changes),
            }
        )
        wider = [m for m in change["mappings"] if m["relation"] != "exact"] if change else []
        if wider:
            checks.append(
                {
                    "name": "specificity",
                    "status": "flag",
                    "detail": "非等义映射："
                    + "；".join(f"{m['from']}→{m['to']}（{m['relation']}）" for m in wider),
                }
            )
    elif has_parent and kind == "negative":
        n = _changed_facts(facts)
        ok = n == 1
        checks.append(
            {
                "name": "facts",
                "status": "pass" if ok else "flag",
                "detail": ("恰好一处事实改变：" if ok else f"{n} 处事实改变：") + "；".join(changes),
            }
        )
    checks.append(_quality(sample))
    found = sorted({m.group() for f in FIELDS for m in PLACEHOLDER.finditer(getattr(sample, f))})
    removed = ", ".join(f"{d.entity}×{d.count}" for d in sample.deid or [] if d.count)
    checks.append(
        {
            "name": "deid",
            "status": "flag" if found else "pass",
            "detail": ("占位符：" + " ".join(found) if found else "文本中无占位符")
            + (f"；去标识记录：{removed}" if removed else ""),
        }
    )
    if is_test_model(sample.provenance.model):
        checks.append(
            {
                "name": "test_model",
                "status": "flag",
                "detail": f"测试模型生成（{sample.provenance.model}）：文本无医学意义",
            }
        )
    return checks


def _changed_facts(facts: dict[str, Any]) -> int:
    """Facts changed: a fact lost and another of its kind added is one replacement (川崎病 → 猩红热)."""
    n = 0
    for entry in facts["fields"].values():
        lost: dict[str, int] = {}
        added: dict[str, int] = {}
        for c in entry.get("changes", []):
            kind, _, what = c["code"].rpartition("_")
            if what == "lost":
                lost[kind] = lost.get(kind, 0) + 1
            elif what == "added":
                added[kind] = added.get(kind, 0) + 1
            else:
                n += 1
        n += sum(max(lost.get(k, 0), added.get(k, 0)) for k in lost.keys() | added.keys())
    return n


def _quality(sample: Sample) -> dict[str, str]:
    from curation.quality import quality_gate
    from medaug.schema import samples_to_table

    res = quality_gate(samples_to_table([sample]))
    if res.rejected.num_rows == 0:
        return {"name": "quality", "status": "pass", "detail": "质量门全部通过"}
    return {"name": "quality", "status": "flag", "detail": "质量门：" + str(res.rejected.column("detail")[0])}


def _text(s: dict[str, Any] | Sample) -> str:
    get = s.get if isinstance(s, dict) else lambda k, d="": getattr(s, k, d)
    return f"{get('instruction', '')}\n{get('input', '')}\n{get('output', '')}"


def neighbours(engine: Engine, sample: Sample, item_id: str, skip: set[str]) -> list[dict[str, Any]]:
    """The most similar of the recently queued items of the same area and task (normalised Indel similarity)."""
    from rapidfuzz import fuzz, process

    params = {"area": sample.area.value, "task": sample.task.value, "id": item_id, "pool": NEIGHBOUR_POOL}
    with engine.connect() as conn:
        rows = [r for r in conn.execute(sql.NEIGHBOUR_CANDIDATES, params) if r.id not in skip]
    if not rows:
        return []
    texts = [_text(json.loads(r.sample_json)) for r in rows]
    best = process.extract(_text(sample), texts, scorer=fuzz.ratio, limit=NEIGHBOURS)
    out = []
    for _, score, i in best:
        other = json.loads(rows[i].sample_json)
        out.append(
            {
                "id": rows[i].id,
                "status": rows[i].status,
                "similarity": round(score / 100.0, 3),
                "label": other.get("label"),
                "instruction": other.get("instruction", "")[:200],
                "output": other.get("output", "")[:200],
            }
        )
    return out


class Released:
    """The latest version of every dataset under `root`, read once per version (a new version is picked up).

    A reviewer should see that a candidate is all but a copy of something already released; the rows
    are grouped by area and task, the newest `RELEASED_POOL` of each kept in memory.
    """

    def __init__(self, root: str | Path, pool: int = RELEASED_POOL):
        self.root = Path(root)
        self.pool = pool
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[int, dict[tuple[str, str], list[dict[str, str]]]]] = {}

    def _groups(self) -> list[tuple[str, int, dict[tuple[str, str], list[dict[str, str]]]]]:
        from review_queue.versions import ReleaseError, version_dir, versions

        if not self.root.is_dir():
            return []
        out = []
        for d in sorted(p for p in self.root.iterdir() if p.is_dir()):
            try:
                have = versions(self.root, d.name)
            except ReleaseError:
                continue  # not a dataset folder
            if not have:
                continue
            with self._lock:
                cached = self._cache.get(d.name)
                if cached is None or cached[0] != have[-1]:
                    cached = (have[-1], self._read(version_dir(self.root, d.name, have[-1])))
                    self._cache[d.name] = cached
            out.append((d.name, cached[0], cached[1]))
        return out

    def _read(self, folder: Path) -> dict[tuple[str, str], list[dict[str, str]]]:
        """The newest `pool` rows of each (area, task): only the columns shown, only those rows as Python."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = ["id", "area", "task", "label", "instruction", "input", "output"]
        files = sorted((folder / "data").glob("shard-*.parquet"))
        if not files:
            return {}
        table = pa.concat_tables([pq.read_table(f, columns=cols) for f in files])
        where: dict[tuple[str, str], list[int]] = {}
        for i, key in enumerate(
            zip(table.column("area").to_pylist(), table.column("task").to_pylist(), strict=True)
        ):
            where.setdefault(key, []).append(i)
        return {k: table.take(v[-self.pool :]).to_pylist() for k, v in where.items()}

    def neighbours(self, sample: Sample, skip: set[str]) -> list[dict[str, Any]]:
        """The most similar released rows of the same area and task, over all datasets."""
        from rapidfuzz import fuzz, process

        pool = [
            (name, version, r)
            for name, version, groups in self._groups()
            for r in groups.get((sample.area.value, sample.task.value), [])
            if r["id"] not in skip
        ]
        if not pool:
            return []
        best = process.extract(
            _text(sample), [_text(r) for _, _, r in pool], scorer=fuzz.ratio, limit=NEIGHBOURS
        )
        return [
            {
                "dataset": pool[i][0],
                "version": pool[i][1],
                "id": pool[i][2]["id"],
                "similarity": round(score / 100.0, 3),
                "label": pool[i][2]["label"],
                "instruction": (pool[i][2]["instruction"] or "")[:200],
                "output": (pool[i][2]["output"] or "")[:200],
            }
            for _, score, i in best
        ]


def evidence(
    engine: Engine,
    item_id: str,
    sample: Sample,
    queued_parent: dict[str, Any] | None,
    released: Released | None = None,
) -> dict[str, Any]:
    """Everything the page shows about one leased item besides the sample itself."""
    parent, source = parent_of(sample, queued_parent)
    change = change_of(sample)
    facts = _facts(parent, sample)
    skip = {str(queued_parent.get("id"))} if queued_parent else set()
    if sample.provenance.parent_id:
        skip.add(sample.provenance.parent_id)
    return {
        "id": item_id,
        "stratum": stratum_of(sample).key,
        "test_model": is_test_model(sample.provenance.model),
        "model": sample.provenance.model,
        "parent": parent,
        "parent_source": source,
        "diff": {f: word_diff(parent[f], getattr(sample, f)) for f in FIELDS} if parent else None,
        "change": change,
        "facts": facts,
        "checks": _checks(sample, change, facts, parent is not None),
        "neighbours": neighbours(engine, sample, item_id, skip),
        "released": released.neighbours(sample, skip | {sample.id}) if released else [],
    }
