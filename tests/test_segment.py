"""Pause splitting: whole arrays and streams, silence, the 20 s limit, offsets into the stream."""

from __future__ import annotations

import numpy as np

from conftest import speech_like
from speechcli.segment import (EDGE_ZEROS_KEPT_S, MAX_SEGMENT_S, SILENCE_DB, PauseSplitter, loudness_db,
                               split_at_pauses, split_with_speech)

RATE = 16_000


def _speech_with_pauses(layout: list[tuple[float, float]], total: float, seed: int = 0) -> np.ndarray:
    """Speech-like bursts at (start, seconds) positions in faint noise."""
    rng = np.random.default_rng(seed)
    out = (0.002 * rng.standard_normal(int(total * RATE))).astype(np.float32)
    for number, (start, seconds) in enumerate(layout):
        burst = speech_like(seconds, seed=seed + number)
        out[int(start * RATE) : int(start * RATE) + len(burst)] += burst
    return out


def test_silence_gives_no_pieces():
    assert split_at_pauses(np.zeros(RATE * 3, np.float32)) == []
    splitter = PauseSplitter(RATE, window_s=50)
    assert splitter.feed(np.zeros(RATE * 70, np.float32)) == [] and splitter.finish() == []


def test_quiet_speech_is_speech_and_faint_hiss_is_not():
    # a microphone at low gain: the loud frames are below SILENCE_DB but stand far above the pauses
    quiet = _speech_with_pauses([(0.5, 2.0)], 3.0) * 0.001
    assert loudness_db(quiet) < SILENCE_DB
    assert split_at_pauses(quiet) == [(0, len(quiet))]
    hiss = (3e-4 * np.random.default_rng(1).standard_normal(3 * RATE)).astype(np.float32)  # -70 dBFS, steady
    assert split_at_pauses(hiss) == []
    assert split_at_pauses(quiet * 0.3) == []  # below -85 dBFS: nothing to hear


def test_digital_silence_around_recorded_speech_is_left_out():
    # a recording (a live noise floor, no exact zeros) padded with 1 s of zeros on each side
    speech = _speech_with_pauses([(0.5, 2.0)], 3.0)
    audio = np.concatenate([np.zeros(RATE, np.float32), speech, np.zeros(RATE, np.float32)])
    [(start, end, (speech_start, speech_end))] = split_with_speech(audio)
    assert (start, end) == (RATE, RATE + len(speech))  # not a sample of the zeros: the model never heard them
    assert 0 <= speech_start and (start + speech_start) / RATE <= 1.5  # the speech span covers the phrase
    assert 3.4 <= (start + speech_end) / RATE <= end / RATE
    splitter = PauseSplitter(RATE, window_s=50)
    assert [(p.start, p.start + len(p.samples)) for p in splitter.feed(audio) + splitter.finish()] == [(start, end)]


def test_a_few_ms_of_digital_silence_at_the_edges_stay():
    # decoded mp3 clips start and end with a few ms of zeros, as the model's training clips did
    speech = _speech_with_pauses([(0.5, 2.0)], 3.0)
    lead, trail = np.zeros(int(0.01 * RATE), np.float32), np.zeros(int(EDGE_ZEROS_KEPT_S * RATE) - 1, np.float32)
    audio = np.concatenate([lead, speech, trail])
    assert split_at_pauses(audio) == [(0, len(audio))]
    longer = np.concatenate([lead, speech, np.zeros(int(EDGE_ZEROS_KEPT_S * RATE) + 1, np.float32)])
    assert split_at_pauses(longer) == [(0, len(lead) + len(speech))]  # only the long run goes, whole


