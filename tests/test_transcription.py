"""The transcription pipeline with the tiny untrained model: streaming, batching, order, word times."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from conftest import speech_like, write_speech_wav
from speechcli.alignment import ctc_word_spans
from speechcli.audio import resample
from speechcli.checkpoint import load_model
from speechcli.decoding import DecodingOptions, soft_maximum
from speechcli.inputs import Source, expand_inputs, open_stream, read_list
from speechcli.segment import split_with_speech
from speechcli.text import Vocabulary
from speechcli.transcription import Failure, Transcript, align_text, transcribe, transcribe_many

RATE = 16_000
GREEDY = DecodingOptions(beam_size=1)


@pytest.fixture(scope="module")
def tiny(tiny_model_path):
    torch.set_num_threads(1)
    return load_model(tiny_model_path)


@pytest.mark.parametrize("rate", [8000, 44100])
def test_streamed_resampling_equals_whole_file(tmp_path, rate):
    samples = speech_like(70.0, rate=rate, seed=1)  # longer than one 30 s resampling window
    soundfile.write(tmp_path / "a.wav", samples, rate, subtype="FLOAT")
    stream = open_stream(Source("a.wav", path=tmp_path / "a.wav"))
    streamed = np.concatenate(list(stream.blocks))
    whole = resample(samples, rate, RATE)
    assert len(streamed) == len(whole)
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def test_ctc_forced_alignment_finds_the_spikes():
    vocab = Vocabulary.default()
    tokens = vocab.encode("ab ba")
    frames = 20
    log_probs = np.full((frames, len(vocab)), -10.0)
    log_probs[:, vocab.blank_id] = -0.01
    for frame, char in [(2, "a"), (3, "a"), (4, "b"), (8, " "), (12, "b"), (15, "a")]:
        log_probs[frame, vocab.encode(char)[0]] = -0.001
        log_probs[frame, vocab.blank_id] = -10.0
    spans = ctc_word_spans(log_probs, tokens, vocab)
    assert [(s.text, s.start_frame, s.end_frame) for s in spans] == [("ab", 2, 5), ("ba", 12, 16)]
    assert ctc_word_spans(log_probs[:3], tokens, vocab) is None  # more characters than frames


def test_results_come_in_input_order_with_failures_in_place(tiny, tmp_path):
    a = write_speech_wav(tmp_path / "a.wav", 1.0, seed=1)
    b = write_speech_wav(tmp_path / "b.wav", 2.5, seed=2)
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(RATE), RATE)
    results = list(transcribe_many(tiny, [a, tmp_path / "missing.wav", b, silent, ("mem", speech_like(1.0))], GREEDY))
    assert [r.source for r in results] == [str(a), str(tmp_path / "missing.wav"), str(b), str(silent), "mem"]
    assert isinstance(results[1], Failure) and "no such file" in str(results[1].error)
    assert isinstance(results[3], Transcript) and results[3].text == "" and results[3].segments == []
    for result in (results[0], results[2], results[4]):
        assert isinstance(result, Transcript) and result.text
        for word in result.words:
            assert 0 <= word.start < word.end <= result.duration + 1e-6
            assert 0 < word.confidence <= 1


@pytest.mark.parametrize("beam", [1, 3])
def test_batched_equals_one_at_a_time(tiny, tmp_path, beam):
    options = DecodingOptions(beam_size=beam)
    files = [write_speech_wav(tmp_path / f"{i}.wav", 0.6 + 0.3 * i, seed=i) for i in range(6)]
    batched = [r.text for r in transcribe_many(tiny, files, options)]
    single = [transcribe(tiny, f, options).text for f in files]
    assert batched == single


def test_long_recording_offsets_point_into_the_original_file(tiny, tmp_path):
    layout = [(2.0 + 9.0 * i, 2.0) for i in range(9)]  # 80 s: more than one splitter window
    audio = 0.002 * np.random.default_rng(0).standard_normal(80 * RATE)
    for number, (start, seconds) in enumerate(layout):
        burst = speech_like(seconds, seed=number)
        audio[int(start * RATE) : int(start * RATE) + len(burst)] += burst
    path = tmp_path / "long.flac"
    soundfile.write(path, audio.astype(np.float32), RATE)
    events = []
    result = transcribe(tiny, path, GREEDY)
    list(transcribe_many(tiny, [path], GREEDY, on_progress=events.append))
    assert abs(result.duration - 80.0) < 1e-6
    assert 3 <= len(result.segments) < len(layout)  # phrases joined into pieces of at most 20 s
    for start, seconds in layout:  # each phrase lies whole within exactly one segment
        assert len([s for s in result.segments if s.start - 0.3 <= start and start + seconds <= s.end + 0.3]) == 1
    for segment in result.segments:
        assert segment.end - segment.start <= 20.0
        assert all(segment.start <= w.start < w.end <= segment.end + 1e-6 for w in segment.words)
    assert events[-1].finished and events[-1].seconds_done > 15 and events[-1].duration == pytest.approx(80.0)


def test_decoding_defaults_to_the_models_own_settings(tiny, speech_wav, monkeypatch):
    # as on the command line: the Python API used to decode with DecodingOptions() (beam 4, no LMs)
    import dataclasses

    import speechcli.transcription as transcription

    seen = []
    decode = transcription.decode_pieces
    monkeypatch.setattr(transcription, "decode_pieces", lambda m, f, options, *views: seen.append(options) or decode(m, f, options, *views))
    tuned = dataclasses.replace(tiny, info={"decoding": {"beam_size": 1, "ctc_weight": 0.6}})
    transcribe(tuned, speech_wav)
    list(transcribe_many(tuned, [speech_wav]))
    assert [(o.beam_size, o.ctc_weight) for o in seen] == [(1, 0.6), (1, 0.6)]
    transcribe(tuned, speech_wav, DecodingOptions(beam_size=2))
    assert seen[-1].beam_size == 2


def test_segments_and_word_times_stay_within_the_speech(tiny, tmp_path):
    # the context kept around a piece is silence: no segment or word may start or end in it
    audio = 0.002 * np.random.default_rng(1).standard_normal(12 * RATE)
    burst = speech_like(3.0, seed=7)
    audio[4 * RATE : 4 * RATE + len(burst)] += burst
    path = tmp_path / "late.wav"
    soundfile.write(path, audio.astype(np.float32), RATE)
    result = transcribe(tiny, path, GREEDY)
    assert len(result.segments) == 1
    segment = result.segments[0]
    assert 3.8 <= segment.start <= 4.0 and 7.0 <= segment.end <= 7.2
    assert segment.words and all(segment.start <= w.start < w.end <= segment.end for w in segment.words)


def test_truncated_wav_is_transcribed_with_a_warning(tiny, tmp_path):
    path = write_speech_wav(tmp_path / "cut.wav", 2.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    result = transcribe(tiny, path, GREEDY)
    assert result.duration == pytest.approx(1.33, abs=0.02)
    assert any("truncated" in w for w in result.warnings)


def test_bytes_source_and_attention_kept_only_when_asked(tiny, speech_wav):
    data = speech_wav.read_bytes()
    kept = transcribe(tiny, ("<stdin>", data), GREEDY)
    assert kept.segments[0].attention is not None
    dropped = next(transcribe_many(tiny, [("<stdin>", data)], GREEDY))
    assert dropped.text == kept.text and dropped.segments[0].attention is None


@pytest.mark.parametrize("timing", ["ctc", "attention"])
def test_align_known_text(tiny, timing):
    samples = speech_like(2.0)
    words = align_text(tiny, samples, "hello there world", timing, offset=10.0)
    assert [w.text for w in words] == ["hello", "there", "world"]
    assert all(10.0 <= w.start < w.end <= 12.0 for w in words)


def test_expand_inputs(tmp_path):
    tree = tmp_path / "rec"
    write_speech_wav(tree / "b.wav")
    write_speech_wav(tree / "sub dir" / "ä.flac")
    write_speech_wav(tree / ".hidden" / "x.wav")
    (tree / "notes.txt").write_text("not audio")
    (tmp_path / "empty").mkdir()
    sources = expand_inputs([str(tree), str(tmp_path / "empty"), str(tmp_path / "nope.wav"), str(tree / "b.wav")])
    assert [s.relative for s in sources[:2]] == [Path("b.wav"), Path("sub dir/ä.flac")]
    assert "no audio files" in str(sources[2].error) and "no such file" in str(sources[3].error)
    assert len(sources) == 4  # rec/b.wav named twice is transcribed once


def test_read_list_lines_and_nul():
    import io

    assert read_list(io.BytesIO(b"a b.wav\n\n/x/\xc3\xa4.wav\r\n")) == ["a b.wav", "/x/ä.wav"]
    assert read_list(io.BytesIO(b"a\nb.wav\0c.wav\0")) == ["a\nb.wav", "c.wav"]


def test_each_piece_keeps_the_speed_whose_transcript_scores_best(tiny, tmp_path, monkeypatch):
    import dataclasses

    import speechcli.transcription as transcription

    path = write_speech_wav(tmp_path / "speech.wav", 2.0, seed=3)
    alone = {speed: transcribe(tiny, path, dataclasses.replace(GREEDY, speeds=(speed,))).text for speed in (1.0, 0.7)}
    assert alone[1.0] != alone[0.7]  # else the test could not tell which speed was kept
    decode = transcription.decode_pieces

    def slowest_scores_best(model, features, options, *views):
        hyps, ctc = decode(model, features, options, *views)
        longest = max(range(len(features)), key=lambda i: len(features[i]))
        for i, hyp in enumerate(hyps):
            hyp.score = 0.0 if i == longest else -1e6
        return hyps, ctc

    both = dataclasses.replace(GREEDY, speeds=(1.0, 0.7))
    assert transcribe(tiny, path, both).text in alone.values()
    monkeypatch.setattr(transcription, "decode_pieces", slowest_scores_best)
    assert transcribe(tiny, path, both).text == alone[0.7]


def test_a_slowed_piece_keeps_the_recordings_time_axis(tiny, speech_wav):
    import dataclasses

    plain = transcribe(tiny, speech_wav, GREEDY).segments[0]
    slowed = transcribe(tiny, speech_wav, dataclasses.replace(GREEDY, speeds=(0.7,))).segments[0]
    assert (slowed.start, slowed.end) == (plain.start, plain.end)
    assert abs(slowed.attention.shape[1] - plain.attention.shape[1]) <= 1
    assert np.allclose(slowed.attention.sum(axis=1), 1.0)
    assert all(slowed.start <= w.start < w.end <= slowed.end for w in slowed.words)


def test_models_record_their_speeds_else_the_default_applies(tiny):
    import dataclasses

    from speechcli.checkpoint import DEFAULT_SPEEDS

    assert tiny.decoding_options().speeds == DEFAULT_SPEEDS
    recorded = dataclasses.replace(tiny, info={"decoding": {"speeds": [1.0, 0.9]}})
    assert recorded.decoding_options().speeds == (1.0, 0.9)
    assert recorded.decoding_options(speeds=(1.0,)).speeds == (1.0,)
    with pytest.raises(ValueError, match="speeds"):
        next(transcribe_many(tiny, [("mem", speech_like(1.0))], dataclasses.replace(GREEDY, speeds=())))


def _with_quiet_room(speech: np.ndarray, seconds: float, seed: int = 0) -> np.ndarray:
    """``speech`` with ``seconds`` of a faint noise floor before and after it (not digital silence, which the
    splitter trims)."""
    pause = np.zeros(int(seconds * RATE), np.float32)
    padded = np.concatenate([pause, speech, pause])
    return padded + np.random.default_rng(seed).normal(0, 1e-4, padded.shape).astype(np.float32)


def test_a_piece_with_pauses_around_its_speech_is_also_decoded_trimmed(tiny, monkeypatch):
    import dataclasses

    import speechcli.transcription as transcription

    audio = ("room", _with_quiet_room(speech_like(1.2, seed=4), 1.5))
    seen = []
    decode = transcription.decode_pieces

    def record_and_trimmed_scores_best(model, features, options, *views):
        seen.append([len(f) for f in features])
        hyps, ctc = decode(model, features, options, *views)
        shortest = min(range(len(features)), key=lambda i: len(features[i]))
        for i, hyp in enumerate(hyps):
            hyp.score = 0.0 if i == shortest else -1e6
        return hyps, ctc

    monkeypatch.setattr(transcription, "decode_pieces", record_and_trimmed_scores_best)
    plain = transcribe(tiny, audio, GREEDY)
    assert len(seen[-1]) == 1  # trimmed_view_s = 0: one view
    trimmed = transcribe(tiny, audio, dataclasses.replace(GREEDY, trimmed_view_s=0.3))
    whole, cut = seen[-1]
    assert cut < whole - 200  # 10 ms frames: more than 2 s of the 3 s of pauses left out
    segment = trimmed.segments[0]
    assert segment.attention.shape[1] == plain.segments[0].attention.shape[1]  # on the whole piece's frames
    assert np.allclose(segment.attention.sum(axis=1), 1.0)
    assert segment.attention[:, :20].sum() == 0  # the trimmed view starts more than 0.8 s into the piece
    piece_start, _, (speech_start, speech_end) = split_with_speech(audio[1])[0]
    cut_start, cut_end = piece_start + speech_start - int(0.3 * RATE), piece_start + speech_end + int(0.3 * RATE)
    alone = transcribe(tiny, ("cut", audio[1][cut_start:cut_end]), GREEDY)  # the trimmed view's samples
    assert trimmed.text == alone.text
    shift = cut_start / RATE  # word times are on the recording's time axis
    assert [t for w in trimmed.words for t in (w.start, w.end)] == pytest.approx(
        [t + shift for w in alone.words for t in (w.start, w.end)], abs=0.002)


def test_no_trimmed_view_when_the_speech_fills_the_piece(tiny, monkeypatch):
    import dataclasses

    import speechcli.transcription as transcription

    seen = []
    decode = transcription.decode_pieces
    monkeypatch.setattr(transcription, "decode_pieces",
                        lambda model, features, options, *views: seen.append(len(features)) or decode(model, features, options, *views))
    transcribe(tiny, ("tight", speech_like(1.2, seed=4)), dataclasses.replace(GREEDY, trimmed_view_s=0.3))
    assert seen == [1]
    assert tiny.decoding_options().trimmed_view_s == 0.3  # on by default
    assert tiny.decoding_options(trimmed_view=False).trimmed_view_s == 0
    recorded_off = dataclasses.replace(tiny, info={"decoding": {"trimmed_view_s": 0.0}})
    assert recorded_off.decoding_options().trimmed_view_s == 0
    assert recorded_off.decoding_options(trimmed_view=True).trimmed_view_s == 0.3


def test_views_keep_the_transcript_they_agree_on(monkeypatch):
    import speechcli.transcription as transcription
    from speechcli.decoding import Hypothesis

    # piece 1: view 0 alone fits its own transcript best; views 1 and 2 agree on another that all three find
    # likely. Piece 2: its two views agree, so nothing is rescored. Scores: acoustic part + LM part.
    on_view = {(0, (5,)): -1.0, (1, (5,)): -20.0, (2, (5,)): -20.0, (0, (6,)): -3.0, (1, (6,)): -3.0, (2, (6,)): -3.0}
    lm_part = {(5,): -0.5, (6,): -0.2}
    scored = []

    def fake_scores(model, states, enc_lengths, ctc, pairs, weight):
        scored.extend(pairs)
        return np.array([on_view[(row, tuple(tokens))] for row, tokens in pairs])

    def views():
        return [Hypothesis([5], -1.5), Hypothesis([6], -3.2), Hypothesis([6], -3.2), Hypothesis([7], -2.0),
                Hypothesis([7], -2.5)]

    monkeypatch.setattr(transcription, "transcript_scores", fake_scores)
    beam = DecodingOptions(beam_size=4, ctc_weight=0.3, view_temperature=3.0)
    hyps = views()
    frames = torch.full((5,), 10)
    transcription._score_by_agreement(None, None, frames, None, hyps, [3, 2], beam)
    best = max(range(3), key=lambda k: hyps[k].score)
    assert hyps[best].tokens == [6]  # the best single view (0, score -1.5) would have kept [5]
    soft = {t: soft_maximum(np.array([on_view[(v, t)] for v in range(3)]), 3.0) + lm_part[t] for t in lm_part}
    assert [h.score for h in hyps[:3]] == pytest.approx([soft[(5,)], soft[(6,)], soft[(6,)]])
    assert sorted(scored) == sorted((v, [t]) for v in range(3) for t in (5, 6))  # piece 2 was not rescored
    assert [h.score for h in hyps[3:]] == [-2.0, -2.5]
    hyps = views()
    transcription._score_by_agreement(None, None, frames, None, hyps, [3, 2],
                                      dataclasses.replace(beam, view_temperature=0.01))
    assert max(range(3), key=lambda k: hyps[k].score) == 0  # near T = 0 the soft maximum is the maximum


def test_only_the_best_few_transcripts_compete_on_agreement(monkeypatch):
    import speechcli.transcription as transcription
    from speechcli.decoding import Hypothesis

    scored = []
    monkeypatch.setattr(transcription, "transcript_scores",
                        lambda model, states, lengths, ctc, pairs, weight: scored.extend(pairs) or -np.ones(len(pairs)))
    monkeypatch.setattr(transcription, "AGREEMENT_CANDIDATES", 2)
    hyps = [Hypothesis([10 + k], -float(k)) for k in range(4)]  # four views, four transcripts, view 0 best
    transcription._score_by_agreement(None, None, torch.full((4,), 10), None, hyps, [4], DecodingOptions(beam_size=2, view_temperature=3.0))
    assert sorted({tuple(tokens) for _, tokens in scored}) == [(10,), (11,)] and len(scored) == 2 * 4
    assert hyps[2].score == hyps[3].score == -np.inf and np.isfinite([hyps[0].score, hyps[1].score]).all()


def test_models_record_their_view_temperature_else_the_default_applies(tiny):
    from speechcli.checkpoint import DEFAULT_VIEW_TEMPERATURE

    assert tiny.decoding_options().view_temperature == DEFAULT_VIEW_TEMPERATURE > 0
    recorded = dataclasses.replace(tiny, info={"decoding": {"view_temperature": 0.0}})
    assert recorded.decoding_options().view_temperature == 0.0
    assert recorded.decoding_options(view_temperature=2.0).view_temperature == 2.0


def test_agreeing_views_give_one_of_their_own_transcripts(tiny, monkeypatch):
    import speechcli.transcription as transcription

    audio = ("speech", speech_like(1.5, seed=6))
    options = DecodingOptions(beam_size=3, ctc_weight=0.3, speeds=(1.0, 0.7, 1.3))
    alone = {transcribe(tiny, audio, dataclasses.replace(options, speeds=(s,))).text for s in options.speeds}
    assert len(alone) > 1  # else there would be nothing to choose
    real_scores, calls = transcription.transcript_scores, []
    monkeypatch.setattr(transcription, "transcript_scores", lambda *args: calls.append(args) or real_scores(*args))
    agreed = transcribe(tiny, audio, dataclasses.replace(options, view_temperature=3.0))
    assert calls and agreed.text in alone
    calls.clear()
    transcribe(tiny, audio, options)  # view_temperature 0: the best single view, nothing rescored
    assert not calls
