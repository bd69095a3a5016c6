"""Mention → standard term: exact lookup first, else candidate terms ranked by similarity to the
lexicon's wordings and by a classifier trained at run time on them, returned only above a confidence
threshold (below it the mention is left as it is).

The lexicon loaded first names the standard vocabulary (with IMCS-21 pairs loaded, the IMCS-21 terms):
its terms are the candidates, its mapping wins an exact lookup, and a wording of a later lexicon whose
term the first one maps is chained through (流鼻涕 → 流涕 → 鼻流涕). A candidate term scores the best, over
the wordings that map to it (term and variants of any relation, weighted by relation), of edit-distance
ratio + 0.2 × partial ratio (rapidfuzz, all wordings at once), plus 0.1 × the scores of its other wordings
among the 15 nearest (a vote of the near neighbours), plus 1.5 × P(term) of a softmax classifier over
character 1-3-grams trained on the loaded wordings when the normaliser is built (ngram_classifier.py;
what a term's wordings share, 呼噜 for 打鼾, however the rest is worded). The weights are a handful of
generic numbers fitted by 5-fold cross-validation on the IMCS-21 train pairs (`bench/normalize.py --cv`);
nothing is downloaded, and building takes about a second. A mention is ranked as written and without its
quantities and degree words (三天没拉 → 没拉); an exact hit in another lexicon whose term is not a standard
term (出冷汗 with IMCS-21 loaded) is ranked as said and as that term among the standard terms, and that
term stands unless one scores ≥ BRIDGE_THRESHOLD. Temperatures (烧到39.5, 不超过38.5) take the grade of
the first lexicon's nearest temperature mention, or else the fever scale's (augmenters/temperature.py);
stool frequencies (三四天一次大便, 一天五六次) are graded into 便秘 / 腹泻 (augmenters/stool_frequency.py)
when those are standard terms.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from augmenters.ngram_classifier import NgramClassifier
from augmenters.paraphrase import _strip_edges
from augmenters.stool_frequency import stool_grade
from augmenters.temperature import fever_grade, temperature
from medaug.lexicon import Lexicon

RELATION_WEIGHT = {"exact": 1.0, "broader": 1.0, "narrower": 0.6, "related": 0.5}
TOP = 15  # wordings looked at per mention
PARTIAL_WEIGHT = 0.2
# × P(term) of the n-gram classifier trained on the loaded lexicon (ngram_classifier.py): fitted, with the
# other weights here, by 5-fold cross-validation on the IMCS-21 train pairs (`bench/normalize.py --cv`).
CLS_WEIGHT = 1.5
# Each further near wording of the same term adds this share of its score: a term that many of the top
# wordings map to (大便干, 大便干硬, 粑粑干 → one term) is better supported than one lone near wording.
SUM_WEIGHT = 0.1
THRESHOLD = 0.6  # below this score the mention is left as it is (chosen on IMCS-21 dev and everyday lines)
# Another lexicon's exact term (the core's 心悸 for 心慌) gives way to a standard term only when that term is
# about as near as a wording of it (score ≥ 1: 出冷汗 → 出汗); 心悸 is not traded for 恶心 at 0.7.
BRIDGE_THRESHOLD = 1.0
TEMP_NEAR = 0.3  # ℃: a temperature takes the grade of the first lexicon's nearest one within this


@dataclass(frozen=True)
class Normalised:
    term: str | None  # None: below the threshold, leave the mention as it is
    confidence: float
    how: str  # exact / fever / ranked / below_threshold / not_bare / empty


# Counts, durations and degree words say how much or how long, not what (三四天没拉 is constipation, 有点咳
# a cough): they are dropped from a mention before it is ranked. Temperatures are graded before this.
_QUANTITY = re.compile(
    r"[0-9０-９一二两三四五六七八九十几半每]+(?:个)?多?(?:天|日|周|星期|月|年|次|回|顿|小时|分钟)(?:了|多|左右)?"
)
_DEGREE = re.compile(
    r"有点儿|有点|有些|一点点|一点|稍微|轻微的|轻微|特别|非常|比较|挺|老是|总是|经常|一直|偶尔"
)


def clean_mention(m: str) -> str:
    """The mention without its quantities and degree words: the concept is what is normalised."""
    out = _DEGREE.sub("", _QUANTITY.sub("", m)).strip("，,。；;的了 ")
    return out or m


class Normaliser:
    """Built from a Lexicon (user lexicons first, as loaded); `normalise(mention)` ranks its terms."""

    def __init__(self, lexicon: Lexicon, *, threshold: float = THRESHOLD):
        self.lexicon = lexicon
        # The user's lexicons (every source but the shipped core) name the standard vocabulary (the IMCS-21
        # terms when its pairs are given): their terms are the candidates and their mapping wins a lookup.
        from medaug.lexicon import CORE_LEXICON

        core = {"medaug-core", CORE_LEXICON.name}
        user = {e.source for e in lexicon.entries} - core
        primary = user or {e.source for e in lexicon.entries}
        table: dict[str, Counter[str]] = defaultdict(Counter)
        first: dict[str, Counter[str]] = defaultdict(Counter)
        targets: set[str] = set()
        for e in lexicon.entries:
            if e.direction == "to_colloquial":
                continue
            if e.source in primary:
                targets.add(e.term)
            for v in (e.term, *e.variants):
                w = 1.0 if v == e.term else RELATION_WEIGHT[e.relation]
                table[v][e.term] += w
                if e.source in primary:
                    first[v][e.term] += w
        # A wording of another lexicon whose term the primary one maps (流鼻涕 → 流涕 → 鼻流涕) maps on.
        for e in lexicon.entries:
            if e.source not in primary and e.term in first and e.direction != "to_colloquial":
                for v in (e.term, *e.variants):
                    for t, n in first[e.term].items():
                        table[v][t] += 0.5 * n * (1.0 if v == e.term else RELATION_WEIGHT[e.relation])
        self.targets = targets
        self.first = dict(first)
        # Temperatures graded the way the primary lexicon grades them (nearest value), if it has some.
        self._temps = sorted(
            (t, c.most_common(1)[0][0]) for w, c in first.items() if (t := temperature(w)) is not None
        )
        self.table_all = dict(table)  # exact lookups: the user's lexicons first (self.first), then all
        self.table = {w: Counter({t: n for t, n in c.items() if t in targets}) for w, c in table.items()}
        self.table = {w: c for w, c in self.table.items() if c}
        self.wordings = list(self.table)
        self._index = {w: i for i, w in enumerate(self.wordings)}
        self.terms = sorted({t for c in self.table.values() for t in c})
        self._term_index = {t: i for i, t in enumerate(self.terms)}
        self._cls = NgramClassifier(len(self.terms)).fit(self._examples())
        self.threshold = threshold

    def _examples(self) -> list[tuple[str, int, float]]:
        """The classifier's training rows: every wording → its terms, and again as a mention is ranked
        without its quantities and degree words (一直咳 → 咳), so both forms are learned."""
        rows = []
        for w, c in self.table.items():
            forms = dict.fromkeys((w, _strip_edges(clean_mention(w))))
            rows += [(f, self._term_index[t], min(n, 1.0)) for f in forms if f for t, n in c.items()]
        return rows

    def _matrix(self, mentions: list[str]) -> np.ndarray:
        r = process.cdist(mentions, self.wordings, scorer=fuzz.ratio, dtype=np.float32, workers=-1)
        p = process.cdist(mentions, self.wordings, scorer=fuzz.partial_ratio, dtype=np.float32, workers=-1)
        return (r + PARTIAL_WEIGHT * p) / 100

    def _rank(self, forms: list[str], sims: list[np.ndarray]) -> tuple[str | None, float]:
        """Best term over the mention's forms (as written, and without quantities and degree words)."""
        score = np.zeros(len(self.terms))
        for m, row in dict(zip(forms, sims, strict=True)).items():
            best = np.zeros(len(self.terms))
            total = np.zeros(len(self.terms))
            for j in np.argsort(-row)[:TOP]:
                for t, w in self.table[self.wordings[j]].items():
                    k = self._term_index[t]
                    best[k] = max(best[k], row[j] * min(w, 1.0))
                    total[k] += row[j] * min(w, 1.0)
            best = best + SUM_WEIGHT * (total - best)
            score = np.maximum(score, best + CLS_WEIGHT * self._cls.predict(m))
        k = int(np.argmax(score))
        return self.terms[k], float(score[k])

    # -- public -----------------------------------------------------------------------------------------
    def _lookup(self, m: str) -> Normalised | None:
        if not m:
            return Normalised(None, 0.0, "empty")
        for cand in dict.fromkeys((m, _strip_edges(m))):
            if cand in self.first:
                if cand in self.targets and self.first[cand].get(cand):
                    return Normalised(cand, 1.0, "exact")
                return Normalised(self.first[cand].most_common(1)[0][0], 1.0, "exact")
            # Another lexicon's term for it is a standard term only if the user's vocabulary has it; else
            # that term is ranked against the user's wordings with the mention (出冷汗 → 出冷汗? → 出汗).
            if cand in self.table_all:
                term = self.table_all[cand].most_common(1)[0][0]
                if cand in self.targets and self.table_all[cand].get(cand):
                    term = cand
                if term in self.targets:
                    return Normalised(term, 1.0, "exact")
                return self._bridge_to(term)
            if cand in self.lexicon.clinical_terms:  # a standard term of some lexicon stays itself
                if cand in self.targets or not self.targets:
                    return Normalised(cand, 1.0, "exact")
                return self._bridge_to(cand)
        t = temperature(m)
        if t is not None and len(self._temps) >= 5:
            near = min(abs(v - t) for v, _ in self._temps)
            # Beyond the lexicon's own values (44度 when it stops at 40) the fever scale grades, if it can.
            if near <= TEMP_NEAR or fever_grade(m) is None:
                votes = Counter(lab for v, lab in self._temps if abs(v - t) == near)
                return Normalised(votes.most_common(1)[0][0], 1.0, "fever")
        grade = fever_grade(m)
        if grade is not None:
            return Normalised(grade, 1.0, "fever")
        grade = stool_grade(m)
        if grade is not None and grade in self.targets:
            return Normalised(grade, 1.0, "stool")
        return None

    @staticmethod
    def _bridge_to(term: str) -> Normalised:
        """Not an answer yet: the term another lexicon gives, to be ranked among the standard terms."""
        return Normalised(term, 0.0, "bridge")

    def normalise_many(self, mentions: list[str]) -> list[Normalised]:
        out: list[Normalised | None] = [self._lookup(m.strip()) for m in mentions]
        # Another lexicon's term, not a standard one: rank it among the standard terms; it stands unless one
        # of them is near enough.
        bridge = [i for i, r in enumerate(out) if r is not None and r.how == "bridge"]
        if bridge:
            terms = [out[i].term or "" for i in bridge]
            said = [_strip_edges(mentions[i].strip()) for i in bridge]
            rows = zip(self._matrix(terms), self._matrix(said), strict=True)
            for i, t, m, (row, row_said) in zip(bridge, terms, said, rows, strict=True):
                # Ranked as the other lexicon's term and as the patient said it (嗓子痛 → 咽痛 / 嗓子痛).
                term, score = self._rank([t, m], [row, row_said])
                out[i] = (
                    Normalised(term, score, "ranked")
                    if score >= BRIDGE_THRESHOLD
                    else Normalised(t, 1.0, "exact")
                )
        todo = [i for i, r in enumerate(out) if r is None]
        if todo:
            cores = [_strip_edges(mentions[i].strip()) for i in todo]
            cleaned = [_strip_edges(clean_mention(c)) for c in cores]
            sims = self._matrix(cores)
            changed = [k for k in range(len(todo)) if cleaned[k] != cores[k]]  # most mentions: none
            sims_clean = dict(zip(changed, self._matrix([cleaned[k] for k in changed]), strict=True))
            for k, i in enumerate(todo):
                forms, rows = [cores[k]], [sims[k]]
                if k in sims_clean:
                    forms, rows = [cores[k], cleaned[k]], [sims[k], sims_clean[k]]
                term, score = self._rank(forms, rows)
                how = "ranked" if score >= self.threshold else "below_threshold"
                if how == "ranked" and not self._bare(mentions[i]):
                    how = "not_bare"
                out[i] = Normalised(term if how == "ranked" else None, score, how)
        return [r for r in out if r is not None]

    def _bare(self, mention: str) -> bool:
        """A mention a ranked term may replace whole: nothing in it is negated (无胸痛 is not 胸痛). Counts and
        durations are dropped, as concept normalisation does (吐了两次 → 呕吐)."""
        from augmenters.paraphrase import fact_extractor

        return not any(f.negated for f in fact_extractor(self.lexicon).extract(mention))

    def normalise(self, mention: str) -> Normalised:
        return self.normalise_many([mention])[0]

    def normalise_text(self, mention: str) -> str:
        """The standard term, or the mention unchanged when the normaliser is not confident."""
        return self.normalise(mention).term or mention


