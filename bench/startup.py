"""Start-up: wall time of `speechcli --help` and of a one-file `speechcli transcribe`, as a user sees them.

Each command runs as a fresh process ``--runs`` times; the table gives the median and the
fastest run. The transcribe row includes interpreter start, imports, model load, audio
decoding, features and search. ``python -c "import torch"`` is timed too: it is the floor
every command that touches the model pays.

    python bench/startup.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEV_DIR, add_common_args, machine, manifest_path, print_table, setup_threads  # noqa: E402


def speechcli_command() -> list[str]:
    """The `speechcli` console script beside this interpreter, else on PATH, else `python -m speechcli`."""
    beside = Path(sys.executable).with_name("speechcli")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("speechcli")
    return [found] if found else [sys.executable, "-m", "speechcli"]


def clip_near(seconds: float, dev_dir: Path) -> Path:
    """The dev_synth clip whose length is closest to ``seconds``."""
    import soundfile

    from speechcli.corpus import read_corpus

    utterances = read_corpus(manifest_path("synth", dev_dir))
    return min((u.audio_path for u in utterances), key=lambda p: abs(soundfile.info(str(p)).duration - seconds))


def time_runs(command: list[str], runs: int, env: dict) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            sys.exit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.decode()[-500:]}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, threads=2)
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (default 5)")
    parser.add_argument("--audio", type=Path, default=None, help="clip to transcribe (default: the ~5 s dev_synth clip)")
    parser.add_argument("--beam", type=int, help="beam size for the transcribe run (default: the model's own, as the CLI)")
    args = parser.parse_args()
    setup_threads(args.threads)

    audio = args.audio or clip_near(5.0, args.dev_dir or DEV_DIR)
    import soundfile

    seconds = soundfile.info(str(audio)).duration
    env = dict(os.environ)  # the thread settings from setup_threads reach the children
    speechcli = speechcli_command()
    transcribe = speechcli + ["transcribe", str(audio), "--threads", str(args.threads)]
    if args.beam is not None:
        transcribe += ["--beam-size", str(args.beam)]
    if args.model:
        transcribe += ["--model", args.model]
    commands = [
        ("speechcli --help", speechcli + ["--help"]),
        ('python -c "import torch"', [sys.executable, "-c", "import torch"]),
        (f"speechcli transcribe ({seconds:.1f} s clip, beam {args.beam or 'of the model'})", transcribe),
    ]
    rows = []
    for label, command in commands:
        times = time_runs(command, args.runs, env)
        rows.append([label, f"{sorted(times)[len(times) // 2]:.3f}", f"{min(times):.3f}"])

    print(f"start-up: {args.runs} runs each, fresh processes; threads {args.threads}")
    print(f"clip: {audio}")
    print(f"machine: {machine()}")
    print_table(["command", "median s", "min s"], rows)


if __name__ == "__main__":
    main()
