"""The cheap steps in front of the edit distance and the facts check drop only what could never merge.

Random texts over a small Chinese alphabet (so that pairs are often close), edited at random:
each shortcut is compared with doing the full work on every pair.
"""

from __future__ import annotations

import random

import numpy as np
from rapidfuzz.distance import OSA, Levenshtein

from curation.dedup import DedupConfig
from curation.dedup.candidates import bucket_pairs, length_may_match
from curation.dedup.cluster import keep_greedy
from curation.dedup.verify import bag_distance, char_counts, verify_pairs

ALPHABET = "头痛发热咳嗽胸闷腹泻恶心呕吐乏力医生建议检查血常规心电图休息饮水，。？"


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    base = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(3, 60))) for _ in range(n // 2)]
    out = list(base)
    for t in base:  # an edited copy of each: 0..8 substitutions, insertions, deletions or swaps
        chars = list(t)
        for _ in range(rng.randint(0, 8)):
            pos, op = rng.randrange(len(chars)), rng.random()
            if op < 0.4:
                chars[pos] = rng.choice(ALPHABET)
            elif op < 0.6:
                chars.insert(pos, rng.choice(ALPHABET))
            elif op < 0.8 and len(chars) > 1:
                del chars[pos]
            elif pos + 1 < len(chars):
                chars[pos], chars[pos + 1] = chars[pos + 1], chars[pos]
        out.append("".join(chars))
    return out


def test_bag_distance_never_exceeds_the_edit_distance() -> None:
    texts = _texts(600, seed=3) + ["", "a", "ｱ" * 300]  # empty, one character, counts past 255
    rng = np.random.default_rng(1)
    pairs = rng.integers(0, len(texts), size=(5000, 2))
    pairs = np.concatenate((pairs, [[i, i + 300] for i in range(300)], [[600, 601], [601, 602]]))
    bag = bag_distance(pairs, char_counts(texts))
    lev = np.asarray([Levenshtein.distance(texts[a], texts[b]) for a, b in pairs.tolist()])
    osa = np.asarray([OSA.distance(texts[a], texts[b]) for a, b in pairs.tolist()])
    assert (bag <= lev).all() and (bag <= osa).all()
    # a bound with teeth, not a constant 0: mostly over half the distance, often exact for edited copies
    assert (bag[:5000] >= 0.5 * lev[:5000]).mean() > 0.8
    assert (bag[5000:5300] == lev[5000:5300]).mean() > 0.25
    assert bag[-2] == 1 and 254 <= bag[-1] <= 255  # counts saturate at 255: still a lower bound


def test_verification_accepts_exactly_what_the_distances_accept() -> None:
    texts = _texts(800, seed=5)
    n = len(texts)
    a, b = np.triu_indices(n, k=1)
    pairs = np.stack((a, b), axis=1)
    for cfg in (DedupConfig(), DedupConfig(threshold=0.7, typos=0), DedupConfig(typos=3, typo_chars=3)):
        got, scores = verify_pairs(pairs, texts, cfg, workers=1)
        lengths = np.asarray([len(t) for t in texts])
        want = []
        for x, y in pairs.tolist():
            sim = Levenshtein.normalized_similarity(texts[x], texts[y])
            allowed = min(cfg.typos, min(lengths[x], lengths[y]) // cfg.typo_chars)
            if sim >= cfg.threshold or (allowed > 0 and OSA.distance(texts[x], texts[y]) <= allowed):
                want.append((x, y))
        assert [tuple(p) for p in got.tolist()] == want
        assert len(want) > 50  # the texts hold enough near pairs for the check to mean something
        ref = [Levenshtein.normalized_similarity(texts[x], texts[y]) for x, y in want]
        assert np.allclose(scores, ref, atol=1e-6)


def test_length_filtered_pairs_are_the_unfiltered_ones_less_impossible_lengths() -> None:
    rng = np.random.default_rng(2)
    nodes_n, bands = 3000, 6
    keys = rng.integers(0, 400, size=nodes_n * bands).astype(np.uint64)  # crowded buckets, some > max_bucket
    nodes = np.repeat(np.arange(nodes_n), bands)
    node_len = rng.integers(5, 80, size=nodes_n)
    lengths = node_len[nodes]
    cfg = DedupConfig(max_bucket=32, window=8)
    full = bucket_pairs(keys, nodes, lengths, cfg, length_filter=False)
    assert (full[:, 0] < full[:, 1]).all() and len(np.unique(full, axis=0)) == len(full)
    # every pair of a small bucket is there
    k0 = np.flatnonzero(keys == keys[0])
    members = np.unique(nodes[k0])
    if len(k0) <= cfg.max_bucket:
        got = {tuple(p) for p in full.tolist()}
        assert all((x, y) in got for i, x in enumerate(members.tolist()) for y in members[i + 1 :].tolist())
    filtered = bucket_pairs(keys, nodes, lengths, cfg)
    want = full[length_may_match(node_len[full[:, 0]], node_len[full[:, 1]], cfg)]
    assert np.array_equal(filtered, want) and 0 < len(filtered) < len(full)


def test_a_lazy_edge_check_keeps_what_removing_the_edges_first_keeps() -> None:
    rng = np.random.default_rng(4)
    n = 400
    edges = np.unique(np.sort(rng.integers(0, n, size=(1500, 2)), axis=1), axis=0)
    edges = edges[edges[:, 0] != edges[:, 1]]
    scores = rng.random(len(edges)).astype(np.float32)
    prio = rng.permutation(n)
    bad = rng.random(len(edges)) < 0.3
    asked: list[int] = []

    def agree(e: int) -> bool:
        asked.append(e)
        return not bad[e]

    for fixed in (0, 20):
        asked.clear()
        lazy = keep_greedy(prio, edges, scores, fixed=fixed, agree=agree)
        eager = keep_greedy(prio, edges[~bad], scores[~bad], fixed=fixed)
        assert np.array_equal(lazy[0], eager[0]) and np.array_equal(lazy[1], eager[1])
        assert 0 < len(set(asked)) < len(edges)  # asked only where a drop was at stake


def test_facts_checked_in_processes_match_the_checks_in_this_process(monkeypatch) -> None:
    import curation.dedup.verify as verify
    from medaug.ray_env import shutdown_ray

    shutdown_ray()  # the session's shared Ray (ray_local starts it again): no fork in a Ray driver

    raw = [
        "患者男，58岁，近三个月食欲减退，体重减少5Kg。",
        "患者男，58岁，近三个月食欲正常，体重无明显变化。",
        "八珍益母片用法：口服，一次2-3片，一日2次。",
        "香连化滞丸用法：口服，一次2丸，一日2次。",
        "孩子发烧38度5，吃了退烧药还是反复。",
        "孩子发烧38度5，吃了退烧药还是反复反复。",
        None,
    ]
    pairs = np.asarray([(a, b) for a in range(len(raw)) for b in range(a + 1, len(raw))] * 3)
    monkeypatch.setattr(verify, "PARALLEL_MIN_PAIRS", 1)
    forked = verify.facts_in_processes(pairs, raw, procs=2)
    assert forked is not None and np.array_equal(forked, verify.same_facts(pairs, raw))
    assert 0 < forked.sum() < len(pairs)
    monkeypatch.setattr(verify, "PARALLEL_MIN_PAIRS", len(pairs) + 1)
    assert verify.facts_in_processes(pairs, raw, procs=2) is None  # too few to be worth a fork