def test_phrases_are_not_joined_across_long_digital_silence():
    # recordings put end to end with seconds of zeros between them: each becomes its own piece, without the zeros
    first, second = _speech_with_pauses([(0.3, 1.5)], 2.0, seed=1), _speech_with_pauses([(0.3, 1.5)], 2.0, seed=2)
    zeros = np.zeros(int(1.5 * RATE), np.float32)
    audio = np.concatenate([first, zeros, second])
    assert split_at_pauses(audio) == [(0, len(first)), (len(first) + len(zeros), len(audio))]
    short_gap = np.concatenate([first, zeros[: RATE // 2], second])  # a pause of a synthetic voice
    assert len(split_at_pauses(short_gap)) == 1


def test_digital_silence_of_digitally_made_speech_is_kept():
    # synthetic voices pause in exact zeros between words; the model learned them with their zeros around
    words = [speech_like(1.0, seed=1), np.zeros(RATE // 10), speech_like(1.0, seed=2)]
    for word in (words[0], words[2]):
        word[np.abs(word) < 0.01] = 0.0  # no noise floor
    audio = np.concatenate([np.zeros(RATE), *words, np.zeros(RATE)]).astype(np.float32)
    assert split_at_pauses(audio) == [(0, len(audio))]


def test_a_short_recording_with_pauses_stays_one_piece_with_its_silence():
    # decoding each phrase of a sentence on its own, or without the silence around it, costs words
    audio = _speech_with_pauses([(0.5, 2.0), (4.0, 1.5), (7.0, 2.0)], 10.0)
    pieces = split_at_pauses(audio)
    assert len(pieces) == 1 and pieces[0][0] == 0 and pieces[0][1] > len(audio) - 0.1 * RATE


def test_phrases_are_joined_up_to_the_limit_and_split_in_pauses():
    layout = [(1.0 + 7.0 * i, 3.0) for i in range(9)]  # ~62 s
    audio = _speech_with_pauses(layout, 63.0, seed=4)
    pieces = split_at_pauses(audio)
    assert 3 <= len(pieces) < len(layout)
    assert all((end - start) / RATE <= MAX_SEGMENT_S for start, end in pieces)
    for burst_start, seconds in layout:  # each phrase lies whole within exactly one piece
        inside = [s for s, e in pieces if s / RATE <= burst_start and (burst_start + seconds) <= e / RATE + 0.1]
        assert len(inside) == 1
    assert all(end <= next_start for (_, end), (next_start, _) in zip(pieces, pieces[1:]))


def test_each_piece_knows_where_its_speech_is():
    layout = [(3.0, 2.0), (6.0, 1.5), (30.0, 3.0), (36.0, 2.0)]
    audio = _speech_with_pauses(layout, 45.0, seed=5)
    pieces = split_with_speech(audio)
    assert [(s, e) for s, e, _ in pieces] == split_at_pauses(audio)
    assert len(pieces) == 2
    for (start, end, (speech_start, speech_end)), phrases in zip(pieces, (layout[:2], layout[2:])):
        assert 0 <= speech_start < speech_end <= end - start
        first, last = phrases[0][0], phrases[-1][0] + phrases[-1][1]
        assert abs((start + speech_start) / RATE - first) < 0.1  # the context before is left out ...
        assert abs((start + speech_end) / RATE - last) < 0.1  # ... and after
        assert speech_start >= 1.9 * RATE  # while the piece itself keeps 2 s of it
    splitter = PauseSplitter(RATE, window_s=50)
    streamed = splitter.feed(audio) + splitter.finish()
    assert [(p.start, p.start + len(p.samples), p.speech) for p in streamed] == pieces


def test_continuous_speech_is_cut_below_the_limit():
    audio = speech_like(50.0, seed=3)
    pieces = split_at_pauses(audio)
    assert len(pieces) >= 3
    assert all((end - start) / RATE <= MAX_SEGMENT_S for start, end in pieces)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(audio)


def test_stream_shorter_than_a_window_matches_the_whole_array():
    audio = _speech_with_pauses([(0.5, 2.0), (4.0, 6.0), (11.0, 3.0)], 15.0)
    splitter = PauseSplitter(RATE)
    pieces = []
    for block in np.array_split(audio, 7):
        pieces += splitter.feed(block)
    pieces += splitter.finish()
    assert [(p.start, p.start + len(p.samples)) for p in pieces] == split_at_pauses(audio)


def test_long_stream_keeps_offsets_and_bounded_buffer():
    layout = [(1.0 + 7.0 * i, 3.0) for i in range(25)]  # 25 utterances over ~3 minutes
    audio = _speech_with_pauses(layout, 180.0, seed=5)
    splitter = PauseSplitter(RATE, window_s=50)
    pieces, largest_buffer = [], 0
    for block in np.array_split(audio, 180):  # 1 s blocks
        pieces += splitter.feed(block)
        largest_buffer = max(largest_buffer, splitter._buffered)
    pieces += splitter.finish()
    assert largest_buffer <= 51 * RATE
    assert len(pieces) < len(layout)  # phrases joined
    assert all(len(p.samples) / RATE <= MAX_SEGMENT_S for p in pieces)
    for start, seconds in layout:  # each phrase lies whole within exactly one piece
        inside = [p for p in pieces if p.start / RATE <= start and start + seconds <= (p.start + len(p.samples)) / RATE + 0.1]
        assert len(inside) == 1
    for piece in pieces:
        np.testing.assert_array_equal(piece.samples, audio[piece.start : piece.start + len(piece.samples)])


def test_quiet_stretch_of_a_loud_stream_is_not_speech():
    # 60 s of speech, then 60 s of noise only: the noise window must not turn into pieces
    layout = [(1.0 + 6.0 * i, 4.0) for i in range(10)]
    audio = _speech_with_pauses(layout, 120.0, seed=2)
    splitter = PauseSplitter(RATE, window_s=50)
    pieces = splitter.feed(audio) + splitter.finish()
    assert all(p.start / RATE < 62 for p in pieces)
