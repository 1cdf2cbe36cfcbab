"""Corpus → feature cache: float16 log-mel chunks, a manifest and global normalisation stats.

Layout of a cache directory::

    config.json            feature settings, chunk size and the utterance list's fingerprint
    chunks/00012.npy       float16 features of up to CHUNK_SIZE utterances, concatenated in time
    chunks/00012.json      per utterance: id, text, frames, offset; failures; sums for the stats
    manifest.jsonl         all utterances in order: id, text, frames, chunk, offset (written last)
    stats.json             global mean and std per mel bin, combined from the chunks' sums

Every file is written to a temporary name and renamed, so an interrupted run loses nothing
and a rerun skips the chunks that are done (a chunk is done once its ``.json`` exists; it is
renamed into place after the ``.npy``; a done chunk must hold the utterances the corpus puts
there). ``shard=(i, n)`` lets independent processes (cluster array jobs) each do every n-th
chunk. Whichever process finds all chunks present writes the manifest and stats (the merge
reads only the small ``.json`` files); :func:`merge_cache` does the same step on its own, for a
final job after an array of shards. Two processes merging at once write identical files, each
by atomic rename, so that race is harmless.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .audio import FeatureConfig, load_audio, log_mel
from .corpus import Utterance
from .errors import DatasetError, SpeechCLIError
from .text import Vocabulary, normalize_text

CHUNK_SIZE = 200
DECODE_GROUP_SAMPLES = 16 * 10 * 16_000  # about 16 ten-second clips (10 MB of float32)
CACHE_VERSION = 1


@dataclass
class FeaturizeReport:
    utterances: int = 0
    frames: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (audio path, reason)
    chunks_done: int = 0
    chunks_skipped: int = 0
    chunks_total: int = 0
    complete: bool = False


def is_cache(path: Path) -> bool:
    return (Path(path) / "config.json").is_file() and (Path(path) / "chunks").is_dir()


def featurize(
    utterances: Sequence[Utterance],
    cache_dir: Path,
    config: FeatureConfig = FeatureConfig(),
    *,
    jobs: int = 1,
    shard: tuple[int, int] = (0, 1),
    chunk_size: int = CHUNK_SIZE,
    on_chunk: Callable[[int, int], None] | None = None,
) -> FeaturizeReport:
    """Write the features of ``utterances`` into ``cache_dir``; resumable and shardable.

    Every shard of one cache must use the same ``chunk_size`` (it is recorded in config.json).
    ``on_chunk(done, total)`` is called after each chunk this process handles.
    """
    cache_dir = Path(cache_dir)
    utterances = sorted(utterances, key=lambda u: u.id)
    _write_or_check_config(cache_dir, config, utterances, chunk_size)
    chunks = [utterances[i : i + chunk_size] for i in range(0, len(utterances), chunk_size)]
    shard_index, shard_count = shard
    if not (shard_count >= 1 and 0 <= shard_index < shard_count):
        raise DatasetError(f"shard {shard_index}/{shard_count}: expected 0 <= i < N")
    _check_done_chunks(cache_dir, chunks)
    mine = [k for k in range(len(chunks)) if k % shard_count == shard_index]
    todo = [k for k in mine if not _chunk_done(cache_dir, k)]
    report = FeaturizeReport(chunks_total=len(chunks), chunks_skipped=len(mine) - len(todo))
    tasks = [(cache_dir, k, chunks[k], config) for k in todo]
    for done, _ in enumerate(_run_tasks(tasks, jobs), start=1):
        report.chunks_done = done
        if on_chunk:
            on_chunk(done + report.chunks_skipped, len(mine))
    if all(_chunk_done(cache_dir, k) for k in range(len(chunks))):
        _merge(cache_dir, len(chunks), report)
    return report


def merge_cache(cache_dir: Path) -> FeaturizeReport:
    """Write manifest.jsonl and stats.json of a cache whose chunks are all done (by any shards).

    Raises
    ------
    DatasetError
        When ``cache_dir`` is not a cache or some chunks are still missing.
    """
    cache_dir = Path(cache_dir)
    if not is_cache(cache_dir):
        raise DatasetError(f"{cache_dir}: not a feature cache (no config.json); run featurize first")
    config = json.loads((cache_dir / "config.json").read_text())
    count = -(-config["utterances"] // config["chunk_size"])
    missing = [k for k in range(count) if not _chunk_done(cache_dir, k)]
    if missing:
        raise DatasetError(f"{cache_dir}: {len(missing)} of {count} chunks are not done yet "
                           f"(first missing: {missing[0]}); run the remaining shards first")
    report = FeaturizeReport(chunks_total=count)
    _merge(cache_dir, count, report)
    return report


def _run_tasks(tasks: list, jobs: int):
    if jobs <= 1 or len(tasks) <= 1:
        yield from _run_overlapped(tasks)
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # torch and fork do not mix well
    with context.Pool(min(jobs, len(tasks)), initializer=_single_thread) as pool:
        yield from pool.imap_unordered(_featurize_chunk, tasks)


def _run_overlapped(tasks: list) -> Iterator[int]:
    """One process: chunk k is written on a helper thread while chunk k+1 is computed.

    The write (concatenation, stats, float16, file) is big-buffer numpy work that releases the
    GIL, so it overlaps the fbank of the next chunk; at most two chunks are held in memory.
    Leaving early (an error, Ctrl-C) still finishes the write in flight.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="speechcli-write") as writer:
        in_flight: Future | None = None
        for task in tasks:
            computed = _compute_chunk(task)
            if in_flight is not None:
                yield in_flight.result()
            in_flight = writer.submit(_write_chunk, *computed)
        if in_flight is not None:
            yield in_flight.result()


