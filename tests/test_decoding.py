"""Greedy and beam search, and the vectorised CTC prefix score against a brute-force reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from speechcli.decoding import (NEG_INF, DecodingOptions, beam_search, ctc_prefix_scores, decode_batch, greedy_search,
                               soft_maximum, transcript_scores)
from speechcli.model import ModelConfig, Seq2Seq

from conftest import TINY_MODEL

BLANK, EOS = 0, 1


# ------------------------------------------------------------------------------------------------
# CTC prefix scores


def _collapse(path) -> tuple[int, ...]:
    """CTC's many-to-one map: merge repeats, then drop blanks."""
    return tuple(label for label, _ in itertools.groupby(path) if label != BLANK)


def _brute_force(ctc: np.ndarray, prefix: tuple[int, ...]) -> dict:
    """Probabilities by enumerating every path (only for tiny T and V).

    prefix: P(the full T-frame output starts with ``prefix``) — the CTC prefix probability psi.
    r_n[t], r_b[t]: P(frames 0..t collapse to exactly ``prefix``, frame t non-blank / blank).
    """
    frames, vocab = ctc.shape
    probs = np.exp(ctc)

    def probability(path) -> float:
        return float(np.prod([probs[t, label] for t, label in enumerate(path)]))

    prefix_prob = sum(probability(path) for path in itertools.product(range(vocab), repeat=frames)
                      if _collapse(path)[: len(prefix)] == prefix)
    r_n, r_b = np.zeros(frames), np.zeros(frames)
    for t in range(frames):
        for path in itertools.product(range(vocab), repeat=t + 1):
            if _collapse(path) == prefix:
                (r_b if path[-1] == BLANK else r_n)[t] += probability(path)
    return {"prefix": prefix_prob, "r_n": r_n, "r_b": r_b}


def _extend(ctc: np.ndarray, prefix: tuple[int, ...]):
    """Run ctc_prefix_scores one character at a time from the empty prefix, as beam search does."""
    frames = ctc.shape[0]
    r = np.stack([np.full(frames, NEG_INF), np.cumsum(ctc[:, BLANK])])[:, :, None]  # the empty prefix
    score = 0.0
    for i, char in enumerate(prefix):
        last = prefix[i - 1] if i else -1
        scores, r = ctc_prefix_scores(r, np.array([char]), np.array([last]), ctc, BLANK, is_empty=np.array([i == 0]))
        score = scores[0]
    return score, r[:, :, 0]


def _random_ctc(frames: int, vocab: int, seed: int) -> np.ndarray:
    generator = torch.Generator().manual_seed(seed)
    return torch.log_softmax(2 * torch.randn(frames, vocab, generator=generator, dtype=torch.float64), dim=1).numpy()


