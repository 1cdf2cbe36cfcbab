"""Split long recordings at pauses so that no piece exceeds what the model was trained on."""

from __future__ import annotations

import numpy as np

from .audio import SAMPLE_RATE

MAX_SEGMENT_S = 20.0
FRAME_S = 0.03


def split_at_pauses(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, max_seconds: float = MAX_SEGMENT_S,
                    min_silence_s: float = 0.3) -> list[tuple[int, int]]:
    """Return (start, end) sample ranges covering the speech, each at most ``max_seconds`` long.

    Frames quieter than an adaptive threshold (relative to the recording's own loud frames) count
    as silence; runs of silence of at least ``min_silence_s`` separate segments, and a segment
    still too long is cut at its quietest frame. All-silent audio gives no segments.
    """
    hop = int(FRAME_S * sample_rate)
    frames = len(samples) // hop
    if frames == 0:
        return [(0, len(samples))] if len(samples) else []
    energy = _frame_energy_db(samples[: frames * hop].reshape(frames, hop))
    loud = np.percentile(energy, 95)
    if loud < -60:  # digital silence or close to it
        return []
    threshold = max(loud - 35.0, min(np.percentile(energy, 10) + 6.0, loud - 10.0))
    speech = energy > threshold
    regions = _speech_regions(speech, int(min_silence_s / FRAME_S))
    max_frames = int(max_seconds / FRAME_S)
    pieces = [piece for region in regions for piece in _cut_long(region, energy, max_frames)]
    pad = int(0.15 / FRAME_S)
    return [(max(0, s - pad) * hop, min(frames, e + pad) * hop if e + pad < frames else len(samples)) for s, e in pieces]


def _frame_energy_db(frames: np.ndarray) -> np.ndarray:
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-10)


def _speech_regions(speech: np.ndarray, min_gap: int) -> list[tuple[int, int]]:
    """Runs of speech frames, merging runs separated by less than ``min_gap`` silent frames."""
    regions: list[list[int]] = []
    for index in np.flatnonzero(speech):
        if regions and index - regions[-1][1] <= min_gap:
            regions[-1][1] = index + 1
        else:
            regions.append([index, index + 1])
    return [(s, e) for s, e in regions if e - s >= 3]  # drop clicks shorter than 90 ms


def _cut_long(region: tuple[int, int], energy: np.ndarray, max_frames: int) -> list[tuple[int, int]]:
    start, end = region
    if end - start <= max_frames:
        return [(start, end)]
    window = energy[start + max_frames // 2 : start + max_frames]
    cut = start + max_frames // 2 + int(np.argmin(window))
    return [(start, cut)] + _cut_long((cut, end), energy, max_frames)
