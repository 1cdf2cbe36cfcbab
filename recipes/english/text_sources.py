"""What the text sources beside the books (wordnet_text.py, fortune_text.py) share: their sentences are
normalised, 3–30 words long, each text once, and none is a held-out text."""

from __future__ import annotations

from typing import Iterable

from speechcli.text import normalize_text

MIN_WORDS, MAX_WORDS = 3, 30


def distinct_sentences(originals: Iterable[str], exclude: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """(original, normalised) for each of ``originals`` whose normalised form has MIN_WORDS–MAX_WORDS words and
    is neither in ``exclude`` (e.g. every transcript of the dev sets) nor the form of an earlier one; in order."""
    seen, sentences = set(exclude), []
    for original in originals:
        normalised = normalize_text(original)
        if MIN_WORDS <= len(normalised.split()) <= MAX_WORDS and normalised not in seen:
            seen.add(normalised)
            sentences.append((original, normalised))
    return sentences
