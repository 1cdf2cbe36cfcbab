"""Training loop: feature caches → batches → model → checkpoints (``last.pt``, ``best.pt``)."""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .checkpoint import read_bundle, save_checkpoint
from .data import Entry, FeatureCache, collate, make_batches, spec_augment, split_dev, usable
from .decoding import DecodingOptions, decode_batch
from .errors import CheckpointError, DatasetError
from .metrics import ErrorRate
from .model import SUBSAMPLING, ModelConfig, Seq2Seq, count_parameters
from .text import Vocabulary


@dataclass(frozen=True)
class TrainConfig:
    out_dir: Path
    epochs: int = 20
    max_minutes: float | None = None  # stop (after a checkpoint) once this much wall time is spent
    max_steps: int | None = None
    batch_frames: int = 2000  # padded input frames per batch
    max_utterance_frames: int = 2000  # skip longer training utterances (20 s)
    learning_rate: float = 3e-3
    warmup_steps: int = 100
    final_lr_fraction: float = 0.05  # cosine decay to this fraction of the peak
    weight_decay: float = 1e-6
    grad_clip: float = 5.0
    spec_augment: bool = True
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    checkpoint_minutes: float = 5.0  # also save last.pt this often inside an epoch
    dev_utterances: int = 400  # at most this many dev utterances are decoded per validation
    # model shape
    encoder_layers: int = 3
    encoder_hidden: int = 256
    decoder_hidden: int = 320
    attention_dim: int = 256
    conv_channels: int = 32
    dropout: float = 0.15
    ctc_weight: float = 0.3
    label_smoothing: float = 0.1

    def model_config(self, vocab_size: int, n_mels: int) -> ModelConfig:
        return ModelConfig(vocab_size=vocab_size, n_mels=n_mels, conv_channels=self.conv_channels,
                           encoder_layers=self.encoder_layers, encoder_hidden=self.encoder_hidden,
                           attention_dim=self.attention_dim, decoder_hidden=self.decoder_hidden,
                           dropout=self.dropout, ctc_weight=self.ctc_weight, label_smoothing=self.label_smoothing)


@dataclass
class TrainProgress:
    """What the loop reports after every step and every validation."""

    epoch: int
    step: int
    epoch_fraction: float
    loss: float
    learning_rate: float
    utterances_per_s: float
    audio_seconds_per_s: float
    eta_s: float | None
    validation: dict | None = None  # set after a validation: cer, wer, loss
    message: str | None = None


@dataclass
class _State:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_cer: float = math.inf
    history: list = field(default_factory=list)
    elapsed_s: float = 0.0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DatasetError("--device cuda asked for, but no CUDA device is available")
    return torch.device(name)


def train(config: TrainConfig, train_cache: FeatureCache, dev_cache: FeatureCache | None = None, *,
          resume: bool = False, on_progress: Callable[[TrainProgress], None] | None = None) -> dict:
    """Train and return a summary; checkpoints land in ``config.out_dir``."""
    device = resolve_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    _seed_everything(config.seed)
    vocab = Vocabulary.default()
    train_entries, dev_entries = _splits(train_cache, dev_cache, config)
    model = Seq2Seq(config.model_config(len(vocab), train_cache.feature_config.n_mels), vocab.blank_id, vocab.sos_id).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    state = _State()
    last_path = Path(config.out_dir) / "last.pt"
    if resume and last_path.exists():
        state = _restore(last_path, model, optimizer, device)
    batches_per_epoch = len(make_batches(train_entries, config.batch_frames, config.seed, 0))
    total_steps = config.max_steps or config.epochs * batches_per_epoch
    schedule = lambda step: _learning_rate(config, step, total_steps)  # noqa: E731
    saver = _Saver(config, model, optimizer, vocab, train_cache, state)
    meter = _Meter()
    started = time.monotonic() - state.elapsed_s
    dev_source = dev_cache or train_cache
    stop = False
    while state.epoch < config.epochs and not stop:
        batches = make_batches(train_entries, config.batch_frames, config.seed, state.epoch, sorted_order=state.epoch == 0)
        model.train()
        for index in range(state.batch_in_epoch, len(batches)):
            loss = _train_step(model, optimizer, collate(train_cache, batches[index], vocab), config, schedule(state.step), device)
            state.step += 1
            state.batch_in_epoch = index + 1
            state.elapsed_s = time.monotonic() - started
            meter.add(batches[index], train_cache.feature_config)
            if on_progress:
                on_progress(meter.progress(state, index + 1, len(batches), loss, schedule(state.step), total_steps))
            if _out_of_budget(config, state):
                stop = True
                break
            saver.maybe_save_periodic()
        if not stop:
            state.epoch += 1
            state.batch_in_epoch = 0
        scores = evaluate_cache(model, dev_source, dev_entries, vocab, device)
        state.history.append({"epoch": state.epoch, "step": state.step, **scores})
        improved = scores["cer"] < state.best_cer
        if improved:
            state.best_cer = scores["cer"]
        saver.save(best=improved, scores=scores)
        if on_progress:
            on_progress(meter.progress(state, 0, 1, float("nan"), schedule(state.step), total_steps, validation=scores))
    return {"steps": state.step, "epochs": state.epoch, "best_cer": state.best_cer, "history": state.history,
            "parameters": count_parameters(model), "elapsed_s": state.elapsed_s,
            "train_utterances": len(train_entries), "dev_utterances": len(dev_entries)}


