"""A labeled de-identification test set, built at run time, and recall/precision per entity type.

Real sentences come from the shared data folder (read, never copied); synthetic
PII of every type is inserted around them with the gold span recorded, including
the tricky forms: ID numbers ending in X, numbers split by spaces or dashes,
names directly followed by a symptom. `python -m tools.deid_labeled --data DIR` prints the table.
Used by bench/deid.py and tests/curation/test_deid_stage.py; the runtime package curation.deid
does not import it.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from curation.deid.digits import id_checksum
from curation.deid.lists import surnames
from curation.deid.recognizers import ENTITIES, Recognizers, Span

_GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华建国志红玉梅海燕鹏飞欣怡子涵浩然宇轩雨萱思远晓东"
)
_CITIES = [
    "北京",
    "上海",
    "广州",
    "深圳",
    "成都",
    "武汉",
    "杭州",
    "南京",
    "西安",
    "长沙",
    "郑州",
    "济南",
    "沈阳",
]
_DISTRICTS = [
    "朝阳区",
    "海淀区",
    "浦东新区",
    "天河区",
    "武侯区",
    "洪山区",
    "西湖区",
    "鼓楼区",
    "雁塔区",
    "岳麓区",
]
_ROADS = ["建国路", "人民路", "解放大道", "中山路", "长江路", "和平街", "新华路", "学府路"]
_ESTATES = ["阳光花园", "幸福家园", "翠湖小区", "金色公寓", "锦绣新村"]
_HOSP_CORE = ["协和", "第一人民", "中心", "中医", "第三人民", "同济", "湘雅", "华西", "仁济", "妇幼保健"]
_HOSP_SUFFIX = ["医院", "医院", "医院", "卫生院", "诊所"]
_DEPTS = ["心内科", "消化内科", "神经外科", "呼吸内科", "内分泌科", "急诊科", "儿科", "妇产科"]
_REGIONS = ["110105", "310104", "440106", "510107", "420111", "330106", "320106", "610113"]
_RECORD_LABELS = ["病案号", "住院号", "门诊号", "病历号"]


@dataclass
class LabeledText:
    text: str
    spans: list[Span] = field(default_factory=list)


class _Builder:
    """Appends pieces to a text, recording the gold span of each PII piece."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[Span] = []

    def add(self, text: str, entity: str | None = None) -> _Builder:
        if entity:
            self.spans.append((entity, self.length, self.length + len(text)))
        self.parts.append(text)
        self.length += len(text)
        return self

    def build(self) -> LabeledText:
        return LabeledText("".join(self.parts), self.spans)


def _split(rng: random.Random, digits: str, groups: list[int]) -> str:
    """Write a number as one block, or split by spaces or dashes at the given group sizes."""
    style = rng.choice(["", "", " ", "-"])
    if not style:
        return digits
    out, pos = [], 0
    for g in groups:
        out.append(digits[pos : pos + g])
        pos += g
    return style.join(out)


def resident_id(rng: random.Random, *, force_x: bool = False) -> str:
    while True:
        birth = f"{rng.randint(1930, 2015)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        first = rng.choice(_REGIONS) + birth + f"{rng.randint(0, 999):03d}"
        check = id_checksum(first)
        if not force_x or check == "X":
            return first + check


def _name(rng: random.Random) -> str:
    return rng.choice(surnames()[:120]) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice([1, 2, 2])))


_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_DATE_AFTER = ["2015年1月7日入院", "2019年7月19日就诊", "2021年3月2日复查"]


