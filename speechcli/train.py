"""Training loop: feature caches → batches → model → checkpoints (``last.pt``, ``best.pt``).

Runs as one process or as one of several under ``torchrun`` (DistributedDataParallel; see
:mod:`speechcli.distributed`). One optimizer step consumes a *global batch* of
``world × grad_accum`` consecutive length-bucketed batches of the epoch's shuffled list, which
every rank builds identically from the shared seed; rank ``r`` takes its own contiguous slice.
Each micro-batch loss is divided by ``grad_accum`` and DDP averages over ranks, so the
gradient is the mean of the micro-batch gradients: a single process with
``grad_accum = world × k`` takes exactly the same steps as ``world`` processes with ``k``.
Only rank 0 writes checkpoints and reports progress; validation splits the dev set across
ranks and sums the error counts.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import distributed
from .checkpoint import load_weights, read_bundle, save_checkpoint
from .data import Entry, FeatureCache, collate, make_batches, perturb, rank_share, spec_augment, split_dev, step_starts, usable
from .decoding import DecodingOptions, decode_batch
from .errors import CheckpointError, DatasetError
from .metrics import ErrorRate
from .model import SUBSAMPLING, ModelConfig, Seq2Seq, count_parameters
from .text import Vocabulary


SHAPE_FIELDS = ("encoder_layers", "encoder_hidden", "decoder_hidden", "attention_dim", "frontend", "conv_channels")


@dataclass(frozen=True)
class TrainConfig:
    out_dir: Path
    epochs: int = 40
    max_minutes: float | None = None  # stop (after a checkpoint) once this much wall time is spent;
    # the learning-rate schedule then ends at whichever budget, steps or minutes, runs out first
    max_steps: int | None = None
    batch_frames: int = 2000  # padded input frames per batch
    max_utterance_frames: int = 2000  # skip longer training utterances (20 s)
    learning_rate: float = 3e-3
    warmup_steps: int = 100
    final_lr_fraction: float = 0.05  # cosine decay to this fraction of the peak
    weight_decay: float = 1e-6
    grad_clip: float = 5.0
    spec_augment: bool = True
    perturb: bool = False  # random tempo and mel-axis (vocal tract) warping per utterance
    perturb_range: float = 0.1  # of both warps: factors drawn from 1 ± this
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    checkpoint_minutes: float = 5.0  # also save last.pt this often inside an epoch (0: every step)
    grad_accum: int = 1  # micro-batches per rank per optimizer step
    precision: str = "auto"  # auto (bf16 on CUDA and on CPUs with native bf16, else fp32), fp32, bf16, fp16 (CUDA, loss-scaled)
    dev_utterances: int = 400  # at most this many dev utterances are decoded per validation
    init_from: Path | None = None  # start from this checkpoint's weights (fresh optimizer and schedule)
    # model shape (SHAPE_FIELDS); None: the starting checkpoint's (resumed or init_from), else ModelConfig's default
    encoder_layers: int | None = None
    encoder_hidden: int | None = None
    decoder_hidden: int | None = None
    attention_dim: int | None = None
    frontend: str | None = None
    conv_channels: int | None = None  # "conv2d" front end only
    dropout: float = 0.15
    ctc_weight: float = 0.3
    label_smoothing: float = 0.1

    def model_config(self, vocab_size: int, n_mels: int) -> ModelConfig:
        shape = {name: getattr(self, name) for name in SHAPE_FIELDS if getattr(self, name) is not None}
        return ModelConfig(vocab_size=vocab_size, n_mels=n_mels, dropout=self.dropout, ctc_weight=self.ctc_weight,
                           label_smoothing=self.label_smoothing, **shape)


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
    """Train and return a summary; checkpoints land in ``config.out_dir``.

    Under ``torchrun`` every rank calls this; ``on_progress`` is only called on rank 0.
    """
    device = resolve_device(config.device)
    owns_group = not torch.distributed.is_initialized()
    topo = distributed.setup(device)
    device = distributed.local_device(device, topo)
    if config.threads:
        torch.set_num_threads(config.threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 runs: TF32 matrix products, as cuDNN already does
    if config.grad_accum < 1:
        raise DatasetError("--grad-accum must be at least 1")
    autocast_dtype = _autocast_dtype(config.precision, device)
    _seed_everything(config.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    vocab = Vocabulary.default()
    train_entries, dev_entries = _splits(train_cache, dev_cache, config)
    last_path = Path(config.out_dir) / "last.pt"
    resuming = resume and last_path.exists()
    start_path = last_path if resuming else config.init_from
    start = read_bundle(start_path) if start_path else None  # read once: shape first, then weights
    config = _with_starting_shape(config, start, start_path)
    stats = _normalisation(start, train_cache)
    model = Seq2Seq(config.model_config(len(vocab), train_cache.feature_config.n_mels), vocab.blank_id, vocab.sos_id).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype == torch.float16)
    state = _State()
    if resuming:
        state = _restore(start, last_path, model, optimizer, scaler, device)
    elif start is not None:
        _initialise(start, start_path, model, vocab, device)
    del start  # with its optimizer state it need not stay in memory for the whole run
    if topo.rank:  # other ranks draw their own SpecAugment masks and dropout
        _seed_everything(config.seed + 1_000_003 * topo.rank + state.step)
    net = model
    if topo.distributed:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    per_step = topo.world * config.grad_accum
    first_batches = make_batches(train_entries, config.batch_frames, config.seed, 0)
    if len(first_batches) < per_step:
        raise DatasetError(f"only {len(first_batches)} batches per epoch, fewer than world size × --grad-accum = {per_step}; "
                           "lower --batch-frames")
    total_steps = config.max_steps or config.epochs * (len(first_batches) // per_step)
    shared_elapsed_s = state.elapsed_s  # the ranks' mean, so that all of them use the same learning rate
    schedule = lambda step: _learning_rate(config, step, total_steps, shared_elapsed_s)  # noqa: E731
    saver = _Saver(config, model, optimizer, scaler, vocab, train_cache.feature_config, stats, state, topo)
    meter = _Meter()
    started = time.monotonic() - state.elapsed_s
    dev_source = dev_cache or train_cache
    report = on_progress if topo.is_main else None
    stop = _out_of_budget(config, state)  # a finished run, resumed with the same budget, does nothing
    try:
        while state.epoch < config.epochs and not stop:
            batches = make_batches(train_entries, config.batch_frames, config.seed, state.epoch, sorted_order=state.epoch == 0)
            model.train()
            for start in step_starts(len(batches), state.batch_in_epoch, per_step):
                global_batch = batches[start : start + per_step]
                micro = [_load(train_cache, entries, vocab, device, stats) for entries in rank_share(global_batch, topo.rank, topo.world)]
                loss = _train_step(net, optimizer, scaler, micro, config, schedule(state.step), device, autocast_dtype)
                state.step += 1
                state.batch_in_epoch = start + per_step
                state.elapsed_s = time.monotonic() - started
                meter.add([e for batch in global_batch for e in batch], train_cache.feature_config)
                # time-based decisions must agree on all ranks, or they would wait for each other forever
                loss_sum, stop_votes, save_votes, elapsed_sum = distributed.all_reduce_sum(
                    [loss, float(_out_of_budget(config, state)), float(saver.due()), state.elapsed_s], device)
                shared_elapsed_s = elapsed_sum / topo.world
                if report:
                    report(meter.progress(state, state.batch_in_epoch, len(batches), loss_sum / topo.world,
                                          schedule(state.step), total_steps))
                if stop_votes:
                    stop = True
                    break
                if save_votes:
                    saver.save(best=False, scores=None)
            if not stop:
                state.epoch += 1
                state.batch_in_epoch = 0
            scores = _evaluate_shared(model, dev_source, dev_entries, vocab, device, topo, stats)
            state.history.append({"epoch": state.epoch, "step": state.step, **scores})
            # a tie goes to the newer checkpoint: it trained longer, at a lower learning rate (small dev
            # sets tie often: FSDD's automatic 88-clip dev set sat at 1.13 % CER for the last 7 epochs)
            improved = scores["cer"] <= state.best_cer
            if improved:
                state.best_cer = scores["cer"]
            saver.save(best=improved, scores=scores)
            if report:
                report(meter.progress(state, 0, 1, float("nan"), schedule(state.step), total_steps, validation=scores))
    finally:
        if owns_group:
            distributed.cleanup()
    return {"steps": state.step, "epochs": state.epoch, "best_cer": state.best_cer, "history": state.history,
            "parameters": count_parameters(model), "elapsed_s": state.elapsed_s,
            "train_utterances": len(train_entries), "dev_utterances": len(dev_entries), "world_size": topo.world}


def cpu_has_native_bf16() -> bool:
    """True on CPUs with AVX512-BF16, where bf16 autocast trained the default model ~1.5-1.7× faster."""
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # private, so guarded
    return bool(check and check())


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None = plain fp32."""
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" or cpu_has_native_bf16() else None
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise DatasetError("--precision fp16 needs a CUDA device (use bf16 or fp32 on CPU)")
        return torch.float16
    raise DatasetError(f"unknown precision {precision!r} (auto, fp32, bf16, fp16)")


