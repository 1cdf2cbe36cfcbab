"""Feature cache: sharded runs merge into the same cache as one run; reruns skip done work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from speechcli.cli import app
from speechcli.corpus import read_corpus
from speechcli.data import FeatureCache
from speechcli.errors import DatasetError
from speechcli.featurize import featurize, merge_cache

WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


def make_corpus(root: Path, count: int = 24, seed: int = 0) -> Path:
    """``count`` clips of 0.6–1.4 s (tones plus noise) with one- or two-word transcripts (name.wav + name.txt)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        seconds = 0.6 + 0.8 * rng.random()
        t = np.arange(int(16000 * seconds)) / 16000
        audio = 0.3 * np.sin(2 * np.pi * (200 + 40 * (i % 10)) * t) + 0.02 * rng.standard_normal(len(t))
        soundfile.write(root / f"utt{i:03d}.wav", audio.astype(np.float32), 16000)
        words = WORDS[i % len(WORDS)] if i % 3 else f"{WORDS[i % len(WORDS)]} {WORDS[(i * 7) % len(WORDS)]}"
        (root / f"utt{i:03d}.txt").write_text(words + "\n")
    (root / "broken.wav").write_bytes(b"not audio at all")
    (root / "broken.txt").write_text("yes\n")
    return root


def cache_files(cache: Path) -> dict[str, bytes]:
    """Everything a finished cache holds, minus temp files (the comparison unit for 'same cache')."""
    return {str(p.relative_to(cache)): p.read_bytes() for p in sorted(cache.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus") / "pairs")


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("ref") / "cache"
    report = featurize(read_corpus(corpus), cache, chunk_size=5)
    assert report.complete and report.utterances == 24 and len(report.failures) == 1
    return cache


def test_reference_cache_is_readable_and_normalised(reference):
    cache = FeatureCache(reference)
    assert len(cache.entries) == 24
    assert sorted(e.id for e in cache.entries) == [e.id for e in cache.entries]
    stacked = np.concatenate([np.asarray(cache.features(e), dtype=np.float64) for e in cache.entries])
    np.testing.assert_allclose(cache.mean, stacked.mean(axis=0), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(cache.std, stacked.std(axis=0), rtol=1e-3, atol=1e-3)
    assert json.loads((reference / "stats.json").read_text())["frames"] == len(stacked)


def test_shards_then_merge_equal_one_run(corpus, reference, tmp_path):
    cache = tmp_path / "cache"
    utterances = read_corpus(corpus)
    first = featurize(utterances, cache, shard=(0, 2), chunk_size=5)
    assert not first.complete and first.chunks_done == 3 and not (cache / "manifest.jsonl").exists()
    with pytest.raises(Exception, match="2 of 5 chunks are not done"):
        merge_cache(cache)
    second = featurize(utterances, cache, shard=(1, 2), chunk_size=5)
    assert second.chunks_done == 2 and second.complete  # the last shard to finish merges
    assert cache_files(cache) == cache_files(reference)
    (cache / "manifest.jsonl").unlink()
    (cache / "stats.json").unlink()
    merge_cache(cache)  # the explicit merge step gives the same files
    assert cache_files(cache) == cache_files(reference)


def test_cli_shards_jobs_and_merge(corpus, reference, tmp_path):
    runner = CliRunner()
    cache = tmp_path / "cache"
    base = ["featurize", "--data", str(corpus), "--cache", str(cache), "--chunk-size", "5", "--quiet"]
    result = runner.invoke(app, base + ["--shard", "1/2"])
    assert result.exit_code == 0 and not (cache / "manifest.jsonl").exists()
    result = runner.invoke(app, base + ["--merge"])
    assert result.exit_code == 1 and "chunks are not done yet" in result.output
    result = runner.invoke(app, base + ["--shard", "0/2", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(cache)
    assert cache_files(cache) == cache_files(reference)
    assert runner.invoke(app, base + ["--shard", "2/2"]).exit_code == 2


def test_rerun_skips_done_chunks_and_refuses_other_settings(corpus, reference, tmp_path):
    cache = tmp_path / "cache"
    utterances = read_corpus(corpus)
    featurize(utterances, cache, chunk_size=5)
    before = {p: p.stat().st_mtime_ns for p in (cache / "chunks").glob("*.npy")}
    again = featurize(utterances, cache, chunk_size=5)
    assert again.chunks_done == 0 and again.chunks_skipped == 5 and again.complete
    assert before == {p: p.stat().st_mtime_ns for p in (cache / "chunks").glob("*.npy")}
    with pytest.raises(Exception, match="another corpus or other feature settings"):
        featurize(utterances, cache, chunk_size=7)


def test_chunks_brought_in_from_another_corpus_are_refused(corpus, tmp_path):
    utterances = read_corpus(corpus)
    other = tmp_path / "other"
    featurize(utterances[:10], other, chunk_size=5)
    cache = _with_first_chunk_of(other, tmp_path / "cache")
    assert featurize(utterances, cache, chunk_size=5).chunks_skipped == 1  # the same five clips come first
    stale = _with_first_chunk_of(other, tmp_path / "stale")
    with pytest.raises(DatasetError, match="chunk 0 holds other utterances"):
        featurize(utterances[5:], stale, chunk_size=5)  # without the first five, chunk 0 holds five others


def _with_first_chunk_of(source: Path, cache: Path) -> Path:
    """A new cache folder holding only a copy of ``source``'s chunk 0."""
    (cache / "chunks").mkdir(parents=True)
    for name in ("00000.npy", "00000.json"):
        (cache / "chunks" / name).write_bytes((source / "chunks" / name).read_bytes())
    return cache
