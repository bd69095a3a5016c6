"""presidio-anonymizer operators per entity: placeholder, mask, stable salted hash, encrypt/decrypt, dates, ages."""

from __future__ import annotations

import pytest

from curation.deid import DeidConfig, DeidConfigError, OperatorSpec, deidentify_text, reidentify_text
from curation.deid.engine import date_offset, shift_date

SALT = "a-fixed-salt-of-32-bytes-length!"
KEY = "0123456789abcdef0123456789abcdef"


def cfg(**ops: str) -> DeidConfig:
    return DeidConfig(salt=SALT, key=KEY, operators={e: OperatorSpec(operator=o) for e, o in ops.items()})


def test_default_placeholders_and_counts() -> None:
    text, counts = deidentify_text("患者王芳头痛，电话13812345678，住院号：ZY123456，在北京协和医院就诊")
    assert text == "患者〈姓名〉头痛，电话〈电话〉，住院号：〈病案号〉，在〈医院〉就诊"
    assert counts == {"PERSON": 1, "PHONE": 1, "MEDICAL_RECORD": 1, "HOSPITAL": 1}


def test_mask_hides_every_character() -> None:
    text, _ = deidentify_text("电话13812345678。", cfg(PHONE="mask"))
    assert text == "电话***********。"


def test_salted_hash_is_stable_and_ignores_separators() -> None:
    a, _ = deidentify_text("电话138 1234 5678", cfg(PHONE="hash"))
    b, _ = deidentify_text("联系人电话：138-1234-5678", cfg(PHONE="hash"))
    token = a.removeprefix("电话")
    assert token.startswith("〈电话:") and token in b
    other_salt = DeidConfig(
        salt="another-salt-of-sufficient-size", operators={"PHONE": OperatorSpec(operator="hash")}
    )
    c, _ = deidentify_text("电话138 1234 5678", other_salt)
    assert c != a and "13812345678" not in c


def test_same_person_same_token_within_a_text() -> None:
    text, counts = deidentify_text("姓名：王芳。患者王芳头痛", cfg(PERSON="hash"))
    tokens = [t for t in text.split("〈") if t.startswith("姓名:")]
    assert len(tokens) == 2 and tokens[0].split("〉")[0] == tokens[1].split("〉")[0]
    assert counts["PERSON"] == 2


def test_hash_needs_a_long_enough_salt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDAUG_DEID_SALT", raising=False)
    with pytest.raises(DeidConfigError, match="salt"):
        deidentify_text("电话13812345678", DeidConfig(operators={"PHONE": OperatorSpec(operator="hash")}))
    with pytest.raises(DeidConfigError, match="at least 16"):
        deidentify_text(
            "电话13812345678", DeidConfig(salt="short", operators={"PHONE": OperatorSpec(operator="hash")})
        )


def test_salt_from_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SALT", SALT)
    from_env = DeidConfig(salt_env="MY_SALT", operators={"PHONE": OperatorSpec(operator="hash")})
    assert (
        deidentify_text("电话13812345678", from_env)[0]
        == deidentify_text("电话13812345678", cfg(PHONE="hash"))[0]
    )


def test_encrypt_decrypt_round_trip() -> None:
    original = "患者王芳，电话138-1234-5678，身份证11010519491231002X"
    text, _ = deidentify_text(original, cfg(PERSON="encrypt", PHONE="encrypt", ID_CARD="encrypt"))
    assert "王芳" not in text and "1234" not in text and "〈PHONE:" in text
    assert reidentify_text(text, KEY) == original


def test_encrypt_needs_an_aes_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDAUG_DEID_KEY", raising=False)
    with pytest.raises(DeidConfigError, match="key"):
        deidentify_text("电话13812345678", DeidConfig(operators={"PHONE": OperatorSpec(operator="encrypt")}))


def test_dates_shift_consistently_within_a_sample() -> None:
    days = date_offset(SALT.encode(), "sample-1", 365)
    assert days != 0 and days == date_offset(SALT.encode(), "sample-1", 365)
    assert shift_date("2023-01-31", 1) == "2023-02-01"
    assert shift_date("2023年12月31日", 1) == "2024年1月1日"
    assert shift_date("5月12号", -12) == "4月30号"
    text, _ = deidentify_text("2023年5月1日发病，2023年5月11日入院", cfg())
    first, second = text.split("发病，")
    from datetime import date

    def parse(s: str) -> date:
        y, rest = s.split("年")
        m, d = rest.split("月")
        return date(int(y), int(m), int(d.rstrip("日入院")))

    assert (parse(second) - parse(first)).days == 10  # the interval survives the shift
    assert "2023年5月1日" not in text


def test_generalize_keeps_year_and_ages_become_90_plus() -> None:
    text, counts = deidentify_text("2023年5月12日就诊，患者95岁", cfg(DATE="generalize"))
    assert text == "2023年就诊，患者90岁以上"
    assert counts == {"DATE": 1, "AGE": 1}


def test_keep_operator_leaves_text_and_counts_nothing() -> None:
    text, counts = deidentify_text("在北京协和医院就诊", cfg(HOSPITAL="keep"))
    assert text == "在北京协和医院就诊" and counts == {}


def test_value_operators_only_fit_their_types() -> None:
    with pytest.raises(ValueError, match="only applies"):
        DeidConfig(operators={"PERSON": OperatorSpec(operator="shift")})
    with pytest.raises(ValueError, match="unknown entity"):
        DeidConfig(operators={"SSN": OperatorSpec()})


@pytest.mark.parametrize("operator", ["replace", "hash", "keep", "generalize", "shift"])
def test_direct_splice_equals_presidio(operator: str) -> None:
    """Value-function operators are spliced without presidio; the text must be what presidio writes."""
    from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

    from curation.deid import Deidentifier
    from curation.deid.engine import date_offset, shift_date

    ops = {"DATE": operator if operator in ("generalize", "shift", "keep") else "shift"}
    if operator in ("replace", "hash", "keep"):
        ops.update(PERSON=operator, PHONE=operator, HOSPITAL=operator)
    if operator == "generalize":
        ops["AGE"] = operator
    deid = Deidentifier(cfg(**ops))
    text = "患者王芳，95岁，2023年5月12日在北京协和医院就诊，电话13812345678，家属李建国说2023-05-14复查"
    spans = deid.recognizers.detect(text)
    assert len(spans) >= 5
    operators = dict(deid._operators)
    if ops["DATE"] == "shift":
        days = date_offset(deid._salt, "sample-1", deid.config.date_max_shift_days)
        operators["DATE"] = OperatorConfig("custom", {"lambda": lambda v: shift_date(v, days)})
    results = [RecognizerResult(e, s, t, 1.0) for e, s, t in spans]
    assert deid.anonymize(text, spans, "sample-1") == deid.engine.anonymize(text, results, operators).text
