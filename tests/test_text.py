import pytest

from speechcli.text import BLANK, CHARACTERS, SOS_EOS, Vocabulary, normalize_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("7", "seven"),
        ("21", "twenty one"),
        ("100", "one hundred"),
        ("2005", "two thousand five"),
        ("1234567", "one million two hundred thirty four thousand five hundred sixty seven"),
        ("in 1999", "in nineteen ninety nine"),
        ("1900", "nineteen hundred"),
        ("1905", "nineteen oh five"),
        ("007", "zero zero seven"),
        ("1,000", "one thousand"),
        ("1,999", "one thousand nine hundred ninety nine"),
        ("3.5", "three point five"),
        ("3.14", "three point one four"),
        ("1st", "first"),
        ("22nd", "twenty second"),
        ("3rd", "third"),
        ("4th", "fourth"),
        ("12th", "twelfth"),
        ("20th", "twentieth"),
        ("100th", "one hundredth"),
        ("the 1990s", "the nineteen nineties"),
        ("$5", "five dollars"),
        ("$1", "one dollar"),
        ("$5.50", "five dollars fifty cents"),
        ("$2.5 million", "two point five million dollars"),
        ("50%", "fifty percent"),
        ("mp3", "mp three"),
    ],
)
def test_numbers_are_spelled_out(raw, expected):
    assert normalize_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hello, World!", "hello world"),
        ("twenty-one", "twenty one"),
        ("  lots   of\n\tspace  ", "lots of space"),
        ("AT&T", "at and t"),
        ("rock'n'roll", "rock'n'roll"),
        ("'hello'", "hello"),
        ("don\u2019t", "don't"),
        ("the dogs' bowls", "the dogs bowls"),
        ("Café Résumé naïve", "cafe resume naive"),
        ("Straße", "strasse"),
        ("Mr. Smith and Mrs. Smith", "mister smith and missus smith"),
        ("Dr. Who on St. Patrick's day", "doctor who on saint patrick's day"),
        ("mr smith", "mister smith"),
        ("mrs", "missus"),
        ("first, strong", "first strong"),  # "st" inside words is left alone
        ("", ""),
        ("?!", ""),
    ],
)
def test_punctuation_accents_and_abbreviations(raw, expected):
    assert normalize_text(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["Mr. O'Neil paid $1,250.75 on the 3rd of May, 1999 (50% off!)", "'dr'", "3mr", "dr_x", "1990's", "£5 & €2"],
)
def test_normalize_is_idempotent_and_encodable(raw):
    once = normalize_text(raw)
    assert normalize_text(once) == once
    assert set(once) <= set(CHARACTERS)
    assert once == once.strip() and "  " not in once
    Vocabulary.default().encode(once)


def test_default_vocabulary_layout():
    vocab = Vocabulary.default()
    assert len(vocab) == 2 + len(CHARACTERS) == 30
    assert vocab.tokens[:2] == (BLANK, SOS_EOS)
    assert (vocab.blank_id, vocab.sos_id, vocab.eos_id) == (0, 1, 1)
    assert vocab.tokens[vocab.encode("a")[0]] == "a"


def test_vocabulary_round_trip():
    vocab = Vocabulary.default()
    text = "it's a test"
    ids = vocab.encode(text)
    assert all(i >= 2 for i in ids)
    assert vocab.decode(ids) == text
    assert vocab.decode([vocab.sos_id, *ids, vocab.blank_id, vocab.eos_id]) == text


def test_vocabulary_list_round_trip():
    vocab = Vocabulary.default()
    stored = vocab.to_list()
    assert isinstance(stored, list)
    assert Vocabulary.from_list(stored) == vocab


def test_encode_rejects_unknown_characters():
    with pytest.raises(ValueError, match="'A'"):
        Vocabulary.default().encode("A")


def test_decode_rejects_out_of_range_ids():
    with pytest.raises(ValueError, match="out of range"):
        Vocabulary.default().decode([99])


@pytest.mark.parametrize("tokens", [["a", "b"], [BLANK, SOS_EOS, "a", "a"], [BLANK, SOS_EOS, "ab"]])
def test_from_list_rejects_malformed_vocabularies(tokens):
    with pytest.raises(ValueError):
        Vocabulary.from_list(tokens)
