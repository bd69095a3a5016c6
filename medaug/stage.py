"""The one Stage contract every pipeline step follows, and the one shape of a rejected row.

A stage takes an Arrow table (samples, SAMPLE_SCHEMA; a generation stage takes prompts) and
returns a `StageResult`: the rows it keeps, the rows it rejects (REJECT_SCHEMA: id, stage,
reason code, detail, the sample) and its counts. It declares how it runs, and the runner
(medaug.runner) decides where:

    batch   per batch of rows: in this process, or spread with Ray Data on a cluster
    global  once over the whole stage input, on the driver (dedup: it needs every row at once)
    actors  on engine actors (one LLM engine per actor), or in this process without a cluster

and what it requires: optional packages, checked when the stage is built (also when Ray
rebuilds it in a worker), so a missing one fails before any work with the command that
installs it. Stages are plain objects over Arrow tables, testable without Ray.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import pyarrow as pa
import pyarrow.compute as pc

from medaug.run import StageStats
from medaug.schema import SAMPLE_SCHEMA

Mode = Literal["batch", "global", "actors"]
MODES: tuple[Mode, ...] = ("batch", "global", "actors")


def _nullable(t: pa.DataType) -> pa.DataType:
    """The type with every nested field nullable (a rejection without a sample is a null struct)."""
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _nullable(f.type), nullable=True) for f in t])
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        item = t.value_field
        make = pa.list_ if pa.types.is_list(t) else pa.large_list
        return make(pa.field(item.name, _nullable(item.type), nullable=True))
    return t


SAMPLE_STRUCT = _nullable(pa.struct(list(SAMPLE_SCHEMA)))
# Every rejection in the project: curation drops, augmenter candidates that failed their check,
# generation failures (id = the prompt id, no sample). Details never quote personal data.
REJECT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("stage", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("sample", SAMPLE_STRUCT),
    ]
)


class MissingRequirement(ImportError):
    """A stage's optional package is not installed; the message says how to install it."""


@dataclass(frozen=True)
class Cluster:
    """Where the runner may put work: `ray` is true once the job has joined (or started) Ray."""

    ray: bool = False


LOCAL = Cluster()


@dataclass
class StageResult:
    kept: pa.Table
    rejected: pa.Table = field(default_factory=REJECT_SCHEMA.empty_table)
    stats: StageStats = field(default_factory=lambda: StageStats("stage"))


class Stage:
    """Subclass, set the class attributes, implement `process`. See docs/architecture.md."""

    name: str = "stage"
    mode: Mode = "batch"
    # (importable module, install hint), e.g. ("presidio_anonymizer", "pip install presidio-anonymizer")
    requires: ClassVar[tuple[tuple[str, str], ...]] = ()
    # the input is samples (the runner conforms it and attaches rejected samples); false for prompts
    takes_samples: ClassVar[bool] = True
    emits_samples: ClassVar[bool] = True
    # the input column that names a row in its rejects (a generation stage's rows are prompts)
    id_column: ClassVar[str] = "id"
    # where this stage's rejects go in the run folder; derived candidates that were never accepted
    # into the run (augmenters) go beside the curation rejections, not among them
    rejects_dir: ClassVar[str] = "rejects"
    # actors mode: a shard that keeps failing stops the run ("raise") or is recorded as rejects and
    # left for a rerun ("record")
    on_give_up: ClassVar[Literal["raise", "record"]] = "raise"
    # the stage's effect lives outside the run folder (the queue push): it runs again on every
    # attempt, done marker or not, so it must be idempotent
    always_run: ClassVar[bool] = False

    output: str | None = None  # the folder of its shards in the run (default: the name)
    batch_rows: int | None = None  # rows per shard (batch/actors); None: the runner's default
    actor_options: dict[str, Any]  # actors mode: Ray actor options (resources)
    replicas: int = 1  # actors mode: how many actors
    cluster: Cluster = LOCAL  # set by the runner before it runs the stage

    def __new__(cls, *args: Any, **kwargs: Any) -> Stage:
        check_requires(cls.name, cls.requires)
        obj = super().__new__(cls)
        obj.actor_options = {}
        return obj

    @property
    def folder(self) -> str:
        return self.output or self.name

    def warm(self) -> None:
        """Actors mode: start the engine before any shard is handed out (a bad model fails early)."""

    def process(self, table: pa.Table) -> StageResult:
        raise NotImplementedError(f"{type(self).__name__}.process")

    def accept(self, result: StageResult) -> StageResult:
        """On the driver, before a shard is written: a check that needs every earlier shard's rows
        (generation's seed novelty). Default: the result as it is."""
        return result

    def summarize(self, stats: StageStats) -> None:
        """Add what needs every shard's counts to the stage's merged stats (a report, rates)."""

    def finish(self) -> StageResult | None:
        """Rows the stage adds once per run, after all its shards (refusals from the taxonomy)."""
        return None


def check_requires(stage: str, requires: Sequence[tuple[str, str]]) -> None:
    for module, hint in requires:
        if importlib.util.find_spec(module) is None:
            raise MissingRequirement(
                f"stage {stage!r} needs the Python package {module!r}: install it with `{hint}`"
            )


def reject_table(
    ids: list[str],
    reasons: list[str],
    details: list[str | None],
    *,
    stage: str | None = None,
    samples: pa.Array | None = None,
) -> pa.Table:
    """Rejections in REJECT_SCHEMA; a stage leaves `samples` out and the runner attaches them by id."""
    n = len(ids)
    return pa.Table.from_arrays(
        [
            pa.array(ids, pa.string()),
            pa.array([stage] * n, pa.string()),
            pa.array(reasons, pa.string()),
            pa.array(details, pa.string()),
            samples if samples is not None else pa.nulls(n, SAMPLE_STRUCT),
        ],
        schema=REJECT_SCHEMA,
    )


def samples_struct(table: pa.Table) -> pa.Array:
    """A sample table (SAMPLE_SCHEMA) as one struct column, the `sample` of REJECT_SCHEMA."""
    cols = [table.column(f.name).combine_chunks() for f in SAMPLE_SCHEMA]
    return pa.StructArray.from_arrays(cols, fields=list(SAMPLE_SCHEMA)).cast(SAMPLE_STRUCT)


def attach(rejected: pa.Table, stage: str, source: pa.Table | None) -> pa.Table:
    """Fill `stage` and, from `source` (the stage's input samples, looked up by id), `sample`."""
    n = rejected.num_rows
    if rejected.schema != REJECT_SCHEMA:
        rejected = rejected.cast(REJECT_SCHEMA)
    if not n:
        return rejected
    names = rejected.column("stage")
    if names.null_count:
        rejected = rejected.set_column(1, "stage", pc.fill_null(names, stage))
    if source is not None and rejected.column("sample").null_count == n and source.num_rows:
        at = pc.index_in(rejected.column("id"), value_set=source.column("id"))
        rejected = rejected.set_column(4, "sample", samples_struct(source).take(at))
    return rejected


def count_reasons(rejected: pa.Table) -> Counter[str]:
    return Counter(rejected.column("reason").to_pylist()) if rejected.num_rows else Counter()
