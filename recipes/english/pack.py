"""Pack the English corpus small enough to send to a rented GPU machine: every training clip
(synthetic and real originals; no speed copies, the GPU run perturbs on the fly) and the Common
Voice dev set, re-encoded as 16 kHz Opus (about 12-15 kbit/s), then split into bins of at most
--bin-mb megabytes, each holding part directories (list.tsv + audio/) for recipes/english/gpu.sh.

    python recipes/english/pack.py --corpus work/english --out work/gpu --jobs 2
"""

from __future__ import annotations

import argparse
import os
import sys
from multiprocessing import Pool
from pathlib import Path

import soundfile as sf

from speechcli.audio import SAMPLE_RATE, load_audio


def encode(job: tuple[str, str, float]) -> int:
    source, target, level = job
    if not os.path.exists(target):
        temp = target + ".tmp"
        sf.write(temp, load_audio(source), SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=level)
        os.replace(temp, target)
    return os.path.getsize(target)


def read_rows(manifest: Path) -> list[tuple[str, str]]:
    rows = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        audio, text = line.split("\t")
        rows.append((audio if os.path.isabs(audio) else str(manifest.parent / audio), text))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("work/english"))
    parser.add_argument("--out", type=Path, default=Path("work/gpu"))
    parser.add_argument("--level", type=float, default=0.98, help="libsndfile Opus compression level (1 = smallest)")
    parser.add_argument("--bin-mb", type=float, default=52.0)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    train = read_rows(args.corpus / "train.tsv")
    groups = {  # name prefixes matter: gpu.sh lists parts named real* twice
        "devcv": read_rows(args.corpus / "dev_cv.tsv"),
        "real": [row for row in train if "/synth/" not in row[0] and "/real_sp/" not in row[0]],
        "synth": [row for row in train if "/synth/" in row[0]],
    }
    clips = args.out / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    jobs = [(src, str(clips / f"{name}_{i:05d}.opus"), args.level)
            for name, rows in groups.items() for i, (src, _) in enumerate(rows)]
    with Pool(args.jobs) as pool:
        sizes = pool.map(encode, jobs, chunksize=16)
    size_of = {target: size for (_, target, _), size in zip(jobs, sizes)}
    print(f"{len(jobs)} clips, {sum(sizes) / 1e6:.1f} MB", file=sys.stderr)
    write_bins(groups, clips, size_of, args.out, args.bin_mb * 1e6)


def write_bins(groups: dict, clips: Path, size_of: dict, out: Path, capacity: float) -> None:
    """Fill bins in order (dev, real, synthetic); a group that overflows a bin continues in the next,
    as its next part (bin<b>/<group>_<part>/list.tsv + audio/, the audio hard-linked from ``clips``)."""
    parts: dict[Path, list[tuple[str, str]]] = {}
    bin_index, used = 1, 0.0
    for name, rows in groups.items():
        part_index = 1
        for i, (_, text) in enumerate(rows):
            clip = str(clips / f"{name}_{i:05d}.opus")
            if used + size_of[clip] > capacity:
                print(f"bin{bin_index}: {used / 1e6:.1f} MB", file=sys.stderr)
                bin_index, used, part_index = bin_index + 1, 0.0, part_index + 1
            parts.setdefault(out / f"bin{bin_index}" / f"{name}_{part_index}", []).append((clip, text))
            used += size_of[clip]
    print(f"bin{bin_index}: {used / 1e6:.1f} MB", file=sys.stderr)
    for part, part_rows in parts.items():
        (part / "audio").mkdir(parents=True, exist_ok=True)
        for clip, _ in part_rows:
            link = part / "audio" / Path(clip).name
            if not link.exists():
                os.link(clip, link)
        (part / "list.tsv").write_text("".join(f"audio/{Path(clip).name}\t{text}\n" for clip, text in part_rows),
                                       encoding="utf-8")


if __name__ == "__main__":
    main()
