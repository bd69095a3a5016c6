"""Quality gates: the seed article's annotation rules, checked on whole batches with polars expressions.

Every sample is checked against every gate in one vectorised pass; a rejected
sample gets the reason code of the first gate it fails (in the order of
REASON_ORDER) and a detail listing all of them. Details never quote the text,
so rejection files hold no personal data.
"""

from __future__ import annotations

import json
import time
import unicodedata
from functools import cache
from pathlib import Path
from typing import Literal

import polars as pl
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from curation.quality_icd10 import load_icd10_list, normalize_code
from medaug.run import StageStats
from medaug.schema import ICD10_SHAPE, Area, ErrorType, Label, Task, conform_table
from medaug.stage import StageResult, reject_table

STAGE_NAME = "quality"
DEFAULT_BANNED = Path(__file__).resolve().parent / "data" / "banned_phrases.txt"
TEXT_FIELDS = ("instruction", "input", "output", "reference_output")

REASON_ORDER = (
    "format",
    "empty_output",
    "echoed_output",
    "one_word_answer",
    "too_short",
    "too_long",
    "low_chinese_ratio",
    "banned_phrase",
    "invalid_icd10",
)

# A banned phrase inside a procedure name or a negated statement is no promise: 胸腔镜下肺癌根治术,
# 具备根治性, 导致无法完全治愈, 不能保证治愈. These spans are removed before the phrases are searched.
NOT_A_PROMISE = (
    r"(?:根治|治愈)(?:性|术|手术|切除|放疗|剂量)"
    r"|(?:无法|不能|不可能|难以|没法|没有办法|未能|不一定能?|并非|并不能|不会|不可|很难|尚不能|目前不能)"
    r"[\p{Han}]{0,4}?(?:根治|治愈|痊愈|彻底治愈|完全治愈|保证治愈|保证|百分之百|百分百|特效药|永不复发|不会复发)"
    r"|(?:没有|并无|不存在|无)(?:所谓的?)?(?:特效药|神药|秘方|祖传秘方|100%有效|百分之百)"
)
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x{FFFD}]"
_SLOT = r"\{\{?\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}?"  # a template slot left unfilled by generation
_ICD_SHAPE = "^(?:" + ICD10_SHAPE.pattern + ")$"


class QualityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    banned_phrases_file: Path | None = DEFAULT_BANNED
    banned_phrases: list[str] = Field(default_factory=list)  # added to the file's list
    banned_labels: list[Label] = Field(default_factory=lambda: [Label.positive])
    banned_fields: list[str] = Field(default_factory=lambda: ["output"])
    # [min, max] characters per field, after stripping whitespace
    lengths: dict[str, tuple[int, int]] = Field(
        default_factory=lambda: {"instruction": (4, 4000), "input": (0, 8000), "output": (4, 8000)}
    )
    min_chinese_ratio: float = Field(default=0.3, ge=0.0, le=1.0)  # Han characters / all letters
    chinese_ratio_fields: list[str] = Field(default_factory=lambda: ["instruction", "output"])
    echo_min_chars: int = Field(default=8, ge=1)  # a shorter output inside the prompt is not called an echo
    icd10_list: Path | None = None
    icd10_match: Literal["exact", "category"] = "category"
    check_format: bool = True
    require_output: bool = True  # False: question-only records (empty output) are not an empty_output reject
    # A one-word answer is a bare term with nothing around it (是, 不会, 高血压, 阿莫西林。): at most
    # one_word_max_chars characters once whitespace and punctuation are gone. "reject" (the default)
    # rejects it as one_word_answer, except for the tasks in one_word_answer_tasks, where a term is the
    # expected answer (e.g. a diagnosis); "allow" keeps it everywhere. An allowed one-word answer is
    # exempt from the output's minimum length, since that minimum exists to catch exactly these.
    one_word_answers: Literal["reject", "allow"] = "reject"
    one_word_answer_tasks: list[Task] = Field(default_factory=list)
    one_word_max_chars: int = Field(default=4, ge=1, le=32)

    @field_validator("banned_fields", "chinese_ratio_fields")
    @classmethod
    def _text_fields(cls, v: list[str]) -> list[str]:
        bad = sorted(set(v) - set(TEXT_FIELDS))
        if bad:
            raise ValueError(f"not text fields: {bad}; text fields are {list(TEXT_FIELDS)}")
        return v

    @field_validator("lengths")
    @classmethod
    def _length_fields(cls, v: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        for name, (lo, hi) in v.items():
            if name not in TEXT_FIELDS:
                raise ValueError(
                    f"lengths: {name!r} is not a text field; text fields are {list(TEXT_FIELDS)}"
                )
            if lo < 0 or hi < lo:
                raise ValueError(f"lengths.{name}: need 0 <= min <= max, got [{lo}, {hi}]")
        return v

    def phrases(self) -> list[str]:
        base = list(_read_phrases(str(self.banned_phrases_file))) if self.banned_phrases_file else []
        return sorted({_squash(p) for p in base + self.banned_phrases if _squash(p)})


@cache
def _read_phrases(path: str) -> tuple[str, ...]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ValueError(f"banned phrases file {path}: {e.strerror or e}") from e
    return tuple(s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#"))


def _squash(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def _promises(text: str) -> str:
    """The text with procedure names and negated statements removed (same rule as the gate)."""
    return pl.Series([text]).str.replace_all(NOT_A_PROMISE, "")[0]


def _norm(col: str) -> pl.Expr:
    """NFKC, no whitespace: the form banned phrases and echoes are compared in."""
    return pl.col(col).fill_null("").str.normalize("NFKC").str.replace_all(r"\s+", "")


def _flags(config: QualityConfig) -> dict[str, pl.Expr]:
    """reason code → boolean expression (true = fails the gate)."""
    flags: dict[str, pl.Expr] = {}
    if config.check_format:
        bad = ~pl.col("label").is_in([x.value for x in Label])
        bad |= ~pl.col("task").is_in([x.value for x in Task]) | ~pl.col("area").is_in([x.value for x in Area])
        neg = pl.col("label") == Label.negative.value
        bad |= neg & (pl.col("verdict").is_null() | ~pl.col("error_type").is_in([x.value for x in ErrorType]))
        bad |= ~neg & (pl.col("verdict").is_not_null() | pl.col("error_type").is_not_null())
        flags["format:enum_or_label_fields"] = bad
        control, slot = pl.lit(False), pl.lit(False)
        for f in ("instruction", "input", "output"):
            control |= pl.col(f).fill_null("").str.contains(_CONTROL)
            slot |= pl.col(f).fill_null("").str.contains(_SLOT)
        flags["format:control_characters"] = control
        flags["format:unfilled_template_slot"] = slot
        flags["format:invalid_json"] = pl.col("_json_bad")
    if config.require_output:
        flags["empty_output"] = _norm("output").str.len_chars() == 0
    out, ins, inp = _norm("output"), _norm("instruction"), _norm("input")
    echoed = (out == ins) | ((out == inp) & (inp.str.len_chars() > 0))
    echoed |= (out.str.len_chars() >= config.echo_min_chars) & pl.concat_str(
        [ins, inp], separator="\x00"
    ).str.contains(out, literal=True)
    flags["echoed_output"] = echoed & (out.str.len_chars() > 0)
    term = pl.col("output").fill_null("").str.replace_all(r"[\s\p{P}\p{S}]+", "").str.len_chars()
    one_word = (term > 0) & (term <= config.one_word_max_chars)
    allowed = pl.lit(config.one_word_answers == "allow") | pl.col("task").is_in(
        [t.value for t in config.one_word_answer_tasks]
    )
    flags["one_word_answer"] = one_word & ~allowed
    for f, (lo, hi) in config.lengths.items():
        n = pl.col(f).fill_null("").str.strip_chars().str.len_chars()
        flags[f"too_short:{f}"] = (n < lo) & ~(one_word & allowed) if f == "output" else n < lo
        flags[f"too_long:{f}"] = n > hi
    if config.min_chinese_ratio > 0:
        low = pl.lit(False)
        for f in config.chinese_ratio_fields:
            letters = pl.col(f).fill_null("").str.count_matches(r"\p{L}")
            han = pl.col(f).fill_null("").str.count_matches(r"\p{Han}")
            low |= (letters > 0) & (
                han.cast(pl.Float64) < letters.cast(pl.Float64) * config.min_chinese_ratio
            )
        flags["low_chinese_ratio"] = low
    phrases = config.phrases()
    if phrases:
        hit = pl.lit(False)
        for f in config.banned_fields:
            hit |= _norm(f).str.replace_all(NOT_A_PROMISE, "").str.contains_any(phrases)
        flags["banned_phrase"] = hit & pl.col("label").is_in([x.value for x in config.banned_labels])
    flags["invalid_icd10"] = pl.col("_icd_bad")
    return flags


def _json_bad(output: list[str | None], extra: list[str | None]) -> list[bool]:
    """An output that starts like JSON must be JSON; `extra` is JSON text by the schema."""
    out = []
    for o, e in zip(output, extra, strict=True):
        bad = False
        s = (o or "").strip()
        if s[:1] in ("{", "[") and not _parses(s):
            bad = True
        if e is not None and not _parses(e):
            bad = True
        out.append(bad)
    return out


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _icd_bad(df: pl.DataFrame, config: QualityConfig) -> tuple[pl.Series, list[str]]:
    """Per row: does any code fail (shape, or the configured list)? Plus the first bad code per row."""
    codes = (
        df.select(pl.int_range(pl.len()).alias("_row"), pl.col("icd10")).explode("icd10").drop_nulls("icd10")
    )
    codes = codes.with_columns(pl.col("icd10").str.strip_chars().str.to_uppercase().alias("code"))
    ok = pl.col("code").str.contains(_ICD_SHAPE)
    if config.icd10_list is not None:
        lst = load_icd10_list(config.icd10_list)
        listed = pl.col("code").is_in(list(lst.codes))
        if config.icd10_match == "category":
            listed |= pl.col("code").str.slice(0, 3).is_in(list(lst.categories))
        ok &= listed
    bad = codes.filter(~ok).group_by("_row", maintain_order=True).agg(pl.col("code").first())
    flags = [False] * df.height
    first = [""] * df.height
    for row, code in bad.iter_rows():
        flags[row] = True
        first[row] = normalize_code(code)
    return pl.Series("_icd_bad", flags), first


def reason_code(flag: str) -> str:
    """format:* flags share the reason code `format`; the detail keeps which check failed."""
    return "format" if flag.startswith("format:") else flag


def quality_gate(table: pa.Table, config: QualityConfig | None = None) -> StageResult:
    """Keep samples that pass every gate; reject the rest with a reason code and the full list in detail."""
    t0 = time.perf_counter()
    config = config or QualityConfig()
    table = conform_table(table)
    cols = [
        "id",
        "instruction",
        "input",
        "output",
        "task",
        "label",
        "verdict",
        "error_type",
        "reference_output",
    ]
    df = pl.from_arrow(table.select([*cols, "area", "icd10", "extra"]))
    assert isinstance(df, pl.DataFrame)
    icd_flags, icd_first = _icd_bad(df, config)
    df = df.with_columns(
        icd_flags,
        pl.Series("_json_bad", _json_bad(df["output"].to_list(), df["extra"].to_list()), pl.Boolean),
    )
    flags = _flags(config)
    names = list(flags)
    result = df.select([expr.fill_null(False).alias(name) for name, expr in flags.items()])
    any_fail = result.select(pl.any_horizontal(pl.all()).alias("x"))["x"]

    rej_idx = any_fail.arg_true().to_list()
    ids, reasons, details = [], [], []
    if rej_idx:
        sub = result[rej_idx]
        order = {r: i for i, r in enumerate(REASON_ORDER)}
        names_sorted = sorted(names, key=lambda r: order[r.split(":")[0]])
        rows = sub.select(names_sorted).rows()
        all_ids = df["id"]
        phrases = config.phrases()
        outputs = {f: df[f] for f in config.banned_fields}
        for idx, row in zip(rej_idx, rows, strict=True):
            failed = [n for n, v in zip(names_sorted, row, strict=True) if v]
            notes = {"invalid_icd10": icd_first[idx]}
            if "banned_phrase" in failed:
                text = "".join(_promises(_squash(outputs[f][idx] or "")) for f in outputs)
                notes["banned_phrase"] = "/".join(p for p in phrases if p in text)
            ids.append(all_ids[idx])
            reasons.append(reason_code(failed[0]))
            details.append(", ".join(f"{n} ({notes[n]})" if n in notes else n for n in failed))
    kept = table.filter(pa.array((~any_fail).to_arrow()))
    rejected = reject_table(ids, reasons, details)
    stats = StageStats(STAGE_NAME, rows_in=table.num_rows, rows_out=kept.num_rows)
    for r in reasons:
        stats.rejects[r] += 1
    stats.seconds = time.perf_counter() - t0
    return StageResult(kept=kept, rejected=rejected, stats=stats)