@pytest.mark.parametrize("prefix", [(2,), (3,), (2, 3), (2, 2), (3, 2, 3), (2, 2, 3), (3, 3, 3), (2, 3, 2, 3)])
@pytest.mark.parametrize("seed", [0, 1])
def test_ctc_prefix_scores_match_brute_force(prefix, seed):
    ctc = _random_ctc(frames=6, vocab=4, seed=seed)
    score, r = _extend(ctc, prefix)
    expected = _brute_force(ctc, prefix)
    np.testing.assert_allclose(np.exp(score), expected["prefix"], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(np.exp(r[0]), expected["r_n"], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(np.exp(r[1]), expected["r_b"], rtol=1e-9, atol=1e-15)


def test_ctc_prefix_scores_are_vectorised_over_many_pairs():
    """Scoring several (prefix, char) pairs at once equals scoring each alone."""
    ctc = _random_ctc(frames=9, vocab=5, seed=3)
    prefixes = [(2,), (3, 4), (4, 4)]
    extend_with = [3, 4, 2]
    states = [_extend(ctc, p)[1] for p in prefixes]
    scores, r = ctc_prefix_scores(np.stack(states, axis=2), np.array(extend_with), np.array([p[-1] for p in prefixes]),
                                  ctc, BLANK, is_empty=np.zeros(3, dtype=bool))
    for i, (prefix, char) in enumerate(zip(prefixes, extend_with)):
        alone_score, alone_r = _extend(ctc, prefix + (char,))
        np.testing.assert_allclose(scores[i], alone_score, rtol=1e-12)
        np.testing.assert_allclose(r[:, :, i], alone_r, rtol=1e-12)


def test_full_sequence_probability_matches_torch_ctc_loss():
    """logaddexp(r_n[T-1], r_b[T-1]) is P(exactly this labelling): what beam search scores at <eos>."""
    ctc = _random_ctc(frames=12, vocab=5, seed=4)
    for prefix in [(2,), (2, 3), (4, 4, 2), (3, 2, 3, 2)]:
        _, r = _extend(ctc, prefix)
        ours = np.logaddexp(r[0, -1], r[1, -1])
        loss = F.ctc_loss(torch.from_numpy(ctc)[:, None, :], torch.tensor([prefix]), torch.tensor([12]),
                          torch.tensor([len(prefix)]), blank=BLANK, reduction="sum")
        np.testing.assert_allclose(ours, -loss.item(), rtol=1e-9)


# ------------------------------------------------------------------------------------------------
# Greedy and beam search on a (tiny, untrained) model


@pytest.fixture(scope="module")
def model():
    """A tiny model fitted for 20 steps to four random "utterances": it has preferences (attention
    and CTC roughly agree, hypotheses end on their own), unlike an untrained one."""
    torch.manual_seed(0)
    model = Seq2Seq(ModelConfig(**TINY_MODEL), blank_id=BLANK, sos_id=EOS).train()
    generator = torch.Generator().manual_seed(0)
    features, lengths = torch.randn(4, 110, 80, generator=generator), torch.tensor([100, 90, 80, 110])
    target_lengths = torch.tensor([6, 5, 4, 7])
    targets = torch.randint(2, TINY_MODEL["vocab_size"], (4, 7), generator=generator)
    targets[torch.arange(7)[None, :] >= target_lengths[:, None]] = 0
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(20):
        loss = model(features, lengths, targets, target_lengths)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def _features(lengths, seed=0):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(len(lengths), max(lengths), 80, generator=generator)
    for i, length in enumerate(lengths):
        features[i, length:] = 0
    return features, torch.tensor(lengths)


@torch.inference_mode()
def _encode_one(model, features, lengths, i):
    states, enc_lengths, _ = model.encode(features, lengths)
    n = int(enc_lengths[i])
    ctc = model.ctc_log_probs(states).double().numpy()[i, :n]
    return states[i : i + 1, :n], ctc


@torch.inference_mode()
def _joint_score(model, states, ctc, tokens, weight) -> float:
    """(1-λ)·attention log P(tokens + <eos>) + λ·CTC log P(tokens), computed independently of beam_search."""
    decoder = model.decoder
    mask = torch.ones(1, states.shape[1], dtype=torch.bool)
    keys = decoder.attention.keys(states)
    state = decoder.initial_state(states, mask)
    previous, attention = EOS, 0.0
    for token in tokens + [EOS]:
        logits, state = decoder.step(torch.tensor([previous]), state, keys, states, mask)
        attention += float(torch.log_softmax(logits, dim=-1)[0, token])
        previous = token
    ctc_log_prob = -F.ctc_loss(torch.from_numpy(ctc)[:, None, :], torch.tensor([tokens], dtype=torch.long).reshape(1, -1),
                               torch.tensor([len(ctc)]), torch.tensor([len(tokens)]), blank=BLANK, reduction="sum").item()
    return (1 - weight) * attention + weight * ctc_log_prob


@pytest.mark.parametrize("seed", range(4))
def test_greedy_equals_beam_of_one(model, seed):
    features, lengths = _features((90, 160), seed)
    greedy = decode_batch(model, features, lengths, DecodingOptions(beam_size=1))
    for i in range(2):
        states, ctc = _encode_one(model, features, lengths, i)
        beam = beam_search(model, states, ctc, DecodingOptions(beam_size=1, ctc_weight=0.0))
        assert beam.tokens == greedy[i].tokens
        np.testing.assert_allclose(beam.token_log_probs, greedy[i].token_log_probs, rtol=1e-5, atol=1e-6)


def test_greedy_gives_the_same_tokens_alone_and_in_a_padded_batch(model):
    features, lengths = _features((60, 150, 100), seed=5)
    batched = decode_batch(model, features, lengths, DecodingOptions(beam_size=1))
    for i, length in enumerate(lengths.tolist()):
        alone = decode_batch(model, features[i : i + 1, :length], lengths[i : i + 1], DecodingOptions(beam_size=1))[0]
        assert alone.tokens == batched[i].tokens


def test_greedy_stops_at_eos_or_the_frame_limit(model):
    features, lengths = _features((40, 200), seed=6)
    states, enc_lengths, mask = model.encode(features, lengths)
    for hyp, n in zip(greedy_search(model, states, enc_lengths, mask), enc_lengths.tolist()):
        assert len(hyp.tokens) <= n
        assert EOS not in hyp.tokens and BLANK not in hyp.tokens
        assert len(hyp.attention) in (len(hyp.tokens), len(hyp.tokens) + 1)  # + the <eos> step when it ended
        assert all(a.shape == (n,) for a in hyp.attention)


def test_beam_search_ranks_by_the_joint_score(model):
    """The beam's score is the joint CTC/attention score of its tokens, and on these inputs the
    CTC term makes it choose differently from attention-only greedy search (so CTC is used).
    Beam search is approximate: on a barely trained model it may end below greedy's joint
    score, so that is not asserted here; tests/test_learning.py checks beam accuracy."""
    options = DecodingOptions(beam_size=4, ctc_weight=0.3)
    different = 0
    for seed in range(4):
        features, lengths = _features((100,), seed)
        states, ctc = _encode_one(model, features, lengths, 0)
        beam = beam_search(model, states, ctc, options)
        greedy = decode_batch(model, features, lengths, DecodingOptions(beam_size=1))[0]
        assert beam.score == pytest.approx(_joint_score(model, states, ctc, beam.tokens, options.ctc_weight), rel=1e-5, abs=1e-4)
        different += beam.tokens != greedy.tokens
    assert different > 0


def test_beam_search_in_a_batch_equals_one_at_a_time(model):
    features, lengths = _features((70, 130), seed=7)
    options = DecodingOptions(beam_size=3)
    batched = decode_batch(model, features, lengths, options)
    for i in range(2):
        states, ctc = _encode_one(model, features, lengths, i)
        assert beam_search(model, states, ctc, options).tokens == batched[i].tokens


# ------------------------------------------------------------------------------------------------
# Scoring given transcripts (the views' agreement in transcription.py)


@torch.inference_mode()
def test_transcript_scores_match_the_joint_score_in_a_padded_batch(model):
    features, lengths = _features((70, 130, 100), seed=8)
    states, enc_lengths, _ = model.encode(features, lengths)
    ctc = model.ctc_log_probs(states).double().numpy()
    rng = np.random.default_rng(0)
    pairs = [(row, rng.integers(2, TINY_MODEL["vocab_size"], size=count).tolist())
             for row, count in [(0, 3), (1, 0), (2, 7), (1, 5), (0, 1)]]
    beam = beam_search(model, *_encode_one(model, features, lengths, 2), DecodingOptions(beam_size=3, ctc_weight=0.3))
    pairs.append((2, beam.tokens))
    scores = transcript_scores(model, states, enc_lengths, ctc, pairs, 0.3)
    for (row, tokens), score in zip(pairs, scores):
        frames = int(enc_lengths[row])
        expected = _joint_score(model, states[row : row + 1, :frames], ctc[row, :frames], tokens, 0.3)
        assert score == pytest.approx(expected, rel=1e-5, abs=1e-4)
    assert scores[-1] == pytest.approx(beam.score, rel=1e-5, abs=1e-4)  # an ended hypothesis scores as searched
    too_long = transcript_scores(model, states, enc_lengths, ctc, [(0, [2, 3] * 20)], 0.3)  # 40 tokens, 17 frames
    assert np.isfinite(too_long).all() and too_long[0] < -1e28


def test_soft_maximum_runs_from_the_maximum_to_the_mean():
    scores = np.array([[-1.0, -5.0, -9.0], [-3.0, -3.0, -3.0]])
    np.testing.assert_allclose(soft_maximum(scores, 1e-3), [-1.0, -3.0], atol=0.01)
    np.testing.assert_allclose(soft_maximum(scores, 1e6), [-5.0, -3.0], atol=0.01)
    middle = soft_maximum(scores, 3.0)
    assert -5.0 < middle[0] < -1.0 and middle[1] == pytest.approx(-3.0)
    assert np.isfinite(soft_maximum(np.array([[-1e4, -2.0]]), 0.5)).all()  # no overflow far from the maximum
