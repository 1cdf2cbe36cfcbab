"""Reading speech corpora: LibriSpeech trees, Kaldi data dirs, manifests and audio/text pairs.

Every reader returns `Utterance`s with absolute audio paths and the transcript exactly as
written in the corpus; callers normalise the text. Audio files are not opened or checked
here (featurize reports missing or broken ones per file). Stdlib only.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from .errors import DatasetError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3")
MANIFEST_EXTENSIONS = (".tsv", ".csv", ".jsonl")
# Column names (csv/tsv header, jsonl keys) accepted for each field, first match wins.
AUDIO_COLUMNS = ("audio", "audio_path", "path", "file", "filename", "wav")
TEXT_COLUMNS = ("text", "transcript", "sentence", "transcription")
ID_COLUMNS = ("id", "utt_id", "utterance_id")
# When a directory holds several manifests (e.g. transcripts.tsv and speakers.tsv), use this one.
PREFERRED_MANIFEST_STEMS = ("transcripts", "transcript", "manifest")


@dataclass(frozen=True)
class Utterance:
    """One corpus entry: a unique id, the audio file and the raw (un-normalised) transcript."""

    id: str
    audio_path: Path
    text: str


class CorpusFormat(str, Enum):
    """Layouts `read_corpus` understands; `auto` picks one from what is on disk."""

    auto = "auto"
    librispeech = "librispeech"  # */*.trans.txt with "ID text" lines, ID.flac beside them
    kaldi = "kaldi"  # wav.scp ("ID path") + text ("ID transcript")
    manifest = "manifest"  # .tsv / .csv / .jsonl listing audio path and text
    pairs = "pairs"  # name.wav + name.txt side by side


def read_corpus(path: Path, fmt: CorpusFormat = CorpusFormat.auto) -> list[Utterance]:
    """Read every utterance of a corpus.

    Parameters
    ----------
    path : Path
        A corpus directory, or a manifest file (.tsv, .csv, .jsonl), a LibriSpeech
        ``*.trans.txt`` file, or a Kaldi ``wav.scp`` / ``text`` file.
    fmt : CorpusFormat
        The layout; ``auto`` tries Kaldi, a manifest, LibriSpeech, then pairs.

    Returns
    -------
    list[Utterance]
        In corpus order, with unique ids (repeats get ``#2``, ``#3``...) and absolute audio paths.

    Raises
    ------
    DatasetError
        If the path is missing, its format is not recognised, a line is malformed, or no
        utterance is found.
    """
    path = Path(path).expanduser().absolute()
    if not path.exists():
        raise DatasetError(f"corpus not found: {path}")
    fmt = CorpusFormat(fmt)
    if fmt is CorpusFormat.auto:
        fmt = detect_format(path)
    utterances = _unique_ids(_READERS[fmt](path))
    if not utterances:
        raise DatasetError(f"no utterances found in {path} (read as {fmt.value})")
    return utterances


def detect_format(path: Path) -> CorpusFormat:
    """Guess the layout of an existing corpus file or directory; raises DatasetError if none fits."""
    path = Path(path)
    if path.is_file():
        return _detect_file_format(path)
    if (path / "wav.scp").is_file():
        return CorpusFormat.kaldi
    if _manifests_in(path):
        return CorpusFormat.manifest
    if next(_visible_files(path, "*.trans.txt"), None):
        return CorpusFormat.librispeech
    if next(_pairs(path), None):
        return CorpusFormat.pairs
    raise DatasetError(
        f"cannot recognise the corpus format of {path}: looked for wav.scp + text (Kaldi), "
        f"a .tsv/.csv/.jsonl manifest, *.trans.txt files (LibriSpeech) and audio files with "
        f"a .txt transcript of the same name"
    )


def _detect_file_format(path: Path) -> CorpusFormat:
    if path.suffix.lower() in MANIFEST_EXTENSIONS:
        return CorpusFormat.manifest
    if path.name.endswith(".trans.txt"):
        return CorpusFormat.librispeech
    if path.name in ("wav.scp", "text"):
        return CorpusFormat.kaldi
    raise DatasetError(
        f"cannot recognise the corpus file {path}: expected a .tsv, .csv or .jsonl manifest, "
        f"a LibriSpeech *.trans.txt file, or a corpus directory"
    )


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line without its newline) for each non-blank line of a UTF-8 text file."""
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if line.strip():
            yield number, line


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError(f"{path} is not UTF-8 text") from None
    except OSError as error:
        raise DatasetError(f"cannot read {path}: {error.strerror or error}") from None


def _visible_files(root: Path, pattern: str) -> Iterator[Path]:
    """Files under `root` matching `pattern`, sorted, skipping hidden files and directories."""
    for path in sorted(root.rglob(pattern)):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts):
            yield path


def _audio_path(raw: str, base: Path) -> Path:
    path = Path(raw.strip()).expanduser()
    return path if path.is_absolute() else base / path


