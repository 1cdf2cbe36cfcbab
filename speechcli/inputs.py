"""What to transcribe: command-line inputs expanded into sources, and sources read as a stream.

`expand_inputs` turns files, directories (searched recursively for audio), ``--files-from``
lists and ``-`` (audio bytes on stdin) into an ordered list of `Source`s; a bad input becomes a
`Source` carrying its error, so that callers report it in place and carry on.

`open_stream` reads a source block by block as 16 kHz mono float32, so an hour-long file never
sits in memory whole. Resampling is done on overlapping blocks and matches resampling the whole
file at once.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import soundfile

from .audio import (MIN_DURATION_S, SAMPLE_RATE, check_audio_path, first_line, open_error_reason, read_float32, resample,
                    riff_chunks)
from .errors import AudioError, SpeechCLIError

AUDIO_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
                              ".au", ".snd", ".caf", ".w64", ".rf64"})
STDIN = "-"
BLOCK_S = 30.0  # seconds of audio resampled at a time
READ_S = 1.0  # seconds read per call: a file corrupt mid-way keeps all but this much of what precedes the damage


@dataclass
class Source:
    """One thing to transcribe: a file, in-memory bytes (stdin), or an input that already failed."""

    name: str  # how the source is named in messages and results
    path: Path | None = None
    data: bytes | None = None
    relative: Path | None = None  # path below the directory argument it was found in
    error: SpeechCLIError | None = None


def read_list(stream: BinaryIO | io.TextIOBase) -> list[str]:
    """Paths from a ``--files-from`` list: one per line, or NUL-separated (``find -print0``).

    Blank lines are skipped; spaces inside and around a path are kept (they may be part of it).
    """
    raw = stream.read()
    text = raw.decode("utf-8", errors="surrogateescape") if isinstance(raw, bytes) else raw
    parts = text.split("\0") if "\0" in text else text.splitlines()
    return [p for p in parts if p.strip()]


def expand_inputs(arguments: list[str], stdin: BinaryIO | None = None) -> list[Source]:
    """Files, directories and ``-`` → sources, in order, without duplicates.

    Directories are searched recursively for files with an audio extension (hidden files and
    folders are skipped) in sorted order; one with none becomes a failed source. ``-`` reads
    all of ``stdin`` as one audio file.
    """
    sources: list[Source] = []
    seen: set[Path] = set()
    for argument in arguments:
        if argument == STDIN:
            data = stdin.read() if stdin is not None else b""
            sources.append(Source("<stdin>", data=data))
            continue
        path = Path(argument)
        if path.is_dir():
            found = sorted(_audio_files(path))
            if not found:
                sources.append(Source(argument, path=path, error=AudioError(
                    f"{argument}: no audio files in this directory (looked for {', '.join(sorted(AUDIO_EXTENSIONS))})")))
            for file in found:
                key = file.resolve()
                if key not in seen:
                    seen.add(key)
                    sources.append(Source(str(file), path=file, relative=file.relative_to(path)))
            continue
        key = path.resolve() if path.exists() else path
        if key in seen:
            continue
        seen.add(key)
        error = None if path.exists() else AudioError(f"{argument}: no such file")
        sources.append(Source(argument, path=path, error=error))
    return sources


def _audio_files(directory: Path) -> Iterator[Path]:
    for child in directory.iterdir():
        if child.name.startswith("."):
            continue
        if child.is_dir():
            yield from _audio_files(child)
        elif child.suffix.lower() in AUDIO_EXTENSIONS and child.is_file():
            yield child


@dataclass
class AudioStream:
    """An open source: its duration (if the header knows it) and an iterator of sample blocks."""

    name: str
    duration: float | None
    blocks: Iterator[np.ndarray]
    warnings: list[str] = field(default_factory=list)  # e.g. truncation, filled in while reading


def open_stream(source: Source, sample_rate: int = SAMPLE_RATE, block_s: float = READ_S) -> AudioStream:
    """Open a source for block-wise reading as float32 mono at ``sample_rate``.

    Raises
    ------
    AudioError
        When the source is missing, empty, not audio or shorter than 0.1 s. A file that breaks
        off mid-way (truncated) is read up to the break, with a warning in ``warnings``; if
        nothing at all can be read it is an error.
    """
    name = source.name
    if source.error is not None:
        raise source.error
    if source.data is not None:
        if not source.data:
            raise AudioError(f"{name}: no audio data (0 bytes)")
        handle = io.BytesIO(source.data)
    else:
        path = source.path
        check_audio_path(path, name)
        handle = str(path)
    try:
        sound = soundfile.SoundFile(handle)
    except Exception as error:  # libsndfile reports bad data as several exception types
        reason = open_error_reason(error, handle)
        raise AudioError(f"{name}: not a readable audio file ({reason})") from None
    file_rate = sound.samplerate
    declared = sound.frames if 0 < sound.frames < 2**62 else None
    duration = declared / file_rate if declared else None
    if declared is not None and duration < MIN_DURATION_S:
        sound.close()
        raise AudioError(f"{name}: audio is too short ({duration:.3f} s; at least {MIN_DURATION_S} s needed)")
    stream = AudioStream(name, duration, iter(()))
    if source.path is not None and sound.format == "WAV":
        stream.warnings += _wav_truncation(source.path, sound)
    raw = _raw_blocks(sound, int(block_s * file_rate), declared, stream)
    first = next(raw, None)  # read the first block now, so that unreadable data fails here
    if first is None:
        reason = stream.warnings[0].split(";")[0] if stream.warnings else "it holds no samples"
        raise AudioError(f"{name}: no readable audio ({reason})")
    if len(first) < MIN_DURATION_S * file_rate:  # a first block this short is all there is
        raise AudioError(f"{name}: audio is too short ({len(first) / file_rate:.3f} s; at least {MIN_DURATION_S} s needed)")
    stream.blocks = _resampled(_chain(first, raw), file_rate, sample_rate)
    return stream


def _raw_blocks(sound: soundfile.SoundFile, size: int, declared: int | None, stream: AudioStream) -> Iterator[np.ndarray]:
    """Mono float32 blocks of the file's own rate; a read error mid-way ends the stream with a warning."""
    got = 0
    with sound:
        while True:
            try:
                block = read_float32(sound, size)
            except Exception as error:
                stream.warnings.append(f"truncated or corrupt after {got / sound.samplerate:.2f} s ({first_line(error)}); "
                                       "transcribed the readable part")
                return
            if not len(block):
                break
            mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
            if not np.isfinite(mono).all():
                mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
                if not any("invalid" in w for w in stream.warnings):
                    stream.warnings.append("contains invalid (NaN or infinite) samples; they were replaced by silence")
            got += len(mono)
            yield np.ascontiguousarray(mono, dtype=np.float32)
            if len(block) < size:
                break
    if declared is not None and got < declared:
        stream.warnings.append(f"truncated: the header promises {declared / sound.samplerate:.2f} s, "
                               f"only {got / sound.samplerate:.2f} s could be read; transcribed the readable part")


