"""The ``speechcli`` command: a thin Typer layer over the library.

Only this module talks to the terminal. Results go to stdout, everything else to stderr.
Exit status: 0 all good, 1 some input failed (each named on stderr), 2 usage error.
Heavy imports (torch) happen inside the commands so that ``--help`` answers at once.
"""

from __future__ import annotations

import hashlib
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

app = typer.Typer(
    name="speechcli",
    help="Speech recognition from the command line: transcribe audio, train and evaluate models, look at attention.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
err = Console(stderr=True, highlight=False)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Format(str, Enum):
    txt = "txt"
    json = "json"
    jsonl = "jsonl"
    srt = "srt"
    vtt = "vtt"
    tsv = "tsv"
    all = "all"


class CorpusKind(str, Enum):
    auto = "auto"
    librispeech = "librispeech"
    kaldi = "kaldi"
    manifest = "manifest"
    pairs = "pairs"


ModelOption = Annotated[Optional[Path], typer.Option("--model", "-m", help="Checkpoint to use (default: the shipped English model).", dir_okay=False)]
DeviceOption = Annotated[Device, typer.Option(help="Where to run: auto picks CUDA when available.")]
ThreadsOption = Annotated[Optional[int], typer.Option(min=1, help="CPU threads for PyTorch (default: all cores).")]
BeamOption = Annotated[Optional[int], typer.Option("--beam-size", "--beam", min=1, help="Beam width (default: the model's own setting, 8 for the shipped model); 1 = greedy (fastest).", show_default=False)]
LmWeightOption = Annotated[Optional[float], typer.Option(min=0.0, help="Weight of the model's character language model in beam search (default: the model's own setting; 0 = off).")]
WordLmWeightOption = Annotated[Optional[float], typer.Option(min=0.0, help="Weight of the model's word language model, which rescores each completed word in beam search (default: the model's own setting; 0 = off).")]
SpeedsOption = Annotated[Optional[str], typer.Option("--speeds", metavar="LIST", help="Playback speeds at which each stretch of audio is decoded, comma-separated; the transcripts compete (see --view-temperature) and one is kept (default: the model's own setting, 1,0.95,0.9,0.85,0.8,1.05,1.1 for the shipped model, about 7× the time of 1). 1 = once, as recorded (fastest, with --no-trimmed-view).", show_default=False)]
ViewTemperatureOption = Annotated[Optional[float], typer.Option("--view-temperature", metavar="T", min=0.0, help="How the transcripts of a stretch's views (its playback speeds and trimmed view) compete: each is scored on every view, and the one with the best soft maximum of those scores at temperature T wins (default: the model's own setting, 3 for the shipped model; it adds about 40 % to the decoding time). 0 keeps the transcript of the single view that scores it best.", show_default=False)]
TrimmedViewOption = Annotated[Optional[bool], typer.Option("--trimmed-view/--no-trimmed-view", help="Also decode each stretch of audio cut to its speech and 0.3 s around it, and that transcript competes with the others: pauses around short speech otherwise throw the model off (default: the model's own setting, on for the shipped model; it costs time only where there are such pauses: little at several speeds, up to 1.8× at one).", show_default=False)]
MIN_SPEED, MAX_SPEED, MAX_SPEEDS = 0.5, 2.0, 8
SHAPE_DEFAULT = "Model shape (default: the --init-from or resumed checkpoint's, else"
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or info on stderr; errors only.")]
Int8Option = Annotated[bool, typer.Option("--int8", help="int8 dynamic quantisation of the LSTMs and large linear layers (CPU only): about 1.2× faster with the shipped model's beam of 8 and 1.5× greedy, with WER within 0.8 points of float on our dev sets.")]


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


def print_error(message: str) -> None:
    """One ``error:`` line on stderr; the message is escaped so that brackets in file names survive Rich markup."""
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    print_error(message)
    return typer.Exit(code)


def _info(quiet: bool, message: str) -> None:
    if not quiet:
        err.print(message, soft_wrap=True)


def _setup_torch(threads: int | None, device: Device):
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning threads starve other processes
    import torch

    from .train import resolve_device

    if threads:
        torch.set_num_threads(threads)
    return resolve_device(device.value)


def _parse_speeds(text: str | None) -> tuple[float, ...] | None:
    """--speeds 1,0.95,0.85 → (1.0, 0.95, 0.85); None keeps the model's own setting."""
    if text is None:
        return None
    try:
        speeds = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise fail(f"--speeds {text}: expected numbers separated by commas, e.g. 1,0.95,0.85", code=2) from None
    if not 1 <= len(speeds) <= MAX_SPEEDS or not all(MIN_SPEED <= s <= MAX_SPEED for s in speeds):
        raise fail(f"--speeds {text}: expected 1 to {MAX_SPEEDS} speeds, each from {MIN_SPEED} to {MAX_SPEED}", code=2)
    return tuple(dict.fromkeys(speeds))


def _load(model: Path | None, threads: int | None, device: Device, int8: bool = False):
    """Load the model for inference (int8 runs on the CPU: ``--device auto`` then means the CPU)."""
    from .checkpoint import load_model

    if int8 and device is Device.auto:
        device = Device.cpu
    loaded = load_model(model, _setup_torch(threads, device))
    if int8:
        from .quantize import quantize_int8

        loaded.model = quantize_int8(loaded.model)
    return loaded


def _show_progress(quiet: bool) -> bool:
    return not quiet and err.is_terminal


# ----------------------------------------------------------------------------------------------
# transcribe


@app.command()
def transcribe(
    files: Annotated[Optional[list[str]], typer.Argument(help="Audio files (wav, flac, ogg/opus, mp3; any rate, any channels), directories (searched recursively for audio files) or - for audio bytes on stdin.", show_default=False)] = None,
    files_from: Annotated[Optional[str], typer.Option("--files-from", help="Also transcribe the paths listed in this file, one per line or NUL-separated; - reads the list from stdin.", show_default=False)] = None,
    model: ModelOption = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format; 'all' = txt, json, srt, vtt and tsv (needs --output-dir).")] = Format.txt,
    output_dir: Annotated[Optional[Path], typer.Option("--output-dir", "-o", help="Write one file per input here (NAME.FORMAT) instead of to stdout.")] = None,
    beam_size: BeamOption = None,
    lm_weight: LmWeightOption = None,
    word_lm_weight: WordLmWeightOption = None,
    speeds: SpeedsOption = None,
    trimmed_view: TrimmedViewOption = None,
    view_temperature: ViewTemperatureOption = None,
    device: DeviceOption = Device.auto,
    threads: ThreadsOption = None,
    int8: Int8Option = False,
    quiet: QuietOption = False,
) -> None:
    """Transcribe audio to text on stdout (or into --output-dir), many files in one batched run.

    Exit status: 0 when every input was transcribed, 1 when any failed (each named on stderr; the rest are still done), 2 for usage errors. Silent audio gives an empty transcript, not an error.

    Examples: [bold]speechcli transcribe talk.flac --format srt > talk.srt[/]

    [bold]find rec -name '*.wav' | speechcli transcribe --files-from - --format jsonl >> all.jsonl[/]
    """
    from .inputs import STDIN, expand_inputs, read_list

    arguments = list(files or [])
    if arguments.count(STDIN) + (files_from == STDIN) > 1:
        raise fail("stdin can be read only once: use '-' as an input or '--files-from -', not both", code=2)
    if STDIN in arguments and sys.stdin.isatty():
        raise fail("'-' reads audio from stdin, but stdin is a terminal: pipe the audio in (... | speechcli transcribe -)", code=2)
    if files_from is not None:
        arguments += _transcribe_read_list(files_from, read_list)
    elif not arguments:
        raise fail("no input: give audio files, directories, '-' (audio on stdin) or --files-from LIST", code=2)
    playback = _parse_speeds(speeds)
    if format is Format.all and output_dir is None:
        raise fail("--format all writes several files per input: give --output-dir", code=2)
    sources = expand_inputs(arguments, sys.stdin.buffer if STDIN in arguments else None)
    if format in (Format.srt, Format.vtt) and output_dir is None and len(sources) > 1:
        raise fail(f"{len(sources)} inputs would make one invalid {format.value} file on stdout: give --output-dir "
                   "(or use --format jsonl)", code=2)
    if output_dir is not None:
        _transcribe_check_output_dir(output_dir)
    failed = [s for s in sources if s.error is not None]
    for source in failed:
        print_error(str(source.error))
    todo = [s for s in sources if s.error is None]
    if todo:
        failed_count = _transcribe_run(todo, len(sources), model, format, output_dir, (beam_size, lm_weight, word_lm_weight, playback, trimmed_view,
                                                                                      view_temperature),
                                       device, threads, int8, quiet)
    else:
        failed_count = 0
        _transcribe_log(quiet, "no inputs to transcribe")
    total_failed = len(failed) + failed_count
    if total_failed:
        if len(sources) > 1:
            print_error(f"{total_failed} of {len(sources)} inputs failed")
        raise typer.Exit(1)


# Private helpers of `transcribe` (owned with it).


def _transcribe_warning(quiet: bool, message: str) -> None:
    from rich.markup import escape

    if not quiet:
        err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def _transcribe_log(quiet: bool, message: str) -> None:
    """Logs go to stderr only when it is a terminal (and not --quiet): batch logs stay clean."""
    from rich.markup import escape

    if _show_progress(quiet):
        err.print(escape(message), soft_wrap=True)


def _transcribe_read_list(files_from: str, read_list) -> list[str]:
    if files_from == "-":
        return read_list(sys.stdin.buffer)
    try:
        with open(files_from, "rb") as handle:
            return read_list(handle)
    except OSError as error:
        raise fail(f"--files-from {files_from}: cannot read the list ({error.strerror or error})", code=2) from None


def _transcribe_check_output_dir(output_dir: Path) -> None:
    """Make the directory and prove it is writable before any work is done."""
    import tempfile

    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".speechcli-check-"):
            pass
    except OSError as error:
        raise fail(f"--output-dir {output_dir}: cannot write there ({error.strerror or error})") from None