def _id_from_path(raw: str) -> str:
    """"recordings/0_george_0.wav" -> "recordings/0_george_0"."""
    path = Path(raw.strip())
    if path.suffix.lower() in AUDIO_EXTENSIONS:
        path = path.with_suffix("")
    return path.as_posix()


def _unique_ids(utterances: list[Utterance]) -> list[Utterance]:
    seen: set[str] = set()
    unique = []
    for utt in utterances:
        new_id, copy = utt.id, 1
        while new_id in seen:
            copy += 1
            new_id = f"{utt.id}#{copy}"
        seen.add(new_id)
        unique.append(utt if new_id == utt.id else Utterance(new_id, utt.audio_path, utt.text))
    return unique


def _require_dir(path: Path, fmt: str) -> None:
    if not path.is_dir():
        raise DatasetError(f"a {fmt} corpus must be a directory: {path}")


# ---------------------------------------------------------------------------------------------
# LibriSpeech: <speaker>/<chapter>/<speaker>-<chapter>.trans.txt, lines "ID TEXT", ID.flac beside


def _read_librispeech(path: Path) -> list[Utterance]:
    if path.is_file():
        return _read_trans_file(path)
    _require_dir(path, "LibriSpeech")
    return [utt for trans in _visible_files(path, "*.trans.txt") for utt in _read_trans_file(trans)]


def _read_trans_file(trans: Path) -> list[Utterance]:
    utterances = []
    for _, line in _read_lines(trans):
        utt_id, text = (line.split(maxsplit=1) + [""])[:2]
        utterances.append(Utterance(utt_id, _librispeech_audio(trans.parent, utt_id), text.strip()))
    return utterances


def _librispeech_audio(directory: Path, utt_id: str) -> Path:
    """ID.flac, or ID with another audio extension if only that exists (converted copies)."""
    flac = directory / f"{utt_id}.flac"
    if flac.exists():
        return flac
    others = (directory / f"{utt_id}{ext}" for ext in AUDIO_EXTENSIONS if ext != ".flac")
    return next((p for p in others if p.exists()), flac)


# ---------------------------------------------------------------------------------------------
# Kaldi: wav.scp ("ID path") + text ("ID transcript")


def _read_kaldi(path: Path) -> list[Utterance]:
    directory = path.parent if path.is_file() else path
    for name in ("wav.scp", "text"):
        if not (directory / name).is_file():
            raise DatasetError(f"Kaldi data dir {directory} has no '{name}' file")
    if (directory / "segments").exists():
        raise DatasetError(
            f"{directory / 'segments'}: Kaldi segments are not supported; cut the audio into files first"
        )
    texts = {utt_id: text for _, utt_id, text in _kaldi_table(directory / "text", allow_empty=True)}
    scp = directory / "wav.scp"
    return [
        Utterance(utt_id, _audio_path(_scp_path(f"{scp}:{number}", value), directory), texts[utt_id])
        for number, utt_id, value in _kaldi_table(scp)
        if utt_id in texts  # as Kaldi's fix_data_dir.sh: keep only ids listed in both files
    ]


def _kaldi_table(path: Path, allow_empty: bool = False) -> Iterator[tuple[int, str, str]]:
    """(line number, key, value) for each "KEY VALUE" line."""
    for number, line in _read_lines(path):
        key, value = (line.split(maxsplit=1) + [""])[:2]
        if not value and not allow_empty:
            raise DatasetError(f"{path}:{number}: expected 'ID VALUE', got {line.strip()!r}")
        yield number, key, value.strip()


def _scp_path(where: str, value: str) -> str:
    if value.endswith("|"):
        raise DatasetError(
            f"{where}: piped commands ({value!r}) are not supported; only plain audio file paths are, "
            f"so convert the audio to files first"
        )
    return value


# ---------------------------------------------------------------------------------------------
# Manifests: .tsv (audio<TAB>text, header optional), .csv (header required), .jsonl


def _read_manifest(path: Path) -> list[Utterance]:
    manifest = path if path.is_file() else _single_manifest(path)
    readers = {".tsv": _read_tsv, ".csv": _read_csv, ".jsonl": _read_jsonl}
    reader = readers.get(manifest.suffix.lower())
    if reader is None:
        raise DatasetError(f"{manifest}: a manifest must end in .tsv, .csv or .jsonl")
    base = manifest.parent
    return [_manifest_utterance(record, base) for record in reader(manifest)]


def _manifests_in(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.iterdir()
        if p.is_file() and p.suffix.lower() in MANIFEST_EXTENSIONS and not p.name.startswith(".")
    )


def _single_manifest(directory: Path) -> Path:
    _require_dir(directory, "manifest")
    manifests = _manifests_in(directory)
    if len(manifests) > 1:
        preferred = [p for p in manifests if p.stem.lower() in PREFERRED_MANIFEST_STEMS]
        manifests = preferred if len(preferred) == 1 else manifests
    if len(manifests) != 1:
        found = ", ".join(p.name for p in manifests) or "none"
        raise DatasetError(
            f"expected one .tsv/.csv/.jsonl manifest in {directory}, found {found}; pass the file itself"
        )
    return manifests[0]


