"""The attention-LSTM encoder-decoder (Listen, Attend and Spell) with a joint CTC head.

Encoder: a strided convolution over time (×4) then a stack of BiLSTMs. Decoder: one LSTM cell
fed [previous character embedding; previous context], attending over the encoder states with
location-aware attention (Chorowski et al. 2015). Loss: λ·CTC + (1−λ)·label-smoothed CE.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    n_mels: int = 80
    conv_channels: int = 32
    encoder_layers: int = 3
    encoder_hidden: int = 256  # per direction
    attention_dim: int = 256
    location_filters: int = 10
    location_kernel: int = 31  # frames of the previous alignment each filter sees (×4 subsampled)
    embedding_dim: int = 64
    decoder_hidden: int = 320
    dropout: float = 0.15
    ctc_weight: float = 0.3
    label_smoothing: float = 0.1
    # "stack": one strided convolution over time (kernel = stride = 4, i.e. 4 stacked frames and a
    # linear projection). "conv2d": two ReLU Conv2d layers (kernel 3, stride 2); on English it sat on
    # the all-blank CTC plateau for thousands of steps where "stack" left it after ~150, at 1/3 the cost.
    frontend: str = "stack"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        return cls(**{"frontend": "conv2d", **values})  # checkpoints from before the field had none


SUBSAMPLING = 4


def subsampled_lengths(lengths: torch.Tensor, frontend: str = "stack") -> torch.Tensor:
    """Encoder frames left after the front end's ×4 time subsampling."""
    if frontend == "conv2d":
        return ((lengths - 1) // 2 - 1) // 2  # two kernel-3, stride-2 convolutions
    return lengths // SUBSAMPLING


class Encoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.frontend = config.frontend
        width = 2 * config.encoder_hidden
        if config.frontend == "stack":
            self.conv = nn.Conv1d(config.n_mels, width, kernel_size=SUBSAMPLING, stride=SUBSAMPLING)
        elif config.frontend == "conv2d":
            c = config.conv_channels
            self.conv = nn.Sequential(nn.Conv2d(1, c, 3, stride=2), nn.ReLU(), nn.Conv2d(c, c, 3, stride=2), nn.ReLU())
            self.project = nn.Linear(c * (((config.n_mels - 1) // 2 - 1) // 2), width)
        else:
            raise ValueError(f"unknown encoder front end {config.frontend!r}")
        self.lstm = nn.LSTM(width, config.encoder_hidden, num_layers=config.encoder_layers, batch_first=True,
                            bidirectional=True, dropout=config.dropout if config.encoder_layers > 1 else 0.0)
        self.dropout = nn.Dropout(config.dropout)

    def subsample(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, frames, mels) → (batch, frames/4, 2·hidden)."""
        if self.frontend == "stack":
            return self.conv(features.transpose(1, 2)).transpose(1, 2)
        x = self.conv(features.unsqueeze(1))  # (batch, channels, frames/4, mels/4)
        batch, channels, frames, mels = x.shape
        return self.project(x.permute(0, 2, 1, 3).reshape(batch, frames, channels * mels))

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, frames, mels) → encoder states (batch, frames/4, 2·hidden) and their lengths."""
        x = self.subsample(features)
        frames = x.shape[1]
        out_lengths = subsampled_lengths(lengths, self.frontend).clamp(min=1, max=frames)
        x = self.dropout(x)
        if type(self.lstm) is nn.LSTM:
            states = self._bidirectional_lstm(x, out_lengths)
        else:  # e.g. int8 dynamically quantised: its own module
            states = self._packed_lstm(x, out_lengths)
        valid = torch.arange(frames, device=x.device)[None, :, None] < out_lengths[:, None, None]
        return self.dropout(states * valid), out_lengths

    def _bidirectional_lstm(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``self.lstm`` over padded input, exact on every utterance's own frames.

        Runs each layer and direction unpacked (the backward direction on each utterance reversed
        within its own length, so padding only ever follows real frames): on CPU this takes
        oneDNN's LSTM kernels, 2-2.5× faster for training than a packed sequence.
        """
        lstm = self.lstm
        for layer in range(lstm.num_layers):
            if layer > 0:
                x = F.dropout(x, lstm.dropout, self.training)
            forward = self._one_direction(x, layer, "")
            backward = reverse_within(self._one_direction(reverse_within(x, lengths), layer, "_reverse"), lengths)
            x = torch.cat([forward, backward], dim=2)
        return x

    def _packed_lstm(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``self.lstm`` in one call on a packed sequence, padded back to ``x``'s length."""
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        states, _ = self.lstm(packed)
        return nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=x.shape[1])[0]

    def _one_direction(self, x: torch.Tensor, layer: int, suffix: str) -> torch.Tensor:
        lstm = self.lstm
        weights = [getattr(lstm, f"{name}_l{layer}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        zeros = x.new_zeros(1, x.shape[0], lstm.hidden_size)
        output, _, _ = torch._VF.lstm(x, (zeros, zeros), weights, True, 1, 0.0, self.training, False, True)
        return output


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each (batch, time, ...) sequence within its own length; padding stays in place."""
    steps = torch.arange(x.shape[1], device=x.device)[None, :]
    source = lengths[:, None].to(x.device) - 1 - steps
    source = torch.where(source >= 0, source, steps)
    return x.gather(1, source[:, :, None].expand(-1, -1, x.shape[2]))


class LocationAwareAttention(nn.Module):
    """score_ij = wᵀ tanh(W s_i + V h_j + U (F * α_{i-1})_j), masked over padding."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        encoder_dim = 2 * config.encoder_hidden
        self.query = nn.Linear(config.decoder_hidden, config.attention_dim, bias=False)
        self.keys = nn.Linear(encoder_dim, config.attention_dim)
        self.location_conv = nn.Conv1d(1, config.location_filters, config.location_kernel,
                                       padding=config.location_kernel // 2, bias=False)
        self.location = nn.Linear(config.location_filters, config.attention_dim, bias=False)
        self.score = nn.Linear(config.attention_dim, 1, bias=False)

    def forward(self, query, keys, values, mask, previous_weights):
        """Return (context (batch, enc_dim), weights (batch, frames)); ``keys`` = self.keys(values)."""
        location = self.location(self.location_conv(previous_weights.unsqueeze(1)).transpose(1, 2))
        # this (batch, frames, dim) tensor dominates a beam step: summed in place, tanh in place where _tanh_ can
        hidden = _tanh_((self.query(query).unsqueeze(1) + keys).add_(location))
        energy = self.score(hidden).squeeze(2)
        energy = energy.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(energy, dim=1)
        context = torch.bmm(weights.unsqueeze(1), values).squeeze(1)
        return context, weights


def _tanh_(x: torch.Tensor) -> torch.Tensor:
    """tanh of x (in place when no gradient is needed).

    On CPU numpy's SIMD tanh does the work: torch's float32 CPU tanh ran ~8× slower here
    (1.6 M values: 5–7 ms against 0.6 ms), and this tanh is the largest single cost of a
    beam search step and a large one of a training step. The two agree to within 2 ulps.
    """
    if x.device.type != "cpu" or x.dtype != torch.float32:
        return x.tanh_()
    if x.requires_grad:
        return _CpuTanh.apply(x)
    values = x.numpy()
    np.tanh(values, out=values)
    return x


class _CpuTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = torch.from_numpy(np.tanh(x.detach().numpy()))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


@dataclass
class DecoderState:
    hidden: torch.Tensor
    cell: torch.Tensor
    context: torch.Tensor
    weights: torch.Tensor  # previous alignment, (batch, frames)

    def select(self, index: torch.Tensor) -> "DecoderState":
        return DecoderState(self.hidden[index], self.cell[index], self.context[index], self.weights[index])


class Decoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        encoder_dim = 2 * config.encoder_hidden
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.cell = nn.LSTMCell(config.embedding_dim + encoder_dim, config.decoder_hidden)
        self.attention = LocationAwareAttention(config)
        self.output = nn.Sequential(nn.Linear(config.decoder_hidden + encoder_dim, config.decoder_hidden), nn.Tanh(),
                                    nn.Dropout(config.dropout), nn.Linear(config.decoder_hidden, config.vocab_size))
        self.dropout = nn.Dropout(config.dropout)

    def initial_state(self, encoder_states: torch.Tensor, mask: torch.Tensor) -> DecoderState:
        batch = encoder_states.shape[0]
        zeros = encoder_states.new_zeros(batch, self.cell.hidden_size)
        first_frame = torch.zeros_like(mask, dtype=encoder_states.dtype)
        first_frame[:, 0] = 1.0  # the alignment starts at the beginning of the audio
        return DecoderState(zeros, zeros.clone(), encoder_states.new_zeros(batch, encoder_states.shape[2]), first_frame)

    def step(self, tokens, state: DecoderState, keys, values, mask) -> tuple[torch.Tensor, DecoderState]:
        """One output step: previous tokens (batch,) → logits (batch, vocab) and the new state."""
        inputs = torch.cat([self.dropout(self.embedding(tokens)), state.context], dim=1)
        hidden, cell = self.cell(inputs, (state.hidden, state.cell))
        context, weights = self.attention(hidden, keys, values, mask, state.weights)
        logits = self.output(torch.cat([hidden, context], dim=1))
        return logits, DecoderState(hidden, cell, context, weights)


class Seq2Seq(nn.Module):
    def __init__(self, config: ModelConfig, blank_id: int = 0, sos_id: int = 1):
        super().__init__()
        self.config = config
        self.blank_id, self.sos_id = blank_id, sos_id
        self.encoder = Encoder(config)
        self.ctc_head = nn.Linear(2 * config.encoder_hidden, config.vocab_size)
        self.decoder = Decoder(config)

    def encode(self, features, lengths):
        """Return encoder states, their lengths and the padding mask (True on real frames)."""
        states, out_lengths = self.encoder(features, lengths)
        mask = torch.arange(states.shape[1], device=states.device)[None, :] < out_lengths[:, None]
        return states, out_lengths, mask

    def ctc_log_probs(self, states: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.ctc_head(states).float(), dim=-1)

    def forward(self, features, feature_lengths, targets, target_lengths) -> dict[str, torch.Tensor]:
        """Teacher-forced training pass; returns the joint loss and its parts."""
        states, lengths, mask = self.encode(features, feature_lengths)
        ctc_loss = F.ctc_loss(self.ctc_log_probs(states).transpose(0, 1), targets, lengths, target_lengths,
                              blank=self.blank_id, zero_infinity=True)
        logits = self.teacher_forced_logits(states, mask, targets, target_lengths)
        outputs = self.targets_with_eos(targets, target_lengths)
        ce_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), outputs.reshape(-1),
                                  ignore_index=-100, label_smoothing=self.config.label_smoothing)
        weight = self.config.ctc_weight
        return {"loss": weight * ctc_loss + (1 - weight) * ce_loss, "ctc": ctc_loss.detach(), "attention": ce_loss.detach()}

    def teacher_forced_logits(self, states, mask, targets, target_lengths) -> torch.Tensor:
        batch, steps = targets.shape[0], targets.shape[1] + 1
        inputs = torch.cat([targets.new_full((batch, 1), self.sos_id), targets], dim=1)
        keys = self.decoder.attention.keys(states)
        state = self.decoder.initial_state(states, mask)
        all_logits = []
        for i in range(steps):
            logits, state = self.decoder.step(inputs[:, i], state, keys, states, mask)
            all_logits.append(logits)
        return torch.stack(all_logits, dim=1)

    def targets_with_eos(self, targets, target_lengths) -> torch.Tensor:
        """Targets followed by <eos>, with -100 (ignored) on padding."""
        batch, length = targets.shape
        outputs = torch.cat([targets, targets.new_zeros(batch, 1)], dim=1)
        positions = torch.arange(length + 1, device=targets.device)[None, :]
        outputs = torch.where(positions == target_lengths[:, None], torch.full_like(outputs, self.sos_id), outputs)
        return torch.where(positions > target_lengths[:, None], torch.full_like(outputs, -100), outputs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
