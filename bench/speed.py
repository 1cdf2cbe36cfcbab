"""Transcription speed: speechcli batched, speechcli one file at a time, and pocketsphinx, on the same clips.

All three systems get the same 16 kHz samples already in memory, so the figures cover feature
extraction, the acoustic model and the search, not file decoding or model loading (see
startup.py for those). Times are wall clock and process CPU time; "× real time" is audio
seconds per wall second, RTF is its inverse. Threads are fixed (``--threads``) and printed.

    python bench/speed.py --limit 100 --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (add_common_args, load_set, load_speechcli, machine, number_list, pocketsphinx_decoder,  # noqa: E402
                    pocketsphinx_transcribe, print_table, setup_threads)


def timed(run) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, threads=2, limit=100)
    parser.add_argument("--set", default="synth", help="dev set name or manifest path (default synth)")
    parser.add_argument("--beams", help="comma-separated beam sizes to time (default: 1 and the model's own)")
    parser.add_argument("--speed-sets", help="playback speeds to time, sets separated by ';', speeds by ',' "
                                             "(default: 1 and the model's own, e.g. '1;1,0.95,0.85')")
    parser.add_argument("--no-pocketsphinx", action="store_true", help="skip the pocketsphinx row")
    parser.add_argument("--no-single", action="store_true", help="skip speechcli one-at-a-time rows")
    parser.add_argument("--int8", action="store_true", help="speechcli with int8 dynamic quantisation (speechcli.quantize)")
    parser.add_argument("--view-temperature", type=float, help="speechcli's --view-temperature (default: the model's own; "
                        "0 keeps the best single view's transcript)")
    parser.add_argument("--no-trimmed-view", action="store_true", help="speechcli without the trimmed view "
                        "(--no-trimmed-view on the command line)")
    args = parser.parse_args()
    setup_threads(args.threads)

    from speechcli.decoding import DecodingOptions
    from speechcli.transcription import transcribe, transcribe_many

    model = load_speechcli(args.model, int8=args.int8)
    clips = load_set(args.set, args.dev_dir, args.limit)
    sources = [(u.id, samples) for u, samples in clips]
    audio = sum(len(s) for _, s in sources) / 16000
    list(transcribe_many(model, sources[:2], DecodingOptions(beam_size=2)))  # warm-up: first-call allocations

    results: list[tuple[str, float, float]] = []  # (system, wall s, cpu s)

    def add(system: str, wall: float, cpu: float) -> None:
        results.append((system, wall, cpu))

    name = "speechcli int8" if args.int8 else "speechcli"
    beams = number_list(args.beams, int) if args.beams else [1, model.decoding_options().beam_size]
    speed_sets = ([tuple(number_list(part, float)) for part in args.speed_sets.split(";")] if args.speed_sets
                  else list(dict.fromkeys([(1.0,), model.decoding_options().speeds])))
    for beam in beams:
        for speeds in speed_sets:
            # the model's own CTC and LM weights, as the CLI
            options = model.decoding_options(beam, speeds=speeds, trimmed_view=False if args.no_trimmed_view else None,
                                             view_temperature=args.view_temperature)
            label = f"beam {beam}, speeds {','.join(f'{s:g}' for s in speeds)}, view temperature {options.view_temperature:g}"
            label += ", no trimmed view" if args.no_trimmed_view else ""
            add(f"{name} batched, {label}", *timed(lambda: list(transcribe_many(model, sources, options))))
            if not args.no_single:
                add(f"{name} one at a time, {label}", *timed(lambda: [transcribe(model, s, options) for s in sources]))
    if not args.no_pocketsphinx:
        decoder = pocketsphinx_decoder()
        pocketsphinx_transcribe(decoder, sources[0][1])  # warm-up
        add("pocketsphinx 5 (en-us, 1 thread)", *timed(lambda: [pocketsphinx_transcribe(decoder, s) for _, s in sources]))

    print(f"speed: {len(sources)} clips of {args.set}, {audio:.1f} s of audio; torch threads {args.threads}")
    print(f"model: {model.path}")
    print(f"machine: {machine()}")
    ps_wall = results[-1][1] if not args.no_pocketsphinx else None
    ps_cpu = results[-1][2] if not args.no_pocketsphinx else None
    rows = [[system, f"{wall:.2f}", f"{cpu:.2f}", f"{wall / audio:.4f}", f"{audio / wall:.1f}", f"{audio / cpu:.1f}",
             f"{ps_wall / wall:.1f}" if ps_wall else "-", f"{ps_cpu / cpu:.1f}" if ps_cpu else "-"]
            for system, wall, cpu in results]
    print_table(["system", "wall s", "cpu s", "RTF", "x real time", "(by cpu)", "x pocketsphinx", "(by cpu)"], rows)
    print("RTF = wall time / audio time; 'by cpu' uses process CPU time instead of wall (robust on a busy machine)")


if __name__ == "__main__":
    main()
