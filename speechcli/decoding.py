"""From encoder states to text: greedy search and beam search with joint CTC/attention scores."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .model import Seq2Seq

NEG_INF = -1e30


@dataclass(frozen=True)
class DecodingOptions:
    beam_size: int = 4  # 1 = greedy
    ctc_weight: float = 0.3  # weight of the CTC prefix score in the beam's joint score
    length_bonus: float = 0.0  # added per output character when ranking finished hypotheses
    candidates_per_beam: int = 6  # attention's top-k characters that CTC rescores for each hypothesis


@dataclass
class Hypothesis:
    tokens: list[int]
    score: float  # joint log-probability used for ranking
    token_log_probs: list[float] = field(default_factory=list)  # attention log-probability of each token
    attention: list[np.ndarray] = field(default_factory=list)  # one (frames,) alignment per token (+ <eos>)


@torch.inference_mode()
def decode_batch(model: Seq2Seq, features: torch.Tensor, lengths: torch.Tensor, options: DecodingOptions) -> list[Hypothesis]:
    """Decode a padded batch of normalised features; one hypothesis per utterance."""
    states, enc_lengths, mask = model.encode(features, lengths)
    if options.beam_size <= 1:
        return greedy_search(model, states, enc_lengths, mask)
    ctc = model.ctc_log_probs(states).cpu().double().numpy()
    return [
        beam_search(model, states[i : i + 1, : enc_lengths[i]], ctc[i, : enc_lengths[i]], options)
        for i in range(states.shape[0])
    ]


def greedy_search(model: Seq2Seq, states, enc_lengths, mask) -> list[Hypothesis]:
    """Batched: each step takes the most likely character; stops at <eos> or one char per frame."""
    decoder, eos = model.decoder, model.sos_id
    batch = states.shape[0]
    keys = decoder.attention.keys(states)
    state = decoder.initial_state(states, mask)
    tokens = torch.full((batch,), model.sos_id, dtype=torch.long, device=states.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=states.device)
    hyps = [Hypothesis([], 0.0) for _ in range(batch)]
    for _ in range(int(enc_lengths.max())):
        logits, state = decoder.step(tokens, state, keys, states, mask)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        best_log_prob, tokens = log_probs.max(dim=-1)
        weights = state.weights.float().cpu().numpy()
        for i in torch.nonzero(~finished).flatten().tolist():
            hyp = hyps[i]
            hyp.attention.append(weights[i, : enc_lengths[i]])
            hyp.score += float(best_log_prob[i])
            if int(tokens[i]) == eos or len(hyp.tokens) >= int(enc_lengths[i]):
                finished[i] = True
            else:
                hyp.tokens.append(int(tokens[i]))
                hyp.token_log_probs.append(float(best_log_prob[i]))
        if bool(finished.all()):
            break
    return hyps


@dataclass
class _Beam:
    """Hypotheses in flight for one utterance, as parallel arrays/tensors."""

    tokens: list[list[int]]
    att_scores: np.ndarray  # summed attention log-probs
    ctc_scores: np.ndarray  # CTC prefix log-probs
    ctc_r: np.ndarray  # (2, frames, hyps): CTC forward variables r_n, r_b of each prefix
    token_log_probs: list[list[float]]
    attention: list[list[np.ndarray]]


def beam_search(model: Seq2Seq, states: torch.Tensor, ctc: np.ndarray, options: DecodingOptions) -> Hypothesis:
    """Beam search for one utterance, scoring each prefix by (1−λ)·attention + λ·CTC prefix score.

    The CTC prefix score (Watanabe et al. 2017) stops the attention decoder from skipping or
    repeating words and from ending early.
    """
    decoder, eos, blank = model.decoder, model.sos_id, model.blank_id
    frames, beam_size, weight = ctc.shape[0], options.beam_size, options.ctc_weight
    mask = torch.ones(1, frames, dtype=torch.bool, device=states.device)
    keys = decoder.attention.keys(states)
    state = decoder.initial_state(states, mask)
    empty_r = np.stack([np.full(frames, NEG_INF), np.cumsum(ctc[:, blank])])[:, :, None]
    beam = _Beam([[]], np.zeros(1), np.zeros(1), empty_r, [[]], [[]])
    finished: list[Hypothesis] = []
    for _ in range(frames):
        n_hyps = len(beam.tokens)
        last = torch.tensor([t[-1] if t else model.sos_id for t in beam.tokens], device=states.device)
        logits, state = decoder.step(last, state, keys.expand(n_hyps, -1, -1), states.expand(n_hyps, -1, -1),
                                     mask.expand(n_hyps, -1))
        att_log_probs = torch.log_softmax(logits.float(), dim=-1).cpu().double().numpy()
        weights = state.weights.float().cpu().numpy()
        top_k = min(options.candidates_per_beam, att_log_probs.shape[1] - 1)
        candidates = np.argsort(-att_log_probs, axis=1)[:, : top_k + 1]
        rows, chars, scores, ctc_scores, ctc_r = _score_candidates(beam, candidates, att_log_probs, ctc, eos, blank, weight)
        order = np.argsort(-scores)[:beam_size]
        survivors = []
        for j in order:
            hyp_index, char = rows[j], chars[j]
            tokens = beam.tokens[hyp_index] + ([] if char == eos else [char])
            token_lps = beam.token_log_probs[hyp_index] + [att_log_probs[hyp_index, char]]
            attention = beam.attention[hyp_index] + [weights[hyp_index]]
            if char == eos:
                bonus = options.length_bonus * len(tokens)
                finished.append(Hypothesis(tokens, float(scores[j]) + bonus, token_lps[:-1], attention))
            else:
                survivors.append((j, hyp_index, tokens, token_lps, attention))
        best_finished = max((h.score for h in finished), default=-np.inf)
        if not survivors or (len(finished) >= beam_size and best_finished >= scores[order[0]] + options.length_bonus * frames):
            break
        keep = [s[0] for s in survivors]
        state = state.select(torch.tensor([s[1] for s in survivors], device=states.device))
        beam = _Beam(
            tokens=[s[2] for s in survivors],
            att_scores=np.array([beam.att_scores[rows[j]] + att_log_probs[rows[j], chars[j]] for j in keep]),
            ctc_scores=ctc_scores[keep],
            ctc_r=ctc_r[:, :, keep],
            token_log_probs=[s[3] for s in survivors],
            attention=[s[4] for s in survivors],
        )
    if not finished:  # ran out of frames: take the best unfinished hypothesis as it stands
        finished.append(Hypothesis(beam.tokens[0], float(beam.att_scores[0]), beam.token_log_probs[0], beam.attention[0]))
    return max(finished, key=lambda h: h.score)


def _score_candidates(beam: _Beam, candidates, att_log_probs, ctc, eos, blank, weight):
    """Joint scores of every (hypothesis, candidate character) pair, flattened."""
    n_hyps, n_cands = candidates.shape
    rows = np.repeat(np.arange(n_hyps), n_cands)
    chars = candidates.reshape(-1)
    att = beam.att_scores[rows] + att_log_probs[rows, chars]
    last_chars = np.array([beam.tokens[r][-1] if beam.tokens[r] else -1 for r in rows])
    ctc_scores, ctc_r = ctc_prefix_scores(beam.ctc_r[:, :, rows], chars, last_chars, ctc, blank,
                                          is_empty=np.array([not beam.tokens[r] for r in rows]))
    at_eos = chars == eos
    full = np.logaddexp(beam.ctc_r[0, -1, rows], beam.ctc_r[1, -1, rows])
    ctc_scores = np.where(at_eos, full, ctc_scores)
    joint = (1 - weight) * att + weight * ctc_scores
    return rows, chars, joint, ctc_scores, ctc_r


def ctc_prefix_scores(prev_r, chars, last_chars, ctc, blank, is_empty):
    """CTC prefix probabilities of g+c for many (g, c) pairs at once, without a loop over time.

    ``prev_r`` (2, frames, n) holds r_n, r_b of each prefix g. Both recursions
    r_n(t) = logaddexp(r_n(t-1), phi(t-1)) + x_t(c) and r_b(t) = logaddexp(r_b(t-1), r_n(t-1)) + x_t(blank)
    are first-order linear in probability space, so each is one cumulative log-sum-exp.
    Returns (prefix scores (n,), new forward variables (2, frames, n)).
    """
    frames = ctc.shape[0]
    safe_chars = np.where(chars < 0, 0, chars)
    x_c = ctc[:, safe_chars]  # (frames, n)
    x_b = ctc[:, blank][:, None]
    prev_total = np.logaddexp(prev_r[0], prev_r[1])
    phi = np.where((chars == last_chars)[None, :], prev_r[1], prev_total)
    start = np.where(is_empty, x_c[0], NEG_INF)  # r_n(0): only the empty prefix can emit at frame 0
    cum_c = np.concatenate([np.zeros((1, len(chars))), np.cumsum(x_c[1:], axis=0)])
    steps_n = np.concatenate([start[None, :], phi[:-1] - cum_c[:-1]])
    r_n = np.logaddexp.accumulate(steps_n, axis=0) + cum_c
    cum_b = np.concatenate([np.zeros((1, 1)), np.cumsum(x_b[1:], axis=0)])
    steps_b = np.concatenate([np.full((1, len(chars)), NEG_INF), r_n[:-1] - cum_b[:-1]])
    r_b = np.logaddexp.accumulate(steps_b, axis=0) + cum_b
    psi = np.logaddexp(start, np.logaddexp.reduce(phi[:-1] + x_c[1:], axis=0)) if frames > 1 else start
    return np.maximum(psi, NEG_INF), np.stack([r_n, r_b])
