"""Attention pictures: a PNG over the spectrogram (matplotlib, imported lazily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_attention(attention: np.ndarray, characters: list[str], features: np.ndarray, frame_s: float,
                   encoder_frame_s: float, out_path: Path, title: str = "") -> None:
    """Draw the log-mel spectrogram above the attention map (characters × seconds) into ``out_path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = len(features) * frame_s
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6, seconds * 1.2), 3 + 0.18 * len(characters)), sharex=True,
                                      gridspec_kw={"height_ratios": [1, max(1.5, len(characters) / 12)]})
    top.imshow(features.T, origin="lower", aspect="auto", extent=(0, seconds, 0, features.shape[1]), cmap="magma")
    top.set_ylabel("mel bin")
    top.set_title(title)
    extent = (0, attention.shape[1] * encoder_frame_s, len(characters) - 0.5, -0.5)
    bottom.imshow(attention, aspect="auto", extent=extent, cmap="viridis", interpolation="nearest")
    bottom.set_yticks(range(len(characters)))
    bottom.set_yticklabels([c if c != " " else "␣" for c in characters], fontsize=7)
    bottom.set_xlabel("time (s)")
    bottom.set_ylabel("output character")
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
