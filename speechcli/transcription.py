"""Audio → transcripts with segments, word times and confidences, decoded in batches across files.

Each source is read as a stream of blocks and split at pauses into pieces of at most 20 s
(`segment.PauseSplitter`), so an hour-long recording never sits in memory whole and the
attention never sees more audio than it was trained on. Pieces from many sources wait in a
pool of at most ``GROUP_SECONDS`` of audio; the pool is decoded in length-sorted batches, and a
source's transcript is yielded (in input order) once all its pieces are decoded. Each piece is
decoded at every playback speed of the decoding options (the model's default: seven, from 20 %
slower to 10 % faster), and possibly cut to its speech; of these views' transcripts it keeps the
one they agree on best (``_score_by_agreement``), or with ``view_temperature`` 0 the one with the
best joint score on its own view. Its times are the recording's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal, Union

import numpy as np
import torch

from .alignment import WordSpan, attention_word_spans, ctc_word_spans, word_confidence
from .audio import log_mel, prepare_samples, resample
from .checkpoint import LoadedModel
from .data import normalize_features
from .decoding import DecodingOptions, Hypothesis, decode_encoded, soft_maximum, transcript_scores
from .errors import SpeechCLIError
from .inputs import AudioStream, Source, open_stream
from .model import SUBSAMPLING
from .segment import PauseSplitter

# a path, (name, 16 kHz mono samples), (name, encoded audio bytes) or an expanded input
AudioSource = Union[str, Path, tuple[str, np.ndarray], tuple[str, bytes], Source]
WordTiming = Literal["ctc", "attention"]
GROUP_SECONDS = 600.0  # audio decoded together: bounds memory, gives batches of similar lengths
BATCH_FRAMES = 30_000  # padded feature frames per decoder batch
SPEECH_MARGIN_S = 0.1  # segments and word times may reach this far beyond the detected speech
MIN_PIECE_S = 0.1  # shorter pieces are padded with silence so the encoder has frames to work on
MIN_TRIMMED_S = 0.1  # a trimmed view that would leave out less than this is not decoded


@dataclass
class Word:
    text: str
    start: float
    end: float
    confidence: float


@dataclass
class Segment:
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    attention: np.ndarray | None = None  # (characters + 1, encoder frames of the whole piece, which may start before
    # ``start``: the piece is decoded with silence around its speech), kept only when asked for
    confidence: float = 1.0


@dataclass
class Transcript:
    source: str
    duration: float
    segments: list[Segment]
    warnings: list[str] = field(default_factory=list)  # e.g. "truncated ..."; the transcript is still usable

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]


@dataclass
class Failure:
    source: str
    error: SpeechCLIError


@dataclass
class Progress:
    """Reported after each decoded batch: how far each unfinished source has got."""

    index: int  # position of the source in the input
    source: str
    seconds_done: float  # audio seconds of this source decoded so far
    duration: float | None  # its total length, if known before reading it all
    finished: bool


@dataclass
class _View:
    """Some of a piece's samples (from ``start`` on), played at ``speed``, as normalised features."""

    features: torch.Tensor
    speed: float = 1.0
    start: int = 0  # sample offset of the view's first sample within the piece


@dataclass
class _Piece:
    index: int  # which source
    start: int  # sample offset of this piece in its source
    speech: tuple[int, int]  # the samples of the piece that hold speech (the rest is context)
    seconds: float  # its length as recorded
    views: list[_View]  # one per decoding option's speed, then possibly a trimmed view


@dataclass
class _Pending:
    """A source whose pieces are (partly) in flight."""

    name: str
    stream: AudioStream | None
    samples_read: int = 0
    pieces_waiting: int = 0
    read_all: bool = False
    seconds_done: float = 0.0
    segments: list[Segment] = field(default_factory=list)
    failure: Failure | None = None


def transcribe(model: LoadedModel, audio: AudioSource, options: DecodingOptions | None = None,
               keep_attention: bool = True) -> Transcript:
    """Transcribe one file (or ``(name, samples)``); raises :class:`SpeechCLIError` on bad input.
    ``options`` default to the model's own (``model.decoding_options()``), as on the command line."""
    result = next(transcribe_many(model, [audio], options, keep_attention=keep_attention))
    if isinstance(result, Failure):
        raise result.error
    return result


