"""recipes/english/wordnet_text.py: WordNet's usage examples as sentences for synthetic speech and the LMs."""

from __future__ import annotations

import pytest

from wordnet_text import gloss_examples, wordnet_sentences

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by \"Princeton\" University\n"
NOUN = (HEADER
        + '00001740 03 n 01 entity 0 000 | that which is perceived; "The Dog barked at 3 cats"; "it is"\n'
        + '00002137 03 n 01 thing 0 000 | a separate object; "`each,\' `every,\' are distributive"; '
          '"the dog barked at three cats"\n')
VERB = '00002325 29 v 01 breathe 0 000 | draw air; "She breathed deeply in the cold air"\n'


@pytest.fixture
def wordnet_dir(tmp_path):
    (tmp_path / "data.noun").write_text(NOUN)
    (tmp_path / "data.verb").write_text(VERB)
    (tmp_path / "data.adj").write_text(HEADER)
    (tmp_path / "data.adv").write_text(HEADER)
    return tmp_path


def test_examples_are_the_quoted_parts_of_the_gloss_not_the_licence_header():
    assert gloss_examples(NOUN.splitlines()[1]) == ["The Dog barked at 3 cats", "it is"]
    assert gloss_examples(HEADER) == []


def test_sentences_are_normalised_once_each_without_word_lists_short_phrases_or_held_out_text(wordnet_dir):
    assert wordnet_sentences(wordnet_dir) == [("The Dog barked at 3 cats", "the dog barked at three cats"),
                                              ("She breathed deeply in the cold air", "she breathed deeply in the cold air")]
    held_out = frozenset({"she breathed deeply in the cold air"})
    assert [n for _, n in wordnet_sentences(wordnet_dir, exclude=held_out)] == ["the dog barked at three cats"]


def test_a_missing_database_names_the_package_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        wordnet_sentences(tmp_path)
