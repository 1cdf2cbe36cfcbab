"""One-file, self-describing checkpoints: settings, vocabulary, normalisation stats and weights.

Everything is stored as plain tensors, dicts, lists and numbers so that
``torch.load(path, weights_only=True)`` can read it safely.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .audio import FeatureConfig
from .decoding import DecodingOptions
from .errors import CheckpointError
from .lm import CharNgramLM
from .model import ModelConfig, Seq2Seq
from .text import Vocabulary
from .word_lm import WordNgramLM

FORMAT_VERSION = 1
DEFAULT_MODEL_NAME = "base.pt"
# Decoding each piece also played 5 % and 15 % slower and keeping the best-scoring transcript took 1.8-3.4 WER
# points off every sentence dev set of the shipped model (models/README.md, twelfth stretch). With the views'
# agreement below, more views help where they did not before: seven speeds from 20 % slower to 10 % faster
# took 0.4-1.4 points more off every sentence set than three with the agreement (thirtieth stretch), for 2.1
# times their decoding time (2.8 times that of three without it, 6.7 times that of one).
DEFAULT_SPEEDS = (1.0, 0.95, 0.9, 0.85, 0.8, 1.05, 1.1)
# Also decoding each piece cut to its speech ±0.3 s (when that leaves out pauses) took a second of quiet room around
# dev clips from 54.1 to 48.1 % WER and left the dev sets level or better but for Common Voice's +0.1 (models/README.md).
DEFAULT_TRIMMED_VIEW_S = 0.3
# Keeping the transcript that a piece's views agree on (a soft maximum over the views of each view's transcript
# scored on every view; `view_temperature`) instead of the single best-scoring view's took 0.6-1.1 WER points
# off the real sentence dev sets at three speeds (models/README.md, thirtieth stretch).
DEFAULT_VIEW_TEMPERATURE = 3.0


@dataclass
class LoadedModel:
    """A model ready for inference together with everything needed to feed it."""

    model: Seq2Seq
    vocab: Vocabulary
    feature_config: FeatureConfig
    mean: np.ndarray
    std: np.ndarray
    path: Path
    info: dict  # training details recorded in the checkpoint (steps, dev scores, ...)
    lm: "CharNgramLM | None" = None  # optional character language model for shallow fusion
    word_lm: "WordNgramLM | None" = None  # optional word language model that rescores completed words

    def decoding_options(self, beam_size: int | None = None, lm_weight: float | None = None,
                         word_lm_weight: float | None = None, speeds: tuple[float, ...] | None = None,
                         trimmed_view: bool | None = None, view_temperature: float | None = None) -> DecodingOptions:
        """Decoding settings for this model: unless given, the beam width, LM and CTC weights chosen when it was
        exported, and the playback speeds, trimmed-view margin and view temperature it records (else
        ``DEFAULT_SPEEDS``, ``DEFAULT_TRIMMED_VIEW_S`` and ``DEFAULT_VIEW_TEMPERATURE``); ``trimmed_view`` turns
        that view on or off."""
        recorded = self.info.get("decoding", {})
        if speeds is None:
            speeds = tuple(float(s) for s in recorded.get("speeds", DEFAULT_SPEEDS))
        trimmed_view_s = float(recorded.get("trimmed_view_s", DEFAULT_TRIMMED_VIEW_S))
        if trimmed_view is not None:
            trimmed_view_s = (trimmed_view_s or DEFAULT_TRIMMED_VIEW_S) if trimmed_view else 0.0
        if view_temperature is None:
            view_temperature = float(recorded.get("view_temperature", DEFAULT_VIEW_TEMPERATURE))
        if beam_size is None:
            beam_size = int(recorded.get("beam_size", DecodingOptions.beam_size))
        if lm_weight is None:
            lm_weight = float(recorded.get("lm_weight", 0.0))
        if word_lm_weight is None:
            word_lm_weight = float(recorded.get("word_lm_weight", 0.0))
        return DecodingOptions(beam_size=beam_size, ctc_weight=float(recorded.get("ctc_weight", DecodingOptions.ctc_weight)),
                               lm_weight=lm_weight if self.lm else 0.0,
                               word_lm_weight=word_lm_weight if self.word_lm else 0.0,
                               oov_penalty=float(recorded.get("oov_penalty", 0.0)), speeds=tuple(speeds),
                               trimmed_view_s=trimmed_view_s, view_temperature=view_temperature)


def save_checkpoint(path: Path, model: Seq2Seq, vocab: Vocabulary, feature_config: FeatureConfig,
                    mean: np.ndarray, std: np.ndarray, *, info: dict | None = None,
                    training_state: dict | None = None, half: bool = False) -> None:
    """Write atomically (see ``write_bundle``)."""
    weights = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
               for k, v in _unwrap(model).state_dict().items()}
    bundle = {
        "format_version": FORMAT_VERSION,
        "model_config": _unwrap(model).config.to_dict(),
        "feature_config": feature_config.to_dict(),
        "vocab": vocab.to_list(),
        "mean": torch.as_tensor(mean, dtype=torch.float32),
        "std": torch.as_tensor(std, dtype=torch.float32),
        "state_dict": weights,
        "info": info or {},
    }
    if training_state is not None:
        bundle["training_state"] = training_state
    write_bundle(path, bundle)


def write_bundle(path: Path, bundle: dict) -> None:
    """Save a checkpoint bundle atomically: a temp file in the same directory, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(bundle, temp)
    os.replace(temp, path)


