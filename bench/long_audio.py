"""Peak memory and word-timestamp accuracy of `speechcli transcribe` on a 60-minute recording.

The recording is built here: espeak-ng speaks each word of a set of sentences on its own; the
words are trimmed and laid end to end with short gaps, sentences with 0.6-1.6 s pauses, until
the file is an hour long. So the script knows where every word is.

Then:
1. `/usr/bin/time -v speechcli transcribe LONG.wav --format json` runs as a separate process;
   its peak resident memory (and wall time) is the memory figure.
2. Word timestamps of the transcript: words that match the reference (difflib over the word
   sequence) are compared with where the words were placed.
3. Timing method: for the transcribed segments of the first ``--align-minutes`` minutes, the
   reference words inside each segment are aligned with CTC forced alignment and with the
   decoder's attention (teacher forcing), and both are compared with the placed times. This
   measures the timing itself, independently of recognition errors.

Usage: python bench/long_audio.py --model runs/english/last.pt --threads 1 [--minutes 60]
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, setup_threads  # noqa: E402

RATE = 16_000
TOLERANCE_S = 0.3
SENTENCES = """\
the quick brown fox jumps over the lazy dog
she sells sea shells by the sea shore
a journey of a thousand miles begins with a single step
the weather today is cold and windy with a chance of rain
please call me back when you have a moment to talk
we walked along the river until the sun went down
my favourite colour is green but my sister likes blue
the train to london leaves at seven in the morning
he opened the window and looked at the garden
there are many books on the shelf in the library
the children played football in the park after school
can you tell me the way to the nearest station
i would like a cup of tea with milk and sugar
the meeting will start as soon as everyone arrives
our house has a red door and a small garden
they decided to travel north for the summer holiday
the old man sat on the bench and fed the birds
learning a new language takes time and practice
the doctor said that i should drink more water
music was playing softly in the next room""".splitlines()
DIGITS = "zero one two three four five six seven eight nine".split()
# --digits: sentences of digits, for the spoken-digit model (the words of SENTENCES are outside its vocabulary)
DIGIT_SENTENCES = [" ".join(DIGITS[(7 * i + 3 * j) % 10] for j in range(3 + i % 4)) for i in range(20)]


def build_recording(path: Path, minutes: float, seed: int = 0, sentences: list[str] = SENTENCES) -> list[dict]:
    """Write the long WAV (16 kHz mono) block by block; return the placed words with their times."""
    import numpy as np
    import soundfile

    from speechcli.audio import resample

    rng = np.random.default_rng(seed)
    cache: dict[str, np.ndarray] = {}

    def spoken(word: str) -> np.ndarray:
        if word not in cache:
            with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
                subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", tmp.name, word], check=True)
                samples, rate = soundfile.read(tmp.name, dtype="float32")
            samples = resample(samples, rate, RATE)
            loud = np.flatnonzero(np.abs(samples) > 0.02 * np.abs(samples).max())
            cache[word] = samples[loud[0] : loud[-1] + 1] * (0.6 / np.abs(samples).max())
        return cache[word]

    total = int(minutes * 60 * RATE)
    words, position = [], int(0.5 * RATE)
    with soundfile.SoundFile(str(path), "w", RATE, 1, subtype="PCM_16") as out:
        written = 0

        def emit(samples: np.ndarray) -> None:
            nonlocal written
            out.write(samples)
            written += len(samples)

        emit(0.003 * rng.standard_normal(position).astype(np.float32))
        while True:
            sentence = sentences[rng.integers(len(sentences))].split()
            pieces = [spoken(w) for w in sentence]
            gaps = rng.uniform(0.05, 0.12, len(pieces)) * RATE
            length = sum(len(p) for p in pieces) + int(gaps[:-1].sum())
            pause = int(rng.uniform(0.6, 1.6) * RATE)
            if position + length + pause > total:
                break
            for word, samples, gap in zip(sentence, pieces, gaps):
                words.append({"word": word, "start": position / RATE, "end": (position + len(samples)) / RATE})
                noise = 0.003 * rng.standard_normal(len(samples) + int(gap)).astype(np.float32)
                noise[: len(samples)] += samples
                emit(noise)
                position += len(samples) + int(gap)
            emit(0.003 * rng.standard_normal(pause).astype(np.float32))
            position += pause
        emit(0.003 * rng.standard_normal(total - written).astype(np.float32))
    return words


def timed_transcription(audio: Path, model: str, threads: int, beam: int, speeds: str | None,
                        out_dir: Path) -> tuple[dict, dict]:
    """Run the CLI under /usr/bin/time -v; return (its json transcript, {peak_rss_mb, wall_s})."""
    speechcli = Path(sys.executable).with_name("speechcli")
    command = ["/usr/bin/time", "-v", str(speechcli), "transcribe", str(audio), "--model", model, "--format", "json",
               "--output-dir", str(out_dir), "--threads", str(threads), "--beam-size", str(beam), "--device", "cpu"]
    command += ["--speeds", speeds] if speeds else []
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"transcription failed ({done.returncode}):\n{done.stderr}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1])
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", done.stderr)[1]
    seconds = sum(float(x) * 60**i for i, x in enumerate(reversed(wall.split(":"))))
    transcript = json.loads((out_dir / f"{audio.stem}.json").read_text())
    return transcript, {"peak_rss_mb": rss / 1024, "wall_s": seconds}


def hypothesis_timing(transcript: dict, reference: list[dict]) -> dict:
    """Errors of the transcript's own word times, over words that match the reference words of
    the same segment (difflib over the word sequence)."""
    errors, hypothesis_words = [], 0
    for segment in transcript["segments"]:
        hyp = segment["words"]
        hypothesis_words += len(hyp)
        inside = [w for w in reference if segment["start"] <= (w["start"] + w["end"]) / 2 < segment["end"]]
        matcher = difflib.SequenceMatcher(a=[w["word"] for w in inside], b=[w["word"] for w in hyp], autojunk=False)
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                ref, got = inside[block.a + k], hyp[block.b + k]
                errors.append((abs(got["start"] - ref["start"]), abs(got["end"] - ref["end"])))
    return _summary(errors) | {"reference_words": len(reference), "hypothesis_words": hypothesis_words}


def method_timing(transcript: dict, reference: list[dict], audio: Path, model: str, minutes: float) -> dict:
    """Forced alignment of the known words of each segment: CTC vs attention, against the placed times."""
    import soundfile

    from speechcli.checkpoint import load_model
    from speechcli.transcription import align_text

    loaded = load_model(model, "cpu")
    results = {"ctc": [], "attention": []}
    with soundfile.SoundFile(str(audio)) as sound:
        for segment in transcript["segments"]:
            if segment["start"] > minutes * 60:
                break
            inside = [w for w in reference if segment["start"] <= (w["start"] + w["end"]) / 2 < segment["end"]]
            if not inside:
                continue
            sound.seek(int(segment["start"] * RATE))
            samples = sound.read(int((segment["end"] - segment["start"]) * RATE), dtype="float32")
            text = " ".join(w["word"] for w in inside)
            for method in results:
                aligned = align_text(loaded, samples, text, method, offset=segment["start"])
                results[method] += [(abs(a.start - r["start"]), abs(a.end - r["end"])) for a, r in zip(aligned, inside)]
    return {method: _summary(errors) for method, errors in results.items()}


def _summary(errors: list[tuple[float, float]]) -> dict:
    if not errors:
        return {"words": 0}
    starts, ends = [e[0] for e in errors], [e[1] for e in errors]
    return {"words": len(errors),
            "start_within_0.3s": sum(s <= TOLERANCE_S for s in starts) / len(starts),
            "end_within_0.3s": sum(e <= TOLERANCE_S for e in ends) / len(ends),
            "median_start_error_s": round(statistics.median(starts), 3),
            "median_end_error_s": round(statistics.median(ends), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint to transcribe with")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the generated recording")
    parser.add_argument("--beam-size", type=int, default=1)
    parser.add_argument("--speeds", default=None, help="playback speeds, comma-separated (default: the model's own)")
    parser.add_argument("--align-minutes", type=float, default=5.0, help="minutes compared by forced alignment")
    parser.add_argument("--digits", action="store_true", help="speak digit sequences (for a digit model)")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the recording here (default: a temp dir)")
    args = parser.parse_args()
    setup_threads(args.threads)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="speechcli-long-"))
    work.mkdir(parents=True, exist_ok=True)
    audio = work / f"long_{args.minutes:g}min.wav"
    reference_path = audio.with_suffix(".words.json")
    if not (audio.exists() and reference_path.exists()):
        reference_path.write_text(json.dumps(build_recording(audio, args.minutes, sentences=DIGIT_SENTENCES if args.digits else SENTENCES)))
    reference = json.loads(reference_path.read_text())
    print(f"machine: {machine()}; threads {args.threads}; model {args.model}; beam {args.beam_size}; "
          f"speeds {args.speeds or 'the model default'}")
    print(f"recording: {audio} ({args.minutes:g} min, {len(reference)} placed words)")
    transcript, usage = timed_transcription(audio, args.model, args.threads, args.beam_size, args.speeds, work / "out")
    duration = transcript["duration"]
    longest = max((s["end"] - s["start"] for s in transcript["segments"]), default=0.0)
    print(f"/usr/bin/time -v: peak RSS {usage['peak_rss_mb']:.0f} MB, wall {usage['wall_s']:.0f} s "
          f"(real-time factor {usage['wall_s'] / duration:.3f}); {len(transcript['segments'])} segments, "
          f"longest {longest:.1f} s, duration {duration:.1f} s")
    print("transcript word times vs placed words:", json.dumps(hypothesis_timing(transcript, reference)))
    print(f"forced alignment of the known words (first {args.align_minutes:g} min):",
          json.dumps(method_timing(transcript, reference, audio, args.model, args.align_minutes)))


if __name__ == "__main__":
    main()
