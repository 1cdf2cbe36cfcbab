"""int8 dynamic quantisation: the quantised copy decodes like a model, and the original is untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechcli.decoding import DecodingOptions, decode_batch
from speechcli.model import subsampled_lengths
from speechcli.quantize import QUANTISED_MODULES, quantize_int8

from conftest import build_tiny_model


def test_quantised_copy_has_int8_layers_and_leaves_the_original_float():
    model, _ = build_tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantised = quantize_int8(model)
    float_types = (torch.nn.Linear, torch.nn.LSTM, torch.nn.LSTMCell)
    present = [name for name in QUANTISED_MODULES if name != "encoder.project"]  # a "conv2d" front end's only
    assert len(present) == len(QUANTISED_MODULES) - 1
    for name in present:
        layers = [m for m in quantised.get_submodule(name).modules() if ".quantized." in type(m).__module__]
        assert layers, name
        assert not any(type(m) in float_types for m in quantised.get_submodule(name).modules()), name
    assert type(quantised.decoder.attention.score) is torch.nn.Linear  # the per-frame attention stays float
    assert isinstance(model.encoder.lstm, torch.nn.LSTM)  # the float model is unchanged
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


@pytest.mark.parametrize("beam_size", [1, 3])
def test_quantised_model_decodes_a_batch(beam_size):
    model, _ = build_tiny_model()
    quantised = quantize_int8(model)
    torch.manual_seed(0)
    lengths = torch.tensor([60, 35])
    features = torch.randn(2, 60, 80)
    hyps = decode_batch(quantised, features, lengths, DecodingOptions(beam_size=beam_size))
    assert len(hyps) == 2
    for hyp, frames in zip(hyps, subsampled_lengths(lengths).tolist()):
        assert len(hyp.token_log_probs) == len(hyp.tokens)
        assert np.isfinite(hyp.score)
        assert all(a.shape == (frames,) for a in hyp.attention)


def test_quantised_encoder_stays_close_to_float():
    model, _ = build_tiny_model()
    quantised = quantize_int8(model)
    torch.manual_seed(1)
    features, lengths = torch.randn(1, 80, 80), torch.tensor([80])
    with torch.inference_mode():
        exact, _, _ = model.encode(features, lengths)
        approx, _, _ = quantised.encode(features, lengths)
    assert (exact - approx).abs().max() < 0.1 * exact.abs().max()