def _single_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _featurize_chunk(task) -> int:
    return _write_chunk(*_compute_chunk(task))


def _compute_chunk(task) -> tuple:
    """Features of one chunk's utterances, their manifest entries and the files that failed."""
    cache_dir, index, utterances, config = task
    vocab = Vocabulary.default()
    arrays, entries, failures = [], [], []
    offset = 0
    for utt, audio in _decoded(utterances, config.sample_rate):
        try:
            text = _checked_text(utt, vocab)
            if isinstance(audio, SpeechCLIError):
                raise audio
            features = log_mel(audio, config).numpy()
        except SpeechCLIError as error:
            failures.append({"id": utt.id, "path": str(utt.audio_path), "error": str(error)})
            continue
        arrays.append(features)
        entries.append({"id": utt.id, "text": text, "frames": len(features), "offset": offset})
        offset += len(features)
    return cache_dir, index, arrays, entries, failures, config.n_mels


def _decoded(utterances: Sequence[Utterance], sample_rate: int) -> Iterator[tuple[Utterance, object]]:
    """Yield (utterance, samples or the AudioError of its file), decoding a group of files at a time.

    Decoding a group before computing its features measured ~6 % faster than alternating file
    by file; a group ends at DECODE_GROUP_SAMPLES so that long clips cannot pile up in memory.
    """
    group: list = []
    held = 0
    for utt in utterances:
        try:
            audio = load_audio(utt.audio_path, sample_rate)
            held += len(audio)
        except SpeechCLIError as error:
            audio = error
        group.append((utt, audio))
        if held >= DECODE_GROUP_SAMPLES:
            yield from group
            group, held = [], 0
    yield from group


def _write_chunk(cache_dir: Path, index: int, arrays: list, entries: list, failures: list, n_mels: int) -> int:
    stacked = np.concatenate(arrays) if arrays else np.zeros((0, n_mels), np.float32)
    meta = {
        "utterances": entries,
        "failures": failures,
        # float64 accumulation (squares of float32 values are exact in float64), without a float64 copy
        "sum": stacked.sum(axis=0, dtype=np.float64).tolist(),
        "sum_squares": np.einsum("ij,ij->j", stacked, stacked, dtype=np.float64).tolist(),
        "frames": int(len(stacked)),
    }
    chunk_path = _chunk_path(cache_dir, index)
    _atomic_save_npy(chunk_path.with_suffix(".npy"), _to_float16(stacked))
    _atomic_write_text(chunk_path.with_suffix(".json"), json.dumps(meta))  # written last: marks done
    return index


