"""Where a training step's time goes on a CUDA GPU: encoder alone, and the whole step (encoder, CTC,
teacher-forced attention decoder, backward), for the encoder's per-direction unpacked LSTM (the CPU's
fast path) against one packed cuDNN call. Random features and targets shaped like a 200,000-frame batch.

    python bench/gpu_step.py [--utterances 200 --frames 1000 --chars 120]
"""

from __future__ import annotations

import argparse
import time

import torch

from speechcli.checkpoint import load_model
from speechcli.model import Encoder


def timed(fn, repeats: int) -> float:
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=200)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--chars", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device("cuda")
    model = load_model(None, device).model.float().train()
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(args.utterances, args.frames, 80, generator=gen).to(device)
    lengths = torch.randint(args.frames // 2, args.frames + 1, (args.utterances,), generator=gen).to(device)
    targets = torch.randint(2, 29, (args.utterances, args.chars), generator=gen).to(device)
    target_lengths = torch.full((args.utterances,), args.chars, device=device)
    unpacked = Encoder._bidirectional_lstm
    seconds = args.utterances * args.frames / 100
    print(f"{args.utterances} utterances x {args.frames} frames ({seconds:.0f} s of audio), {args.chars} chars")
    for name, lstm in (("unpacked", unpacked), ("packed", Encoder._packed_lstm)):
        Encoder._bidirectional_lstm = lstm
        with torch.no_grad():
            reference = model.encoder(features, lengths)[0]

        def encoder_step():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                states, _ = model.encoder(features, lengths)
            states.float().sum().backward()

        def full_step():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = model(features, lengths, targets, target_lengths)["loss"]
            loss.backward()

        encoder_ms, full_ms = timed(encoder_step, args.repeats), timed(full_step, args.repeats)
        print(f"{name:9s} encoder fwd+bwd {encoder_ms:7.1f} ms   full step {full_ms:7.1f} ms   "
              f"{seconds / full_ms * 1000:6.0f} audio-s/s   encoder out sum {reference.sum().item():.4f}")
    Encoder._bidirectional_lstm = unpacked


if __name__ == "__main__":
    main()
