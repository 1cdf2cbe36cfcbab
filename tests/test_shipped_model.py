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
