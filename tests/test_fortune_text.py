"""recipes/english/fortune_text.py: the fortune cookies' sentences for synthetic speech and the LMs."""

from __future__ import annotations

import pytest

from fortune_text import cookie_sentences, cookies, fortune_sentences

PEOPLE = """A bore is a man who talks so much about himself that you can't talk about
yourself.  Or so they say!
		-- Anonymous
%
A friend is a present you give yourself.
		-- Robert Louis Stevenson
%
    /\\_/\\
   ( o.o )  a cat drawn in letters
%
It was 1984 and nobody was counting.
%
Yes.
%
A friend is a present you give yourself!
%
"""
CODE = 'print "A perl program is not a sentence of English.";\n%\n'


@pytest.fixture
def fortune_dir(tmp_path):
    (tmp_path / "people").write_text(PEOPLE)
    (tmp_path / "people.dat").write_bytes(b"\x00\x02")  # the index strfile writes beside each collection
    (tmp_path / "perl").write_text(CODE)
    return tmp_path


def test_cookies_lose_their_attributions():
    assert cookies(PEOPLE)[1] == "A friend is a present you give yourself."


def test_a_cookie_is_split_into_sentences_and_pictures_give_none():
    assert cookie_sentences(cookies(PEOPLE)[0]) == [
        "A bore is a man who talks so much about himself that you can't talk about yourself.", "Or so they say!"]
    assert cookie_sentences(cookies(PEOPLE)[2]) == []


def test_sentences_are_normalised_once_each_without_digits_short_ones_code_or_held_out_text(fortune_dir):
    assert fortune_sentences(fortune_dir) == [
        ("A bore is a man who talks so much about himself that you can't talk about yourself.",
         "a bore is a man who talks so much about himself that you can't talk about yourself"),
        ("Or so they say!", "or so they say"),
        ("A friend is a present you give yourself.", "a friend is a present you give yourself")]
    held_out = frozenset({"or so they say"})
    assert "or so they say" not in [n for _, n in fortune_sentences(fortune_dir, exclude=held_out)]


def test_a_missing_collection_names_the_package_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install fortunes"):
        fortune_sentences(tmp_path)
