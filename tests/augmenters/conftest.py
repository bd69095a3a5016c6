"""Samples the augmenter tests share: written here, in the shape real generated samples have."""

from __future__ import annotations

import pytest

from medaug.lexicon import load_lexicon
from medaug.schema import Area, Sample, Task

MI_Q = "患者男，58岁，胸口疼30分钟，出一身冷汗，心电图示ST段抬高，应该怎么处理？"
MI_A = "考虑急性心肌梗死，ST段抬高提示心肌损伤。应立即拨打120，尽快送往有导管室的医院开通血管。可嚼服阿司匹林300mg。"
PED_Q = "孩子3岁，拉肚子三天了，大便有点稀，发烧38.5度，精神还可以。"
PED_A = "可能是急性胃肠炎，注意补液，可以用口服补液盐；体温超过38.5℃可用布洛芬10mg/kg。如果精神萎靡、尿少，请尽快就医。"
DM_Q = "空腹血糖8.9mmol/L，糖化血红蛋白升高，老想喝水，怎么办？"
DM_A = "结合血糖升高和多饮，考虑2型糖尿病。建议生活方式干预并口服二甲双胍500mg每日两次，定期复查。"


def make_samples() -> list[Sample]:
    return [
        Sample(
            instruction=MI_Q, output=MI_A, task=Task.medical_qa, area=Area.cardiovascular, icd10=["I21.9"]
        ),
        Sample(instruction=PED_Q, output=PED_A, task=Task.medical_qa, area=Area.pediatrics),
        Sample(instruction=DM_Q, output=DM_A, task=Task.medical_qa, area=Area.endocrine),
    ]


@pytest.fixture
def samples() -> list[Sample]:
    return make_samples()


@pytest.fixture(scope="session")
def core_lexicon():
    return load_lexicon()