def _transcribe_run(sources, inputs_given, model, format, output_dir, decoding, device, threads, int8, quiet) -> int:
    """Transcribe, write results as they come, show progress; return how many inputs failed.

    ``inputs_given`` counts the inputs that failed before decoding too: stdout's shape (one plain
    line, or NAME<TAB>TEXT lines) must not depend on which inputs could be opened.
    ``decoding``: (beam size, LM weight, word LM weight, speeds, trimmed view, view temperature), each None for the model's own
    setting."""
    from .errors import SpeechCLIError
    from .transcription import Failure, transcribe_many
    from .writers import OutputFormat, formats_for

    try:
        loaded = _load(model, threads, device, int8)
    except SpeechCLIError as error:
        raise fail(str(error)) from None
    chosen = formats_for(OutputFormat(format.value))
    sink = _TranscribeSink(chosen, output_dir, sources, quiet) if output_dir else _TranscribeStdout(chosen[0], inputs_given)
    failed = 0
    with _TranscribeProgress(len(sources), quiet) as progress:
        results = transcribe_many(loaded, sources, loaded.decoding_options(*decoding), on_progress=progress.update)
        for index, (source, result) in enumerate(zip(sources, results)):
            progress.file_done(index)
            if isinstance(result, Failure):
                failed += 1
                print_error(str(result.error))
                continue
            for warning in result.warnings:
                _transcribe_warning(quiet, f"{result.source}: {warning}")
            if not sink.write(source, result):
                failed += 1
    sink.close()
    return failed


