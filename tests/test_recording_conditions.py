"""recipes/english/make_corpus.py --condition-copies: real clips as other recordings would capture them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

_SPEC = importlib.util.spec_from_file_location("make_corpus", Path(__file__).parents[1] / "recipes/english/make_corpus.py")
make_corpus = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(make_corpus)

RATE = make_corpus.SAMPLE_RATE


def _seeds_for(condition: str, count: int = 1, round_: int = 0) -> list[int]:
    """The first ``count`` seeds that draw ``condition`` in ``round_``."""
    seeds = (s for s in range(1000) if make_corpus.draw_condition(np.random.default_rng(s), round_) == condition)
    return [next(seeds) for _ in range(count)]


def _seed_for(condition: str) -> int:
    return _seeds_for(condition)[0]


def _speech_like(seconds: float = 2.0) -> np.ndarray:
    """Broadband bursts with pauses between them (a quarter second each, the first a burst), peak 0.5."""
    rng = np.random.default_rng(7)
    wave = rng.standard_normal(int(seconds * RATE)) * 0.1
    wave *= 1 - (np.arange(len(wave)) // (RATE // 4)) % 2
    return (wave * 0.5 / np.abs(wave).max()).astype(np.float32)


def _band_share(wave: np.ndarray, low_hz: float) -> float:
    power = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(len(wave), 1 / RATE)
    return float(power[freqs > low_hz].sum() / power.sum())


def test_conditions_are_drawn_in_their_shares_and_repeat_with_the_seed():
    drawn = [make_corpus.draw_condition(np.random.default_rng(s)) for s in range(4000)]
    for name, share in make_corpus.RECORDING_CONDITIONS.items():
        assert drawn.count(name) / len(drawn) == pytest.approx(share, abs=0.03)
    wave = _speech_like()
    assert np.array_equal(make_corpus.recorded_condition(wave, 11), make_corpus.recorded_condition(wave, 11))


def test_from_round_2_a_share_of_the_copies_has_a_quiet_room_around_it_and_earlier_rounds_stay_as_drawn():
    for round_, shares in ((1, make_corpus.RECORDING_CONDITIONS), (2, make_corpus.RECORDING_CONDITIONS_WITH_ROOM)):
        drawn = [make_corpus.draw_condition(np.random.default_rng(s), round_) for s in range(4000)]
        assert sorted(set(drawn)) == sorted(shares)
        for name, share in shares.items():
            assert drawn.count(name) / len(drawn) == pytest.approx(share, abs=0.03)
    assert "room" not in make_corpus.RECORDING_CONDITIONS and sum(make_corpus.RECORDING_CONDITIONS_WITH_ROOM.values()) == 1


def test_a_quiet_room_pads_the_clip_with_a_faint_noise_floor_throughout():
    wave = _speech_like()
    for seed in _seeds_for("room", 6, round_=2):
        roomy = make_corpus.recorded_condition(wave, seed, 2).astype(np.float64)
        extra = len(roomy) - len(wave)
        assert 0.4 * RATE <= extra <= 3.0 * RATE
        edge = roomy[: int(0.2 * RATE)]  # before the speech starts: only the noise floor
        assert edge.any()
        floor_db = 10 * np.log10(np.mean(wave.astype(np.float64) ** 2) / np.mean(edge ** 2))
        assert 25 - 10 < floor_db < 50 + 10  # brown noise over 0.2 s strays several dB from its level over the clip
        assert np.abs(roomy).max() > 10 * np.abs(edge).max()  # the speech stands out of the room


def test_noise_is_added_at_5_to_25_db_snr():
    wave = _speech_like()
    for seed in _seeds_for("noise", 10):
        noise = make_corpus.recorded_condition(wave, seed) - wave
        snr_db = 10 * np.log10(np.mean(wave.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
        assert 5 - 0.1 < snr_db < 25 + 0.1


def test_narrowband_leaves_nothing_above_4_khz():
    wave = _speech_like()
    assert _band_share(wave, 4200) > 0.4
    narrow = make_corpus.recorded_condition(wave, _seed_for("narrowband"))
    assert len(narrow) == len(wave)
    assert _band_share(narrow, 4200) < 0.02  # at most a little added noise there


def test_quiet_copies_are_30_to_50_db_down_and_16_bit_leaves_their_faint_parts_a_step_at_most(tmp_path):
    wave = _speech_like()
    wave[: RATE // 4] *= 1e-4  # a faint first burst, below half a 16-bit step once 30 dB quieter
    quiet = make_corpus.recorded_condition(wave, _seed_for("quiet"))
    peak_db = 20 * np.log10(np.abs(quiet).max())
    assert -50 - 0.1 < peak_db < -30 + 0.1
    make_corpus.write_wav(quiet, tmp_path / "quiet.wav")
    written, _ = sf.read(tmp_path / "quiet.wav")
    assert np.abs(written[: RATE // 4]).max() <= 1 / 32768  # libsndfile rounds down: 0 or -1 step
    assert np.abs(written).max() == pytest.approx(np.abs(quiet).max(), rel=0.01)


def test_zero_padding_surrounds_the_unchanged_clip_with_digital_silence():
    wave = _speech_like()
    padded = make_corpus.recorded_condition(wave, _seed_for("zeros"))
    start = int(np.flatnonzero(padded)[0])
    assert 0.2 * RATE <= start <= 1.5 * RATE
    assert np.array_equal(padded[start : start + len(wave)], wave)
    after = padded[start + len(wave) :]
    assert 0.2 * RATE <= len(after) <= 1.5 * RATE and not after.any()


def test_a_copy_is_written_once_under_the_name_of_its_condition(tmp_path):
    source = tmp_path / "clip.wav"
    sf.write(source, _speech_like(), RATE, subtype="PCM_16")
    row = (str(source), "some words", "cv")
    out = tmp_path / "corpus"
    made, seconds = make_corpus.condition_copy((row, out, 1234, 0))
    relpath = make_corpus.condition_relpath(row, 1234)
    condition = make_corpus.draw_condition(np.random.default_rng(make_corpus.clip_seed(row, 1234)))
    assert made == 1 and seconds >= 2.0 and (out / relpath).is_file()
    assert relpath == f"real_cond/cv/clip_{condition}.wav"
    assert make_corpus.condition_copy((row, out, 1234, 0)) == (0, 0.0)  # resumable: not made again
    assert make_corpus.condition_rows([row], 1234) == [(relpath, "some words", "cv_cond")]


def test_a_later_round_draws_every_copy_afresh_beside_the_first(tmp_path):
    source = tmp_path / "clip.wav"
    wave = _speech_like()
    sf.write(source, wave, RATE, subtype="PCM_16")
    row = (str(source), "some words", "cv")
    out = tmp_path / "corpus"
    first, second = (make_corpus.condition_relpath(row, 1234, r) for r in (0, 1))
    assert second.startswith("real_cond/cv/clip_r1_") and not first.startswith("real_cond/cv/clip_r1_")
    for round_ in (0, 1):
        assert make_corpus.condition_copy((row, out, 1234, round_))[0] == 1
    assert (out / first).is_file() and (out / second).is_file()
    assert not np.array_equal(sf.read(out / first)[0], sf.read(out / second)[0])
    assert make_corpus.condition_rows([row], 1234, 1) == [(second, "some words", "cv_cond")]
    seeds = {make_corpus.clip_seed(row, 1234, r) for r in range(20)}
    assert len(seeds) == 20  # twenty rounds, twenty different draws


def test_from_round_14_a_share_of_the_copies_is_stored_in_8_bits_and_earlier_rounds_stay_as_drawn():
    for round_ in (2, 13):
        assert make_corpus.condition_shares(round_) is make_corpus.RECORDING_CONDITIONS_WITH_ROOM
    drawn = [make_corpus.draw_condition(np.random.default_rng(s), 14) for s in range(4000)]
    shares = make_corpus.RECORDING_CONDITIONS_WITH_8_BIT
    assert sorted(set(drawn)) == sorted(shares) and sum(shares.values()) == pytest.approx(1)
    assert drawn.count("eight_bit") / len(drawn) == pytest.approx(shares["eight_bit"], abs=0.03)


def test_8_bit_copies_keep_256_levels_with_an_offset_and_survive_the_16_bit_file(tmp_path):
    wave = _speech_like()
    for seed in _seeds_for("eight_bit", 6, round_=14):
        stored = make_corpus.recorded_condition(wave, seed, 14).astype(np.float64)
        assert len(stored) == len(wave)
        assert np.array_equal(stored * 128, np.round(stored * 128)) and len(np.unique(stored)) <= 256
        assert -18 - 1 < 20 * np.log10(np.abs(stored).max()) < -1 + 1  # the offset and a level's step move it a little
        assert abs(np.mean(stored[RATE // 4 : RATE // 2])) <= 0.01 + 1 / 128  # a pause: the offset alone
        make_corpus.write_wav(stored, tmp_path / "8bit.wav")
        assert np.array_equal(sf.read(tmp_path / "8bit.wav")[0], stored)
