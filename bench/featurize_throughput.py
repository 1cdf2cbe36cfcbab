"""Featurize throughput (audio hours per minute) against a bare torchaudio fbank loop.

The bare loop calls the same ``torchaudio.compliance.kaldi.fbank`` with the same settings over
audio that is already decoded in memory; ``speechcli.featurize`` also reads and decodes the
files, checks transcripts, writes float16 chunks atomically and merges the stats. The ratio
(featurize ÷ bare loop, same thread count, one process) is the overhead figure issue 6 asks
about (≥ 80 %). Uses the first --limit clips of work/english/train.tsv when present, else
synthetic 2–10 s clips.

    .venv/bin/python bench/featurize_throughput.py --limit 200 --threads 1
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=ROOT / "work/english/train.tsv")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="alternate the two measurements this often; best of each")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import numpy as np
    import soundfile
    import torch

    torch.set_num_threads(args.threads)
    from speechcli.audio import FeatureConfig, load_audio, log_mel
    from speechcli.corpus import read_corpus
    from speechcli.featurize import featurize

    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        if args.manifest.is_file():
            utterances = read_corpus(args.manifest)[: args.limit]
        else:
            rng = np.random.default_rng(0)
            corpus = temp / "pairs"
            corpus.mkdir()
            for i in range(args.limit):
                samples = 0.1 * rng.standard_normal(int(16000 * (2 + 8 * rng.random())))
                soundfile.write(corpus / f"u{i:04d}.wav", samples.astype(np.float32), 16000)
                (corpus / f"u{i:04d}.txt").write_text("hello world\n")
            utterances = read_corpus(corpus)
        config = FeatureConfig()
        decoded = [load_audio(u.audio_path, config.sample_rate) for u in utterances]
        hours = sum(len(a) for a in decoded) / config.sample_rate / 3600
        log_mel(decoded[0], config)  # warm up torchaudio

        bare, ours = [], []
        for repeat in range(args.repeats):
            started = time.perf_counter()
            for samples in decoded:
                log_mel(samples, config).numpy()
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            report = featurize(utterances, temp / f"cache{repeat}", config, jobs=1)
            ours.append(time.perf_counter() - started)
            assert report.complete, "featurize did not finish"
    per_minute = lambda seconds: hours / (seconds / 60)  # noqa: E731
    print(f"clips: {len(utterances)} ({hours * 60:.1f} audio minutes) from "
          f"{args.manifest if args.manifest.is_file() else 'synthetic audio'}; threads {args.threads}")
    print(f"bare fbank loop over decoded audio: {per_minute(min(bare)):.2f} audio-h/min")
    print(f"speechcli featurize (read+decode+fbank+write+merge): {per_minute(min(ours)):.2f} audio-h/min")
    print(f"ratio: {min(bare) / min(ours):.0%}")


if __name__ == "__main__":
    main()
