"""speechcli: a small, trainable, scriptable speech recognizer (attention-LSTM with joint CTC).

Python API (the CLI is a thin layer over it)::

    import speechcli
    model = speechcli.load_model()            # the shipped English model, or a path
    print(speechcli.transcribe(model, "talk.wav").text)

Heavy modules (torch) load on first use, so ``import speechcli`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["load_model", "transcribe", "transcribe_many", "DecodingOptions", "__version__"]


def __getattr__(name: str):
    if name == "load_model":
        from .checkpoint import load_model

        return load_model
    if name in ("transcribe", "transcribe_many"):
        from . import transcription as module

        return getattr(module, name)
    if name == "DecodingOptions":
        from .decoding import DecodingOptions

        return DecodingOptions
    raise AttributeError(f"module 'speechcli' has no attribute {name!r}")
