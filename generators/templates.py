"""The template library: prompt templates per task and disease area, validated when loaded.

A template names its slots with {slot}; an unknown slot, an unbalanced brace or a
missing key is an error at load time (file and template id in the message), not
a KeyError halfway through a cluster job.
"""

from __future__ import annotations

import string
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from medaug.schema import Area, Task

DEFAULT_TEMPLATES = Path(__file__).parent / "data" / "templates.yaml"

SLOTS = frozenset(
    {
        "disease",
        "icd10",
        "area_name",
        "symptoms_clinical",
        "symptoms_colloquial",
        "findings",
        "drug",
        "age",
        "sex",
        "patient",
        "comorbidities",
        "duration",
    }
)


class TemplateError(ValueError):
    pass


class Template(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    task: Task
    areas: tuple[Area, ...]
    system: str
    user: str

    @field_validator("areas", mode="before")
    @classmethod
    def _all_areas(cls, v: object) -> object:
        if v == "*":
            return tuple(a for a in Area if a != Area.general)
        return v

    def slots(self) -> set[str]:
        return _slots_of(self.system) | _slots_of(self.user)

    def render(self, values: dict[str, str]) -> tuple[str, str]:
        return self.system.format(**values), self.user.format(**values)


def _slots_of(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def load_template_file(path: str | Path = DEFAULT_TEMPLATES) -> list[Template]:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise TemplateError(f"{path}: cannot read template library: {e}") from e
    if not isinstance(raw, dict) or not isinstance(raw.get("templates"), list):
        raise TemplateError(f"{path}: expected a mapping with a 'templates' list")
    out: list[Template] = []
    seen: set[str] = set()
    for i, item in enumerate(raw["templates"]):
        tid = item.get("id", f"#{i + 1}") if isinstance(item, dict) else f"#{i + 1}"
        try:
            t = Template.model_validate(item)
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "template"
            raise TemplateError(f"{path}: template {tid}: {loc}: {err['msg']}") from e
        try:
            slots = t.slots()
        except ValueError as e:  # unbalanced braces and the like
            raise TemplateError(f"{path}: template {tid}: malformed placeholder: {e}") from e
        bad = sorted(s for s in slots if not s or s not in SLOTS)
        if bad:
            raise TemplateError(
                f"{path}: template {tid}: unknown slot(s) {', '.join(repr(b) for b in bad)}; "
                f"known slots: {', '.join(sorted(SLOTS))}"
            )
        if t.id in seen:
            raise TemplateError(f"{path}: template {tid}: duplicate id")
        seen.add(t.id)
        out.append(t)
    if not out:
        raise TemplateError(f"{path}: no templates")
    return out


@cache
def _default() -> tuple[Template, ...]:
    return tuple(load_template_file(DEFAULT_TEMPLATES))


def load_templates(path: str | Path | None = None) -> list[Template]:
    return list(_default()) if path is None else load_template_file(path)
