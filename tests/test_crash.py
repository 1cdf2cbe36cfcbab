"""kill -9 in the middle of featurize or train, run the same command again: nothing lost, nothing doubled.

The kill is a real SIGKILL of a real CLI process, placed deterministically: a driver wraps
``os.replace`` and kills its own process just before the N-th rename onto a chosen file name,
i.e. with that file's new contents fully written to a temp name but not yet in place, which
is the worst moment for a writer that renames atomically.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from typer.testing import CliRunner

from speechcli.checkpoint import read_bundle
from speechcli.cli import app
from speechcli.corpus import read_corpus
from speechcli.data import FeatureCache
from speechcli.featurize import featurize
from speechcli.train import train
from test_distributed import cli_options
from test_featurize import cache_files, make_corpus
from test_train import assert_same_weights, tiny_config, tiny_cache  # noqa: F401  (fixture)

DRIVER = """
import os, signal, sys
suffix, count = os.environ["KILL_BEFORE_RENAME"].split(":")
seen = [0]
real_replace = os.replace
def replace(src, dst):
    if str(dst).endswith(suffix):
        seen[0] += 1
        if seen[0] == int(count):
            os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst)
os.replace = replace
from speechcli.cli import main
sys.argv = ["speechcli", *sys.argv[1:]]
main()
"""


def run_killed(args: list[str], kill_before_rename: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """The CLI in a child process that SIGKILLs itself just before the N-th rename onto ``*suffix``."""
    driver = tmp_path / "kill_driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KILL_BEFORE_RENAME": kill_before_rename}
    return subprocess.run([sys.executable, str(driver), *args], env=env, capture_output=True, text=True, timeout=300)


def rerun(args: list[str]):
    """The same command again, in this process (saves a second start-up of torch)."""
    threads = torch.get_num_threads()
    try:
        return CliRunner().invoke(app, args)
    finally:
        torch.set_num_threads(threads)


def test_featurize_killed_mid_chunk_then_rerun_gives_the_same_cache(tmp_path):
    corpus = make_corpus(tmp_path / "pairs", count=20)
    args = ["featurize", "--data", str(corpus), "--chunk-size", "3", "--quiet"]
    featurize(read_corpus(corpus), tmp_path / "reference", chunk_size=3)  # uninterrupted, in-process
    cache = tmp_path / "cache"
    killed = run_killed(args + ["--cache", str(cache)], ".json:4", tmp_path)
    assert killed.returncode == -signal.SIGKILL
    done = sorted(p.name for p in (cache / "chunks").glob("*.json"))
    assert done == ["00000.json", "00001.json"]  # 4th .json rename: config.json, chunks 0 and 1, then chunk 2 died
    assert (cache / "chunks" / "00002.npy").exists() and not (cache / "manifest.jsonl").exists()
    result = rerun(args + ["--cache", str(cache)])
    assert result.exit_code == 0, result.output
    assert cache_files(cache) == cache_files(tmp_path / "reference")
    assert len(FeatureCache(cache).entries) == 20


def test_train_killed_while_saving_then_rerun_continues_the_step_count(tiny_cache, tmp_path):
    out = tmp_path / "run"
    args = cli_options(tiny_cache, out) + ["--checkpoint-minutes", "0", "--resume"]
    args[args.index("--max-steps") + 1] = "6"
    killed = run_killed(args, "last.pt:4", tmp_path)
    assert killed.returncode == -signal.SIGKILL
    assert read_bundle(out / "last.pt")["training_state"]["step"] == 3  # step 4's save never landed
    result = rerun(args)  # the very same command
    assert result.exit_code == 0, result.output
    assert "resuming from" in result.output
    state = read_bundle(out / "last.pt")["training_state"]
    assert state["step"] == 6 and state["batch_in_epoch"] == 6
    # and it is the run that was never interrupted: same weights as six steps in one go
    straight = tmp_path / "straight"
    train(tiny_config(straight, max_steps=6, checkpoint_minutes=0.0), FeatureCache(tiny_cache))
    assert_same_weights(out / "last.pt", straight / "last.pt")
