"""The knowledge tables behind rule negatives, loaded and checked once: differential diagnoses, drugs with
their roles, contraindications and class confusions, usual doses, red flags, promises and finding words.

Each table is team-written YAML/TSV under augmenters/data/; a bad entry fails the load with the file and
the entry named, so a typo never silently turns into negatives that are not wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import yaml

from medaug.guards import DRUGS_FILE

DATA = Path(__file__).parent / "data"
NEGATIVES_FILE = DATA / "negatives.yaml"
DIFFERENTIALS_FILE = DATA / "differentials.yaml"
DRUG_RULES_FILE = DATA / "drug_rules.yaml"
DOSES_FILE = DATA / "doses.yaml"
RED_FLAGS_FILE = DATA / "red_flags.yaml"
PROMISES_FILE = DATA / "promises.yaml"
AGAINST_FILE = DATA / "differential_against.yaml"
AREAS = ("cardiovascular", "oncology", "endocrine", "neurology", "obgyn", "pediatrics", "general")


_DENIED = re.compile(r"(没有|没|无|未|否认|不伴|并无|未见|排除|非|不)$")
_PAST = re.compile(r"当时|以前|曾经|既往|去年|前年|小时候|(?:19|20)\d\d年|年前|多年前|之前")
_CLAUSE = "，,。！？!?；;\n"
SEX_CUES = {
    "male": ("男", "老公", "丈夫", "爸", "儿子", "前列腺", "阴囊", "睾丸", "爷爷", "叔", "哥", "弟", "先生", "姥爷", "外公"),
    "female": ("女", "老婆", "妻子", "妈", "女儿", "月经", "怀孕", "阴道", "白带", "姐", "妹", "奶奶", "姥姥", "孕",
               "外婆", "痛经", "乳房"),
}  # fmt: skip


def stated(text: str, i: int, *, now: bool = False) -> bool:
    """Whether the cue at `i` is asserted: not denied right before it (没有哮喘, 无胸痛), and with `now`, not
    told as past history earlier in its sentence (2004年呕血)."""
    if _DENIED.search(text[max(0, i - 3) : i]):
        return False
    if now:
        # past history anywhere earlier in the sentence (2004年诊断为肝硬化，当时有腹水，呕血): the clause
        # alone misses it
        left = max((text.rfind(c, 0, i) for c in "。！？!?；;\n"), default=-1) + 1
        if _PAST.search(text[left:i]):
            return False
    return True


# Words by which an answer draws a conclusion from a finding (转氨酶偏高，说明肝细胞受损): a finding flipped
# in such a clause changes what the answer concludes; flipped anywhere else (a restatement of the question)
# the answer's advice is unchanged, so the negative would teach nothing (audit seed 48317).
CONCLUSION_CUES = (
    "证明",
    "说明",
    "提示",
    "表明",
    "所以",
    "因此",
    "需要",
    "考虑",
    "意味着",
    "属于",
    "建议",
    "可能是",
)


def flip_concludes(answer: str, at: int, word: str, question: str) -> bool:
    """The finding word at answer[at:at+len(word)] sits in a clause that draws a conclusion from it (a cue of
    CONCLUSION_CUES in the same clause) and that clause is not text copied from the question (转氨酶偏高说明什么
    asked, 转氨酶偏高说明… answered: the cue is the question's)."""
    left = max((answer.rfind(c, 0, at) for c in _CLAUSE), default=-1) + 1
    ends = [i for c in _CLAUSE if (i := answer.find(c, at + len(word))) >= 0]
    right = min(ends) if ends else len(answer)
    # 乙肝抗体阳性，说明有保护力: a next clause that opens with the cue draws the conclusion of this one
    if right < len(answer) and answer[right] in "，,":
        nxt = answer[right + 1 : right + 4].lstrip("这则就也")
        if any(nxt.startswith(c) for c in CONCLUSION_CUES):
            more = [i for c in _CLAUSE if (i := answer.find(c, right + 1)) >= 0]
            right = min(more) if more else len(answer)
    clause = answer[left:right].strip()
    if not any(c in clause for c in CONCLUSION_CUES):
        return False
    if len(clause) >= 4 and clause in question:
        return False  # the whole clause restates the question
    # the finding and the cue that follows it, read from the question word for word: the question's words
    for c in CONCLUSION_CUES:
        i = answer.find(c, at, right)
        if i >= 0 and answer[at : i + len(c)] in question:
            return False
    return True


def first_stated(words: Iterable[str], text: str) -> str | None:
    """The first of `words` that `text` states somewhere (an occurrence not denied), else None."""
    for w in words:
        i = text.find(w)
        while i >= 0:
            if stated(text, i):
                return w
            i = text.find(w, i + 1)
    return None


def sexes(text: str) -> set[str]:
    return {sex for sex, cues in SEX_CUES.items() if any(c in text for c in cues)}


class KnowledgeError(ValueError):
    """A knowledge table entry that cannot be used."""


@dataclass(frozen=True)
class Differential:
    name: str
    key: str  # what tells it apart from the disease it is a differential of
    sex: str | None = None  # male / female: only a differential for patients of that sex


@dataclass(frozen=True)
class Disease:
    name: str
    area: str
    aliases: tuple[str, ...]
    presentation: str
    differentials: tuple[Differential, ...]


@dataclass(frozen=True)
class Drug:
    name: str
    cls: str
    area: str
    roles: frozenset[str]


@dataclass(frozen=True)
class Contraindication:
    population: str
    drugs: frozenset[str]
    reason: str
    unless: tuple[str, ...] = ()


@dataclass(frozen=True)
class Confusion:
    sources: frozenset[str]  # drugs the correct answer uses
    context: tuple[str, ...]
    to: tuple[str, ...]
    reason: str
    unless: tuple[str, ...] = ()  # words of question or answer that make the swap no case for the rule

    def applies(self, text: str) -> bool:
        """The rule's context is in `text` and none of its `except` words is."""
        return any(w in text for w in self.context) and not any(u in text for u in self.unless)


@dataclass(frozen=True)
class Dose:
    adult: tuple[float, float] | None
    adult_max_day: float | None
    child_per_kg: tuple[float, float] | None
    child_max_day_per_kg: float | None
    schedule: str | None  # once_daily / weekly
    margin: str | None = None  # "wide": a tenfold dose is far too much but not acutely poisonous (PPIs)


@dataclass(frozen=True)
class RedFlag:
    name: str
    cues: tuple[str, ...]
    why: str
    patterns: tuple[re.Pattern[str], ...] = ()  # a red flag told as a number (血压260)
    pattern_why: str = (
        ""  # the reason when a pattern matched (it may quote the number); `why` is for a cue word
    )

    def why_for(self, cue: str) -> str:
        """The reason for this flag as found by `cue`: a cue word gets `why`, which quotes no threshold the
        case never stated (高血压危象 is no systolic pressure of 180: audit seed 90417)."""
        return self.pattern_why if self.pattern_why and cue not in self.cues else self.why


@dataclass(frozen=True)
class Lab:
    name: str
    unit: str
    low: float
    high: float


@dataclass
class NegativeKnowledge:
    diseases_by_name: dict[str, Disease]
    drugs: dict[str, Drug]
    populations: dict[str, tuple[str, ...]]
    contraindications: tuple[Contraindication, ...]
    confusions: tuple[Confusion, ...]
    doses: dict[str, Dose]
    urgent_cues: tuple[str, ...]
    red_flags: tuple[RedFlag, ...]
    downgrades: tuple[str, ...]
    promise_replace: tuple[dict[str, Any], ...]
    promise_insert: tuple[dict[str, str], ...]
    promise_markers: tuple[str, ...]
    promise_clash: dict[
        str, tuple[str, ...]
    ]  # group → words beside which a promise of that group contradicts
    promise_certainty: tuple[
        str, ...
    ]  # markers of a certainty claim: the one promise no clash word contradicts
    diagnosis_cues: tuple[str, ...]
    treatment_cues: tuple[str, ...]
    warning_cues: tuple[str, ...]
    case_cues: tuple[str, ...]
    protected: tuple[str, ...]
    opposites: dict[str, str]
    deny_templates: tuple[dict[str, str], ...]
    deny_never: tuple[str, ...]
    labs: tuple[Lab, ...]
    deny_enabled: bool = False  # deny templates make self-contradicting answers; see negatives.yaml
    other_names: dict[str, frozenset[str]] = field(default_factory=dict)  # drug → its brand/other names

    def mentions(self, drug: str, text: str) -> bool:
        """`text` names `drug`, by its name or another (吗丁啉 / 吗叮啉 for 多潘立酮)."""
        return drug in text or self.named_otherwise(drug, text) is not None

    def named_otherwise(self, drug: str, text: str) -> str | None:
        """Another name of `drug` (贺普丁 for 拉米夫定) written in `text`: a swap of `drug` would leave it offered."""
        return next((n for n in sorted(self.other_names.get(drug, ())) if n in text), None)

    def wrong_here_in(self, drugs: set[str], text: str) -> Confusion | None:
        """A confusion rule whose context is in `text` and that names both a drug of `drugs` as right and one
        as wrong (干扰素和更昔洛韦 for hepatitis B): the reference itself recommends an ineffective drug."""
        return next(
            (c for c in self.confusions if drugs & c.sources and drugs & set(c.to) and c.applies(text)),
            None,
        )

    # (disease, differential) → words of the question that rule the differential out (differential_against.yaml)
    against: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    # differential → complaints it presents with; one must be stated in the question (differential_against.yaml)
    needs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)

    # -- names ------------------------------------------------------------------------------------------
    @cached_property
    def disease_surfaces(self) -> dict[str, str]:
        """Every disease name the tables use (entries, aliases, differentials) → its entry's name (or itself)."""
        out: dict[str, str] = {}
        for d in self.diseases_by_name.values():
            out.setdefault(d.name, d.name)
            for a in d.aliases:
                out.setdefault(a, d.name)
        for d in self.diseases_by_name.values():
            for x in d.differentials:
                out.setdefault(x.name, x.name)
        return out

    def diseases(self, area: str | None = None) -> dict[str, set[str]]:
        """Disease surface → the diseases it is confusable with (of `area`'s entries if given)."""
        key = f"diseases:{area}"
        if key not in self._cache:
            out: dict[str, set[str]] = {}
            for d in self.diseases_by_name.values():
                if area is not None and d.area != area:
                    continue
                names = {x.name for x in d.differentials}
                for s in (d.name, *d.aliases):
                    out.setdefault(s, set()).update(names)
                for n in names:
                    out.setdefault(n, set()).add(d.name)
            self._cache[key] = out
        return self._cache[key]

    @property
    def referral_cues(self) -> list[str]:
        return list(self.urgent_cues)

    # -- patients ---------------------------------------------------------------------------------------
    def present_populations(self, question: str) -> set[str]:
        """Populations whose cue the question states (a negated cue — 没有哮喘 — does not count); 儿子/女儿
        of a stated adult age (儿子25岁) are no child."""
        found = set()
        for pop, cues in self.populations.items():
            for c in cues:
                start = question.find(c)
                while start >= 0:
                    if stated(question, start):
                        found.add(pop)
                        break
                    start = question.find(c, start + 1)
                if pop in found:
                    break
        if "child" in found and any(
            float(m.group(1)) >= 14 for m in re.finditer(r"(\d{2,3})\s*(?:周岁|岁)", question)
        ):
            found.discard("child")
        return found

    def ruled_out_by(self, disease: str, differential: str, question: str) -> str | None:
        """The word of the question (stated, not denied) that rules `differential` out for `disease`."""
        return first_stated(self.against.get((disease, differential), ()), question)

    def shared_symptom(self, differential: str, question: str) -> str | None:
        """A complaint `differential` presents with that the question states (not denied): what makes the
        wrong diagnosis a confusion a clinician could make, not an unrelated disease."""
        return first_stated(self.needs.get(differential, ()), question)

    def drug_pattern(self, x: str, y: str, rule: str) -> str:
        """The balance pattern of a wrong-drug swap: the rule and the two drug classes (质子泵抑制剂 → 非甾体
        抗炎药), so one class confusion cannot fill a type by cycling through its member drugs."""
        return f"{rule}:{self.drugs[x].cls}->{self.drugs[y].cls}"

    def contraindicated(self, drug: str, pops: set[str], text: str) -> list[Contraindication]:
        return [
            c
            for c in self.contraindications
            if drug in c.drugs and c.population in pops and not any(u in text for u in c.unless)
        ]


