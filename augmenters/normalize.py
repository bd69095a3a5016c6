"""Mention → standard term: exact lookup first, else candidate terms ranked by similarity to the
lexicon's wordings, returned only above a confidence threshold (below it the mention is left as it is).

The lexicon loaded first names the standard vocabulary (with IMCS-21 pairs loaded, the IMCS-21 terms):
its terms are the candidates, its mapping wins an exact lookup, and a wording of a later lexicon whose
term the first one maps is chained through (流鼻涕 → 流涕 → 鼻流涕). A candidate term scores the best, over
the wordings that map to it (term and variants of any relation, weighted by relation), of edit-distance
ratio + 0.2 × partial ratio (rapidfuzz, all wordings at once), plus 0.1 × the scores of its other wordings
among the 15 nearest (a vote of the near neighbours), plus 0.1 × the posterior of a character
1-2-gram naive Bayes model of wording → term fitted when the normaliser is built. Nothing is downloaded;
building takes a few seconds. A mention is ranked as written and without its quantities and degree words
(三天没拉 → 没拉); an exact hit in another lexicon whose term is not a standard term (出冷汗 with IMCS-21
loaded) has that term ranked among the standard terms, and it stands unless one scores ≥ BRIDGE_THRESHOLD.
Temperatures (烧到39.5, 38度多) are graded the way the first lexicon grades its own temperature mentions
(nearest value), or else by augmenters/temperature.py.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from augmenters.paraphrase import _strip_edges
from augmenters.temperature import fever_grade, temperature
from medaug.lexicon import Lexicon

RELATION_WEIGHT = {"exact": 1.0, "broader": 1.0, "narrower": 0.6, "related": 0.5}
TOP = 15  # wordings looked at per mention
PARTIAL_WEIGHT, NB_WEIGHT = 0.2, 0.1
# Each further near wording of the same term adds this share of its score: a term that many of the top
# wordings map to (大便干, 大便干硬, 粑粑干 → one term) is better supported than one lone near wording.
SUM_WEIGHT = 0.1
THRESHOLD = 0.3  # below this score the mention is left as it is
# Another lexicon's exact term (the core's 心悸 for 心慌) gives way to a standard term only when that term is
# about as near as a wording of it (score ≥ 1: 出冷汗 → 出汗); 心悸 is not traded for 恶心 at 0.7.
BRIDGE_THRESHOLD = 1.0


@dataclass(frozen=True)
class Normalised:
    term: str | None  # None: below the threshold, leave the mention as it is
    confidence: float
    how: str  # exact / fever / ranked / below_threshold / not_bare / empty


def _grams(s: str) -> list[str]:
    return list(s) + [s[i : i + 2] for i in range(len(s) - 1)]


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
        self._fit_nb()
        self.threshold = threshold

    # -- naive Bayes over character 1-2-grams -------------------------------------------------------------
    def _fit_nb(self) -> None:
        vocab: dict[str, int] = {}
        for w in self.wordings:
            for g in _grams(w):
                vocab.setdefault(g, len(vocab))
        self._vocab = vocab
        self._nb_counts = np.zeros((len(self.terms), len(vocab) + 1))
        self._nb_docs = np.zeros(len(self.terms))
        for w, c in self.table.items():
            idx = [vocab[g] for g in _grams(w)]
            for t, weight in c.items():
                np.add.at(self._nb_counts[self._term_index[t]], idx, weight)
                self._nb_docs[self._term_index[t]] += weight
        self._nb_totals = self._nb_counts.sum(axis=1) + self._nb_counts.shape[1]

    def _nb_posterior(self, m: str, exclude: str | None = None) -> np.ndarray:
        grams = _grams(m)
        idx = [self._vocab.get(g, len(self._vocab)) for g in grams]
        sel = self._nb_counts[:, idx]  # (terms, grams of m): a copy, safe to adjust
        totals = self._nb_totals.copy()
        docs = self._nb_docs.copy()
        if exclude is not None:  # hold the mention's own row out of the model
            own = Counter(self._vocab[g] for g in _grams(exclude))
            n_own = sum(own.values())
            for t, weight in self.table[exclude].items():
                ti = self._term_index[t]
                for k, vi in enumerate(idx):
                    sel[ti, k] -= weight * own.get(vi, 0)
                totals[ti] -= weight * n_own
                docs[ti] -= weight
        ll = np.log(sel + 1).sum(axis=1) - len(idx) * np.log(totals) + np.log(np.maximum(docs, 0) + 0.1)
        p = np.exp(ll - ll.max())
        return p / p.sum()

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
            score = np.maximum(score, best + NB_WEIGHT * self._nb_posterior(m))
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
            votes = Counter(lab for v, lab in self._temps if abs(v - t) == near)
            return Normalised(votes.most_common(1)[0][0], 1.0, "fever")
        grade = fever_grade(m)
        if grade is not None:
            return Normalised(grade, 1.0, "fever")
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
            for i, t, row in zip(bridge, terms, self._matrix(terms), strict=True):
                term, score = self._rank([t], [row])
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
