"""Transcripts → text in the formats users expect: txt, json, jsonl, srt, vtt, tsv."""

from __future__ import annotations

import json
from enum import Enum
from typing import TextIO

from .transcription import Transcript


class OutputFormat(str, Enum):
    txt = "txt"
    json = "json"
    jsonl = "jsonl"
    srt = "srt"
    vtt = "vtt"
    tsv = "tsv"
    all = "all"


MAX_CUE_S = 7.0  # subtitle cues longer than this (or MAX_CUE_CHARS) are split between words
MAX_CUE_CHARS = 84  # two lines of 42 characters


def transcript_dict(transcript: Transcript) -> dict:
    """The json/jsonl object: file, text, duration, segments with their words (seconds, confidence)."""
    result = {
        "file": transcript.source,
        "text": transcript.text,
        "duration": round(transcript.duration, 3),
        "segments": [
            {"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text, "confidence": round(s.confidence, 4),
             "words": [{"word": w.text, "start": w.start, "end": w.end, "confidence": w.confidence} for w in s.words]}
            for s in transcript.segments
        ],
    }
    if transcript.warnings:
        result["warnings"] = list(transcript.warnings)
    return result


def write_txt(transcript: Transcript, out: TextIO) -> None:
    out.write(transcript.text + "\n")


def write_json(transcript: Transcript, out: TextIO) -> None:
    json.dump(transcript_dict(transcript), out, ensure_ascii=False, indent=2)
    out.write("\n")


def jsonl_line(transcript: Transcript) -> str:
    """One line, newline included: callers that append to shared files write it in one call."""
    return json.dumps(transcript_dict(transcript), ensure_ascii=False) + "\n"


def write_jsonl(transcript: Transcript, out: TextIO) -> None:
    out.write(jsonl_line(transcript))


def write_tsv(transcript: Transcript, out: TextIO) -> None:
    """Whisper-style: start and end in integer milliseconds, then the text."""
    out.write("start\tend\ttext\n")
    for s in _cues(transcript):
        out.write(f"{round(s[0] * 1000)}\t{round(s[1] * 1000)}\t{s[2]}\n")


def write_srt(transcript: Transcript, out: TextIO) -> None:
    for number, (start, end, text) in enumerate(_cues(transcript), start=1):
        out.write(f"{number}\n{_timestamp(start, ',')} --> {_timestamp(end, ',')}\n{text}\n\n")


def write_vtt(transcript: Transcript, out: TextIO) -> None:
    out.write("WEBVTT\n\n")
    for start, end, text in _cues(transcript):
        out.write(f"{_timestamp(start, '.')} --> {_timestamp(end, '.')}\n{text}\n\n")


WRITERS = {
    OutputFormat.txt: write_txt,
    OutputFormat.json: write_json,
    OutputFormat.jsonl: write_jsonl,
    OutputFormat.srt: write_srt,
    OutputFormat.vtt: write_vtt,
    OutputFormat.tsv: write_tsv,
}


def formats_for(choice: OutputFormat) -> list[OutputFormat]:
    return [f for f in WRITERS if f is not OutputFormat.jsonl] if choice is OutputFormat.all else [choice]


def _cues(transcript: Transcript) -> list[tuple[float, float, str]]:
    """Subtitle cues (start, end, text): segments split between words into cues of at most
    MAX_CUE_S seconds and MAX_CUE_CHARS characters where word times allow; clipped to the audio,
    in order and never overlapping."""
    raw: list[tuple[float, float, str]] = []
    for segment in transcript.segments:
        if not segment.text:
            continue
        if not segment.words:
            raw.append((segment.start, segment.end, segment.text))
            continue
        group: list = []
        for word in segment.words:
            text = " ".join(w.text for w in group + [word])
            if group and (word.end - group[0].start > MAX_CUE_S or len(text) > MAX_CUE_CHARS):
                raw.append((group[0].start, group[-1].end, " ".join(w.text for w in group)))
                group = []
            group.append(word)
        if group:
            raw.append((group[0].start, group[-1].end, " ".join(w.text for w in group)))
    cues, previous_end = [], 0.0
    for start, end, text in raw:
        start = max(start, previous_end)
        end = min(max(end, start + 0.001), transcript.duration)
        if end <= start:
            continue
        cues.append((start, end, text))
        previous_end = end
    return cues


def _timestamp(seconds: float, decimal_marker: str) -> str:
    milliseconds = round(seconds * 1000)
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    secs, milliseconds = divmod(milliseconds, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{milliseconds:03d}"