def _wav_truncation(path: Path, sound: soundfile.SoundFile) -> list[str]:
    """libsndfile quietly reads a cut-off WAV as a shorter one; its data chunk header still tells."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    for chunk, start, size in riff_chunks(head):
        if chunk == b"data":
            available = path.stat().st_size - start
            if size != 0xFFFFFFFF and available < size:
                readable = sound.frames / sound.samplerate
                promised = readable * size / max(available, 1)
                return [f"truncated: the header promises {promised:.2f} s, only {readable:.2f} s "
                        "are in the file; transcribed the readable part"]
            return []
    return []


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def _resampled(blocks: Iterator[np.ndarray], from_rate: int, to_rate: int) -> Iterator[np.ndarray]:
    """Resample a stream of blocks; the output equals resampling the concatenation at once.

    Each window carries ``context`` input samples on both sides (longer than the filter) and
    starts at a multiple of the rate ratio's period, so every output sample sees exactly the
    input it would see in one whole-file resampling.
    """
    if from_rate == to_rate:
        yield from blocks
        return
    divisor = math.gcd(from_rate, to_rate)
    period_in, period_out = from_rate // divisor, to_rate // divisor
    context = period_in * math.ceil(512 / period_in)
    step = period_in * math.ceil(int(BLOCK_S * from_rate) / period_in)
    pending = np.zeros(0, dtype=np.float32)  # input from `start - context` (or 0) on
    start = 0  # input position of the next output sample to produce (multiple of period_in)
    left = 0  # context samples held before `start` in `pending`
    for block in blocks:
        pending = np.concatenate([pending, block])
        while len(pending) - left >= step + context:
            window = pending[: left + step + context]
            out = resample(window, from_rate, to_rate)
            first = left * period_out // period_in
            yield out[first : first + step * period_out // period_in]
            start += step
            cut = left + step - context
            pending = pending[cut:]
            left = context
    if len(pending) > left:
        out = resample(pending, from_rate, to_rate)
        yield out[left * period_out // period_in :]

