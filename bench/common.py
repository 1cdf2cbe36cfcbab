"""Shared helpers for the bench scripts: arguments, thread settings, dev sets, pocketsphinx, tables.

Every script sets the thread count *before* importing torch (``setup_threads``), so the figures
are reproducible on a shared machine, and states it in its output.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEV_DIR = REPO / "work" / "english"  # where recipes/english puts the dev manifests
DEV_SETS = {  # short name → manifest (audio paths relative to the manifest)
    "synth": "dev_synth.tsv",  # synthetic held-out books
    "cv": "dev_cv.tsv",  # Common Voice
    "kathleen": "dev_kathleen.tsv",
    "so762": "dev_so762.tsv",
    "fsdd": "dev_fsdd.tsv",  # spoken digits
}


def add_common_args(parser: argparse.ArgumentParser, threads: int = 1, limit: int | None = None) -> None:
    parser.add_argument("--model", default=None, help="checkpoint (default: the shipped models/base.pt)")
    parser.add_argument("--threads", type=int, default=threads, help=f"CPU threads for torch (default {threads})")
    parser.add_argument("--limit", type=int, default=limit, help="use only the first N clips of each set")
    parser.add_argument("--dev-dir", type=Path, default=DEV_DIR, help="directory holding the dev_*.tsv manifests")


def setup_threads(threads: int) -> None:
    """Fix the thread count for torch/OpenMP/MKL; call before ``import torch``."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (torch was used before)
        pass


def manifest_path(name: str, dev_dir: Path = DEV_DIR) -> Path:
    """A dev set short name (``synth``) or a path to any corpus speechcli can read."""
    return Path(dev_dir) / DEV_SETS[name] if name in DEV_SETS else Path(name)


def load_set(name: str, dev_dir: Path = DEV_DIR, limit: int | None = None, sample_rate: int = 16000):
    """Read a dev set and its audio into memory: list of (utterance, samples)."""
    from speechcli.audio import load_audio
    from speechcli.corpus import read_corpus

    utterances = read_corpus(manifest_path(name, dev_dir))
    if limit:
        utterances = utterances[:limit]
    return [(u, load_audio(u.audio_path, sample_rate)) for u in utterances]


def load_speechcli(model: str | None, int8: bool = False):
    """Load a checkpoint for CPU inference, optionally int8-quantised (speechcli.quantize)."""
    from speechcli.checkpoint import load_model

    loaded = load_model(model, "cpu")
    if int8:
        from speechcli.quantize import quantize_int8

        loaded.model = quantize_int8(loaded.model)
    return loaded


def pocketsphinx_decoder():
    """The pocketsphinx 5 decoder with its bundled US English model (acoustic model, LM, dictionary)."""
    try:
        from pocketsphinx import Decoder
    except ImportError:
        sys.exit("pocketsphinx is not installed: pip install 'speechcli[bench]' (or pip install pocketsphinx)")
    return Decoder(samprate=16000, loglevel="FATAL")


def pocketsphinx_transcribe(decoder, samples) -> str:
    """Decode one utterance of 16 kHz float samples in one go (full_utt: batch mode, not streaming)."""
    import numpy as np

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


def machine() -> str:
    """One line naming the machine the figures came from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}"


def number_list(text: str, kind=float) -> list:
    """The numbers of a comma-separated option value, such as ``--beams 1,8``."""
    return [kind(part) for part in text.split(",")]


def median(values) -> float:
    return statistics.median(values)


def print_table(headers: list[str], rows: list[list]) -> None:
    """A plain-text table on stdout, columns padded; floats printed as given (format them first)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _numeric(cell: str) -> bool:
    try:
        float(cell.rstrip("%x"))
        return True
    except ValueError:
        return cell == "-"
