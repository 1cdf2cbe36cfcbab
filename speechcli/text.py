"""Text normalisation and the character vocabulary.

`normalize_text` is the one normaliser used for training targets, evaluation references and
hypotheses alike, so that scores never depend on spelling conventions. Its output holds only
a-z, the apostrophe and single spaces. Stdlib only, so importing it is cheap.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

# ---------------------------------------------------------------------------------------------
# Numbers as words

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ("", "thousand", "million", "billion", "trillion")  # 10**15 and up: read digit by digit
_IRREGULAR_ORDINALS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth",
    "eight": "eighth", "nine": "ninth", "twelve": "twelfth",
}


def _below_thousand(n: int) -> list[str]:
    hundreds, rest = divmod(n, 100)
    words = [_ONES[hundreds], "hundred"] if hundreds else []
    if rest >= 20:
        words.append(_TENS[rest // 10])
        if rest % 10:
            words.append(_ONES[rest % 10])
    elif rest or not words:
        words.append(_ONES[rest])
    return words


def _cardinal(n: int) -> str:
    """1234 -> "one thousand two hundred thirty four" (no "and")."""
    if n == 0:
        return "zero"
    words: list[str] = []
    for scale in range(len(_SCALES) - 1, -1, -1):
        group = n // 1000**scale % 1000
        if group:
            words += _below_thousand(group) + ([_SCALES[scale]] if scale else [])
    return " ".join(words)


def _digits(digits: str) -> str:
    return " ".join(_ONES[int(d)] for d in digits)


def _year(n: int) -> str:
    """1999 -> "nineteen ninety nine", 1900 -> "nineteen hundred", 1905 -> "nineteen oh five"."""
    century, rest = divmod(n, 100)
    if rest == 0:
        return f"{_cardinal(century)} hundred"
    if rest < 10:
        return f"{_cardinal(century)} oh {_ONES[rest]}"
    return f"{_cardinal(century)} {_cardinal(rest)}"


def _integer(digits: str) -> str:
    """Digits as spoken: years 1100-1999 in pairs, "007" digit by digit, else cardinal."""
    if "," in digits:  # "1,999" is a quantity, not a year
        return _cardinal(int(digits.replace(",", "")))
    if len(digits) > 1 and digits.startswith("0") or len(digits) > 15:
        return _digits(digits)
    n = int(digits)
    return _year(n) if len(digits) == 4 and 1100 <= n <= 1999 else _cardinal(n)


def _ordinal(digits: str) -> str:
    head, _, last = _cardinal(int(digits.replace(",", ""))).rpartition(" ")
    if last in _IRREGULAR_ORDINALS:
        last = _IRREGULAR_ORDINALS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head} {last}".strip()


def _plural(digits: str) -> str:
    """1990s -> "nineteen nineties", 6s -> "sixes"."""
    words = _integer(digits)
    if words.endswith("y"):
        return words[:-1] + "ies"
    return words + ("es" if words.endswith("x") else "s")


_CURRENCIES = {"$": ("dollar", "cent"), "£": ("pound", "penny"), "€": ("euro", "cent")}
_PLURAL_UNITS = {"dollar": "dollars", "cent": "cents", "pound": "pounds", "penny": "pence", "euro": "euros"}


def _amount(count: int, unit: str) -> str:
    return f"{_cardinal(count)} {unit if count == 1 else _PLURAL_UNITS[unit]}"


def _money(symbol: str, whole: str, fraction: str | None, scale: str | None) -> str:
    """$5.50 -> "five dollars fifty cents", $2.5 million -> "two point five million dollars"."""
    unit, subunit = _CURRENCIES[symbol]
    if scale or (fraction and len(fraction) != 2):
        number = _integer(whole) + (f" point {_digits(fraction)}" if fraction else "")
        return f"{number} {scale or ''} {_PLURAL_UNITS[unit]}"
    n_whole, n_cents = int(whole.replace(",", "")), int(fraction or 0)
    parts = [_amount(n_whole, unit)] if n_whole or not n_cents else []
    if n_cents:
        parts.append(_amount(n_cents, subunit))
    return " ".join(parts)


_NUMBER = r"[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+"
_MONEY_RE = re.compile(
    rf"([$£€])\s?({_NUMBER})(?:\.([0-9]+))?(?:\s+(thousand|million|billion|trillion)(?![a-z]))?"
)
_ORDINAL_RE = re.compile(rf"({_NUMBER})(?:st|nd|rd|th)(?![a-z])")
_PLURAL_RE = re.compile(rf"({_NUMBER})'?s(?![a-z])")
_DECIMAL_RE = re.compile(rf"({_NUMBER})?\.([0-9]+)")
_INTEGER_RE = re.compile(_NUMBER)


def _spell_numbers(text: str) -> str:
    text = _MONEY_RE.sub(lambda m: f" {_money(*m.groups())} ", text)
    text = _ORDINAL_RE.sub(lambda m: f" {_ordinal(m[1])} ", text)
    text = _PLURAL_RE.sub(lambda m: f" {_plural(m[1])} ", text)
    text = _DECIMAL_RE.sub(
        lambda m: f" {_integer(m[1]) if m[1] else ''} point {_digits(m[2])} ", text
    )
    return _INTEGER_RE.sub(lambda m: f" {_integer(m[0])} ", text)


# ---------------------------------------------------------------------------------------------
# The normaliser

_APOSTROPHES = str.maketrans({c: "'" for c in "\u2019\u2018\u02bc\u2032`\u00b4"})
_UNDECOMPOSABLE = str.maketrans(
    {"æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ß": "ss", "ı": "i"}
)
_SYMBOLS = str.maketrans({"&": " and ", "%": " percent "})
_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint"}
# Letters on either side make it part of a longer word; digits are already words by then.
_ABBREVIATION_RE = re.compile(r"(?<![a-z])(mrs|mr|dr|st)(?![a-z])\.?")
_NOT_KEPT_RE = re.compile(r"[^a-z']+")
_EDGE_APOSTROPHE_RE = re.compile(r"(?<![a-z])'|'(?![a-z])")


def _to_ascii_lower(text: str) -> str:
    text = text.translate(_APOSTROPHES).lower().translate(_UNDECOMPOSABLE)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def normalize_text(text: str) -> str:
    """Normalise a transcript for training and scoring.

    Accents are stripped (é -> e), text is lower-cased, ``&`` and ``%`` become words,
    numbers are spelled out ("21st" -> "twenty first", "1999" -> "nineteen ninety nine",
    "3.5" -> "three point five", "$5" -> "five dollars"), Mr/Mrs/Dr/St are expanded,
    other punctuation becomes a space and apostrophes are kept only between letters.
    The function is idempotent.

    Parameters
    ----------
    text : str
        Raw transcript, as found in a corpus or typed by a user.

    Returns
    -------
    str
        Only a-z, apostrophes and single spaces, with no leading or trailing space;
        empty if nothing speakable is left.
    """
    text = _to_ascii_lower(text).translate(_SYMBOLS)
    text = _spell_numbers(text)
    text = _ABBREVIATION_RE.sub(lambda m: _ABBREVIATIONS[m[1]], text)
    text = _NOT_KEPT_RE.sub(" ", text)
    text = _EDGE_APOSTROPHE_RE.sub(" ", text)
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# Vocabulary

# Space first, then the apostrophe, then the alphabet: the order is fixed because token ids are
# stored in checkpoints (the vocabulary itself is stored too, see `Vocabulary.to_list`).
CHARACTERS = " 'abcdefghijklmnopqrstuvwxyz"
BLANK = "<blank>"  # CTC blank; also the padding id
SOS_EOS = "<sos/eos>"  # one token starts and ends every target, as in ESPnet


@dataclass(frozen=True)
class Vocabulary:
    """Character vocabulary: id 0 is the CTC blank (and padding), id 1 is start/end of sentence.

    Build it with `Vocabulary.default()` or, from a checkpoint, `Vocabulary.from_list(tokens)`.
    """

    tokens: tuple[str, ...]
    _ids: dict[str, int] = field(init=False, repr=False, compare=False)

    blank_id = 0
    sos_id = 1
    eos_id = 1

    def __post_init__(self) -> None:
        tokens = tuple(self.tokens)
        if tokens[:2] != (BLANK, SOS_EOS):
            raise ValueError(f"vocabulary must start with {BLANK!r}, {SOS_EOS!r}; got {tokens[:2]!r}")
        characters = tokens[2:]
        if any(len(c) != 1 for c in characters) or len(set(characters)) != len(characters):
            raise ValueError("vocabulary characters must be distinct single characters")
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "_ids", {c: i for i, c in enumerate(tokens) if i >= 2})

    @classmethod
    def default(cls) -> Vocabulary:
        """The vocabulary of `normalize_text` output: specials + `CHARACTERS`."""
        return cls((BLANK, SOS_EOS, *CHARACTERS))

    @classmethod
    def from_list(cls, tokens: list[str]) -> Vocabulary:
        """Rebuild a vocabulary saved with `to_list`; raises ValueError if it is malformed."""
        return cls(tuple(tokens))

    def to_list(self) -> list[str]:
        """The tokens as a plain list, for storing in a checkpoint."""
        return list(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Character ids of normalised `text` (no <sos/eos> added).

        Raises
        ------
        ValueError
            If `text` holds a character outside the vocabulary.
        """
        try:
            return [self._ids[c] for c in text]
        except KeyError as error:
            raise ValueError(f"character {error.args[0]!r} is not in the vocabulary: {text!r}") from None

    def decode(self, ids) -> str:
        """Text of a sequence of ids (ints or 0-d tensors); special tokens are skipped."""
        n_tokens = len(self.tokens)
        characters = []
        for i in map(int, ids):
            if not 0 <= i < n_tokens:
                raise ValueError(f"token id {i} is out of range for a vocabulary of {n_tokens}")
            if i >= 2:
                characters.append(self.tokens[i])
        return "".join(characters)
