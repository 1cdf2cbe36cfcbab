"""The command line: help, start-up without torch, evaluate and visualize-attention, and errors.

The transcribe command's inputs and formats are covered in test_transcribe_cli.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from speechcli.cli import app

from conftest import write_speech_wav

COMMANDS = ("featurize", "train", "transcribe", "evaluate", "visualize-attention")
REPO = Path(__file__).resolve().parents[1]


def invoke(*args) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def _error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def assert_one_clean_error(result, code: int = 1, mentions: str | None = None) -> str:
    """Exit ``code``, exactly one line on stderr, no traceback; returns that line."""
    lines = _error_lines(result)
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if mentions:
        assert mentions in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------------------------------------
# help and start-up


def test_help_lists_the_five_commands():
    for args in ([], ["--help"]):
        result = invoke(*args)
        assert result.exit_code in (0, 2)  # no arguments shows the help (as a usage error in click >= 8.2)
        text = result.output
        for command in COMMANDS:
            assert command in text, command


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help_with_an_example(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert "Example" in result.output
    assert "speechcli " + command in " ".join(result.output.split())  # the example runs this command


def _subprocess_env() -> dict:
    return {**os.environ, "COLUMNS": "120", "OMP_NUM_THREADS": "1"}


def test_python_dash_m_speechcli_help():
    result = subprocess.run([sys.executable, "-m", "speechcli", "--help"], capture_output=True, text=True,
                            cwd=REPO, env=_subprocess_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    assert all(command in result.stdout for command in COMMANDS)
    assert "Traceback" not in result.stderr


def test_importing_the_cli_does_not_import_torch():
    code = "import speechcli.cli, sys; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env=_subprocess_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_help_does_not_import_torch():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom speechcli.cli import app\n"
            "for args in (['--help'], ['transcribe', '--help'], ['train', '--help']):\n"
            "    assert CliRunner().invoke(app, args).exit_code == 0\n"
            "assert 'torch' not in sys.modules\nprint('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env=_subprocess_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# ------------------------------------------------------------------------------------------------
# evaluate and visualize-attention with the tiny (untrained) model


def _common(model: Path) -> list[str]:
    return ["--model", str(model), "--device", "cpu", "--threads", "1"]


def _corpus(directory: Path, extra: dict[str, str] | None = None) -> Path:
    """A manifest with two good clips (and any extra lines: relative audio path → text)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_speech_wav(directory / "one.wav", seconds=1.0, seed=1)
    write_speech_wav(directory / "two.wav", seconds=1.5, seed=2)
    rows = {"one.wav": "hello world", "two.wav": "this is a test", **(extra or {})}
    manifest = directory / "transcripts.tsv"
    manifest.write_text("".join(f"{path}\t{text}\n" for path, text in rows.items()))
    return manifest


def test_visualize_attention_beam_uses_the_models_weights(tiny_model_path, tmp_path, speech_wav, monkeypatch):
    import torch

    import speechcli.attention_view

    bundle = torch.load(tiny_model_path, weights_only=True)
    bundle["info"] = {"decoding": {"ctc_weight": 0.6}}
    tuned = tmp_path / "tuned.pt"
    torch.save(bundle, tuned)
    seen = []
    real = speechcli.attention_view.transcribe
    monkeypatch.setattr(speechcli.attention_view, "transcribe", lambda m, audio, options: seen.append(options) or real(m, audio, options))
    result = invoke("visualize-attention", speech_wav, *_common(tuned), "--out", tmp_path / "a.png", "--beam-size", "3")
    assert result.exit_code == 0, result.stderr
    assert [(o.beam_size, o.ctc_weight) for o in seen] == [(3, 0.6)]


