"""Decode one utterance and draw its attention alignment (PNG beside the spectrogram)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import load_audio, log_mel
from .checkpoint import LoadedModel
from .errors import AudioError
from .model import SUBSAMPLING
from .plotting import plot_attention
from .segment import split_at_pauses
from .transcription import transcribe


@dataclass
class AttentionView:
    text: str
    characters: list[str]  # one per attention row (the last is end-of-sentence)
    attention: np.ndarray  # (characters, encoder frames)
    encoder_frame_s: float
    start_s: float  # where the shown segment begins in the file


def attention_view(loaded: LoadedModel, path: Path, out_png: Path, beam_size: int = 1) -> AttentionView:
    """Transcribe the first speech segment of ``path`` and write its attention picture to ``out_png``."""
    rate = loaded.feature_config.sample_rate
    samples = load_audio(path, rate)
    pieces = split_at_pauses(samples, rate)
    if not pieces:
        raise AudioError(f"{path}: no speech found (the audio is silent)")
    start, end = pieces[0]
    # the model's own CTC and LM weights, as transcribe uses them (they matter only when beam_size > 1); one
    # pass over the audio as recorded, so that the picture is the attention over these very frames
    options = loaded.decoding_options(beam_size=beam_size, speeds=(1.0,), trimmed_view=False)
    transcript = transcribe(loaded, (str(path), samples[start:end]), options)
    segment = transcript.segments[0]
    characters = list(segment.text) + ["<eos>"]
    encoder_frame_s = loaded.feature_config.frame_shift_ms / 1000 * SUBSAMPLING
    attention = segment.attention[: len(characters)]
    features = log_mel(samples[start:end], loaded.feature_config).numpy()
    plot_attention(attention, characters, features, loaded.feature_config.frame_shift_ms / 1000, encoder_frame_s,
                   out_png, title=f"{Path(path).name}: {segment.text}")
    return AttentionView(segment.text, characters, attention, encoder_frame_s, start / rate)
