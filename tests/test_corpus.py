import json
from pathlib import Path

import pytest

from speechcli.corpus import AUDIO_EXTENSIONS, CorpusFormat, Utterance, detect_format, read_corpus
from speechcli.errors import DatasetError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# LibriSpeech


def test_librispeech_tree(tmp_path):
    write(tmp_path / "19/198/19-198.trans.txt", "19-198-0000 NORTHANGER ABBEY\n19-198-0001 THIS LITTLE WORK\n")
    write(tmp_path / "26/495/26-495.trans.txt", "26-495-0000 HELLO\n")
    utterances = read_corpus(tmp_path)
    assert detect_format(tmp_path) is CorpusFormat.librispeech
    assert [u.id for u in utterances] == ["19-198-0000", "19-198-0001", "26-495-0000"]
    assert utterances[1] == Utterance("19-198-0001", tmp_path / "19/198/19-198-0001.flac", "THIS LITTLE WORK")


def test_librispeech_single_trans_file(tmp_path):
    trans = write(tmp_path / "1-2.trans.txt", "1-2-0000 A\n")
    assert read_corpus(trans)[0].audio_path == tmp_path / "1-2-0000.flac"


# Kaldi


def test_kaldi_dir(tmp_path):
    write(tmp_path / "wav.scp", "utt1 audio/a.wav\nutt2 /abs/b.wav\nutt3 c.wav\n")
    write(tmp_path / "text", "utt1 hello world\nutt2 good bye\n")
    utterances = read_corpus(tmp_path)
    assert detect_format(tmp_path) is CorpusFormat.kaldi
    assert utterances == [
        Utterance("utt1", tmp_path / "audio/a.wav", "hello world"),
        Utterance("utt2", Path("/abs/b.wav"), "good bye"),
    ]  # utt3 has no transcript


def test_kaldi_piped_command_is_rejected(tmp_path):
    write(tmp_path / "wav.scp", "utt1 a.wav\nutt2 sox b.flac -t wav - |\n")
    write(tmp_path / "text", "utt1 x\nutt2 y\n")
    with pytest.raises(DatasetError, match=r"wav\.scp:2: piped commands"):
        read_corpus(tmp_path)


def test_kaldi_without_text_file(tmp_path):
    write(tmp_path / "wav.scp", "utt1 a.wav\n")
    with pytest.raises(DatasetError, match="no 'text' file"):
        read_corpus(tmp_path)


def test_kaldi_malformed_line(tmp_path):
    write(tmp_path / "wav.scp", "utt1 a.wav\nutt2\n")
    write(tmp_path / "text", "utt1 x\n")
    with pytest.raises(DatasetError, match=r"wav\.scp:2"):
        read_corpus(tmp_path)


# Manifests


def test_tsv_without_header(tmp_path):
    manifest = write(tmp_path / "transcripts.tsv", "clips/a.wav\tHello there\n\nclips/b.flac\tSecond one\n")
    utterances = read_corpus(manifest)
    assert utterances == [
        Utterance("clips/a", tmp_path / "clips/a.wav", "Hello there"),
        Utterance("clips/b", tmp_path / "clips/b.flac", "Second one"),
    ]


def test_tsv_with_header_and_extra_columns(tmp_path):
    manifest = write(tmp_path / "data.tsv", "client_id\tpath\tsentence\tage\nc1\ta.mp3\tHi\t20\n")
    assert read_corpus(manifest) == [Utterance("a", tmp_path / "a.mp3", "Hi")]


def test_tsv_two_column_header(tmp_path):
    manifest = write(tmp_path / "data.tsv", "audio\ttext\na.wav\tHi\n")
    assert [u.id for u in read_corpus(manifest)] == ["a"]


def test_tsv_line_without_tab(tmp_path):
    manifest = write(tmp_path / "data.tsv", "a.wav\tok\nb.wav no tab\n")
    with pytest.raises(DatasetError, match=r"data\.tsv:2"):
        read_corpus(manifest)


def test_absolute_paths_are_kept(tmp_path):
    audio = tmp_path / "elsewhere" / "x.wav"
    manifest = write(tmp_path / "corpus" / "list.tsv", f"{audio}\tabsolute\nrel/y.wav\trelative\n")
    utterances = read_corpus(manifest)
    assert utterances[0].audio_path == audio
    assert utterances[1].audio_path == tmp_path / "corpus" / "rel/y.wav"


def test_relative_corpus_path_gives_absolute_audio_paths(tmp_path, monkeypatch):
    write(tmp_path / "corpus" / "list.tsv", "a.wav\thi\n")
    monkeypatch.chdir(tmp_path)
    assert read_corpus(Path("corpus/list.tsv"))[0].audio_path == tmp_path / "corpus" / "a.wav"


def test_csv(tmp_path):
    manifest = write(
        tmp_path / "m.csv",
        'ID,Audio_Path,Transcription\nu1,a.wav,"Hello, world"\nu2,b.wav,"two\nlines"\n',
    )
    assert read_corpus(manifest) == [
        Utterance("u1", tmp_path / "a.wav", "Hello, world"),
        Utterance("u2", tmp_path / "b.wav", "two\nlines"),
    ]


def test_csv_without_recognised_header(tmp_path):
    manifest = write(tmp_path / "m.csv", "a.wav,hello\nb.wav,bye\n")
    with pytest.raises(DatasetError, match="audio column"):
        read_corpus(manifest)


def test_csv_short_row(tmp_path):
    manifest = write(tmp_path / "m.csv", "path,text\na.wav,hi\nb.wav\n")
    with pytest.raises(DatasetError, match=r"m\.csv:3"):
        read_corpus(manifest)