@pytest.mark.parametrize("command", ["transcribe", "evaluate"])
def test_decoding_flags_reach_the_search(command, tiny_model_path, tmp_path, monkeypatch):
    import speechcli.transcription

    import torch

    from speechcli.lm import CharNgramLM
    from speechcli.word_lm import WordNgramLM

    bundle = torch.load(tiny_model_path, weights_only=True)
    bundle["lm"] = CharNgramLM.train(["hello world", "this is a test"], order=3, min_count=1).to_dict()
    bundle["word_lm"] = WordNgramLM.train(["hello world", "this is a test"], order=2, min_count=1).to_dict()
    with_lms = tmp_path / "with_lms.pt"
    torch.save(bundle, with_lms)
    seen = []
    monkeypatch.setattr(speechcli.transcription, "transcribe_many", lambda model, sources, options, **_: seen.append(options) or [])
    manifest = _corpus(tmp_path / "corpus")
    inputs = [tmp_path / "corpus" / "one.wav"] if command == "transcribe" else ["--data", manifest]
    for model, expected in ((with_lms, (3, 0.4, 0.7)), (tiny_model_path, (3, 0.0, 0.0))):  # no LMs: weights unused
        result = invoke(command, *inputs, *_common(model), "--beam-size", "3", "--lm-weight", "0.4",
                        "--word-lm-weight", "0.7", "--quiet")
        assert result.exit_code == 0, result.stderr
        options = seen.pop()
        assert (options.beam_size, options.lm_weight, options.word_lm_weight) == expected


def test_evaluate_with_the_tiny_model(tiny_model_path, tmp_path):
    manifest = _corpus(tmp_path / "corpus")
    result = invoke("evaluate", "--data", manifest, *_common(tiny_model_path), "--beam-size", "2", "--quiet")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("utterances: 2  WER: ") and "CER: " in lines[0]
    assert sum("ref: " in line for line in lines) == 2  # the worst-utterance listing
    assert result.stderr == ""


def test_evaluate_a_pairs_directory(tiny_model_path, tmp_path):
    write_speech_wav(tmp_path / "pairs" / "a.wav")
    (tmp_path / "pairs" / "a.txt").write_text("Hello, World!\n")
    result = invoke("evaluate", "--data", tmp_path / "pairs", *_common(tiny_model_path), "--beam-size", "1", "--worst", "0")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("utterances: 1  ")


def _bad_files(directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    empty = directory / "empty.wav"
    empty.write_bytes(b"")
    text = directory / "notes.wav"
    text.write_text("this is not audio\n" * 20)
    good = write_speech_wav(directory / "good.wav")
    corrupt = bytearray(good.read_bytes())
    corrupt[22:24] = b"\x00\x00"  # the WAV header's channel count
    (directory / "corrupt.wav").write_bytes(bytes(corrupt))
    truncated = directory / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[:44] + os.urandom(1000))  # cut off after 31 ms of its 1.2 s
    garbage = directory / "garbage.flac"
    garbage.write_bytes(b"fLaC" + os.urandom(300))
    return {"missing": directory / "missing.wav", "empty": empty, "not audio": text,
            "corrupt": directory / "corrupt.wav", "truncated": truncated, "garbage flac": garbage}


