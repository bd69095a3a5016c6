"""Template library, knowledge table and quota expansion."""

from __future__ import annotations

from collections import Counter

import pytest

from generators.expand import AGE_BANDS, Quotas, allocate, expand
from generators.knowledge import load_comorbidities, load_knowledge
from generators.templates import SLOTS, TemplateError, load_template_file, load_templates
from medaug.schema import Area, Task


def _expand(total: int, seed: int, **kw) -> list:
    return expand(load_templates(), load_knowledge(), load_comorbidities(), Quotas(total=total, **kw), seed)


def test_library_covers_every_task_and_area():
    templates = load_templates()
    for task in (t for t in Task if t != Task.other):
        for area in (a for a in Area if a != Area.general):
            assert any(t.task == task and area in t.areas for t in templates), (task, area)
    assert {d.area for d in load_knowledge()} == {a for a in Area if a != Area.general}
    assert all(t.slots() <= SLOTS for t in templates)


def test_expansion_is_deterministic_and_meets_quotas():
    a, b = _expand(240, 3), _expand(240, 3)
    assert [r.user for r in a] == [r.user for r in b]
    assert len({r.prompt_id for r in a}) == 240
    assert [r.user for r in _expand(240, 4)] != [r.user for r in a]
    tasks = Counter(r.task for r in a)
    assert set(tasks.values()) == {60}
    areas = Counter(r.area for r in a)
    assert set(areas.values()) == {40}
    for r in a:
        assert "{" not in r.user and "}" not in r.user


def test_weighted_quotas():
    rows = _expand(100, 1, areas={"pediatrics": 3, "cardiovascular": 1}, tasks={"medical_qa": 1})
    c = Counter(r.area for r in rows)
    assert c[Area.pediatrics] == 75 and c[Area.cardiovascular] == 25
    assert all(r.task == Task.medical_qa for r in rows)
    for r in rows:
        if r.area == Area.pediatrics:
            assert r.age <= 14  # diseases bound the age even when the band does not fit


def test_age_band_quota_respected_where_diseases_allow():
    rows = _expand(200, 2, areas={"cardiovascular": 1}, age_bands={"elderly": 1})
    lo, hi = AGE_BANDS["elderly"]
    assert all(lo <= r.age <= hi for r in rows)


def test_allocate_exact():
    assert allocate(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert sum(allocate(97, {"x": 0.3, "y": 0.7}).values()) == 97


def test_unknown_slot_is_a_load_error(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text(
        "templates:\n  - id: bad\n    task: medical_qa\n    areas: '*'\n    system: s\n    user: '请问{disease}和{blood_type}'\n",
        encoding="utf-8",
    )
    with pytest.raises(TemplateError, match=r"t\.yaml: template bad: unknown slot.*'blood_type'"):
        load_template_file(p)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "templates:\n  - id: m\n    task: medical_qa\n    areas: '*'\n    system: s\n    user: '{disease'\n",
            "malformed placeholder",
        ),
        (
            "templates:\n  - id: m\n    task: nursing\n    areas: '*'\n    system: s\n    user: u\n",
            "template m: task",
        ),
        (
            "templates:\n  - id: m\n    areas: '*'\n    system: s\n    user: u\n",
            "template m: task: Field required",
        ),
        ("templates: [\n", "cannot read template library"),
        ("nothing: here\n", "expected a mapping with a 'templates' list"),
    ],
)
def test_malformed_templates(tmp_path, body, message):
    p = tmp_path / "t.yaml"
    p.write_text(body, encoding="utf-8")
    with pytest.raises(TemplateError, match=message):
        load_template_file(p)


def test_quota_errors():
    with pytest.raises(ValueError, match="unknown band"):
        Quotas(total=10, age_bands={"teen": 1})
    with pytest.raises(ValueError, match="positive weight"):
        Quotas(total=10, tasks={"medical_qa": 0})
