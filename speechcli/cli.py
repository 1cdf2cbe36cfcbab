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
BeamOption = Annotated[int, typer.Option("--beam-size", "--beam", min=1, help="Beam width; 1 = greedy (fastest).")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or info on stderr; errors only.")]


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False, soft_wrap=True)
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


def _load(model: Path | None, torch_device):
    from .checkpoint import load_model

    return load_model(model, torch_device)


def _show_progress(quiet: bool) -> bool:
    return not quiet and err.is_terminal


# ----------------------------------------------------------------------------------------------
# transcribe


@app.command()
def transcribe(
    files: Annotated[list[Path], typer.Argument(help="Audio files (wav, flac, ogg/opus, mp3; any rate, any channels).", show_default=False)],
    model: ModelOption = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.txt,
    output_dir: Annotated[Optional[Path], typer.Option("--output-dir", "-o", help="Write one file per input here instead of stdout.", file_okay=False)] = None,
    beam_size: BeamOption = 4,
    device: DeviceOption = Device.auto,
    threads: ThreadsOption = None,
    quiet: QuietOption = False,
) -> None:
    """Transcribe audio files to text on stdout.

    Example: [bold]speechcli transcribe talk.flac --format srt > talk.srt[/]
    """
    from .decoding import DecodingOptions
    from .errors import SpeechCLIError
    from .transcription import Failure, transcribe_many
    from .writers import OutputFormat, WRITERS, formats_for

    try:
        loaded = _load(model, _setup_torch(threads, device))
    except SpeechCLIError as error:
        raise fail(str(error)) from None
    options = DecodingOptions(beam_size=beam_size)
    chosen = formats_for(OutputFormat(format.value))
    failed = 0
    for result in transcribe_many(loaded, files, options):
        if isinstance(result, Failure):
            failed += 1
            err.print(f"[bold red]error:[/] {result.error}", soft_wrap=True)
            continue
        for fmt in chosen:
            if output_dir is None:
                if len(files) > 1 and fmt is OutputFormat.txt:
                    sys.stdout.write(f"{result.source}: {result.text}\n")
                else:
                    WRITERS[fmt](result, sys.stdout)
                sys.stdout.flush()
            else:
                output_dir.mkdir(parents=True, exist_ok=True)
                target = output_dir / f"{Path(result.source).stem}.{fmt.value}"
                with open(target, "w", encoding="utf-8") as handle:
                    WRITERS[fmt](result, handle)
                _info(quiet, f"wrote {target}")
    if failed:
        raise typer.Exit(1)


# ----------------------------------------------------------------------------------------------
# featurize


def default_cache_dir(data: Path) -> Path:
    """Where the features of a corpus live unless --cache says otherwise (shared by featurize and train)."""
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "speechcli" / "features"
    resolved = data.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    return root / f"{resolved.stem or 'corpus'}-{digest}"


def _featurize(data: Path, cache: Path | None, kind: CorpusKind, jobs: int, shard: tuple[int, int], quiet: bool):
    from .corpus import CorpusFormat, read_corpus
    from .featurize import featurize

    cache = cache or default_cache_dir(data)
    utterances = read_corpus(data, CorpusFormat(kind.value))
    _info(quiet, f"featurizing {len(utterances)} utterances from {data} into {cache}")
    if _show_progress(quiet):
        from rich.progress import Progress

        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("featurize", total=None)
            report = featurize(utterances, cache, jobs=jobs, shard=shard,
                               on_chunk=lambda done, total: progress.update(task, completed=done, total=total))
    else:
        report = featurize(utterances, cache, jobs=jobs, shard=shard)
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
    shard: Annotated[str, typer.Option(help="Do only part i of N (cluster array jobs); the manifest appears when all parts are done.")] = "0/1",
    quiet: QuietOption = False,
) -> None:
    """Compute 80-dim log-mel features and normalisation stats into a reusable cache.

    Reruns skip finished work. Example: [bold]speechcli featurize --data corpus/ --jobs 4[/]
    """
    from .errors import SpeechCLIError

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        cache_dir, report = _featurize(data, cache, kind, jobs, _parse_shard(shard), quiet)
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
    from .data import FeatureCache
    from .featurize import is_cache

    if is_cache(data):
        return FeatureCache(data)
    cache_dir, _ = _featurize(data, cache, kind, jobs, (0, 1), quiet)
    return FeatureCache(cache_dir)