BAD_KINDS = ["missing", "empty", "not audio", "corrupt", "truncated", "garbage flac"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_visualize_attention_bad_file_is_one_line_exit_1(tiny_model_path, tmp_path, kind):
    bad = _bad_files(tmp_path / "in")[kind]
    out = tmp_path / "att.png"
    result = invoke("visualize-attention", bad, *_common(tiny_model_path), "--out", out)
    line = assert_one_clean_error(result, 1, mentions=str(bad))
    assert line.startswith("error:")
    assert result.stdout == ""
    assert not out.exists()


def test_visualize_attention_writes_a_png(tiny_model_path, tmp_path, speech_wav):
    out = tmp_path / "plots" / "att.png"
    result = invoke("visualize-attention", speech_wav, *_common(tiny_model_path), "--out", out)
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 1000
    assert len(result.stdout.splitlines()) == 1  # the transcript (garbage from an untrained model)
    assert "<eos>" in result.stderr or "0s" in result.stderr  # the terminal heatmap
    assert f"wrote {out}" in " ".join(result.stderr.split())


def test_evaluate_reports_each_bad_file_and_scores_the_rest(tiny_model_path, tmp_path):
    bad = _bad_files(tmp_path / "corpus")
    extra = {str(path.relative_to(tmp_path / "corpus")): "some words" for path in bad.values()}
    manifest = _corpus(tmp_path / "corpus", extra)
    result = invoke("evaluate", "--data", manifest, *_common(tiny_model_path), "--beam-size", "1")
    assert result.exit_code == 1, result.stderr
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert all(line.startswith("error:") for line in errors), errors
    assert len(errors) == len(bad)
    for kind, path in bad.items():
        assert sum(path.name in line for line in errors) == 1, (kind, errors)
    assert result.stdout.startswith("utterances: 2  ")  # the good ones are still scored


@pytest.mark.parametrize("command", ["evaluate", "visualize-attention", "transcribe"])
@pytest.mark.parametrize("model_kind", ["missing", "corrupt", "empty"])
def test_bad_model_path_is_one_line_exit_1(command, model_kind, tmp_path, speech_wav):
    model = tmp_path / f"{model_kind}.pt"
    if model_kind == "corrupt":
        model.write_bytes(b"\x80\x02not really a pickle" * 10)
    elif model_kind == "empty":
        model.write_bytes(b"")
    target = ["--data", _corpus(tmp_path / "corpus")] if command == "evaluate" else [speech_wav]
    result = invoke(command, *target, "--model", model, "--device", "cpu", "--threads", "1")
    assert_one_clean_error(result, 1, mentions=str(model))
    assert result.stdout == ""


def test_transcribe_basic(tiny_model_path, speech_wav):
    result = invoke("transcribe", speech_wav, *_common(tiny_model_path), "--beam-size", "1")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1


# ------------------------------------------------------------------------------------------------
# usage errors: exit 2


@pytest.mark.parametrize("args", [
    ["no-such-command"],
    ["evaluate"],  # --data is required
    ["evaluate", "--data", "/nonexistent/corpus.tsv"],
    ["evaluate", "--data", ".", "--beam-size", "0"],
    ["evaluate", "--data", ".", "--device", "tpu"],
    ["visualize-attention"],  # FILE is required
    ["visualize-attention", "a.wav", "--threads", "0"],
    ["visualize-attention", "a.wav", "--no-such-option"],
    ["featurize"],
    ["featurize", "--data", "/nonexistent"],
    ["featurize", "--data", ".", "--shard", "3/2"],
    ["train"],
    ["train", "--data", "/nonexistent"],
    ["train", "--data", ".", "--epochs", "0"],
    ["train", "--data", ".", "--frontend", "vgg"],
    ["transcribe", "a.wav", "--format", "docx"],
])
def test_usage_errors_exit_2(args):
    result = invoke(*args)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_model_directory_is_a_usage_error(tmp_path, speech_wav):
    result = invoke("visualize-attention", speech_wav, "--model", tmp_path)
    assert result.exit_code == 2


# ------------------------------------------------------------------------------------------------
# featurize through the CLI


def test_featurize_writes_a_cache_and_prints_its_path(tmp_path):
    manifest = _corpus(tmp_path / "corpus", {"missing.wav": "gone"})
    cache = tmp_path / "cache"
    result = invoke("featurize", "--data", manifest, "--cache", cache)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(cache)
    assert (cache / "manifest.jsonl").read_text().count("\n") == 2
    assert "missing.wav" in result.stderr  # the skipped utterance is named


def test_featurize_with_no_usable_audio_fails_cleanly(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "transcripts.tsv").write_text("gone.wav\thello\n")
    result = invoke("featurize", "--data", corpus / "transcripts.tsv", "--cache", tmp_path / "cache")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert any(line.startswith("error:") for line in result.stderr.splitlines())


def test_train_from_a_checkpoint_of_another_shape_is_one_clean_error(tiny_model_path, tmp_path):
    manifest = _corpus(tmp_path / "corpus")
    result = invoke("train", "--data", manifest, "--cache", tmp_path / "cache", "--dev", manifest, "--out", tmp_path / "run",
                    "--init-from", tiny_model_path, "--encoder-hidden", "999", "--max-steps", "1", "--device", "cpu",
                    "--threads", "1", "--quiet")
    line = assert_one_clean_error(result, mentions="its --encoder-hidden is")
    assert "not 999; leave --encoder-hidden out" in line
    assert not (tmp_path / "run" / "last.pt").exists()
