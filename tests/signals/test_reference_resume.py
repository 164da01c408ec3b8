"""A small-model fit (a reference, a cross-fitted fold, GLC's weak-label model) stopped between epochs resumes from
its last epoch's checkpoint and ends with the weights of an uninterrupted fit."""

import logging

import pytest
import torch

from atlantis.signals.cache import ArtifactCache
from atlantis.signals.reference import finetune
from tests.models.test_module import build

SETTINGS = {"batch_size": 8, "max_epochs": 3, "enable_progress_bar": False}


class Stopped(Exception):
    pass


def fit(work_dir=None, stop_at_epoch=None, epochs_run=None):
    """finetune on 32 tiny examples; the module raises when `stop_at_epoch` starts (a killed piece) and
    appends every epoch it trains to `epochs_run`."""
    data = build("causal", n_train=32)[1]

    def make_module():
        module, _ = build("causal", n_train=32)

        def on_train_epoch_start():
            if module.current_epoch == stop_at_epoch:
                raise Stopped
            if epochs_run is not None:
                epochs_run.append(module.current_epoch)

        module.on_train_epoch_start = on_train_epoch_start
        return module

    return finetune(make_module, data.features["train"], data.collator, SETTINGS, seed=0, work_dir=work_dir)


def weights(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def test_a_fit_stopped_after_two_epochs_resumes_at_the_third_with_the_uninterrupted_weights(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    whole = weights(fit())
    work = tmp_path / "work"
    with pytest.raises(Stopped):
        fit(work, stop_at_epoch=2)
    assert (work / "last.ckpt").is_file()
    epochs = []
    resumed = weights(fit(work, epochs_run=epochs))
    assert epochs == [2]  # only the third epoch ran again
    assert_same(resumed, whole)
    assert "`weights_only` was not set" not in caplog.text  # Lightning's line at every epoch's checkpoint


def test_a_cache_entry_keeps_its_work_folder_until_it_is_complete(tmp_path):
    cache, spec = ArtifactCache(tmp_path), {"what": "a fold"}
    work = cache.work_dir("references", spec)

    def fails(tmp):
        work.mkdir(parents=True)
        (work / "last.ckpt").write_text("epoch 1")
        raise Stopped

    with pytest.raises(Stopped):
        cache.get_or_create("references", spec, fails)
    assert (work / "last.ckpt").read_text() == "epoch 1"  # the next attempt resumes from it

    def finishes(tmp):
        assert (work / "last.ckpt").is_file()
        (tmp / "model.bin").write_text("weights")

    entry = cache.get_or_create("references", spec, finishes)
    assert (entry / "model.bin").read_text() == "weights" and not work.exists()
