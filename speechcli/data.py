"""Feature cache → padded training batches (bounded by total frames, grouped by length)."""

from __future__ import annotations

import json
import random
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .audio import FeatureConfig
from .errors import DatasetError
from .text import Vocabulary

DIGITAL_SILENCE = float(np.log(np.finfo(np.float32).eps))  # each log-mel value of a frame of exact zeros
MAX_SILENCE_SHARE = 0.4  # of the frames an utterance's mean is taken over (see _utterance_mean)


@dataclass(frozen=True)
class Entry:
    id: str
    text: str
    frames: int
    chunk: int
    offset: int


class FeatureCache:
    """Read-only view of a cache written by :mod:`speechcli.featurize`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        manifest = self.path / "manifest.jsonl"
        if not manifest.is_file():
            raise DatasetError(f"{self.path}: not a finished feature cache (no manifest.jsonl); run featurize")
        config = json.loads((self.path / "config.json").read_text())
        self.feature_config = FeatureConfig.from_dict(config["features"])
        stats = json.loads((self.path / "stats.json").read_text())
        self.mean = np.array(stats["mean"], dtype=np.float32)
        self.std = np.array(stats["std"], dtype=np.float32)
        self.entries = [Entry(**json.loads(line)) for line in manifest.read_text().splitlines() if line]
        self._chunks: dict[int, np.ndarray] = {}

    def features(self, entry: Entry) -> np.ndarray:
        """Raw (un-normalised) float16 features of one utterance, shape (frames, n_mels)."""
        if entry.chunk not in self._chunks:
            self._chunks[entry.chunk] = np.load(self.path / "chunks" / f"{entry.chunk:05d}.npy", mmap_mode="r")
        return self._chunks[entry.chunk][entry.offset : entry.offset + entry.frames]


def split_dev(entries: list[Entry], fraction: float = 0.05, max_count: int = 500) -> tuple[list[Entry], list[Entry]]:
    """Hold out a deterministic slice (by id hash) as a dev set when none is given."""
    count = min(max_count, max(1, int(len(entries) * fraction)))
    ranked = sorted(entries, key=lambda e: zlib.crc32(e.id.encode()))
    dev_ids = {e.id for e in ranked[:count]}
    return [e for e in entries if e.id not in dev_ids], [e for e in entries if e.id in dev_ids]


def usable(entries: list[Entry], subsampling: int = 4, max_frames: int = 3000) -> list[Entry]:
    """Drop utterances CTC cannot align (too few encoder frames for the text) or too long to batch."""
    return [e for e in entries if e.frames // subsampling > len(e.text) and e.frames <= max_frames]


def make_batches(entries: list[Entry], max_frames: int, seed: int, epoch: int, sorted_order: bool = False) -> list[list[Entry]]:
    """Group utterances of similar length into batches of at most ``max_frames`` padded frames.

    The batch order is shuffled per epoch (seeded), unless ``sorted_order`` (shortest first:
    the curriculum used in the first epoch).
    """
    rng = random.Random(seed * 1000 + epoch)
    jittered = sorted(entries, key=lambda e: e.frames * (1 + 0.1 * rng.random()))
    batches, current, longest = [], [], 0
    for entry in jittered:
        longest_if_added = max(longest, entry.frames)
        if current and longest_if_added * (len(current) + 1) > max_frames:
            batches.append(current)
            current, longest_if_added = [], entry.frames
        current.append(entry)
        longest = longest_if_added
    if current:
        batches.append(current)
    if not sorted_order:
        rng.shuffle(batches)
    return batches


def step_starts(batch_count: int, start: int, per_step: int) -> range:
    """Positions in an epoch's batch list where each optimizer step's global batch begins.

    A step consumes ``per_step`` = world size × gradient-accumulation consecutive batches, so a
    step is the same whatever the layout that runs it: one process accumulating ``per_step``
    batches, or ``per_step`` processes taking one each. A tail shorter than ``per_step`` is
    skipped (at most ``per_step - 1`` batches per epoch). ``start`` (batches already consumed
    this epoch) need not be a multiple of ``per_step``: a run resumed with another world size
    continues from the very next unseen batch.
    """
    return range(start, batch_count - per_step + 1, per_step)


def rank_share(global_batch: list[list[Entry]], rank: int, world: int) -> list[list[Entry]]:
    """This rank's micro-batches of one step's global batch: a contiguous, disjoint slice."""
    accum = len(global_batch) // world
    return global_batch[rank * accum : (rank + 1) * accum]


@dataclass
class Batch:
    features: torch.Tensor  # (batch, frames, n_mels), normalised
    feature_lengths: torch.Tensor  # (batch,)
    targets: torch.Tensor  # (batch, max_tokens), padded with 0
    target_lengths: torch.Tensor  # (batch,)
    ids: list[str]
    texts: list[str]

    def pin_memory(self) -> "Batch":
        """Page-locked copies, so that ``to(cuda, non_blocking=True)`` overlaps with compute."""
        return Batch(self.features.pin_memory(), self.feature_lengths, self.targets.pin_memory(), self.target_lengths,
                     self.ids, self.texts)

    def to(self, device: torch.device) -> "Batch":
        return Batch(self.features.to(device, non_blocking=True), self.feature_lengths.to(device),
                     self.targets.to(device, non_blocking=True), self.target_lengths.to(device), self.ids, self.texts)


def collate(cache: FeatureCache, entries: list[Entry], vocab: Vocabulary,
            stats: tuple[np.ndarray, np.ndarray] | None = None) -> Batch:
    """Pad ``entries`` into a batch, normalised with ``stats`` (mean, std): the model's, when the
    cache is not the one it was trained on; by default the cache's own."""
    mean, std = stats if stats is not None else (cache.mean, cache.std)
    features = [normalize_features(cache.features(e), mean, std, cache.feature_config) for e in entries]
    tokens = [torch.tensor(vocab.encode(e.text), dtype=torch.long) for e in entries]
    return Batch(
        features=torch.nn.utils.rnn.pad_sequence(features, batch_first=True),
        feature_lengths=torch.tensor([len(f) for f in features]),
        targets=torch.nn.utils.rnn.pad_sequence(tokens, batch_first=True, padding_value=0),
        target_lengths=torch.tensor([len(t) for t in tokens]),
        ids=[e.id for e in entries],
        texts=[e.text for e in entries],
    )


