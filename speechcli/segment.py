"""Split long recordings at pauses so that no piece exceeds what the model was trained on.

`split_at_pauses` works on a whole array; `PauseSplitter` does the same on a stream of blocks
(hour-long files), holding at most about one window of audio at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .audio import SAMPLE_RATE

MAX_SEGMENT_S = 20.0
FRAME_S = 0.03
SILENCE_DB = -60.0  # a recording whose loud frames are quieter than this is silent, unless they stand out:
SPEECH_CONTRAST_DB = 20.0  # loud frames this far above the quiet ones are speech at any level above FLOOR_DB
FLOOR_DB = -85.0  # below this (a few 16-bit steps) there is nothing to hear
EDGE_ZERO_RUN_S = 0.02  # digital silence inside a piece of at least this long: the audio was made digitally
# digital silence at a piece's edge shorter than this stays (decoded mp3 clips start and end with a few ms, and
# the model learned them); a longer run is left out whole
EDGE_ZEROS_KEPT_S = 0.05
ZERO_GAP_S = 1.0  # pieces are not joined across this much digital silence (synthetic voices pause up to ~0.5 s)
DIGITAL_SILENCE_DB = -99.0  # a frame of exact zeros has energy -100 dB (_frame_energy_db's floor)
PAD_S = 2.0  # context kept on each side of a speech region (the model was trained on untrimmed clips)


def split_at_pauses(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, max_seconds: float = MAX_SEGMENT_S,
                    min_silence_s: float = 0.3, loud_db: float | None = None) -> list[tuple[int, int]]:
    """Return (start, end) sample ranges covering the speech, each at most ``max_seconds`` long:
    the pieces of :func:`split_with_speech` without their speech spans."""
    return [(start, end) for start, end, _ in split_with_speech(samples, sample_rate, max_seconds, min_silence_s, loud_db)]


def split_with_speech(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, max_seconds: float = MAX_SEGMENT_S,
                      min_silence_s: float = 0.3, loud_db: float | None = None) -> list[tuple[int, int, tuple[int, int]]]:
    """Return (start, end, speech) for each piece: its sample range, at most ``max_seconds`` long,
    and the (start, end) range inside it that holds the speech, without the context around it.

    Frames quieter than an adaptive threshold (relative to the recording's own loud frames, or
    to ``loud_db`` when given) count as silence; runs of silence of at least ``min_silence_s``
    separate segments, and a segment still too long is cut at its quietest frame. Neighbouring
    segments are then joined while they fit, and each keeps up to ``PAD_S`` of the silence around
    it. All-silent audio gives no segments.
    """
    hop = int(FRAME_S * sample_rate)
    frames = len(samples) // hop
    if frames == 0:
        return [(0, len(samples), (0, len(samples)))] if len(samples) and np.abs(samples).max() > 1e-3 else []
    energy = _frame_energy_db(samples[: frames * hop].reshape(frames, hop))
    loud = float(np.percentile(energy, 95)) if loud_db is None else loud_db
    quiet = float(np.percentile(energy, 10))
    if _silent(loud, quiet):
        return []
    threshold = max(loud - 35.0, min(quiet + 6.0, loud - 10.0))
    speech = energy > threshold
    regions = _speech_regions(speech, int(min_silence_s / FRAME_S))
    pad = int(PAD_S / FRAME_S)
    max_frames = int(max_seconds / FRAME_S) - 2 * pad  # room for the context on both sides
    digital_silence = energy <= DIGITAL_SILENCE_DB
    pieces = _join_short([piece for region in regions for piece in _cut_long(region, energy, max_frames)], max_frames,
                         digital_silence)
    in_samples = [_without_zero_edges(samples, s * hop, e * hop if e < frames else len(samples), sample_rate)
                  for s, e in _padded(pieces, pad, frames)]
    return [(start, end, (max(0, speech_start * hop - start), max(1, min(speech_end * hop, end) - start)))
            for (start, end), (speech_start, speech_end) in zip(in_samples, pieces)]


def _silent(loud: float, quiet: float) -> bool:
    """Nothing to transcribe: digital silence, or faint sound without the contrast of speech (hiss).
    A quiet recording of speech (loud frames below SILENCE_DB, say a microphone at low gain) still
    stands well above its own pauses (``quiet``: the level of its quiet frames)."""
    if loud < FLOOR_DB:
        return True
    return loud < SILENCE_DB and loud - quiet < SPEECH_CONTRAST_DB


def _without_zero_edges(samples: np.ndarray, start: int, end: int, sample_rate: int) -> tuple[int, int]:
    """(start, end) narrowed to leave out the digital silence (exact zeros) at the piece's edges, each run
    longer than ``EDGE_ZEROS_KEPT_S`` whole.

    The model heard digital silence only in synthetic training clips, whose pauses between words are
    digital silence too, so zeros around speech that has none inside it (a recording padded with
    zeros, or cut from silence in an editor) are foreign to it: 1 s of zeros before and after real
    sentences raised WER from 53.5 to 87.6 %, and even the 50 ms of them that pieces kept until the thirtieth
    session took a short digit from 16 to 40 % WER (100 of FSDD's nicolas clips with 1 s of zeros around).
    Audio with zero runs inside its speech is left as it is (trimming the zeros after synthetic sentences
    cost 1.5 WER points on the synthetic dev set).
    """
    nonzero = np.flatnonzero(samples[start:end])
    if len(nonzero) == 0:
        return start, end
    short = int(EDGE_ZEROS_KEPT_S * sample_rate)
    first = start + int(nonzero[0]) if nonzero[0] > short else start
    last = start + int(nonzero[-1]) + 1 if end - start - 1 - nonzero[-1] > short else end
    if first == start and last == end:
        return start, end
    gaps = np.diff(nonzero)
    if len(gaps) and gaps.max() > EDGE_ZERO_RUN_S * sample_rate:
        return start, end
    return first, last


def loudness_db(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """The 95th percentile of frame energies (dB): the level `split_at_pauses` calls loud."""
    hop = int(FRAME_S * sample_rate)
    frames = len(samples) // hop
    if frames == 0:
        return -100.0
    return float(np.percentile(_frame_energy_db(samples[: frames * hop].reshape(frames, hop)), 95))


@dataclass
class Piece:
    start: int  # sample offset in the whole stream
    samples: np.ndarray
    speech: tuple[int, int]  # the samples that hold speech, without the context around them


class PauseSplitter:
    """Streaming form of :func:`split_at_pauses`: ``feed`` blocks, then ``finish``.

    Audio is split a window (``window_s``) at a time; pieces that end well before the window's
    end are final, the rest of the window is carried into the next one. Streams shorter than a
    window are split exactly as :func:`split_at_pauses` splits the whole array. The loudness
    reference decays slowly between windows, so a quiet stretch of a loud recording is not
    mistaken for speech.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, max_seconds: float = MAX_SEGMENT_S, window_s: float = 60.0,
                 min_silence_s: float = 0.3):
        self.rate, self.max_seconds, self.min_silence_s = sample_rate, max_seconds, min_silence_s
        self.window = int(max(window_s, 2.5 * max_seconds) * sample_rate)
        self.hold = int(1.0 * sample_rate)  # pieces ending this close to the window's end may continue
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._offset = 0  # stream position of the buffer's first sample
        self._loud: float | None = None

    def feed(self, samples: np.ndarray) -> list[Piece]:
        self._buffer.append(samples)
        self._buffered += len(samples)
        pieces: list[Piece] = []
        while self._buffered >= self.window:
            pieces += self._split(final=False)
        return pieces

    def finish(self) -> list[Piece]:
        return self._split(final=True) if self._buffered else []

    def _split(self, final: bool) -> list[Piece]:
        audio = np.concatenate(self._buffer) if len(self._buffer) != 1 else self._buffer[0]
        window = audio if final else audio[: self.window]
        loud = loudness_db(window, self.rate)
        if self._loud is not None:  # decays 6 dB per window
            loud = max(loud, self._loud - 6.0)
        self._loud = loud
        single = final and self._offset == 0  # the whole stream at once: behave like split_at_pauses
        ranges = split_with_speech(window, self.rate, self.max_seconds, self.min_silence_s, None if single else loud)
        if final:
            keep, consumed = ranges, len(audio)
        else:
            keep = [(s, e, speech) for s, e, speech in ranges if e <= len(window) - self.hold]
            consumed = keep[-1][1] if keep else len(window) - self.hold
            if not keep and ranges:  # one region runs to the window's end: keep from its start
                consumed = min(consumed, ranges[0][0])
            consumed = max(consumed, 1)
        pieces = [Piece(self._offset + s, audio[s:e].copy(), speech) for s, e, speech in keep]
        rest = audio[consumed:]
        self._buffer = [rest] if len(rest) else []
        self._buffered = len(rest)
        self._offset += consumed
        return pieces


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


