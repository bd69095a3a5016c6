"""A seed written for these tests and what the real augmenters derive from it: a negative and a paraphrase;
a near copy of the seed released as a dataset version (the evidence's released neighbour)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from medaug.schema import DeidEntity, ErrorType, Sample, rows_to_table, samples_to_table, table_to_samples

SEED = Sample(
    instruction="孩子5岁，发烧5天了，吃退烧药也不退，眼睛发红，嘴唇干裂，手脚有点肿，这是什么病？",
    output="根据发热超过5天、双眼结膜充血、口唇皲裂和手足硬肿，最可能是川崎病。建议尽快到医院儿科就诊，"
    "完善血常规、C反应蛋白和心脏超声检查，以便及早使用丙种球蛋白治疗，预防冠状动脉损害。",
    task="medical_qa",
    area="pediatrics",
    deid=[DeidEntity(entity="PERSON", count=0)],
)

if TYPE_CHECKING:
    from review_queue.store import QueueStore


@cache
def derived() -> tuple[Sample, Sample, Sample]:
    """(seed, wrong-diagnosis negative, lexicon paraphrase), made by augmenters.negatives / .paraphrase."""
    from augmenters.negatives import negative_rows
    from augmenters.paraphrase import paraphrase_rows
    from medaug.lexicon import load_lexicon

    row = samples_to_table([SEED]).to_pylist()[0]
    neg = negative_rows([row], {ErrorType.wrong_diagnosis: 1.0})
    para = paraphrase_rows([row], load_lexicon(), variants=1)
    assert len(neg) == 1 and len(para) == 1, (neg, para)
    n, p = table_to_samples(rows_to_table([neg[0], para[0]]))
    return SEED, n, p


def cousin() -> Sample:
    """A sample close to the seed (same area and task) that is not its parent."""
    return SEED.model_copy(
        update={"id": "cousin-1", "instruction": SEED.instruction.replace("5岁", "6岁").replace("5天", "6天")}
    )


def release(store: QueueStore, samples: list[Sample], root: Path, dataset: str = "peds") -> None:
    """Queue `samples`, approve each twice and merge them into `root`/`dataset` as a new version."""
    from review_queue.decisions import Decision
    from review_queue.release import merge_from_store

    store.push(samples, run_id="released")
    for who in ("rel-a", "rel-b"):
        for item in store.pull(who, len(samples)):
            store.submit(who, item.id, Decision(decision="approve"))
    merge_from_store(store, root=root, dataset=dataset, created_by="mia")
