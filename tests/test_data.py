"""Training-time augmentation of feature batches."""

from __future__ import annotations

import pytest
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


def test_perturb_range_sets_how_far_tempo_moves():
    torch.manual_seed(0)
    lengths, targets = torch.tensor([1000]), torch.tensor([10])
    features = torch.randn(1, 1000, 80)
    narrow = [int(perturb(features, lengths, targets, max_tempo=0.02, max_warp=0.02)[1]) for _ in range(30)]
    wide = [int(perturb(features, lengths, targets, max_tempo=0.3, max_warp=0.3)[1]) for _ in range(30)]
    assert all(round(1000 / 1.02) <= n <= round(1000 / 0.98) for n in narrow)
    assert all(round(1000 / 1.3) <= n <= round(1000 / 0.7) for n in wide)
    assert max(wide) - min(wide) > 200  # 30 draws spread far beyond the narrow range's 40 frames


def test_mel_warp_moves_energy_along_the_frequency_axis():
    frames = torch.zeros(1, 80)
    frames[0, 40] = 1.0
    assert torch.equal(_warp_mels(frames, 1.0), frames)
    assert int(_warp_mels(frames, 1.1).argmax()) < 40  # formants shift down
    assert int(_warp_mels(frames, 0.9).argmax()) > 40  # and up
    ramp = torch.arange(80.0).unsqueeze(0)
    assert torch.allclose(_warp_mels(ramp, 0.9)[0, :10], 0.9 * torch.arange(10.0))


def test_seconds_of_digital_silence_move_the_utterance_mean_no_more_than_training_clips_did():
    # zero padding gives frames at log(eps): at most 40 % of the frames of the mean may be such frames
    import numpy as np

    from speechcli.audio import FeatureConfig, log_mel
    from speechcli.data import normalize_features

    rng = np.random.default_rng(0)
    speech = (0.1 * rng.standard_normal(16_000)).astype(np.float32)
    mean, std, config = np.zeros(80), np.ones(80, dtype=np.float32), FeatureConfig()

    def speech_frames_after(zero_seconds: float, dtype=torch.float32) -> torch.Tensor:
        audio = np.concatenate([np.zeros(int(zero_seconds * 16_000), dtype=np.float32), speech])
        return normalize_features(log_mel(audio, config).to(dtype).float(), mean, std, config)[-50:]

    alone = speech_frames_after(0.0)
    shift = {seconds: float((speech_frames_after(seconds) - alone).mean()) for seconds in (0.3, 2.0, 10.0)}
    assert 0 < shift[0.3] < shift[2.0]  # a short stretch counts whole, as in training
    assert shift[2.0] == pytest.approx(shift[10.0], abs=0.05)  # beyond 40 % it no longer counts
    assert shift[10.0] < 16  # (without the cap: 24 at 2 s, 33 at 10 s)
    as_float16 = speech_frames_after(10.0, torch.float16)  # as caches store features
    assert torch.allclose(as_float16, speech_frames_after(10.0), atol=0.05)
    silence = normalize_features(log_mel(np.zeros(16_000, dtype=np.float32), config), mean, std, config)
    assert torch.isfinite(silence).all() and silence.abs().max() < 1e-6  # nothing but silence: plain mean removal
