import io
import math

import numpy as np
import pytest
import torch

from speechcli.decoding import DecodingOptions, _LMFusion, decode_batch
from speechcli.lm import CharNgramLM
from speechcli.lm import symbol_code as _code
from speechcli.model import ModelConfig, Seq2Seq
from speechcli.text import Vocabulary
from speechcli.word_lm import END, WordNgramLM

SENTENCES = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "the mat is on the floor",
             "the cat sat on the floor", "a dog sat on a log"] * 2


@pytest.fixture(scope="module")
def lm():
    return WordNgramLM.train(SENTENCES, order=3, min_count=1)


def _total_probability(lm, history):
    return sum(math.exp(lm.log_prob(history, w)) for w in lm.words if w in lm or w == END)


@pytest.mark.parametrize("history", [[], ["the"], ["the", "cat"], ["on", "the"], ["a", "log"], ["zebra", "the"]])
def test_every_distribution_sums_to_one_less_the_unknown_share(lm, history):
    # the unigrams' uniform floor keeps a share for unknown words (3 % with these 12 words); the
    # higher orders back off to the unigrams, so they never lose more than that
    unigrams_only = _total_probability(lm, ["zebra", "zebra"])
    assert 0.96 < unigrams_only < 0.98
    assert unigrams_only - 1e-9 <= _total_probability(lm, history) <= 1 + 1e-9


def test_pruned_model_stays_close_to_normalised_and_smaller(lm):
    pruned = WordNgramLM.train(SENTENCES, order=3, min_count=3)
    assert len(pruned.keys[2]) < len(lm.keys[2])
    for history in ([], ["the", "cat"], ["on", "a"]):
        assert _total_probability(pruned, history) == pytest.approx(1.0, abs=0.05)


def test_context_is_used(lm):
    assert lm.log_prob(["sat", "on"], "the") > lm.log_prob(["sat", "on"], "cat")
    assert lm.log_prob(["the"], "cat") > lm.log_prob(["a"], "floor")


def test_seen_sentence_scores_higher_than_shuffled(lm):
    assert lm.score("the cat sat on the mat") > lm.score("mat the on sat cat the") + 5


def test_membership_covers_words_not_sentence_marks(lm):
    assert "cat" in lm and "floor" in lm
    assert "zebra" not in lm and "<s>" not in lm and END not in lm


def test_round_trip_through_a_weights_only_checkpoint(lm):
    buffer = io.BytesIO()
    torch.save({"word_lm": lm.to_dict()}, buffer)
    buffer.seek(0)
    restored = WordNgramLM.from_dict(torch.load(buffer, weights_only=True)["word_lm"])
    assert restored.words == lm.words
    assert restored.score("the dog sat on the mat") == pytest.approx(lm.score("the dog sat on the mat"), abs=0.05)


def _fusion(char_lm, word_lm, **weights):
    vocab = Vocabulary.default()
    return vocab, _LMFusion(char_lm, word_lm, DecodingOptions(beam_size=2, **weights), len(vocab), vocab.blank_id, vocab.eos_id)


def test_completing_a_known_word_swaps_its_character_score_for_the_word_score(lm):
    char_lm = CharNgramLM.train(SENTENCES, order=4, min_count=1)
    vocab, fusion = _fusion(char_lm, lm, lm_weight=0.5, word_lm_weight=2.0, oov_penalty=-3.0)
    space, eos = vocab.encode(" ")[0], vocab.eos_id
    text = "the cat"
    chars = np.array([space, eos, vocab.encode("s")[0]])
    scores = fusion.candidate_scores([text], np.zeros(1), np.zeros(3, dtype=np.int64), chars)
    char_next = char_lm.next_log_probs(text)
    char_cat_space = sum(float(char_lm.next_log_probs("the " + "cat "[:i])[_code(c)]) for i, c in enumerate("cat "))
    expected_space = 0.5 * float(char_next[_code(" ")]) + 2.0 * lm.log_prob(["the"], "cat") - 0.5 * char_cat_space
    assert scores[0] == pytest.approx(expected_space, abs=1e-4)
    char_cat_end = sum(float(char_lm.next_log_probs("the " + "cat\n"[:i])[_code(c)]) for i, c in enumerate("cat\n"))
    expected_end = (0.5 * float(char_next[_code("\n")]) + 2.0 * (lm.log_prob(["the"], "cat") + lm.log_prob(["the", "cat"], END))
                    - 0.5 * char_cat_end)
    assert scores[1] == pytest.approx(expected_end, abs=1e-4)
    assert scores[2] == pytest.approx(0.5 * float(char_next[_code("s")]), abs=1e-6)  # mid-word: characters only


