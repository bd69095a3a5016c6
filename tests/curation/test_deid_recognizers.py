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


def test_id_inside_longer_number_is_not_matched() -> None:
    assert all(e != "ID_CARD" for e, _ in found("条码9" + make_id("44010619900307123") + "9"))


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
