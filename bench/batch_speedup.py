"""Batched decoding across files vs one file at a time, in the same process, same transcripts.

Makes ``--files`` short clips (espeak-ng phrases of 2-8 words, 16 kHz WAV) in a temp dir, loads
the model once, then times `transcribe_many` over all files at once (pieces batched across files,
sorted by length) against calling it once per file. Prints the speed-up and whether every
transcript is identical.

Usage: python bench/batch_speedup.py --model runs/english/last.pt --threads 1
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, number_list, setup_threads  # noqa: E402
from long_audio import RATE, SENTENCES  # noqa: E402


def make_clips(directory: Path, count: int, seed: int = 0) -> list[Path]:
    import numpy as np
    import soundfile

    from speechcli.audio import resample

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = directory / f"clip{i:03d}.wav"
        paths.append(path)
        if path.exists():
            continue
        words = SENTENCES[rng.integers(len(SENTENCES))].split()
        length = int(rng.integers(2, min(8, len(words)) + 1))
        first = int(rng.integers(0, len(words) - length + 1))
        with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(int(rng.integers(140, 180))), "-w", tmp.name,
                            " ".join(words[first : first + length])], check=True)
            samples, rate = soundfile.read(tmp.name, dtype="float32")
        soundfile.write(path, resample(samples, rate, RATE), RATE, subtype="PCM_16")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--beam-sizes", default="1,4", help="comma-separated beam widths to compare")
    parser.add_argument("--beam-files", type=int, default=50, help="files used for beam widths above 1 (slow)")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "speechcli-batch-clips")
    args = parser.parse_args()
    setup_threads(args.threads)
    from speechcli.checkpoint import load_model
    from speechcli.decoding import DecodingOptions
    from speechcli.transcription import transcribe_many

    args.work_dir.mkdir(parents=True, exist_ok=True)
    clips = make_clips(args.work_dir, args.files)
    loaded = load_model(args.model, "cpu")
    import soundfile

    audio_s = sum(soundfile.info(str(p)).duration for p in clips)
    print(f"machine: {machine()}; threads {args.threads}; model {args.model}")
    print(f"{len(clips)} clips, {audio_s:.0f} s of audio (mean {audio_s / len(clips):.1f} s)")
    list(transcribe_many(loaded, clips[:4], DecodingOptions(beam_size=1)))  # warm-up
    for beam in number_list(args.beam_sizes, int):
        files = clips if beam == 1 else clips[: args.beam_files]
        options = DecodingOptions(beam_size=beam)
        started = time.perf_counter()
        batched = [r.text for r in transcribe_many(loaded, files, options)]
        batched_s = time.perf_counter() - started
        started = time.perf_counter()
        single = [next(transcribe_many(loaded, [f], options)).text for f in files]
        single_s = time.perf_counter() - started
        same = sum(a == b for a, b in zip(batched, single))
        print(f"beam {beam}, {len(files)} files: batched {batched_s:.1f} s, one at a time {single_s:.1f} s, "
              f"speed-up {single_s / batched_s:.2f}x, identical transcripts {same}/{len(files)}")


if __name__ == "__main__":
    main()
