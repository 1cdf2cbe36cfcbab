"""Training checkpoints: resume continues exactly, with old checkpoints and with another layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from speechcli.checkpoint import read_bundle, save_checkpoint
from speechcli.corpus import read_corpus
from speechcli.data import FeatureCache
from speechcli.errors import CheckpointError, DatasetError
from speechcli.featurize import featurize
from speechcli.train import TrainConfig, _learning_rate, train
from test_featurize import make_corpus

TINY = dict(encoder_layers=1, encoder_hidden=32, decoder_hidden=32, attention_dim=32, conv_channels=4,
            dropout=0.0, spec_augment=False, perturb=False, batch_frames=300, warmup_steps=2, learning_rate=1e-3,
            epochs=50, threads=1, device="cpu", checkpoint_minutes=60.0, precision="fp32")


def tiny_config(out: Path, **changes) -> TrainConfig:
    return TrainConfig(out_dir=out, **{**TINY, **changes})


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> Path:
    """A finished feature cache of 40 short synthetic utterances (shared by the training tests)."""
    root = tmp_path_factory.mktemp("train_corpus")
    cache = root / "cache"
    featurize(read_corpus(make_corpus(root / "pairs", count=40)), cache, chunk_size=10)
    return cache


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return read_bundle(path)["state_dict"]


def assert_same_weights(a: Path, b: Path, atol: float = 1e-6) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], atol=atol, rtol=1e-5, msg=name)


def test_resume_continues_exactly_and_accepts_old_checkpoints(tiny_cache, tmp_path):
    cache = FeatureCache(tiny_cache)
    augmented = dict(perturb=True, spec_augment=True)  # random draws too must continue where they stopped
    straight = train(tiny_config(tmp_path / "straight", max_steps=4, **augmented), cache)
    assert straight["steps"] == 4
    half = train(tiny_config(tmp_path / "resumed", max_steps=2, **augmented), cache)
    assert half["steps"] == 2
    # strip the keys this version added: a checkpoint written by the previous train.py must still resume
    path = tmp_path / "resumed" / "last.pt"
    bundle = read_bundle(path)
    for key in ("grad_scaler", "world_size", "grad_accum"):
        bundle["training_state"].pop(key)
    torch.save(bundle, path)
    resumed = train(tiny_config(tmp_path / "resumed", max_steps=4, **augmented), cache, resume=True)
    assert resumed["steps"] == 4
    assert read_bundle(path)["training_state"]["step"] == 4
    assert_same_weights(tmp_path / "straight" / "last.pt", path)
    # the same command once more: the run is complete, nothing is trained or rewritten
    written = path.stat().st_mtime_ns
    assert train(tiny_config(tmp_path / "resumed", max_steps=4, **augmented), cache, resume=True)["steps"] == 4
    assert path.stat().st_mtime_ns == written


def test_perturb_range_reaches_the_warps(tiny_cache, tmp_path, monkeypatch):
    import speechcli.train as train_module

    ranges = []
    real_perturb = train_module.perturb

    def recording_perturb(*args, **kwargs):
        ranges.append((kwargs["max_tempo"], kwargs["max_warp"]))
        return real_perturb(*args, **kwargs)

    monkeypatch.setattr(train_module, "perturb", recording_perturb)
    train(tiny_config(tmp_path / "run", max_steps=1, perturb=True, perturb_range=0.25), FeatureCache(tiny_cache))
    assert ranges and set(ranges) == {(0.25, 0.25)}


def test_resume_with_another_layout_continues_at_the_next_batch(tiny_cache, tmp_path):
    cache = FeatureCache(tiny_cache)
    out = tmp_path / "run"
    train(tiny_config(out, max_steps=3), cache)
    assert read_bundle(out / "last.pt")["training_state"]["batch_in_epoch"] == 3
    train(tiny_config(out, max_steps=5, grad_accum=2), cache, resume=True)
    state = read_bundle(out / "last.pt")["training_state"]
    assert (state["step"], state["batch_in_epoch"], state["grad_accum"]) == (5, 3 + 2 * 2, 2)


def test_periodic_checkpoints_and_bad_settings(tiny_cache, tmp_path):
    cache = FeatureCache(tiny_cache)
    with pytest.raises(DatasetError, match="fp16 needs a CUDA device"):
        train(tiny_config(tmp_path / "fp16", max_steps=1, precision="fp16"), cache)
    with pytest.raises(DatasetError, match="lower --batch-frames"):
        train(tiny_config(tmp_path / "huge", max_steps=1, batch_frames=10**7, grad_accum=2), cache)
    out = tmp_path / "every"
    summary = train(tiny_config(out, max_steps=2, checkpoint_minutes=0.0), cache)
    assert summary["steps"] == 2 and sorted(p.name for p in out.iterdir()) == ["best.pt", "last.pt"]


def test_auto_precision_is_bf16_where_the_cpu_has_it(monkeypatch):
    import speechcli.train as train_module

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda: True)
    assert train_module._autocast_dtype("auto", cpu) == torch.bfloat16
    assert train_module._autocast_dtype("fp32", cpu) is None
    monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda: False)
    assert train_module._autocast_dtype("auto", cpu) is None
    assert train_module._autocast_dtype("auto", cuda) == torch.bfloat16


def test_best_checkpoint_is_the_newest_of_equal_dev_scores(tiny_cache, tmp_path, monkeypatch):
    import speechcli.train as train_module

    cers = iter([0.5, 0.2, 0.3, 0.2])
    monkeypatch.setattr(train_module, "_evaluate_shared", lambda *args: {"cer": next(cers), "wer": 0.0, "utterances": 1})
    out = tmp_path / "run"
    summary = train(tiny_config(out, epochs=4), FeatureCache(tiny_cache))
    assert summary["epochs"] == 4 and summary["best_cer"] == 0.2
    assert read_bundle(out / "best.pt")["info"]["epoch"] == 4


def test_a_separate_dev_cache_is_normalised_with_the_training_stats(tiny_cache, tmp_path, monkeypatch):
    """Validation must feed the model what training fed it, not the dev cache's own statistics."""
    import speechcli.train as train_module

    train_cache, dev_cache = FeatureCache(tiny_cache), FeatureCache(tiny_cache)
    dev_cache.std = dev_cache.std * 10  # as if featurized from very different audio
    stds_used = {}
    real_collate = train_module.collate

    def spying_collate(cache, entries, vocab, stats=None):
        batch = real_collate(cache, entries, vocab, stats)
        stds_used[cache is dev_cache] = (stats if stats is not None else (cache.mean, cache.std))[1]
        return batch

    monkeypatch.setattr(train_module, "collate", spying_collate)
    train(tiny_config(tmp_path / "run", epochs=1, max_steps=1), train_cache, dev_cache)
    assert set(stds_used) == {False, True}  # both training and validation batches were made
    assert (stds_used[True] == train_cache.std).all()


