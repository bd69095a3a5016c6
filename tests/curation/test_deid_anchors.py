"""Anchored pattern search finds exactly what the plain pattern search finds.

Each detector may try its full pattern only near a cheap anchor (a literal or class that
`re` scans for in C). That is a speed-up only if no match is lost or changed, so every
detector is compared with plain `finditer` on dense random texts built from the pieces
the patterns look for (cue words, suffixes, digits, separators, brackets), where matches
overlap, touch and sit at the batch separator.
"""

from __future__ import annotations

import random

import pytest

from curation.deid.recognizers import SEPARATOR, Recognizers

R = Recognizers()

_PIECES = (
    "省 自治区 市 区 县 州 旗 地区 路 街 大街 大道 胡同 巷 弄 道 号 号楼 单元 室 栋 小区 花园 苑 家园"
    " 患者 病人 家属 联系人 ： : 的 的家属 的女儿 ， , 男 女 今年 岁 周岁 多 说 告诉 签名 某 某某 X ×"
    " 2019 2023年 1998- 5月 12日 05. 年 月 日 号 年龄 享年 九十 一百 19 20 9 1 0 3 5 8 ９ ０ 1３ - . · ( ) （ ） + ＋ 86 00 空格 \u3000"
    " 患者：张 ，家属：王 病人:李 广东省深圳市 北京市朝阳区 市海淀县 人民路5号 花园3栋 1月2日 2019年 今年45岁 张伟说 95岁 年龄：92 九十三岁 一百零二周岁"
    " 张 王 李 欧阳 广东 北京 朝阳 海淀 人民 中山 建国 医院 科 入院 检查 通知 \n \x00"
).split()


def _texts(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [rng.choice(_PIECES) if rng.random() < 0.7 else str(rng.randint(0, 10**9)) for _ in range(30)]
        out.append("".join(p if p != "空格" else " " for p in parts))
    return out


@pytest.mark.parametrize("index", range(len(R.detectors)))
def test_anchored_search_equals_plain_search(index: int) -> None:
    det = R.detectors[index]
    joined = SEPARATOR.join(_texts(index, 1000))
    plain = [(m.start(), m.end(), m.groupdict()) for m in det.pattern.finditer(joined)]
    anchored = [(m.start(), m.end(), m.groupdict()) for m in det.finditer(joined)]
    assert anchored == plain
    assert plain or det.anchor is None or det.entity in {"HOSPITAL", "DEPARTMENT"}  # the texts reach it
