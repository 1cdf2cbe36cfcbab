"""Test-time views: decode every clip of a dev set from changed copies of its audio, then score picks.

A view is a playback speed (``s0.95``: resampled, tempo and pitch together), a vocal-tract-length
warp of the mel filterbank (``w1.12``) or both (``s0.9w1.12``). Each clip is decoded whole with the
model's own beam settings once per view; the table gives the WER of each view alone, of picking per
clip the view whose transcript has the best joint beam score (what ``--speeds`` does with
``--view-temperature 0``), of the transcript the picked views agree on best at each ``--temperatures``
T (each view's transcript scored on every view, ranked by the soft maximum of those scores plus its LM
score, among the four best-scoring transcripts: what ``--view-temperature T`` does), and of the oracle
pick (the view with the fewest word errors). This is how the default speeds (models/README.md, twelfth
stretch) and view temperature (thirtieth stretch) were chosen.

    python bench/decode_views.py --set kathleen --views 1,s0.95,s0.85,w1.12 --picks "1,s0.95,s0.85" --temperatures 2,3
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


def decode_and_cross_score(model, features, options):
    """Each view's hypothesis; the score of each view's transcript on every view (views × views: row = whose
    transcript, column = scored on); and each transcript's LM part (its search score beyond its acoustic score)."""
    import numpy as np
    import torch

    from speechcli.decoding import decode_encoded, transcript_scores

    seq2seq = model.model
    with torch.inference_mode():
        lengths = torch.tensor([len(f) for f in features])
        states, enc_lengths, mask = seq2seq.encode(torch.nn.utils.rnn.pad_sequence(features, batch_first=True), lengths)
        hyps, ctc = decode_encoded(seq2seq, states, enc_lengths, mask, options, model.lm, model.word_lm)
        weight = options.ctc_weight if options.beam_size > 1 else 0.0
        n = len(hyps)
        pairs = [(on, hyps[whose].tokens) for whose in range(n) for on in range(n)]
        table = transcript_scores(seq2seq, states, enc_lengths, ctc, pairs, weight).reshape(n, n)
    return hyps, table, np.array([h.score for h in hyps]) - np.diag(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, threads=2)
    parser.add_argument("--set", default="kathleen", help="dev set name or manifest path (default kathleen)")
    parser.add_argument("--views", default="1,s0.95,s0.85", help="comma-separated views to decode (first: the reference)")
    parser.add_argument("--picks", action="append", default=[],
                        help="a comma-separated subset of --views to pick from by score (repeatable; default: all)")
    parser.add_argument("--temperatures", default="", help="comma-separated view temperatures for the agreement rows")
    args = parser.parse_args()
    setup_threads(args.threads)

    import numpy as np

    from speechcli.decoding import soft_maximum
    from speechcli.metrics import word_errors
    from speechcli.text import normalize_text
    from speechcli.transcription import competing_views

    names = args.views.split(",")
    views = [parse_view(name) for name in names]
    model = load_speechcli(args.model)
    options = model.decoding_options(speeds=(1.0,))
    clips = load_set(args.set, args.dev_dir, args.limit)
    started = time.perf_counter()
    results = []  # per clip: (reference, [(text, score) per view], transcripts on every view, their LM parts)
    for utterance, samples in clips:
        hyps, table, lm_parts = decode_and_cross_score(model, [view_features(model, samples, *view) for view in views], options)
        results.append((normalize_text(utterance.text), [(model.vocab.decode(h.tokens), h.score) for h in hyps],
                        table, lm_parts))
    seconds = time.perf_counter() - started

    def agreed(decoded, table, lm_parts, chosen, temperature) -> int:
        """The view among ``chosen`` whose transcript the ``chosen`` views agree on best; as in transcription, only
        the best few transcripts by their own views' scores compete (``competing_views``)."""
        competing = competing_views([text for text, _ in decoded], [score for _, score in decoded], chosen)
        soft = soft_maximum(table[competing][:, chosen], temperature) + lm_parts[competing]
        return competing[int(np.argmax(soft))]

    def wer(choose) -> str:
        errors = words = 0
        for reference, decoded, *_ in results:
            e, n = word_errors(reference, decoded[choose(reference, decoded)][0])
            errors, words = errors + e, words + n
        return f"{100 * errors / max(1, words):.1f}"

    rows = [[f"{name} alone", wer(lambda r, d, i=i: i)] for i, name in enumerate(names)]
    temperatures = [float(t) for t in args.temperatures.split(",") if t]
    for pick in args.picks or [args.views]:
        chosen = [names.index(name) for name in pick.split(",")]
        rows.append([f"best score of {pick}", wer(lambda r, d: max(chosen, key=lambda i: d[i][1]))])
        for t in temperatures:
            by_clip = {id(d): agreed(d, table, lm_parts, chosen, t) for _, d, table, lm_parts in results}
            rows.append([f"agreement of {pick}, T {t:g}", wer(lambda r, d: by_clip[id(d)])])
    rows.append(["oracle of all views", wer(lambda r, d: min(range(len(d)), key=lambda i: word_errors(r, d[i][0])[0]))])
    print(f"views: {len(clips)} clips of {args.set}, {len(views)} views, beam {options.beam_size}, "
          f"{seconds:.0f} s; model {model.path}; torch threads {args.threads}")
    print_table(["decoding", "WER %"], rows)


if __name__ == "__main__":
    main()