def test_init_from_starts_with_another_runs_weights(tiny_cache, tmp_path):
    cache = FeatureCache(tiny_cache)
    train(tiny_config(tmp_path / "source", max_steps=3), cache)
    source = tmp_path / "source" / "last.pt"
    # with a zero learning rate the fine-tuned run's weights stay exactly the source's
    tuned = train(tiny_config(tmp_path / "tuned", max_steps=2, learning_rate=0.0, seed=5, init_from=source), cache)
    assert tuned["steps"] == 2
    assert_same_weights(source, tmp_path / "tuned" / "last.pt", atol=0)
    # without it, a different seed starts from different weights
    train(tiny_config(tmp_path / "fresh", max_steps=2, learning_rate=0.0, seed=5), cache)
    with pytest.raises(AssertionError):
        assert_same_weights(source, tmp_path / "fresh" / "last.pt")
    with pytest.raises(CheckpointError, match="its --encoder-hidden is 32, not 48"):
        train(tiny_config(tmp_path / "other", max_steps=1, encoder_hidden=48, init_from=source), cache)


def test_a_fine_tuned_model_keeps_the_normalisation_it_was_trained_with(tiny_cache, tmp_path, monkeypatch):
    """Fine-tuning on another corpus (whose cache has its own std) must not rescale the model's inputs."""
    import speechcli.train as train_module

    cache = FeatureCache(tiny_cache)
    train(tiny_config(tmp_path / "source", max_steps=1), cache)
    source = tmp_path / "source" / "last.pt"
    other = FeatureCache(tiny_cache)
    other.std = other.std * 1.5  # as if the new corpus held noisier or quieter copies
    stds_used = []
    real_collate = train_module.collate

    def spying_collate(cache, entries, vocab, stats=None):
        stds_used.append((stats if stats is not None else (cache.mean, cache.std))[1])
        return real_collate(cache, entries, vocab, stats)

    monkeypatch.setattr(train_module, "collate", spying_collate)
    train(tiny_config(tmp_path / "tuned", epochs=1, max_steps=1, init_from=source), other)
    source_std = read_bundle(source)["std"].numpy()
    assert stds_used and all((std == source_std).all() for std in stds_used)
    assert (read_bundle(tmp_path / "tuned" / "last.pt")["std"].numpy() == source_std).all()
    # resumed, it goes on with them; a run with nothing to start from takes the cache's own
    stds_used.clear()
    train(tiny_config(tmp_path / "tuned", epochs=1, max_steps=2), other, resume=True)
    assert stds_used and all((std == source_std).all() for std in stds_used)
    train(tiny_config(tmp_path / "fresh", epochs=1, max_steps=1), other)
    assert (read_bundle(tmp_path / "fresh" / "last.pt")["std"].numpy() == other.std).all()


