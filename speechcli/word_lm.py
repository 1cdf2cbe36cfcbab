"""A word n-gram language model (interpolated Kneser-Ney) that rescores completed words in the beam search.

The character LM judges a word letter by letter while it is being spelled; when a hypothesis
completes a word, the beam swaps the character LM's score of that word for this model's
(a "multi-level" LM, Hori et al. 2017). Words this model has never seen keep their character
score plus a penalty. Stored in checkpoints as tensors and a string (``to_dict``/``from_dict``),
which ``torch.load(weights_only=True)`` accepts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable, Sequence

import numpy as np

START, END = "<s>", "</s>"
ID_BITS = 20  # an n-gram's key packs its word ids, ID_BITS each, into one int64
DISCOUNT = 0.75


class WordNgramLM:
    def __init__(self, order: int, words: list[str], keys: list[np.ndarray], log_probs: list[np.ndarray],
                 log_backoffs: list[np.ndarray]):
        """``keys[k]``: sorted keys of the stored (k+1)-grams and contexts; ``log_probs[k]`` their
        interpolated log-probabilities (NaN where the entry is only a context); ``log_backoffs[k]``
        the weight of the lower order after that context (0 where none). The unigrams' uniform
        floor is spread over ``words``, whose <s> slot stands for the unknown words' share."""
        if len(words) >= 2**ID_BITS:
            raise ValueError(f"at most {2**ID_BITS - 1} words")
        _check_order(order)
        self.order = order
        self.words = words
        self.ids = {word: i for i, word in enumerate(words)}
        self.keys, self.log_probs, self.log_backoffs = keys, log_probs, log_backoffs
        known = np.exp(log_probs[0][~np.isnan(log_probs[0])].astype(np.float64)).sum()
        self.unknown_log_prob = float(np.log(max(1.0 - known, 1e-12)))  # the share no known word takes

    def __contains__(self, word: str) -> bool:
        return word in self.ids and word not in (START, END)

    @classmethod
    def train(cls, sentences: Iterable[str], order: int = 3, min_count: int = 2) -> "WordNgramLM":
        """Count the n-grams of normalised sentences; the highest order (above unigrams) keeps those
        seen ``min_count`` times."""
        _check_order(order)
        min_count = min_count if order > 1 else 1
        counts = _kneser_ney_counts(sentences, order)
        words = [START, END] + sorted({g[0] for g in counts[0]} - {START, END})
        ids = {word: i for i, word in enumerate(words)}
        masses = [_context_masses(level, min_count if k == order - 1 else 1) for k, level in enumerate(counts)]
        probabilities: dict[tuple, float] = {}
        keys, log_probs, log_backoffs = [], [], []
        for k, level in enumerate(counts):  # k + 1 words per n-gram
            totals, backoffs = masses[k]
            next_backoffs = masses[k + 1][1] if k + 1 < order else {}
            level_probs = {}
            for gram, count in level.items():
                if k == order - 1 and count < min_count:
                    continue
                lower = probabilities[gram[1:]] if k else 1 / len(words)
                level_probs[gram] = max(count - DISCOUNT, 0) / totals[gram[:-1]] + backoffs[gram[:-1]] * lower
            entries = sorted(set(level_probs) | set(next_backoffs), key=lambda g: _pack([ids[w] for w in g]))
            keys.append(np.array([_pack([ids[w] for w in g]) for g in entries], dtype=np.int64))
            log_probs.append(np.log([level_probs.get(g, np.nan) for g in entries]))
            log_backoffs.append(np.log([next_backoffs.get(g, 1.0) for g in entries]))
            probabilities = level_probs
        return cls(order, words, keys, log_probs, log_backoffs)

    def log_prob(self, history: Sequence[str], word: str) -> float:
        """log P(word | the last order−1 words of ``history``); ``history`` excludes the <s> padding.
        Unknown history words are fine; an unknown ``word`` is the caller's to handle."""
        padded = [START] * (self.order - 1) + list(history)
        context = [self.ids.get(w, -1) for w in padded[len(padded) - self.order + 1 :]]
        target = self.ids[word]
        backoff = 0.0
        for start in range(len(context) + 1):  # the longest context first
            gram = context[start:]
            if -1 in gram:
                continue
            row = self._find(len(gram), gram + [target])
            if row is not None and not np.isnan(self.log_probs[len(gram)][row]):
                return backoff + float(self.log_probs[len(gram)][row])
            if gram:
                row = self._find(len(gram) - 1, gram)
                if row is not None:
                    backoff += float(self.log_backoffs[len(gram) - 1][row])
        raise KeyError(word)

    def score(self, sentence: str) -> float:
        """Total log-probability of an in-vocabulary sentence including its end."""
        words = sentence.split()
        return sum(self.log_prob(words[:i], w) for i, w in enumerate(words + [END]))

    def _find(self, level: int, ids: list[int]) -> int | None:
        key = _pack(ids)
        keys = self.keys[level]
        row = int(np.searchsorted(keys, key))
        return row if row < len(keys) and keys[row] == key else None

    def to_dict(self) -> dict:
        """Weights-only-loadable values. Up to 65,536 words, an n-gram is stored as its word ids, 16 bits
        each, instead of its 64-bit key (a bigram's 4 bytes instead of 8); the keys are packed again on
        loading. The highest order's backoffs, always 0, are left out."""
        import torch

        values = {"order": self.order, "words": "\t".join(self.words)}
        for k in range(self.order):
            if len(self.words) <= 2**16:
                values[f"ids_{k}"] = torch.from_numpy(_unpack(self.keys[k], k + 1).astype(np.uint16).view(np.int16))
            else:
                values[f"keys_{k}"] = torch.from_numpy(self.keys[k])
            values[f"log_probs_{k}"] = torch.from_numpy(self.log_probs[k]).half()
            if k < self.order - 1:
                values[f"log_backoffs_{k}"] = torch.from_numpy(self.log_backoffs[k]).half()
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "WordNgramLM":
        order = int(values["order"])
        keys, log_probs, log_backoffs = [], [], []
        for k in range(order):
            if f"ids_{k}" in values:
                keys.append(_pack_rows(values[f"ids_{k}"].numpy().view(np.uint16)))
            else:  # models exported before the 16-bit ids
                keys.append(values[f"keys_{k}"].numpy())
            log_probs.append(values[f"log_probs_{k}"].numpy().astype(np.float32))
            backoffs = values.get(f"log_backoffs_{k}")
            log_backoffs.append(np.zeros(len(keys[k]), np.float32) if backoffs is None else
                                backoffs.numpy().astype(np.float32))
        return cls(order, values["words"].split("\t"), keys, log_probs, log_backoffs)