def _person(rng: random.Random, b: _Builder, sentence: str) -> None:
    name = _name(rng)
    surname = name[: 2 if name[:2] in surnames() else 1]
    form = rng.randrange(12)
    if form == 0:  # name right before a symptom
        b.add("患者").add(name, "PERSON").add(sentence)
    elif form == 1:
        b.add("姓名：").add(name, "PERSON").add("，" + sentence)
    elif form == 2:
        b.add(surname, "PERSON").add(rng.choice(["先生", "女士"]) + "咨询：" + sentence)
    elif form == 3:
        b.add(sentence + "。").add(name, "PERSON").add(rng.choice(["医生", "主任", "教授"]) + "建议复查。")
    elif form == 4:
        b.add("患者").add(surname + rng.choice(["某某", "某"]), "PERSON").add("，" + sentence)
    elif form == 5:
        b.add(sentence + "，家属：").add(name, "PERSON").add("。")
    elif form == 6:  # family cue
        b.add("我是").add(name, "PERSON").add(
            rng.choice(["的家属", "的女儿", "的儿子", "的爱人"]) + "，" + sentence
        )
    elif form == 7:  # doctor cue before the name
        b.add(rng.choice(["主治医生", "主管医生", "接诊医生"])).add(name, "PERSON").add("说" + sentence)
    elif form == 8:  # 先生/女士 before an identifier
        b.add(name, "PERSON").add(rng.choice(["先生", "女士"]) + "身份证号丢失，" + sentence)
    elif form == 9:  # no cue word: the name is known by what follows it
        b.add(name, "PERSON").add(rng.choice(["，男，", "，女，"]) + f"{rng.randint(20, 80)}岁，" + sentence)
    elif form == 10:
        b.add(sentence + "。签名：").add(name, "PERSON")
    else:
        b.add("我叫").add(name, "PERSON").add("，" + sentence)


def _phone(rng: random.Random, b: _Builder, sentence: str) -> None:
    form = rng.randrange(6)
    mobile = rng.choice(["13", "15", "18", "17", "19"]) + "".join(rng.choice("0123456789") for _ in range(9))
    area = rng.choice(["010", "021", "0755", "028", "0571", "027"])
    local = "".join(rng.choice("0123456789") for _ in range(8 if len(area) == 3 else rng.choice([7, 8])))
    if form == 0:
        num = _split(rng, mobile, [3, 4, 4])
        b.add(sentence + rng.choice(["，联系电话：", "，有问题请打", "。手机"])).add(num, "PHONE").add("。")
    elif form == 1:  # a landline after a cue: its local part may start with 0 or 1
        num = rng.choice([f"{area}-{local}", f"({area}){local}", f"{area} {local[:4]} {local[4:]}"])
        b.add(sentence + rng.choice(["，科室电话", "，座机：", "，联系方式 ", "。Tel: "])).add(num, "PHONE")
    elif form == 2:  # run straight into a date
        num = _split(rng, mobile, [3, 4, 4])
        b.add(rng.choice(["电话", "手机号"])).add(num, "PHONE").add(rng.choice(_DATE_AFTER) + "，" + sentence)
    elif form == 3:  # full-width digits, or split by dots
        num = (
            mobile.translate(_FULLWIDTH) if rng.random() < 0.5 else f"{mobile[:3]}.{mobile[3:7]}.{mobile[7:]}"
        )
        b.add(sentence + "，打").add(num, "PHONE").add("找我。")
    elif form == 4:  # a landline with no cue, written as one
        num = rng.choice([f"{area}-{local}", f"（{area}）{local}"])
        b.add(sentence + "，有事可拨").add(num, "PHONE").add("。")
    else:
        b.add(sentence + "，联系").add(mobile, "PHONE")


def _id_card(rng: random.Random, b: _Builder, sentence: str) -> None:
    idn = resident_id(rng, force_x=rng.random() < 0.3)
    form = rng.randrange(4)
    if form == 0:  # run straight into a date
        b.add(rng.choice(["身份证号码为", "身份证"])).add(idn, "ID_CARD").add(
            rng.choice(_DATE_AFTER) + "，" + sentence
        )
    elif form == 1:
        b.add("证件号").add(idn.translate(_FULLWIDTH), "ID_CARD").add("，" + sentence)
    else:
        b.add(rng.choice(["身份证号：", "身份证", "证件号码 "])).add(_split(rng, idn, [6, 8, 4]), "ID_CARD")
        b.add("，" + sentence)