def read_bundle(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles before it refuses them
            warnings.simplefilter("ignore")
            bundle = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path}: not a readable speechcli checkpoint ({_load_failure(path)})") from None
    if not isinstance(bundle, dict) or bundle.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a speechcli checkpoint of format version {FORMAT_VERSION}")
    return bundle


def load_model(path: str | Path | None = None, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a checkpoint for inference; ``None`` or ``"base"`` loads the shipped default model."""
    path = default_model_path() if path in (None, "base") else Path(path)
    bundle = read_bundle(path)
    vocab = Vocabulary.from_list(bundle["vocab"])
    model = Seq2Seq(ModelConfig.from_dict(bundle["model_config"]), blank_id=vocab.blank_id, sos_id=vocab.sos_id)
    load_weights(model, bundle, f"{path}: weights do not match the recorded model settings")
    model.to(device).eval()
    lm = CharNgramLM.from_dict(bundle["lm"]) if "lm" in bundle else None
    word_lm = WordNgramLM.from_dict(bundle["word_lm"]) if "word_lm" in bundle else None
    return LoadedModel(model, vocab, FeatureConfig.from_dict(bundle["feature_config"]),
                       bundle["mean"].numpy(), bundle["std"].numpy(), path, bundle.get("info", {}), lm, word_lm)


def load_weights(model: Seq2Seq, bundle: dict, mismatch: str) -> None:
    """Load a bundle's weights (fp16 ones as float32); ``mismatch`` starts the error when they do not fit."""
    state = {k: v.float() if v.is_floating_point() else v for k, v in bundle["state_dict"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(f"{mismatch} ({str(error)[:120]})") from None


def default_model_path() -> Path:
    """The shipped model: package data after ``pip install``, else ``models/`` of a source checkout."""
    try:
        from importlib.resources import files

        candidate = Path(str(files("speechcli.models") / DEFAULT_MODEL_NAME))
        if candidate.is_file():
            return candidate
    except (ModuleNotFoundError, TypeError):
        pass
    candidate = Path(__file__).resolve().parent.parent / "models" / DEFAULT_MODEL_NAME
    if candidate.is_file():
        return candidate
    raise CheckpointError("no default model found (models/base.pt is missing); pass --model PATH")


def _load_failure(path: Path) -> str:
    """Why torch.load refused a file, in words a user can act on (torch's own text is pages long)."""
    try:
        with open(path, "rb") as file:
            head = file.read(4)
    except OSError as error:
        return error.strerror or type(error).__name__
    if head == b"PK\x03\x04":  # torch's zip format
        return "a PyTorch file that holds more than plain tensors, or a damaged one"
    if head[:1] == b"\x80":  # a pickle protocol marker
        return "a Python pickle, not a PyTorch checkpoint"
    return "not a PyTorch file"


def _unwrap(model: torch.nn.Module) -> Seq2Seq:
    return model.module if hasattr(model, "module") else model
