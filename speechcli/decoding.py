"""From encoder states to text: greedy search and beam search with joint CTC/attention scores.

Both searches decode many utterances at once: every decoder step is one call on all
hypotheses of all utterances in flight, so the decoder's weights are read once per step, not
once per utterance and hypothesis. Utterances are decoded in groups of similar length (the
attention's cost grows with the padded frame axis), ended hypotheses and utterances leave the
batch, and an utterance's result does not depend on what else is in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .lm import EOS, CharNgramLM, symbol_code, vocab_to_lm_index
from .model import DecoderState, Seq2Seq
from .word_lm import END, WordNgramLM

NEG_INF = -1e30
COMPACT_FRACTION = 0.25  # greedy: drop finished utterances from the batch once they are this share of its rows
# utterances decoded together differ in length by at most this factor: padding costs attention
# work, more groups cost decoder steps (measured on 30 dev_synth clips: 1.5 and 2.0 are best)
BEAM_GROUP_RATIO = 1.5
GREEDY_GROUP_RATIO = 2.0


@dataclass(frozen=True)
class DecodingOptions:
    beam_size: int = 4  # 1 = greedy
    ctc_weight: float = 0.3  # weight of the CTC prefix score in the beam's joint score
    length_bonus: float = 0.0  # added per output character when ranking finished hypotheses
    candidates_per_beam: int = 6  # attention's top-k characters that CTC rescores for each hypothesis
    lm_weight: float = 0.0  # weight of the character LM (shallow fusion; beam search only, needs an LM)
    word_lm_weight: float = 0.0  # weight of the word LM, which rescores each completed word (needs a word LM)
    oov_penalty: float = 0.0  # added for each completed word the word LM does not know
    # playback speeds at which transcription decodes each piece, keeping the best-scoring transcript
    # (test-time augmentation); the decode functions below see one speed's features at a time
    speeds: tuple[float, ...] = (1.0,)
    # when > 0, each piece is also decoded cut to its speech and this many seconds around it, and that transcript
    # competes with the others: pauses around a short utterance shift its per-utterance feature mean
    trimmed_view_s: float = 0.0
    # when > 0 and views disagree, each view's transcript is scored on every view, and the one with the best
    # soft maximum over the views (log-mean-exp at this temperature) of those scores, plus its LM score, is
    # kept; 0 keeps the transcript of the single best-scoring view
    view_temperature: float = 0.0


@dataclass
class Hypothesis:
    tokens: list[int]
    score: float  # joint log-probability used for ranking
    token_log_probs: list[float] = field(default_factory=list)  # attention log-probability of each token
    attention: list[np.ndarray] = field(default_factory=list)  # one (frames,) alignment per token (+ <eos>)


@torch.inference_mode()
def decode_batch(model: Seq2Seq, features: torch.Tensor, lengths: torch.Tensor, options: DecodingOptions,
                 lm: "CharNgramLM | None" = None, word_lm: "WordNgramLM | None" = None) -> list[Hypothesis]:
    """Decode a padded batch of normalised features; one hypothesis per utterance."""
    return decode_encoded(model, *model.encode(features, lengths), options, lm, word_lm)[0]


@torch.inference_mode()
def decode_encoded(model: Seq2Seq, states: torch.Tensor, enc_lengths: torch.Tensor, mask: torch.Tensor,
                   options: DecodingOptions, lm: "CharNgramLM | None" = None,
                   word_lm: "WordNgramLM | None" = None) -> tuple[list[Hypothesis], np.ndarray]:
    """Decode encoder output; also return the CTC log-probs (batch, frames, vocab), float64."""
    ctc = model.ctc_log_probs(states).cpu().double().numpy()
    if options.beam_size <= 1:
        return greedy_search(model, states, enc_lengths, mask), ctc
    return beam_search_batch(model, states, enc_lengths, ctc, options, lm, word_lm), ctc


@torch.inference_mode()
def transcript_scores(model: Seq2Seq, states: torch.Tensor, enc_lengths: torch.Tensor, ctc: np.ndarray,
                      pairs: list[tuple[int, list[int]]], ctc_weight: float) -> np.ndarray:
    """(1−λ)·attention + λ·CTC log-probability of given transcripts, each on one utterance's encoder states.

    ``pairs`` holds (utterance row, token ids without <eos>); the attention term includes <eos>, as in
    the beam search's score of an ended hypothesis, and the CTC term is the whole transcript's
    log-likelihood (its prefix score at <eos>). ``ctc`` (batch, frames, vocab) are the CTC log-probs.
    """
    rows = torch.tensor([row for row, _ in pairs], device=states.device)
    lengths = enc_lengths[rows]
    frames = int(lengths.max())
    mask = torch.arange(frames, device=states.device)[None, :] < lengths[:, None]
    target_lengths = torch.tensor([len(tokens) for _, tokens in pairs])
    targets = torch.zeros(len(pairs), max(1, int(target_lengths.max())), dtype=torch.long)
    for i, (_, tokens) in enumerate(pairs):
        targets[i, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
    logits = model.teacher_forced_logits(states[rows, :frames], mask, targets.to(states.device),
                                         target_lengths.to(states.device))
    outputs = model.targets_with_eos(targets, target_lengths)
    log_probs = torch.log_softmax(logits.float().cpu(), dim=-1).gather(2, outputs.clamp(min=0)[:, :, None]).squeeze(2)
    attention = torch.where(outputs >= 0, log_probs, 0.0).sum(dim=1).double()
    ctc_rows = torch.from_numpy(np.ascontiguousarray(ctc[rows.cpu().numpy(), :frames])).transpose(0, 1)
    ctc_scores = -torch.nn.functional.ctc_loss(ctc_rows, targets, lengths.cpu(), target_lengths, blank=model.blank_id,
                                               reduction="none")
    # a transcript too long for a view's frames is impossible under CTC: NEG_INF, as in the beam, not -inf
    return ((1 - ctc_weight) * attention + ctc_weight * ctc_scores.double().clamp(min=NEG_INF)).numpy()


def soft_maximum(scores: np.ndarray, temperature: float) -> np.ndarray:
    """T·log(mean(exp(scores / T))) over the last axis: the mean at large T, the maximum as T → 0."""
    top = scores.max(axis=-1)
    return top + temperature * np.log(np.exp((scores - top[..., None]) / temperature).mean(axis=-1))


def _length_groups(lengths: np.ndarray, ratio: float) -> list[np.ndarray]:
    """Utterance indices in groups of similar length (longest ≤ ratio × shortest), shortest first.

    Rows of one decoder call share a padded frame axis, so a batch mixing 2 s and 8 s pieces
    would spend most of its attention on padding; decoding each group on its own avoids that.
    """
    order = np.argsort(lengths, kind="stable")
    groups, current = [], [order[0]]
    for index in order[1:]:
        if lengths[index] > ratio * lengths[current[0]]:
            groups.append(np.array(current))
            current = []
        current.append(index)
    groups.append(np.array(current))
    return groups


def _by_groups(search, ratio: float, states: torch.Tensor, lengths: np.ndarray, *per_utterance) -> list[Hypothesis]:
    """Run ``search(states, lengths, *per_utterance)`` on each length group; results in input order."""
    results: list[Hypothesis | None] = [None] * len(lengths)
    for group in _length_groups(lengths, ratio):
        frames = int(lengths[group].max())
        index = torch.from_numpy(group).to(states.device)
        parts = [x[group][:, :frames] for x in per_utterance]
        for utt, hyp in zip(group, search(states.index_select(0, index)[:, :frames], lengths[group], *parts)):
            results[utt] = hyp
    return results


def _encoder_rows(utts: np.ndarray, lengths: np.ndarray, all_keys, states, mask):
    """Attention keys, encoder states and mask for decoder rows of utterances ``utts``, cut to their longest."""
    frames = int(lengths[utts].max())
    index = torch.from_numpy(utts).to(states.device)
    return tuple(t[:, :frames].index_select(0, index) for t in (all_keys, states, mask))


def _trim_alignment(state: DecoderState, frames: int) -> DecoderState:
    return DecoderState(state.hidden, state.cell, state.context, state.weights[:, :frames].contiguous())


@torch.inference_mode()
def greedy_search(model: Seq2Seq, states, enc_lengths, mask) -> list[Hypothesis]:
    """Batched: each step takes the most likely character; stops at <eos> or one char per frame."""
    lengths = enc_lengths.cpu().numpy().astype(np.int64)
    return _by_groups(lambda s, n: _greedy_group(model, s, n), GREEDY_GROUP_RATIO, states, lengths)


def _greedy_group(model: Seq2Seq, states: torch.Tensor, lengths: np.ndarray) -> list[Hypothesis]:
    decoder, eos = model.decoder, model.sos_id
    batch, device = states.shape[0], states.device
    mask = torch.from_numpy(np.arange(states.shape[1])[None, :] < lengths[:, None]).to(device)
    all_keys = decoder.attention.keys(states)
    keys, values, row_mask = all_keys, states, mask
    state = decoder.initial_state(states, mask)
    tokens = torch.full((batch,), eos, dtype=torch.long, device=device)
    hyps = [Hypothesis([], 0.0) for _ in range(batch)]
    utts = np.arange(batch)  # the utterance of each decoder row
    live = np.ones(batch, dtype=bool)  # per row; False once its utterance has ended
    for _ in range(int(lengths.max()) + 1):  # every row ends by its own rule, whatever else is in the batch
        logits, state = decoder.step(tokens, state, keys, values, row_mask)
        best_log_prob, tokens = torch.log_softmax(logits.float(), dim=-1).max(dim=-1)
        weights = state.weights.float().cpu().numpy()
        for row, (utt, token, log_prob) in enumerate(zip(utts, tokens.tolist(), best_log_prob.tolist())):
            if not live[row]:
                continue
            hyp = hyps[utt]
            hyp.attention.append(weights[row, : lengths[utt]])
            hyp.score += log_prob
            if token == eos or len(hyp.tokens) >= lengths[utt]:
                live[row] = False
            else:
                hyp.tokens.append(token)
                hyp.token_log_probs.append(log_prob)
        if not live.any():
            break
        if np.count_nonzero(~live) >= COMPACT_FRACTION * len(live):  # drop finished rows
            keep = np.flatnonzero(live)
            utts, live = utts[keep], live[keep]
            rows = torch.from_numpy(keep).to(device)
            tokens, state = tokens[rows], state.select(rows)
            keys, values, row_mask = _encoder_rows(utts, lengths, all_keys, states, mask)
            state = _trim_alignment(state, keys.shape[1])
    return hyps


@torch.inference_mode()
def beam_search(model: Seq2Seq, states: torch.Tensor, ctc: np.ndarray, options: DecodingOptions) -> Hypothesis:
    """Beam search for one utterance: ``states`` (1, frames, dim), ``ctc`` (frames, vocab) log-probs."""
    lengths = torch.tensor([states.shape[1]], device=states.device)
    return beam_search_batch(model, states, lengths, ctc[None], options)[0]


@dataclass
class _Step:
    """The hypotheses one beam step created (survivors and those that ended), for back-tracking."""

    parents: np.ndarray  # index into the previous step's entries; -1 = the empty prefix
    tokens: np.ndarray
    log_probs: np.ndarray  # attention log-probability of each token
    weights: np.ndarray  # (entries, frames) attention of the step that produced each token


def beam_search_batch(model: Seq2Seq, states: torch.Tensor, enc_lengths: torch.Tensor, ctc: np.ndarray,
                      options: DecodingOptions, lm: CharNgramLM | None = None,
                      word_lm: WordNgramLM | None = None) -> list[Hypothesis]:
    """Beam search over a padded batch, scoring each prefix by (1−λ)·attention + λ·CTC prefix score.

    The CTC prefix score (Watanabe et al. 2017) stops the attention decoder from skipping or
    repeating words and from ending early. ``states`` (batch, frames, dim) are encoder states,
    ``ctc`` (batch, frames, vocab) the CTC log-probs (float64), ``enc_lengths`` the real frames.

    Each step takes, per utterance, the best ``beam_size`` candidates of its hypotheses: those
    that are <eos> finish, the rest form the next beam. An utterance stops when nothing
    survives, when ``beam_size`` hypotheses have ended and the best of them beats every
    hypothesis in flight, or after one step per frame (then its best unfinished hypothesis is
    taken). The result for an utterance does not depend on what else is in the batch.
    With an ``lm`` and ``options.lm_weight`` > 0, the LM's log-probability of each prefix is
    added to the joint score (shallow fusion); a ``word_lm`` rescores each completed word.
    """
    lengths = enc_lengths.cpu().numpy().astype(np.int64)
    ctc = np.asarray(ctc, dtype=np.float64)
    fusion = _LMFusion(lm, word_lm, options, ctc.shape[2], model.blank_id, model.sos_id)
    fusion = fusion if fusion.lm or fusion.word_lm else None  # no LM with a weight: plain search
    return _by_groups(lambda s, n, c: _beam_group(model, s, n, c, options, fusion), BEAM_GROUP_RATIO, states, lengths, ctc)


class _LMFusion:
    """Tracks each hypothesis' text and weighted LM score, which the beam adds to its joint score.

    The character LM scores every character. With a word LM, a character that completes a word
    (a space or <eos>) also swaps the character LM's score of that word for the word LM's; a
    word the word LM does not know keeps its character score and pays the OOV penalty. Without
    an active character LM, nothing would judge an unknown word's spelling, so it also gets the
    word LM's share for unknown words.
    """

    def __init__(self, lm: CharNgramLM | None, word_lm: WordNgramLM | None, options: DecodingOptions,
                 vocab_size: int, blank_id: int, eos_id: int):
        self.lm = lm if lm and options.lm_weight else None
        self.word_lm = word_lm if word_lm and options.word_lm_weight else None
        self.options, self.eos_id = options, eos_id
        self.lm_index, self.characters = vocab_to_lm_index(vocab_size, blank_id, eos_id)
        self.space_id = self.characters.index(" ")
        self._word_scores: dict[tuple[str, str, bool], float] = {}

    def candidate_scores(self, texts: list[str], scores: np.ndarray, cand_rows: np.ndarray, chars: np.ndarray) -> np.ndarray:
        total = scores[cand_rows].copy()
        if self.lm:
            rows = np.stack([self.lm.next_log_probs(text) for text in texts])
            total += self.options.lm_weight * rows[cand_rows, self.lm_index[chars]]
        if self.word_lm:
            for i in np.flatnonzero((chars == self.space_id) | (chars == self.eos_id)).tolist():
                total[i] += self._completed_word_score(texts[cand_rows[i]], bool(chars[i] == self.eos_id))
        return total

    def extend(self, texts: list[str], parents: np.ndarray, chars: np.ndarray) -> list[str]:
        return [texts[p] + self.characters[c] for p, c in zip(parents.tolist(), chars.tolist())]

    def _completed_word_score(self, text: str, at_end: bool) -> float:
        """What completing the last word of ``text`` adds: word LM in, character LM out."""
        cut = text.rfind(" ") + 1
        word = text[cut:]
        history = text[:cut].split()[1 - self.word_lm.order:] if self.word_lm.order > 1 else []
        if not word:  # nothing to complete; at the end, the sentence's end still swaps
            if not at_end or not history:
                return 0.0
            end_score = self.options.word_lm_weight * self.word_lm.log_prob(history, END)
            return end_score - self.options.lm_weight * self._char_score(text, EOS)
        if word not in self.word_lm:
            unknown = 0.0 if self.lm else self.options.word_lm_weight * self.word_lm.unknown_log_prob
            return self.options.oov_penalty + unknown
        key = (" ".join(history), word, at_end)
        if key not in self._word_scores:
            word_score = self.word_lm.log_prob(history, word)
            if at_end:
                word_score += self.word_lm.log_prob(history + [word], END)
            self._word_scores[key] = self.options.word_lm_weight * word_score
        return self._word_scores[key] - self.options.lm_weight * self._char_score(text[:cut], word + (EOS if at_end else " "))

    def _char_score(self, prefix: str, spelled: str) -> float:
        if not self.lm:
            return 0.0
        return sum(float(self.lm.next_log_probs(prefix + spelled[:i])[symbol_code(c)]) for i, c in enumerate(spelled))


def _beam_group(model: Seq2Seq, states: torch.Tensor, lengths: np.ndarray, ctc: np.ndarray,
                options: DecodingOptions, fusion: _LMFusion | None = None) -> list[Hypothesis]:
    decoder, eos, blank = model.decoder, model.sos_id, model.blank_id
    width, weight, bonus = options.beam_size, options.ctc_weight, options.length_bonus
    batch, vocab, device = ctc.shape[0], ctc.shape[2], states.device
    n_cands = min(options.candidates_per_beam, vocab - 1) + 1
    frame_axis = np.arange(ctc.shape[1])
    ctc = torch.from_numpy(np.where(frame_axis[None, :, None] < lengths[:, None, None], ctc, 0.0))  # padding: finite
    ctc_by_frame = ctc.permute(1, 0, 2)  # (frames, utterances, vocab)
    mask = torch.from_numpy(frame_axis[None, :] < lengths[:, None]).to(device)
    all_keys = decoder.attention.keys(states)
    state = decoder.initial_state(states, mask)

    # one decoder row per hypothesis in flight, grouped by utterance; at first the empty prefix
    utt = np.arange(batch)  # the utterance of each row
    slot = np.zeros(batch, dtype=np.int64)  # its rank within its utterance's beam
    att_scores = np.zeros(batch)
    last = np.full(batch, -1)  # last token of each row's prefix; -1 = empty
    n_tokens = np.zeros(batch, dtype=np.int64)
    entry = np.full(batch, -1)  # each row's entry in the latest _Step
    texts, fusion_scores = [""] * batch, np.zeros(batch)  # for LM fusion only: weighted LM totals
    ctc_r = torch.stack([torch.full(ctc.shape[:2], NEG_INF, dtype=ctc.dtype), torch.cumsum(ctc[:, :, blank], dim=1)])
    ctc_r = ctc_r.permute(0, 2, 1)  # (2, frames, rows): forward variables r_n, r_b of each prefix
    keys, values, row_mask, row_utts = all_keys, states, mask, utt
    history: list[_Step] = []
    finished: list[list[tuple[float, int, int]]] = [[] for _ in range(batch)]  # (score, step, entry)
    unfinished: dict[int, tuple[float, int, int]] = {}  # best hypothesis in flight of utterances out of frames

    for step in range(int(lengths.max())):
        if not np.array_equal(utt, row_utts):  # rows changed: gather their encoder states
            keys, values, row_mask = _encoder_rows(utt, lengths, all_keys, states, mask)
            row_utts = utt
            if keys.shape[1] < ctc_r.shape[1]:
                ctc_r = ctc_r[:, : keys.shape[1]]
                state = _trim_alignment(state, keys.shape[1])
        frames = keys.shape[1]
        tokens = torch.from_numpy(np.where(last < 0, eos, last)).to(device)
        logits, state = decoder.step(tokens, state, keys, values, row_mask)
        att_log_probs = torch.log_softmax(logits.float(), dim=-1).cpu().double().numpy()
        weights = state.weights.float().cpu().numpy()

        # joint scores of every (row, top-k character) pair
        n_rows = len(utt)
        candidates = np.argsort(-att_log_probs, axis=1)[:, :n_cands]
        cand_rows, chars = np.repeat(np.arange(n_rows), n_cands), candidates.reshape(-1)
        cand_att = att_scores[cand_rows] + att_log_probs[cand_rows, chars]
        cand_utts = torch.from_numpy(utt[cand_rows])
        utt_lengths = lengths[utt[cand_rows]]
        # prefix scores need only phi (from the parent) and the character's log-probs; the
        # forward variables of the new prefixes are computed below for the survivors only
        total = torch.logaddexp(ctc_r[0], ctc_r[1])  # (frames, rows)
        parent = torch.from_numpy(cand_rows)
        same = torch.from_numpy(chars == last[cand_rows])
        phi = torch.where(same[None, :], ctc_r[1][:, parent], total[:, parent])
        x_c = ctc_by_frame[:frames, cand_utts, torch.from_numpy(chars)]  # (frames, candidates)
        start = torch.where(torch.from_numpy(last[cand_rows] < 0), x_c[0], NEG_INF)
        valid = torch.from_numpy(frame_axis[:frames, None] < utt_lengths[None, :])
        cand_ctc = _prefix_probability(phi, x_c, start, valid).numpy()
        ends = total[torch.from_numpy(utt_lengths - 1), parent].numpy()  # the whole of prefix g, for <eos>
        cand_ctc = np.where(chars == eos, ends, cand_ctc)
        joint = (1 - weight) * cand_att + weight * cand_ctc
        if fusion:
            cand_lm = fusion.candidate_scores(texts, fusion_scores, cand_rows, chars)
            joint = joint + cand_lm

        # the best `width` candidates of each utterance
        table = np.full(batch * width * n_cands, -np.inf)
        cells = (utt[cand_rows] * width + slot[cand_rows]) * n_cands + np.tile(np.arange(n_cands), n_rows)
        table[cells] = joint
        column = np.full(table.shape, -1)
        column[cells] = np.arange(len(cells))
        table = table.reshape(batch, width * n_cands)
        order = np.argsort(-table, axis=1)[:, :width]
        best = np.take_along_axis(table, order, axis=1)
        chosen = column.reshape(table.shape)[np.arange(batch)[:, None], order]  # (utterances, width)

        picked = chosen[np.isfinite(best)]
        history.append(_Step(entry[cand_rows[picked]], chars[picked], att_log_probs[cand_rows[picked], chars[picked]],
                             weights[cand_rows[picked]]))
        entry_of = dict(zip(picked.tolist(), range(len(picked))))

        new_columns, new_utts, new_slots = [], [], []
        for u in np.unique(utt).tolist():
            survivors = []
            for rank in range(width):
                if not np.isfinite(best[u, rank]):
                    break
                col = chosen[u, rank]
                if chars[col] == eos:
                    finished[u].append((float(joint[col]) + bonus * int(n_tokens[cand_rows[col]]), step, entry_of[col]))
                else:
                    survivors.append(col)
            best_finished = max((f[0] for f in finished[u]), default=-np.inf)
            if (not survivors or step + 1 >= lengths[u]
                    or (len(finished[u]) >= width and best_finished >= best[u, 0] + bonus * lengths[u])):
                if not finished[u]:
                    unfinished[u] = (float(cand_att[survivors[0]]), step, entry_of[survivors[0]])
                continue
            new_columns += survivors
            new_utts += [u] * len(survivors)
            new_slots += range(len(survivors))
        if not new_columns:
            break

        # the next beam
        columns = np.array(new_columns, dtype=np.int64)
        parents = cand_rows[columns]
        chosen_columns = torch.from_numpy(columns)
        state = state.select(torch.from_numpy(parents).to(device))
        ctc_r = _forward_variables(phi[:, chosen_columns], x_c[:, chosen_columns],
                                   ctc_by_frame[:frames, cand_utts[chosen_columns], blank], start[chosen_columns])
        utt, slot = np.array(new_utts, dtype=np.int64), np.array(new_slots, dtype=np.int64)
        att_scores, last = cand_att[columns], chars[columns]
        if fusion:
            texts, fusion_scores = fusion.extend(texts, parents, chars[columns]), cand_lm[columns]
        n_tokens = n_tokens[parents] + 1
        entry = np.array([entry_of[c] for c in new_columns], dtype=np.int64)

    results = []
    for u in range(batch):
        score, step, index = max(finished[u], key=lambda f: f[0]) if finished[u] else unfinished[u]
        tokens, log_probs, attention = _backtrack(history, step, index, lengths[u])
        if finished[u]:  # drop the <eos> itself; keep the alignment of the step that chose it
            tokens, log_probs = tokens[:-1], log_probs[:-1]
        results.append(Hypothesis(tokens, score, log_probs, attention))
    return results


def _backtrack(history: list[_Step], step: int, index: int, frames: int):
    tokens, log_probs, attention = [], [], []
    while step >= 0 and index >= 0:
        entries = history[step]
        tokens.append(int(entries.tokens[index]))
        log_probs.append(float(entries.log_probs[index]))
        attention.append(entries.weights[index, :frames])
        index, step = int(entries.parents[index]), step - 1
    return tokens[::-1], log_probs[::-1], attention[::-1]


def ctc_prefix_scores(prev_r, chars, last_chars, ctc, blank, is_empty):
    """CTC prefix probabilities of g+c for many (g, c) pairs at once, without a loop over time.

    ``prev_r`` (2, frames, n) holds r_n, r_b of each prefix g. Both recursions
    r_n(t) = logaddexp(r_n(t-1), phi(t-1)) + x_t(c) and r_b(t) = logaddexp(r_b(t-1), r_n(t-1)) + x_t(blank)
    are first-order linear in probability space, so each is one cumulative log-sum-exp.
    Returns (prefix scores (n,), new forward variables (2, frames, n)), as float64 numpy arrays.
    """
    prev_r, ctc = torch.as_tensor(np.asarray(prev_r, dtype=np.float64)), torch.as_tensor(np.asarray(ctc, dtype=np.float64))
    chars, last_chars = np.asarray(chars), np.asarray(last_chars)
    x_c = ctc[:, torch.from_numpy(np.where(chars < 0, 0, chars))]  # (frames, n)
    phi = torch.where(torch.from_numpy(chars == last_chars)[None, :], prev_r[1], torch.logaddexp(prev_r[0], prev_r[1]))
    start = torch.where(torch.from_numpy(np.asarray(is_empty, dtype=bool)), x_c[0], NEG_INF)
    x_b = ctc[:, blank][:, None].expand_as(x_c)
    return _prefix_probability(phi, x_c, start).numpy(), _forward_variables(phi, x_c, x_b, start).numpy()


def _prefix_probability(phi: torch.Tensor, x_c: torch.Tensor, start: torch.Tensor, valid: torch.Tensor | None = None):
    """psi = Σ_t phi(t-1)·x_t(c) (+ the start term), in log space; ``phi``, ``x_c`` (frames, n).

    ``phi`` (frames, n) is the probability of the parent prefix g ending at each frame, with
    the blank required between repeated characters; ``start`` (n,) is r_n(0) of g+c; ``valid``
    (frames, n) marks real frames when the pairs come from utterances of different lengths.
    """
    if x_c.shape[0] == 1:
        return start.clamp(min=NEG_INF)
    emit = phi[:-1] + x_c[1:]
    if valid is not None:
        emit = emit.masked_fill(~valid[1:], NEG_INF)
    return torch.logaddexp(start, torch.logsumexp(emit, dim=0)).clamp(min=NEG_INF)


def _forward_variables(phi: torch.Tensor, x_c: torch.Tensor, x_b: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """r_n, r_b (2, frames, n) of the prefixes g+c, each recursion as one cumulative log-sum-exp."""
    n = x_c.shape[1]
    zeros = x_c.new_zeros((1, n))
    cum_c = torch.cat([zeros, torch.cumsum(x_c[1:], dim=0)])
    r_n = torch.logcumsumexp(torch.cat([start[None, :], phi[:-1] - cum_c[:-1]]), dim=0) + cum_c
    cum_b = torch.cat([zeros, torch.cumsum(x_b[1:], dim=0)])
    r_b = torch.logcumsumexp(torch.cat([x_c.new_full((1, n), NEG_INF), r_n[:-1] - cum_b[:-1]]), dim=0) + cum_b
    return torch.stack([r_n, r_b])