def test_jsonl(tmp_path):
    lines = [{"audio": "a.wav", "text": "one"}, {"path": "sub/b.opus", "transcript": "two", "id": "x"}]
    manifest = write(tmp_path / "m.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n")
    assert read_corpus(manifest) == [
        Utterance("a", tmp_path / "a.wav", "one"),
        Utterance("x", tmp_path / "sub/b.opus", "two"),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [("{not json", "invalid JSON"), ("[1, 2]", "JSON object"), ('{"audio": "a.wav"}', "text column"),
     ('{"audio": "a.wav", "text": null}', "transcript")],
)
def test_jsonl_malformed(tmp_path, line, message):
    manifest = write(tmp_path / "m.jsonl", '{"audio": "ok.wav", "text": "ok"}\n' + line + "\n")
    with pytest.raises(DatasetError, match=rf"m\.jsonl:2: .*{message}"):
        read_corpus(manifest)


def test_directory_with_one_manifest(tmp_path):
    write(tmp_path / "list.jsonl", '{"audio": "a.wav", "text": "one"}\n')
    write(tmp_path / "README.txt", "not a transcript")
    assert detect_format(tmp_path) is CorpusFormat.manifest
    assert read_corpus(tmp_path)[0].audio_path == tmp_path / "a.wav"


def test_directory_prefers_transcripts_manifest(tmp_path):
    write(tmp_path / "transcripts.tsv", "a.wav\thello\n")
    write(tmp_path / "speakers.tsv", "a.wav\tspeaker1\n")
    assert read_corpus(tmp_path)[0].text == "hello"


def test_directory_with_ambiguous_manifests(tmp_path):
    write(tmp_path / "one.tsv", "a.wav\thello\n")
    write(tmp_path / "two.tsv", "a.wav\tbye\n")
    with pytest.raises(DatasetError, match="one.tsv, two.tsv"):
        read_corpus(tmp_path)


# Pairs


def test_pairs_dir(tmp_path):
    for name in ("a.wav", "sub/b.flac", "sub/orphan.wav", ".hidden/c.wav"):
        write(tmp_path / name, "")
    write(tmp_path / "a.txt", "Hello\nthere \n")
    write(tmp_path / "sub/b.txt", "Bye")
    write(tmp_path / ".hidden/c.txt", "ignored")
    assert detect_format(tmp_path) is CorpusFormat.pairs
    assert read_corpus(tmp_path) == [
        Utterance("a", tmp_path / "a.wav", "Hello there"),
        Utterance("sub/b", tmp_path / "sub/b.flac", "Bye"),
    ]


def test_audio_extensions_cover_pairs(tmp_path):
    for i, ext in enumerate(AUDIO_EXTENSIONS):
        write(tmp_path / f"u{i}{ext.upper()}", "")
        write(tmp_path / f"u{i}.txt", str(i))
    assert len(read_corpus(tmp_path, CorpusFormat.pairs)) == len(AUDIO_EXTENSIONS)


# Ids, forced formats and errors


def test_duplicate_ids_are_made_unique(tmp_path):
    manifest = write(tmp_path / "m.tsv", "a.wav\tone\na.wav\ttwo\nb.wav\tx\na.wav\tthree\n")
    assert [u.id for u in read_corpus(manifest)] == ["a", "a#2", "b", "a#3"]


def test_forced_format_overrides_detection(tmp_path):
    write(tmp_path / "list.tsv", "a.wav\tfrom manifest\n")
    write(tmp_path / "a.wav", "")
    write(tmp_path / "a.txt", "from pair")
    assert read_corpus(tmp_path)[0].text == "from manifest"
    assert read_corpus(tmp_path, CorpusFormat.pairs)[0].text == "from pair"
    assert read_corpus(tmp_path, "pairs")[0].text == "from pair"


def test_forced_format_that_does_not_fit(tmp_path):
    write(tmp_path / "a.wav", "")
    write(tmp_path / "a.txt", "x")
    with pytest.raises(DatasetError, match="no 'wav.scp' file"):
        read_corpus(tmp_path, CorpusFormat.kaldi)
    with pytest.raises(DatasetError, match="no utterances"):
        read_corpus(tmp_path, CorpusFormat.librispeech)


def test_missing_path(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_corpus(tmp_path / "nope")


def test_unrecognised_directory(tmp_path):
    write(tmp_path / "notes.txt", "hello")
    with pytest.raises(DatasetError, match="cannot recognise.*LibriSpeech"):
        read_corpus(tmp_path)


def test_unrecognised_file(tmp_path):
    with pytest.raises(DatasetError, match="cannot recognise"):
        read_corpus(write(tmp_path / "notes.txt", "hello"))


def test_empty_manifest(tmp_path):
    with pytest.raises(DatasetError, match="no utterances"):
        read_corpus(write(tmp_path / "m.tsv", "\n"))


def test_not_utf8(tmp_path):
    manifest = tmp_path / "m.tsv"
    manifest.write_bytes(b"a.wav\t\xff\xfe\n")
    with pytest.raises(DatasetError, match="not UTF-8"):
        read_corpus(manifest)


def test_missing_audio_is_not_an_error(tmp_path):
    manifest = write(tmp_path / "m.tsv", "missing.wav\thello\n")
    assert not read_corpus(manifest)[0].audio_path.exists()


def test_shared_fsdd_manifest():
    manifest = SHARED_DATA / "fsdd" / "transcripts.tsv"
    if not manifest.is_file():
        pytest.skip(f"shared data not available at {SHARED_DATA}")
    utterances = read_corpus(manifest)
    assert len(utterances) == 2000
    assert len({u.id for u in utterances}) == 2000
    assert utterances[0] == Utterance("recordings/0_george_0", manifest.parent / "recordings/0_george_0.wav", "zero")
    assert read_corpus(manifest.parent) == utterances