def transcribe_many(model: LoadedModel, sources: Iterable[AudioSource], options: DecodingOptions | None = None,
                    on_progress: Callable[[Progress], None] | None = None, keep_attention: bool = False,
                    word_timing: WordTiming = "ctc") -> Iterator[Transcript | Failure]:
    """Yield one Transcript or Failure per source, in input order, batching pieces across sources.
    ``options`` default to the model's own (``model.decoding_options()``).

    Memory stays bounded by ``GROUP_SECONDS`` of features (at each speed) plus one read block per source in
    flight, whatever the sources' lengths. ``on_progress`` is called after each decoded batch.
    """
    options = options or model.decoding_options()
    if not options.speeds:
        raise ValueError("DecodingOptions.speeds is empty: give at least one speed, e.g. (1.0,)")
    rate = model.feature_config.sample_rate
    pending: dict[int, _Pending] = {}
    pool: list[_Piece] = []
    next_out = 0

    def flush() -> Iterator[Transcript | Failure]:
        nonlocal pool, next_out
        _decode_pool(model, pool, pending, options, keep_attention, word_timing, on_progress)
        pool = []
        while next_out in pending and _done(pending[next_out]):
            yield _result(pending.pop(next_out), rate)
            next_out += 1

    for index, source in enumerate(sources):
        state = pending[index] = _open(source, rate)
        if state.failure is None:
            splitter = PauseSplitter(rate)
            for block in _blocks(state):
                state.samples_read += len(block)
                for piece in splitter.feed(block):
                    pool.append(_piece(model, index, piece, options))
                    state.pieces_waiting += 1
                if _pool_seconds(model, pool) >= GROUP_SECONDS:
                    yield from flush()
            for piece in splitter.finish():
                pool.append(_piece(model, index, piece, options))
                state.pieces_waiting += 1
        state.read_all = True
        if _pool_seconds(model, pool) >= GROUP_SECONDS or (not pool and next_out == index):
            yield from flush()
    yield from flush()


def _open(source: AudioSource, rate: int) -> _Pending:
    name = source.name if isinstance(source, Source) else source[0] if isinstance(source, tuple) else str(source)
    try:
        if isinstance(source, tuple) and isinstance(source[1], np.ndarray):
            samples = prepare_samples(source[1], rate, rate, name)
            return _Pending(name, AudioStream(name, len(samples) / rate, iter([samples])))
        if isinstance(source, tuple):
            return _Pending(name, open_stream(Source(name, data=bytes(source[1])), rate))
        if not isinstance(source, Source):
            source = Source(name, path=Path(source))
        return _Pending(name, open_stream(source, rate))
    except SpeechCLIError as error:
        return _Pending(name, None, failure=Failure(name, error))


def _blocks(state: _Pending) -> Iterator[np.ndarray]:
    try:
        yield from state.stream.blocks
    except SpeechCLIError as error:
        state.stream.warnings.append(str(error))


def _done(state: _Pending) -> bool:
    return state.read_all and state.pieces_waiting == 0


def _result(state: _Pending, rate: int) -> Transcript | Failure:
    if state.failure is not None:
        return state.failure
    segments = sorted(state.segments, key=lambda s: s.start)
    return Transcript(state.name, state.samples_read / rate, segments, list(state.stream.warnings))


def _pool_seconds(model: LoadedModel, pool: list[_Piece]) -> float:
    return sum(p.seconds for p in pool)


def _decode_pool(model, pool, pending, options, keep_attention, word_timing, on_progress) -> None:
    for batch in _batches(pool):
        hyps, ctc = decode_pieces(model, [view.features for p in batch for view in p.views], options,
                                  [len(p.views) for p in batch])
        touched = []
        first = 0
        for piece in batch:
            best = max(range(len(piece.views)), key=lambda k: hyps[first + k].score)
            piece_frames = max(1, round(len(ctc[first]) * piece.views[0].speed))
            segment = _segment(model, piece, hyps[first + best], ctc[first + best], piece.views[best], piece_frames,
                               keep_attention, word_timing)
            first += len(piece.views)
            state = pending[piece.index]
            state.segments.append(segment)
            state.pieces_waiting -= 1
            state.seconds_done += piece.seconds
            touched.append(piece.index)
        if on_progress:
            for index in dict.fromkeys(touched):
                state = pending[index]
                on_progress(Progress(index, state.name, state.seconds_done, state.stream.duration, _done(state)))


