"""Word and character error rates. Inputs are expected to be normalised already (`normalize_text`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance: the fewest substitutions, deletions and insertions turning `ref` into `hyp`.

    Parameters
    ----------
    ref, hyp : Sequence
        Any sequences of comparable items (strings, lists of words, lists of token ids).

    Returns
    -------
    int
        The distance; O(len(ref) * len(hyp)) time and O(len(hyp)) memory.
    """
    previous = list(range(len(hyp) + 1))
    for i, ref_item in enumerate(ref, start=1):
        current = [i]
        for j, hyp_item in enumerate(hyp, start=1):
            substitution = previous[j - 1] + (ref_item != hyp_item)
            current.append(min(substitution, previous[j] + 1, current[j - 1] + 1))
        previous = current
    return previous[-1]


def word_errors(ref_text: str, hyp_text: str) -> tuple[int, int]:
    """Word-level edit distance and the number of reference words (texts split on whitespace)."""
    ref_words = ref_text.split()
    return edit_distance(ref_words, hyp_text.split()), len(ref_words)


def char_errors(ref_text: str, hyp_text: str) -> tuple[int, int]:
    """Character-level edit distance and the number of reference characters.

    Spaces count as characters (as in most CER tools), after runs of whitespace are collapsed
    to one space and the ends are stripped.
    """
    ref_chars = " ".join(ref_text.split())
    return edit_distance(ref_chars, " ".join(hyp_text.split())), len(ref_chars)


@dataclass
class ErrorRate:
    """Accumulates errors over a corpus; `wer` and `cer` are corpus-level fractions (0.25 = 25%).

    A rate is 0.0 when nothing has been scored, and inf when the references held no words
    (or characters) but the hypotheses did.
    """

    word_errors: int = 0
    words: int = 0
    char_errors: int = 0
    chars: int = 0
    utterances: int = 0

    def add(self, ref: str, hyp: str) -> None:
        """Score one utterance (normalised reference and hypothesis texts)."""
        errors, words = word_errors(ref, hyp)
        self.word_errors += errors
        self.words += words
        errors, chars = char_errors(ref, hyp)
        self.char_errors += errors
        self.chars += chars
        self.utterances += 1

    @property
    def wer(self) -> float:
        return _rate(self.word_errors, self.words)

    @property
    def cer(self) -> float:
        return _rate(self.char_errors, self.chars)


def _rate(errors: int, total: int) -> float:
    if total:
        return errors / total
    return float("inf") if errors else 0.0
