"""Strata: where a queued item came from (source, error type, model, area), and when a stratum is held.

Physician time is the budget: a generator or augmenter that produces mostly junk must stop
filling reviewers' batches as soon as the evidence is clear, not when someone notices. Every
item belongs to one stratum; each physician decision on it (a review or an arbitration) counts
as approved (approve / correct: the item is usable) or rejected. When at least
`min_decisions` decisions were made (since a maintainer last released the stratum) and the
upper Wilson bound of the approval rate is below `threshold`, the stratum's remaining open
items are held (status `held`, audited) and later pushes into it are held on arrival; a
maintainer releases it (audited) and it is judged afresh from then on.

The pull order (`PullOrder`) is configurable: samples from a test model last (the demo's
random-weight model writes noise; augmented real seeds come first), then items of groups whose
quota (approved items per area / task / label) is not yet met, then priority, then oldest.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

from medaug.schema import Sample

STRATUM_PART_CHARS = 60  # each of the four parts; the key fits queue_items.stratum (String(255))
QUOTA_KEYS = ("area", "task", "label")
DEFAULT_IDLE_SECONDS = 300.0  # a longer gap between decisions is time away from the page, not review


def _part(v: str | None) -> str:
    v = (v or "-").replace("|", "/").strip() or "-"
    return v[:STRATUM_PART_CHARS]


def model_name(model: str | None) -> str | None:
    """A model's short name: the last component of a local folder path, a hub id as it is."""
    if not model:
        return None
    m = model.rstrip("/")
    if m.startswith(("/", ".", "~")):
        m = m.rsplit("/", 1)[-1]
    return m or None


@functools.lru_cache(maxsize=256)
def is_test_model(model: str | None) -> bool:
    """Whether a sample's model is a test model: its id carries the mark, or it is a local folder whose
    config.json says so (`medaug_test_model`, set by jobs/tiny_model.py) on this machine."""
    from medaug.test_model import TEST_MODEL_MARK, is_test_model_folder

    if not model:
        return False
    return TEST_MODEL_MARK in model or is_test_model_folder(model)


@dataclass(frozen=True)
class Stratum:
    source: str  # the last augmenter of the chain, else the template, else the input source
    error_type: str
    model: str
    area: str

    @property
    def key(self) -> str:
        return "|".join((self.source, self.error_type, self.model, self.area))

    @classmethod
    def parse(cls, key: str) -> Stratum:
        parts = key.split("|")
        if len(parts) != 4:
            raise ValueError(f"stratum {key!r}: expected source|error_type|model|area")
        return cls(*parts)


def stratum_of(s: Sample) -> Stratum:
    """The stratum a sample belongs to (what produced it, the error it carries, the model, the area)."""
    p = s.provenance
    if p.augmentation:
        source = p.augmentation[-1].augmenter
    elif p.template_id:
        source = f"template:{p.template_id}"
    else:
        source = p.source or "-"
    return Stratum(
        _part(source),
        _part(s.error_type.value if s.error_type else None),
        _part(model_name(p.model)),
        _part(s.area.value),
    )


def wilson(approved: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (z = 1.96: 95 %); (0, 1) without decisions."""
    if n <= 0:
        return 0.0, 1.0
    p = approved / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class HoldPolicy:
    """Hold a stratum when, after `min_decisions`, the upper bound of its approval rate is below `threshold`."""

    threshold: float = 0.5
    min_decisions: int = 50
    z: float = 1.96

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"hold threshold must be in (0, 1], got {self.threshold}")
        if self.min_decisions < 1:
            raise ValueError(f"hold min_decisions must be at least 1, got {self.min_decisions}")
        if not self.z > 0:
            raise ValueError(f"hold z must be positive, got {self.z}")

    def judge(self, approved: int, decisions: int) -> tuple[bool, float]:
        """(hold?, upper bound)."""
        upper = wilson(approved, decisions, self.z)[1]
        return decisions >= self.min_decisions and upper < self.threshold, upper


@dataclass(frozen=True)
class PullOrder:
    """Which open items a pull takes first. `quotas`: {"area"|"task"|"label": {value: approved items wanted}}."""

    quotas: dict[str, dict[str, int]] = field(default_factory=dict)
    test_models_last: bool = True
    refresh_seconds: float = 10.0  # how long the quota counts are reused between pulls

    def __post_init__(self) -> None:
        for key, targets in self.quotas.items():
            if key not in QUOTA_KEYS:
                raise ValueError(f"quota key must be one of {', '.join(QUOTA_KEYS)}, got {key!r}")
            for value, n in targets.items():
                if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                    raise ValueError(f"quota {key}={value}: must be a non-negative integer, got {n!r}")

    @classmethod
    def parse_quotas(cls, specs: list[str], **kwargs: Any) -> PullOrder:
        """From `key=value:count` strings (the CLI's --quota), e.g. `area=oncology:200`."""
        quotas: dict[str, dict[str, int]] = {}
        for spec in specs:
            try:
                key, rest = spec.split("=", 1)
                value, count = rest.rsplit(":", 1)
                n = int(count)
            except ValueError:
                raise ValueError(
                    f"--quota {spec!r}: expected key=value:count, e.g. area=oncology:200"
                ) from None
            quotas.setdefault(key.strip(), {})[value.strip()] = n
        return cls(quotas=quotas, **kwargs)

    def deficits(self, approved: dict[str, dict[str, int]]) -> dict[str, list[str]]:
        """Per quota key, the values whose approved count is still below the quota."""
        return {
            key: sorted(v for v, want in targets.items() if approved.get(key, {}).get(v, 0) < want)
            for key, targets in self.quotas.items()
        }


def active_seconds(
    reviews: list[tuple[str, float, float]], idle_seconds: float = DEFAULT_IDLE_SECONDS
) -> list[float]:
    """Seconds of attention per decision of one reviewer: (item, leased_at, submitted_at) in submit order.

    A batch is leased at once, so an item's time starts at its lease or at the reviewer's previous
    submit, whichever is later; a gap longer than `idle_seconds` counts as `idle_seconds` (the rest
    was time away from the page).
    """
    out, prev = [], -math.inf
    for _, leased, submitted in reviews:
        start = max(leased, prev)
        out.append(min(max(submitted - start, 0.0), idle_seconds))
        prev = submitted
    return out