def _to_float16(array: np.ndarray) -> np.ndarray:
    import torch

    return torch.from_numpy(array).half().numpy()  # same rounding as numpy's astype, ~9× faster here


def _checked_text(utt: Utterance, vocab: Vocabulary) -> str:
    text = normalize_text(utt.text)
    if not text:
        raise DatasetError(f"{utt.audio_path}: empty transcript")
    try:
        vocab.encode(text)
    except ValueError as error:
        raise DatasetError(f"{utt.audio_path}: transcript has characters outside the vocabulary ({error})") from None
    return text


def _merge(cache_dir: Path, chunk_count: int, report: FeaturizeReport) -> None:
    total = None
    total_squares = None
    lines = []
    for k in range(chunk_count):
        meta = json.loads(_chunk_path(cache_dir, k).with_suffix(".json").read_text())
        for entry in meta["utterances"]:
            lines.append(json.dumps({**entry, "chunk": k}))
            report.frames += entry["frames"]
        report.failures += [(f["path"], f["error"]) for f in meta["failures"]]
        sums, squares = np.array(meta["sum"]), np.array(meta["sum_squares"])
        total = sums if total is None else total + sums
        total_squares = squares if total_squares is None else total_squares + squares
    report.utterances = len(lines)
    if report.frames == 0:
        raise DatasetError(f"{cache_dir}: no utterance could be featurized ({len(report.failures)} failed)")
    mean = total / report.frames
    std = np.sqrt(np.maximum(total_squares / report.frames - mean**2, 1e-8))
    stats = {"mean": mean.tolist(), "std": std.tolist(), "frames": report.frames}
    _atomic_write_text(cache_dir / "stats.json", json.dumps(stats))
    _atomic_write_text(cache_dir / "manifest.jsonl", "\n".join(lines) + "\n")
    report.complete = True


def _write_or_check_config(cache_dir: Path, config: FeatureConfig, utterances: Sequence[Utterance], chunk_size: int) -> None:
    fingerprint = _fingerprint(utterances)
    wanted = {"version": CACHE_VERSION, "features": config.to_dict(), "chunk_size": chunk_size,
              "utterances": len(utterances), "fingerprint": fingerprint}
    config_path = cache_dir / "config.json"
    if config_path.exists():
        existing = json.loads(config_path.read_text())
        if existing != wanted:
            raise DatasetError(
                f"{cache_dir} holds a cache of another corpus or other feature settings; "
                "choose another --cache directory or delete it"
            )
        return
    (cache_dir / "chunks").mkdir(parents=True, exist_ok=True)
    _atomic_write_text(config_path, json.dumps(wanted, indent=1))


def _fingerprint(utterances: Sequence[Utterance]) -> str:
    digest = hashlib.sha1()
    for utt in utterances:
        digest.update(f"{utt.id}\t{utt.audio_path}\t{utt.text}\n".encode())
    return digest.hexdigest()


def _check_done_chunks(cache_dir: Path, chunks: list) -> None:
    """Refuse chunk files that hold other utterances than the corpus puts there.

    config.json's fingerprint guards a rerun; this catches chunks copied or linked in from another
    cache (utterances are sorted by id, so chunk k of a changed corpus holds other clips).
    """
    for k, chunk in enumerate(chunks):
        if not _chunk_done(cache_dir, k):
            continue
        meta = json.loads(_chunk_path(cache_dir, k).with_suffix(".json").read_text())
        held = sorted(item["id"] for item in meta["utterances"] + meta["failures"])
        if held != [utt.id for utt in chunk]:
            raise DatasetError(f"{cache_dir}: chunk {k} holds other utterances than this corpus puts there; "
                               "delete the cache or choose another --cache directory")


def _chunk_path(cache_dir: Path, index: int) -> Path:
    return cache_dir / "chunks" / f"{index:05d}"


def _chunk_done(cache_dir: Path, index: int) -> bool:
    return _chunk_path(cache_dir, index).with_suffix(".json").exists()


def _atomic_write_text(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text)
    os.replace(temp, path)


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temp, "wb") as handle:
        np.save(handle, array)
    os.replace(temp, path)