def test_completing_an_unknown_word_pays_the_oov_penalty(lm):
    char_lm = CharNgramLM.train(SENTENCES, order=4, min_count=1)
    vocab, fusion = _fusion(char_lm, lm, lm_weight=0.5, word_lm_weight=1.0, oov_penalty=-3.0)
    space = vocab.encode(" ")[0]
    scores = fusion.candidate_scores(["the zebra"], np.array([1.0]), np.array([0]), np.array([space]))
    assert scores[0] == pytest.approx(1.0 + 0.5 * float(char_lm.next_log_probs("the zebra")[_code(" ")]) - 3.0)


def test_without_a_character_lm_an_unknown_word_also_pays_the_unknown_share(lm):
    # else nothing would judge its spelling, and "the kat" would beat "the cat"
    vocab, fusion = _fusion(None, lm, word_lm_weight=1.0, oov_penalty=-3.0)
    space = vocab.encode(" ")[0]
    scores = fusion.candidate_scores(["the zebra", "the cat"], np.array([1.0, 1.0]), np.array([0, 1]), np.array([space, space]))
    assert scores[0] == pytest.approx(1.0 - 3.0 + lm.unknown_log_prob)
    assert scores[1] == pytest.approx(1.0 + lm.log_prob(["the"], "cat"))
    assert lm.unknown_log_prob == pytest.approx(math.log(1 - _total_probability(lm, ["zebra", "zebra"])))


def _fused_total(fusion, vocab, text: str) -> float:
    """The fusion's running total after spelling ``text`` and ending it, one character at a time, as the beam does."""
    total = np.zeros(1)
    for i, token in enumerate(vocab.encode(text) + [vocab.eos_id]):
        total = fusion.candidate_scores([text[:i]], total, np.zeros(1, dtype=np.int64), np.array([token]))
    return float(total[0])


def test_a_sentence_of_known_words_is_scored_by_the_word_lm_alone(lm):
    # every character belongs to a completed word (with the space or end after it), so all of the
    # character LM's score is swapped out, across several words
    char_lm = CharNgramLM.train(SENTENCES, order=4, min_count=1)
    vocab, fusion = _fusion(char_lm, lm, lm_weight=0.5, word_lm_weight=2.0)
    for sentence in ("the cat sat on the mat", "a dog", "the floor is on a log"):
        assert _fused_total(fusion, vocab, sentence) == pytest.approx(2.0 * lm.score(sentence), abs=1e-3)
    # a trailing space changes nothing: the end still swaps the character LM's for the word LM's
    assert _fused_total(fusion, vocab, "a dog ") == pytest.approx(2.0 * lm.score("a dog"), abs=1e-3)


def test_orders_beyond_what_the_keys_hold_are_refused_and_unigrams_keep_every_word():
    with pytest.raises(ValueError, match="order 4"):
        WordNgramLM.train(SENTENCES, order=4)
    unigrams = WordNgramLM.train(SENTENCES + ["zebra"], order=1, min_count=2)
    assert "zebra" in unigrams and unigrams.log_prob([], "zebra") < unigrams.log_prob([], "the")


def test_a_word_lm_with_weight_zero_leaves_beam_search_unchanged(lm):
    torch.manual_seed(0)
    vocab = Vocabulary.default()
    model = Seq2Seq(ModelConfig(vocab_size=len(vocab), encoder_layers=1, encoder_hidden=16, decoder_hidden=16,
                                attention_dim=16, conv_channels=4, dropout=0.0)).eval()
    features, lengths = torch.randn(3, 160, 80), torch.tensor([160, 140, 120])
    char_lm = CharNgramLM.train(SENTENCES, order=4, min_count=1)
    without = decode_batch(model, features, lengths, DecodingOptions(beam_size=4, lm_weight=3.0), char_lm)
    weight_zero = decode_batch(model, features, lengths, DecodingOptions(beam_size=4, lm_weight=3.0, oov_penalty=-5.0),
                               char_lm, lm)
    assert [h.tokens for h in without] == [h.tokens for h in weight_zero]
    assert [h.score for h in without] == pytest.approx([h.score for h in weight_zero])


def test_stored_word_ids_load_back_to_the_same_keys_and_scores_as_before(lm):
    stored = lm.to_dict()
    assert "keys_1" not in stored and stored["ids_1"].dtype == torch.int16 and stored["ids_1"].shape[1] == 2
    restored = WordNgramLM.from_dict(stored)
    for level in range(lm.order):
        assert np.array_equal(restored.keys[level], lm.keys[level])
    old_layout = {"order": lm.order, "words": "\t".join(lm.words)}  # how models exported before stored it
    for level in range(lm.order):
        old_layout.update({f"keys_{level}": torch.from_numpy(lm.keys[level]),
                           f"log_probs_{level}": torch.from_numpy(lm.log_probs[level]).half(),
                           f"log_backoffs_{level}": torch.from_numpy(lm.log_backoffs[level]).half()})
    sentence = "the dog sat on the mat"
    assert WordNgramLM.from_dict(old_layout).score(sentence) == restored.score(sentence)
