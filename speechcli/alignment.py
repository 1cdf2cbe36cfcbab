"""Word timings: CTC forced alignment of the decoded characters, or the attention peaks.

Both give times in encoder frames (40 ms). CTC forced alignment is the default: measured on
synthetic speech (bench/long_audio.py) it lands word boundaries closer to where the words
are than the attention peaks do, and it cannot wander when the attention does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .text import Vocabulary


@dataclass
class WordSpan:
    text: str
    start_frame: int  # first encoder frame of the word
    end_frame: int  # one past its last frame
    positions: list[int]  # indices of its characters in the token sequence


def word_positions(tokens: list[int], vocab: Vocabulary) -> list[tuple[str, list[int]]]:
    """Split a token sequence at spaces: (word text, character positions) for each word."""
    space = vocab.encode(" ")[0]
    words, current = [], []
    for position, token in enumerate(list(tokens) + [space]):
        if token != space:
            current.append(position)
        elif current:
            words.append((vocab.decode([tokens[p] for p in current]), current))
            current = []
    return words


def ctc_word_spans(ctc_log_probs: np.ndarray | torch.Tensor, tokens: list[int], vocab: Vocabulary) -> list[WordSpan] | None:
    """Word spans from the Viterbi CTC alignment of ``tokens`` to ``ctc_log_probs`` (frames, vocab).

    Returns None when the alignment is impossible (more characters, counting repeats, than frames).
    """
    words = word_positions(tokens, vocab)
    if not words:
        return []
    log_probs = torch.as_tensor(ctc_log_probs, dtype=torch.float32)
    frames = log_probs.shape[0]
    repeats = sum(1 for a, b in zip(tokens, tokens[1:]) if a == b)
    if len(tokens) + repeats > frames:
        return None
    import torchaudio.functional as F

    targets = torch.tensor([tokens], dtype=torch.int32)
    path, _ = F.forced_align(log_probs[None], targets, torch.tensor([frames]), torch.tensor([len(tokens)]),
                             blank=vocab.blank_id)
    path = path[0].tolist()
    # frames of each token position: walk the path, a new position starts at each change of label
    # (or after a blank between equal labels)
    token_frames: list[list[int]] = [[] for _ in tokens]
    position, previous = -1, vocab.blank_id
    for frame, label in enumerate(path):
        if label != vocab.blank_id and (label != previous or position < 0):
            position += 1
        if label != vocab.blank_id:
            token_frames[position].append(frame)
        previous = label
    spans = []
    for text, positions in words:
        first, last = token_frames[positions[0]], token_frames[positions[-1]]
        spans.append(WordSpan(text, first[0], last[-1] + 1, positions))
    return spans


def attention_word_spans(attention: np.ndarray, tokens: list[int], vocab: Vocabulary) -> list[WordSpan]:
    """Word spans from the attention peak of each character (``attention``: (tokens[+1], frames))."""
    spans = []
    for text, positions in word_positions(tokens, vocab):
        peaks = [int(np.argmax(attention[p])) for p in positions]
        spans.append(WordSpan(text, min(peaks), max(peaks) + 1, positions))
    return spans


def word_confidence(token_log_probs: list[float], positions: list[int]) -> float:
    """The probability of the word's least likely character under the decoder."""
    if not token_log_probs:
        return 1.0
    return math.exp(min(token_log_probs[p] for p in positions if p < len(token_log_probs)))
