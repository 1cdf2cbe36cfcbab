"""A character n-gram language model for shallow fusion in the beam search.

Interpolated absolute discounting over the model's characters plus end-of-sentence. For every
context seen often enough the full next-character distribution is precomputed, so scoring a
beam step is one dictionary lookup per hypothesis. Stored in checkpoints as a tensor and a
string (``to_dict``/``from_dict``), which ``torch.load(weights_only=True)`` accepts.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from .text import CHARACTERS

EOS = "\n"
BOS = "^"  # appears in contexts only: the start of a sentence
SYMBOLS = CHARACTERS + EOS
DISCOUNT = 0.7
_CODE = {c: i for i, c in enumerate(SYMBOLS + BOS)}
_BASE = len(SYMBOLS) + 1


class CharNgramLM:
    def __init__(self, order: int, contexts: list[str], log_probs: np.ndarray):
        self.order = order
        self.index = {context: i for i, context in enumerate(contexts)}
        self.log_probs = log_probs  # (contexts, len(SYMBOLS)), float32

    @classmethod
    def train(cls, sentences: Iterable[str], order: int = 6, min_count: int = 3) -> "CharNgramLM":
        """Count the n-grams of normalised sentences (vectorised) and smooth them, lowest order first."""
        windows = _windows(sentences, order)  # (n, order): order-1 context symbols, then the target
        targets = windows[:, -1]
        unigram = np.bincount(targets, minlength=len(SYMBOLS))[None, :].astype(np.float64)
        level = _distribution(unigram, np.full((1, len(SYMBOLS)), 1 / len(SYMBOLS)))
        contexts, levels, codes = [""], [level], np.zeros(1, dtype=np.int64)
        for k in range(1, order):
            context_codes = np.zeros(len(windows), dtype=np.int64)
            for column in range(order - 1 - k, order - 1):
                context_codes = context_codes * _BASE + windows[:, column]
            unique, inverse = np.unique(context_codes, return_inverse=True)
            counts = np.zeros((len(unique), len(SYMBOLS)))
            np.add.at(counts, (inverse, targets), 1)
            keep = counts.sum(axis=1) >= min_count
            unique, counts = unique[keep], counts[keep]
            # a context's parent drops its oldest symbol; it was kept, since it is at least as frequent
            parents = np.searchsorted(codes, unique % _BASE ** (k - 1)) if k > 1 else np.zeros(len(unique), dtype=np.int64)
            level = _distribution(counts, level[parents])
            contexts += [_context_string(code, k) for code in unique.tolist()]
            levels.append(level)
            codes = unique
        return cls(order, contexts, np.log(np.concatenate(levels)).astype(np.float32))

    def next_log_probs(self, history: str) -> np.ndarray:
        """Log-probabilities of every symbol after ``history`` (the longest known suffix is used)."""
        padded = BOS * (self.order - 1) + history
        for k in range(self.order - 1, 0, -1):
            row = self.index.get(padded[len(padded) - k :])
            if row is not None:
                return self.log_probs[row]
        return self.log_probs[0]

    def score(self, sentence: str) -> float:
        """Total log-probability of a sentence including its end."""
        return sum(float(self.next_log_probs(sentence[:i])[_CODE[c]]) for i, c in enumerate(sentence + EOS))

    def to_dict(self) -> dict:
        import torch

        contexts = sorted(self.index, key=self.index.get)
        return {"order": self.order, "contexts": "\t".join(contexts), "log_probs": torch.from_numpy(self.log_probs).half()}

    @classmethod
    def from_dict(cls, values: dict) -> "CharNgramLM":
        return cls(int(values["order"]), values["contexts"].split("\t"), values["log_probs"].float().numpy())


def symbol_code(symbol: str) -> int:
    """The column of ``symbol`` (a character or EOS) in ``next_log_probs``."""
    return _CODE[symbol]


def vocab_to_lm_index(vocab_size: int, blank_id: int, eos_id: int) -> tuple[np.ndarray, list[str]]:
    """Map the acoustic model's token ids to LM symbols (and to the characters they spell).

    Assumes the default vocabulary layout: special tokens first, then ``CHARACTERS`` in order.
    The blank, never an output, maps to end-of-sentence, which the beam never extends.
    """
    first_char = vocab_size - len(CHARACTERS)
    index = np.full(vocab_size, _CODE[EOS])
    index[first_char:] = np.arange(len(CHARACTERS))
    characters = [""] * first_char + list(CHARACTERS)
    return index, characters


def _windows(sentences: Iterable[str], order: int) -> np.ndarray:
    """Every (context, next symbol) window of the padded sentences, as symbol codes."""
    pad = [_CODE[BOS]] * (order - 1)
    stream, targets = [], []
    for sentence in sentences:
        start = len(stream) + order - 1
        stream += pad + [_CODE[c] for c in sentence] + [_CODE[EOS]]
        targets.append(np.arange(start, len(stream)))
    stream_array, positions = np.array(stream, dtype=np.int64), np.concatenate(targets)
    return np.stack([stream_array[positions - order + 1 + j] for j in range(order)], axis=1)


def _distribution(counts: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Absolute discounting: discounted counts plus the freed mass spread by the lower order."""
    totals = counts.sum(axis=1, keepdims=True)
    types = (counts > 0).sum(axis=1, keepdims=True)
    return np.maximum(counts - DISCOUNT, 0) / totals + DISCOUNT * types / totals * lower


def _context_string(code: int, length: int) -> str:
    symbols = SYMBOLS + BOS
    chars = []
    for _ in range(length):
        code, digit = divmod(code, _BASE)
        chars.append(symbols[digit])
    return "".join(reversed(chars))
