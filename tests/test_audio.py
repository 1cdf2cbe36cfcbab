"""Reading audio: the plain-WAV fast path gives exactly what libsndfile gives, and hands off the rest."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from speechcli import audio
from speechcli.audio import load_audio, read_float32
from speechcli.errors import AudioError


def _noise(frames: int, channels: int) -> np.ndarray:
    rng = np.random.default_rng(frames + channels)
    return np.clip(0.4 * rng.standard_normal((frames, channels)), -1, 1).astype(np.float32)


def _reference(path, rate: int = 16_000) -> np.ndarray:
    samples, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return audio.prepare_samples(samples, file_rate, rate, name=str(path))


@pytest.mark.parametrize("channels", [1, 2])
def test_plain_pcm16_wav_takes_the_fast_path_and_matches_libsndfile(tmp_path, channels):
    path = tmp_path / "a.wav"
    soundfile.write(path, _noise(8000, channels), 16000, subtype="PCM_16")
    assert audio._read_plain_wav(path) is not None
    assert np.array_equal(load_audio(path), _reference(path))


def test_full_scale_pcm16_values_are_exact(tmp_path):
    path = tmp_path / "edges.wav"
    edges = np.array([-32768, -1, 0, 1, 32767] * 400, dtype=np.int16)
    soundfile.write(path, edges, 16000, subtype="PCM_16")
    samples, _ = audio._read_plain_wav(path)
    assert samples[:5, 0].tolist() == [-1.0, -1 / 32768, 0.0, 1 / 32768, 32767 / 32768]
    with soundfile.SoundFile(path) as sound:
        assert np.array_equal(read_float32(sound), samples)


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_24"), ("WAV", "FLOAT"), ("WAVEX", "PCM_16"), ("FLAC", "PCM_16")])
def test_other_formats_go_to_libsndfile_with_the_same_result(tmp_path, fmt, subtype):
    path = tmp_path / f"a.{'flac' if fmt == 'FLAC' else 'wav'}"
    soundfile.write(path, _noise(8000, 1), 8000, format=fmt, subtype=subtype)
    assert audio._read_plain_wav(path) is None
    assert np.array_equal(load_audio(path), _reference(path))


def test_extra_chunks_before_the_data_are_skipped(tmp_path):
    path = tmp_path / "list.wav"
    soundfile.write(path, _noise(4001, 1), 16000, subtype="PCM_16")
    raw = path.read_bytes()
    odd = b"LIST" + (3).to_bytes(4, "little") + b"abc\x00"  # odd size: one pad byte follows
    data_at = raw.index(b"data")
    with_list = raw[:data_at] + odd + raw[data_at:]
    with_list = with_list[:4] + (len(with_list) - 8).to_bytes(4, "little") + with_list[8:]
    path.write_bytes(with_list)
    assert audio._read_plain_wav(path) is not None
    assert np.array_equal(load_audio(path), _reference(path))


def test_truncated_wav_is_left_to_libsndfile(tmp_path):
    path = tmp_path / "cut.wav"
    soundfile.write(path, _noise(16000, 1), 16000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:-6000])
    assert audio._read_plain_wav(path) is None
    assert len(load_audio(path)) == 16000 - 3000


def test_broken_and_too_short_files_raise_audio_errors(tmp_path):
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    with pytest.raises(AudioError, match="not a readable audio file"):
        load_audio(tmp_path / "junk.wav")
    soundfile.write(tmp_path / "short.wav", _noise(800, 1), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match="too short"):
        load_audio(tmp_path / "short.wav")