def _piece(model: LoadedModel, index: int, piece, options: DecodingOptions) -> _Piece:
    rate = model.feature_config.sample_rate
    views = [_View(_features(model, _played_at(piece.samples, speed, rate)), speed) for speed in options.speeds]
    trimmed = _trimmed_range(piece, options.trimmed_view_s, rate)
    if trimmed is not None:
        views.append(_View(_features(model, piece.samples[trimmed[0] : trimmed[1]]), 1.0, trimmed[0]))
    return _Piece(index, piece.start, piece.speech, len(piece.samples) / rate, views)


def _trimmed_range(piece, margin_s: float, rate: int) -> tuple[int, int] | None:
    """The piece's speech and ``margin_s`` around it, or None when that leaves out less than MIN_TRIMMED_S."""
    if margin_s <= 0:
        return None
    margin = int(margin_s * rate)
    start, end = max(0, piece.speech[0] - margin), min(len(piece.samples), piece.speech[1] + margin)
    if start + len(piece.samples) - end < MIN_TRIMMED_S * rate:
        return None
    return start, end


def _played_at(samples: np.ndarray, speed: float, rate: int) -> np.ndarray:
    """The samples played ``speed`` times as fast (tempo and pitch together, like training's speed perturbation)."""
    return samples if speed == 1.0 else resample(samples, round(rate * speed), rate)


def _features(model: LoadedModel, samples: np.ndarray) -> torch.Tensor:
    minimum = int(MIN_PIECE_S * model.feature_config.sample_rate)
    if len(samples) < minimum:
        samples = np.pad(samples, (0, minimum - len(samples)))
    return normalize_features(log_mel(samples, model.feature_config), model.mean, model.std, model.feature_config)


def _batches(pieces: list[_Piece]) -> Iterator[list[_Piece]]:
    """Length-sorted batches of at most BATCH_FRAMES padded frames (all views of a piece count)."""
    batch: list[_Piece] = []
    for piece in sorted(pieces, key=_frames):
        if batch and _frames(piece) * (len(batch) + 1) > BATCH_FRAMES:
            yield batch
            batch = []
        batch.append(piece)
    if batch:
        yield batch


def _frames(piece: _Piece) -> int:
    return max(len(view.features) for view in piece.views) * len(piece.views)


@torch.inference_mode()
def decode_pieces(model: LoadedModel, features: list[torch.Tensor], options: DecodingOptions,
                  views_per_piece: list[int] | None = None) -> tuple[list[Hypothesis], list[np.ndarray]]:
    """Decode a batch of normalised feature tensors; also return each one's CTC log-probs (frames, vocab),
    which word timing needs (the encoder runs once). ``views_per_piece`` groups consecutive tensors as views of
    one piece; with ``options.view_temperature`` > 0, the scores of a piece's hypotheses become their
    transcripts' agreement across its views (``_score_by_agreement``)."""
    seq2seq = model.model
    device = next(seq2seq.parameters()).device
    lengths = torch.tensor([len(f) for f in features], device=device)
    padded = torch.nn.utils.rnn.pad_sequence(features, batch_first=True).to(device)
    states, enc_lengths, mask = seq2seq.encode(padded, lengths)
    hyps, ctc = decode_encoded(seq2seq, states, enc_lengths, mask, options, model.lm, model.word_lm)
    if views_per_piece and options.view_temperature > 0:
        _score_by_agreement(seq2seq, states, enc_lengths, ctc, hyps, views_per_piece, options)
    ctc_pieces = [ctc[i, : int(enc_lengths[i])] for i in range(len(features))]
    return hyps, ctc_pieces


AGREEMENT_ROWS = 256  # transcript-on-view pairs scored per decoder call: bounds the attention's memory
# transcripts of a piece that compete on agreement: its views' own best (by their search scores); scoring each
# on every view costs about as much as a view's beam search (models/README.md, thirtieth stretch)
AGREEMENT_CANDIDATES = 4


