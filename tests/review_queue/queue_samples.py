"""Synthetic de-identified samples for the queue tests (written here, not derived from shared data)."""

from __future__ import annotations

from medaug.schema import DeidEntity, ErrorType, Label, Sample


def make_samples(
    n: int, *, prefix: str = "患者", deid: bool = True, area: str = "cardiovascular", start: int = 0
) -> list[Sample]:
    out = []
    for i in range(start, start + n):
        neg = i % 5 == 4
        out.append(
            Sample(
                instruction=f"{prefix}{i}号：胸口疼三天，活动后加重，需要做什么检查？",
                output=f"建议尽快做心电图和心肌酶检查（编号{i}），排除急性冠脉综合征。",
                area=area,
                task="medical_qa",
                label=Label.negative if neg else Label.positive,
                error_type=ErrorType.wrong_drug if neg else None,
                deid=[DeidEntity(entity="PERSON", count=1)] if deid else None,
            )
        )
    return out
