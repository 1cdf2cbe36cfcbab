"""`torchrun --nproc_per_node 2` (gloo, CPU) trains like one process that sees the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from speechcli.checkpoint import read_bundle
from speechcli.data import FeatureCache
from speechcli.train import train
from test_train import TINY, assert_same_weights, tiny_config, tiny_cache  # noqa: F401  (fixture)

# Runs the real CLI entry point (what `-m speechcli` runs) and records, per rank, the utterance ids
# of every micro-batch this rank trained on.
DRIVER = """
import json, os, sys
import speechcli.train as train_module
from speechcli.cli import main

seen = []
original = train_module._load
def recording_load(cache, entries, vocab, device, stats):
    seen.append([e.id for e in entries])
    return original(cache, entries, vocab, device, stats)
train_module._load = recording_load
try:
    sys.argv = ["speechcli", *sys.argv[1:]]
    main()
finally:
    with open(os.path.join(os.environ["IDS_DIR"], "ids.%s.json" % os.environ["RANK"]), "w") as f:
        json.dump(seen, f)
"""

STEPS = 3


def cli_options(cache: Path, out: Path) -> list[str]:
    return ["train", "--data", str(cache), "--out", str(out), "--max-steps", str(STEPS), "--epochs", "50",
            "--batch-frames", str(TINY["batch_frames"]), "--lr", str(TINY["learning_rate"]),
            "--warmup-steps", str(TINY["warmup_steps"]), "--encoder-layers", "1", "--encoder-hidden", "32",
            "--decoder-hidden", "32", "--attention-dim", "32", "--conv-channels", "4", "--dropout", "0",
            "--no-spec-augment", "--no-perturb", "--precision", "fp32", "--device", "cpu", "--threads", "1"]


def test_torchrun_two_ranks_match_one_process_with_the_same_global_batch(tiny_cache, tmp_path):
    out = tmp_path / "ddp"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "IDS_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(driver), *cli_options(tiny_cache, out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    # only rank 0 printed the result and wrote checkpoints: one last.pt (and its best.pt), no per-rank files
    assert result.stdout.split() == [str(out / "best.pt")]
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "last.pt"]
    assert result.stderr.count("training on 2 processes") == 1

    # each rank trained on its own micro-batch of every step, disjoint from the other's
    rank0, rank1 = (json.loads((tmp_path / f"ids.{r}.json").read_text()) for r in (0, 1))
    assert len(rank0) == len(rank1) == STEPS
    for mine, theirs in zip(rank0, rank1):
        assert mine and theirs and not set(mine) & set(theirs)
    assert not {i for b in rank0 for i in b} & {i for b in rank1 for i in b}

    # a single process accumulating both micro-batches of each step reaches the same weights
    single = tmp_path / "single"
    summary = train(tiny_config(single, max_steps=STEPS, grad_accum=2), FeatureCache(tiny_cache))
    assert summary["steps"] == STEPS
    assert_same_weights(out / "last.pt", single / "last.pt", atol=1e-5)
    ddp_info, single_info = read_bundle(out / "last.pt")["info"], read_bundle(single / "last.pt")["info"]
    assert ddp_info["world_size"] == 2 and ddp_info["step"] == STEPS
    # validation decoded half the dev set on each rank; the summed counts give the single-process score
    assert ddp_info["dev"] == single_info["dev"]