def _score_by_agreement(seq2seq, states, enc_lengths, ctc, hyps: list[Hypothesis], views_per_piece: list[int],
                        options: DecodingOptions) -> None:
    """Where a piece's views disagree, score each view's transcript on every view; a hypothesis' score becomes
    the soft maximum of its transcript's acoustic scores over the views plus what its search added beyond its
    own view's acoustic score (the LM's part), so the caller keeps the transcript the views agree on best.
    Only the AGREEMENT_CANDIDATES best transcripts by their own views' scores compete; the others' views drop out.

    Taking the best single view rewards whichever view happens to fit its own transcript best; a transcript
    that every view finds likely is more often right (models/README.md, thirtieth stretch).
    """
    weight = options.ctc_weight if options.beam_size > 1 else 0.0  # the greedy search scores by attention alone
    tokens, search_scores = [tuple(h.tokens) for h in hyps], [h.score for h in hyps]
    groups, first = [], 0
    for count in views_per_piece:
        views = range(first, first + count)
        transcripts = [tokens[v] for v in competing_views(tokens, search_scores, views)]
        if len(transcripts) > 1:
            groups.append((views, transcripts))
        first += count
    pairs = [(v, list(t)) for views, transcripts in groups for t in transcripts for v in views]
    scores = _pair_scores(seq2seq, states, enc_lengths, ctc, pairs, weight)
    at = 0
    for views, transcripts in groups:
        table = scores[at : at + len(transcripts) * len(views)].reshape(len(transcripts), len(views))
        at += table.size
        agreed = soft_maximum(table, options.view_temperature)
        for k, v in enumerate(views):
            if tokens[v] not in transcripts:
                hyps[v].score = -math.inf
                continue
            row = transcripts.index(tokens[v])
            hyps[v].score = float(agreed[row] + hyps[v].score - table[row, k])


def competing_views(transcripts: list, scores: list[float], views) -> list[int]:
    """Of ``views``, the best-scoring view of each distinct transcript, best first, at most AGREEMENT_CANDIDATES."""
    best_view: dict = {}
    for view in sorted(views, key=lambda v: -scores[v]):
        best_view.setdefault(transcripts[view], view)
    return list(best_view.values())[:AGREEMENT_CANDIDATES]


def _pair_scores(seq2seq, states, enc_lengths, ctc, pairs: list[tuple[int, list[int]]], weight: float) -> np.ndarray:
    """``transcript_scores`` of many pairs, in calls of pairs of similar lengths (less padding), in input order."""
    order = sorted(range(len(pairs)), key=lambda i: (int(enc_lengths[pairs[i][0]]), len(pairs[i][1])))
    scores = np.zeros(len(pairs))
    for start in range(0, len(order), AGREEMENT_ROWS):
        chunk = order[start : start + AGREEMENT_ROWS]
        scores[chunk] = transcript_scores(seq2seq, states, enc_lengths, ctc, [pairs[i] for i in chunk], weight)
    return scores


def _segment(model: LoadedModel, piece: _Piece, hyp: Hypothesis, ctc: np.ndarray, view: _View, piece_frames: int,
             keep_attention: bool, word_timing: WordTiming) -> Segment:
    """The piece's transcript, timed within its speech (the context around it is left out: the CTC
    head tends to fire a piece's first character on its very first frame, silence or not).
    ``hyp`` and ``ctc`` come from ``view``: its frames are moved back onto the recording's time axis, and its
    attention onto the ``piece_frames`` encoder frames of the whole piece as recorded."""
    encoder_frame_s = model.feature_config.frame_shift_ms / 1000 * SUBSAMPLING
    frame_s = encoder_frame_s * view.speed
    rate = model.feature_config.sample_rate
    offset = piece.start / rate
    view_offset = offset + view.start / rate
    duration = piece.seconds
    first = offset + max(0.0, piece.speech[0] / rate - SPEECH_MARGIN_S)
    last = offset + min(duration, piece.speech[1] / rate + SPEECH_MARGIN_S)
    attention = np.stack(hyp.attention) if hyp.attention else None
    words = []
    for span in word_spans(model, hyp, ctc, attention, word_timing):
        start = min(max(view_offset + span.start_frame * frame_s, first), max(first, last - frame_s))
        end = min(max(view_offset + span.end_frame * frame_s, start + frame_s), last)
        words.append(Word(span.text, round(start, 3), round(end, 3),
                          round(word_confidence(hyp.token_log_probs, span.positions), 4)))
    text = model.vocab.decode(hyp.tokens)
    confidence = math.exp(float(np.mean(hyp.token_log_probs))) if hyp.token_log_probs else 1.0
    if keep_attention and attention is not None:
        attention = _on_piece_frames(attention, view.speed, round(view.start / rate / encoder_frame_s), piece_frames)
    return Segment(round(first, 3), round(last, 3), text, words, attention if keep_attention else None, confidence)