class _TranscribeStdout:
    """Results on stdout. Several inputs: txt is NAME<TAB>TEXT lines, json a JSON array, tsv gets a file column."""

    def __init__(self, fmt, count: int):
        self.fmt, self.several, self.written = fmt, count > 1, 0

    def write(self, source, result) -> bool:
        import io

        from .writers import OutputFormat, WRITERS, jsonl_line

        fmt, buffer = self.fmt, io.StringIO()
        if fmt is OutputFormat.jsonl:
            buffer.write(jsonl_line(result))
        elif self.several and fmt is OutputFormat.txt:
            buffer.write(f"{result.source}\t{result.text}\n")
        elif self.several and fmt is OutputFormat.json:
            buffer.write("[\n" if not self.written else ",\n")
            WRITERS[fmt](result, buffer)
        elif self.several and fmt is OutputFormat.tsv:
            table = io.StringIO()
            WRITERS[fmt](result, table)
            lines = table.getvalue().splitlines()
            if not self.written:
                buffer.write("file\t" + lines[0] + "\n")
            buffer.writelines(f"{result.source}\t{line}\n" for line in lines[1:])
        else:
            WRITERS[fmt](result, buffer)
        _transcribe_emit(buffer.getvalue())
        self.written += 1
        return True

    def close(self) -> None:
        from .writers import OutputFormat

        if self.several and self.fmt is OutputFormat.json:
            _transcribe_emit("[\n]\n" if not self.written else "]\n")


