"""The check an LLM rewrite must pass: the same clinical entities with the same negation status, the same
numbers, drugs and laterality as the original. Both texts are first normalised to clinical wording, so a
rewrite into plainer register (胸痛 → 胸口疼) still counts as keeping the entity.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cached_property

import ahocorasick

from augmenters.guards import LATERALITY, drug_automaton, negated
from augmenters.lexicon import MIN_MATCH_LEN, Lexicon
from augmenters.negatives import load_negative_knowledge
from augmenters.paraphrase import normalize_line

_NUMBER = re.compile(r"\d+(?:\.\d+)?")


class PreservationCheck:
    def __init__(self, lexicon: Lexicon):
        self.lexicon = lexicon

    @cached_property
    def _entities(self) -> ahocorasick.Automaton:
        a = ahocorasick.Automaton()
        names = set(self.lexicon.clinical_terms) | set(load_negative_knowledge().diseases())
        for t in names:
            if len(t) >= MIN_MATCH_LEN:
                a.add_word(t, t)
        a.make_automaton()
        return a

    def entities(self, text: str) -> dict[str, bool]:
        """Clinical entity → negated (an entity counts as negated only if every mention is)."""
        clinical = normalize_line(text, self.lexicon, "to_clinical")
        out: dict[str, bool] = {}
        for end, term in self._entities.iter_long(clinical):
            neg = negated(clinical, end - len(term) + 1)
            out[term] = out.get(term, True) and neg
        return out

    def check(self, original: str, rewrite: str) -> str | None:
        """None when the rewrite keeps the clinical content, else the reason it does not."""
        if not rewrite.strip():
            return "empty"
        if rewrite.strip() == original.strip():
            return "unchanged"
        if Counter(_NUMBER.findall(original)) != Counter(_NUMBER.findall(rewrite)):
            return "number_changed"
        drugs = drug_automaton()
        if {w for _, w in drugs.iter_long(original)} != {w for _, w in drugs.iter_long(rewrite)}:
            return "drug_changed"
        if [rewrite.count(t) > 0 for t in LATERALITY] != [original.count(t) > 0 for t in LATERALITY]:
            return "laterality_changed"
        before, after = self.entities(original), self.entities(rewrite)
        for term, neg in before.items():
            if term not in after:
                return "entity_lost"
            if after[term] != neg:
                return "negation_changed"
        return None