def _on_piece_frames(attention: np.ndarray, speed: float, shift: int, piece_frames: int) -> np.ndarray:
    """Attention over a view's frames, moved onto the encoder frames of the whole piece as recorded: back to
    real time, then ``shift`` frames later (a trimmed view starts inside the piece)."""
    if speed != 1.0:
        attention = _at_real_time(attention, speed)
    if shift == 0 and attention.shape[1] == piece_frames:
        return attention
    placed = np.zeros((attention.shape[0], piece_frames), attention.dtype)
    kept = attention[:, : max(0, piece_frames - shift)]
    placed[:, shift : shift + kept.shape[1]] = kept
    return placed


def _at_real_time(attention: np.ndarray, speed: float) -> np.ndarray:
    """Attention over the frames of a piece played at ``speed``, moved onto the frames of the piece as recorded."""
    frames = max(1, round(attention.shape[1] * speed))
    nearest = np.minimum(np.round(np.arange(frames) / speed).astype(int), attention.shape[1] - 1)
    moved = attention[:, nearest]
    return moved / np.maximum(moved.sum(axis=1, keepdims=True), 1e-12)


def word_spans(model: LoadedModel, hyp: Hypothesis, ctc: np.ndarray, attention: np.ndarray | None,
               word_timing: WordTiming = "ctc") -> list[WordSpan]:
    """Word spans (in encoder frames) of a hypothesis; CTC alignment falls back to attention if impossible."""
    spans = ctc_word_spans(ctc, hyp.tokens, model.vocab) if word_timing == "ctc" else None
    if spans is None:
        if attention is None:
            return ctc_word_spans(ctc, hyp.tokens, model.vocab) or []
        spans = attention_word_spans(attention, hyp.tokens, model.vocab)
    return spans


@torch.inference_mode()
def align_text(model: LoadedModel, samples: np.ndarray, text: str, word_timing: WordTiming = "ctc",
               offset: float = 0.0) -> list[Word]:
    """Times of the words of a known transcript ``text`` (normalised) in ``samples`` (16 kHz mono).

    ``ctc``: Viterbi alignment on the CTC head; ``attention``: the decoder is fed the text
    (teacher forcing) and each character takes its attention peak. Confidences are the
    decoder's probabilities of the characters.
    """
    features = _features(model, samples)
    tokens = model.vocab.encode(text)
    seq2seq = model.model
    device = next(seq2seq.parameters()).device
    states, enc_lengths, mask = seq2seq.encode(features[None].to(device), torch.tensor([len(features)], device=device))
    ctc = seq2seq.ctc_log_probs(states)[0].cpu().numpy()
    decoder = seq2seq.decoder
    keys = decoder.attention.keys(states)
    state = decoder.initial_state(states, mask)
    previous, weights, token_log_probs = seq2seq.sos_id, [], []
    for token in tokens:
        logits, state = decoder.step(torch.tensor([previous], device=device), state, keys, states, mask)
        token_log_probs.append(float(torch.log_softmax(logits.float(), -1)[0, token]))
        weights.append(state.weights[0].float().cpu().numpy())
        previous = token
    hyp = Hypothesis(tokens, 0.0, token_log_probs, weights)
    attention = np.stack(weights) if weights else None
    spans = word_spans(model, hyp, ctc, attention, word_timing)
    frame_s = model.feature_config.frame_shift_ms / 1000 * SUBSAMPLING
    return [Word(s.text, round(offset + s.start_frame * frame_s, 3), round(offset + s.end_frame * frame_s, 3),
                 round(word_confidence(token_log_probs, s.positions), 4)) for s in spans]
