"""recipes/english/widen.py: a wider encoder that computes what the checkpoint computed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from speechcli.model import ModelConfig, Seq2Seq

from conftest import TINY_MODEL

_SPEC = importlib.util.spec_from_file_location("widen", Path(__file__).parents[1] / "recipes/english/widen.py")
widen = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(widen)


def _outputs(model, features, lengths, targets, target_lengths):
    states, out_lengths, mask = model.encode(features, lengths)
    return model.ctc_log_probs(states), model.teacher_forced_logits(states, mask, targets, target_lengths)


def test_the_widened_model_gives_the_same_outputs_and_can_learn():
    torch.manual_seed(0)
    config = ModelConfig(**{**TINY_MODEL, "encoder_layers": 2})
    model = Seq2Seq(config).eval()
    state, wide_config = widen.widened_state(model.state_dict(), config, config.encoder_hidden + 8)
    wide = Seq2Seq(wide_config)
    wide.load_state_dict(state)
    wide.eval()
    features, lengths = torch.randn(2, 64, config.n_mels), torch.tensor([64, 40])
    targets, target_lengths = torch.randint(2, config.vocab_size, (2, 5)), torch.tensor([5, 3])

    with torch.no_grad():
        for old, new in zip(_outputs(model, features, lengths, targets, target_lengths),
                            _outputs(wide, features, lengths, targets, target_lengths)):
            torch.testing.assert_close(new, old, atol=1e-5, rtol=1e-5)
    assert wide.encoder.lstm.weight_ih_l1.shape[0] == 4 * (config.encoder_hidden + 8)

    wide.train()
    wide(features, lengths, targets, target_lengths)["loss"].backward()
    new_columns = wide.ctc_head.weight.grad[:, config.encoder_hidden:config.encoder_hidden + 8]
    assert new_columns.abs().sum() > 0  # the zeros that hide the new units are trained