@dataclass(frozen=True)
class _Record:
    """One manifest entry before paths are resolved; `where` is "file:line" for error messages."""

    where: str
    audio: object
    text: object
    id: object = None


def _manifest_utterance(record: _Record, base: Path) -> Utterance:
    if not isinstance(record.audio, str) or not record.audio.strip():
        raise DatasetError(f"{record.where}: missing audio path")
    if not isinstance(record.text, str):
        raise DatasetError(f"{record.where}: missing or non-text transcript")
    utt_id = str(record.id) if record.id not in (None, "") else _id_from_path(record.audio)
    return Utterance(utt_id, _audio_path(record.audio, base), record.text.strip())


def _find_column(names: list[str], wanted: tuple[str, ...]) -> str | None:
    """The first of `names` (compared case-insensitively) that is in `wanted`, by `wanted` order."""
    by_lower = {name.strip().lower(): name for name in names}
    return next((by_lower[w] for w in wanted if w in by_lower), None)


def _columns(names: list[str], where: str) -> tuple[str, str, str | None]:
    audio, text = _find_column(names, AUDIO_COLUMNS), _find_column(names, TEXT_COLUMNS)
    if audio is None or text is None:
        raise DatasetError(
            f"{where}: the header (or JSON keys) must name an audio column "
            f"({', '.join(AUDIO_COLUMNS)}) and a text column ({', '.join(TEXT_COLUMNS)}); "
            f"found {', '.join(names) or 'nothing'}"
        )
    return audio, text, _find_column(names, ID_COLUMNS)


def _is_tsv_header(line: str) -> bool:
    """A header names an audio column and, unlike a data line, holds no audio file name."""
    fields = [field.strip().lower() for field in line.split("\t")]
    has_audio_file = any(field.endswith(AUDIO_EXTENSIONS) for field in fields)
    return not has_audio_file and any(field in AUDIO_COLUMNS for field in fields)


def _read_tsv(path: Path) -> Iterator[_Record]:
    lines = list(_read_lines(path))
    if lines and _is_tsv_header(lines[0][1]):
        yield from _read_tsv_with_header(path, lines)
        return
    for number, line in lines:
        audio, tab, text = line.partition("\t")
        if not tab:
            raise DatasetError(f"{path}:{number}: expected 'audio path<TAB>transcript', found no tab")
        yield _Record(f"{path}:{number}", audio, text)


def _read_tsv_with_header(path: Path, lines: list[tuple[int, str]]) -> Iterator[_Record]:
    names = lines[0][1].split("\t")
    audio, text, utt_id = _columns(names, f"{path}:{lines[0][0]}")
    for number, line in lines[1:]:
        fields = line.split("\t")
        if len(fields) != len(names):
            message = f"expected {len(names)} tab-separated fields, found {len(fields)}"
            raise DatasetError(f"{path}:{number}: {message}")
        row = dict(zip(names, fields))
        yield _Record(f"{path}:{number}", row[audio], row[text], row[utt_id] if utt_id else None)


def _read_csv(path: Path) -> Iterator[_Record]:
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    audio, text, utt_id = _columns(list(reader.fieldnames or []), f"{path}:1")
    try:
        for row in reader:
            if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
                continue  # blank line
            where = f"{path}:{reader.line_num}"
            yield _Record(where, row.get(audio), row.get(text), row.get(utt_id) if utt_id else None)
    except csv.Error as error:
        raise DatasetError(f"{path}:{reader.line_num}: {error}") from None


def _read_jsonl(path: Path) -> Iterator[_Record]:
    for number, line in _read_lines(path):
        where = f"{path}:{number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetError(f"{where}: invalid JSON ({error.msg})") from None
        if not isinstance(entry, dict):
            raise DatasetError(f"{where}: expected a JSON object")
        audio, text, utt_id = _columns(list(entry), where)
        yield _Record(where, entry[audio], entry[text], entry.get(utt_id) if utt_id else None)


# ---------------------------------------------------------------------------------------------
# Pairs: name.wav + name.txt side by side, anywhere under the directory


def _pairs(root: Path) -> Iterator[tuple[Path, Path]]:
    for audio in _visible_files(root, "*"):
        if audio.suffix.lower() in AUDIO_EXTENSIONS:
            transcript = audio.with_suffix(".txt")
            if transcript.is_file():
                yield audio, transcript


def _read_pairs(path: Path) -> list[Utterance]:
    _require_dir(path, "pairs")
    return [
        Utterance(_id_from_path(str(audio.relative_to(path))), audio, _one_line(_read_text(transcript)))
        for audio, transcript in _pairs(path)
    ]


def _one_line(text: str) -> str:
    return " ".join(text.split())


_READERS: dict[CorpusFormat, Callable[[Path], list[Utterance]]] = {
    CorpusFormat.librispeech: _read_librispeech,
    CorpusFormat.kaldi: _read_kaldi,
    CorpusFormat.manifest: _read_manifest,
    CorpusFormat.pairs: _read_pairs,
}