def _kneser_ney_counts(sentences: Iterable[str], order: int) -> list[Counter]:
    """Raw counts of the highest order; below it, continuation counts (distinct words before)."""
    top = Counter()
    for sentence in sentences:
        words = [START] * (order - 1) + sentence.split() + [END]
        for i in range(order - 1, len(words)):
            top[tuple(words[i - order + 1 : i + 1])] += 1
    counts = [top]
    for _ in range(order - 1):
        lower = Counter()
        for gram in counts[0]:
            lower[gram[1:]] += 1
        counts.insert(0, lower)
    return counts


def _context_masses(level: Counter, min_count: int) -> tuple[dict, dict]:
    """Per context: its total count, and the weight of the lower order after it (the discounted
    mass plus that of n-grams dropped for being rarer than ``min_count``)."""
    totals, freed = defaultdict(int), defaultdict(float)
    for gram, count in level.items():
        totals[gram[:-1]] += count
        freed[gram[:-1]] += DISCOUNT if count >= min_count else count  # a dropped n-gram's whole count
    return totals, {context: freed[context] / totals[context] for context in totals}


def _pack(ids: list[int]) -> int:
    """An n-gram's key: its word ids, ID_BITS each, oldest first."""
    key = 0
    for i in ids:
        key = (key << ID_BITS) | i
    return key


def _unpack(keys: np.ndarray, length: int) -> np.ndarray:
    """The word ids of packed keys, one row per n-gram of ``length`` words, oldest first."""
    shifts = ID_BITS * np.arange(length - 1, -1, -1, dtype=np.int64)
    return (keys[:, None] >> shifts) & (2**ID_BITS - 1)


def _pack_rows(ids: np.ndarray) -> np.ndarray:
    """``_pack`` of each row of word ids."""
    keys = np.zeros(len(ids), dtype=np.int64)
    for column in ids.T.astype(np.int64):
        keys = (keys << ID_BITS) | column
    return keys


def _check_order(order: int) -> None:
    if order * ID_BITS > 63:
        raise ValueError(f"order {order}: the keys hold at most {63 // ID_BITS} words")