def _transcribe_emit(text: str) -> None:
    """One write per result, flushed at once: lines appended by parallel jobs never interleave."""
    sys.stdout.flush()
    data = text.encode("utf-8", errors="surrogateescape")
    stream = getattr(sys.stdout, "buffer", None)
    if stream is None:
        sys.stdout.write(text)
    else:
        stream.write(data)
        stream.flush()


class _TranscribeSink:
    """One file per input and format in --output-dir, written atomically; never over an input file."""

    def __init__(self, formats, output_dir: Path, sources, quiet: bool):
        self.formats, self.output_dir, self.quiet = formats, output_dir, quiet
        self.inputs = {s.path.resolve() for s in sources if s.path is not None}
        self.used: set[Path] = set()

    def write(self, source, result) -> bool:
        import os

        from .writers import WRITERS

        base = self._base(source)
        for fmt in self.formats:
            target = base.with_name(f"{base.name}.{fmt.value}")
            if target.resolve() in self.inputs:
                print_error(f"{result.source}: not written: {target} is one of the inputs")
                return False
            temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(temp, "w", encoding="utf-8", errors="surrogateescape") as handle:
                    WRITERS[fmt](result, handle)
                os.replace(temp, target)
            except OSError as error:
                if temp.exists():
                    temp.unlink()
                print_error(f"{result.source}: cannot write {target} ({error.strerror or error})")
                return False
            _transcribe_log(self.quiet, f"wrote {target}")
        return True

    def _base(self, source) -> Path:
        """OUT/STEM, or OUT/SUBDIRS/STEM for files found in a directory; -2, -3... on a name clash."""
        if source.path is None:
            relative = Path("stdin")
        elif source.relative is not None:
            relative = source.relative.with_suffix("")
        else:
            relative = Path(source.path.stem)
        base, number = self.output_dir / relative, 1
        while base in self.used:
            number += 1
            base = self.output_dir / relative.with_name(f"{relative.name}-{number}")
        self.used.add(base)
        return base

    def close(self) -> None:
        pass


class _TranscribeProgress:
    """Rich progress on stderr (only when it is a terminal and not --quiet): files done, plus a
    bar for each long file in flight."""

    LONG_S = 30.0

    def __init__(self, total: int, quiet: bool):
        self.enabled, self.total = _show_progress(quiet), total
        self.bars: dict[int, int] = {}

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                                     TimeRemainingColumn(), console=err, transient=True)
            self.progress.__enter__()
            self.overall = self.progress.add_task(f"0/{self.total} files", total=self.total)
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.progress.__exit__(*exc)

    def update(self, event) -> None:
        if not self.enabled or not event.duration or event.duration < self.LONG_S:
            return
        from rich.markup import escape

        if event.index not in self.bars:
            self.bars[event.index] = self.progress.add_task(escape(Path(event.source).name), total=event.duration)
        self.progress.update(self.bars[event.index], completed=min(event.seconds_done, event.duration))

    def file_done(self, index: int) -> None:
        if not self.enabled:
            return
        self.done = getattr(self, "done", 0) + 1
        self.progress.update(self.overall, completed=self.done, description=f"{self.done}/{self.total} files")
        if index in self.bars:
            self.progress.remove_task(self.bars.pop(index))


# ----------------------------------------------------------------------------------------------
# featurize


def default_cache_dir(data: Path) -> Path:
    """Where the features of a corpus live unless --cache says otherwise (shared by featurize and train)."""
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "speechcli" / "features"
    resolved = data.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    return root / f"{resolved.stem or 'corpus'}-{digest}"