def _splits(train_cache: FeatureCache, dev_cache: FeatureCache | None, config: TrainConfig):
    entries = usable(train_cache.entries, SUBSAMPLING, config.max_utterance_frames)
    if dev_cache is not None:
        dev = dev_cache.entries
        train_entries = entries
    else:
        train_entries, dev = split_dev(entries)
    if not train_entries:
        raise DatasetError("no usable training utterances (all too long or too short for their transcripts)")
    rng = random.Random(config.seed)
    dev = sorted(dev, key=lambda e: e.id)
    if len(dev) > config.dev_utterances:
        dev = sorted(rng.sample(dev, config.dev_utterances), key=lambda e: e.id)
    return train_entries, dev


def _train_step(model, optimizer, batch, config: TrainConfig, lr: float, device) -> float:
    for group in optimizer.param_groups:
        group["lr"] = lr
    batch = batch.to(device)
    features = spec_augment(batch.features) if config.spec_augment else batch.features
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        losses = model(features, batch.feature_lengths, batch.targets, batch.target_lengths)
    optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    return float(losses["loss"].detach())


def _learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """Linear warm-up, then cosine decay to ``final_lr_fraction`` of the peak."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps))
    floor = config.final_lr_fraction
    return config.learning_rate * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def _out_of_budget(config: TrainConfig, state: _State) -> bool:
    if config.max_steps is not None and state.step >= config.max_steps:
        return True
    return config.max_minutes is not None and state.elapsed_s >= config.max_minutes * 60


@torch.inference_mode()
def evaluate_cache(model: Seq2Seq, cache: FeatureCache, entries: list[Entry], vocab: Vocabulary, device,
                   options: DecodingOptions = DecodingOptions(beam_size=1), batch_frames: int = 20000) -> dict:
    """Greedy-decode ``entries`` and score them: {'cer', 'wer', 'utterances'}."""
    was_training = model.training
    model.eval()
    errors = ErrorRate()
    for batch_entries in make_batches(entries, batch_frames, seed=0, epoch=0, sorted_order=True):
        batch = collate(cache, batch_entries, vocab).to(device)
        for text, hyp in zip(batch.texts, decode_batch(model, batch.features, batch.feature_lengths, options)):
            errors.add(text, vocab.decode(hyp.tokens))
    model.train(was_training)
    return {"cer": errors.cer, "wer": errors.wer, "utterances": errors.utterances}


class _Meter:
    """Throughput and ETA over the steps of this run."""

    def __init__(self):
        self.started = time.monotonic()
        self.steps = 0
        self.utterances = 0
        self.audio_s = 0.0

    def add(self, entries: list[Entry], feature_config) -> None:
        self.steps += 1
        self.utterances += len(entries)
        self.audio_s += sum(e.frames for e in entries) * feature_config.frame_shift_ms / 1000

    def progress(self, state: _State, done: int, total: int, loss: float, lr: float, total_steps: int,
                 validation: dict | None = None) -> TrainProgress:
        elapsed = max(1e-6, time.monotonic() - self.started)
        eta = (total_steps - state.step) * elapsed / self.steps if self.steps else None
        return TrainProgress(state.epoch, state.step, done / total, loss, lr, self.utterances / elapsed,
                             self.audio_s / elapsed, eta, validation)


class _Saver:
    """Writes ``last.pt`` (with optimizer and RNG state, for --resume) and ``best.pt`` atomically."""

    def __init__(self, config: TrainConfig, model, optimizer, vocab, cache: FeatureCache, state: _State):
        self.config, self.model, self.optimizer, self.vocab, self.cache, self.state = config, model, optimizer, vocab, cache, state
        self.last_save = time.monotonic()

    def maybe_save_periodic(self) -> None:
        if time.monotonic() - self.last_save >= self.config.checkpoint_minutes * 60:
            self.save(best=False, scores=None)

    def save(self, best: bool, scores: dict | None) -> None:
        out = Path(self.config.out_dir)
        info = {"step": self.state.step, "epoch": self.state.epoch, "dev": scores, "best_cer": self.state.best_cer,
                "train_config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self.config).items()}}
        common = (self.model, self.vocab, self.cache.feature_config, self.cache.mean, self.cache.std)
        save_checkpoint(out / "last.pt", *common, info=info, training_state=self._training_state())
        if best:
            save_checkpoint(out / "best.pt", *common, info=info)
        self.last_save = time.monotonic()

    def _training_state(self) -> dict:
        s = self.state
        return {"optimizer": self.optimizer.state_dict(), "step": s.step, "epoch": s.epoch,
                "batch_in_epoch": s.batch_in_epoch, "best_cer": s.best_cer, "elapsed_s": s.elapsed_s,
                "history": s.history, "torch_rng": torch.get_rng_state(),
                "numpy_rng": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
                "python_rng_seed": random.getrandbits(62)}


def _restore(path: Path, model, optimizer, device) -> _State:
    bundle = read_bundle(path)
    if "training_state" not in bundle:
        raise CheckpointError(f"{path}: has no training state to resume from")
    model.load_state_dict(bundle["state_dict"])
    ts = bundle["training_state"]
    optimizer.load_state_dict(ts["optimizer"])
    torch.set_rng_state(ts["torch_rng"])
    np.random.seed(int(ts["numpy_rng"][0]) % (2**32))
    random.seed(int(ts["python_rng_seed"]))
    model.to(device)
    return _State(ts["step"], ts["epoch"], ts["batch_in_epoch"], ts["best_cer"], list(ts["history"]), ts["elapsed_s"])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
