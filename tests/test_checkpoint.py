"""Checkpoints: one self-describing file that round-trips and loads with weights_only=True."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechcli.audio import FeatureConfig
from speechcli.checkpoint import FORMAT_VERSION, load_model, read_bundle, save_checkpoint
from speechcli.errors import CheckpointError, SpeechCLIError

from conftest import build_tiny_model


@pytest.fixture
def saved(tmp_path):
    model, vocab = build_tiny_model(seed=3)
    config = FeatureConfig(utterance_mean=False)
    mean = np.linspace(-1, 1, config.n_mels).astype(np.float32)
    std = np.linspace(0.5, 2, config.n_mels).astype(np.float32)
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, vocab, config, mean, std, info={"step": 7, "dev": {"cer": 0.25}})
    return path, model, vocab, config, mean, std


def test_round_trip_restores_everything(saved):
    path, model, vocab, config, mean, std = saved
    loaded = load_model(path)
    assert loaded.vocab == vocab
    assert loaded.feature_config == config
    assert loaded.model.config == model.config
    np.testing.assert_array_equal(loaded.mean, mean)
    np.testing.assert_array_equal(loaded.std, std)
    assert loaded.info == {"step": 7, "dev": {"cer": 0.25}}
    assert loaded.path == path
    assert not loaded.model.training
    original = model.state_dict()
    for name, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor, original[name]), name


def test_round_trip_gives_the_same_outputs(saved):
    path, model, *_ = saved
    loaded = load_model(path).model
    features, lengths = torch.randn(2, 64, 80, generator=torch.Generator().manual_seed(0)), torch.tensor([64, 50])
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(features, lengths)[0], model.encode(features, lengths)[0])


def test_loads_with_weights_only(saved):
    path = saved[0]
    bundle = torch.load(path, map_location="cpu", weights_only=True)
    assert bundle["format_version"] == FORMAT_VERSION
    assert {"model_config", "feature_config", "vocab", "mean", "std", "state_dict", "info"} <= set(bundle)
    assert read_bundle(path)["vocab"] == bundle["vocab"]


def test_save_is_atomic_and_leaves_no_temp_files(saved):
    path = saved[0]
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]


def test_half_precision_checkpoint_loads_as_float32(tmp_path, saved):
    _, model, vocab, config, mean, std = saved
    full, half = tmp_path / "full.pt", tmp_path / "half.pt"
    save_checkpoint(full, model, vocab, config, mean, std)
    save_checkpoint(half, model, vocab, config, mean, std, half=True)
    stored = torch.load(half, weights_only=True)["state_dict"]
    assert all(t.dtype == torch.float16 for t in stored.values() if t.is_floating_point())
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_model(half)
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    for name, tensor in loaded.model.state_dict().items():
        torch.testing.assert_close(tensor, model.state_dict()[name], atol=2e-3, rtol=1e-3)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(tmp_path / "nope.pt")


def test_directory_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError):
        load_model(tmp_path)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04garbage"])
def test_corrupt_checkpoint(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    expected = "more than plain tensors, or a damaged one)" if content.startswith(b"PK") else "(not a PyTorch file)"
    assert str(info.value).endswith(expected)


def test_a_foreign_pickle_is_refused_in_words_and_without_warnings(tmp_path, recwarn):
    import pickle

    path = tmp_path / "other.pt"
    path.write_bytes(pickle.dumps({"weights": {1, 2}}, protocol=4))
    with pytest.raises(CheckpointError, match=r"\(a Python pickle, not a PyTorch checkpoint\)"):
        load_model(path)
    assert not [w for w in recwarn if "pickle" in str(w.message)]


def test_truncated_checkpoint(tmp_path, saved):
    path = tmp_path / "truncated.pt"
    path.write_bytes(saved[0].read_bytes()[:2000])
    with pytest.raises(CheckpointError):
        load_model(path)


def test_foreign_torch_file_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="format version"):
        load_model(path)


def test_weights_that_do_not_match_the_settings_are_refused(tmp_path, saved):
    path = saved[0]
    bundle = torch.load(path, weights_only=True)
    bundle["model_config"]["encoder_hidden"] = 48
    bad = tmp_path / "mismatch.pt"
    torch.save(bundle, bad)
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(bad)


def test_checkpoint_errors_are_speechcli_errors():
    assert issubclass(CheckpointError, SpeechCLIError)


def _plain_and_tuned(tmp_path, decoding: dict):
    """Paths of one tiny model saved twice: with no decoding settings, and with ``decoding`` recorded."""
    model, vocab = build_tiny_model(seed=3)
    config = FeatureConfig()
    stats = np.zeros(config.n_mels, dtype=np.float32), np.ones(config.n_mels, dtype=np.float32)
    plain, tuned = tmp_path / "plain.pt", tmp_path / "tuned.pt"
    save_checkpoint(plain, model, vocab, config, *stats)
    save_checkpoint(tuned, model, vocab, config, *stats, info={"decoding": decoding})
    return plain, tuned


def test_decoding_options_use_the_weights_recorded_at_export(tmp_path):
    plain, tuned = _plain_and_tuned(tmp_path, {"ctc_weight": 0.6, "lm_weight": 0.4})
    assert load_model(plain).decoding_options(beam_size=3).ctc_weight == 0.3  # DecodingOptions' default
    options = load_model(tuned).decoding_options(beam_size=3)
    assert (options.beam_size, options.ctc_weight) == (3, 0.6)
    assert options.lm_weight == 0.0  # no LM in this checkpoint, so the recorded LM weight is unused


def test_decoding_options_use_the_beam_width_recorded_at_export_unless_given(tmp_path):
    plain, tuned = _plain_and_tuned(tmp_path, {"beam_size": 7})
    assert load_model(plain).decoding_options().beam_size == 4  # DecodingOptions' default
    assert load_model(tuned).decoding_options().beam_size == 7
    assert load_model(tuned).decoding_options(beam_size=1).beam_size == 1


def test_a_word_lm_in_the_checkpoint_is_loaded_with_its_recorded_weight(tmp_path):
    from speechcli.word_lm import WordNgramLM

    plain, tuned = _plain_and_tuned(tmp_path, {"word_lm_weight": 0.5, "oov_penalty": -2.0})
    options = load_model(tuned).decoding_options()
    assert load_model(tuned).word_lm is None and options.word_lm_weight == 0.0  # recorded, but no word LM
    bundle = torch.load(tuned, weights_only=True)
    bundle["word_lm"] = WordNgramLM.train(["the cat sat", "the dog sat"], order=2, min_count=1).to_dict()
    with_lm = tmp_path / "with_word_lm.pt"
    torch.save(bundle, with_lm)
    loaded = load_model(with_lm)
    assert "cat" in loaded.word_lm and "fish" not in loaded.word_lm
    options = loaded.decoding_options()
    assert (options.word_lm_weight, options.oov_penalty) == (0.5, -2.0)
    assert loaded.decoding_options(word_lm_weight=0.0).word_lm_weight == 0.0
