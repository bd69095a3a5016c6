"""The check an LLM rewrite must pass: the same clinical facts as the original (medaug/facts.py: symptoms,
findings, diseases, drugs normalised through the lexicon, with negation, laterality, site, severity,
numbers, durations, frequencies). Rewording into plainer or more clinical register (胸痛 → 胸口疼) keeps a
fact, because exact synonyms share one canonical term; a narrower or broader wording does not.
"""

from __future__ import annotations

import json

from medaug.facts import FactChange, FactExtractor
from medaug.lexicon import Lexicon


class PreservationCheck:
    def __init__(self, lexicon: Lexicon):
        from augmenters.paraphrase import fact_extractor

        self.lexicon = lexicon
        self.extractor: FactExtractor = fact_extractor(lexicon)

    def changes(self, original: str, rewrite: str) -> list[FactChange]:
        return self.extractor.changes(original, rewrite)

    def check(self, original: str, rewrite: str) -> str | None:
        """None when the rewrite keeps the clinical facts, else the reason code (`fact_changed:<kind>_<change>`)."""
        if not rewrite.strip():
            return "empty"
        if rewrite.strip() == original.strip():
            return "unchanged"
        changes = self.changes(original, rewrite)
        return f"fact_changed:{changes[0].code}" if changes else None

    def detail(self, original: str, rewrite: str, **extra: object) -> str:
        """Both fact sets and the changes, for the rejects table."""
        return json.dumps(
            {
                **extra,
                "changes": [c.to_dict() for c in self.changes(original, rewrite)],
                "facts_before": self.extractor.extract(original).to_list(),
                "facts_after": self.extractor.extract(rewrite).to_list(),
            },
            ensure_ascii=False,
            sort_keys=True,
        )
