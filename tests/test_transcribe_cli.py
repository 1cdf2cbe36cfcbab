"""`speechcli transcribe` end to end with the tiny model: inputs, formats, bad input, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from conftest import speech_like, write_speech_wav
from speechcli.cli import app
from test_writers import parse_cues

RATE = 16_000


@pytest.fixture
def run(tiny_model_path):
    def invoke(*args: str, input: bytes | None = None):
        runner = CliRunner()
        return runner.invoke(app, ["transcribe", "--model", str(tiny_model_path), "--beam-size", "1", "--threads", "1",
                                   *map(str, args)], input=input)

    return invoke


def _error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("fmt", ["txt", "json", "jsonl", "srt", "vtt", "tsv"])
def test_each_format_on_stdout(run, speech_wav, fmt):
    result = run(speech_wav, "--format", fmt)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert result.stderr == ""  # not a terminal: no progress, no logs
    if fmt in ("json", "jsonl"):
        data = json.loads(out)
        assert data["file"] == str(speech_wav) and data["text"] and data["segments"][0]["words"]
        assert fmt == "json" or out.count("\n") == 1
    elif fmt in ("srt", "vtt"):
        cues = parse_cues(out)
        assert cues and all(0 <= s < e <= 1.2 for s, e, _ in cues)
        assert all(a[1] <= b[0] for a, b in zip(cues, cues[1:]))
    elif fmt == "tsv":
        assert out.splitlines()[0] == "start\tend\ttext" and len(out.splitlines()) >= 2
    else:
        assert out.strip() and "\t" not in out


def test_all_formats_into_output_dir_with_awkward_names(run, tmp_path):
    audio = write_speech_wav(tmp_path / "in dir" / "grüße aus köln.wav")
    out = tmp_path / "out"
    result = run(audio, "--format", "all", "--output-dir", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"grüße aus köln.{ext}" for ext in sorted(["txt", "json", "srt", "vtt", "tsv"])]
    data = json.loads((out / "grüße aus köln.json").read_text(encoding="utf-8"))
    assert data["file"] == str(audio)


def test_directories_recursive_and_several_inputs(run, tmp_path):
    write_speech_wav(tmp_path / "rec" / "a.wav", seed=1)
    write_speech_wav(tmp_path / "rec" / "deeper" / "a.wav", seed=2)  # same stem: mirrored subfolder
    (tmp_path / "rec" / "readme.txt").write_text("not audio")
    out = tmp_path / "out"
    result = run(tmp_path / "rec", "--format", "txt", "--output-dir", out)
    assert result.exit_code == 0, result.stderr
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.txt")) == ["a.txt", "deeper/a.txt"]
    several = run(tmp_path / "rec", "--format", "txt")
    lines = several.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(tmp_path / "rec" / "a.wav"), str(tmp_path / "rec" / "deeper" / "a.wav")]
    array = json.loads(run(tmp_path / "rec", "--format", "json").stdout)
    assert isinstance(array, list) and len(array) == 2
    table = run(tmp_path / "rec", "--format", "tsv").stdout.splitlines()
    assert table[0] == "file\tstart\tend\ttext" and all(row.count("\t") == 3 for row in table)


def test_files_from_list_and_stdin(run, tmp_path):
    a = write_speech_wav(tmp_path / "with space.wav", seed=1)
    b = write_speech_wav(tmp_path / "b.wav", seed=2)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{a}\n\n{b}\n", encoding="utf-8")
    from_file = run("--files-from", listing, "--format", "jsonl")
    assert from_file.exit_code == 0 and [json.loads(x)["file"] for x in from_file.stdout.splitlines()] == [str(a), str(b)]
    from_stdin = run("--files-from", "-", "--format", "jsonl", input=f"{a}\0{b}\0".encode())
    assert from_stdin.stdout == from_file.stdout
    audio_on_stdin = run("-", "--format", "jsonl", input=a.read_bytes())
    data = json.loads(audio_on_stdin.stdout)
    assert audio_on_stdin.exit_code == 0 and data["file"] == "<stdin>"
    assert data["text"] == json.loads(from_file.stdout.splitlines()[0])["text"]
    not_audio = run("-", input=b"plain text, not audio")
    assert not_audio.exit_code == 1
    assert _error_lines(not_audio)[0] == "error: <stdin>: not a readable audio file (Format not recognised.)"


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    """Each awkward input, and whether it must succeed."""
    files = {}
    files["missing"] = tmp / "missing.wav"
    (tmp / "no audio here").mkdir()
    (tmp / "no audio here" / "notes.txt").write_text("hi")
    files["empty dir"] = tmp / "no audio here"
    files["zero bytes"] = tmp / "zero.wav"
    files["zero bytes"].write_bytes(b"")
    files["text as wav"] = tmp / "text.wav"
    files["text as wav"].write_text("this is not audio\n" * 20)
    files["text as mp3"] = tmp / "text.mp3"  # libsndfile calls this "File does not exist"
    files["text as mp3"].write_text("this is not audio either\n" * 20)
    files["too short"] = tmp / "short.wav"
    soundfile.write(files["too short"], speech_like(0.05), RATE)
    cut_flac = write_speech_wav(tmp / "cut.flac", 3.0)
    cut_flac.write_bytes(cut_flac.read_bytes()[:2000])  # breaks off in the first frames: nothing readable
    files["truncated flac"] = cut_flac
    return files


def _good_inputs(tmp: Path) -> dict[str, Path]:
    files = {}
    files["silent"] = tmp / "silent.wav"
    soundfile.write(files["silent"], np.zeros(RATE * 2, np.float32), RATE)
    files["8 kHz"] = write_speech_wav(tmp / "narrow.wav", rate=8000)
    files["48 kHz stereo"] = write_speech_wav(tmp / "stereo 48k.wav", rate=48000, channels=2)
    files["mp3"] = write_speech_wav(tmp / "speech.mp3", subtype="MPEG_LAYER_III")
    files["opus"] = tmp / "speech.opus"
    soundfile.write(files["opus"], speech_like(1.2, rate=48000), 48000, format="OGG", subtype="OPUS")
    files["ogg"] = write_speech_wav(tmp / "vorbis.ogg", subtype="VORBIS")
    files["non-ascii"] = write_speech_wav(tmp / "ñandú 日本.wav")
    truncated = write_speech_wav(tmp / "cut.wav", 2.0)
    truncated.write_bytes(truncated.read_bytes()[:40000])
    files["truncated wav"] = truncated
    return files


def test_every_bad_input_gets_one_line_and_the_batch_continues(run, tmp_path):
    bad, good = _bad_inputs(tmp_path), _good_inputs(tmp_path)
    mixed = [val for pair in zip(bad.values(), list(good.values())[: len(bad)]) for val in pair]
    mixed += list(good.values())[len(bad):]
    result = run(*mixed, "--format", "jsonl")
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    done = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["file"] for d in done] == [str(p) for p in mixed if p in good.values()]
    by_file = {d["file"]: d for d in done}
    assert by_file[str(good["silent"])]["text"] == "" and by_file[str(good["silent"])]["segments"] == []
    assert any("truncated" in w for w in by_file[str(good["truncated wav"])]["warnings"])
    errors = _error_lines(result)
    assert errors[-1] == f"error: {len(bad)} of {len(mixed)} inputs failed"
    expected = {"missing": "no such file", "empty dir": "no audio files", "zero bytes": "empty (0 bytes)",
                "text as wav": "not a readable audio file", "too short": "too short",
                "text as mp3": "not a readable audio file (unknown format or corrupt data)",
                "truncated flac": "no readable audio"}
    for name, phrase in expected.items():
        lines = [e for e in errors if str(bad[name]) in e]
        assert len(lines) == 1 and phrase in lines[0], (name, errors)
        assert "Error opening" not in lines[0]  # the name once, not libsndfile's repeat of it
    assert len(errors) == len(bad) + 1
    assert sum("warning:" in line for line in result.stderr.splitlines()) == 1  # the truncated wav


@pytest.mark.parametrize("name", ["silent", "8 kHz", "48 kHz stereo", "mp3", "opus", "ogg", "non-ascii", "truncated wav"])
def test_each_good_input_alone_exits_0(run, tmp_path, name):
    path = _good_inputs(tmp_path)[name]
    result = run(path, "--format", "json", "--quiet")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["file"] == str(path) and data["duration"] > 1.0
    assert (data["text"] == "") == (name == "silent")
    assert result.stderr == ""  # --quiet: even the truncation warning is silenced


@pytest.mark.parametrize("name", ["missing", "empty dir", "zero bytes", "text as wav", "too short", "truncated flac"])
def test_each_bad_input_alone_exits_1(run, tmp_path, name):
    path = _bad_inputs(tmp_path)[name]
    result = run(path, "--quiet")
    assert result.exit_code == 1 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")


@pytest.mark.parametrize("name", ["missing", "zero bytes", "text as wav"])
def test_stdout_keeps_the_several_inputs_shape_when_some_fail(run, speech_wav, tmp_path, name):
    # scripts split these lines on the tab: whether an input could be opened must not change that
    bad = _bad_inputs(tmp_path)[name]
    result = run(speech_wav, bad, "--quiet")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{speech_wav}\t")


def test_unwritable_output_dir(run, speech_wav, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    result = run(speech_wav, "--output-dir", blocker / "out")
    assert result.exit_code == 1 and len(_error_lines(result)) == 1 and "cannot write" in result.stderr
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert run(speech_wav, "--output-dir", locked).exit_code == 1


def test_output_never_overwrites_an_input(run, tmp_path):
    audio_named_txt = tmp_path / "clip.txt"
    soundfile.write(audio_named_txt, speech_like(1.0), RATE, format="WAV")
    before = audio_named_txt.read_bytes()
    result = run(audio_named_txt, "--output-dir", tmp_path)
    assert result.exit_code == 1 and "is one of the inputs" in result.stderr
    assert audio_named_txt.read_bytes() == before


@pytest.mark.parametrize("args", [[], ["--format", "all"], ["-", "--files-from", "-"], ["--format", "srt", "TWO"],
                                  ["--files-from", "no-such-list.txt"], ["--format", "docx"],
                                  ["SPEECH", "--speeds", "1,fast"], ["SPEECH", "--speeds", "1,3"], ["SPEECH", "--speeds", ""]])
def test_usage_errors_exit_2(run, speech_wav, tmp_path, args):
    args = [speech_wav if a in ("TWO", "SPEECH") else a for a in args]
    if args and args[-1] == speech_wav:
        args.append(write_speech_wav(tmp_path / "second.wav"))
    if args[:2] == ["--format", "all"]:
        args = [speech_wav, *args]
    result = run(*args)
    assert result.exit_code == 2, (args, result.stderr)
    assert result.stdout == ""
    if "--speeds" in args:
        assert _error_lines(result) == [line for line in result.stderr.splitlines() if line.strip()]
        assert len(_error_lines(result)) == 1 and "--speeds" in _error_lines(result)[0]


def test_empty_list_is_nothing_to_do(run):
    result = run("--files-from", "-", input=b"\n")
    assert result.exit_code == 0 and result.stdout == ""


def test_real_pipe_jsonl_parses_line_by_line(tiny_model_path, tmp_path):
    files = [write_speech_wav(tmp_path / f"f{i}.wav", 0.8 + 0.2 * i, seed=i) for i in range(3)]
    speechcli = Path(sys.executable).with_name("speechcli")
    command = [str(speechcli) if speechcli.exists() else sys.executable, *([] if speechcli.exists() else ["-m", "speechcli"]),
               "transcribe", "--model", str(tiny_model_path), "--beam-size", "1", "--threads", "1", "--format", "jsonl",
               *map(str, files), str(tmp_path / "missing.wav")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    transcriber = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    check = subprocess.run([sys.executable, "-c", "import json, sys\nfor line in sys.stdin: print(json.loads(line)['file'])"],
                           stdin=transcriber.stdout, capture_output=True, text=True)
    transcriber.stdout.close()
    stderr = transcriber.stderr.read().decode()
    assert transcriber.wait() == 1 and check.returncode == 0
    assert check.stdout.splitlines() == [str(f) for f in files]
    assert stderr.splitlines() == [f"error: {tmp_path / 'missing.wav'}: no such file", "error: 1 of 4 inputs failed"]


def test_progress_on_a_terminal_stays_off_stdout(run, tmp_path, monkeypatch):
    import io

    from rich.console import Console

    import speechcli.cli as cli

    screen = io.StringIO()
    monkeypatch.setattr(cli, "err", Console(file=screen, force_terminal=True, width=100))
    long = write_speech_wav(tmp_path / "long.wav", 35.0)
    result = run(long, write_speech_wav(tmp_path / "short.wav"), "--format", "jsonl", "--output-dir", tmp_path / "out")
    assert result.exit_code == 0 and result.stdout == ""
    assert "wrote" in screen.getvalue()  # logs go to the (terminal) stderr console
    quiet = run(long, "--format", "jsonl", "--quiet")
    assert quiet.exit_code == 0 and json.loads(quiet.stdout)["file"] == str(long)


def test_int8_quantises_the_model_and_still_transcribes(run, speech_wav, monkeypatch):
    import speechcli.quantize as quantize

    real, quantised = quantize.quantize_int8, []

    def recording(model):
        quantised.append(model)
        return real(model)

    monkeypatch.setattr(quantize, "quantize_int8", recording)
    result = run(speech_wav, "--int8")
    assert result.exit_code == 0, result.stderr
    assert quantised and result.stdout.strip() != ""
    assert len(result.stdout.splitlines()) == 1


@pytest.mark.parametrize("flag, margin", [([], 0.3), (["--no-trimmed-view"], 0.0), (["--trimmed-view"], 0.3)])
def test_trimmed_view_flag_reaches_the_decoder(run, speech_wav, monkeypatch, flag, margin):
    seen = _decoding_options_used(run, speech_wav, monkeypatch, *flag)
    assert seen and all(options.trimmed_view_s == margin for options in seen)


def _decoding_options_used(run, speech_wav, monkeypatch, *flags) -> list:
    """The DecodingOptions that each decoder call of `transcribe SPEECH_WAV FLAGS...` received."""
    import speechcli.transcription as transcription

    seen = []
    decode = transcription.decode_pieces
    monkeypatch.setattr(transcription, "decode_pieces", lambda m, f, options, *views: seen.append(options) or decode(m, f, options, *views))
    result = run(speech_wav, *flags)
    assert result.exit_code == 0, result.stderr
    return seen


@pytest.mark.parametrize("flag, temperature", [([], 3.0), (["--view-temperature", "0"], 0.0),
                                               (["--view-temperature", "1.5"], 1.5)])
def test_view_temperature_flag_reaches_the_decoder(run, speech_wav, monkeypatch, flag, temperature):
    seen = _decoding_options_used(run, speech_wav, monkeypatch, *flag)
    assert seen and all(options.view_temperature == temperature for options in seen)


def test_a_negative_view_temperature_is_a_usage_error(run, speech_wav):
    result = run(speech_wav, "--view-temperature", "-1")
    assert result.exit_code == 2 and "view-temperature" in result.stderr
