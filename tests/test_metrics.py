import math

import pytest

from speechcli.metrics import ErrorRate, char_errors, edit_distance, word_errors


@pytest.mark.parametrize(
    ("ref", "hyp", "distance"),
    [
        ("", "", 0),
        ("abc", "", 3),
        ("", "abc", 3),
        ("abc", "abc", 0),
        ("kitten", "sitting", 3),
        ("flaw", "lawn", 2),
        (["a", "b"], ["b", "a"], 2),
        ((1, 2, 3), (1, 3), 1),
    ],
)
def test_edit_distance(ref, hyp, distance):
    assert edit_distance(ref, hyp) == distance
    assert edit_distance(hyp, ref) == distance


def test_word_errors():
    assert word_errors("a b c", "a x c d") == (2, 3)
    assert word_errors("the cat sat", "the cat sat") == (0, 3)
    assert word_errors("a b", "") == (2, 2)


def test_char_errors_count_spaces():
    assert char_errors("ab cd", "abcd") == (1, 5)
    assert char_errors("ab  cd ", "ab cd") == (0, 5)


def test_error_rate_accumulates_over_utterances():
    rate = ErrorRate()
    rate.add("a b c", "a x c d")
    rate.add("hello", "hello")
    assert rate.utterances == 2
    assert rate.wer == pytest.approx(2 / 4)
    assert rate.cer == pytest.approx(3 / 10)  # b->x, then " d" inserted


def test_error_rate_with_nothing_scored():
    rate = ErrorRate()
    assert rate.wer == 0.0 and rate.cer == 0.0
    rate.add("", "")
    assert rate.wer == 0.0
    rate.add("", "extra")
    assert math.isinf(rate.wer)