def _email(rng: random.Random, b: _Builder, sentence: str) -> None:
    user = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 9)))
    addr = f"{user}{rng.choice(['', '.zh', '_88', '2020'])}@{rng.choice(['163.com', 'qq.com', 'hospital.org.cn'])}"
    b.add(sentence + "，报告发到邮箱").add(addr, "EMAIL").add("。")


def _record(rng: random.Random, b: _Builder, sentence: str) -> None:
    no = rng.choice(["", "ZY", "MZ"]) + "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 10)))
    b.add(rng.choice(_RECORD_LABELS) + rng.choice(["：", ":", " "])).add(no, "MEDICAL_RECORD").add(
        "，" + sentence
    )


_KNOWN_HOSPITALS = [
    "四川大学华西医院",
    "北京协和医院",
    "复旦大学附属中山医院",
    "中南大学湘雅医院",
    "武汉同济医院",
    "浙大一院",
]


def _hospital(rng: random.Random, b: _Builder, sentence: str) -> None:
    if rng.random() < 0.35:  # a well-known hospital with no cue word before it
        b.add(rng.choice(_KNOWN_HOSPITALS), "HOSPITAL").add(
            rng.choice(["检查结果显示", "的医生说"]) + sentence
        )
        return
    hosp = (
        rng.choice(_CITIES)
        + rng.choice(["", "市", "大学附属"])
        + rng.choice(_HOSP_CORE)
        + rng.choice(_HOSP_SUFFIX)
    )
    b.add(rng.choice(["在", "曾去", "于"])).add(hosp, "HOSPITAL")
    if hosp.endswith("医院") and rng.random() < 0.5:
        b.add(rng.choice(_DEPTS), "DEPARTMENT")
    b.add("就诊，" + sentence)


def _address(rng: random.Random, b: _Builder, sentence: str) -> None:
    city = rng.choice(_CITIES) + "市" + rng.choice(_DISTRICTS)
    if rng.random() < 0.5:
        addr = city + rng.choice(_ROADS) + f"{rng.randint(1, 300)}号"
    else:
        addr = (
            city
            + rng.choice(_ESTATES)
            + f"{rng.randint(1, 30)}栋{rng.randint(1, 6)}单元{rng.randint(101, 2804)}室"
        )
    b.add(rng.choice(["家住", "住址：", "现住"])).add(addr, "ADDRESS").add("，" + sentence)


def _date(rng: random.Random, b: _Builder, sentence: str) -> None:
    y, m, d = rng.randint(2000, 2024), rng.randint(1, 12), rng.randint(1, 28)
    text = rng.choice(
        [f"{y}年{m}月{d}日", f"{y}-{m:02d}-{d:02d}", f"{y}/{m}/{d}", f"{m}月{d}日", f"{y}.{m:02d}.{d:02d}"]
    )
    b.add(rng.choice(["于", "", "入院日期："])).add(text, "DATE").add(
        rng.choice(["入院，", "就诊，"]) + sentence
    )


def _age(rng: random.Random, b: _Builder, sentence: str) -> None:
    age = rng.randint(90, 104)
    b.add(rng.choice(["患者男，", "老人", "年龄："])).add(f"{age}岁", "AGE").add("，" + sentence)


INSERTERS: dict[str, Callable[[random.Random, _Builder, str], None]] = {
    "PERSON": _person,
    "PHONE": _phone,
    "ID_CARD": _id_card,
    "EMAIL": _email,
    "MEDICAL_RECORD": _record,
    "HOSPITAL": _hospital,
    "ADDRESS": _address,
    "DATE": _date,
    "AGE": _age,
}

_SENT_END = re.compile(r"(?<=[。！？!?])")


