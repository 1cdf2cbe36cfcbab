"""The attention-LSTM with joint CTC: shapes, attention weights, masking and the loss."""

from __future__ import annotations

import pytest
import torch

from speechcli.model import (SUBSAMPLING, ModelConfig, Seq2Seq, _tanh_, count_parameters, reverse_within,
                             subsampled_lengths)

from conftest import TINY_MODEL

VOCAB = TINY_MODEL["vocab_size"]


@pytest.fixture
def model():
    torch.manual_seed(0)
    return Seq2Seq(ModelConfig(**TINY_MODEL), blank_id=0, sos_id=1).eval()


def _batch(lengths=(120, 75, 48), n_mels=80, seed=0):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(len(lengths), max(lengths), n_mels, generator=generator)
    for i, length in enumerate(lengths):
        features[i, length:] = 0.0
    return features, torch.tensor(lengths)


def _targets(lengths=(9, 5, 3), seed=0):
    generator = torch.Generator().manual_seed(seed)
    targets = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for i, length in enumerate(lengths):
        targets[i, :length] = torch.randint(2, VOCAB, (length,), generator=generator)
    return targets, torch.tensor(lengths)


@pytest.mark.parametrize("frontend", ["stack", "conv2d"])
def test_subsampled_lengths_match_the_front_end(frontend):
    model = Seq2Seq(ModelConfig(**{**TINY_MODEL, "frontend": frontend})).eval()
    for frames in (7, 8, 9, 10, 11, 40, 101, 1000):
        features, lengths = _batch((frames,))
        states, out_lengths, mask = model.encode(features, lengths)
        assert states.shape[1] == subsampled_lengths(lengths, frontend)[0] == out_lengths[0]
        assert abs(int(out_lengths[0]) - frames / SUBSAMPLING) <= 2


def test_configs_saved_before_the_front_end_choice_load_as_conv2d():
    saved = ModelConfig(**TINY_MODEL).to_dict()
    del saved["frontend"]
    assert ModelConfig.from_dict(saved).frontend == "conv2d"
    assert ModelConfig.from_dict(ModelConfig(**TINY_MODEL).to_dict()).frontend == "stack"


def test_encoder_shapes_and_padding_mask(model):
    features, lengths = _batch()
    states, out_lengths, mask = model.encode(features, lengths)
    assert states.shape == (3, int(subsampled_lengths(lengths).max()), 2 * TINY_MODEL["encoder_hidden"])
    assert out_lengths.tolist() == subsampled_lengths(lengths).tolist()
    assert mask.dtype == torch.bool and mask.shape == states.shape[:2]
    assert mask.sum(dim=1).tolist() == out_lengths.tolist()
    assert mask[:, 0].all() and not mask[2, int(out_lengths[2]):].any()


def test_padding_does_not_change_the_encoding(model):
    """An utterance encodes the same alone as it does padded inside a batch."""
    features, lengths = _batch()
    states, out_lengths, _ = model.encode(features, lengths)
    alone, alone_lengths, _ = model.encode(features[2:3, : lengths[2]], lengths[2:3])
    n = int(alone_lengths[0])
    torch.testing.assert_close(states[2, :n], alone[0, :n], atol=1e-5, rtol=1e-4)


def test_encoder_equals_its_lstm_over_a_packed_sequence(model):
    """The unpacked per-direction evaluation is the module's own BiLSTM, padding zeroed."""
    features, lengths = _batch()
    states, out_lengths, mask = model.encode(features, lengths)
    x = model.encoder.subsample(features)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, out_lengths, batch_first=True, enforce_sorted=False)
    reference, _ = model.encoder.lstm(packed)
    reference, _ = torch.nn.utils.rnn.pad_packed_sequence(reference, batch_first=True, total_length=x.shape[1])
    torch.testing.assert_close(states, reference, atol=1e-5, rtol=1e-4)
    assert not states[~mask].any()


def test_reverse_within_keeps_padding_in_place():
    x = torch.arange(10.0).reshape(2, 5, 1)
    reversed_ = reverse_within(x, torch.tensor([5, 3]))
    assert reversed_[:, :, 0].tolist() == [[4, 3, 2, 1, 0], [7, 6, 5, 8, 9]]
    assert torch.equal(reverse_within(reversed_, torch.tensor([5, 3])), x)


def test_attention_weights_sum_to_one_and_are_zero_on_padding(model):
    features, lengths = _batch()
    states, out_lengths, mask = model.encode(features, lengths)
    decoder = model.decoder
    keys = decoder.attention.keys(states)
    state = decoder.initial_state(states, mask)
    tokens = torch.full((3,), model.sos_id)
    for step in range(6):
        logits, state = decoder.step(tokens, state, keys, states, mask)
        assert logits.shape == (3, VOCAB)
        weights = state.weights
        assert weights.shape == mask.shape
        torch.testing.assert_close(weights.sum(dim=1), torch.ones(3))
        assert (weights >= 0).all()
        assert (weights[~mask] == 0).all(), "attention leaked onto padding frames"
        tokens = logits.argmax(dim=1)