@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", "-d", help="Training corpus or feature cache.", exists=True)],
    dev: Annotated[Optional[Path], typer.Option(help="Dev corpus or cache (default: hold out 5% of --data).", exists=True)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory for last.pt and best.pt.", file_okay=False)] = Path("runs/speechcli"),
    epochs: Annotated[int, typer.Option(min=1)] = 20,
    max_minutes: Annotated[Optional[float], typer.Option(help="Stop after this much training time (checkpointed; --resume continues).")] = None,
    max_steps: Annotated[Optional[int], typer.Option(min=1)] = None,
    batch_frames: Annotated[int, typer.Option(help="Padded feature frames per batch (100 per second of audio).")] = 2000,
    learning_rate: Annotated[float, typer.Option("--lr")] = 3e-3,
    warmup_steps: Annotated[int, typer.Option()] = 100,
    encoder_layers: Annotated[int, typer.Option()] = 3,
    encoder_hidden: Annotated[int, typer.Option()] = 256,
    decoder_hidden: Annotated[int, typer.Option()] = 320,
    dropout: Annotated[float, typer.Option()] = 0.15,
    ctc_weight: Annotated[float, typer.Option()] = 0.3,
    spec_augment: Annotated[bool, typer.Option(help="SpecAugment time and frequency masks.")] = True,
    seed: Annotated[int, typer.Option()] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/last.pt.")] = False,
    cache: Annotated[Optional[Path], typer.Option(help="Where to featurize --data when it is a corpus.", file_okay=False)] = None,
    kind: Annotated[CorpusKind, typer.Option("--format", help="Corpus layout (default: detect).")] = CorpusKind.auto,
    jobs: Annotated[int, typer.Option(min=1, help="Featurize worker processes.")] = 1,
    device: DeviceOption = Device.auto,
    threads: ThreadsOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train the attention-LSTM; validates CER/WER every epoch and keeps last.pt and best.pt.

    Example: [bold]speechcli train --data corpus/ --out runs/first --epochs 20[/]
    """
    from .errors import SpeechCLIError
    from .train import TrainConfig
    from .train import train as run_training

    try:
        torch_device = _setup_torch(threads, device)
        train_cache = _cache_for(data, cache, kind, jobs, quiet)
        dev_cache = _cache_for(dev, None, kind, jobs, quiet) if dev else None
        config = TrainConfig(out_dir=out, epochs=epochs, max_minutes=max_minutes, max_steps=max_steps,
                             batch_frames=batch_frames, learning_rate=learning_rate, warmup_steps=warmup_steps,
                             encoder_layers=encoder_layers, encoder_hidden=encoder_hidden, decoder_hidden=decoder_hidden,
                             dropout=dropout, ctc_weight=ctc_weight, spec_augment=spec_augment, seed=seed,
                             device=torch_device.type, threads=threads)
        _info(quiet, f"training on {torch_device}; checkpoints in {out}")
        summary = _run_with_progress(run_training, config, train_cache, dev_cache, resume, quiet)
    except SpeechCLIError as error:
        raise fail(str(error)) from None
    _info(quiet, f"done: {summary['steps']} steps, {summary['epochs']} epochs, best dev CER {summary['best_cer']:.2%}, "
                 f"{summary['parameters'] / 1e6:.1f} M parameters, {summary['elapsed_s'] / 60:.1f} min")
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
    beam_size: BeamOption = 4,
    worst: Annotated[int, typer.Option(help="List this many worst utterances.")] = 5,
    kind: Annotated[CorpusKind, typer.Option("--format", help="Corpus layout (default: detect).")] = CorpusKind.auto,
    device: DeviceOption = Device.auto,
    threads: ThreadsOption = None,
    quiet: QuietOption = False,
) -> None:
    """Word and character error rates of a model over a corpus.

    Example: [bold]speechcli evaluate --data dev.tsv --model runs/first/best.pt[/]
    """
    from .corpus import CorpusFormat, read_corpus
    from .decoding import DecodingOptions
    from .errors import SpeechCLIError
    from .metrics import ErrorRate, word_errors
    from .text import normalize_text
    from .transcription import Failure, transcribe_many

    try:
        utterances = read_corpus(data, CorpusFormat(kind.value))
        loaded = _load(model, _setup_torch(threads, device))
    except SpeechCLIError as error:
        raise fail(str(error)) from None
    totals, scored, failed = ErrorRate(), [], 0
    results = transcribe_many(loaded, [u.audio_path for u in utterances], DecodingOptions(beam_size=beam_size))
    for utt, result in zip(utterances, _track(results, len(utterances), "evaluate", quiet)):
        if isinstance(result, Failure):
            failed += 1
            err.print(f"[bold red]error:[/] {result.error}", soft_wrap=True)
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
    beam_size: BeamOption = 1,
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
        loaded = _load(model, _setup_torch(threads, device))
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
