"""WER/CER of one model under several decoding settings, on random clips of feature caches.

    python bench/decode_sweep.py runs/english/last.pt --caches work/english/cache/dev_cv,work/english/cache/dev_kathleen

Features come from the caches (normalised with the model's own statistics), so each setting
costs decoding only: greedy, then every --beams × --ctc-weights × --lm-weights × --word-lm-weights
× --length-bonuses × --candidates (the OOV penalty is the model's own).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import number_list  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--caches", required=True, help="comma-separated feature cache directories")
    parser.add_argument("--clips", type=int, default=80, help="random clips per cache (seed 0)")
    parser.add_argument("--beams", default="4", help="comma-separated beam sizes (greedy is always included)")
    parser.add_argument("--ctc-weights", default="0.3,0.5")
    parser.add_argument("--lm-weights", default="0,0.3,0.5")
    parser.add_argument("--word-lm-weights", default="0,0.3", help="comma-separated weights of the word LM")
    parser.add_argument("--length-bonuses", default="0", help="comma-separated bonuses per output character")
    parser.add_argument("--candidates", default="6", help="comma-separated characters per hypothesis that the beam scores")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from speechcli.checkpoint import load_model
    from speechcli.data import FeatureCache
    from speechcli.decoding import DecodingOptions
    from speechcli.train import error_counts

    torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    oov_penalty = loaded.decoding_options().oov_penalty
    settings = [("greedy", DecodingOptions(beam_size=1))] + [
        (f"beam {b}, ctc {c:g}, lm {lm:g}" + (f", bonus {bonus:g}" if bonus else "")
         + (f", words {w:g}" if w else "") + (f", cand {k}" if k != DecodingOptions.candidates_per_beam else ""),
         DecodingOptions(beam_size=b, ctc_weight=c, lm_weight=lm, word_lm_weight=w, oov_penalty=oov_penalty,
                         length_bonus=bonus, candidates_per_beam=k))
        for b in number_list(args.beams, int) for c in number_list(args.ctc_weights)
        for lm in number_list(args.lm_weights) for w in number_list(args.word_lm_weights)
        for bonus in number_list(args.length_bonuses)
        for k in number_list(args.candidates, int)]
    print(f"model {args.model}, {args.threads} thread(s), {args.clips} random clips per cache")
    print(f"{'cache':24s} {'decoding':32s} {'WER %':>7s} {'CER %':>7s} {'s':>5s}  (s: wall, decoding only)")
    for path in args.caches.split(","):
        cache = FeatureCache(Path(path))
        entries = random.Random(0).sample(cache.entries, min(args.clips, len(cache.entries)))
        for label, options in settings:
            started = time.perf_counter()
            errors = error_counts(loaded.model, cache, entries, loaded.vocab, torch.device("cpu"), options,
                                  batch_frames=8000, stats=(loaded.mean, loaded.std), lm=loaded.lm, word_lm=loaded.word_lm)
            print(f"{Path(path).name:24s} {label:32s} {100 * errors.wer:7.1f} {100 * errors.cer:7.1f} "
                  f"{time.perf_counter() - started:5.0f}", flush=True)


if __name__ == "__main__":
    main()