def real_sentences(data_dir: Path, limit: int, seed: int = 0) -> list[str]:
    """Medical sentences from the Toyhom dialogues and CMeEE (shared data, read in place)."""
    out: list[str] = []
    toyhom = data_dir / "toyhom_dialogue" / "样例_内科5000-6000.utf8.csv"
    with open(toyhom, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            out.extend(_sentences(row.get("ask", "")))
    cmeee = json.loads((data_dir / "cmeee_dev" / "CMeEE_dev.json").read_text(encoding="utf-8"))
    for rec in cmeee:
        out.extend(_sentences(rec["text"]))
    rng = random.Random(seed)
    rng.shuffle(out)
    return out[:limit]


def _sentences(text: str) -> Iterable[str]:
    for s in _SENT_END.split(text.replace("\n", "")):
        s = s.strip()
        if 8 <= len(s) <= 80:
            yield s


def clean_lines(data_dir: Path, per_source: int, seed: int = 0) -> dict[str, list[str]]:
    """Real lines with no inserted personal data, per source: IMCS-21 dialogue utterances (with their
    speaker tags), Toyhom questions and answers, CMeEE sentences. Read in place, never copied."""
    imcs = [
        ln.split("\t")[0]
        for ln in (data_dir / "imcs21_utterances" / "dac_dev.txt").read_text(encoding="utf-8").splitlines()
        if ln.strip()
    ]
    toyhom: list[str] = []
    with open(
        data_dir / "toyhom_dialogue" / "样例_内科5000-6000.utf8.csv", encoding="utf-8", newline=""
    ) as fh:
        for row in csv.DictReader(fh):
            toyhom.extend(x for x in (row.get("ask", ""), row.get("answer", "")) if x)
    cmeee = [
        r["text"] for r in json.loads((data_dir / "cmeee_dev" / "CMeEE_dev.json").read_text(encoding="utf-8"))
    ]
    rng = random.Random(seed)
    out = {}
    for name, lines in (("imcs21", imcs), ("toyhom", toyhom), ("cmeee", cmeee)):
        lines = list(lines)
        rng.shuffle(lines)
        out[name] = lines[:per_source]
    return out


def build_labeled_set(
    data_dir: Path, n: int = 2000, seed: int = 7, clean_share: float = 0.2
) -> list[LabeledText]:
    """n texts: each real sentence gets one PII insertion of a rotating type, or none (clean_share)."""
    sentences = real_sentences(data_dir, n, seed)
    rng = random.Random(seed)
    kinds = list(INSERTERS)
    out: list[LabeledText] = []
    for i, sentence in enumerate(sentences):
        if rng.random() < clean_share:
            out.append(LabeledText(sentence))
            continue
        b = _Builder()
        INSERTERS[kinds[i % len(kinds)]](rng, b, sentence)
        out.append(b.build())
    return out


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def evaluate(predicted: list[list[Span]], gold: list[LabeledText]) -> dict[str, Score]:
    """Span-level scores per entity type: a prediction counts if it overlaps a gold span of the same type."""
    scores = {e: Score() for e in ENTITIES}
    for pred, item in zip(predicted, gold, strict=True):
        for ent, s, e in item.spans:
            hit = any(p[0] == ent and p[1] < e and s < p[2] for p in pred)
            scores[ent].tp += hit
            scores[ent].fn += not hit
        for ent, s, e in pred:
            if not any(g[0] == ent and g[1] < e and s < g[2] for g in item.spans):
                scores[ent].fp += 1
    return scores


def format_scores(scores: dict[str, Score]) -> str:
    lines = [f"{'entity':<16}{'gold':>6}{'tp':>6}{'fp':>6}{'recall':>9}{'precision':>11}"]
    scores = {e: s for e, s in scores.items() if s.tp + s.fn + s.fp}
    for ent, sc in scores.items():
        lines.append(f"{ent:<16}{sc.tp + sc.fn:>6}{sc.tp:>6}{sc.fp:>6}{sc.recall:>9.3f}{sc.precision:>11.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    gold = build_labeled_set(args.data, args.n, args.seed)
    pred = Recognizers().detect_many([g.text for g in gold])
    print(format_scores(evaluate(pred, gold)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
