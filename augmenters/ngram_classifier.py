"""A small wording → standard-term classifier trained at run time on the lexicon the user loads.

Softmax regression over character 1-3-grams (with start and end marks, so 大便 at the start of a mention
is its own feature), fitted by a few epochs of plain SGD with a fixed seed: the same lexicon always gives
the same model. It learns which characters point to which term across all of a term's wordings (呼噜 → 打鼾,
however the rest of the mention is worded), which the nearest-wording ranker cannot. Nothing is
downloaded or shipped: on the IMCS-21 train pairs (about 5,000 wordings, 300 terms) it trains in about
half a CPU second.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

EPOCHS = 5
LEARNING_RATE = 0.5  # divided by (1 + epoch)
SEED = 0


def grams(s: str) -> list[str]:
    """Character 1-grams, and 2- and 3-grams of the marked wording, each once."""
    marked = f"^{s}$"
    out = list(s)
    for k in (2, 3):
        out += [marked[i : i + k] for i in range(len(marked) - k + 1)]
    return list(dict.fromkeys(out))


class NgramClassifier:
    """`fit(examples, labels)` on (wording, term index, weight) rows; `predict(text)` gives P(term)."""

    def __init__(self, n_labels: int):
        self.n_labels = n_labels
        self.vocab: dict[str, int] = {}
        self.weights = np.zeros((0, n_labels), np.float32)
        self.bias = np.zeros(n_labels, np.float32)

    def fit(self, rows: Iterable[tuple[str, int, float]]) -> NgramClassifier:
        rows = list(rows)
        for text, _, _ in rows:
            for g in grams(text):
                self.vocab.setdefault(g, len(self.vocab))
        feats = [np.array([self.vocab[g] for g in grams(t)], dtype=np.int64) for t, _, _ in rows]
        w = np.zeros((len(self.vocab), self.n_labels), np.float32)
        b = np.zeros(self.n_labels, np.float32)
        rng = np.random.default_rng(SEED)
        for epoch in range(EPOCHS if rows else 0):
            lr = LEARNING_RATE / (1 + epoch)
            for i in rng.permutation(len(rows)):
                f, (_, label, weight) = feats[i], rows[i]
                z = w[f].sum(axis=0) + b
                p = np.exp(z - z.max())
                p /= p.sum()
                p[label] -= 1.0  # gradient of the log loss
                step = (lr * weight) * p
                w[f] -= step
                b -= step
        self.weights, self.bias = w, b
        return self

    def predict(self, text: str) -> np.ndarray:
        """P(term) for each label, times the share of the text's n-grams the model has seen: a text it
        knows nothing of (天气很好 against symptom wordings) gets no confidence from the class prior."""
        marked = grams(text)
        idx = [i for g in marked if (i := self.vocab.get(g)) is not None]
        if not idx:
            return np.zeros(self.n_labels, np.float32)
        z = self.weights[idx].sum(axis=0) + self.bias
        p = np.exp(z - z.max())
        return p * (len(idx) / len(marked) / p.sum())
