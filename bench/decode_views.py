"""Test-time views: decode every clip of a dev set from changed copies of its audio, then score picks.

A view is a playback speed (``s0.95``: resampled, tempo and pitch together), a vocal-tract-length
warp of the mel filterbank (``w1.12``) or both (``s0.9w1.12``). Each clip is decoded whole with the
model's own beam settings once per view; the table gives the WER of each view alone, of picking per
clip the view whose transcript has the best joint beam score (what ``--speeds`` does), and of the
oracle pick (the view with the fewest word errors). This is how the default speeds were chosen
(models/README.md, twelfth stretch).

    python bench/decode_views.py --set kathleen --views 1,s0.95,s0.85,w1.12 --picks "1,s0.95,s0.85"
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_common_args, load_set, load_speechcli, print_table, setup_threads  # noqa: E402

VIEW = re.compile(r"^(?:s(?P<speed>[\d.]+))?(?:w(?P<warp>[\d.]+))?$")


def parse_view(text: str) -> tuple[float, float]:
    """'1' → (1, 1); 's0.95' → speed 0.95; 'w1.12' → warp 1.12; 's0.9w1.12' → both."""
    if text == "1":
        return 1.0, 1.0
    match = VIEW.match(text)
    if not match or not text:
        sys.exit(f"bad view {text!r}: expected 1, sSPEED, wWARP or sSPEEDwWARP")
    return float(match["speed"] or 1.0), float(match["warp"] or 1.0)


def view_features(model, samples, speed: float, warp: float):
    from speechcli.audio import log_mel, resample
    from speechcli.data import normalize_features

    config = model.feature_config
    if speed != 1.0:
        samples = resample(samples, round(config.sample_rate * speed), config.sample_rate)
    return normalize_features(log_mel(samples, config, vtln_warp=warp), model.mean, model.std, config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, threads=2)
    parser.add_argument("--set", default="kathleen", help="dev set name or manifest path (default kathleen)")
    parser.add_argument("--views", default="1,s0.95,s0.85", help="comma-separated views to decode (first: the reference)")
    parser.add_argument("--picks", action="append", default=[],
                        help="a comma-separated subset of --views to pick from by score (repeatable; default: all)")
    args = parser.parse_args()
    setup_threads(args.threads)

    from speechcli.metrics import word_errors
    from speechcli.text import normalize_text
    from speechcli.transcription import decode_pieces

    names = args.views.split(",")
    views = [parse_view(name) for name in names]
    model = load_speechcli(args.model)
    options = model.decoding_options(speeds=(1.0,))
    clips = load_set(args.set, args.dev_dir, args.limit)
    started = time.perf_counter()
    results = []  # per clip: (reference, [(text, score) per view])
    for utterance, samples in clips:
        hyps, _ = decode_pieces(model, [view_features(model, samples, *view) for view in views], options)
        results.append((normalize_text(utterance.text), [(model.vocab.decode(h.tokens), h.score) for h in hyps]))
    seconds = time.perf_counter() - started

    def wer(choose) -> str:
        errors = words = 0
        for reference, decoded in results:
            e, n = word_errors(reference, decoded[choose(reference, decoded)][0])
            errors, words = errors + e, words + n
        return f"{100 * errors / max(1, words):.1f}"

    rows = [[f"{name} alone", wer(lambda r, d, i=i: i)] for i, name in enumerate(names)]
    for pick in args.picks or [args.views]:
        chosen = [names.index(name) for name in pick.split(",")]
        rows.append([f"best score of {pick}", wer(lambda r, d: max(chosen, key=lambda i: d[i][1]))])
    rows.append(["oracle of all views", wer(lambda r, d: min(range(len(d)), key=lambda i: word_errors(r, d[i][0])[0]))])
    print(f"views: {len(clips)} clips of {args.set}, {len(views)} views, beam {options.beam_size}, "
          f"{seconds:.0f} s; model {model.path}; torch threads {args.threads}")
    print_table(["decoding", "WER %"], rows)


if __name__ == "__main__":
    main()