def _featurize(data: Path, cache: Path | None, kind: CorpusKind, jobs: int, shard: tuple[int, int], quiet: bool,
               chunk_size: int | None = None):
    from .corpus import CorpusFormat, read_corpus
    from .featurize import CHUNK_SIZE, featurize

    cache = cache or default_cache_dir(data)
    utterances = read_corpus(data, CorpusFormat(kind.value))
    part = f" (shard {shard[0]}/{shard[1]})" if shard[1] > 1 else ""
    _info(quiet, f"featurizing {len(utterances)} utterances from {data} into {cache}{part}")
    options = dict(jobs=jobs, shard=shard, chunk_size=chunk_size or CHUNK_SIZE)
    if _show_progress(quiet):
        from rich.progress import Progress

        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("featurize", total=None)
            report = featurize(utterances, cache, **options,
                               on_chunk=lambda done, total: progress.update(task, completed=done, total=total))
    else:
        report = featurize(utterances, cache, **options)
    for path, reason in report.failures:
        err.print(f"[yellow]skipped:[/] {reason}", soft_wrap=True)
    return cache, report


def _parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise typer.BadParameter("expected i/N, e.g. 0/4") from None
    if not (count >= 1 and 0 <= index < count):
        raise typer.BadParameter("expected 0 <= i < N")
    return index, count


@app.command()
def featurize(
    data: Annotated[Path, typer.Option("--data", "-d", help="Corpus: LibriSpeech tree, Kaldi dir, manifest (.tsv/.csv/.jsonl) or dir of name.wav + name.txt.", exists=True)],
    cache: Annotated[Optional[Path], typer.Option(help="Cache directory (default: under ~/.cache/speechcli/features).", file_okay=False)] = None,
    kind: Annotated[CorpusKind, typer.Option("--format", help="Corpus layout (default: detect).")] = CorpusKind.auto,
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    shard: Annotated[str, typer.Option(help="Do only part i of N (cluster array jobs); the shard that finds all parts done writes the manifest.")] = "0/1",
    merge: Annotated[bool, typer.Option("--merge", help="Featurize nothing: write manifest and stats from the finished shards (fails if any is missing).")] = False,
    chunk_size: Annotated[int, typer.Option(min=1, help="Utterances per chunk file (the unit of resumption and of sharding); all shards must agree.")] = 200,
    quiet: QuietOption = False,
) -> None:
    """Compute 80-dim log-mel features and normalisation stats into a reusable cache.

    Reruns skip finished work (kill it any time, run it again). On a cluster run one array job per
    [bold]--shard i/N[/] and, if you like, a final [bold]--merge[/] (the last shard to finish merges anyway).
    Example: [bold]speechcli featurize --data corpus/ --jobs 4[/]
    """
    from .errors import SpeechCLIError

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        if merge:
            from .featurize import merge_cache

            cache_dir = cache or default_cache_dir(data)
            report = merge_cache(cache_dir)
        else:
            cache_dir, report = _featurize(data, cache, kind, jobs, _parse_shard(shard), quiet, chunk_size)
    except SpeechCLIError as error:
        raise fail(str(error)) from None
    if report.complete:
        hours = report.frames / 360000
        _info(quiet, f"cache complete: {report.utterances} utterances, {hours:.2f} h, {len(report.failures)} skipped → {cache_dir}")
    else:
        _info(quiet, f"did {report.chunks_done} chunks (skipped {report.chunks_skipped} already done); waiting for other shards")
    print(cache_dir)


# ----------------------------------------------------------------------------------------------
# train


def _cache_for(data: Path, cache: Path | None, kind: CorpusKind, jobs: int, quiet: bool):
    """A finished cache for ``data``. Under torchrun each rank featurizes its own shard, then rank 0 merges."""
    from . import distributed
    from .data import FeatureCache
    from .featurize import is_cache, merge_cache

    if is_cache(data):
        return FeatureCache(data)
    topo = distributed.topology_from_env()
    cache_dir, report = _featurize(data, cache, kind, jobs, (topo.rank, topo.world), quiet)
    distributed.barrier()
    if topo.distributed:
        if topo.is_main and not report.complete:
            merge_cache(cache_dir)
        distributed.barrier()
    return FeatureCache(cache_dir)