def _regex(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise KnowledgeError(f"{RED_FLAGS_FILE}: {where}: bad pattern {pattern!r}: {e}") from e


def _need(entry: dict[str, Any], key: str, where: str) -> Any:
    if not isinstance(entry, dict) or key not in entry or entry[key] in (None, "", []):
        raise KnowledgeError(f"{where}: missing {key!r}")
    return entry[key]


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise KnowledgeError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise KnowledgeError(f"{path}: expected a mapping at the top")
    return raw


def load_drugs(path: Path = DRUGS_FILE) -> dict[str, Drug]:
    drugs: dict[str, Drug] = {}
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#") or line.startswith("name\t"):
            continue
        cols = line.split("\t")
        if len(cols) != 4 or not all(cols):
            raise KnowledgeError(
                f"{path}:{no}: expected name, class, area, roles (tab-separated, none empty)"
            )
        if cols[2] not in AREAS:
            raise KnowledgeError(f"{path}:{no}: unknown area {cols[2]!r}")
        if cols[0] in drugs:
            raise KnowledgeError(f"{path}:{no}: {cols[0]} listed twice")
        drugs[cols[0]] = Drug(cols[0], cols[1], cols[2], frozenset(r for r in cols[3].split("|") if r))
    return drugs


def _diseases(path: Path) -> dict[str, Disease]:
    out = {}
    for name, e in (_load_yaml(path).get("diseases") or {}).items():
        where = f"{path}: {name}"
        area = _need(e, "area", where)
        if area not in AREAS:
            raise KnowledgeError(f"{where}: unknown area {area!r}")
        diffs = []
        for i, pair in enumerate(_need(e, "differentials", where)):
            ok = (
                isinstance(pair, list) and len(pair) in (2, 3) and all(isinstance(x, str) and x for x in pair)
            )
            if not ok or (len(pair) == 3 and pair[2] not in SEX_CUES):
                raise KnowledgeError(f"{where}: differential {i} must be [name, key point(, male|female)]")
            if pair[0] == name or pair[0] in (e.get("aliases") or []):
                raise KnowledgeError(f"{where}: {pair[0]} is a differential of itself")
            diffs.append(Differential(pair[0], pair[1], pair[2] if len(pair) == 3 else None))
        out[name] = Disease(
            name, area, tuple(e.get("aliases") or ()), _need(e, "presentation", where), tuple(diffs)
        )
    return out


def _resolve(
    entry: dict[str, Any], drugs: dict[str, Drug], where: str, names: str, classes: str
) -> frozenset:
    listed = set(entry.get(names) or ())
    unknown = listed - drugs.keys()
    if unknown:
        raise KnowledgeError(f"{where}: not in drugs.tsv: {sorted(unknown)}")
    for c in entry.get(classes) or ():
        members = {d.name for d in drugs.values() if d.cls == c}
        if not members:
            raise KnowledgeError(f"{where}: no drug of class {c!r} in drugs.tsv")
        listed |= members
    if not listed:
        raise KnowledgeError(f"{where}: names no drug")
    return frozenset(listed)


def _drug_rules(path: Path, drugs: dict[str, Drug]):
    raw = _load_yaml(path)
    pops = {k: tuple(v) for k, v in (raw.get("populations") or {}).items()}
    contra = []
    for i, e in enumerate(raw.get("contraindications") or ()):
        where = f"{path}: contraindications[{i}]"
        pop = _need(e, "population", where)
        if pop not in pops:
            raise KnowledgeError(f"{where}: unknown population {pop!r}")
        members = _resolve(e, drugs, where, "drugs", "classes")
        contra.append(Contraindication(pop, members, _need(e, "reason", where), tuple(e.get("except") or ())))
    conf = []
    for i, e in enumerate(raw.get("confusions") or ()):
        where = f"{path}: confusions[{i}]"
        sources = _resolve(e, drugs, where, "from", "from_classes")
        to = tuple(_need(e, "to", where))
        if unknown := set(to) - drugs.keys():
            raise KnowledgeError(f"{where}: not in drugs.tsv: {sorted(unknown)}")
        conf.append(
            Confusion(
                sources,
                tuple(_need(e, "context", where)),
                to,
                _need(e, "reason", where),
                tuple(e.get("except") or ()),
            )
        )
    names: dict[str, frozenset[str]] = {}
    for i, group in enumerate(raw.get("brand_names") or ()):
        where = f"{path}: brand_names[{i}]"
        if not isinstance(group, list) or len(group) < 2 or group[0] not in drugs:
            raise KnowledgeError(f"{where}: expected [a drug of drugs.tsv, its other names…]")
        for n in group:
            names[n] = names.get(n, frozenset()) | (frozenset(group) - {n})
    return pops, tuple(contra), tuple(conf), names


def _against(
    path: Path, diseases: dict[str, Disease]
) -> tuple[dict[tuple[str, str], tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """(disease, differential) → the words that rule the differential out, and differential → the complaints
    it presents with (`needs`, required for every differential used)."""
    raw = _load_yaml(path)
    out = {}
    for name, diffs in (raw.get("against") or {}).items():
        if name not in diseases:
            raise KnowledgeError(f"{path}: {name} is not a disease of differentials.yaml")
        known = {x.name for x in diseases[name].differentials}
        for diff, words in (diffs or {}).items():
            if diff not in known:
                raise KnowledgeError(f"{path}: {diff} is not a differential of {name}")
            if not isinstance(words, list) or not all(isinstance(w, str) and w for w in words) or not words:
                raise KnowledgeError(f"{path}: {name} → {diff}: expected a list of words")
            out[(name, diff)] = tuple(words)
    needs = {}
    for diff, words in (raw.get("needs") or {}).items():
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w for w in words):
            raise KnowledgeError(f"{path}: needs → {diff}: expected a list of complaints")
        needs[diff] = tuple(words)
    used = {d for _, d in out}
    if missing := sorted(used - needs.keys()):
        raise KnowledgeError(f"{path}: needs: no complaints listed for differential(s) {missing}")
    if unused := sorted(needs.keys() - used):
        raise KnowledgeError(f"{path}: needs: {unused} is not a differential of `against`")
    return out, needs


def _pair(v: Any, where: str) -> tuple[float, float] | None:
    if v is None:
        return None
    if not (
        isinstance(v, list) and len(v) == 2 and all(isinstance(x, int | float) for x in v) and v[0] <= v[1]
    ):
        raise KnowledgeError(f"{where}: expected [low, high]")
    return float(v[0]), float(v[1])


def _doses(path: Path, drugs: dict[str, Drug]) -> dict[str, Dose]:
    out = {}
    for name, e in (_load_yaml(path).get("doses") or {}).items():
        where = f"{path}: {name}"
        if name not in drugs:
            raise KnowledgeError(f"{where}: not in drugs.tsv")
        sched = e.get("schedule")
        if sched not in (None, "once_daily", "weekly"):
            raise KnowledgeError(f"{where}: schedule must be once_daily or weekly")
        out[name] = Dose(
            _pair(e.get("adult"), f"{where}.adult"),
            e.get("adult_max_day"),
            _pair(e.get("child_per_kg"), f"{where}.child_per_kg"),
            e.get("child_max_day_per_kg"),
            sched,
            e.get("margin"),
        )
        if e.get("margin") not in (None, "wide"):
            raise KnowledgeError(f"{where}: margin must be wide")
    return out


def _promises(path: Path) -> dict[str, Any]:
    """promises.yaml, checked: every rule has its fields, names only known clash groups, and makes a promise
    the markers see; every inserted promise is absolute (a bare "可以彻底断根" can be true)."""
    raw = _load_yaml(path)
    markers = raw.get("markers") or []
    absolutes = raw.get("absolutes") or []
    clash = raw.get("clash") or {}
    if not markers or not absolutes:
        raise KnowledgeError(f"{path}: needs `markers` and `absolutes`")
    for group, words in clash.items():
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w for w in words):
            raise KnowledgeError(f"{path}: clash group {group!r}: expected a list of words")
    if "chronic" not in clash:
        raise KnowledgeError(f"{path}: needs the `chronic` clash group (every promise's default)")
    for part, keys in (("replace", ("id", "find", "to")), ("insert", ("id", "text"))):
        for i, r in enumerate(raw.get(part) or ()):
            where = f"{path}: {part}[{i}] ({r.get('id', '?') if isinstance(r, dict) else '?'})"
            for k in keys:
                _need(r, k, where)
            if unknown := set(r.get("clashes") or ()) - clash.keys():
                raise KnowledgeError(f"{where}: unknown clash group(s) {sorted(unknown)}")
            for text in r["to"] if part == "replace" else [r["text"]]:
                if not any(m in text for m in markers):
                    raise KnowledgeError(f"{where}: {text!r} contains no promise marker")
                if part == "insert" and not any(a in text for a in absolutes):
                    raise KnowledgeError(
                        f"{where}: {text!r} is no absolute promise (needs one of `absolutes`)"
                    )
    return raw


@cache
def load_negative_knowledge(path: Path = NEGATIVES_FILE) -> NegativeKnowledge:
    raw = _load_yaml(path)
    drugs = load_drugs()
    pops, contra, conf, other_names = _drug_rules(DRUG_RULES_FILE, drugs)
    flags = _load_yaml(RED_FLAGS_FILE)
    promises = _promises(PROMISES_FILE)
    labs = tuple(Lab(x["name"], x["unit"], float(x["low"]), float(x["high"])) for x in raw["labs"])
    if any(not (lab.low < lab.high) or math.isnan(lab.low) for lab in labs):
        raise KnowledgeError(f"{path}: a lab range needs low < high")
    diseases = _diseases(DIFFERENTIALS_FILE)
    against, needs = _against(AGAINST_FILE, diseases)
    return NegativeKnowledge(
        diseases_by_name=diseases,
        drugs=drugs,
        populations=pops,
        contraindications=contra,
        confusions=conf,
        doses=_doses(DOSES_FILE, drugs),
        urgent_cues=tuple(flags["urgent_cues"]),
        red_flags=tuple(
            RedFlag(
                f["name"],
                tuple(f["cues"]),
                f["why"],
                tuple(_regex(p, f["name"]) for p in f.get("patterns") or ()),
                f.get("pattern_why") or "",
            )
            for f in flags["red_flags"]
        ),
        downgrades=tuple(flags["downgrades"]),
        promise_replace=tuple(promises.get("replace") or ()),
        promise_insert=tuple(promises.get("insert") or ()),
        promise_markers=tuple(promises["markers"]),
        promise_clash={k: tuple(v) for k, v in (promises.get("clash") or {}).items()},
        promise_certainty=tuple(promises.get("certainty_markers") or ()),
        diagnosis_cues=tuple(raw["diagnosis_cues"]),
        treatment_cues=tuple(raw["treatment_cues"]),
        warning_cues=tuple(raw["warning_cues"]),
        case_cues=tuple(raw["case_cues"]),
        protected=tuple(raw["protected_compounds"]),
        opposites={a: b for a, b in raw["finding_opposites"]} | {b: a for a, b in raw["finding_opposites"]},
        deny_templates=tuple(raw["deny_templates"]),
        deny_never=tuple(raw.get("deny_never") or ()),
        deny_enabled=bool(raw.get("deny_enabled", False)),
        other_names=other_names,
        labs=labs,
        against=against,
        needs=needs,
    )


@cache
def entity_extractor():
    """The shared fact extractor's vocabulary plus every disease and drug these tables name (so a swap to
    a differential is seen as a disease) and the protected compounds (胰岛素样生长因子 holds no drug)."""
    from medaug.facts import FactExtractor, Word, shipped_words

    kb = load_negative_knowledge()
    extra = [Word(p, "protect", p) for p in kb.protected]
    extra += [Word(s, "disease", s) for s in kb.disease_surfaces]
    extra += [Word(d, "drug", d) for d in kb.drugs]
    # Ours first: a compound or a disease name of ours wins over a shorter or differently-typed surface.
    return FactExtractor([*extra, *shipped_words()])
