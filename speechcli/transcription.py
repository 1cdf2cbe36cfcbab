"""Audio files → transcripts with segments, word times and confidences, decoded in batches."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Union

import numpy as np
import torch

from .audio import load_audio, log_mel
from .checkpoint import LoadedModel
from .data import normalize_features
from .decoding import DecodingOptions, Hypothesis, decode_batch
from .errors import SpeechCLIError
from .model import SUBSAMPLING
from .segment import split_at_pauses

AudioSource = Union[str, Path, tuple[str, np.ndarray]]  # a path, or (name, 16 kHz mono samples)
GROUP_SECONDS = 600.0  # audio loaded and decoded together: bounds memory on long batches
BATCH_FRAMES = 30_000  # padded feature frames per decoder batch


@dataclass
class Word:
    text: str
    start: float
    end: float
    confidence: float


@dataclass
class Segment:
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    attention: np.ndarray | None = None  # (characters + 1, encoder frames), for visualisation
    confidence: float = 1.0


@dataclass
class Transcript:
    source: str
    duration: float
    segments: list[Segment]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]


@dataclass
class Failure:
    source: str
    error: SpeechCLIError


@dataclass
class _Piece:
    index: int  # which source
    start: int  # sample offset of this piece in its source
    features: torch.Tensor


def transcribe(model: LoadedModel, audio: AudioSource, options: DecodingOptions = DecodingOptions()) -> Transcript:
    """Transcribe one file (or ``(name, samples)``); raises :class:`SpeechCLIError` on bad input."""
    result = next(transcribe_many(model, [audio], options))
    if isinstance(result, Failure):
        raise result.error
    return result


def transcribe_many(model: LoadedModel, sources: Iterable[AudioSource], options: DecodingOptions = DecodingOptions(),
                    on_audio_seconds: Callable[[float], None] | None = None) -> Iterator[Transcript | Failure]:
    """Yield one Transcript or Failure per source, in input order, batching across sources."""
    group: list[tuple[str, np.ndarray | SpeechCLIError]] = []
    seconds = 0.0
    for source in sources:
        name, loaded = _load(source, model.feature_config.sample_rate)
        group.append((name, loaded))
        seconds += len(loaded) / model.feature_config.sample_rate if isinstance(loaded, np.ndarray) else 0
        if seconds >= GROUP_SECONDS:
            yield from _transcribe_group(model, group, options, on_audio_seconds)
            group, seconds = [], 0.0
    if group:
        yield from _transcribe_group(model, group, options, on_audio_seconds)


def _load(source: AudioSource, sample_rate: int) -> tuple[str, np.ndarray | SpeechCLIError]:
    if isinstance(source, tuple):
        return source[0], source[1]
    try:
        return str(source), load_audio(source, sample_rate)
    except SpeechCLIError as error:
        return str(source), error


def _transcribe_group(model: LoadedModel, group, options, on_audio_seconds) -> Iterator[Transcript | Failure]:
    rate = model.feature_config.sample_rate
    pieces = []
    for index, (_, samples) in enumerate(group):
        if isinstance(samples, np.ndarray):
            pieces += [_Piece(index, s, _features(model, samples[s:e])) for s, e in split_at_pauses(samples, rate)]
    segments: dict[int, list[Segment]] = {i: [] for i in range(len(group))}
    for batch in _batches(pieces):
        hyps = _decode(model, [p.features for p in batch], options)
        for piece, hyp in zip(batch, hyps):
            segments[piece.index].append(_segment(model, piece, hyp))
        if on_audio_seconds:
            on_audio_seconds(sum(len(p.features) for p in batch) * model.feature_config.frame_shift_ms / 1000)
    for index, (name, samples) in enumerate(group):
        if isinstance(samples, SpeechCLIError):
            yield Failure(name, samples)
        else:
            yield Transcript(name, len(samples) / rate, sorted(segments[index], key=lambda s: s.start))


def _features(model: LoadedModel, samples: np.ndarray) -> torch.Tensor:
    return normalize_features(log_mel(samples, model.feature_config), model.mean, model.std, model.feature_config)


def _batches(pieces: list[_Piece]) -> Iterator[list[_Piece]]:
    """Length-sorted batches of at most BATCH_FRAMES padded frames."""
    batch: list[_Piece] = []
    for piece in sorted(pieces, key=lambda p: len(p.features)):
        if batch and len(piece.features) * (len(batch) + 1) > BATCH_FRAMES:
            yield batch
            batch = []
        batch.append(piece)
    if batch:
        yield batch


def _decode(model: LoadedModel, features: list[torch.Tensor], options: DecodingOptions) -> list[Hypothesis]:
    device = next(model.model.parameters()).device
    lengths = torch.tensor([len(f) for f in features])
    padded = torch.nn.utils.rnn.pad_sequence(features, batch_first=True).to(device)
    return decode_batch(model.model, padded, lengths.to(device), options)


def _segment(model: LoadedModel, piece: _Piece, hyp: Hypothesis) -> Segment:
    frame_s = model.feature_config.frame_shift_ms / 1000 * SUBSAMPLING
    offset = piece.start / model.feature_config.sample_rate
    duration = len(piece.features) * model.feature_config.frame_shift_ms / 1000
    attention = np.stack(hyp.attention) if hyp.attention else None
    words = _words(model, hyp, attention, offset, frame_s, duration)
    text = model.vocab.decode(hyp.tokens)
    confidence = math.exp(float(np.mean(hyp.token_log_probs))) if hyp.token_log_probs else 1.0
    return Segment(offset, offset + duration, text, words, attention, confidence)


def _words(model: LoadedModel, hyp: Hypothesis, attention, offset: float, frame_s: float, duration: float) -> list[Word]:
    """Words with times from each character's attention peak and confidence from its probability."""
    space = model.vocab.encode(" ")[0]
    words, current = [], []
    for position, token in enumerate(hyp.tokens + [space]):
        if token != space:
            current.append(position)
            continue
        if current:
            peaks = [int(np.argmax(attention[p])) for p in current] if attention is not None else [0]
            start = offset + min(peaks) * frame_s
            end = offset + min(duration, (max(peaks) + 1) * frame_s)
            log_probs = [hyp.token_log_probs[p] for p in current]
            text = model.vocab.decode([hyp.tokens[p] for p in current])
            words.append(Word(text, round(start, 3), round(max(end, start + frame_s), 3), round(math.exp(min(log_probs)), 4)))
        current = []
    return words