def test_init_from_and_resume_take_the_checkpoints_model_shape(tiny_cache, tmp_path):
    cache = FeatureCache(tiny_cache)
    train(tiny_config(tmp_path / "wide", max_steps=1, encoder_hidden=40), cache)
    source = tmp_path / "wide" / "last.pt"
    unset = dict(encoder_layers=None, encoder_hidden=None, decoder_hidden=None, attention_dim=None, conv_channels=None)
    train(tiny_config(tmp_path / "tuned", max_steps=1, init_from=source, **unset), cache)
    assert read_bundle(tmp_path / "tuned" / "last.pt")["model_config"]["encoder_hidden"] == 40
    assert train(tiny_config(tmp_path / "wide", max_steps=2, **unset), cache, resume=True)["steps"] == 2
    with pytest.raises(CheckpointError, match="its --encoder-hidden is 40, not 32"):
        train(tiny_config(tmp_path / "wide", max_steps=3), cache, resume=True)
    # with nothing to start from, the unset shape is the model's default
    train(tiny_config(tmp_path / "fresh", max_steps=1, **unset), cache)
    assert read_bundle(tmp_path / "fresh" / "last.pt")["model_config"]["encoder_hidden"] == 256


def test_schedule_ends_with_the_time_budget_when_that_runs_out_first():
    config = tiny_config(Path("unused"), learning_rate=1.0, warmup_steps=2, max_minutes=10.0)
    assert _learning_rate(config, 2, 1000, elapsed_s=0.0) == pytest.approx(1.0)
    halfway = _learning_rate(config, 2, 1000, elapsed_s=300.0)
    assert halfway == pytest.approx(0.05 + 0.95 * 0.5)
    assert _learning_rate(config, 2, 1000, elapsed_s=600.0) == pytest.approx(0.05)
    # steps still rule when they run out first
    assert _learning_rate(config, 1000, 1000, elapsed_s=1.0) == pytest.approx(0.05)
    without_budget = tiny_config(Path("unused"), learning_rate=1.0, warmup_steps=2)
    assert _learning_rate(without_budget, 2, 1000, elapsed_s=600.0) == pytest.approx(1.0)
