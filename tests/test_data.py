"""Training-time augmentation of feature batches."""

from __future__ import annotations

import torch

from speechcli.data import _warp_mels, perturb


def test_perturb_changes_tempo_within_bounds_and_keeps_ctc_alignable():
    torch.manual_seed(0)
    lengths = torch.tensor([400, 200, 41])
    targets = torch.tensor([30, 20, 9])  # the last one has no frames to spare: 4·(9+1) = 40
    features = torch.randn(3, 400, 80)
    changed = set()
    for _ in range(20):
        out, new_lengths = perturb(features, lengths, targets)
        assert out.shape == (3, int(new_lengths.max()), 80)
        for old, new, tokens in zip(lengths.tolist(), new_lengths.tolist(), targets.tolist()):
            assert round(old / 1.1) - 1 <= new <= round(old / 0.9) + 1
            assert new // 4 > tokens
        changed.add(tuple(new_lengths.tolist()))
        assert torch.all(out[2, int(new_lengths[2]):] == 0)  # padding stays zero
    assert len(changed) > 5  # random per call


def test_mel_warp_moves_energy_along_the_frequency_axis():
    frames = torch.zeros(1, 80)
    frames[0, 40] = 1.0
    assert torch.equal(_warp_mels(frames, 1.0), frames)
    assert int(_warp_mels(frames, 1.1).argmax()) < 40  # formants shift down
    assert int(_warp_mels(frames, 0.9).argmax()) > 40  # and up
    ramp = torch.arange(80.0).unsqueeze(0)
    assert torch.allclose(_warp_mels(ramp, 0.9)[0, :10], 0.9 * torch.arange(10.0))
