import numpy as np
import pytest
import torch

from speechcli.decoding import DecodingOptions, decode_batch
from speechcli.lm import SYMBOLS, CharNgramLM, vocab_to_lm_index
from speechcli.model import ModelConfig, Seq2Seq
from speechcli.text import Vocabulary

SENTENCES = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "the mat is on the floor"] * 3


@pytest.fixture(scope="module")
def lm():
    return CharNgramLM.train(SENTENCES, order=4, min_count=1)


def test_every_distribution_sums_to_one(lm):
    assert np.allclose(np.exp(lm.log_probs.astype(np.float64)).sum(axis=1), 1.0, atol=1e-4)


def test_seen_text_scores_higher_than_scrambled(lm):
    assert lm.score("the cat sat on the mat") > lm.score("tge cta sat no hte mat") + 10


def test_context_is_used(lm):
    after_th = lm.next_log_probs("the cat sat on th")
    assert SYMBOLS[int(np.argmax(after_th))] == "e"


def test_round_trip_through_checkpoint_dict(lm):
    restored = CharNgramLM.from_dict(lm.to_dict())
    assert restored.order == lm.order
    assert restored.score("the dog sat") == pytest.approx(lm.score("the dog sat"), abs=0.05)


def test_vocabulary_maps_onto_lm_symbols():
    vocab = Vocabulary.default()
    index, characters = vocab_to_lm_index(len(vocab), vocab.blank_id, vocab.eos_id)
    for char in "abz' ":
        token = vocab.encode(char)[0]
        assert SYMBOLS[index[token]] == char and characters[token] == char
    assert SYMBOLS[index[vocab.eos_id]] == "\n"


def test_zero_lm_weight_leaves_beam_search_unchanged(lm):
    torch.manual_seed(0)
    vocab = Vocabulary.default()
    model = Seq2Seq(ModelConfig(vocab_size=len(vocab), encoder_layers=1, encoder_hidden=16, decoder_hidden=16,
                                attention_dim=16, conv_channels=4, dropout=0.0)).eval()
    features, lengths = torch.randn(2, 120, 80), torch.tensor([120, 90])
    plain = decode_batch(model, features, lengths, DecodingOptions(beam_size=3))
    with_lm = decode_batch(model, features, lengths, DecodingOptions(beam_size=3, lm_weight=0.0), lm)
    fused = decode_batch(model, features, lengths, DecodingOptions(beam_size=3, lm_weight=5.0), lm)
    assert [h.tokens for h in plain] == [h.tokens for h in with_lm]
    # a heavy LM pulls an untrained model's output towards text the LM knows
    fused_text = [vocab.decode(h.tokens) for h in fused]
    assert sum(lm.score(t) / (len(t) + 1) for t in fused_text) > sum(lm.score(vocab.decode(h.tokens)) / (len(h.tokens) + 1) for h in plain)