def test_attention_context_is_the_weighted_sum_of_encoder_states(model):
    features, lengths = _batch()
    states, _, mask = model.encode(features, lengths)
    attention = model.decoder.attention
    query = torch.randn(3, TINY_MODEL["decoder_hidden"])
    previous = model.decoder.initial_state(states, mask).weights
    context, weights = attention(query, attention.keys(states), states, mask, previous)
    torch.testing.assert_close(context, torch.einsum("bt,btd->bd", weights, states))


def test_attention_depends_on_the_previous_alignment(model):
    """Location awareness: moving the previous alignment moves the scores."""
    features, lengths = _batch((120,))
    states, _, mask = model.encode(features, lengths)
    attention = model.decoder.attention
    with torch.no_grad():
        attention.location_conv.weight.normal_(0, 1.0)
    query = torch.randn(1, TINY_MODEL["decoder_hidden"])
    at_start = torch.zeros_like(mask, dtype=torch.float)
    at_start[0, 0] = 1
    later = torch.zeros_like(at_start)
    later[0, 20] = 1
    _, w_start = attention(query, attention.keys(states), states, mask, at_start)
    _, w_later = attention(query, attention.keys(states), states, mask, later)
    assert not torch.allclose(w_start, w_later)


def test_ctc_head_gives_log_probabilities(model):
    features, lengths = _batch()
    states, _, _ = model.encode(features, lengths)
    log_probs = model.ctc_log_probs(states)
    assert log_probs.shape == (*states.shape[:2], VOCAB)
    torch.testing.assert_close(log_probs.exp().sum(dim=-1), torch.ones(states.shape[:2]))


def test_targets_get_eos_and_ignored_padding(model):
    targets, target_lengths = _targets((3, 1))
    outputs = model.targets_with_eos(targets, target_lengths)
    assert outputs.shape == (2, 4)
    assert outputs[0].tolist() == targets[0].tolist() + [model.sos_id]
    assert outputs[1].tolist() == [int(targets[1, 0]), model.sos_id, -100, -100]


def test_teacher_forced_logits_shape(model):
    features, lengths = _batch()
    targets, target_lengths = _targets()
    states, _, mask = model.encode(features, lengths)
    logits = model.teacher_forced_logits(states, mask, targets, target_lengths)
    assert logits.shape == (3, targets.shape[1] + 1, VOCAB)  # one extra step predicts <eos>


def test_loss_is_finite_and_joins_ctc_and_attention(model):
    features, lengths = _batch()
    targets, target_lengths = _targets()
    model.train()
    losses = model(features, lengths, targets, target_lengths)
    assert set(losses) >= {"loss", "ctc", "attention"}
    for value in losses.values():
        assert value.ndim == 0 and torch.isfinite(value)
    assert losses["ctc"] > 0 and losses["attention"] > 0
    weight = model.config.ctc_weight
    torch.testing.assert_close(losses["loss"].detach(), weight * losses["ctc"] + (1 - weight) * losses["attention"])
    losses["loss"].backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    # both heads learn from the joint loss
    assert grads["ctc_head.weight"].abs().sum() > 0
    assert grads["decoder.attention.score.weight"].abs().sum() > 0


def test_loss_stays_finite_when_ctc_cannot_align(model):
    """A transcript longer than the encoder output is impossible for CTC: zero_infinity keeps it finite."""
    features, lengths = _batch((20,))
    targets, target_lengths = _targets((12,))
    losses = model(features, lengths, targets, target_lengths)
    assert torch.isfinite(losses["loss"])


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16-autocast"])
def test_loss_falls_when_fitting_one_batch(autocast):
    torch.manual_seed(0)
    model = Seq2Seq(ModelConfig(**TINY_MODEL), blank_id=0, sos_id=1).train()
    features, lengths = _batch((80, 64))
    targets, target_lengths = _targets((5, 4))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = model(features, lengths, targets, target_lengths)["loss"]
        first = first if first is not None else float(loss.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.5 * first


def test_config_round_trips_through_a_dict():
    config = ModelConfig(**TINY_MODEL)
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert count_parameters(Seq2Seq(config)) > 0


def test_cpu_tanh_matches_torch_in_value_and_gradient():
    x = torch.linspace(-9, 9, 600).reshape(3, 200).T  # non-contiguous, saturating ends included
    with torch.no_grad():
        inplace = x.clone()
        assert _tanh_(inplace) is inplace  # no autograd: in place
        assert torch.allclose(inplace, torch.tanh(x), rtol=0, atol=3e-7)
    leaf = x.clone().requires_grad_()
    (_tanh_(leaf * 1.0) * torch.linspace(0.5, 2.0, 600).reshape(200, 3)).sum().backward()
    reference = x.clone().requires_grad_()
    (torch.tanh(reference) * torch.linspace(0.5, 2.0, 600).reshape(200, 3)).sum().backward()
    assert torch.allclose(leaf.grad, reference.grad, rtol=1e-4, atol=1e-6)
    half = x.to(torch.bfloat16)
    assert torch.equal(_tanh_(half.clone()), torch.tanh(half))  # other dtypes: torch's own tanh
