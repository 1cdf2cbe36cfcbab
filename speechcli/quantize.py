"""int8 dynamic quantisation of a trained model for faster CPU inference.

The LSTMs and the large linear layers get int8 weights; their inputs are quantised on the fly
(per call), so no calibration data is needed. The attention's per-frame layers stay float:
they run on (hypotheses × frames) activations every decoder step, where quantising the
activations costs about what the int8 matrix product saves. Measured by bench/speed.py and
bench/accuracy.py (``--int8``): the encoder runs about 3× faster; decoding, which is dominated
by the attention, changes little.
"""

from __future__ import annotations

import copy
import warnings

import torch

from .errors import SpeechCLIError
from .model import Seq2Seq

# submodules quantised: every LSTM and the linear layers applied once per frame or per step
QUANTISED_MODULES = ("encoder.project", "encoder.lstm", "ctc_head", "decoder.cell", "decoder.output")


def quantize_int8(model: Seq2Seq) -> Seq2Seq:
    """Return an int8 dynamically quantised copy of ``model`` (CPU only, inference only).

    Raises :class:`SpeechCLIError` when this PyTorch build has no quantised CPU kernels.
    """
    if next(model.parameters()).device.type != "cpu":
        raise SpeechCLIError("int8 quantisation runs on the CPU only; use --device cpu")
    try:
        from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic
    except ImportError:
        raise SpeechCLIError("this PyTorch has no dynamic quantisation (torch.ao.quantization)") from None
    if set(torch.backends.quantized.supported_engines) <= {"none"}:
        raise SpeechCLIError("this PyTorch has no quantised CPU kernels")
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao on every call
        warnings.simplefilter("ignore")
        present = dict(model.named_modules())  # encoder.project exists with the "conv2d" front end only
        quantised = quantize_dynamic(copy.deepcopy(model).eval(),
                                     {name: default_dynamic_qconfig for name in QUANTISED_MODULES if name in present},
                                     dtype=torch.qint8)
    return quantised
