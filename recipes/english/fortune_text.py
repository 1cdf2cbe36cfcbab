"""Sentences of the fortune cookies of Debian's ``fortunes``, a third text source for the language models.

The package installs fortune-mod's collections under /usr/share/games/fortunes: quotations, jokes, proverbs
and short poems, one cookie per block between ``%`` lines, most in present-day conversational English where
the books are 19th-century prose. Attributions (``-- Mark Twain``) are left out, each cookie is split into
sentences, and the collections that are pictures or program code are not read.

Licence: fortune-mod's BSD licence (/usr/share/doc/fortunes/copyright), recipes/english/README.md.
"""

from __future__ import annotations

import re
from pathlib import Path

from text_sources import distinct_sentences

FORTUNE_DIR = Path("/usr/share/games/fortunes")
NOT_PROSE = ("ascii-art", "perl", "translate-me")  # pictures, program code, other languages
_ATTRIBUTION = re.compile(r"^\s*(--|- )")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(A-Z])")
_ODD = re.compile(r"[{}<>=\\/|@#$^*_~\[\]]|\t| {3,}|[A-Za-z]+:\s*$")  # code, tables, dialogue labels


def cookies(text: str) -> list[str]:
    """The cookies of one fortune file, each without its attribution lines."""
    blocks = re.split(r"^%\s*$", text, flags=re.MULTILINE)
    return ["\n".join(line for line in block.splitlines() if not _ATTRIBUTION.match(line)).strip() for block in blocks]


def cookie_sentences(cookie: str) -> list[str]:
    """The sentences of one cookie: lines joined, split after . ! or ?; none from a cookie laid out as a
    picture, a table or code."""
    if _ODD.search(cookie.replace("\n", " ")) or re.search(r"^\s{4,}\S", cookie, flags=re.MULTILINE):
        return []
    return [s.strip() for s in _SENTENCE_END.split(" ".join(cookie.split())) if s.strip()]


def fortune_sentences(folder: Path = FORTUNE_DIR, exclude: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """(original, normalised) sentences, each text once, in file order; those in ``exclude`` (e.g. every
    transcript of the dev sets) are left out, and so are those with digits (a voice may read "1984" otherwise
    than the normaliser writes it)."""
    paths = sorted(p for p in folder.glob("*") if p.is_file() and not p.suffix and p.name not in NOT_PROSE)
    if not paths:
        raise FileNotFoundError(f"no fortune files in {folder}: apt-get install fortunes")
    sentences = (sentence for path in paths for cookie in cookies(path.read_text(encoding="utf-8", errors="replace"))
                 for sentence in cookie_sentences(cookie))
    return distinct_sentences((sentence for sentence in sentences if not re.search(r"\d", sentence)), exclude)
