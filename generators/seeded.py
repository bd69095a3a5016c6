"""Seeded generation: new questions and answers written few-shot from a user's real samples.

A hospital's own samples show the questions its patients ask and the answers its physicians
give; templates cannot. A share of each quota cell (`quotas.seeded.share`) becomes few-shot
prompts: `shots` real samples of the same task (the same area first) as examples, then a target
that differs from them (a disease, patient and persona drawn like any other prompt), with the
instruction not to copy. Two novelty checks use the dedup stage's similarity (generators/novelty.py):
  - planning: a seeded prompt's target part must be novel (the examples are shared context);
  - output (`SeedNovelty`): a generated sample too similar to a seed, or to a sample already
    generated in the run, is not kept; it is recorded as a reject with the reason, so every
    prompt still has exactly one outcome.
"""

from __future__ import annotations

import random
from functools import cache
from pathlib import Path

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from generators.stages import failure_detail
from medaug.schema import TASK_NAMES_ZH, Area, Sample, Task
from medaug.stage import REJECT_SCHEMA, reject_table, samples_struct

TEMPLATE_ID = "seeded-fewshot"
REASON_SEED = "near_duplicate_of_seed"
REASON_RUN = "near_duplicate_of_generated"


class Seeded(BaseModel):
    """quotas.seeded: which share of every cell is written few-shot from the user's samples."""

    model_config = ConfigDict(extra="forbid")

    file: str  # .jsonl / .json / .parquet samples (medaug.io formats)
    share: float = Field(default=0.25, gt=0.0, le=1.0)
    shots: int = Field(default=3, ge=1, le=8)
    max_field_chars: int = Field(
        default=300, ge=20, le=4000
    )  # each example field is cut to this in the prompt
    output_threshold: float = Field(default=0.85, gt=0.0, le=1.0)  # output novelty: dedup similarity


@cache
def load_seeds(path: str) -> tuple[Sample, ...]:
    """The seed samples (strict: a bad record is an error naming file and line)."""
    from medaug.io import read_samples

    samples = read_samples(Path(path), strict=True).samples
    if not samples:
        raise ValueError(f"{path}: no seed samples")
    return tuple(samples)


def pick_examples(
    seeds: tuple[Sample, ...], task: Task, area: Area, k: int, rng: random.Random
) -> list[Sample]:
    """k seeds of the same task, the same area first; other tasks only when the task has none."""
    same = [s for s in seeds if s.task == task and s.area == area]
    task_only = [s for s in seeds if s.task == task and s.area != area]
    pool = same + task_only or list(seeds)
    if len(same) >= k:
        pool = same
    return rng.sample(pool, k=min(k, len(pool)))


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def fewshot_user(examples: list[Sample], target: str, task: Task, max_chars: int) -> str:
    shots = "\n".join(
        f"【示例{i}】\ninstruction：{_cut(s.instruction, max_chars)}\ninput：{_cut(s.input, max_chars) or '（空）'}\n"
        f"output：{_cut(s.output or '', max_chars)}"
        for i, s in enumerate(examples, 1)
    )
    return (
        f"以下是{len(examples)}条真实的{TASK_NAMES_ZH[task]}样本（已去标识化），请学习它们的提问方式、信息量和回答风格：\n"
        f"{shots}\n{target}"
    )


def fewshot_target(values: dict[str, str]) -> str:
    """The part that differs per prompt (and is what the planner checks for novelty)."""
    return (
        "请写一条新的样本，不得照抄或改写上面的示例，病种、人物和细节都要不同。"
        f"这次的患者：{values['patient']}，{values['persona']}，{values['tone']}；"
        f"病情：{values['symptoms']}，{values['duration']}；{values['report']}；既往{values['history']}。"
        f"回答须符合{values['disease']}（ICD-10：{values['icd10']}）的诊疗规范。"
    )


def sample_text(instruction: str, input: str, output: str) -> str:
    return f"{instruction}\n{input}\n{output}"


class SeedNovelty:
    """Output novelty for a run with seeds: drops samples too similar to a seed or to one generated before."""

    def __init__(self, seeds: tuple[Sample, ...], threshold: float = 0.85):
        from generators.novelty import NoveltyFilter

        self.filter = NoveltyFilter(threshold)
        self.filter.add([sample_text(s.instruction, s.input, s.output or "") for s in seeds])
        self.n_seeds = len(seeds)

    def add_table(self, table: pa.Table) -> None:
        """Samples already generated (finished shards of a resumed run) join what later ones must differ from."""
        if table.num_rows:
            self.filter.add(_texts(table))

    def apply(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        """(kept samples, rejects in REJECT_SCHEMA for the dropped ones: id = the prompt id, with the
        sample). Every sample is checked against seeds and earlier samples; kept ones are added, so
        later samples are checked against them too."""
        if table.num_rows == 0:
            return table, REJECT_SCHEMA.empty_table()
        verdict = self.filter.check(_texts(table))
        keep = [i for i, v in enumerate(verdict) if v is None]
        drop = [i for i, v in enumerate(verdict) if v is not None]
        prov = table.column("provenance").to_pylist()
        ids = [(prov[i] or {}).get("prompt_id") or "" for i in drop]
        reasons = [REASON_SEED if verdict[i] < self.n_seeds else REASON_RUN for i in drop]
        dropped = table.take(pa.array(drop, pa.int64()))
        details = [failure_detail(p or {}, 1) for p in dropped.column("provenance").to_pylist()]
        rejected = reject_table(ids, reasons, details, stage="generate", samples=samples_struct(dropped))
        return table.take(pa.array(keep, pa.int64())), rejected


def _texts(table: pa.Table) -> list[str]:
    cols = [table.column(c).to_pylist() for c in ("instruction", "input", "output")]
    return [sample_text(a or "", b or "", c or "") for a, b, c in zip(*cols, strict=True)]