def accuracy(normaliser: Normaliser, pairs: list[tuple[str, str]]) -> dict[str, float]:
    """Share of (mention, standard) pairs normalised exactly; a mention left alone counts as right only
    if it already is the standard term."""
    results = normaliser.normalise_many([m for m, _ in pairs])
    how = Counter(r.how for r in results)
    right = sum((r.term or m) == std for r, (m, std) in zip(results, pairs, strict=True))
    return {
        "pairs": len(pairs),
        "accuracy": right / len(pairs) if pairs else 0.0,
        **{f"n_{k}": v for k, v in sorted(how.items())},
    }


_CLAUSE = re.compile(r"([，,。；;！？!?、\s]+)")
MAX_MENTION = 16  # a piece longer than this is running text, not a mention


def normalize_text(text: str, normaliser: Normaliser, direction: str = "to_clinical", skipped=None) -> str:
    """What `medaug lexicon normalize` writes for one line: each clause that is a mention (short, no
    punctuation) goes through the normaliser; other text gets the lexicon's exact in-text replacements."""
    from augmenters.paraphrase import normalize_line

    if direction != "to_clinical":
        return normalize_line(text, normaliser.lexicon, direction, skipped)
    pieces = _CLAUSE.split(text)
    out = []
    for i, piece in enumerate(pieces):
        if i % 2 or not piece.strip():
            out.append(piece)
        elif len(piece.strip()) <= MAX_MENTION:
            r = normaliser.normalise(piece)
            if len(pieces) > 1 and r.how == "ranked":  # inside running text only exact lookups
                r = Normalised(None, r.confidence, "in_text")
            out.append(
                r.term
                if r.term is not None
                else normalize_line(piece, normaliser.lexicon, direction, skipped)
            )
        else:
            out.append(normalize_line(piece, normaliser.lexicon, direction, skipped))
    return "".join(out)
