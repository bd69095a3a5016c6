"""Recognizers per entity type, including the tricky forms the issue names."""

from __future__ import annotations

import pytest

from curation.deid.recognizers import Recognizers, id_checksum, valid_resident_id

R = Recognizers()


def found(text: str) -> list[tuple[str, str]]:
    return [(e, text[s:t]) for e, s, t in R.detect(text)]


def make_id(first17: str) -> str:
    return first17 + id_checksum(first17)


def test_gb11643_checksum_known_values() -> None:
    # 11010519491231002X is the standard's worked example; the X check digit comes out of the sum.
    assert id_checksum("11010519491231002") == "X"
    assert valid_resident_id("11010519491231002X")
    assert valid_resident_id("11010519491231002x")
    assert not valid_resident_id("110105194912310021")  # wrong check digit
    assert not valid_resident_id("110105194913310024")  # month 13


@pytest.mark.parametrize(
    "written",
    [
        "11010519491231002X",
        "110105 19491231 002X",
        "110105-1949-1231-002X",
        "１１０１０５１９４９１２３１００２Ｘ",
    ],
)
def test_id_card_with_x_and_separators(written: str) -> None:
    assert found(f"身份证号{written}，请核对") == [("ID_CARD", written)]


def test_id_card_with_bad_checksum_is_not_an_id() -> None:
    assert all(e != "ID_CARD" for e, _ in found("编号110105194912310021"))


def test_id_run_into_other_digits_is_found() -> None:
    idn = make_id("42010219730704772")
    assert found(f"身份证号码为{idn}2015年1月7日入院") == [("ID_CARD", idn), ("DATE", "2015年1月7日")]
    assert ("ID_CARD", idn) in found("条码9" + idn + "9")  # checksum + birth date find the window


def test_eighteen_digits_without_a_valid_birth_date_are_no_id() -> None:
    first = "42010219731304772"  # month 13
    assert all(e != "ID_CARD" for e, _ in found("编号" + first + id_checksum(first)))


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("电话153-6967-35372019年7月19日入院", "153-6967-3537"),
        ("科室电话021-09768032", "021-09768032"),  # after a cue a local starting with 0 is still a phone
        ("座机：1234 5678，工作日", "1234 5678"),
        ("Tel: 0571.8765.4321", "0571.8765.4321"),
        ("复查2019-07-19 13812345678", "13812345678"),
        ("有事打１３８１２３４５６７８", "１３８１２３４５６７８"),
        ("联系方式（0755）87654321", "（0755）87654321"),
    ],
)
def test_phones_inside_runs_and_after_cues(text: str, phone: str) -> None:
    assert ("PHONE", phone) in found(text)


def test_numbers_that_are_not_phones() -> None:
    assert found("血小板计数 150 x10^9/L，白细胞 12.5，尿蛋白 0.15 g/24h") == []
    assert found("国药准字H20020603，批号20230105") == []


@pytest.mark.parametrize(
    "phone",
    [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+86 13812345678",
        "010-87654321",
        "(021)62345678",
        "0755 8765 4321",
    ],
)
def test_phones(phone: str) -> None:
    assert found(f"有事打{phone}联系") == [("PHONE", phone)]


def test_short_numbers_and_doses_are_not_phones() -> None:
    assert found("每日服用500mg，共3次，体温38.5度，血压140/90") == []


def test_email() -> None:
    assert found("报告发到zhang.san_88@hospital.org.cn就行") == [("EMAIL", "zhang.san_88@hospital.org.cn")]


@pytest.mark.parametrize(
    ("label", "value"), [("病案号：", "BA2023001"), ("住院号", "ZY20230512"), ("门诊号:", "0484495003")]
)
def test_record_numbers(label: str, value: str) -> None:
    # 0484495003 also looks like a landline; the label makes it a record number.
    assert found(f"{label}{value}，复诊") == [("MEDICAL_RECORD", value)]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("患者王芳头痛三天", "王芳"),  # name directly followed by a symptom
        ("患者张某某，男，45岁", "张某某"),
        ("姓名：李四 性别：男", "李四"),
        ("欧阳娜娜女士咨询", "欧阳娜娜"),
        ("患儿刘洋发热2天", "刘洋"),
    ],
)
def test_person_names(text: str, name: str) -> None:
    assert ("PERSON", name) in found(text)


def test_titles_keep_the_title_and_remove_the_surname() -> None:
    assert found("张先生咨询，王建国主任建议复查") == [("PERSON", "张"), ("PERSON", "王建国")]


