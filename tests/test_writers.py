"""Every output format, and subtitles that parse back into sane cues."""

from __future__ import annotations

import io
import json
import re

import pytest

from speechcli.transcription import Segment, Transcript, Word
from speechcli.writers import WRITERS, OutputFormat, formats_for, transcript_dict

CUE_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d)[.,](\d\d\d) --> (\d\d):(\d\d):(\d\d)[.,](\d\d\d)$")


def _words(text: str, start: float, step: float) -> list[Word]:
    return [Word(w, round(start + i * step, 3), round(start + i * step + step * 0.8, 3), 0.9)
            for i, w in enumerate(text.split())]


def sample_transcript() -> Transcript:
    long_text = " ".join(["word"] * 40)
    return Transcript("talk ünï.wav", 40.0, [
        Segment(0.2, 2.5, "hello world", _words("hello world", 0.3, 1.0), confidence=0.8),
        Segment(2.4, 3.0, "", []),  # silent piece: no cue
        Segment(2.9, 4.2, "overlapping start", _words("overlapping start", 2.9, 0.6), confidence=0.7),
        Segment(5.0, 25.0, long_text, _words(long_text, 5.0, 0.5), confidence=0.6),  # 20 s: several cues
        Segment(39.0, 41.0, "past the end", [], confidence=0.5),  # clipped to the duration
    ], warnings=["truncated: something"])


def parse_cues(text: str) -> list[tuple[float, float, str]]:
    cues = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = CUE_TIME.match(line)
        if match:
            g = [int(x) for x in match.groups()]
            start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
            end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
            cues.append((start, end, lines[i + 1]))
    return cues


def render(fmt: OutputFormat, transcript: Transcript) -> str:
    out = io.StringIO()
    WRITERS[fmt](transcript, out)
    return out.getvalue()


@pytest.mark.parametrize("fmt", [OutputFormat.srt, OutputFormat.vtt])
def test_subtitles_parse_back_monotonic_inside_the_audio(fmt):
    transcript = sample_transcript()
    text = render(fmt, transcript)
    if fmt is OutputFormat.vtt:
        assert text.startswith("WEBVTT\n\n")
    else:
        numbers = [int(line) for line in text.splitlines() if line.isdigit()]
        assert numbers == list(range(1, len(numbers) + 1))
    cues = parse_cues(text)
    assert len(cues) >= 5
    previous_end = 0.0
    for start, end, words in cues:
        assert previous_end <= start < end <= transcript.duration
        assert words
        previous_end = end
    assert all(end - start <= 7.0 for start, end, _ in cues)
    joined = " ".join(words for _, _, words in cues)
    assert joined == transcript.text


def test_txt_json_jsonl_tsv():
    transcript = sample_transcript()
    assert render(OutputFormat.txt, transcript) == transcript.text + "\n"
    data = json.loads(render(OutputFormat.json, transcript))
    assert data == transcript_dict(transcript)
    assert data["file"] == "talk ünï.wav" and data["text"] == transcript.text and data["duration"] == 40.0
    assert data["warnings"] == ["truncated: something"]
    word = data["segments"][0]["words"][0]
    assert set(word) == {"word", "start", "end", "confidence"} and word["word"] == "hello"
    assert 0 <= word["confidence"] <= 1 and word["start"] < word["end"]
    line = render(OutputFormat.jsonl, transcript)
    assert line.endswith("\n") and line.count("\n") == 1 and json.loads(line) == data
    rows = render(OutputFormat.tsv, transcript).splitlines()
    assert rows[0] == "start\tend\ttext"
    starts = [int(r.split("\t")[0]) for r in rows[1:]]
    assert starts == sorted(starts) and starts[0] == 300


def test_empty_transcript_writes_valid_empty_outputs():
    empty = Transcript("silence.wav", 3.0, [])
    assert render(OutputFormat.txt, empty) == "\n"
    assert json.loads(render(OutputFormat.json, empty))["segments"] == []
    assert render(OutputFormat.srt, empty) == ""
    assert render(OutputFormat.vtt, empty) == "WEBVTT\n\n"
    assert render(OutputFormat.tsv, empty) == "start\tend\ttext\n"


def test_all_means_every_file_format():
    assert set(formats_for(OutputFormat.all)) == {OutputFormat.txt, OutputFormat.json, OutputFormat.srt,
                                                  OutputFormat.vtt, OutputFormat.tsv}
    assert formats_for(OutputFormat.jsonl) == [OutputFormat.jsonl]