@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", "-d", help="Training corpus or feature cache.", exists=True)],
    dev: Annotated[Optional[Path], typer.Option(help="Dev corpus or cache (default: hold out 5% of --data).", exists=True)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory for last.pt and best.pt.", file_okay=False)] = Path("runs/speechcli"),
    epochs: Annotated[int, typer.Option(min=1)] = 40,
    max_minutes: Annotated[Optional[float], typer.Option(help="Stop after this much training time (checkpointed; --resume continues).")] = None,
    max_steps: Annotated[Optional[int], typer.Option(min=1)] = None,
    batch_frames: Annotated[int, typer.Option(help="Padded feature frames per batch (100 per second of audio).")] = 2000,
    learning_rate: Annotated[float, typer.Option("--lr")] = 3e-3,
    warmup_steps: Annotated[int, typer.Option()] = 100,
    grad_accum: Annotated[int, typer.Option(min=1, help="Micro-batches per process per optimizer step (global batch = processes × this × --batch-frames).")] = 1,
    precision: Annotated[str, typer.Option(help="auto (bf16 autocast on CUDA and on CPUs with native bf16, else fp32), fp32, bf16 or fp16 (CUDA only).")] = "auto",
    checkpoint_minutes: Annotated[float, typer.Option(min=0, help="Also save OUT/last.pt this often within an epoch (0: every step).")] = 5.0,
    encoder_layers: Annotated[Optional[int], typer.Option(help=f"{SHAPE_DEFAULT} 3).")] = None,
    encoder_hidden: Annotated[Optional[int], typer.Option(help=f"Encoder BiLSTM units per direction. {SHAPE_DEFAULT} 256).")] = None,
    decoder_hidden: Annotated[Optional[int], typer.Option(help=f"{SHAPE_DEFAULT} 320).")] = None,
    attention_dim: Annotated[Optional[int], typer.Option(help=f"{SHAPE_DEFAULT} 256).")] = None,
    frontend: Annotated[Optional[str], typer.Option(help=f"Encoder front end: stack (one strided convolution over 4 frames) or conv2d (two ReLU Conv2d layers). {SHAPE_DEFAULT} stack).")] = None,
    conv_channels: Annotated[Optional[int], typer.Option(help=f"Channels of the conv2d front end. {SHAPE_DEFAULT} 32).")] = None,
    dropout: Annotated[float, typer.Option()] = 0.15,
    ctc_weight: Annotated[float, typer.Option()] = 0.3,
    spec_augment: Annotated[bool, typer.Option(help="SpecAugment time and frequency masks.")] = True,
    perturb: Annotated[bool, typer.Option(help="Random tempo and vocal-tract (mel-axis) warping per utterance (helped unseen speakers when fine-tuning the English model; see models/README.md).")] = False,
    perturb_range: Annotated[float, typer.Option(min=0.01, max=0.5, help="How far --perturb warps: factors drawn from 1 ± this.")] = 0.1,
    seed: Annotated[int, typer.Option()] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/last.pt when it exists (else start afresh), with any number of processes.")] = False,
    init_from: Annotated[Optional[Path], typer.Option(help="Start from this checkpoint's weights and model shape (fine-tuning: fresh optimizer and schedule).", exists=True, dir_okay=False)] = None,
    cache: Annotated[Optional[Path], typer.Option(help="Where to featurize --data when it is a corpus.", file_okay=False)] = None,
    kind: Annotated[CorpusKind, typer.Option("--format", help="Corpus layout (default: detect).")] = CorpusKind.auto,
    jobs: Annotated[int, typer.Option(min=1, help="Featurize worker processes.")] = 1,
    device: DeviceOption = Device.auto,
    threads: ThreadsOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train the attention-LSTM; validates CER/WER every epoch and keeps last.pt and best.pt.

    Several processes: [bold]torchrun --nproc_per_node 8 -m speechcli train ...[/] (rank 0 writes and reports).
    Example: [bold]speechcli train --data corpus/ --out runs/first --epochs 20[/]
    """
    from . import distributed
    from .errors import SpeechCLIError
    from .train import TrainConfig
    from .train import train as run_training

    if frontend not in (None, "stack", "conv2d"):
        raise typer.BadParameter("expected stack or conv2d", param_hint="--frontend")
    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise typer.BadParameter("expected auto, fp32, bf16 or fp16", param_hint="--precision")
    topo = distributed.topology_from_env()
    quiet = quiet or not topo.is_main  # other ranks report errors only
    try:
        torch_device = _setup_torch(threads, device)
        distributed.setup(torch_device)
        train_cache = _cache_for(data, cache, kind, jobs, quiet)
        dev_cache = _cache_for(dev, None, kind, jobs, quiet) if dev else None
        config = TrainConfig(out_dir=out, epochs=epochs, max_minutes=max_minutes, max_steps=max_steps,
                             batch_frames=batch_frames, learning_rate=learning_rate, warmup_steps=warmup_steps,
                             checkpoint_minutes=checkpoint_minutes, grad_accum=grad_accum, precision=precision,
                             encoder_layers=encoder_layers, encoder_hidden=encoder_hidden, decoder_hidden=decoder_hidden,
                             attention_dim=attention_dim, frontend=frontend, conv_channels=conv_channels,
                             dropout=dropout, ctc_weight=ctc_weight, spec_augment=spec_augment, perturb=perturb, perturb_range=perturb_range, seed=seed,
                             device=torch_device.type, threads=threads, init_from=init_from)
        where = f"{topo.world} processes" if topo.distributed else str(torch_device)
        _info(quiet, f"training on {where}; checkpoints in {out}")
        if resume and (out / "last.pt").exists():
            _info(quiet, f"resuming from {out / 'last.pt'}")
        summary = _run_with_progress(run_training, config, train_cache, dev_cache, resume, quiet)
    except SpeechCLIError as error:
        raise fail(str(error)) from None
    finally:
        distributed.cleanup()
    _info(quiet, f"done: {summary['steps']} steps, {summary['epochs']} epochs, best dev CER {summary['best_cer']:.2%}, "
                 f"{summary['parameters'] / 1e6:.1f} M parameters, {summary['elapsed_s'] / 60:.1f} min")
    if topo.is_main:
        print(out / "best.pt")


def _run_with_progress(run_training, config, train_cache, dev_cache, resume: bool, quiet: bool) -> dict:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    def report_validation(event) -> None:
        v = event.validation
        _info(quiet, f"epoch {event.epoch} step {event.step}: dev CER {v['cer']:.2%}  WER {v['wer']:.2%}  ({v['utterances']} utts)")

    if not _show_progress(quiet):
        def on_progress(event) -> None:
            if event.validation:
                report_validation(event)
            elif event.step % 100 == 0:
                _info(quiet, f"step {event.step} epoch {event.epoch} loss {event.loss:.3f} "
                             f"{event.audio_seconds_per_s:.0f} audio-s/s lr {event.learning_rate:.2e}")
        return run_training(config, train_cache, dev_cache, resume=resume, on_progress=on_progress)

    columns = (TextColumn("epoch {task.fields[epoch]}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TextColumn("loss {task.fields[loss]:.3f}  {task.fields[utts]:.1f} utt/s  {task.fields[audio]:.0f} audio-s/s"),
               TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=err) as progress:
        task = progress.add_task("train", total=1.0, epoch=0, loss=float("nan"), utts=0.0, audio=0.0)

        def on_progress(event) -> None:
            if event.validation:
                report_validation(event)
                return
            progress.update(task, completed=event.epoch_fraction, epoch=event.epoch + 1, loss=event.loss,
                            utts=event.utterances_per_s, audio=event.audio_seconds_per_s)
        return run_training(config, train_cache, dev_cache, resume=resume, on_progress=on_progress)


# ----------------------------------------------------------------------------------------------
# evaluate


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option("--data", "-d", help="Corpus with reference transcripts.", exists=True)],
    model: ModelOption = None,
    beam_size: BeamOption = None,
    lm_weight: LmWeightOption = None,
    word_lm_weight: WordLmWeightOption = None,
    speeds: SpeedsOption = None,
    trimmed_view: TrimmedViewOption = None,
    view_temperature: ViewTemperatureOption = None,
    worst: Annotated[int, typer.Option(help="List this many worst utterances.")] = 5,
    kind: Annotated[CorpusKind, typer.Option("--format", help="Corpus layout (default: detect).")] = CorpusKind.auto,
    device: DeviceOption = Device.auto,
    threads: ThreadsOption = None,
    int8: Int8Option = False,
    quiet: QuietOption = False,
) -> None:
    """Word and character error rates of a model over a corpus.

    Example: [bold]speechcli evaluate --data dev.tsv --model runs/first/best.pt[/]
    """
    from .corpus import CorpusFormat, read_corpus
    from .errors import SpeechCLIError
    from .metrics import ErrorRate, word_errors
    from .text import normalize_text
    from .transcription import Failure, transcribe_many

    playback = _parse_speeds(speeds)
    try:
        utterances = read_corpus(data, CorpusFormat(kind.value))
        loaded = _load(model, threads, device, int8)
    except SpeechCLIError as error:
        raise fail(str(error)) from None
    totals, scored, failed = ErrorRate(), [], 0
    options = loaded.decoding_options(beam_size, lm_weight, word_lm_weight, playback, trimmed_view, view_temperature)
    results = transcribe_many(loaded, [u.audio_path for u in utterances], options)
    for utt, result in zip(utterances, _track(results, len(utterances), "evaluate", quiet)):
        if isinstance(result, Failure):
            failed += 1
            print_error(str(result.error))
            continue
        ref, hyp = normalize_text(utt.text), normalize_text(result.text)
        totals.add(ref, hyp)
        errors, words = word_errors(ref, hyp)
        scored.append((errors / max(1, words), utt.id, ref, hyp))
    print(f"utterances: {totals.utterances}  WER: {totals.wer:.2%}  CER: {totals.cer:.2%}")
    for rate, utt_id, ref, hyp in sorted(scored, reverse=True)[:worst]:
        print(f"  {rate:6.1%}  {utt_id}\n          ref: {ref}\n          hyp: {hyp}")
    if failed:
        raise typer.Exit(1)


def _track(iterable, total: int, label: str, quiet: bool):
    if not _show_progress(quiet):
        yield from iterable
        return
    from rich.progress import track

    yield from track(iterable, total=total, description=label, console=err, transient=True)


# ----------------------------------------------------------------------------------------------
# visualize-attention


@app.command("visualize-attention")
def visualize_attention(
    file: Annotated[Path, typer.Argument(help="Audio file (one utterance; long files show their first segment).")],
    model: ModelOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.", dir_okay=False)] = Path("attention.png"),
    beam_size: Annotated[int, typer.Option("--beam-size", "--beam", min=1, help="Beam width; 1 = greedy.")] = 1,
    device: DeviceOption = Device.cpu,
    threads: ThreadsOption = None,
    quiet: QuietOption = False,
) -> None:
    """Show which audio frames each output character attends to: a terminal heatmap and a PNG.

    Example: [bold]speechcli visualize-attention sample.wav --out att.png[/]
    """
    from .attention_view import attention_view
    from .errors import SpeechCLIError

    try:
        loaded = _load(model, threads, device)
        view = attention_view(loaded, file, out, beam_size)
    except SpeechCLIError as error:
        raise fail(str(error)) from None
    print(view.text)
    err.print(_heatmap(view, width=min(100, max(20, err.width - 12))))
    _info(quiet, f"wrote {out}")


def _heatmap(view, width: int):
    """Characters down, time across; shading from the attention weight (max-pooled into columns)."""
    import numpy as np
    from rich.text import Text

    shades = " ░▒▓█"
    frames = view.attention.shape[1]
    columns = min(width, frames)
    edges = np.linspace(0, frames, columns + 1).astype(int)
    text = Text()
    seconds = frames * view.encoder_frame_s
    text.append(f"{'':>6} 0s{'':{max(0, columns - 8)}}{seconds:.1f}s\n", style="dim")
    for char, row in zip(view.characters, view.attention):
        pooled = np.array([row[a:max(b, a + 1)].max() for a, b in zip(edges[:-1], edges[1:])])
        levels = np.minimum((pooled / max(pooled.max(), 1e-9) * (len(shades) - 1)).round().astype(int), len(shades) - 1)
        label = "␣" if char == " " else char
        text.append(f"{label:>6} ", style="bold")
        text.append("".join(shades[level] for level in levels) + "\n", style="cyan")
    return text


if __name__ == "__main__":
    main()