def normalize_features(features, mean: np.ndarray, std: np.ndarray, config: FeatureConfig) -> torch.Tensor:
    """Apply the model's normalisation: optional per-utterance mean removal, then global scaling."""
    x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    if config.utterance_mean:
        return (x - _utterance_mean(x)) / torch.from_numpy(std)
    return (x - torch.from_numpy(mean)) / torch.from_numpy(std)


def _utterance_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean of the frames, with digital silence (frames of exact zeros, at log(eps)) at most
    ``MAX_SILENCE_SHARE`` of them. Synthetic training clips have such frames (99 % of them at most 40 %, a few up
    to 55 %), so the model knows the shift they cause; the seconds of zeros of a padded file shifted the speech
    further (before this cap, "seven" after 2 s of zeros came out as "go there")."""
    silent = (x <= DIGITAL_SILENCE + 0.05).all(dim=1)  # 0.05: caches store float16
    sound = x[~silent]
    if len(sound) == 0:
        return x.mean(dim=0, keepdim=True)
    kept = min(int(silent.sum()), int(MAX_SILENCE_SHARE / (1 - MAX_SILENCE_SHARE) * len(sound)))
    return torch.cat([sound, x[silent][:kept]]).mean(dim=0, keepdim=True)


def perturb(features: torch.Tensor, lengths: torch.Tensor, target_lengths: torch.Tensor, max_tempo: float = 0.1,
            max_warp: float = 0.1, subsampling: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Per utterance, a random tempo change (time axis resampled by up to ±``max_tempo``) and a
    vocal-tract-length warp (mel axis stretched by up to ±``max_warp``): cheap stand-ins for speed
    perturbation and new speakers. Never shortens an utterance below what CTC needs for its text."""
    perturbed = []
    for x, frames, tokens in zip(features, lengths.tolist(), target_lengths.tolist()):
        x = x[:frames]
        tempo = 1 + max_tempo * (2 * float(torch.rand(())) - 1)
        new_frames = max(round(frames / tempo), min(frames, subsampling * (tokens + 1)))
        x = torch.nn.functional.interpolate(x.T.unsqueeze(0), size=new_frames, mode="linear", align_corners=True)[0].T
        perturbed.append(_warp_mels(x, 1 + max_warp * (2 * float(torch.rand(())) - 1)))
    new_lengths = torch.tensor([len(x) for x in perturbed], device=lengths.device)
    return torch.nn.utils.rnn.pad_sequence(perturbed, batch_first=True), new_lengths


def _warp_mels(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Output bin i takes the (interpolated) input bin i·factor: factor > 1 shifts formants down."""
    mels = x.shape[1]
    source = (torch.arange(mels, device=x.device, dtype=x.dtype) * factor).clamp(max=mels - 1)
    low = source.floor().long()
    high = (low + 1).clamp(max=mels - 1)
    fraction = source - low
    return x[:, low] * (1 - fraction) + x[:, high] * fraction


def spec_augment(features: torch.Tensor, freq_mask: int = 27, time_mask_fraction: float = 0.05, masks: int = 2) -> torch.Tensor:
    """SpecAugment (frequency and time masks, per utterance) on a (batch, frames, mels) tensor."""
    import torchaudio.functional as AF

    x = features.transpose(1, 2).unsqueeze(1)  # (batch, 1, mels, frames)
    max_time = max(1, int(features.shape[1] * time_mask_fraction))
    for _ in range(masks):
        x = AF.mask_along_axis_iid(x, freq_mask, 0.0, axis=2)
        x = AF.mask_along_axis_iid(x, max_time, 0.0, axis=3)
    return x.squeeze(1).transpose(1, 2)