@pytest.mark.parametrize(
    "text",
    [
        "患者应进行外科治疗",
        "患者于2天前出现发热",
        "去做彩超的时候医生说没事",
        "谢谢医生",
        "那个医生说没事",
        "患者查体：血压正常",
    ],
)
def test_words_after_cues_are_not_names(text: str) -> None:
    assert [e for e, _ in found(text) if e == "PERSON"] == []


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("我是王建国的家属，想问", "王建国"),
        ("主治医生李明说要手术", "李明"),
        ("孙丽女士身份证号丢了", "孙丽"),
        ("签名：赵磊", "赵磊"),
        ("我叫高明，今年30岁", "高明"),  # 高明 is also a word; 我叫 says it is a name
        ("刘建华，男，56岁，因胸痛入院", "刘建华"),
        ("陈静的女儿陪同就诊", "陈静"),
    ],
)
def test_name_cues(text: str, name: str) -> None:
    assert ("PERSON", name) in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "患者常见贫血",
        "伴发脑膜炎的患者白细胞明显增高",
        "患者：小儿氨酚黄那敏可以吃吗",
        "医生：平时血压多少",
        "家属：他高血压十年了",
        "患者高血压病史10年",
        "医生明确说了没事",
        "康复医生建议锻炼",
    ],
)
def test_speaker_tags_and_clinical_words_are_not_names(text: str) -> None:
    assert [s for e, s in found(text) if e == "PERSON"] == []


@pytest.mark.parametrize(
    ("text", "hospital"),
    [
        ("四川大学华西医院检查结果显示正常", "四川大学华西医院"),
        ("应立即送北京协和医院急诊", "北京协和医院"),
        ("在平邑县人民医院做的CT", "平邑县人民医院"),
        ("去平邑县第一人民医院复查", "平邑县第一人民医院"),
    ],
)
def test_hospitals_by_gazetteer_and_pattern(text: str, hospital: str) -> None:
    assert ("HOSPITAL", hospital) in found(text)


@pytest.mark.parametrize(
    "text", ["应立即送医院就诊", "离医院远", "本地中医院看过", "去医院查一下", "儿童医院挂号难"]
)
def test_generic_hospital_words_name_no_hospital(text: str) -> None:
    assert [s for e, s in found(text) if e == "HOSPITAL"] == []


def test_user_hospitals_are_added_to_the_gazetteer() -> None:
    text = "在仁心康复医院住过"
    assert [e for e, _ in found(text) if e == "HOSPITAL"] == []
    mine = Recognizers(hospitals=["仁心康复医院"])
    assert [(e, text[s:t]) for e, s, t in mine.detect(text)] == [("HOSPITAL", "仁心康复医院")]


@pytest.mark.parametrize(
    "text",
    [
        "2003年4月全国启动非典防控应急响应",
        "卫生部2007年5月下发通知",
        "该研究2002年6月发表于中华内科杂志",
    ],
)
def test_historical_and_publication_dates_are_kept(text: str) -> None:
    assert [s for e, s in found(text) if e == "DATE"] == []


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("我2019年3月12日做了胃镜", "2019年3月12日"),
        ("出生于1990-05-06", "1990-05-06"),
        ("检查于2021.3.5", "2021.3.5"),
    ],
)
def test_personal_dates_are_found(text: str, date: str) -> None:
    assert ("DATE", date) in found(text)


def test_hospital_and_department() -> None:
    assert found("于首都医科大学附属北京天坛医院神经外科就诊") == [
        ("HOSPITAL", "首都医科大学附属北京天坛医院"),
        ("DEPARTMENT", "神经外科"),
    ]


@pytest.mark.parametrize(
    "text", ["去当地医院看看", "哪家医院治疗癫痫最好", "附近的社区医院", "四五家医院都看过"]
)
def test_generic_hospital_mentions_are_kept(text: str) -> None:
    assert found(text) == []


@pytest.mark.parametrize(
    ("text", "addr"),
    [
        ("家住北京市朝阳区建国路88号3栋2单元501室，", "北京市朝阳区建国路88号3栋2单元501室"),
        ("住址：广东省广州市天河区，", "广东省广州市天河区"),
        ("在上海市浦东新区住", "上海市浦东新区"),
        ("我在幸福家园12栋3单元402室住", "幸福家园12栋3单元402室"),
    ],
)
def test_addresses(text: str, addr: str) -> None:
    assert found(text) == [("ADDRESS", addr)]


@pytest.mark.parametrize(
    "date", ["2023年5月12日", "2023-05-12", "2023/5/12", "2023.05.12", "5月12日", "2023年5月"]
)
def test_dates(date: str) -> None:
    assert found(f"于{date}入院") == [("DATE", date)]


def test_impossible_dates_are_not_dates() -> None:
    assert found("编号2023-13-45") == []


def test_only_ages_over_89_are_found() -> None:
    assert found("患者89岁") == []
    assert found("患者92岁，老伴九十五岁，年龄：101") == [
        ("AGE", "92岁"),
        ("AGE", "九十五岁"),
        ("AGE", "101"),
    ]


def test_batch_detection_matches_single_texts() -> None:
    texts = ["患者王芳头痛", None, "", "电话13812345678", "住院号：ZY123456"]
    assert R.detect_many(texts) == [R.detect(t or "") for t in texts]


def test_unknown_entity_type_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown entity type"):
        Recognizers(["PERSON", "SSN"])
