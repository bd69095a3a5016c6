"""The template library: prompt templates per task and disease area, validated when loaded.

A template names its slots with {slot}; an unknown slot, an unbalanced brace or a
missing key is an error at load time (file and template id in the message), not
a KeyError halfway through a cluster job.

A library may also define phrase pools (`phrases: {name: [alternative, ...]}`): a template
that uses {name} gets one alternative per prompt, so the fixed wording of a template varies
as well as its slot values (near-duplicate prompts are what dedup throws away later).
Alternatives may use slots, not other phrase pools.
"""

from __future__ import annotations

import string
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
        # added for diversity (issue 17): see data/templates.yaml for what each holds
        "symptoms",
        "labs",
        "report",
        "history",
        "persona",
        "tone",
        "asker",
        "setting",
        "concern",
        "visit",
        "turns",
        "confusable",
        "drug2",
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
    # phrase pools this template uses (the library's `phrases`, or its own); one alternative per prompt
    phrases: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @field_validator("areas", mode="before")
    @classmethod
    def _all_areas(cls, v: object) -> object:
        if v == "*":
            return tuple(a for a in Area if a != Area.general)
        return v

    def slots(self) -> set[str]:
        """Every name the template's text uses: slots and phrase pools."""
        return _slots_of(self.system) | _slots_of(self.user)

    def value_slots(self) -> set[str]:
        """The slots a prompt must fill: the template's own, plus those its phrase alternatives use."""
        own = self.slots() - set(self.phrases)
        for alts in self.phrases.values():
            for a in alts:
                own |= _slots_of(a)
        return own

    def render(self, values: dict[str, str]) -> tuple[str, str]:
        return self.system.format(**values), self.user.format(**values)


def _used_names(t: Template) -> set[str]:
    try:
        return t.slots()
    except ValueError:
        return set()  # reported as a malformed placeholder below


def _phrase_pools(path: Path, raw: object) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and v and all(isinstance(x, str) for x in v)
        for k, v in raw.items()
    ):
        raise TemplateError(f"{path}: phrases: expected a mapping of name -> non-empty list of strings")
    if clash := sorted(set(raw) & SLOTS):
        raise TemplateError(f"{path}: phrases: {clash} are slot names and cannot be phrase pools")
    return {k: tuple(v) for k, v in raw.items()}


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
    pools = _phrase_pools(path, raw.get("phrases", {}))
    out: list[Template] = []
    seen: set[str] = set()
    for i, item in enumerate(raw["templates"]):
        tid = item.get("id", f"#{i + 1}") if isinstance(item, dict) else f"#{i + 1}"
        try:
            t = Template.model_validate(item)
            # Sorted: the pools' order is the order prompts draw from them (a set's order varies per process).
            used = {n: pools[n] for n in sorted(_used_names(t)) if n in pools and n not in t.phrases}
            if used:
                t = t.model_copy(update={"phrases": {**t.phrases, **used}})
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "template"
            raise TemplateError(f"{path}: template {tid}: {loc}: {err['msg']}") from e
        try:
            slots = t.slots()
        except ValueError as e:  # unbalanced braces and the like
            raise TemplateError(f"{path}: template {tid}: malformed placeholder: {e}") from e
        try:
            for name, alts in t.phrases.items():
                if not alts:
                    raise TemplateError(f"{path}: template {tid}: phrase pool {name!r} is empty")
                for a in alts:
                    inner = _slots_of(a)
                    if nested := sorted(inner & (set(t.phrases) | set(pools))):
                        raise TemplateError(
                            f"{path}: template {tid}: phrase {name!r} uses phrase pool(s) {nested}"
                        )
                    slots |= inner
        except ValueError as e:
            if isinstance(e, TemplateError):
                raise
            raise TemplateError(f"{path}: template {tid}: malformed placeholder in a phrase: {e}") from e
        bad = sorted(s for s in slots if not s or (s not in SLOTS and s not in t.phrases))
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
