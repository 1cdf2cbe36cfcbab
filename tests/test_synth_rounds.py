"""recipes/english/make_corpus.py --synth-round: fresh synthetic training sentences for another stretch."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location("make_corpus", Path(__file__).parents[1] / "recipes/english/make_corpus.py")
make_corpus = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(make_corpus)

SENTENCES = [(f"pg{book}_{line:05d}", "Some words here.", "some words here") for book in (1, 2) for line in range(400)]
HOURS = 0.06  # about 150 of the 800 sentences (1.5 s each, planned) per round


def _round(round_: int, seed: int = 5) -> list:
    first = make_corpus.plan_train(SENTENCES, HOURS, random.Random(seed))
    return make_corpus.plan_synth_round(SENTENCES, HOURS, round_, seed, first)


def _keys(items) -> set[str]:
    return {item.key for item in items}


def test_round_0_is_the_first_plan_unchanged():
    assert _round(0) == make_corpus.plan_train(SENTENCES, HOURS, random.Random(5))


def test_each_later_round_reads_sentences_no_earlier_round_read_and_fills_the_same_hours():
    rounds = [_round(n) for n in range(3)]
    assert not _keys(rounds[0]) & _keys(rounds[1])
    assert not (_keys(rounds[0]) | _keys(rounds[1])) & _keys(rounds[2])
    sizes = [len(r) for r in rounds]
    assert min(sizes) > 100 and max(sizes) - min(sizes) <= 2, sizes


def test_a_round_repeats_with_the_seed_and_draws_voices_afresh():
    assert _round(1) == _round(1)
    assert [i.voice for i in _round(1)] != [i.voice for i in _round(0)][:len(_round(1))]


def test_number_clips_stay_the_first_draw_until_round_4_then_each_round_draws_its_own():
    first = make_corpus.plan_numbers(300, random.Random(5 + 3))
    assert make_corpus.plan_numbers_round(300, 3, 5) == first
    fourth, fifth = (make_corpus.plan_numbers_round(300, n, 5) for n in (4, 5))
    assert not _keys(first) & _keys(fourth) and not _keys(fourth) & _keys(fifth)  # no file is overwritten
    assert all(item.key.startswith("numbers_s4_") and item.source == "synth_numbers" for item in fourth)
    assert [i.transcript for i in fourth] != [i.transcript for i in first]
    assert [i.voice for i in fourth] != [i.voice for i in first]
    assert make_corpus.plan_numbers_round(300, 4, 5) == fourth


def test_once_the_books_are_read_out_a_round_rereads_them_in_fresh_voices_under_its_own_keys():
    rounds = [_round(n) for n in range(7)]  # about 150 of the 800 sentences a round: the sixth runs out
    read_before = set().union(*(_keys(r) for r in rounds[:5]))
    sixth, seventh = rounds[5], rounds[6]
    unread = [i for i in sixth if i.key in {s[0] for s in SENTENCES}]
    reread = [i for i in sixth if i.key.endswith("_s5")]
    assert unread and reread and len(unread) + len(reread) == len(sixth)
    assert not _keys(unread) & read_before and not _keys(reread) & read_before  # no earlier file is overwritten
    assert {i.key.removesuffix("_s5") for i in reread} <= read_before
    assert all(i.relpath.startswith(f"synth/train/{i.key.split('_')[0]}/") for i in reread)
    assert abs(len(sixth) - len(rounds[1])) <= 2  # the same hours as a round of unread sentences
    assert all(i.key.endswith("_s6") for i in seventh) and len({i.key for i in seventh}) == len(seventh)


WORDNET = [(f"wordnet_{n:05d}", "Other words.", "other words") for n in range(300)]


def _round_with_wordnet(round_: int, seed: int = 5) -> list:
    first = make_corpus.plan_train(SENTENCES, HOURS, random.Random(seed))
    extra_texts = [(make_corpus.WORDNET_FROM_ROUND, WORDNET)]
    return make_corpus.plan_synth_round(SENTENCES, HOURS, round_, seed, first, extra_texts)


def test_wordnet_joins_at_its_round_as_unread_text_and_leaves_earlier_rounds_as_they_were():
    start = make_corpus.WORDNET_FROM_ROUND
    for n in range(start):
        assert _round_with_wordnet(n) == _round(n)
    joined = _round_with_wordnet(start)
    assert joined and all(item.key.startswith("wordnet_") and "_s" not in item.key for item in joined)
    read_before = set().union(*(_keys(_round_with_wordnet(n)) for n in range(start)))
    assert not read_before & _keys(joined)


FORTUNES = [(f"fortune_{n:05d}", "Still other words.", "still other words") for n in range(300)]


def test_the_fortunes_join_at_their_round_and_leave_earlier_rounds_as_they_were():
    start = make_corpus.FORTUNES_FROM_ROUND

    def with_fortunes(round_: int) -> list:
        first = make_corpus.plan_train(SENTENCES, HOURS, random.Random(5))
        extra_texts = [(make_corpus.WORDNET_FROM_ROUND, WORDNET), (start, FORTUNES)]
        return make_corpus.plan_synth_round(SENTENCES, HOURS, round_, 5, first, extra_texts)

    for n in range(start - 2, start):
        assert with_fortunes(n) == _round_with_wordnet(n)
    joined = with_fortunes(start)
    assert joined and all(item.key.startswith("fortune_") and "_s" not in item.key for item in joined)
    assert all(item.relpath.startswith("synth/train/fortune/") for item in joined)
