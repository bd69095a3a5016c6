"""Detected spans → presidio-anonymizer, with the operators each entity type is configured for.

Only texts that contain something go through presidio (most generated samples
contain nothing); the rest are returned untouched, which keeps the stage fast.
Encrypted values are wrapped as 〈TYPE:ciphertext〉 so that `reidentify_text` can
find and decrypt them with the key, for authorised re-identification.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, timedelta

from presidio_anonymizer import AnonymizerEngine, DeanonymizeEngine
from presidio_anonymizer.entities import OperatorConfig, OperatorResult, RecognizerResult
from presidio_anonymizer.operators import Hash

from curation.deid.config import PLACEHOLDERS, DeidConfig
from curation.deid.recognizers import Recognizers, Span

_ENC_TOKEN = re.compile(r"〈([A-Z_]+):([A-Za-z0-9+/=_-]+)〉")
_DATE_PARTS = re.compile(r"\d+")
_NOT_IN_HASH = re.compile(r"[\s\-()（）]")


def _canonical(value: str) -> str:
    """The same person written 138 1234 5678 or 138-1234-5678 must hash to the same token."""
    return _NOT_IN_HASH.sub("", unicodedata.normalize("NFKC", value)).upper()


def date_offset(salt: bytes | None, key: str, max_days: int) -> int:
    """A per-sample day offset, non-zero, stable for the same salt and sample."""
    digest = hmac.new(salt or b"medaug-date-shift", key.encode("utf-8"), hashlib.sha256).digest()
    off = int.from_bytes(digest[:4], "big") % (2 * max_days + 1) - max_days
    return off or max_days


def shift_date(value: str, days: int) -> str:
    """Shift a date by `days`, keeping how it was written (2023年5月12日, 2023-05-12, 5月12日, 2023年5月)."""
    parts = [int(p) for p in _DATE_PARTS.findall(unicodedata.normalize("NFKC", value))]
    try:
        if len(parts) == 3:
            d = date(parts[0], parts[1], parts[2]) + timedelta(days=days)
            if "年" in value:
                suffix = (
                    "号" if value.rstrip().endswith("号") else ("日" if value.rstrip().endswith("日") else "")
                )
                return f"{d.year}年{d.month}月{d.day}{suffix}"
            sep = next((c for c in value if c in "-./"), "-")
            padded = len(_DATE_PARTS.findall(value)[1]) == 2
            fmt = "{:02d}" if padded else "{}"
            return f"{d.year}{sep}{fmt.format(d.month)}{sep}{fmt.format(d.day)}"
        if len(parts) == 2 and "年" in value:
            d = date(parts[0], parts[1], 15) + timedelta(days=days)
            return f"{d.year}年{d.month}月"
        if len(parts) == 2:
            d = date(2000, parts[0], min(parts[1], 28 if parts[0] == 2 else parts[1])) + timedelta(days=days)
            return f"{d.month}月{d.day}{'号' if value.endswith('号') else '日'}"
    except ValueError:
        pass
    return f"〈{PLACEHOLDERS['DATE']}〉"


def generalize_date(value: str) -> str:
    """Keep only the year (HIPAA safe harbour); a date without a year becomes the placeholder."""
    m = re.match(r"\s*((?:19|20)\d{2})", unicodedata.normalize("NFKC", value))
    return f"{m.group(1)}年" if m else f"〈{PLACEHOLDERS['DATE']}〉"


def generalize_age(value: str) -> str:
    return "90岁以上" if "岁" in value else "≥90"


class Deidentifier:
    """Recognizers + configured operators; build once per config and reuse (it holds compiled patterns)."""

    def __init__(self, config: DeidConfig | None = None):
        self.config = config or DeidConfig()
        self.recognizers = Recognizers(self.config.entities, self.config.all_hospital_names())
        self.engine = AnonymizerEngine()
        self._salt = self.config.resolved_salt()
        self._removing = {e for e in self.config.entities if self.config.operator_for(e).operator != "keep"}
        self._encrypted = {
            e for e in self.config.entities if self.config.operator_for(e).operator == "encrypt"
        }
        self._shifted = self.config.operator_for("DATE").operator == "shift"
        self._operators = {e: self._operator(e) for e in self.config.entities}
        # Operators that are a plain function of the value (replace, hash, generalize, keep):
        # on resolved spans, which never overlap, presidio's result is each span replaced by
        # fn(value), so these are spliced directly; mask and encrypt still go through presidio.
        self._direct: dict[str, Callable[[str], str]] = {}
        for e, op in self._operators.items():
            if op.operator_name == "replace":
                self._direct[e] = lambda _v, new=op.params["new_value"]: new
            elif op.operator_name == "custom":
                self._direct[e] = op.params["lambda"]
            elif op.operator_name == "keep":
                self._direct[e] = lambda v: v

    def _operator(self, entity: str) -> OperatorConfig:
        spec = self.config.operator_for(entity)
        label = PLACEHOLDERS[entity]
        match spec.operator:
            case "replace":
                return OperatorConfig("replace", {"new_value": spec.new_value or f"〈{label}〉"})
            case "mask":
                return OperatorConfig(
                    "mask",
                    {
                        "masking_char": spec.masking_char,
                        "chars_to_mask": spec.chars_to_mask,
                        "from_end": spec.from_end,
                    },
                )
            case "hash":
                return OperatorConfig("custom", {"lambda": self._hasher(label)})
            case "encrypt":
                return OperatorConfig("encrypt", {"key": self.config.require_key()})
            case "generalize":
                return OperatorConfig(
                    "custom", {"lambda": generalize_age if entity == "AGE" else generalize_date}
                )
            case "shift":  # replaced per sample in anonymize(): the offset depends on the sample
                return OperatorConfig("custom", {"lambda": lambda v: v})
            case _:
                return OperatorConfig("keep", {})

    def _hasher(self, label: str) -> Callable[[str], str]:
        params = {"salt": self.config.require_salt(), "hash_type": "sha256"}
        hasher, n = Hash(), self.config.hash_chars
        return lambda value: f"〈{label}:{hasher.operate(_canonical(value), params)[:n]}〉"

    def anonymize(self, text: str, spans: Sequence[Span], sample_key: str) -> str:
        """Apply the operators to `spans` of `text`; `sample_key` fixes the date shift of one sample."""
        if not spans:
            return text
        operators = self._operators
        direct = self._direct
        if self._shifted and any(s[0] == "DATE" for s in spans):
            days = date_offset(self._salt, sample_key, self.config.date_max_shift_days)
            operators = {
                **operators,
                "DATE": OperatorConfig("custom", {"lambda": lambda v: shift_date(v, days)}),
            }
            direct = {**direct, "DATE": lambda v: shift_date(v, days)}
        if all(e in direct for e, _, _ in spans) and _disjoint(spans):
            return _splice(text, spans, direct)
        results = [RecognizerResult(e, s, t, 1.0) for e, s, t in spans]
        out = self.engine.anonymize(text, results, operators)
        if not self._encrypted:
            return out.text
        new = out.text
        for item in sorted(out.items, key=lambda i: i.start, reverse=True):
            if item.entity_type in self._encrypted:
                new = (
                    f"{new[: item.start]}〈{item.entity_type}:{new[item.start : item.end]}〉{new[item.end :]}"
                )
        return new

    def counts(self, spans: Sequence[Span]) -> Counter[str]:
        if not spans:
            return Counter()
        return Counter(e for e, _, _ in spans if e in self._removing)

    def texts(
        self, texts: Sequence[str | None], keys: Sequence[str]
    ) -> list[tuple[str | None, Counter[str]]]:
        """De-identify many texts in one detection pass; `keys` tie texts of one sample to one date shift."""
        if len(texts) != len(keys):
            raise ValueError(f"{len(texts)} texts but {len(keys)} keys")
        # Empty fields (input is often "", reference_output None) hold nothing: not scanned.
        todo = [i for i, t in enumerate(texts) if t]
        all_spans: list[list[Span]] = [[] for _ in texts]
        for i, spans in zip(todo, self.recognizers.detect_many([texts[i] for i in todo]), strict=True):
            all_spans[i] = spans
        return [
            (t if t is None or not spans else self.anonymize(t, spans, k), self.counts(spans))
            for t, spans, k in zip(texts, all_spans, keys, strict=True)
        ]


def _disjoint(spans: Sequence[Span]) -> bool:
    return all(a[2] <= b[1] for a, b in zip(spans, spans[1:], strict=False))


def _splice(text: str, spans: Sequence[Span], fns: dict[str, Callable[[str], str]]) -> str:
    """text with each (non-overlapping, sorted) span replaced by its entity's function of the value."""
    parts: list[str] = []
    pos = 0
    for entity, start, end in spans:
        parts.append(text[pos:start])
        parts.append(fns[entity](text[start:end]))
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def reidentify_text(text: str, key: str | bytes) -> str:
    """Decrypt every 〈TYPE:ciphertext〉 written by the encrypt operator (authorised re-identification)."""
    plain_parts: list[str] = []
    results: list[OperatorResult] = []
    pos = 0
    length = 0
    for m in _ENC_TOKEN.finditer(text):
        before = text[pos : m.start()]
        plain_parts.append(before)
        length += len(before)
        cipher = m.group(2)
        results.append(OperatorResult(start=length, end=length + len(cipher), entity_type=m.group(1)))
        plain_parts.append(cipher)
        length += len(cipher)
        pos = m.end()
    if not results:
        return text
    plain_parts.append(text[pos:])
    key_str = key.decode("utf-8") if isinstance(key, bytes) else key
    out = DeanonymizeEngine().deanonymize(
        "".join(plain_parts), results, {"DEFAULT": OperatorConfig("decrypt", {"key": key_str})}
    )
    return out.text
