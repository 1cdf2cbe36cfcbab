"""Shared fixtures: synthetic speech-like audio and a tiny (untrained) checkpoint.

Nothing here reads files outside the repository or the network; audio is made with numpy and
written with soundfile into pytest's temporary directories.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

os.environ.setdefault("OMP_NUM_THREADS", "1")

SAMPLE_RATE = 16_000
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # optional; tests using it must skip


def speech_like(seconds: float = 1.2, rate: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """Float32 mono samples that look like speech to the feature pipeline: voiced syllables
    (a harmonic series on a gliding pitch, shaped by two formant-like peaks) separated by
    short gaps, over faint noise. Deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    out = np.zeros(n, dtype=np.float64)
    position = int(0.05 * rate)
    while position < n - int(0.1 * rate):
        length = min(int(rng.uniform(0.12, 0.25) * rate), n - position)
        t = np.arange(length) / rate
        pitch = rng.uniform(100, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(1, 4) * t))
        phase = 2 * np.pi * np.cumsum(pitch) / rate
        formants = rng.uniform(300, 900), rng.uniform(1000, 2500)
        syllable = np.zeros(length)
        for harmonic in range(1, 25):
            frequency = harmonic * pitch.mean()
            gain = sum(np.exp(-((frequency - f) / 200) ** 2) for f in formants) + 0.05
            syllable += gain / harmonic**0.5 * np.sin(harmonic * phase)
        syllable *= np.hanning(length)
        out[position : position + length] += syllable
        position += length + int(rng.uniform(0.02, 0.08) * rate)
    out /= max(1e-9, np.abs(out).max())
    out = 0.5 * out + 0.003 * rng.standard_normal(n)
    return out.astype(np.float32)


def write_speech_wav(path: Path, seconds: float = 1.2, rate: int = SAMPLE_RATE, seed: int = 0,
                     channels: int = 1, subtype: str = "PCM_16") -> Path:
    """Write :func:`speech_like` audio to ``path`` (a WAV unless the suffix says otherwise)."""
    samples = speech_like(seconds, rate, seed)
    if channels > 1:
        samples = np.stack([samples] * channels, axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), samples, rate, subtype=subtype)
    return path


@pytest.fixture
def make_wav(tmp_path):
    """Factory: ``make_wav("a.wav", seconds=1.0, seed=3)`` writes into tmp_path and returns the path."""

    def make(name: str = "speech.wav", **kwargs) -> Path:
        return write_speech_wav(tmp_path / name, **kwargs)

    return make


@pytest.fixture
def speech_wav(tmp_path) -> Path:
    """A 1.2 s, 16 kHz mono speech-like WAV in tmp_path."""
    return write_speech_wav(tmp_path / "speech.wav")


TINY_MODEL = dict(vocab_size=30, encoder_layers=1, encoder_hidden=32, decoder_hidden=32, attention_dim=32,
                  conv_channels=4, location_filters=4, location_kernel=7, embedding_dim=16, dropout=0.0)


def build_tiny_model(seed: int = 0):
    """An untrained tiny Seq2Seq over the default vocabulary (fast; outputs garbage text)."""
    import torch

    from speechcli.model import ModelConfig, Seq2Seq
    from speechcli.text import Vocabulary

    vocab = Vocabulary.default()
    assert len(vocab) == TINY_MODEL["vocab_size"]
    torch.manual_seed(seed)
    model = Seq2Seq(ModelConfig(**TINY_MODEL), blank_id=vocab.blank_id, sos_id=vocab.sos_id).eval()
    return model, vocab


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """Path to an untrained tiny checkpoint (default FeatureConfig, mean 0 / std 1)."""
    from speechcli.audio import FeatureConfig
    from speechcli.checkpoint import save_checkpoint

    model, vocab = build_tiny_model()
    config = FeatureConfig()
    path = tmp_path_factory.mktemp("tiny_model") / "tiny.pt"
    save_checkpoint(path, model, vocab, config, np.zeros(config.n_mels, np.float32), np.ones(config.n_mels, np.float32),
                    info={"note": "untrained tiny test model"})
    return path
