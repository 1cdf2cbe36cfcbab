"""Accuracy: WER and CER of speechcli and pocketsphinx on the same dev sets.

Both systems' outputs and the references go through the same normaliser
(``speechcli.text.normalize_text``: lower case, numbers spelled out, punctuation dropped) and the
same scorer (``speechcli.metrics.ErrorRate``, corpus-level rates). pocketsphinx 5 runs with its
bundled US English acoustic model, 3-gram LM and dictionary, unmodified.

    python bench/accuracy.py --sets synth,cv --limit 100
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (DEV_SETS, add_common_args, load_set, load_speechcli, machine, number_list,  # noqa: E402
                    pocketsphinx_decoder, pocketsphinx_transcribe, print_table, setup_threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, threads=2)
    parser.add_argument("--sets", default=",".join(DEV_SETS), help=f"comma-separated dev sets or manifest paths "
                                                                   f"(default {','.join(DEV_SETS)})")
    parser.add_argument("--beam", type=int, help="speechcli beam size (default: the model's own, as the CLI)")
    parser.add_argument("--speeds", help="speechcli playback speeds, comma-separated (default: the model's own)")
    parser.add_argument("--no-pocketsphinx", action="store_true", help="score speechcli only")
    parser.add_argument("--show", type=int, default=0, help="print the first N hypotheses of each set to stderr")
    parser.add_argument("--int8", action="store_true", help="speechcli with int8 dynamic quantisation (speechcli.quantize)")
    args = parser.parse_args()
    setup_threads(args.threads)

    from speechcli.metrics import ErrorRate
    from speechcli.text import normalize_text
    from speechcli.transcription import transcribe_many

    model = load_speechcli(args.model, int8=args.int8)
    decoder = None if args.no_pocketsphinx else pocketsphinx_decoder()
    speeds = tuple(number_list(args.speeds, float)) if args.speeds else None
    options = model.decoding_options(args.beam, speeds=speeds)  # the model's own CTC and LM weights, as the CLI
    ours = (f"speechcli{' int8' if args.int8 else ''} (beam {options.beam_size}, "
            f"speeds {','.join(f'{s:g}' for s in options.speeds)})")
    rows = []
    for name in args.sets.split(","):
        clips = load_set(name, args.dev_dir, args.limit)
        refs = [normalize_text(u.text) for u, _ in clips]
        audio = sum(len(s) for _, s in clips) / 16000
        systems = {}
        started = time.perf_counter()
        systems[ours] = [
            normalize_text(t.text) for t in transcribe_many(model, [(u.id, s) for u, s in clips], options)]
        seconds = {ours: time.perf_counter() - started}
        if decoder is not None:
            started = time.perf_counter()
            systems["pocketsphinx 5"] = [normalize_text(pocketsphinx_transcribe(decoder, s)) for _, s in clips]
            seconds["pocketsphinx 5"] = time.perf_counter() - started
        for system, hyps in systems.items():
            rate = ErrorRate()
            for ref, hyp in zip(refs, hyps):
                rate.add(ref, hyp)
            rows.append([name, len(clips), f"{audio / 60:.1f}", system, f"{100 * rate.wer:.1f}", f"{100 * rate.cer:.1f}",
                         f"{audio / seconds[system]:.1f}"])
            for ref, hyp in list(zip(refs, hyps))[: args.show]:
                print(f"[{name} {system}]\n  REF {ref}\n  HYP {hyp}", file=sys.stderr)

    print(f"accuracy: normalize_text on references and both systems' outputs; torch threads {args.threads}"
          + (f"; first {args.limit} clips per set" if args.limit else ""))
    print(f"model: {model.path}")
    print(f"machine: {machine()}")
    print_table(["set", "clips", "audio min", "system", "WER %", "CER %", "x real time"], rows)


if __name__ == "__main__":
    main()
