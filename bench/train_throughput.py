"""Training throughput of the default model size, in audio seconds per wall second.

Uses the English feature cache (work/english/cache/train) when present, else a synthetic cache
of 200 random-noise utterances. Steps before --warmup are not timed; batches are drawn
shuffled (not the shortest-first order of the first epoch). Only the train loop is timed
(collate, forward, backward, optimizer), not validation or checkpointing.

    .venv/bin/python bench/train_throughput.py --steps 30 --threads 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import speechcli.train as train_module  # noqa: E402
from speechcli.corpus import read_corpus  # noqa: E402
from speechcli.data import FeatureCache  # noqa: E402
from speechcli.featurize import featurize  # noqa: E402
from speechcli.model import ModelConfig  # noqa: E402
from speechcli.train import TrainConfig, cpu_has_native_bf16, train  # noqa: E402


def synthetic_cache(root: Path) -> Path:
    rng = np.random.default_rng(0)
    corpus = root / "pairs"
    corpus.mkdir(parents=True)
    for i in range(200):
        seconds = 2 + 8 * rng.random()
        soundfile.write(corpus / f"u{i:03d}.wav", (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32), 16000)
        (corpus / f"u{i:03d}.txt").write_text("the quick brown fox jumps over the lazy dog\n")
    featurize(read_corpus(corpus), root / "cache", jobs=2)
    return root / "cache"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=ROOT / "work/english/cache/train")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-frames", type=int, default=TrainConfig.batch_frames)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", help="auto, fp32 or bf16 (auto: bf16 on CUDA and on CPUs with native bf16)")
    parser.add_argument("--encoder-hidden", type=int, default=ModelConfig.encoder_hidden, help="encoder BiLSTM width per direction")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temp:
        cache_dir = args.cache if (args.cache / "manifest.jsonl").is_file() else synthetic_cache(Path(temp))
        cache = FeatureCache(cache_dir)
        marks: list[tuple[float, float, float]] = []  # (wall time, CPU time, audio seconds) at each micro-batch load
        audio = [0.0]
        original = train_module._load

        def timed_load(c, entries, vocab, device):
            marks.append((time.perf_counter(), time.process_time(), audio[0]))
            audio[0] += sum(e.frames for e in entries) * cache.feature_config.frame_shift_ms / 1000
            return original(c, entries, vocab, device)

        train_module._load = timed_load
        # time representative shuffled batches, not epoch 0's shortest-first curriculum
        make_batches = train_module.make_batches
        train_module.make_batches = lambda entries, frames, seed, epoch, sorted_order=False: make_batches(entries, frames, seed, epoch)
        config = TrainConfig(out_dir=Path(temp) / "run", max_steps=args.steps + 1, batch_frames=args.batch_frames,
                             grad_accum=args.grad_accum, threads=args.threads, device=args.device, precision=args.precision, dev_utterances=1,
                             encoder_hidden=args.encoder_hidden,
                             epochs=1000, checkpoint_minutes=1e9)
        started = time.perf_counter()
        summary = train(config, cache)
        # the (steps+1)-th step's load marks the end of the timed steps
        t0, c0, a0 = marks[args.warmup * args.grad_accum]
        t1, c1, a1 = marks[args.steps * args.grad_accum]
        timed = args.steps - args.warmup
    print(f"cache: {cache_dir} ({len(cache.entries)} utterances)")
    print(f"model: encoder {args.encoder_hidden} per direction, {summary['parameters'] / 1e6:.2f} M parameters; device {args.device}, "
          f"threads {torch.get_num_threads()}, precision {args.precision}"
          f"{' (the CPU has native bf16)' if cpu_has_native_bf16() else ''}, batch {args.batch_frames} frames × {args.grad_accum}")
    print(f"timed steps: {timed} (after {args.warmup} warm-up), {a1 - a0:.0f} audio-s in {t1 - t0:.1f} s")
    print(f"throughput: {(a1 - a0) / (t1 - t0):.2f} audio-s/s   ({(t1 - t0) / timed:.2f} s/step)")
    print(f"CPU time: {c1 - c0:.1f} s ({(c1 - c0) / (t1 - t0):.2f} cores busy on average; "
          f"{(a1 - a0) / (c1 - c0):.2f} audio-s per CPU-s): below {torch.get_num_threads()} cores busy means "
          "other processes took the rest")
    print(f"whole run incl. setup and final validation: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
