"""The model that ships in models/ is found and loaded by default, and gets the quick-start sample right."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_default_model_transcribes_the_quick_start_sample():
    sample = ROOT / "samples" / "seven.wav"
    result = subprocess.run([sys.executable, "-m", "speechcli", "transcribe", str(sample), "--threads", "1"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "seven\n"
    assert (ROOT / "samples" / "seven.txt").read_text().strip() == "seven"


def test_shipped_model_records_its_decoding_settings():
    from speechcli.checkpoint import load_model

    loaded = load_model(ROOT / "models" / "base.pt")
    options = loaded.decoding_options()
    assert (options.beam_size, options.ctc_weight, options.lm_weight) == (8, 0.2, 0.2)
    assert (options.word_lm_weight, options.oov_penalty) == (0.3, -1.2)
    assert loaded.lm is not None and "seven" in loaded.word_lm


def test_words_of_a_slowed_pass_are_timed_on_the_recording(tmp_path):
    # "seven" after 2 s of digital silence (which, before features were dithered, made it "go there"):
    # decoded at 0.8 × speed, its frames must be scaled back to the recording's time
    import dataclasses

    import numpy as np
    import soundfile

    from speechcli.checkpoint import load_model
    from speechcli.transcription import transcribe

    seven, rate = soundfile.read(ROOT / "samples" / "seven.wav", dtype="float32")
    audio = np.concatenate([np.zeros(2 * rate, dtype=np.float32), seven, np.zeros(rate // 2, dtype=np.float32)])
    path = tmp_path / "late-seven.wav"
    soundfile.write(path, audio, rate)
    loaded = load_model(ROOT / "models" / "base.pt")
    timed = {}
    for speed in (1.0, 0.8):
        result = transcribe(loaded, path, dataclasses.replace(loaded.decoding_options(), speeds=(speed,)))
        assert result.text == "seven"
        timed[speed] = (result.words[0].start, result.words[0].end)
    assert 1.8 <= timed[1.0][0] <= 2.2 and 2.3 <= timed[1.0][1] <= 2.7
    assert abs(timed[0.8][0] - timed[1.0][0]) <= 0.12 and abs(timed[0.8][1] - timed[1.0][1]) <= 0.12


def test_a_recording_padded_with_digital_silence_reads_as_without():
    # before pieces left the zeros at their edges out, 1 s of them on each side turned this Kathleen
    # prompt into "and how are your coming brown to this is still he explained" (7 word errors in 9); the
    # 50 ms of them kept until the thirtieth session still moved words. Now the decoded samples are the same.
    import numpy as np
    import pytest

    from conftest import SHARED_DATA
    from speechcli.audio import load_audio
    from speechcli.checkpoint import load_model
    from speechcli.transcription import transcribe

    clip = SHARED_DATA / "arctic-kathleen" / "flac" / "arctic_a0014_1592748281.flac"
    if not clip.is_file():
        pytest.skip(f"shared data not available at {SHARED_DATA}")
    loaded = load_model(ROOT / "models" / "base.pt")
    samples = load_audio(clip, loaded.feature_config.sample_rate)
    zeros = np.zeros(loaded.feature_config.sample_rate, dtype=np.float32)
    plain = transcribe(loaded, ("plain", samples))
    padded = transcribe(loaded, ("padded", np.concatenate([zeros, samples, zeros])))
    assert padded.text == plain.text and len(plain.words) >= 8
    assert [w.start for w in padded.words] == pytest.approx([w.start + 1.0 for w in plain.words], abs=1e-6)
