"""WER of `speechcli` on the same sentences recorded in other ways: rates, channels, level, noise, mp3,
digital silence or a quiet room around them, several sentences in one file.

Each condition is written to a temporary file (16-bit WAV unless the condition is mp3 or 8-bit) and read back
through `transcribe_many`, as `speechcli transcribe` reads a file; the transcripts are scored with
the normaliser and scorer of `speechcli evaluate`. The clips are a seeded random sample of each set.

    python bench/robustness.py --sets kathleen,cv_unseen --clips 60 --threads 2
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_common_args, load_set, load_speechcli, print_table, setup_threads  # noqa: E402

RATE = 16_000
GROUP = 4  # sentences per file in the "several sentences" condition
GAP_S = 1.5  # of digital silence between them


def _resampled(x: np.ndarray, rate: int) -> np.ndarray:
    from speechcli.audio import resample

    return resample(x, RATE, rate)


def _noisy(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    power = float(np.mean(x ** 2))
    return x + rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), x.shape).astype(np.float32)


def _one_channel_silent(x: np.ndarray) -> np.ndarray:
    return np.stack([x, np.zeros_like(x)], axis=1)


def _eight_bit(x: np.ndarray) -> np.ndarray:
    """Peak at -12 dBFS with an offset of -0.7 % of full scale, as FSDD's nicolas recorded (written as 8-bit PCM)."""
    return x * (0.25 / (np.abs(x).max() + 1e-9)) - 0.007


def _zeros(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


def _in_quiet_room(x: np.ndarray, rng: np.random.Generator, seconds: float = 1.0, snr_db: float = 35.0) -> np.ndarray:
    """``seconds`` of silence before and after, and a faint noise floor (``snr_db`` below the speech)
    throughout: a clip recorded with pauses around it on an ordinary microphone."""
    padded = np.concatenate([_zeros(seconds), x, _zeros(seconds)])
    noise_power = float(np.mean(x ** 2)) / 10 ** (snr_db / 10)
    return padded + rng.normal(0, np.sqrt(noise_power), padded.shape).astype(np.float32)


# the kinds of file a condition is written as: kind → (suffix and format, soundfile subtype; None: its default)
FILE_KINDS = {"wav": ("wav", None), "mp3": ("mp3", None), "wav8": ("wav", "PCM_U8")}
# name → (samples at 16 kHz → (samples, rate, file kind))
CONDITIONS = {
    "as recorded (16 kHz WAV)": lambda x, rng: (x, RATE, "wav"),
    "44.1 kHz stereo": lambda x, rng: (np.stack([_resampled(x, 44_100)] * 2, axis=1), 44_100, "wav"),
    "48 kHz stereo, one channel silent": lambda x, rng: (_one_channel_silent(_resampled(x, 48_000)), 48_000, "wav"),
    "8 kHz": lambda x, rng: (_resampled(x, 8_000), 8_000, "wav"),
    "mp3 at 48 kHz": lambda x, rng: (_resampled(x, 48_000), 48_000, "mp3"),
    "20 dB quieter": lambda x, rng: (x * 0.1, RATE, "wav"),
    "40 dB quieter (16-bit: quantisation noise)": lambda x, rng: (x * 0.01, RATE, "wav"),
    "8-bit WAV at 8 kHz, offset (as FSDD's nicolas)": lambda x, rng: (_eight_bit(_resampled(x, 8_000)), 8_000, "wav8"),
    "white noise, 20 dB SNR": lambda x, rng: (_noisy(x, 20, rng), RATE, "wav"),
    "white noise, 10 dB SNR": lambda x, rng: (_noisy(x, 10, rng), RATE, "wav"),
    "1 s of digital silence before and after": lambda x, rng: (np.concatenate([_zeros(1), x, _zeros(1)]), RATE, "wav"),
    "1 s of quiet room before and after (noise floor 35 dB below the speech)":
        lambda x, rng: (_in_quiet_room(x, rng), RATE, "wav"),
}


def sample_clips(sets: list[str], clips: int, dev_dir: Path, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """(normalised reference, 16 kHz samples) of ``clips`` random clips (seed 0) of each set (of its first
    ``limit`` clips when given)."""
    from speechcli.text import normalize_text

    chosen = []
    for name in sets:
        loaded = load_set(name, dev_dir, limit)
        random.Random(0).shuffle(loaded)
        chosen += [(normalize_text(u.text), samples) for u, samples in loaded[:clips]]
    return chosen


def score(model, options, files: list[tuple[Path, str]]) -> tuple[float, float]:
    from speechcli.metrics import ErrorRate
    from speechcli.transcription import Failure, transcribe_many

    counts = ErrorRate()
    for (path, reference), result in zip(files, transcribe_many(model, [p for p, _ in files], options)):
        counts.add(reference, "" if isinstance(result, Failure) else result.text)
    return 100 * counts.wer, 100 * counts.cer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, threads=2)
    parser.add_argument("--sets", default="kathleen,cv_unseen",
                        help="dev sets (names or manifests; cv_unseen = work/english/dev_cv_unseen.tsv)")
    parser.add_argument("--clips", type=int, default=60, help="random clips per set (seed 0)")
    parser.add_argument("--only", default="", help="run only the conditions whose name contains this text "
                        "(the as-recorded reference always runs)")
    args = parser.parse_args()
    setup_threads(args.threads)
    import soundfile

    sets = [str(args.dev_dir / "dev_cv_unseen.tsv") if s == "cv_unseen" else s for s in args.sets.split(",")]
    clips = sample_clips(sets, args.clips, args.dev_dir, args.limit)
    model = load_speechcli(args.model)
    options = model.decoding_options()
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        def write(name: str, number: int, made) -> Path:
            samples, rate, kind = made
            suffix, subtype = FILE_KINDS[kind]
            path = Path(tmp) / f"{name}-{number:04d}.{suffix}"
            soundfile.write(path, samples, rate, format=suffix.upper(), subtype=subtype)
            return path

        for number, (condition, make) in enumerate(CONDITIONS.items()):
            if number and args.only not in condition:
                continue
            rng = np.random.default_rng(number)  # the same noise whichever conditions run
            files = [(write(str(number), i, make(x, rng)), ref) for i, (ref, x) in enumerate(clips)]
            rows.append([condition, *score(model, options, files)])
        joined_name = f"{GROUP} sentences per file, {GAP_S} s of digital silence between"
        if args.only in joined_name:
            groups = [clips[i : i + GROUP] for i in range(0, len(clips) - GROUP + 1, GROUP)]
            joined = [(write("joined", i, (np.concatenate([part for _, x in group for part in (x, _zeros(GAP_S))][:-1]),
                                           RATE, "wav")), " ".join(ref for ref, _ in group))
                      for i, group in enumerate(groups)]
            rows.append([joined_name, *score(model, options, joined)])
    reference = rows[0][1]
    table = [[name, f"{wer:.1f}", f"{cer:.1f}", f"{wer - reference:+.1f}"] for name, wer, cer in rows]
    print(f"robustness: {len(clips)} clips of {args.sets}, model {model.path}, beam {options.beam_size}, "
          f"speeds {options.speeds}, torch threads {args.threads}, {time.perf_counter() - started:.0f} s")
    print_table(["condition", "WER %", "CER %", "WER vs as recorded"], table)


if __name__ == "__main__":
    main()