def _longest_run(flags: np.ndarray) -> int:
    """Length of the longest run of True in ``flags``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    return int((edges[1::2] - edges[::2]).max(initial=0))


def _join_short(pieces: list[tuple[int, int]], max_frames: int, digital_silence: np.ndarray) -> list[tuple[int, int]]:
    """Join neighbouring pieces while the joined span stays within ``max_frames``: the model was
    trained on whole sentences, and decoding each phrase of a sentence on its own costs words.
    Pieces apart by a long stretch of digital silence stay apart, so that the zeros end up at
    piece edges, where `_without_zero_edges` leaves them out."""
    min_zero_gap = int(ZERO_GAP_S / FRAME_S)
    joined: list[tuple[int, int]] = []
    for start, end in pieces:
        if (joined and end - joined[-1][0] <= max_frames
                and _longest_run(digital_silence[joined[-1][1] : start]) < min_zero_gap):
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    return joined


def _padded(pieces: list[tuple[int, int]], pad: int, frames: int) -> list[tuple[int, int]]:
    """Widen each piece by up to ``pad`` frames of context, never past half the gap to a neighbour."""
    bounds = []
    for i, (start, end) in enumerate(pieces):
        room_before = (start - pieces[i - 1][1]) // 2 if i else pad
        room_after = (pieces[i + 1][0] - end) // 2 if i + 1 < len(pieces) else pad
        bounds.append((max(0, start - min(pad, room_before)), min(frames, end + min(pad, room_after))))
    return bounds


def _cut_long(region: tuple[int, int], energy: np.ndarray, max_frames: int) -> list[tuple[int, int]]:
    start, end = region
    if end - start <= max_frames:
        return [(start, end)]
    window = energy[start + max_frames // 2 : start + max_frames]
    cut = start + max_frames // 2 + int(np.argmin(window))
    return [(start, cut)] + _cut_long((cut, end), energy, max_frames)
