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


def transcript_dict(transcript: Transcript) -> dict:
    return {
        "file": transcript.source,
        "text": transcript.text,
        "duration": round(transcript.duration, 3),
        "segments": [
            {"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text, "confidence": round(s.confidence, 4),
             "words": [{"word": w.text, "start": w.start, "end": w.end, "confidence": w.confidence} for w in s.words]}
            for s in transcript.segments
        ],
    }


def write_txt(transcript: Transcript, out: TextIO) -> None:
    out.write(transcript.text + "\n")


def write_json(transcript: Transcript, out: TextIO) -> None:
    json.dump(transcript_dict(transcript), out, ensure_ascii=False, indent=2)
    out.write("\n")


def write_jsonl(transcript: Transcript, out: TextIO) -> None:
    out.write(json.dumps(transcript_dict(transcript), ensure_ascii=False) + "\n")


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
    """Non-empty segments as (start, end, text), clipped to the audio and never overlapping."""
    cues, previous_end = [], 0.0
    for segment in transcript.segments:
        if not segment.text:
            continue
        start = max(segment.start, previous_end)
        end = min(max(segment.end, start + 0.001), transcript.duration)
        if end <= start:
            continue
        cues.append((start, end, segment.text))
        previous_end = end
    return cues


def _timestamp(seconds: float, decimal_marker: str) -> str:
    milliseconds = round(seconds * 1000)
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    secs, milliseconds = divmod(milliseconds, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{milliseconds:03d}"