def _load(cache: FeatureCache, entries: list[Entry], vocab: Vocabulary, device: torch.device, stats):
    batch = collate(cache, entries, vocab, stats)
    return batch.pin_memory() if device.type == "cuda" else batch


def _normalisation(start: dict | None, cache: FeatureCache) -> tuple[np.ndarray, np.ndarray]:
    """The feature mean and std the model is trained with: the starting checkpoint's when there is one
    (fine-tuning or resuming), so that weights go on seeing their inputs scaled as they learned them
    whatever corpus they continue on; else the training cache's."""
    if start is None:
        return cache.mean, cache.std
    return start["mean"].numpy(), start["std"].numpy()


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


def _train_step(net, optimizer, scaler, batches: list, config: TrainConfig, lr: float, device,
                autocast_dtype: torch.dtype | None) -> float:
    """One optimizer step over this rank's micro-batches; returns their mean loss.

    Gradients of micro-batches before the last are kept local (``no_sync``); DDP averages the
    accumulated gradient over ranks during the last backward.
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for i, batch in enumerate(batches):
        last = i == len(batches) - 1
        with contextlib.nullcontext() if last or not hasattr(net, "no_sync") else net.no_sync():
            batch = batch.to(device)
            features, lengths = batch.features, batch.feature_lengths
            if config.perturb:
                features, lengths = perturb(features, lengths, batch.target_lengths, max_tempo=config.perturb_range,
                                            max_warp=config.perturb_range, subsampling=SUBSAMPLING)
            if config.spec_augment:
                features = spec_augment(features)
            with torch.autocast(device_type=device.type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
                losses = net(features, lengths, batch.targets, batch.target_lengths)
            scaler.scale(losses["loss"] / len(batches)).backward()
        total += float(losses["loss"].detach())
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return total / len(batches)


def _learning_rate(config: TrainConfig, step: int, total_steps: int, elapsed_s: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to ``final_lr_fraction`` of the peak, over the steps or,
    with ``max_minutes``, over the time budget when that runs out first (so a run cut by time
    still ends annealed)."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps))
    if config.max_minutes:
        progress = max(progress, min(1.0, elapsed_s / (config.max_minutes * 60)))
    floor = config.final_lr_fraction
    return config.learning_rate * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def _out_of_budget(config: TrainConfig, state: _State) -> bool:
    if config.max_steps is not None and state.step >= config.max_steps:
        return True
    return config.max_minutes is not None and state.elapsed_s >= config.max_minutes * 60


@torch.inference_mode()
def error_counts(model, cache, entries, vocab, device, options=DecodingOptions(beam_size=1), batch_frames=20000,
                 stats=None, lm=None, word_lm=None) -> ErrorRate:
    """Decode cached ``entries`` (normalised with ``stats``, default the cache's own) and count errors."""
    was_training = model.training
    model.eval()
    errors = ErrorRate()
    for batch_entries in make_batches(entries, batch_frames, seed=0, epoch=0, sorted_order=True) if entries else []:
        batch = collate(cache, batch_entries, vocab, stats).to(device)
        for text, hyp in zip(batch.texts, decode_batch(model, batch.features, batch.feature_lengths, options, lm, word_lm)):
            errors.add(text, vocab.decode(hyp.tokens))
    model.train(was_training)
    return errors


def _evaluate_shared(model, cache, entries, vocab, device, topo: distributed.Topology, stats) -> dict:
    """Each rank decodes every world-th dev utterance; the error counts are summed over ranks.

    ``stats`` (mean, std) are the model's (see _normalisation): a separate dev cache has its own."""
    errors = error_counts(model, cache, entries[topo.rank :: topo.world], vocab, device, stats=stats)
    names = ("word_errors", "words", "char_errors", "chars", "utterances")
    totals = distributed.all_reduce_sum([float(getattr(errors, n)) for n in names], device)
    errors = ErrorRate(**{n: int(round(t)) for n, t in zip(names, totals)})
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
    """Writes ``last.pt`` (with optimizer, scaler and RNG state, for --resume) and ``best.pt`` atomically.

    Only rank 0 writes; all ranks call :meth:`save` together and meet in a barrier afterwards.
    """

    def __init__(self, config: TrainConfig, model, optimizer, scaler, vocab, feature_config, stats, state: _State,
                 topo: distributed.Topology):
        self.config, self.model, self.optimizer, self.scaler = config, model, optimizer, scaler
        self.vocab, self.feature_config, self.stats, self.state, self.topo = vocab, feature_config, stats, state, topo
        self.last_save = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self.last_save >= self.config.checkpoint_minutes * 60

    def save(self, best: bool, scores: dict | None) -> None:
        if self.topo.is_main:
            out = Path(self.config.out_dir)
            info = {"step": self.state.step, "epoch": self.state.epoch, "dev": scores, "best_cer": self.state.best_cer,
                    "world_size": self.topo.world,
                    "train_config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self.config).items()}}
            common = (self.model, self.vocab, self.feature_config, *self.stats)
            save_checkpoint(out / "last.pt", *common, info=info, training_state=self._training_state())
            if best:
                save_checkpoint(out / "best.pt", *common, info=info)
        distributed.barrier()
        self.last_save = time.monotonic()

    def _training_state(self) -> dict:
        s = self.state
        return {"optimizer": self.optimizer.state_dict(), "step": s.step, "epoch": s.epoch,
                "batch_in_epoch": s.batch_in_epoch, "best_cer": s.best_cer, "elapsed_s": s.elapsed_s,
                "history": s.history, "torch_rng": torch.get_rng_state(),
                "numpy_rng": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
                "python_rng_seed": random.getrandbits(62), "grad_scaler": self.scaler.state_dict(),
                "world_size": self.topo.world, "grad_accum": self.config.grad_accum}


def _restore(bundle: dict, path: Path, model, optimizer, scaler, device) -> _State:
    """Load ``last.pt``'s weights, optimizer, scaler and RNG state; ``batch_in_epoch`` is the sampler position."""
    if "training_state" not in bundle:
        raise CheckpointError(f"{path}: has no training state to resume from")
    model.load_state_dict(bundle["state_dict"])
    ts = bundle["training_state"]
    optimizer.load_state_dict(ts["optimizer"])
    if ts.get("grad_scaler"):  # absent in checkpoints from before mixed-precision support
        scaler.load_state_dict(ts["grad_scaler"])
    torch.set_rng_state(ts["torch_rng"])
    np.random.seed(int(ts["numpy_rng"][0]) % (2**32))
    random.seed(int(ts["python_rng_seed"]))
    model.to(device)
    return _State(ts["step"], ts["epoch"], ts["batch_in_epoch"], ts["best_cer"], list(ts["history"]), ts["elapsed_s"])


def _with_starting_shape(config: TrainConfig, start: dict | None, path: Path | None) -> TrainConfig:
    """Shape fields left unset take the starting checkpoint's; fields set must agree with it."""
    if start is None:
        return config
    recorded = ModelConfig.from_dict(start["model_config"])
    for name in SHAPE_FIELDS:
        asked, theirs = getattr(config, name), getattr(recorded, name)
        if asked is not None and asked != theirs:
            option = "--" + name.replace("_", "-")
            raise CheckpointError(f"{path}: its {option} is {theirs}, not {asked}; leave {option} out to use the checkpoint's")
    return replace(config, **{name: getattr(recorded, name) for name in SHAPE_FIELDS})


def _initialise(bundle: dict, path: Path, model, vocab: Vocabulary, device) -> None:
    """Load another run's weights to fine-tune from; its shape and alphabet must be this run's."""
    if bundle["vocab"] != vocab.to_list():
        raise CheckpointError(f"{path}: its alphabet differs from this version's; cannot start from it")
    load_weights(model, bundle, f"{path}: its model shape differs from this run's (--encoder-layers, --encoder-hidden, "
                                "--decoder-hidden, --attention-dim, --frontend)")
    model.to(device)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
